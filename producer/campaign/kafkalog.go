package campaign

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/segmentio/kafka-go"
)

// Log is the command topic read back, which lets a campaign resumed after
// a hard crash find the commands of the batch that was in flight and not
// publish them again.
type Log interface {
	// Ends returns the end offset (the offset the next message will get)
	// of every partition of topic. A message acknowledged before Ends was
	// called lies below them; one sent afterwards lies at or above them.
	Ends(ctx context.Context, topic string) (map[int]int64, error)
	// Scan calls fn with the value of every message of topic from the
	// offsets in from up to the partitions' ends at the time of the call.
	// Partitions missing from from are scanned from their start.
	Scan(ctx context.Context, topic string, from map[int]int64, fn func(value []byte)) error
}

// KafkaLog reads a topic with kafka-go's Client, outside any consumer
// group: it commits nothing.
type KafkaLog struct {
	client *kafka.Client
}

var _ Log = (*KafkaLog)(nil)

// NewKafkaLog returns a Log over the brokers, connecting through transport
// (nil: kafka-go's default, plaintext).
func NewKafkaLog(brokers []string, transport kafka.RoundTripper) *KafkaLog {
	return &KafkaLog{client: &kafka.Client{Addr: kafka.TCP(brokers...), Transport: transport, Timeout: 30 * time.Second}}
}

func (l *KafkaLog) partitions(ctx context.Context, topic string) ([]int, error) {
	md, err := l.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("reading metadata of %s: %w", topic, err)
	}
	for _, t := range md.Topics {
		if t.Name != topic {
			continue
		}
		if t.Error != nil {
			return nil, fmt.Errorf("reading metadata of %s: %w", topic, t.Error)
		}
		ps := make([]int, 0, len(t.Partitions))
		for _, p := range t.Partitions {
			ps = append(ps, p.ID)
		}
		return ps, nil
	}
	return nil, fmt.Errorf("reading metadata of %s: topic not found", topic)
}

func (l *KafkaLog) offsets(ctx context.Context, topic string) ([]kafka.PartitionOffsets, error) {
	ps, err := l.partitions(ctx, topic)
	if err != nil {
		return nil, err
	}
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for _, p := range ps {
		req.Topics[topic] = append(req.Topics[topic], kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p))
	}
	resp, err := l.client.ListOffsets(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("listing offsets of %s: %w", topic, err)
	}
	out := resp.Topics[topic]
	for _, p := range out {
		if p.Error != nil {
			return nil, fmt.Errorf("listing offsets of %s/%d: %w", topic, p.Partition, p.Error)
		}
	}
	return out, nil
}

// Ends implements Log.
func (l *KafkaLog) Ends(ctx context.Context, topic string) (map[int]int64, error) {
	offs, err := l.offsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	ends := make(map[int]int64, len(offs))
	for _, p := range offs {
		ends[p.Partition] = p.LastOffset
	}
	return ends, nil
}

// Scan implements Log.
func (l *KafkaLog) Scan(ctx context.Context, topic string, from map[int]int64, fn func(value []byte)) error {
	offs, err := l.offsets(ctx, topic)
	if err != nil {
		return err
	}
	for _, p := range offs {
		offset := max(from[p.Partition], p.FirstOffset)
		for offset < p.LastOffset {
			next, err := l.fetch(ctx, topic, p.Partition, offset, fn)
			if err != nil {
				return err
			}
			if next <= offset {
				return fmt.Errorf("reading %s/%d at %d: no progress", topic, p.Partition, offset)
			}
			offset = next
		}
	}
	return nil
}

// fetch reads one response's worth from offset and returns the offset
// after the last message it saw.
func (l *KafkaLog) fetch(ctx context.Context, topic string, partition int, offset int64, fn func([]byte)) (int64, error) {
	resp, err := l.client.Fetch(ctx, &kafka.FetchRequest{
		Topic: topic, Partition: partition, Offset: offset, MinBytes: 1, MaxBytes: 8 << 20, MaxWait: 100 * time.Millisecond,
	})
	if err == nil {
		err = resp.Error
	}
	if err != nil {
		return offset, fmt.Errorf("reading %s/%d at %d: %w", topic, partition, offset, err)
	}
	next := offset
	for {
		rec, err := resp.Records.ReadRecord()
		if errors.Is(err, io.EOF) {
			return next, nil
		}
		if err != nil {
			return next, fmt.Errorf("reading %s/%d at %d: %w", topic, partition, next, err)
		}
		if rec.Offset < offset {
			continue
		}
		var value []byte
		if rec.Value != nil {
			if value, err = io.ReadAll(rec.Value); err != nil {
				return next, fmt.Errorf("reading %s/%d at %d: %w", topic, partition, rec.Offset, err)
			}
		}
		fn(value)
		next = rec.Offset + 1
	}
}

// publishedSince returns the ids of the campaign's commands that the log
// holds past the checkpoint's marks: commands whose publication raced the
// crash that stopped the previous run. Other messages (other campaigns,
// detections) are read and ignored.
func (r *Runner) publishedSince(ctx context.Context, st *State) (map[string]bool, error) {
	if r.kafkaLog == nil || st.Marks == nil {
		return nil, nil
	}
	issuer := IssuerPrefix + st.CampaignID
	found := make(map[string]bool)
	var head struct {
		CommandID string `json:"command_id"`
		Issuer    string `json:"issuer"`
	}
	err := r.kafkaLog.Scan(ctx, r.topic, st.Marks, func(v []byte) {
		head.CommandID, head.Issuer = "", ""
		if json.Unmarshal(v, &head) == nil && head.Issuer == issuer {
			found[head.CommandID] = true
		}
	})
	if err != nil {
		return nil, fmt.Errorf("reading back the commands published since the checkpoint: %w", err)
	}
	return found, nil
}
