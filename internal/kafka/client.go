package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/segmentio/kafka-go"
)

// ErrNoTopic means a topic does not exist.
var ErrNoTopic = errors.New("topic does not exist")

// Range is offsets [First, End) of one partition: First is the oldest
// offset the partition still holds and End the offset the next message
// written to it will get.
type Range struct {
	Partition  int
	First, End int64
}

// Client reads partitions of topics outside any consumer group (from a
// point in time, between two offsets, or following the tail) and makes
// the few admin calls the project needs. It commits nothing. It connects
// lazily and is safe for concurrent use.
//
// Its metadata (Partitions, CheckTopic) comes from a cache that kafka-go
// refreshes every few seconds; use Fresh for a sequence of admin calls
// that must see its own changes.
type Client struct {
	brokers   []string
	sec       Security
	clientID  string
	transport *kafka.Transport
	dialer    *kafka.Dialer
	client    *kafka.Client
}

// NewClient returns a Client for brokers, connecting with sec and naming
// itself clientID to the brokers.
func NewClient(brokers []string, sec Security, clientID string) (*Client, error) {
	if len(brokers) == 0 {
		return nil, errors.New("kafka client: no brokers")
	}
	transport, err := sec.NewTransport(clientID)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	dialer, err := sec.NewDialer(clientID)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	return &Client{
		brokers:   brokers,
		sec:       sec,
		clientID:  clientID,
		transport: transport,
		dialer:    dialer,
		client:    &kafka.Client{Addr: kafka.TCP(brokers...), Transport: transport, Timeout: 30 * time.Second},
	}, nil
}

// Fresh returns a Client with c's settings and a connection pool (and so
// a metadata cache) of its own, which sees topics and partitions created
// after c looked them up. Close it when done.
func (c *Client) Fresh() (*Client, error) { return NewClient(c.brokers, c.sec, c.clientID) }

// Close releases the Client's idle connections. Reads in progress finish.
func (c *Client) Close() { c.transport.CloseIdleConnections() }

// Partitions returns the partition ids of topic in ascending order, and an
// error wrapping ErrNoTopic when the topic does not exist.
func (c *Client) Partitions(ctx context.Context, topic string) ([]int, error) {
	md, err := c.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("metadata of %s: %w", topic, err)
	}
	for _, t := range md.Topics {
		if t.Name != topic {
			continue
		}
		if errors.Is(t.Error, kafka.UnknownTopicOrPartition) {
			return nil, fmt.Errorf("%s: %w", topic, ErrNoTopic)
		}
		if t.Error != nil {
			return nil, fmt.Errorf("metadata of %s: %w", topic, t.Error)
		}
		ps := make([]int, 0, len(t.Partitions))
		for _, p := range t.Partitions {
			ps = append(ps, p.ID)
		}
		slices.Sort(ps)
		return ps, nil
	}
	return nil, fmt.Errorf("%s: %w", topic, ErrNoTopic)
}

// CheckTopic returns nil when topic exists, an error wrapping ErrNoTopic
// when it does not, and any other error when the brokers could not tell.
// It suits ops.Server.AddCheck.
func (c *Client) CheckTopic(ctx context.Context, topic string) error {
	_, err := c.Partitions(ctx, topic)
	return err
}

// Ranges returns the Range of every partition of topic, in partition
// order, as of the call; an error wraps ErrNoTopic when the topic does not
// exist. Offsets are those a read-committed reader sees.
func (c *Client) Ranges(ctx context.Context, topic string) ([]Range, error) {
	ps, err := c.Partitions(ctx, topic)
	if err != nil {
		return nil, err
	}
	return c.ranges(ctx, topic, ps)
}

// Bounds returns the first offset of a partition and the offset the next
// message written to it will get.
func (c *Client) Bounds(ctx context.Context, topic string, partition int) (first, end int64, err error) {
	rs, err := c.ranges(ctx, topic, []int{partition})
	if err != nil {
		return 0, 0, err
	}
	return rs[0].First, rs[0].End, nil
}

// Ends returns the end offset (the offset the next message will get) of
// every partition of topic. A message acknowledged before Ends was called
// lies below them; one sent afterwards lies at or above them. An error
// wraps ErrNoTopic when the topic does not exist.
func (c *Client) Ends(ctx context.Context, topic string) (map[int]int64, error) {
	rs, err := c.Ranges(ctx, topic)
	if err != nil {
		return nil, err
	}
	ends := make(map[int]int64, len(rs))
	for _, r := range rs {
		ends[r.Partition] = r.End
	}
	return ends, nil
}

