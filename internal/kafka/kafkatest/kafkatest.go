// Package kafkatest starts the embedded Kafka-protocol broker for a test
// and offers helpers to produce to it and inspect it: what a topic holds and
// what a consumer group committed.
//
//	c := kafkatest.New(t, schemas.TopicRevokeCommands, schemas.TopicDLQ)
//	cfg := c.ReaderConfig(schemas.TopicRevokeCommands, "consumer")
//	r, err := kafkax.NewReader(cfg, zerolog.Nop(), nil)
//
// The broker listens on 127.0.0.1 on a free port and is closed by
// t.Cleanup.
package kafkatest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/kafka/broker"
)

// waitTimeout bounds the helpers that wait for the broker to reach a state.
const waitTimeout = 20 * time.Second

// Cluster is a running embedded broker.
type Cluster struct {
	// Brokers are the bootstrap addresses to give clients.
	Brokers []string
	b       *broker.Broker
}

// New starts a broker with topics, each with one partition, so that a
// topic's messages have one total order. Use NewWithPartitions for more.
func New(t testing.TB, topics ...string) *Cluster {
	t.Helper()
	m := make(map[string]int, len(topics))
	for _, name := range topics {
		m[name] = 1
	}
	return NewWithPartitions(t, m)
}

// NewWithPartitions starts a broker with topics, name to partition count.
// Topics created later without a count get one partition.
func NewWithPartitions(t testing.TB, topics map[string]int) *Cluster {
	t.Helper()
	b, err := broker.Start(context.Background(), broker.Config{
		Addr:              "127.0.0.1:0",
		Topics:            topics,
		DefaultPartitions: 1,
	})
	if err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
	t.Cleanup(b.Close)
	return &Cluster{Brokers: []string{b.Addr()}, b: b}
}

// Addr is the broker's host:port.
func (c *Cluster) Addr() string { return c.b.Addr() }

// Fake returns the kfake cluster behind the broker, to inspect requests or
// inject failures with its Control functions.
func (c *Cluster) Fake() *kfake.Cluster { return c.b.Fake() }

// ReaderConfig returns a reader configuration for topic and group that
// suits tests: component "test", dead letters to schemas.TopicDLQ (create
// it to use it), short
// fetch waits, fast retries, commits every 10 ms and a 5 s shutdown.
func (c *Cluster) ReaderConfig(topic, group string) kafkax.ReaderConfig {
	cfg := kafkax.DefaultReaderConfig()
	cfg.Brokers = c.Brokers
	cfg.Topic = topic
	cfg.GroupID = group
	cfg.Component = "test"
	cfg.MaxWait = 10 * time.Millisecond
	cfg.CommitInterval = 10 * time.Millisecond
	cfg.ShutdownTimeout = 5 * time.Second
	cfg.RetryMin = 5 * time.Millisecond
	cfg.RetryMax = 50 * time.Millisecond
	cfg.SessionTimeout = 6 * time.Second // the broker's minimum
	cfg.HeartbeatInterval = 200 * time.Millisecond
	cfg.RebalanceTimeout = 5 * time.Second
	return cfg
}

// WriterConfig returns a writer configuration for topic (empty: messages
// name their topic).
func (c *Cluster) WriterConfig(topic string) kafkax.WriterConfig {
	cfg := kafkax.DefaultWriterConfig()
	cfg.Brokers = c.Brokers
	cfg.Topic = topic
	cfg.BatchTimeout = time.Millisecond
	return cfg
}

// CreateTopic creates topic with partitions unless it exists.
func (c *Cluster) CreateTopic(t testing.TB, topic string, partitions int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := kafkax.EnsureTopics(ctx, c.Brokers, kafkax.Security{}, map[string]int{topic: partitions}); err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
}

