package state_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/revoked-dev/revoked/detector/state"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/kafka/kafkatest"
)

const events = "audit.events"

func newClient(t *testing.T, c *kafkatest.Cluster) *kafkax.Client {
	t.Helper()
	cl, err := kafkax.NewClient(c.Brokers, kafkax.Security{}, "state-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func newStore(t *testing.T, cl *kafkax.Client, topic string) *state.Store {
	t.Helper()
	s, err := state.NewStore(cl, topic)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// The store creates a compacted topic partitioned like the event topic,
// keeps each entry in the partition it was saved to, and loads the newest
// version of every entry, less deleted and unreadable ones.
func TestStoreKeepsNewestBaselinePerPartition(t *testing.T) {
	c := kafkatest.NewWithPartitions(t, map[string]int{events: 3})
	ctx := ctxT(t)
	cl := newClient(t, c)
	s := newStore(t, cl, state.DefaultBaselineTopic)
	if n, err := s.Ensure(ctx, events, true); err != nil || n != 3 {
		t.Fatalf("Ensure = %d, %v; want 3 partitions", n, err)
	}
	if got := c.Partitions(t, state.DefaultBaselineTopic); len(got) != 3 {
		t.Fatalf("baseline topic partitions %v, want 3", got)
	}
	if policy := cleanupPolicy(t, c, state.DefaultBaselineTopic); policy != "compact" {
		t.Errorf("cleanup.policy %q, want compact", policy)
	}
	if _, err := s.Ensure(ctx, events, true); err != nil {
		t.Errorf("Ensure again: %v", err)
	}

	t0 := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	device := state.Baseline{Rule: "new_device", Key: "alice", Field: "device_id", Value: "d/1", FirstSeen: t0, LastSeen: t0}
	country := state.Baseline{Rule: "new_country", Key: "alice", Field: "geo.country", Value: "FR", FirstSeen: t0, LastSeen: t0}
	bob := state.Baseline{Rule: "new_device", Key: "bob", Field: "device_id", Value: "d2", FirstSeen: t0, LastSeen: t0}
	if err := s.Save(ctx, 2, []state.Baseline{device, country}); err != nil {
		t.Fatal(err)
	}
	moved := device
	moved.LastSeen = t0.Add(time.Hour)
	stale := device
	stale.LastSeen = t0.Add(time.Minute)
	if err := s.Save(ctx, 2, []state.Baseline{stale, moved}); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(ctx, 0, []state.Baseline{bob}); err != nil {
		t.Fatal(err)
	}
	if got := len(c.Records(t, state.DefaultBaselineTopic)); got != 4 {
		t.Errorf("%d records, want 4 (one per entry and save, duplicates within a save written once)", got)
	}

	load := func(p int) ([]state.Baseline, int) {
		t.Helper()
		got, skipped, err := s.Load(ctx, p)
		if err != nil {
			t.Fatalf("Load(%d): %v", p, err)
		}
		return got, skipped
	}
	if got, _ := load(2); !reflect.DeepEqual(got, []state.Baseline{country, moved}) {
		t.Errorf("partition 2: %+v", got)
	}
	if got, _ := load(0); !reflect.DeepEqual(got, []state.Baseline{bob}) {
		t.Errorf("partition 0: %+v", got)
	}
	if got, _ := load(1); len(got) != 0 {
		t.Errorf("partition 1: %+v", got)
	}

	forgotten := country
	forgotten.LastSeen = time.Time{}
	if err := s.Save(ctx, 2, []state.Baseline{forgotten}); err != nil {
		t.Fatal(err)
	}
	c.ProduceTo(t, state.DefaultBaselineTopic, 1, kafkax.Message{Key: []byte("x"), Value: []byte("not json")})
	if got, _ := load(2); !reflect.DeepEqual(got, []state.Baseline{moved}) {
		t.Errorf("partition 2 after a tombstone: %+v", got)
	}
	if got, skipped := load(1); len(got) != 0 || skipped != 1 {
		t.Errorf("partition 1 with a bad record: %+v, %d skipped", got, skipped)
	}
}

// A baseline topic with fewer partitions than the event topic is grown, or
// refused when the store may not change it.
func TestStoreEnsurePartitions(t *testing.T) {
	c := kafkatest.NewWithPartitions(t, map[string]int{events: 4, "small": 2})
	ctx := ctxT(t)
	cl := newClient(t, c)
	if _, err := newStore(t, cl, "small").Ensure(ctx, events, false); !errors.Is(err, state.ErrPartitionCount) {
		t.Errorf("Ensure without create: %v, want ErrPartitionCount", err)
	}
	if _, err := newStore(t, cl, "missing").Ensure(ctx, events, false); !errors.Is(err, state.ErrPartitionCount) {
		t.Errorf("Ensure of a missing topic without create: %v, want ErrPartitionCount", err)
	}
	if _, err := newStore(t, cl, "small").Ensure(ctx, events, true); err != nil {
		t.Fatal(err)
	}
	if got := c.Partitions(t, "small"); len(got) != 4 {
		t.Errorf("partitions %v, want 4", got)
	}
	if _, err := newStore(t, cl, "x").Ensure(ctx, "no.such.topic", true); err == nil {
		t.Error("Ensure against a missing event topic: no error")
	}
}

// OffsetAt finds the first message stamped at or after a time; Read
// returns the messages between two offsets.
func TestClientReadsFromTime(t *testing.T) {
	c := kafkatest.NewWithPartitions(t, map[string]int{events: 2})
	ctx := ctxT(t)
	cl := newClient(t, c)
	t0 := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	var msgs []kafkax.Message
	for i := range 5 {
		msgs = append(msgs, kafkax.Message{Value: []byte{byte('a' + i)}, Time: t0.Add(time.Duration(i) * time.Minute)})
	}
	c.ProduceTo(t, events, 1, msgs...)

	for _, tc := range []struct {
		at   time.Time
		want int64
		ok   bool
	}{
		{t0.Add(-time.Minute), 0, true},
		{t0.Add(90 * time.Second), 2, true},
		{t0.Add(2 * time.Minute), 2, true},
		{t0.Add(time.Hour), 0, false},
	} {
		got, ok, err := cl.OffsetAt(ctx, events, 1, tc.at)
		if err != nil || got != tc.want || ok != tc.ok {
			t.Errorf("OffsetAt(%s) = %d, %v, %v; want %d, %v", tc.at.Sub(t0), got, ok, err, tc.want, tc.ok)
		}
	}
	if _, ok, err := cl.OffsetAt(ctx, events, 0, t0); ok || err != nil {
		t.Errorf("OffsetAt on an empty partition: %v, %v", ok, err)
	}
	first, end, err := cl.Bounds(ctx, events, 1)
	if err != nil || first != 0 || end != 5 {
		t.Errorf("Bounds = %d, %d, %v", first, end, err)
	}

	var got string
	n, err := cl.Read(ctx, events, 1, 1, 4, func(m kafkax.Message) error {
		got += string(m.Value)
		return nil
	})
	if err != nil || n != 3 || got != "bcd" {
		t.Errorf("Read(1, 4) = %d, %q, %v", n, got, err)
	}
	if n, err := cl.Read(ctx, events, 1, 4, 4, nil); n != 0 || err != nil {
		t.Errorf("Read of an empty range = %d, %v", n, err)
	}
	stop := errors.New("stop")
	if n, err := cl.Read(ctx, events, 1, 0, 5, func(kafkax.Message) error { return stop }); n != 1 || !errors.Is(err, stop) {
		t.Errorf("Read stopped by fn = %d, %v", n, err)
	}
}

func cleanupPolicy(t *testing.T, c *kafkatest.Cluster, topic string) string {
	t.Helper()
	cl, err := kafkax.NewClient(c.Brokers, kafkax.Security{}, "state-test")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	v, _, err := cl.TopicConfig(context.Background(), topic, "cleanup.policy")
	if err != nil {
		t.Fatalf("describing %s: %v", topic, err)
	}
	return v
}
