package kafka_test

import (
	"context"
	"errors"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/kafka/kafkatest"
	"github.com/revoked-dev/revoked/internal/testenv"
	"github.com/revoked-dev/revoked/schemas"
)

// fakeClock is a clock that moves only when told. It counts the times it
// is read, so that a test can wait for the Reader's stall watcher, which
// reads it once a tick.
type fakeClock struct {
	ns    atomic.Int64
	reads atomic.Int64
	read  testenv.Notifier
}

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time {
	c.reads.Add(1)
	c.read.Notify()
	return time.Unix(0, c.ns.Load())
}

func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// waitReads waits until the clock has been read n more times than from.
func (c *fakeClock) waitReads(t *testing.T, what string, from, n int64) {
	t.Helper()
	c.read.Wait(t, what, func() bool { return c.reads.Load() >= from+n })
}

// handledValues records the values of the messages a handler finished.
type handledValues struct{ testenv.Recorder[string] }

// wait waits until v was handled.
func (h *handledValues) wait(t *testing.T, v string) {
	t.Helper()
	h.Wait(t, v+" handled", func(all []string) bool { return slices.Contains(all, v) })
}

func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

// A handler that does not return holds its partition: once the lane has
// held the message longer than the stall timeout, Check fails naming the
// partition and offset, the gauge counts the lane and the stall is logged
// once. The other partition, idle or busy, is never named. When the
// handler returns, the lane progresses and Check is ready again. The clock
// of the stall check is a fake one, so nothing here depends on how fast
// the machine is.
func TestStalledPartitionFailsCheckUntilItProgresses(t *testing.T) {
	c := kafkatest.NewWithPartitions(t, map[string]int{topic: 2, schemas.TopicDLQ: 1})
	c.ProduceTo(t, topic, 0, kafka.Message{Value: []byte("a-0")})
	c.ProduceTo(t, topic, 1, kafka.Message{Value: []byte("block")}, kafka.Message{Value: []byte("b-1")})

	clock := newFakeClock()
	var logs testenv.LogBuffer
	reg := prometheus.NewRegistry()
	metrics, err := kafkax.NewReaderMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	cfg := c.ReaderConfig(topic, "g")
	cfg.StallTimeout = 100 * time.Millisecond // of the fake clock; it also sets the watcher's tick
	cfg.Now = clock.Now
	r, err := kafkax.NewReader(cfg, zerolog.New(&logs), metrics)
	if err != nil {
		t.Fatal(err)
	}

	entered, release := make(chan struct{}), make(chan struct{})
	var handled handledValues
	rn := start(t, r, func(ctx context.Context, m kafka.Message) error {
		if string(m.Value) == "block" {
			close(entered)
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		handled.Add(string(m.Value))
		return nil
	})
	waitFor(t, entered, "the blocking handler")
	handled.wait(t, "a-0")
	// Committed means partition 0's lane has let go of a-0, so moving the
	// clock cannot find it still holding the message.
	c.WaitCommitted(t, "g", topic, map[int]int64{0: 1})

	// Held, but not for longer than the timeout: ready.
	if err := r.Check(context.Background()); err != nil {
		t.Fatalf("Check before the timeout = %v", err)
	}
	clock.Advance(time.Second)
	err = r.Check(context.Background())
	if !errors.Is(err, kafkax.ErrNotReady) || !strings.Contains(err.Error(), "in partition 1 has made no progress for 1s at offset 0 (stall-timeout 100ms)") {
		t.Fatalf("Check while stalled = %v", err)
	}
	if strings.Contains(err.Error(), "partition 0") {
		t.Errorf("Check names the idle partition: %v", err)
	}
	testenv.Eventually(t, "the stalled_lanes gauge", func() bool { return gaugeValue(t, reg, "revoked_kafka_reader_stalled_lanes") == 1 })

	// A message arriving on the other partition is handled and does not
	// count as stalled: it was taken after the clock moved.
	c.ProduceTo(t, topic, 0, kafka.Message{Value: []byte("a-1")})
	handled.wait(t, "a-1")
	if err := r.Check(context.Background()); err == nil || strings.Contains(err.Error(), "partition 0") {
		t.Errorf("Check with partition 0 busy again = %v", err)
	}
	// Several ticks of the stall watcher, each of which reads the clock
	// once: the stall is still logged once. Besides the watcher, only the
	// lane letting go of a-1 may read the clock from here on, so five
	// reads are at least four ticks.
	clock.waitReads(t, "four ticks of the stall watcher", clock.reads.Load(), 5)

	close(release)
	handled.wait(t, "b-1")
	c.WaitCommitted(t, "g", topic, map[int]int64{0: 2, 1: 2})
	testenv.Eventually(t, "Check ready again", func() bool { return r.Check(context.Background()) == nil })
	testenv.Eventually(t, "the gauge back to 0", func() bool { return gaugeValue(t, reg, "revoked_kafka_reader_stalled_lanes") == 0 })
	if err := rn.stop(t); err != nil {
		t.Fatalf("Run = %v", err)
	}

	out := logs.String()
	if n := strings.Count(out, `"message":"lane stalled`); n != 1 {
		t.Errorf("%d stall logs, want 1:\n%s", n, out)
	}
	if n := strings.Count(out, `"message":"stalled lane progressed again"`); n != 1 {
		t.Errorf("%d recovery logs, want 1:\n%s", n, out)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, `"message":"lane stalled`) &&
			(!strings.Contains(line, `"level":"error"`) || !strings.Contains(line, `"partition":1,"offset":0`)) {
			t.Errorf("stall log: %s", line)
		}
	}
}

