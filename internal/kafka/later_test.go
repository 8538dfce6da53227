package kafka_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/kafka/kafkatest"
	"github.com/revoked-dev/revoked/internal/testenv"
	"github.com/revoked-dev/revoked/schemas"
)

// A handler that returns Later frees its lane at once: the same key's
// next message is handled while the first waits to be durable, and the
// partition's commit stays behind the first until its wait returns nil.
// A wait that fails leaves its message uncommitted, so it is delivered
// again to the next reader of the group.
//
// Commits are synchronous here (CommitInterval 0): a lane commits what a
// message let pass before it starts its next message, so the committed
// offset can be read once the lane has gone on, without waiting for a
// commit to happen.
func TestLaterCommitsOnceDurable(t *testing.T) {
	c := kafkatest.NewWithPartitions(t, map[string]int{topic: 1, schemas.TopicDLQ: 1})
	for _, v := range []string{"a", "b", "c"} {
		c.ProduceTo(t, topic, 0, kafka.Message{Key: []byte("same-key"), Value: []byte(v)})
	}
	cfg := c.ReaderConfig(topic, "g")
	cfg.KeyConcurrency = 4
	cfg.CommitInterval = 0
	r := newReader(t, cfg, nil)

	release := make(chan error, 1)
	var handled testenv.Recorder[string]
	rn := start(t, r, func(_ context.Context, m kafka.Message) error {
		handled.Add(string(m.Value))
		if string(m.Value) != "a" {
			return nil
		}
		return kafkax.Later(func(ctx context.Context) error {
			select {
			case err := <-release:
				return err
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	})
	// The lane started c, so it is done with b: had b's commit passed a,
	// it would be at the broker now.
	handled.Wait(t, "b and c handled while a is not durable", func(all []string) bool { return len(all) == 3 })
	if got := c.Committed(t, "g", topic); got[0] > 0 {
		t.Fatalf("committed %v while the first message is not durable", got)
	}
	release <- nil
	c.WaitCommitted(t, "g", topic, map[int]int64{0: 3})
	if err := rn.stop(t); err != nil {
		t.Fatalf("Run = %v", err)
	}

	// A wait that fails: the message stays uncommitted and comes back.
	c.ProduceTo(t, topic, 0, kafka.Message{Key: []byte("same-key"), Value: []byte("d")})
	var logs testenv.LogBuffer
	r2, err := kafkax.NewReader(cfg, zerolog.New(&logs), nil)
	if err != nil {
		t.Fatal(err)
	}
	rn2 := start(t, r2, func(context.Context, kafka.Message) error {
		return kafkax.Later(func(context.Context) error { return errors.New("the store refused the rows") })
	})
	// The Reader has taken d's failed wait: it will not commit d, and
	// stopping commits whatever it would have.
	logs.WaitFor(t, "a handled message did not become durable")
	if err := rn2.stop(t); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if got := c.Committed(t, "g", topic); got[0] != 3 {
		t.Fatalf("committed %v after a failed wait, want offset 3 (d uncommitted)", got)
	}
	r3 := newReader(t, cfg, nil)
	again := make(chan string, 1)
	rn3 := start(t, r3, func(_ context.Context, m kafka.Message) error {
		select {
		case again <- string(m.Value):
		default:
		}
		return nil
	})
	select {
	case v := <-again:
		if v != "d" {
			t.Errorf("redelivered %q, want d", v)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("d was not delivered again")
	}
	c.WaitCommitted(t, "g", topic, map[int]int64{0: 4})
	if err := rn3.stop(t); err != nil {
		t.Fatalf("Run = %v", err)
	}
}
