package kafka_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kmsg"

	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/kafka/kafkatest"
)

// lockedBuffer collects log lines from several goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) lines(substr string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, l := range strings.Split(b.buf.String(), "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return out
}

// brokerLateness is how late the broker in TestReaderToleratesALateBroker
// answers every fetch: the hold kafka-go asks for starts this much after
// the request arrived, as it does when kfake's single request loop is busy
// (kfake starts the hold when it handles a fetch, not when it received it).
// Twice the slack the old 50 ms MaxWait left, well inside the default's.
const brokerLateness = 25 * time.Millisecond

// A kafka-go reader drops its connection with "i/o timeout" when a fetch
// is answered later than MaxWait after it was sent, while it asks the
// broker to hold the fetch for only 3/4 of MaxWait: the default MaxWait
// must leave a broker that is busy for a moment room to answer, so that an
// idle reader never reconnects.
func TestReaderToleratesALateBroker(t *testing.T) {
	if _, slack := kafkax.FetchWaits(kafkax.DefaultReaderConfig().MaxWait); slack < 2*brokerLateness {
		t.Fatalf("the default MaxWait leaves the broker %s to answer late; the test needs at least %s", slack, 2*brokerLateness)
	}
	c := kafkatest.New(t, topic)
	c.Fake().ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
		time.Sleep(brokerLateness)
		return nil, nil, false // then handled as usual
	})
	var logs lockedBuffer
	cfg := c.ReaderConfig(topic, "late")
	cfg.MaxWait = kafkax.DefaultReaderConfig().MaxWait
	r, err := kafkax.NewReader(cfg, zerolog.New(&logs).Level(zerolog.DebugLevel), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 2)
	start(t, r, func(_ context.Context, m kafka.Message) error {
		got <- string(m.Value)
		return nil
	})
	receive := func(want string) {
		t.Helper()
		select {
		case v := <-got:
			if v != want {
				t.Fatalf("got %q, want %q", v, want)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%q not received", want)
		}
	}
	c.Produce(t, topic, kafka.Message{Value: []byte("before")})
	receive("before")
	// Idle for several fetches, each answered late.
	time.Sleep(3 * time.Second)
	c.Produce(t, topic, kafka.Message{Value: []byte("after")})
	receive("after")

	if l := logs.lines("i/o timeout"); len(l) > 0 {
		t.Errorf("%d fetches timed out, the first: %s", len(l), l[0])
	}
	if l := logs.lines("initializing kafka reader for partition"); len(l) != 1 {
		t.Errorf("the partition reader connected %d times, want once:\n%s", len(l), strings.Join(l, "\n"))
	}
}
