package service

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/internal/enrich"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/testenv"
	"github.com/revoked-dev/revoked/producer/simulate"
	"github.com/revoked-dev/revoked/schemas"
)

// simulated returns n events of simulated traffic from users users at
// rate events per (simulated) second, with the local run's attack
// settings, encoded as the producer publishes them, one partition's
// offsets in order. The local run at --rate 10000 has 500 users, 20
// events per second each.
func simulated(users int, rate float64, n int) ([]kafkax.Message, error) {
	cfg := simulate.DefaultConfig()
	cfg.Users = users
	cfg.Rate = rate
	cfg.Events = int64(n)
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
}

// benchEvents is the local run's traffic at --rate 10000: 2^17 events,
// about 13 s of event time.
var benchEvents = sync.OnceValues(func() ([]kafkax.Message, error) { return simulated(500, 10_000, 1<<17) })

// steadyEvents is traffic as dense per user (20 events per second each)
// over 50 users: 2^18 events, about 4.4 minutes of event time, so that
// the second half meets the state a long run holds (records kept for
// the out-of-order allowance and the rules' windows).
var steadyEvents = sync.OnceValues(func() ([]kafkax.Message, error) { return simulated(50, 1_000, 1<<18) })

type collect struct{ msgs []kafkax.Message }

func (c *collect) WriteMessages(_ context.Context, msgs ...kafkax.Message) error {
	c.msgs = append(c.msgs, msgs...)
	return nil
}

type discardPublisher struct{}

func (discardPublisher) WriteMessages(context.Context, ...kafkax.Message) error { return nil }

// BenchmarkHandle runs the detector's whole per-event path without Kafka:
// decoding, enrichment from the address databases, the default pack,
// building, signing and encoding commands, metrics and the info log
// lines, as the service's handler does for every message, on fresh state
// (benchEvents). Publishing discards, and the baselines learnt are not
// saved. It reports events per second; run it with -cpu 1 for the rate
// of one core.
func BenchmarkHandle(b *testing.B) {
	msgs, err := benchEvents()
	if err != nil {
		b.Fatal(err)
	}
	benchHandle(b, msgs, 0)
}

// BenchmarkHandleSteady is BenchmarkHandle on state built by minutes of
// traffic: it feeds the first half of steadyEvents untimed, then times
// the second half.
func BenchmarkHandleSteady(b *testing.B) {
	msgs, err := steadyEvents()
	if err != nil {
		b.Fatal(err)
	}
	benchHandle(b, msgs, len(msgs)/2)
}

// benchHandle times s.handle over msgs[warm:], after feeding msgs[:warm]
// untimed to a fresh service; when b.N runs past the end, it starts over
// with another fresh service.
func benchHandle(b *testing.B, msgs []kafkax.Message, warm int) {
	dir := testenv.GeoIPDir(b, enrich.Files...)
	t0, err := time.Parse(time.RFC3339, "2026-01-01T00:00:00Z")
	if err != nil {
		b.Fatal(err)
	}
	now := t0.Add(time.Hour) // after every event of the traffic
	ctx := context.Background()
	handle := func(s *Service, i int) {
		// A detection's commands go to the outbox, which discards them.
		if err := s.handle(ctx, msgs[i]); err != nil && !errors.As(err, new(*kafkax.LaterError)) {
			b.Fatalf("event %d: %v", i, err)
		}
		if i%4096 == 0 {
			s.rec.mu.Lock()
			clear(s.rec.learnt)
			s.rec.mu.Unlock()
		}
	}
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
		for i := range warm {
			handle(s, i)
		}
		return s
	}
	s := newService()
	timed := len(msgs) - warm
	var bytes int64
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if i > 0 && i%timed == 0 {
			// The traffic again, on fresh state: its event times do not
			// move on.
			b.StopTimer()
			_ = s.enrich.Close()
			s = newService()
			b.StartTimer()
		}
		j := warm + i%timed
		bytes += int64(len(msgs[j].Value))
		handle(s, j)
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
