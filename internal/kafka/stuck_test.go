package kafka_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kmsg"

	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/kafka/kafkatest"
	"github.com/revoked-dev/revoked/internal/testenv"
	"github.com/revoked-dev/revoked/schemas"
)

// A handler that panics does not bring the reader down: the message is
// dead-lettered with the panic as its reason and the partition goes on.
func TestPanicIsDeadLetteredAndTheReaderLives(t *testing.T) {
	c := kafkatest.New(t, topic, schemas.TopicDLQ)
	c.ProduceTo(t, topic, 0,
		kafka.Message{Key: []byte("u1"), Value: []byte("ok-0")},
		kafka.Message{Key: []byte("u1"), Value: []byte("boom")},
		kafka.Message{Key: []byte("u1"), Value: []byte("logout")},
	)
	done := make(chan struct{})
	var mu sync.Mutex
	var handled []string
	r := newReader(t, c.ReaderConfig(topic, "g"), nil)
	rn := start(t, r, func(_ context.Context, m kafka.Message) error {
		if string(m.Value) == "boom" {
			var rule map[string]int
			rule["nil map"]++ //nolint:staticcheck // the bug this test plants: a handler that panics
		}
		mu.Lock()
		defer mu.Unlock()
		handled = append(handled, string(m.Value))
		if len(handled) == 2 {
			close(done)
		}
		return nil
	})
	waitFor(t, done, "the message after the panicking one")
	c.WaitCommitted(t, "g", topic, map[int]int64{0: 3})
	if err := rn.stop(t); err != nil {
		t.Fatalf("Run = %v", err)
	}
	dlq := c.Records(t, schemas.TopicDLQ)
	if len(dlq) != 1 || string(dlq[0].Value) != "boom" {
		t.Fatalf("dead letters %v", dlq)
	}
	if reason, _ := header(dlq[0], schemas.HeaderDLQReason); !strings.Contains(reason, "handler panicked") || !strings.Contains(reason, "nil map") {
		t.Errorf("reason %q", reason)
	}
	if strings.Join(handled, ",") != "ok-0,logout" {
		t.Errorf("handled %v", handled)
	}
}

// A message whose dead-letter copy would be larger than the broker takes
// is stored cut, with its size and SHA-256, and the message behind it on
// the partition is handled. The broker here refuses any produce request to
// the dead-letter topic over 600 KiB, as one with a smaller
// message.max.bytes would.
func TestOversizedPoisonDoesNotStopThePartition(t *testing.T) {
	c := kafkatest.New(t, topic, schemas.TopicDLQ)
	const brokerLimit = 600 << 10
	var refused atomic.Int32
	c.Fake().ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.Fake().KeepControl()
		req := kreq.(*kmsg.ProduceRequest)
		if len(req.Topics) == 0 || req.Topics[0].Topic != schemas.TopicDLQ {
			return nil, nil, false
		}
		size := 0
		for _, p := range req.Topics[0].Partitions {
			size += len(p.Records)
		}
		if size > brokerLimit {
			refused.Add(1)
			return produceError(req, 10), nil, true // MESSAGE_TOO_LARGE
		}
		return nil, nil, false
	})
	big := bytes.Repeat([]byte("x"), 900<<10)
	c.ProduceTo(t, topic, 0,
		kafka.Message{Key: []byte("u1"), Value: big},
		kafka.Message{Key: []byte("u1"), Value: []byte("logout")},
	)
	cfg := c.ReaderConfig(topic, "g")
	cfg.DLQMaxBytes = 512 << 10
	// The fetch that carries the 900 KiB message must arrive within the
	// read deadline's slack past the broker's hold (FetchWaits): the
	// harness's 10 ms max-wait leaves 2.5 ms, which a busy machine under
	// -race missed on every attempt, each an i/o timeout and a new dial,
	// until the test gave up. The default leaves a second.
	cfg.MaxWait = kafkax.DefaultReaderConfig().MaxWait
	done := make(chan struct{})
	r := newReader(t, cfg, nil)
	rn := start(t, r, func(_ context.Context, m kafka.Message) error {
		if len(m.Value) > 1000 {
			return kafkax.Poison("event larger than 64 KiB", nil)
		}
		close(done)
		return nil
	})
	waitFor(t, done, "the logout behind the oversized message")
	c.WaitCommitted(t, "g", topic, map[int]int64{0: 2})
	if err := rn.stop(t); err != nil {
		t.Fatalf("Run = %v", err)
	}
	dlq := c.Records(t, schemas.TopicDLQ)
	if len(dlq) != 1 {
		t.Fatalf("%d dead letters", len(dlq))
	}
	m := dlq[0]
	sum := sha256.Sum256(big)
	size, _ := header(m, schemas.HeaderDLQOriginalSize)
	hash, _ := header(m, schemas.HeaderDLQOriginalSHA256)
	what, _ := header(m, schemas.HeaderDLQTruncated)
	if size != strconv.Itoa(len(big)) || hash != hex.EncodeToString(sum[:]) || what != "value" {
		t.Errorf("truncation headers: size %q sha256 %q truncated %q", size, hash, what)
	}
	if len(m.Value) == 0 || len(m.Value) > cfg.DLQMaxBytes || !bytes.HasPrefix(big, m.Value) {
		t.Errorf("dead letter value: %d bytes", len(m.Value))
	}
	if reason, _ := header(m, schemas.HeaderDLQReason); reason != "event larger than 64 KiB" {
		t.Errorf("reason %q", reason)
	}
}

// While a poison message cannot be dead-lettered, the reader is not ready
// and says which message holds its partition; once the write goes
// through, it is ready again.
func TestStuckDeadLetterFailsReadiness(t *testing.T) {
	c := kafkatest.New(t, topic, schemas.TopicDLQ)
	var open atomic.Bool
	c.Fake().ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.Fake().KeepControl()
		req := kreq.(*kmsg.ProduceRequest)
		if len(req.Topics) == 0 || req.Topics[0].Topic != schemas.TopicDLQ || open.Load() {
			return nil, nil, false
		}
		return produceError(req, 10), nil, true
	})
	c.ProduceTo(t, topic, 0, kafka.Message{Value: []byte("ok-0")}, kafka.Message{Value: []byte("poison")})
	r := newReader(t, c.ReaderConfig(topic, "g"), nil)
	rn := start(t, r, func(_ context.Context, m kafka.Message) error {
		if string(m.Value) == "poison" {
			return kafkax.Poison("malformed", nil)
		}
		return nil
	})
	var err error
	testenv.Eventually(t, "Check to name the stuck message", func() bool {
		err = r.Check(context.Background())
		return err != nil && strings.Contains(err.Error(), "partition 0 offset 1")
	})
	if !strings.Contains(err.Error(), "in partition 0 offset 1 cannot be dead-lettered") {
		t.Fatalf("Check while stuck = %v", err)
	}
	open.Store(true)
	c.WaitCommitted(t, "g", topic, map[int]int64{0: 2})
	testenv.Eventually(t, "Check ready after the dead letter went through", func() bool {
		err = r.Check(context.Background())
		return err == nil
	})
	if err := rn.stop(t); err != nil {
		t.Fatalf("Run = %v", err)
	}
}
