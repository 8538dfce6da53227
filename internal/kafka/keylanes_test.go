package kafka_test

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/revoked-dev/revoked/internal/kafka/kafkatest"
	"github.com/revoked-dev/revoked/schemas"
)

// TestKeyLanesKeepOrderPerKeyAndCommitTheWatermark splits one partition
// over key lanes: keys run concurrently, each key in order, and while the
// partition's first message is stuck nothing at or past it is committed,
// however many later messages of other keys are done.
func TestKeyLanesKeepOrderPerKeyAndCommitTheWatermark(t *testing.T) {
	const keys, perKey = 8, 10
	c := kafkatest.NewWithPartitions(t, map[string]int{topic: 1, schemas.TopicDLQ: 1})
	var msgs []kafka.Message
	msgs = append(msgs, kafka.Message{Key: []byte("slow"), Value: []byte("slow-0")})
	for i := range perKey {
		for k := range keys {
			key := "k" + strconv.Itoa(k)
			msgs = append(msgs, kafka.Message{Key: []byte(key), Value: []byte(key + "-" + strconv.Itoa(i))})
		}
	}
	c.ProduceTo(t, topic, 0, msgs...)
	cfg := c.ReaderConfig(topic, "g")
	cfg.KeyConcurrency = 16
	cfg.Concurrency = 16
	cfg.QueueSize = len(msgs) + 1

	release := make(chan struct{})
	var mu sync.Mutex
	seen := map[string][]string{}
	var handled, inFlight, maxInFlight atomic.Int32
	done := make(chan struct{})
	r := newReader(t, cfg, nil)
	rn := start(t, r, func(_ context.Context, m kafka.Message) error {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for cur := maxInFlight.Load(); n > cur && !maxInFlight.CompareAndSwap(cur, n); cur = maxInFlight.Load() {
		}
		if string(m.Key) == "slow" {
			<-release
		}
		time.Sleep(time.Millisecond)
		mu.Lock()
		seen[string(m.Key)] = append(seen[string(m.Key)], string(m.Value))
		mu.Unlock()
		if handled.Add(1) == int32(len(msgs)) {
			close(done)
		}
		return nil
	})
	// Other keys go on while the first message is stuck (those sharing its
	// lane wait behind it), but the watermark stays below it.
	deadline := time.Now().Add(20 * time.Second)
	for handled.Load() < int32(len(msgs)/2) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d messages handled while one key was stuck", handled.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // several commit intervals
	if got, ok := c.Committed(t, "g", topic)[0]; ok && got > 0 {
		t.Fatalf("committed offset %d past a message that is not terminal", got)
	}
	close(release)
	waitFor(t, done, "all messages")
	c.WaitCommitted(t, "g", topic, map[int]int64{0: int64(len(msgs))})
	if err := rn.stop(t); err != nil {
		t.Fatal(err)
	}
	if maxInFlight.Load() < 2 {
		t.Fatalf("at most %d handlers ran at once", maxInFlight.Load())
	}
	for k := range keys {
		key := "k" + strconv.Itoa(k)
		var want []string
		for i := range perKey {
			want = append(want, key+"-"+strconv.Itoa(i))
		}
		if !slices.Equal(seen[key], want) {
			t.Errorf("key %s handled in order %v", key, seen[key])
		}
	}
}
