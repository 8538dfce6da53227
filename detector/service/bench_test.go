package service

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"github.com/revoked-dev/revoked/internal/enrich"
	"github.com/revoked-dev/revoked/internal/testenv"
	"github.com/revoked-dev/revoked/producer/simulate"
	"github.com/revoked-dev/revoked/schemas"
)

// benchEvents is simulated traffic as the local run sends it at
// --rate 10000 (500 users, its attack settings), encoded as the producer
// publishes it: 2^17 messages, about 13 s of event time.
var benchEvents = sync.OnceValues(func() ([]kafka.Message, error) {
	cfg := simulate.DefaultConfig()
	cfg.Users = 500
	cfg.Rate = 10_000
	cfg.Events = 1 << 17
	cfg.AttackTimeScale = 0.05
	cfg.BruteForceProb, cfg.ReplayProb = 0.05, 0.05
	sim, err := simulate.New(cfg, nil, zerolog.Nop())
	if err != nil {
		return nil, err
	}
	var c collect
	if _, err := sim.Run(context.Background(), &c, simulate.Options{}); err != nil {
		return nil, err
	}
	for i := range c.msgs {
		c.msgs[i].Partition, c.msgs[i].Offset = 0, int64(i)
	}
	return c.msgs, nil
})

type collect struct{ msgs []kafka.Message }

func (c *collect) WriteMessages(_ context.Context, msgs ...kafka.Message) error {
	c.msgs = append(c.msgs, msgs...)
	return nil
}

type discardPublisher struct{}

func (discardPublisher) WriteMessages(context.Context, ...kafka.Message) error { return nil }

// BenchmarkHandle runs the detector's whole per-event path without Kafka:
// decoding, enrichment from the address databases, the default pack,
// building, signing and encoding commands, metrics and the info log
// lines, as the service's handler does for every message. Publishing
// discards, and the baselines learnt are not saved. It reports events per
// second; run it with -cpu 1 for the rate of one core.
func BenchmarkHandle(b *testing.B) {
	msgs, err := benchEvents()
	if err != nil {
		b.Fatal(err)
	}
	dir := testenv.GeoIPDir(b, enrich.Files...)
	t0, err := time.Parse(time.RFC3339, "2026-01-01T00:00:00Z")
	if err != nil {
		b.Fatal(err)
	}
	now := t0.Add(time.Hour) // after every event of the traffic
	newService := func() *Service {
		cfg := DefaultConfig()
		cfg.Reader.Brokers = []string{"127.0.0.1:1"} // never contacted
		cfg.Engine.Issuer = "detector"
		cfg.GeoIP.Dir = dir
		priv, err := schemas.GenerateSigningKey()
		if err != nil {
			b.Fatal(err)
		}
		s, err := New(cfg, schemas.NewSigner(priv), zerolog.New(io.Discard).Level(zerolog.InfoLevel),
			WithPublisher(discardPublisher{}), WithRegistry(prometheus.NewRegistry()),
			WithClock(func() time.Time { return now }))
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	s := newService()
	ctx := context.Background()
	var bytes int64
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i > 0 && i%len(msgs) == 0 {
			// The traffic again, on fresh state: its event times do not
			// move on.
			b.StopTimer()
			_ = s.enrich.Close()
			s = newService()
			b.StartTimer()
		}
		m := msgs[i%len(msgs)]
		bytes += int64(len(m.Value))
		if err := s.handle(ctx, m); err != nil {
			b.Fatalf("event %d: %v", i%len(msgs), err)
		}
		if i%4096 == 0 {
			s.rec.mu.Lock()
			clear(s.rec.learnt)
			s.rec.mu.Unlock()
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(bytes)/float64(b.N), "bytes/event")
	_ = s.enrich.Close()
}

// BenchmarkDecodeSimulated decodes the simulated traffic of
// BenchmarkHandle: DecodeEvent on what the producer publishes.
func BenchmarkDecodeSimulated(b *testing.B) {
	msgs, err := benchEvents()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := schemas.DecodeEvent(msgs[i%len(msgs)].Value); err != nil {
			b.Fatal(err)
		}
	}
}
