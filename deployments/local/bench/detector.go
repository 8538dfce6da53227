package bench

import (
	"context"
	"errors"
	"fmt"
	"runtime/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	detector "github.com/revoked-dev/revoked/detector/service"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/kafka/broker"
	"github.com/revoked-dev/revoked/internal/ops"
	"github.com/revoked-dev/revoked/internal/progress"
	"github.com/revoked-dev/revoked/producer/simulate"
	"github.com/revoked-dev/revoked/schemas"
)

// stallTimeout is how long a side may go without progress before the
// part fails instead of waiting for ever.
const stallTimeout = 2 * time.Minute

// pollInterval is how often a side's progress is sampled, by gathering
// its registry. At 100 ms the end of a run is known within 100 ms, under
// 1% of a run of the default size.
const pollInterval = 100 * time.Millisecond

// startBroker starts an embedded broker on a free loopback port with the
// pipeline's topics.
func (r *runner) startBroker(ctx context.Context) (*broker.Broker, error) {
	b, err := broker.Start(ctx, broker.Config{
		Addr: "127.0.0.1:0",
		Topics: map[string]int{
			schemas.TopicAuditEvents: r.cfg.partitions(PartDetector), schemas.TopicRevokeCommands: r.cfg.partitions(PartDetector), schemas.TopicDLQ: 1,
		},
		DefaultPartitions: 1,
		Logger:            r.logger("kafka"),
	})
	if err != nil {
		return nil, fmt.Errorf("starting the embedded broker: %w", err)
	}
	return b, nil
}

// detector fills audit.events with simulated events and reads them with a
// plain kafka-go Reader and with the detector service.
func (r *runner) detector(ctx context.Context) (Row, error) {
	b, err := r.startBroker(ctx)
	if err != nil {
		return Row{}, err
	}
	defer b.Close()
	brokers := []string{b.Addr()}
	if err := r.fillEvents(ctx, brokers); err != nil {
		return Row{}, err
	}

	dcfg := detector.DefaultConfig()
	var raw, project float64
	err = measured(ctx, PartDetector, sideBaseline, func(ctx context.Context) (err error) {
		raw, err = r.rawFetch(ctx, brokers, dcfg.Reader)
		return err
	})
	if err != nil {
		return Row{}, fmt.Errorf("raw fetch: %w", err)
	}
	err = measured(ctx, PartDetector, sideProject, func(ctx context.Context) (err error) {
		project, err = r.detectorRead(ctx, brokers, dcfg)
		return err
	})
	if err != nil {
		return Row{}, fmt.Errorf("detector: %w", err)
	}
	return Row{
		Part: "detector", Unit: "events/s", Project: project, Baseline: raw,
		Against: "kafka-go FetchMessage", Target: TargetDetector,
	}, nil
}

// fillEvents publishes cfg.Events simulated events (fast clock, seeded)
// to audit.events.
func (r *runner) fillEvents(ctx context.Context, brokers []string) error {
	scfg := simulate.DefaultConfig()
	scfg.Users = r.cfg.Users
	scfg.Seed = r.cfg.Seed
	scfg.Events = int64(r.cfg.Events)
	sim, err := simulate.New(scfg, nil, r.logger("simulate"))
	if err != nil {
		return err
	}
	wcfg := kafkax.DefaultWriterConfig()
	wcfg.Brokers = brokers
	wcfg.ClientID = "revoked-bench"
	wcfg.BatchSize = scfg.BatchSize
	w, err := kafkax.NewWriter(wcfg, r.logger("bench-writer"))
	if err != nil {
		return err
	}
	bar := progress.New(r.progress, progress.Config{Label: "  filling audit.events", Total: int64(r.cfg.Events), Unit: "events"})
	_, err = sim.Run(ctx, w, simulate.Options{Progress: func(st simulate.Stats) { bar.Set(st.Events) }})
	bar.Finish()
	return errors.Join(err, w.Close())
}

