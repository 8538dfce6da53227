package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/revoked-dev/revoked/internal/config"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/kafka/kafkatest"
	"github.com/revoked-dev/revoked/internal/testenv"
	"github.com/revoked-dev/revoked/schemas"
)

const topic = "in"

// running is a Reader's Run in a goroutine.
type running struct {
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

func start(t *testing.T, r *kafkax.Reader, h kafkax.Handler) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	rn := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { rn.done <- r.Run(ctx, h) }()
	t.Cleanup(func() { _ = rn.stop(t) })
	return rn
}

// stop cancels Run and returns what it returned.
func (rn *running) stop(t *testing.T) error {
	t.Helper()
	rn.cancel()
	return rn.wait(t)
}

// wait returns what Run returned, without cancelling it.
func (rn *running) wait(t *testing.T) error {
	t.Helper()
	rn.once.Do(func() {
		select {
		case rn.err = <-rn.done:
		case <-time.After(30 * time.Second):
			rn.err = errors.New("Run did not return within 30s")
		}
	})
	return rn.err
}

func newReader(t *testing.T, cfg kafkax.ReaderConfig, metrics *kafkax.ReaderMetrics) *kafkax.Reader {
	t.Helper()
	r, err := kafkax.NewReader(cfg, zerolog.Nop(), metrics)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func values(prefix string, n int) []kafka.Message {
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{Key: []byte(prefix), Value: []byte(prefix + "-" + strconv.Itoa(i))}
	}
	return msgs
}

