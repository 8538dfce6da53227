package bench

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/revoked-dev/revoked/consumer/audit/backends"
	"github.com/revoked-dev/revoked/deployments/local/stack"
	"github.com/revoked-dev/revoked/internal/progress"
	"github.com/revoked-dev/revoked/producer/simulate"
	"github.com/revoked-dev/revoked/schemas"
)

// latency runs the local stack at each rate, a fresh stack per rate, and
// reports the event → revoked latency of every revocation.
func (r *runner) latency(ctx context.Context) ([]Latency, error) {
	rates, err := r.cfg.rates()
	if err != nil {
		return nil, err
	}
	out := make([]Latency, 0, len(rates))
	for i, rt := range rates {
		l, err := r.latencyAt(ctx, rt, filepath.Join(r.root, fmt.Sprintf("%s-%d", PartLatency, i)))
		if err != nil {
			return out, fmt.Errorf("at %g events/s: %w", rt, err)
		}
		out = append(out, l)
	}
	return out, nil
}

// latencyAt runs the stack as `go run ./deployments/local --simulate`
// does, at rate events per second for cfg.Duration.
func (r *runner) latencyAt(ctx context.Context, rate float64, dir string) (_ Latency, err error) {
	scfg := stack.DefaultConfig()
	scfg.KafkaAddr, scfg.TokenAPIAddr, scfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	scfg.IngestAddr = "" // the traffic goes to Kafka directly
	scfg.Partitions = r.cfg.partitions(PartLatency)
	scfg.GeoIP = r.cfg.GeoIP
	scfg.Audit = r.cfg.Audit
	if scfg.Audit.Backend == backends.ChDB {
		scfg.Audit.ChDBPath = filepath.Join(dir, "chdb")
	}
	if scfg.Audit.SpoolDir != "" {
		scfg.Audit.SpoolDir = filepath.Join(scfg.Audit.SpoolDir, filepath.Base(dir))
	}
	var mu sync.Mutex
	var sample []Revocation
	s, err := stack.Start(ctx, scfg, stack.Observer{AuditRow: func(row schemas.AuditRow) {
		if row.Step.Revoked() && row.RevokeLatencyMs > 0 {
			mu.Lock()
			sample = append(sample, Revocation{
				ToDetector: time.Duration(row.DetectLatencyMs) * time.Millisecond,
				ToRevoked:  time.Duration(row.RevokeLatencyMs) * time.Millisecond,
			})
			mu.Unlock()
		}
	}}, r.logger("stack"))
	if err != nil {
		return Latency{}, err
	}
	defer func() { err = errors.Join(err, s.Close()) }()

	// The local run's traffic (deployments/local), seeded.
	sim := simulate.DefaultConfig()
	sim.Clock = simulate.ClockLive
	sim.Start = time.Time{}
	// A simulated user averages about 1.2 events a second at most (human
	// timing), so a rate needs about as many users as events a second:
	// fewer cap the rate (500 users reach about 600 events/s), far more
	// spread it so thin that a short run holds few detections.
	sim.Users = max(r.cfg.Users, int(rate))
	sim.Rate = rate
	sim.FlushInterval = 2 * time.Millisecond // as the local run's --flush-interval
	sim.Duration = r.cfg.Duration
	sim.Seed = r.cfg.Seed
	sim.AttackTimeScale = 0.05
	sim.BruteForceProb, sim.ReplayProb = 0.05, 0.05

	label := fmt.Sprintf("  stack at %s events/s", count(rate))
	bar := progress.New(r.progress, progress.Config{Label: label, Total: int64(r.cfg.Duration / time.Second), Unit: "s"})
	cpu := startCPU()
	rep, err := s.Simulate(ctx, sim, r.cfg.Drain, nil, func(st simulate.Stats) {
		bar.Set(int64(st.Elapsed / time.Second))
		if st.Elapsed >= sim.Duration {
			cpu.stop()
		}
	})
	cpu.stop()
	bar.Finish()
	if err != nil {
		return Latency{}, err
	}
	l := Latency{
		Rate: rate, Achieved: rep.EventsPerSec, Events: rep.Events,
		CaughtUp: rep.DetectorCaughtUp > 0, Unfinished: rep.Unfinished, Target: LatencyTargets[rate],
		CPU: cpu.cores,
	}
	mu.Lock()
	l.percentiles(sample)
	mu.Unlock()
	return l, nil
}