// Produce writes msgs to topic through a kafkax.Writer, so keyed messages
// land where production code would put them.
func (c *Cluster) Produce(t testing.TB, topic string, msgs ...kafka.Message) {
	t.Helper()
	w, err := kafkax.NewWriter(c.WriterConfig(topic), zerolog.Nop())
	if err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
	defer func() { _ = w.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("kafkatest: producing to %s: %v", topic, err)
	}
}

// ProduceTo writes msgs to one partition of topic, in order.
func (c *Cluster) ProduceTo(t testing.TB, topic string, partition int, msgs ...kafka.Message) {
	t.Helper()
	w := &kafka.Writer{
		Addr:         kafka.TCP(c.Brokers...),
		Topic:        topic,
		Balancer:     fixedPartition(partition),
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: time.Millisecond,
	}
	defer func() { _ = w.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("kafkatest: producing to %s/%d: %v", topic, partition, err)
	}
}

// WriteTo writes m alone to one partition of topic once, without retries
// and with a client-side batch limit of 4 MiB, above what the broker takes
// by default, so that the broker decides whether m is too large. It
// returns the write's error, which wraps a kafkax.WriteErrors when the
// broker refused m.
func (c *Cluster) WriteTo(ctx context.Context, topic string, partition int, m kafka.Message) error {
	w := &kafka.Writer{
		Addr:         kafka.TCP(c.Brokers...),
		Topic:        topic,
		Balancer:     fixedPartition(partition),
		RequiredAcks: kafka.RequireAll,
		BatchBytes:   4 << 20,
		BatchTimeout: time.Millisecond,
		MaxAttempts:  1,
	}
	defer func() { _ = w.Close() }()
	return w.WriteMessages(ctx, m)
}

// WaitStableGroup waits until group is stable with n members, failing
// the test after 20 seconds.
func (c *Cluster) WaitStableGroup(t testing.TB, group string, n int) {
	t.Helper()
	var last string
	err := c.poll(func(ctx context.Context) (bool, error) {
		var resp *kafka.DescribeGroupsResponse
		err := c.withClient(func(cl *kafka.Client) (err error) {
			resp, err = cl.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{group}})
			return err
		})
		switch {
		case err != nil:
			last = err.Error()
		case len(resp.Groups) != 1:
			last = fmt.Sprintf("%d groups", len(resp.Groups))
		default:
			g := resp.Groups[0]
			last = fmt.Sprintf("state %s, %d members", g.GroupState, len(g.Members))
			return g.GroupState == "Stable" && len(g.Members) == n, nil
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("group %s: want stable with %d members, have %s (%v)", group, n, last, err)
	}
}

type fixedPartition int

func (p fixedPartition) Balance(_ kafka.Message, partitions ...int) int {
	if slices.Contains(partitions, int(p)) {
		return int(p)
	}
	return partitions[0]
}

// Partitions returns the partition ids of topic.
func (c *Cluster) Partitions(t testing.TB, topic string) []int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	ps, err := c.partitions(ctx, topic)
	if err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
	return ps
}

// withClient calls fn with a client of its own. kafka-go transports answer
// metadata requests from a cache refreshed every six seconds, so a shared
// one would not see topics created meanwhile.
func (c *Cluster) withClient(fn func(*kafka.Client) error) error {
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	return fn(&kafka.Client{Addr: kafka.TCP(c.Brokers...), Timeout: waitTimeout, Transport: tr})
}

func (c *Cluster) partitions(ctx context.Context, topic string) ([]int, error) {
	var md *kafka.MetadataResponse
	err := c.withClient(func(cl *kafka.Client) (err error) {
		md, err = cl.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("metadata of %s: %w", topic, err)
	}
	for _, tm := range md.Topics {
		if tm.Name != topic {
			continue
		}
		if tm.Error != nil {
			return nil, fmt.Errorf("metadata of %s: %w", topic, tm.Error)
		}
		var ps []int
		for _, p := range tm.Partitions {
			ps = append(ps, p.ID)
		}
		slices.Sort(ps)
		return ps, nil
	}
	return nil, fmt.Errorf("metadata of %s: topic missing", topic)
}

// Records returns every message topic holds now, partition by partition in
// offset order.
func (c *Cluster) Records(t testing.TB, topic string) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	msgs, err := c.records(ctx, topic)
	if err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
	return msgs
}

