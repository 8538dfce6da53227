package campaign

import (
	"context"
	"encoding/json"
	"fmt"

	kafkax "github.com/revoked-dev/revoked/internal/kafka"
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

// KafkaLog is a Log over a kafkax.Client, outside any consumer group: it
// commits nothing.
type KafkaLog struct {
	client *kafkax.Client
}

var _ Log = (*KafkaLog)(nil)

// NewKafkaLog returns a Log that reads through client.
func NewKafkaLog(client *kafkax.Client) *KafkaLog {
	return &KafkaLog{client: client}
}

// Ends implements Log.
func (l *KafkaLog) Ends(ctx context.Context, topic string) (map[int]int64, error) {
	return l.client.Ends(ctx, topic)
}

// Scan implements Log.
func (l *KafkaLog) Scan(ctx context.Context, topic string, from map[int]int64, fn func(value []byte)) error {
	ranges, err := l.client.Ranges(ctx, topic)
	if err != nil {
		return err
	}
	for _, r := range ranges {
		_, err := l.client.Read(ctx, topic, r.Partition, max(from[r.Partition], r.First), r.End, func(m kafkax.Message) error {
			fn(m.Value)
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
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
