package kafka_test

import (
	"context"
	"hash/fnv"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/revoked-dev/revoked/internal/kafka/kafkatest"
	"github.com/revoked-dev/revoked/internal/testenv"
	"github.com/revoked-dev/revoked/schemas"
)

// TestKeyLanesKeepOrderPerKeyAndCommitTheWatermark splits one partition
// over key lanes: keys run concurrently, each key in order, and while the
// partition's first message is stuck nothing at or past it is committed,
// however many later messages of other keys are done.
//
// Commits are synchronous here (CommitInterval 0): a lane commits what a
// message let pass before it starts its next message. So once a lane has
// started a message produced after all the others, whatever its earlier
// messages would have committed has reached the broker, and the committed
// offset can be read without waiting for a commit to happen.
func TestKeyLanesKeepOrderPerKeyAndCommitTheWatermark(t *testing.T) {
	const keys, perKey, keyLanes = 8, 10, 16
	c := kafkatest.NewWithPartitions(t, map[string]int{topic: 1, schemas.TopicDLQ: 1})
	laneOf := func(key string) uint32 {
		h := fnv.New32a()
		h.Write([]byte(key))
		return h.Sum32() % keyLanes
	}
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
	cfg.KeyConcurrency = keyLanes
	cfg.Concurrency = 16
	cfg.QueueSize = len(msgs) + keys + 1
	cfg.CommitInterval = 0

	release := make(chan struct{})
	slowEntered := make(chan struct{})
	var mu sync.Mutex
	seen := map[string][]string{}
	var handled testenv.Recorder[string]
	var inFlight, maxInFlight atomic.Int32
	r := newReader(t, cfg, nil)
	rn := start(t, r, func(_ context.Context, m kafka.Message) error {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for cur := maxInFlight.Load(); n > cur && !maxInFlight.CompareAndSwap(cur, n); cur = maxInFlight.Load() {
		}
		if string(m.Key) == "slow" {
			close(slowEntered)
			<-release
		}
		mu.Lock()
		seen[string(m.Key)] = append(seen[string(m.Key)], string(m.Value))
		mu.Unlock()
		handled.Add(string(m.Value))
		return nil
	})
	waitFor(t, slowEntered, "the first message's handler")
	// One last message per key, after all the others: the keys that do not
	// share the stuck message's lane get to theirs while it is stuck, and
	// run beside its handler.
	var ends []kafka.Message
	var free []string // the ends of keys in other lanes than the stuck one
	for k := range keys {
		key := "k" + strconv.Itoa(k)
		ends = append(ends, kafka.Message{Key: []byte(key), Value: []byte(key + "-end")})
		if laneOf(key) != laneOf("slow") {
			free = append(free, key+"-end")
		}
	}
	if len(free) == 0 {
		t.Fatal("every key shares the stuck message's lane")
	}
	c.ProduceTo(t, topic, 0, ends...)
	handled.Wait(t, "the last message of every key in another lane than the stuck one", func(all []string) bool {
		for _, v := range free {
			if !slices.Contains(all, v) {
				return false
			}
		}
		return true
	})
	if got, ok := c.Committed(t, "g", topic)[0]; ok && got > 0 {
		t.Fatalf("committed offset %d past a message that is not terminal", got)
	}
	close(release)
	total := len(msgs) + len(ends)
	handled.Wait(t, "all messages", func(all []string) bool { return len(all) == total })
	c.WaitCommitted(t, "g", topic, map[int]int64{0: int64(total)})
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
		want = append(want, key+"-end")
		if !slices.Equal(seen[key], want) {
			t.Errorf("key %s handled in order %v", key, seen[key])
		}
	}
}