// ranges lists the first and end offsets of partitions of topic in one
// request, and returns them in partition order.
func (c *Client) ranges(ctx context.Context, topic string, partitions []int) ([]Range, error) {
	if len(partitions) == 0 {
		return nil, nil
	}
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}, IsolationLevel: kafka.ReadCommitted}
	for _, p := range partitions {
		req.Topics[topic] = append(req.Topics[topic], kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p))
	}
	resp, err := c.client.ListOffsets(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("listing offsets of %s: %w", topic, err)
	}
	out := make([]Range, 0, len(partitions))
	for _, p := range partitions {
		po, err := partitionOffsets(resp, topic, p)
		if err != nil {
			return nil, err
		}
		out = append(out, Range{Partition: p, First: po.FirstOffset, End: po.LastOffset})
	}
	slices.SortFunc(out, func(a, b Range) int { return a.Partition - b.Partition })
	return out, nil
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

// rangeMaxWait is how long a broker holds a fetch of a Read: the data is
// there already, so a short wait only bounds the last, empty fetch.
const rangeMaxWait = 50 * time.Millisecond

// Read calls fn with the messages of a partition from offset from up to,
// not including, offset end, in order, and returns how many it read. A
// message at or beyond end-1 must exist (end is at most the partition's
// end offset, or a message is known to be there),
// since that is how Read knows it is done when offsets have gaps
// (compaction, transaction markers). An error from fn stops the read and
// is returned. ctx bounds the whole read.
func (c *Client) Read(ctx context.Context, topic string, partition int, from, end int64, fn func(Message) error) (int, error) {
	if from >= end {
		return 0, nil
	}
	n := 0
	var fnErr error
	_, err := c.fetch(ctx, topic, partition, from, rangeMaxWait, func(m Message) (bool, error) {
		if m.Offset >= end {
			return false, nil
		}
		n++
		if fnErr = fn(m); fnErr != nil {
			return false, nil
		}
		return m.Offset < end-1, nil
	})
	if fnErr != nil {
		return n, fnErr
	}
	if err != nil {
		return n, fmt.Errorf("reading %s/%d from %d (%d read): %w", topic, partition, from, n, err)
	}
	return n, nil
}

// ReadTopic returns every message topic holds now, partition by partition
// in offset order. A topic that does not exist holds nothing. It suits
// small topics, not a busy one.
func (c *Client) ReadTopic(ctx context.Context, topic string) ([]Message, error) {
	rs, err := c.Ranges(ctx, topic)
	if errors.Is(err, ErrNoTopic) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Message
	for _, r := range rs {
		_, err := c.Read(ctx, topic, r.Partition, r.First, r.End, func(m Message) error {
			out = append(out, m)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Tail calls fn with every message of a partition from offset from on,
// waiting for new ones, until ctx is done or a read fails. It returns the
// offset after the last message it passed to fn (from if none) and the
// error that stopped it, ctx's included, so that a caller can resume.
// Broker waits are the consumer group reader's (DefaultReaderConfig), as
// a tail spends most of its time on an idle partition.
func (c *Client) Tail(ctx context.Context, topic string, partition int, from int64, fn func(Message)) (int64, error) {
	return c.fetch(ctx, topic, partition, from, DefaultReaderConfig().MaxWait, func(m Message) (bool, error) {
		fn(m)
		return true, nil
	})
}

// FetchAt returns the message at offset of a partition, and an error when
// the partition no longer holds that offset (it returns the next message
// then, and the error says which offset it found).
func (c *Client) FetchAt(ctx context.Context, topic string, partition int, offset int64) (Message, error) {
	var got Message
	_, err := c.fetch(ctx, topic, partition, offset, 100*time.Millisecond, func(m Message) (bool, error) {
		got = m
		return false, nil
	})
	if err != nil {
		return Message{}, fmt.Errorf("reading %s[%d]@%d: %w", topic, partition, offset, err)
	}
	if got.Offset != offset {
		return Message{}, fmt.Errorf("reading %s[%d]@%d: the offset is gone (got %d)", topic, partition, offset, got.Offset)
	}
	return got, nil
}

// fetch reads a partition from offset from with a kafka-go reader outside
// any consumer group, calling fn with each message until fn says to stop
// or fails, or a fetch fails. It returns the offset after the last
// message passed to fn.
func (c *Client) fetch(ctx context.Context, topic string, partition int, from int64, maxWait time.Duration, fn func(Message) (bool, error)) (int64, error) {
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:   c.brokers,
		Topic:     topic,
		Partition: partition,
		Dialer:    c.dialer,
		MinBytes:  1,
		MaxBytes:  10 << 20,
		// kafka-go gives the broker only 3/4 of MaxWait below a second,
		// so a tail's wait is the reader's own (see FetchWaits).
		MaxWait:        maxWait,
		IsolationLevel: kafka.ReadCommitted,
	})
	defer func() { _ = r.Close() }()
	if err := r.SetOffset(from); err != nil {
		return from, err
	}
	next := from
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			return next, err
		}
		next = m.Offset + 1
		more, err := fn(m)
		if err != nil || !more {
			return next, err
		}
	}
}
