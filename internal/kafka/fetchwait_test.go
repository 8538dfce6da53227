package kafka_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kmsg"

	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/kafka/kafkatest"
	"github.com/revoked-dev/revoked/internal/testenv"
)

// lines returns the lines of out that contain substr.
func lines(out, substr string) []string {
	var found []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, substr) {
			found = append(found, l)
		}
	}
	return found
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
//
// The lateness is the condition under test, so it is real time: kfake
// puts each fetch aside (SleepControl) until a timer of brokerLateness
// fires, serving other requests meanwhile, and then handles it as usual.
// Everything else waits on events: the fetches the broker received are
// counted, and the reader idles until several of them were answered.
func TestReaderToleratesALateBroker(t *testing.T) {
	if _, slack := kafkax.FetchWaits(kafkax.DefaultReaderConfig().MaxWait); slack < 2*brokerLateness {
		t.Fatalf("the default MaxWait leaves the broker %s to answer late; the test needs at least %s", slack, 2*brokerLateness)
	}
	c := kafkatest.New(t, topic)
	var fetches atomic.Int64
	var fetched testenv.Notifier
	c.Fake().ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
		late := time.NewTimer(brokerLateness)
		c.Fake().SleepControl(func() { <-late.C })
		fetches.Add(1)
		fetched.Notify()
		return nil, nil, false // then handled as usual
	})
	var logs testenv.LogBuffer
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
		case <-time.After(testenv.WaitTimeout):
			t.Fatalf("%q not received", want)
		}
	}
	c.Produce(t, topic, kafka.Message{Value: []byte("before")})
	receive("before")
	// Idle for several fetches, each answered late: the reader sends a
	// fetch only once the one before was answered, so the fifth to arrive
	// from here on means that four were answered, late.
	from := fetches.Load()
	fetched.Wait(t, "four idle fetches answered late", func() bool { return fetches.Load() >= from+5 })
	c.Produce(t, topic, kafka.Message{Value: []byte("after")})
	receive("after")

	out := logs.String()
	if l := lines(out, "i/o timeout"); len(l) > 0 {
		t.Errorf("%d fetches timed out, the first: %s", len(l), l[0])
	}
	if l := lines(out, "initializing kafka reader for partition"); len(l) != 1 {
		t.Errorf("the partition reader connected %d times, want once:\n%s", len(l), strings.Join(l, "\n"))
	}
}
