package kafka

import (
	"context"
	"fmt"
	"slices"

	"github.com/segmentio/kafka-go"
)

// ReadPartitions reads every record the given partitions of topic hold
// now, partition by partition in partition order, without a consumer
// group and without committing anything. client lists the offsets; each
// partition is read by a kafka-go reader built from base with Topic and
// Partition set (Brokers, Dialer, MaxWait, IsolationLevel come from base).
// It blocks until every partition was read to its end as of the call or
// ctx is done.
func ReadPartitions(ctx context.Context, client *kafka.Client, base kafka.ReaderConfig, topic string, partitions []int) ([]kafka.Message, error) {
	if len(partitions) == 0 {
		return nil, nil
	}
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}, IsolationLevel: base.IsolationLevel}
	for _, p := range partitions {
		req.Topics[topic] = append(req.Topics[topic], kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p))
	}
	offs, err := client.ListOffsets(ctx, req)
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
		cfg := base
		cfg.Topic, cfg.Partition = topic, p.Partition
		msgs, err := ReadRange(ctx, cfg, p.FirstOffset, p.LastOffset)
		if err != nil {
			return nil, err
		}
		out = append(out, msgs...)
	}
	return out, nil
}

// ReadRange reads offsets [first, end) of the partition cfg names. Offsets
// missing from the range (compacted away, or transaction markers) are
// skipped; it returns at the first record at or past end.
func ReadRange(ctx context.Context, cfg kafka.ReaderConfig, first, end int64) ([]kafka.Message, error) {
	r := kafka.NewReader(cfg)
	defer func() { _ = r.Close() }()
	if err := r.SetOffset(first); err != nil {
		return nil, fmt.Errorf("reading %s/%d: %w", cfg.Topic, cfg.Partition, err)
	}
	var out []kafka.Message
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			return nil, fmt.Errorf("reading %s/%d at %d: %w", cfg.Topic, cfg.Partition, first+int64(len(out)), err)
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
