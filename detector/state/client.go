package state

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	kafkax "github.com/revoked-dev/revoked/internal/kafka"
)

// Client reads partitions of a topic outside any consumer group: from a
// point in time, or between two offsets. It commits nothing. It is safe
// for concurrent use.
type Client struct {
	brokers   []string
	sec       kafkax.Security
	clientID  string
	transport *kafka.Transport
	dialer    *kafka.Dialer
	client    *kafka.Client
}

// NewClient returns a Client for brokers. It connects lazily.
func NewClient(brokers []string, sec kafkax.Security, clientID string) (*Client, error) {
	if len(brokers) == 0 {
		return nil, errors.New("state: no brokers")
	}
	transport, err := sec.NewTransport(clientID)
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	dialer, err := sec.NewDialer(clientID)
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	return &Client{
		brokers:   brokers,
		sec:       sec,
		clientID:  clientID,
		transport: transport,
		dialer:    dialer,
		client:    &kafka.Client{Addr: kafka.TCP(brokers...), Transport: transport},
	}, nil
}

// Close releases the Client's idle connections.
func (c *Client) Close() { c.transport.CloseIdleConnections() }

// Partitions returns the number of partitions of topic; 0 when it does
// not exist.
func (c *Client) Partitions(ctx context.Context, topic string) (int, error) {
	n, err := partitionCount(ctx, c.client, topic)
	return max(n, 0), err
}

// Bounds returns the first offset of a partition and the offset the next
// message written to it will get.
func (c *Client) Bounds(ctx context.Context, topic string, partition int) (first, end int64, err error) {
	resp, err := c.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{
		Topics:         map[string][]kafka.OffsetRequest{topic: {kafka.FirstOffsetOf(partition), kafka.LastOffsetOf(partition)}},
		IsolationLevel: kafka.ReadCommitted,
	})
	if err != nil {
		return 0, 0, fmt.Errorf("listing offsets of %s/%d: %w", topic, partition, err)
	}
	po, err := partitionOffsets(resp, topic, partition)
	if err != nil {
		return 0, 0, err
	}
	return po.FirstOffset, po.LastOffset, nil
}

// OffsetAt returns the offset of the first message of a partition stamped
// at or after t (by its Kafka timestamp), and false when there is none.
func (c *Client) OffsetAt(ctx context.Context, topic string, partition int, t time.Time) (int64, bool, error) {
	resp, err := c.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{
		Topics:         map[string][]kafka.OffsetRequest{topic: {kafka.TimeOffsetOf(partition, t)}},
		IsolationLevel: kafka.ReadCommitted,
	})
	if err != nil {
		return 0, false, fmt.Errorf("looking up the offset of %s/%d at %s: %w", topic, partition, t.UTC().Format(time.RFC3339), err)
	}
	po, err := partitionOffsets(resp, topic, partition)
	if err != nil {
		return 0, false, err
	}
	// kafka-go files a found offset under Offsets; "none at or after t"
	// comes back as offset -1 with timestamp -1, which it files as
	// LastOffset.
	for off := range po.Offsets {
		if off >= 0 {
			return off, true, nil
		}
	}
	return 0, false, nil
}

func partitionOffsets(resp *kafka.ListOffsetsResponse, topic string, partition int) (kafka.PartitionOffsets, error) {
	for _, po := range resp.Topics[topic] {
		if po.Partition != partition {
			continue
		}
		if po.Error != nil {
			return po, fmt.Errorf("listing offsets of %s/%d: %w", topic, partition, po.Error)
		}
		return po, nil
	}
	return kafka.PartitionOffsets{}, fmt.Errorf("listing offsets of %s/%d: partition missing from the answer", topic, partition)
}

// Read calls fn with the messages of a partition from offset from up to,
// not including, offset end, in order, and returns how many it read. A
// message at or beyond end must exist (end is at most the partition's end
// offset less one, or a message is known to be there), since that is how
// Read knows it is done when offsets have gaps (compaction, transaction
// markers). An error from fn stops the read and is returned. ctx bounds
// the whole read.
func (c *Client) Read(ctx context.Context, topic string, partition int, from, end int64, fn func(kafka.Message) error) (int, error) {
	if from >= end {
		return 0, nil
	}
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:        c.brokers,
		Topic:          topic,
		Partition:      partition,
		Dialer:         c.dialer,
		MinBytes:       1,
		MaxBytes:       10 << 20,
		MaxWait:        50 * time.Millisecond,
		IsolationLevel: kafka.ReadCommitted,
	})
	defer func() { _ = r.Close() }()
	if err := r.SetOffset(from); err != nil {
		return 0, fmt.Errorf("reading %s/%d from %d: %w", topic, partition, from, err)
	}
	n := 0
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			return n, fmt.Errorf("reading %s/%d from %d (%d read): %w", topic, partition, from, n, err)
		}
		if m.Offset >= end {
			return n, nil
		}
		n++
		if err := fn(m); err != nil {
			return n, err
		}
		if m.Offset >= end-1 {
			return n, nil
		}
	}
}
