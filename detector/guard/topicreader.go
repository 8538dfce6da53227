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
	return kafkax.ReadPartitions(ctx, r.client, kafka.ReaderConfig{
		Brokers:        r.brokers,
		Dialer:         r.dialer,
		MinBytes:       1,
		MaxBytes:       10 << 20,
		MaxWait:        50 * time.Millisecond,
		IsolationLevel: kafka.ReadCommitted,
	}, topic, parts)
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