// waitFor fails the test unless ch is closed within 20 seconds.
func waitFor(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(20 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func header(m kafka.Message, key string) (string, int) {
	var v string
	n := 0
	for _, h := range m.Headers {
		if h.Key == key {
			v = string(h.Value)
			n++
		}
	}
	return v, n
}

func TestTransientFailuresAreRetriedInPlace(t *testing.T) {
	c := kafkatest.New(t, topic, schemas.TopicDLQ)
	c.ProduceTo(t, topic, 0, values("m", 5)...)

	reg := prometheus.NewRegistry()
	metrics, err := kafkax.NewReaderMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	r := newReader(t, c.ReaderConfig(topic, "g"), metrics)

	var mu sync.Mutex
	var handled []string
	attempts := map[string]int{}
	var committedWhileFailing []int64
	done := make(chan struct{})
	rn := start(t, r, func(_ context.Context, m kafka.Message) error {
		v := string(m.Value)
		mu.Lock()
		defer mu.Unlock()
		attempts[v]++
		if v == "m-2" && attempts[v] <= 3 {
			committedWhileFailing = append(committedWhileFailing, c.Committed(t, "g", topic)[0])
			return errors.New("token API unavailable")
		}
		handled = append(handled, v)
		if len(handled) == 5 {
			close(done)
		}
		return nil
	})
	waitFor(t, done, "all messages handled")
	c.WaitCommitted(t, "g", topic, map[int]int64{0: 5})
	if err := rn.stop(t); err != nil {
		t.Fatalf("Run = %v", err)
	}

	if want := []string{"m-0", "m-1", "m-2", "m-3", "m-4"}; !slices.Equal(handled, want) {
		t.Fatalf("handled %v, want %v", handled, want)
	}
	if attempts["m-2"] != 4 || attempts["m-3"] != 1 {
		t.Fatalf("attempts = %v", attempts)
	}
	for _, off := range committedWhileFailing {
		if off > 2 {
			t.Fatalf("offset %d committed while message 2 was failing", off)
		}
	}
	if got := len(c.Records(t, schemas.TopicDLQ)); got != 0 {
		t.Fatalf("%d messages dead-lettered, want none", got)
	}
	if got := counterValue(t, reg, "revoked_kafka_reader_handler_retries_total"); got != 3 {
		t.Fatalf("retries metric = %v, want 3", got)
	}
	if got := counterValue(t, reg, "revoked_kafka_reader_messages_handled_total"); got != 5 {
		t.Fatalf("handled metric = %v, want 5", got)
	}
}

// counterValue gathers the single series of a counter family from reg.
func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

func TestRestartRedeliversExactlyTheUncommitted(t *testing.T) {
	c := kafkatest.NewWithPartitions(t, map[string]int{topic: 2, schemas.TopicDLQ: 1})
	c.ProduceTo(t, topic, 0, values("p0", 20)...)
	c.ProduceTo(t, topic, 1, values("p1", 20)...)
	all := map[string]bool{}
	for _, m := range append(values("p0", 20), values("p1", 20)...) {
		all[string(m.Value)] = true
	}

	// The first run stops in the middle of partition 0: the handler of
	// p0-10 cancels the run and fails, so p0-10 is not terminal.
	var mu sync.Mutex
	first := map[string]int{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r1 := newReader(t, c.ReaderConfig(topic, "g"), nil)
	err := r1.Run(ctx, func(_ context.Context, m kafka.Message) error {
		v := string(m.Value)
		if v == "p0-10" {
			cancel()
			return errors.New("interrupted")
		}
		mu.Lock()
		first[v]++
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatalf("first Run = %v", err)
	}
	if first["p0-9"] != 1 || first["p0-10"] != 0 {
		t.Fatalf("first run handled %v", slices.Sorted(maps.Keys(first)))
	}
	// The shutdown committed everything terminal: partition 0 up to
	// p0-10 and partition 1 up to the last message handled there.
	p1 := 0
	for v := range first {
		if strings.HasPrefix(v, "p1-") {
			p1++
		}
	}
	if got, want := c.Committed(t, "g", topic), map[int]int64{0: 10, 1: int64(p1)}; !maps.Equal(got, want) && !(p1 == 0 && got[0] == 10 && len(got) == 1) {
		t.Fatalf("committed %v after the first run, want %v", got, want)
	}

	second := map[string]int{}
	done := make(chan struct{})
	r2 := newReader(t, c.ReaderConfig(topic, "g"), nil)
	rn := start(t, r2, func(_ context.Context, m kafka.Message) error {
		mu.Lock()
		defer mu.Unlock()
		second[string(m.Value)]++
		if len(first)+len(second) == len(all) {
			close(done)
		}
		return nil
	})
	waitFor(t, done, "the second run to handle the rest")
	c.WaitCommitted(t, "g", topic, map[int]int64{0: 20, 1: 20})
	if err := rn.stop(t); err != nil {
		t.Fatalf("second Run = %v", err)
	}

	mu.Lock()
	defer mu.Unlock()
	for v := range all {
		if first[v]+second[v] != 1 {
			t.Errorf("%s handled %d times in the first run and %d in the second, want exactly once overall", v, first[v], second[v])
		}
	}
}

func TestPoisonIsDeadLetteredWhileOthersFlow(t *testing.T) {
	c := kafkatest.NewWithPartitions(t, map[string]int{topic: 2, schemas.TopicDLQ: 1})
	hdrs := []kafka.Header{
		{Key: schemas.HeaderSchema, Value: []byte(schemas.SchemaRevokeCommandV1)},
		{Key: schemas.HeaderDLQReason, Value: []byte("stale reason from an earlier dead-lettering")},
	}
	c.ProduceTo(t, topic, 0,
		kafka.Message{Key: []byte("u1"), Value: []byte("ok-0")},
		kafka.Message{Key: []byte("u1"), Value: []byte("poison-0"), Headers: hdrs},
		kafka.Message{Key: []byte("u1"), Value: []byte("ok-1")},
		kafka.Message{Key: []byte("u1"), Value: []byte("ok-2")},
	)
	c.ProduceTo(t, topic, 1,
		kafka.Message{Key: []byte("u2"), Value: []byte("poison-1")},
		kafka.Message{Key: []byte("u2"), Value: []byte("ok-3")},
	)

	var mu sync.Mutex
	var handled []string
	done := make(chan struct{})
	before := time.Now()
	r := newReader(t, c.ReaderConfig(topic, "g"), nil)
	rn := start(t, r, func(_ context.Context, m kafka.Message) error {
		v := string(m.Value)
		if strings.HasPrefix(v, "poison") {
			return fmt.Errorf("decoding command: %w", kafkax.Poison("invalid signature", errors.New("key id unknown")))
		}
		mu.Lock()
		defer mu.Unlock()
		handled = append(handled, v)
		if len(handled) == 4 {
			close(done)
		}
		return nil
	})
	waitFor(t, done, "valid messages after the poison ones")
	c.WaitCommitted(t, "g", topic, map[int]int64{0: 4, 1: 2})
	if err := rn.stop(t); err != nil {
		t.Fatalf("Run = %v", err)
	}

	dlq := c.Records(t, schemas.TopicDLQ)
	if len(dlq) != 2 {
		t.Fatalf("dead-lettered %d messages, want 2", len(dlq))
	}
	slices.SortFunc(dlq, func(a, b kafka.Message) int { return strings.Compare(string(a.Value), string(b.Value)) })
	want := []struct {
		key, value, partition, offset string
	}{
		{"u1", "poison-0", "0", "1"},
		{"u2", "poison-1", "1", "0"},
	}
	for i, m := range dlq {
		w := want[i]
		if string(m.Key) != w.key || string(m.Value) != w.value {
			t.Errorf("dead letter %d = %s/%s, want %s/%s", i, m.Key, m.Value, w.key, w.value)
		}
		checks := map[string]string{
			schemas.HeaderDLQReason:    "invalid signature: key id unknown",
			schemas.HeaderDLQTopic:     topic,
			schemas.HeaderDLQPartition: w.partition,
			schemas.HeaderDLQOffset:    w.offset,
			schemas.HeaderDLQComponent: "test",
		}
		for k, v := range checks {
			if got, n := header(m, k); got != v || n != 1 {
				t.Errorf("dead letter %d header %s = %q (%d times), want %q once", i, k, got, n, v)
			}
		}
		ts, _ := header(m, schemas.HeaderDLQTime)
		at, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil || at.Before(before.Add(-time.Second)) || at.After(time.Now().Add(time.Second)) {
			t.Errorf("dead letter %d time header %q", i, ts)
		}
	}
	if got, _ := header(dlq[0], schemas.HeaderSchema); got != schemas.SchemaRevokeCommandV1 {
		t.Errorf("original header lost: schema = %q", got)
	}
	// Order within partition 0 held around the poison message.
	mu.Lock()
	defer mu.Unlock()
	var p0 []string
	for _, v := range handled {
		if v != "ok-3" {
			p0 = append(p0, v)
		}
	}
	if !slices.Equal(p0, []string{"ok-0", "ok-1", "ok-2"}) {
		t.Fatalf("partition 0 handled in order %v", p0)
	}
}

// produceError answers a produce request with code for every partition.
func produceError(req *kmsg.ProduceRequest, code int16) *kmsg.ProduceResponse {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.ErrorCode = code
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

func TestDeadLetterFailureHoldsTheOffset(t *testing.T) {
	c := kafkatest.New(t, topic, schemas.TopicDLQ)
	c.ProduceTo(t, topic, 0,
		kafka.Message{Value: []byte("ok-0")},
		kafka.Message{Value: []byte("poison")},
		kafka.Message{Value: []byte("ok-1")},
	)
	const failures = 3
	var dlqAttempts atomic.Int32
	c.Fake().ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.Fake().KeepControl()
		req := kreq.(*kmsg.ProduceRequest)
		if len(req.Topics) == 0 || req.Topics[0].Topic != schemas.TopicDLQ {
			return nil, nil, false
		}
		if dlqAttempts.Add(1) > failures {
			return nil, nil, false
		}
		// MESSAGE_TOO_LARGE is not retried by kafka-go, so the write
		// fails at once and the Reader's own retry is exercised.
		return produceError(req, 10), nil, true
	})

	var committedDuringFailures []int64
	var handledAfterPoison atomic.Bool
	var dlqAttemptsWhenNextHandled int32
	done := make(chan struct{})
	r := newReader(t, c.ReaderConfig(topic, "g"), nil)
	rn := start(t, r, func(_ context.Context, m kafka.Message) error {
		switch string(m.Value) {
		case "poison":
			if n := dlqAttempts.Load(); n > 0 && n <= failures {
				committedDuringFailures = append(committedDuringFailures, c.Committed(t, "g", topic)[0])
			}
			return kafkax.Poison("malformed", nil)
		case "ok-1":
			dlqAttemptsWhenNextHandled = dlqAttempts.Load()
			handledAfterPoison.Store(true)
			close(done)
		}
		return nil
	})
	waitFor(t, done, "the message after the poison one")
	c.WaitCommitted(t, "g", topic, map[int]int64{0: 3})
	if err := rn.stop(t); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if dlqAttemptsWhenNextHandled != failures+1 {
		t.Fatalf("next message handled after %d dead-letter attempts, want %d", dlqAttemptsWhenNextHandled, failures+1)
	}
	for _, off := range committedDuringFailures {
		if off > 1 {
			t.Fatalf("offset %d committed before the poison message was dead-lettered", off)
		}
	}
	if dlq := c.Records(t, schemas.TopicDLQ); len(dlq) != 1 || string(dlq[0].Value) != "poison" {
		t.Fatalf("dead letters = %v", dlq)
	}
}

func TestOrderWithinPartitionsUnderConcurrency(t *testing.T) {
	const partitions, perPartition = 4, 40
	c := kafkatest.NewWithPartitions(t, map[string]int{topic: partitions, schemas.TopicDLQ: 1})
	for p := range partitions {
		c.ProduceTo(t, topic, p, values("p"+strconv.Itoa(p), perPartition)...)
	}
	cfg := c.ReaderConfig(topic, "g")
	cfg.Concurrency = partitions
	cfg.QueueSize = perPartition + 1 // the barrier below holds each partition's first message

	var mu sync.Mutex
	seen := map[int][]int64{}
	var inFlight, maxInFlight atomic.Int32
	var arrived sync.WaitGroup
	arrived.Add(partitions)
	allArrived := make(chan struct{})
	go func() { arrived.Wait(); close(allArrived) }()
	done := make(chan struct{})
	total := 0
	r := newReader(t, cfg, nil)
	rn := start(t, r, func(_ context.Context, m kafka.Message) error {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			cur := maxInFlight.Load()
			if n <= cur || maxInFlight.CompareAndSwap(cur, n) {
				break
			}
		}
		if m.Offset == 0 {
			// Every partition's first handler waits for the others:
			// this only completes if partitions run concurrently.
			arrived.Done()
			select {
			case <-allArrived:
			case <-time.After(20 * time.Second):
				return kafkax.Poison("barrier timed out", nil)
			}
		}
		if m.Offset%7 == 3 {
			runtime.Gosched() // shuffle the interleaving
		}
		mu.Lock()
		defer mu.Unlock()
		seen[m.Partition] = append(seen[m.Partition], m.Offset)
		total++
		if total == partitions*perPartition {
			close(done)
		}
		return nil
	})
	waitFor(t, done, "all messages")
	if err := rn.stop(t); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if maxInFlight.Load() < partitions {
		t.Fatalf("at most %d handlers ran at once, want %d", maxInFlight.Load(), partitions)
	}
	for p := range partitions {
		want := make([]int64, perPartition)
		for i := range want {
			want[i] = int64(i)
		}
		if !slices.Equal(seen[p], want) {
			t.Errorf("partition %d handled in order %v", p, seen[p])
		}
	}
	if dlq := c.Records(t, schemas.TopicDLQ); len(dlq) != 0 {
		t.Fatalf("barrier timed out: partitions were not handled concurrently")
	}
}

func TestConcurrencyLimit(t *testing.T) {
	const partitions = 4
	c := kafkatest.NewWithPartitions(t, map[string]int{topic: partitions, schemas.TopicDLQ: 1})
	for p := range partitions {
		c.ProduceTo(t, topic, p, values("p"+strconv.Itoa(p), 10)...)
	}
	cfg := c.ReaderConfig(topic, "g")
	cfg.Concurrency = 2
	var inFlight, maxInFlight, total, entered atomic.Int32
	// The first two handlers wait for each other, so the limit is
	// reached; the others run as they come.
	bothIn := make(chan struct{})
	done := make(chan struct{})
	rn := start(t, newReader(t, cfg, nil), func(context.Context, kafka.Message) error {
		n := inFlight.Add(1)
		for {
			cur := maxInFlight.Load()
			if n <= cur || maxInFlight.CompareAndSwap(cur, n) {
				break
			}
		}
		switch entered.Add(1) {
		case 1:
			select {
			case <-bothIn:
			case <-time.After(20 * time.Second):
				return kafkax.Poison("the second handler never started", nil)
			}
		case 2:
			close(bothIn)
		default:
			runtime.Gosched() // shuffle the interleaving
		}
		inFlight.Add(-1)
		if total.Add(1) == partitions*10 {
			close(done)
		}
		return nil
	})
	waitFor(t, done, "all messages")
	if err := rn.stop(t); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if got := maxInFlight.Load(); got != 2 {
		t.Fatalf("at most %d handlers ran at once, want the limit, 2", got)
	}
	if dlq := c.Records(t, schemas.TopicDLQ); len(dlq) != 0 {
		t.Fatalf("the first handler timed out waiting for a second one")
	}
}

// TestRebalanceKeepsEveryMessage adds a second member to the group while the
// first is busy. Partitions move, commits from the old generation may fail
// or land late, and neither member may crash or lose a message; messages
// may be delivered twice.
func TestRebalanceKeepsEveryMessage(t *testing.T) {
	const partitions, perPartition = 4, 100
	c := kafkatest.NewWithPartitions(t, map[string]int{topic: partitions, schemas.TopicDLQ: 1})
	for p := range partitions {
		c.ProduceTo(t, topic, p, values("p"+strconv.Itoa(p), perPartition)...)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	byMember := map[string]int{}
	done := make(chan struct{})
	started := make(chan struct{})
	// The first member is busy: after its tenth message its handlers wait
	// until the second member has joined the group.
	joined := make(chan struct{})
	handler := func(member string) kafkax.Handler {
		return func(ctx context.Context, m kafka.Message) error {
			mu.Lock()
			busy := member == "a" && byMember["a"] >= 10
			mu.Unlock()
			if busy {
				select {
				case <-joined:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			mu.Lock()
			defer mu.Unlock()
			v := string(m.Value)
			seen[v]++
			byMember[member]++
			if byMember["a"] == 10 && member == "a" {
				close(started)
			}
			if seen[v] == 1 && len(seen) == partitions*perPartition {
				close(done)
			}
			return nil
		}
	}
	a := start(t, newReader(t, c.ReaderConfig(topic, "g"), nil), handler("a"))
	waitFor(t, started, "the first member to get going")
	b := start(t, newReader(t, c.ReaderConfig(topic, "g"), nil), handler("b"))
	c.WaitStableGroup(t, "g", 2)
	close(joined)
	waitFor(t, done, "every message despite the rebalance")
	if err := b.stop(t); err != nil {
		t.Fatalf("second member Run = %v", err)
	}
	if err := a.stop(t); err != nil {
		t.Fatalf("first member Run = %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if byMember["b"] == 0 {
		t.Fatalf("the second member handled nothing: no rebalance happened (a handled %d)", byMember["a"])
	}
	t.Logf("a handled %d, b handled %d, %d redelivered", byMember["a"], byMember["b"], byMember["a"]+byMember["b"]-len(seen))
}

func TestShutdownLetsInFlightHandlerFinish(t *testing.T) {
	c := kafkatest.New(t, topic, schemas.TopicDLQ)
	c.ProduceTo(t, topic, 0, values("m", 3)...)
	entered := make(chan struct{})
	release := make(chan struct{})
	var calls atomic.Int32
	var logs testenv.LogBuffer
	r, err := kafkax.NewReader(c.ReaderConfig(topic, "g"), zerolog.New(&logs), nil)
	if err != nil {
		t.Fatal(err)
	}
	rn := start(t, r, func(ctx context.Context, m kafka.Message) error {
		calls.Add(1)
		if m.Offset == 0 {
			close(entered)
			<-release
			return ctx.Err() // nil: the handler's context outlives the Run context
		}
		return nil
	})
	waitFor(t, entered, "the first handler")
	rn.cancel()
	// The Reader is shutting down, waiting for the handler in flight.
	logs.WaitFor(t, "kafka reader stopping: no new message starts; waiting for those in flight")
	select {
	case err := <-rn.done:
		t.Fatalf("Run returned (%v) with a handler in flight", err)
	default:
	}
	close(release)
	if err := rn.wait(t); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if got := c.Committed(t, "g", topic); got[0] != 1 {
		t.Fatalf("committed %v, want the in-flight message (offset 1) and nothing queued after it", got)
	}
	if calls.Load() != 1 {
		t.Fatalf("%d handler calls, want 1: queued messages must not start during shutdown", calls.Load())
	}
}

func TestShutdownTimeoutCancelsHandlers(t *testing.T) {
	c := kafkatest.New(t, topic, schemas.TopicDLQ)
	c.ProduceTo(t, topic, 0, values("m", 1)...)
	cfg := c.ReaderConfig(topic, "g")
	cfg.ShutdownTimeout = 100 * time.Millisecond
	entered := make(chan struct{})
	rn := start(t, newReader(t, cfg, nil), func(ctx context.Context, _ kafka.Message) error {
		close(entered)
		<-ctx.Done()
		return ctx.Err()
	})
	waitFor(t, entered, "the handler")
	if err := rn.stop(t); !errors.Is(err, kafkax.ErrShutdownTimeout) {
		t.Fatalf("Run = %v, want ErrShutdownTimeout", err)
	}
	if got := c.Committed(t, "g", topic); len(got) != 0 {
		t.Fatalf("committed %v, want nothing: the handler never finished", got)
	}
}

func TestSynchronousCommits(t *testing.T) {
	c := kafkatest.New(t, topic, schemas.TopicDLQ)
	c.ProduceTo(t, topic, 0, values("m", 5)...)
	cfg := c.ReaderConfig(topic, "g")
	cfg.CommitInterval = 0
	var handled atomic.Int32
	done := make(chan struct{})
	rn := start(t, newReader(t, cfg, nil), func(_ context.Context, m kafka.Message) error {
		if m.Offset > 0 {
			// Committing before the next message starts means the
			// previous one is already committed here.
			if got := c.Committed(t, "g", topic)[0]; got != m.Offset {
				return kafkax.Poison(fmt.Sprintf("committed %d before handling %d", got, m.Offset), nil)
			}
		}
		if handled.Add(1) == 5 {
			close(done)
		}
		return nil
	})
	waitFor(t, done, "all messages")
	if err := rn.stop(t); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if got := c.Committed(t, "g", topic)[0]; got != 5 {
		t.Fatalf("committed %d, want 5", got)
	}
	if dlq := c.Records(t, schemas.TopicDLQ); len(dlq) != 0 {
		t.Fatalf("%s", dlq[0].Headers)
	}
}

func TestCheckAndSingleRun(t *testing.T) {
	c := kafkatest.New(t, topic, schemas.TopicDLQ)
	r := newReader(t, c.ReaderConfig(topic, "g"), nil)
	if err := r.Check(context.Background()); !errors.Is(err, kafkax.ErrNotReady) {
		t.Fatalf("Check before Run = %v", err)
	}
	rn := start(t, r, func(context.Context, kafka.Message) error { return nil })
	testenv.Eventually(t, "Check to become ready", func() bool { return r.Check(context.Background()) == nil })
	if err := r.Run(context.Background(), func(context.Context, kafka.Message) error { return nil }); !errors.Is(err, kafkax.ErrReaderUsed) {
		t.Fatalf("second Run = %v", err)
	}
	if err := rn.stop(t); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if err := r.Check(context.Background()); !errors.Is(err, kafkax.ErrNotReady) {
		t.Fatalf("Check after Run = %v", err)
	}
}

func TestReaderConfigReportsEveryProblem(t *testing.T) {
	cfg := kafkax.ReaderConfig{
		Brokers:      []string{"no-port"},
		DLQTopic:     "same",
		Topic:        "same",
		StartOffset:  "middle",
		StallTimeout: -time.Second,
		Security: kafkax.Security{
			TLS:  kafkax.TLSConfig{CAFile: "/ca.pem", CertFile: "/cert.pem"},
			SASL: kafkax.SASLConfig{Mechanism: "gssapi"},
		},
	}
	_, err := kafkax.NewReader(cfg, zerolog.Nop(), nil)
	if !errors.Is(err, config.ErrInvalid) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{
		"brokers: want host:port", "group: required", "dlq-topic: must differ", "component: required",
		"start-offset", "min-bytes", "max-wait", "shutdown-timeout", "retry-min", "concurrency", "queue-size", "stall-timeout",
		"tls.enabled", "tls.cert-file", "sasl.mechanism: unknown",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
	good := kafkax.DefaultReaderConfig()
	good.Brokers, good.Topic, good.GroupID, good.Component = []string{"localhost:9092"}, "t", "g", "c"
	if err := good.Validate(); err != nil {
		t.Fatalf("defaults with the required fields: %v", err)
	}
	good.Security.SASL = kafkax.SASLConfig{Mechanism: kafkax.SASLScramSHA512, Username: "u", Password: config.NewSecret("p")}
	if _, err := kafkax.NewReader(good, zerolog.Nop(), nil); err != nil {
		t.Fatalf("SCRAM config: %v", err)
	}
}

func TestPoisonError(t *testing.T) {
	cause := errors.New("bad json")
	err := fmt.Errorf("handling: %w", kafkax.Poison("undecodable", cause))
	var pe *kafkax.PoisonError
	if !errors.As(err, &pe) || pe.Reason != "undecodable" || !errors.Is(err, cause) {
		t.Fatalf("errors.As/Is on %v", err)
	}
	if got := kafkax.Poison("expired", nil).Error(); got != "poison message: expired" {
		t.Fatalf("Error() = %q", got)
	}
}
