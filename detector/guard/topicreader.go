package guard

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/segmentio/kafka-go"

	kafkax "github.com/revoked-dev/revoked/internal/kafka"
)

// KafkaTopicReader reads whole topics outside any consumer group; it
// commits nothing. It suits the small held and decisions topics, not a
// busy one.
type KafkaTopicReader struct {
	brokers []string
	client  *kafka.Client
	dialer  *kafka.Dialer
}

var _ TopicReader = (*KafkaTopicReader)(nil)

// NewKafkaTopicReader returns a reader for brokers. It connects lazily.
func NewKafkaTopicReader(brokers []string, sec kafkax.Security, clientID string) (*KafkaTopicReader, error) {
	if len(brokers) == 0 {
		return nil, errors.New("no brokers")
	}
	transport, err := sec.NewTransport(clientID)
	if err != nil {
		return nil, err
	}
	dialer, err := sec.NewDialer(clientID)
	if err != nil {
		return nil, err
	}
	return &KafkaTopicReader{brokers: brokers, dialer: dialer, client: &kafka.Client{Addr: kafka.TCP(brokers...), Transport: transport}}, nil
}

// ReadTopic returns every message topic holds now, partition by partition
// in offset order. A topic that does not exist holds nothing.
func (r *KafkaTopicReader) ReadTopic(ctx context.Context, topic string) ([]kafka.Message, error) {
	md, err := r.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("metadata of %s: %w", topic, err)
	}
	var parts []int
	for _, t := range md.Topics {
		if t.Name != topic {
			continue
		}
		if t.Error != nil {
			if errors.Is(t.Error, kafka.UnknownTopicOrPartition) {
				return nil, nil
			}
			return nil, fmt.Errorf("metadata of %s: %w", topic, t.Error)
		}
		for _, p := range t.Partitions {
			parts = append(parts, p.ID)
		}
	}
	if len(parts) == 0 {
		return nil, nil
	}
	slices.Sort(parts)
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}, IsolationLevel: kafka.ReadCommitted}
	for _, p := range parts {
		req.Topics[topic] = append(req.Topics[topic], kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p))
	}
	offs, err := r.client.ListOffsets(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("listing offsets of %s: %w", topic, err)
	}
	po := offs.Topics[topic]
	slices.SortFunc(po, func(a, b kafka.PartitionOffsets) int { return a.Partition - b.Partition })
	var out []kafka.Message
	for _, p := range po {
		if p.Error != nil {
			return nil, fmt.Errorf("listing offsets of %s/%d: %w", topic, p.Partition, p.Error)
		}
		if p.LastOffset <= p.FirstOffset {
			continue
		}
		msgs, err := r.readPartition(ctx, topic, p.Partition, p.FirstOffset, p.LastOffset)
		if err != nil {
			return nil, err
		}
		out = append(out, msgs...)
	}
	return out, nil
}

// readPartition reads offsets [first, end) of one partition.
func (r *KafkaTopicReader) readPartition(ctx context.Context, topic string, partition int, first, end int64) ([]kafka.Message, error) {
	kr := kafka.NewReader(kafka.ReaderConfig{
		Brokers:        r.brokers,
		Topic:          topic,
		Partition:      partition,
		Dialer:         r.dialer,
		MinBytes:       1,
		MaxBytes:       10 << 20,
		MaxWait:        50 * time.Millisecond,
		IsolationLevel: kafka.ReadCommitted,
	})
	defer func() { _ = kr.Close() }()
	if err := kr.SetOffset(first); err != nil {
		return nil, fmt.Errorf("reading %s/%d: %w", topic, partition, err)
	}
	var out []kafka.Message
	for {
		m, err := kr.FetchMessage(ctx)
		if err != nil {
			return nil, fmt.Errorf("reading %s/%d at %d: %w", topic, partition, first+int64(len(out)), err)
		}
		if m.Offset >= end {
			return out, nil
		}
		out = append(out, m)
		if m.Offset >= end-1 {
			return out, nil
		}
	}
}

// ErrNoTopic means a topic does not exist.
var ErrNoTopic = errors.New("topic does not exist")

// CheckTopic returns nil when topic exists, an error wrapping ErrNoTopic
// when it does not, and any other error when the brokers could not tell.
// It suits ops.Server.AddCheck: a detector whose held topic is missing
// cannot hold a command, and retries the event that built it until the
// topic is created.
func (r *KafkaTopicReader) CheckTopic(ctx context.Context, topic string) error {
	md, err := r.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return fmt.Errorf("metadata of %s: %w", topic, err)
	}
	for _, t := range md.Topics {
		if t.Name != topic {
			continue
		}
		if errors.Is(t.Error, kafka.UnknownTopicOrPartition) {
			return fmt.Errorf("%s: %w", topic, ErrNoTopic)
		}
		if t.Error != nil {
			return fmt.Errorf("metadata of %s: %w", topic, t.Error)
		}
		return nil
	}
	return fmt.Errorf("%s: %w", topic, ErrNoTopic)
}
