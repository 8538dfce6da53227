package transmitter_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/revoked-dev/revoked/internal/ssf"
	"github.com/revoked-dev/revoked/schemas"
)

// BenchmarkPushDelivery: revocations recorded on the topic (two
// partitions, embedded broker) delivered to one push stream whose
// receiver answers 202 at once; each revocation is one session-revoked
// SET, signed RS256. Reported: revocations delivered per second, with
// the stream's reader at its defaults (one lane per partition) and with
// eight key lanes per partition.
func BenchmarkPushDelivery(b *testing.B) {
	for _, lanes := range []int{1, 8} {
		b.Run(fmt.Sprintf("key-lanes=%d", lanes), func(b *testing.B) { benchPush(b, lanes) })
	}
}

func benchPush(b *testing.B, lanes int) {
	e := newEnv(b)
	cfg := e.config()
	cfg.Kafka.KeyConcurrency = lanes
	got := make(chan struct{}, 1024)
	rx := newCountingReceiver(b, got)
	e.start(cfg, nil)
	e.createStream(alphaToken, map[string]any{"delivery": map[string]any{"method": ssf.DeliveryPush, "endpoint_url": rx}})
	rows := make([]schemas.AuditRow, 0, b.N)
	for i := range b.N {
		rows = append(rows, e.revocation(fmt.Sprintf("user-%d@example.com", i), "impossible_travel"))
	}
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < len(rows); i += 500 {
		e.publish(rows[i:min(i+500, len(rows))]...)
	}
	for range b.N {
		select {
		case <-got:
		case <-time.After(60 * time.Second):
			b.Fatal("deliveries stopped")
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "revocations/s")
}

func newCountingReceiver(b *testing.B, got chan<- struct{}) string {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusAccepted)
		got <- struct{}{}
	}))
	b.Cleanup(ts.Close)
	return ts.URL + "/events"
}