func (c *Cluster) records(ctx context.Context, topic string) ([]kafka.Message, error) {
	ps, err := c.partitions(ctx, topic)
	if err != nil {
		return nil, err
	}
	// A Client of its own per call: its metadata cache would not see
	// partitions added meanwhile.
	cl, err := kafkax.NewClient(c.Brokers, kafkax.Security{}, "kafkatest")
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var out []kafka.Message
	for _, p := range ps {
		first, end, err := cl.Bounds(ctx, topic, p)
		if err != nil {
			return nil, err
		}
		_, err = cl.Read(ctx, topic, p, first, end, func(m kafka.Message) error {
			out = append(out, m)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// WaitRecords waits until topic holds at least n messages and returns them
// all, failing the test when that takes longer than 20 seconds.
func (c *Cluster) WaitRecords(t testing.TB, topic string, n int) []kafka.Message {
	t.Helper()
	var last []kafka.Message
	err := c.poll(func(ctx context.Context) (bool, error) {
		msgs, err := c.records(ctx, topic)
		last = msgs
		return len(msgs) >= n, err
	})
	if err != nil {
		t.Fatalf("kafkatest: waiting for %d messages in %s (have %d): %v", n, topic, len(last), err)
	}
	return last
}

// Committed returns the offsets group has committed for topic, by
// partition; partitions without a commit are left out.
func (c *Cluster) Committed(t testing.TB, group, topic string) map[int]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	got, err := c.committed(ctx, group, topic)
	if err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
	return got
}

func (c *Cluster) committed(ctx context.Context, group, topic string) (map[int]int64, error) {
	ps, err := c.partitions(ctx, topic)
	if err != nil {
		return nil, err
	}
	var resp *kafka.OffsetFetchResponse
	err = c.withClient(func(cl *kafka.Client) (err error) {
		resp, err = cl.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ps}})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("fetching offsets of group %s: %w", group, err)
	}
	out := map[int]int64{}
	if errors.Is(resp.Error, kafka.GroupIdNotFound) {
		return out, nil // kfake's answer for a group that never committed
	}
	if resp.Error != nil {
		return nil, fmt.Errorf("fetching offsets of group %s: %w", group, resp.Error)
	}
	for _, p := range resp.Topics[topic] {
		if p.Error != nil {
			return nil, fmt.Errorf("fetching offsets of group %s, %s/%d: %w", group, topic, p.Partition, p.Error)
		}
		if p.CommittedOffset >= 0 {
			out[p.Partition] = p.CommittedOffset
		}
	}
	return out, nil
}

// WaitCommitted waits until group has committed want (partition to next
// offset) for topic, failing the test after 20 seconds.
func (c *Cluster) WaitCommitted(t testing.TB, group, topic string, want map[int]int64) {
	t.Helper()
	var last map[int]int64
	err := c.poll(func(ctx context.Context) (bool, error) {
		got, err := c.committed(ctx, group, topic)
		last = got
		for p, o := range want {
			if got[p] != o {
				return false, err
			}
		}
		return true, err
	})
	if err != nil {
		t.Fatalf("kafkatest: waiting for group %s to commit %v on %s (have %v): %v", group, want, topic, last, err)
	}
}

// poll calls cond every 20 ms until it reports true, for up to
// waitTimeout. Errors from cond are retried, the last one is returned on
// timeout.
func (c *Cluster) poll(cond func(ctx context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	var lastErr error
	for {
		ok, err := cond(ctx)
		if err == nil && ok {
			return nil
		}
		if err != nil {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), lastErr)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