// A message that keeps failing transiently (the token API is down) is a
// stall: with key lanes, Check names the partition, the key lane and the
// last error, while other keys of the same partition go on; once the
// failures stop, the lane progresses and Check is ready again. This test
// runs on the real clock with a tiny timeout, and only polls Check.
func TestTransientFailuresForeverAreAStall(t *testing.T) {
	const keyLanes = 4
	c := kafkatest.NewWithPartitions(t, map[string]int{topic: 1, schemas.TopicDLQ: 1})
	laneOf := func(key string) int {
		h := fnv.New32a()
		h.Write([]byte(key))
		return int(h.Sum32() % keyLanes)
	}
	// A key in another lane than the failing one.
	other := ""
	for i := 0; other == ""; i++ {
		if k := "k" + strconv.Itoa(i); laneOf(k) != laneOf("down") {
			other = k
		}
	}
	c.ProduceTo(t, topic, 0, kafka.Message{Key: []byte("down"), Value: []byte("down-0")})

	cfg := c.ReaderConfig(topic, "g")
	cfg.KeyConcurrency = keyLanes
	cfg.StallTimeout = 50 * time.Millisecond
	r := newReader(t, cfg, nil)
	var up atomic.Bool
	var handled handledValues
	rn := start(t, r, func(_ context.Context, m kafka.Message) error {
		if string(m.Key) == "down" && !up.Load() {
			return errors.New("token API unavailable")
		}
		handled.Add(string(m.Value))
		return nil
	})

	want := "in partition 0 (key lane " + strconv.Itoa(laneOf("down")) + ") has made no progress for "
	var err error
	testenv.Eventually(t, "Check to name the failing lane", func() bool {
		err = r.Check(context.Background())
		return err != nil && strings.Contains(err.Error(), want)
	})
	if !strings.Contains(err.Error(), "at offset 0 after") || !strings.Contains(err.Error(), "transient handler failures, the last: token API unavailable") {
		t.Errorf("Check = %v", err)
	}

	c.ProduceTo(t, topic, 0, kafka.Message{Key: []byte(other), Value: []byte("other-1")})
	handled.wait(t, "other-1")
	if err := r.Check(context.Background()); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Check while another lane of the partition progresses = %v", err)
	}

	up.Store(true)
	c.WaitCommitted(t, "g", topic, map[int]int64{0: 2})
	testenv.Eventually(t, "Check ready again", func() bool { err = r.Check(context.Background()); return err == nil })
	if err := rn.stop(t); err != nil {
		t.Fatalf("Run = %v", err)
	}
}

// With the stall check off, a lane may hold a message as long as it takes.
func TestStallTimeoutZeroDisablesTheCheck(t *testing.T) {
	c := kafkatest.New(t, topic, schemas.TopicDLQ)
	c.ProduceTo(t, topic, 0, kafka.Message{Value: []byte("block")})
	clock := newFakeClock()
	cfg := c.ReaderConfig(topic, "g")
	cfg.StallTimeout = 0
	cfg.Now = clock.Now
	r := newReader(t, cfg, nil)
	entered, release := make(chan struct{}), make(chan struct{})
	rn := start(t, r, func(context.Context, kafka.Message) error {
		close(entered)
		<-release
		return nil
	})
	waitFor(t, entered, "the blocking handler")
	clock.Advance(24 * time.Hour)
	if err := r.Check(context.Background()); err != nil {
		t.Errorf("Check with stall-timeout 0 = %v", err)
	}
	close(release)
	if err := rn.stop(t); err != nil {
		t.Fatalf("Run = %v", err)
	}
}