// rawFetch reads every event of audit.events with a plain kafka-go Reader
// in a consumer group of its own, fetching as the detector's reader is
// configured to (bytes per fetch, wait) and committing nothing. It returns
// events per second from the first event to the last.
func (r *runner) rawFetch(ctx context.Context, brokers []string, rc kafkax.ReaderConfig) (float64, error) {
	reader := kafkax.NewRawGroupReader(brokers, schemas.TopicAuditEvents, "revoked-bench-raw", rc)
	defer reader.Close()
	n := int64(r.cfg.Events)
	bar := progress.New(r.progress, progress.Config{Label: "  raw fetch", Total: n, Unit: "events"})
	defer bar.Finish()
	var first time.Time
	for i := int64(0); i < n; i++ {
		fctx, cancel := context.WithTimeout(ctx, stallTimeout)
		_, err := reader.Fetch(fctx)
		cancel()
		if err != nil {
			return 0, fmt.Errorf("after %d of %d events: %w", i, n, err)
		}
		if i == 0 {
			first = time.Now()
		}
		if i%1024 == 0 {
			bar.Set(i)
		}
	}
	bar.Set(n)
	return rate(n, time.Since(first)), nil
}

// detectorRead runs the detector service over audit.events until it has
// read every event and returns events per second from the first to the
// last, as its events counter shows them.
func (r *runner) detectorRead(ctx context.Context, brokers []string, dcfg detector.Config) (float64, error) {
	dcfg.Reader.Brokers = brokers
	dcfg.Reader.GroupID = "revoked-bench-detector"
	dcfg.Reader.StartOffset = kafkax.StartFirst
	dcfg.Writer.Brokers = brokers
	dcfg.Engine.Issuer = "detector"
	dcfg.GeoIP = r.cfg.GeoIP
	signer, err := newSigner()
	if err != nil {
		return 0, err
	}
	reg := prometheus.NewRegistry()
	det, err := detector.New(dcfg, signer, r.logger("detector"), detector.WithRegistry(reg))
	if err != nil {
		return 0, err
	}
	bar := progress.New(r.progress, progress.Config{Label: "  detector", Total: int64(r.cfg.Events), Unit: "events"})
	defer bar.Finish()
	read := func() int64 { return int64(ops.CounterSum(reg, "revoked_detector_events_total")) }
	return runUntil(ctx, det.Run, int64(r.cfg.Events), read, bar)
}

// runUntil runs run until done reports n, drawing bar, and returns n per
// second from the moment done first reported more than zero. It stops run
// and returns its error if it stops first, or an error if done does not
// move for stallTimeout.
func runUntil(ctx context.Context, run func(context.Context) error, n int64, done func() int64, bar *progress.Bar) (float64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- run(ctx) }()
	stop := func() error {
		cancel()
		if err := <-stopped; err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
		return nil
	}
	var first time.Time
	last, lastMove := int64(0), time.Now()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		select {
		case err := <-stopped:
			if err == nil {
				err = errors.New("stopped on its own")
			}
			return 0, fmt.Errorf("after %d of %d: %w", last, n, err)
		case <-ctx.Done():
			return 0, errors.Join(ctx.Err(), stop())
		case now := <-tick.C:
			got := done()
			if got > 0 && first.IsZero() {
				first = now
			}
			if got != last {
				last, lastMove = got, now
				bar.Set(got)
			}
			if got >= n {
				elapsed := now.Sub(first)
				return rate(n, elapsed), stop()
			}
			if now.Sub(lastMove) > stallTimeout {
				return 0, errors.Join(fmt.Errorf("no progress for %s at %d of %d", stallTimeout, got, n), stop())
			}
		}
	}
}

func newSigner() (*schemas.Signer, error) {
	priv, err := schemas.GenerateSigningKey()
	if err != nil {
		return nil, err
	}
	return schemas.NewSigner(priv), nil
}

// Sides of a part, as the pprof label "side" names them.
const (
	sideProject  = "project"
	sideBaseline = "baseline"
)

// measured runs f with the pprof labels part and side, which every
// goroutine it starts inherits, so that a profile of the run can be cut to
// one side of one part: go tool pprof -tagfocus side=project,part=consumer.
func measured(ctx context.Context, part, side string, f func(context.Context) error) error {
	var err error
	pprof.Do(ctx, pprof.Labels("part", part, "side", side), func(ctx context.Context) { err = f(ctx) })
	return err
}

// rate is n per second of d; a d too small to measure counts as a
// microsecond.
func rate(n int64, d time.Duration) float64 {
	return float64(n) / max(d, time.Microsecond).Seconds()
}
