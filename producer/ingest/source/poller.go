package source

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/internal/config"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/ops"
	"github.com/revoked-dev/revoked/internal/retry"
)

// PollConfig is how a poller reads a stream. Its tags give -checkpoint,
// -poll-interval, -dedupe-window, -retry-min and -retry-max under the
// command's prefixes.
type PollConfig struct {
	// Checkpoint is the file that keeps the stream's position and
	// deduplication window (see Checkpoint).
	Checkpoint string `flag:"checkpoint" env:"CHECKPOINT" yaml:"checkpoint" usage:"file that keeps where the stream was read to (written atomically after each published page; its directory must exist and persist)"`
	// Interval is the wait between polls once the stream is caught up.
	Interval time.Duration `flag:"poll-interval" env:"POLL_INTERVAL" yaml:"poll_interval" usage:"wait between polls once caught up"`
	// Window is how many published record ids are remembered, in the
	// checkpoint too, to drop records delivered again.
	Window int `flag:"dedupe-window" env:"DEDUPE_WINDOW" yaml:"dedupe_window" usage:"record ids remembered (and checkpointed) to drop records the vendor delivers again"`
	// RetryMin and RetryMax bound the backoff after a failed fetch or
	// publish.
	RetryMin time.Duration `flag:"retry-min" env:"RETRY_MIN" yaml:"retry_min" usage:"first wait after a failed fetch or publish"`
	RetryMax time.Duration `flag:"retry-max" env:"RETRY_MAX" yaml:"retry_max" usage:"longest wait after failed fetches or publishes"`
	// UntilCaughtUp stops the poller once a fetch finds nothing new: a
	// backfill, or a run from cron.
	UntilCaughtUp bool `flag:"until-caught-up" env:"UNTIL_CAUGHT_UP" yaml:"until_caught_up" usage:"stop once the stream is caught up instead of polling on"`
}

// DefaultPollConfig polls every 10 s once caught up, remembers 10,000
// ids and backs off from 1 s to 1 min.
func DefaultPollConfig() PollConfig {
	return PollConfig{Interval: 10 * time.Second, Window: 10000, RetryMin: time.Second, RetryMax: time.Minute}
}

// Validate reports every problem with c at once.
func (c PollConfig) Validate() error {
	var p config.Problems
	p.Check(c.Checkpoint != "", "checkpoint", "required: the file that keeps the stream's position")
	p.Check(c.Interval > 0, "poll-interval", "must be positive")
	p.Check(c.Window > 0, "dedupe-window", "must be positive")
	p.Check(c.RetryMin > 0, "retry-min", "must be positive")
	p.Check(c.RetryMax >= c.RetryMin, "retry-max", "must be at least retry-min")
	return p.Err()
}

// Poller reads a vendor's stream page by page into Kafka.
type Poller struct {
	name     string
	cfg      PollConfig
	fetch    Fetcher
	mapper   Mapper
	sink     *Sink
	store    *FileStore
	clk      clockwork.Clock
	log      zerolog.Logger
	m        *Metrics
	progress func(records int64)
}

// PollerOption adjusts NewPoller.
type PollerOption func(*Poller)

// WithClock makes the poller wait on clk (tests pass a fake clock).
func WithClock(clk clockwork.Clock) PollerOption { return func(p *Poller) { p.clk = clk } }

// WithMetrics records the poller's metrics in m; without it the poller
// registers its own on a fresh registry.
func WithMetrics(m *Metrics) PollerOption { return func(p *Poller) { p.m = m } }

// WithProgress calls fn after each page with the records handled so far.
// It runs on the polling goroutine and must be quick.
func WithProgress(fn func(records int64)) PollerOption { return func(p *Poller) { p.progress = fn } }

// NewPoller returns a poller named name (the checkpoint's source and the
// metrics' label) reading f, mapping records with m and publishing
// through sink.
func NewPoller(name string, cfg PollConfig, f Fetcher, m Mapper, sink *Sink, log zerolog.Logger, opts ...PollerOption) (*Poller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if f == nil || m == nil || sink == nil {
		return nil, errors.New("source: poller needs a fetcher, a mapper and a sink")
	}
	store, err := NewFileStore(cfg.Checkpoint, name)
	if err != nil {
		return nil, err
	}
	p := &Poller{name: name, cfg: cfg, fetch: f, mapper: m, sink: sink, store: store, clk: clockwork.NewRealClock(),
		log: log.With().Str("component", "source").Str("source", name).Logger()}
	for _, opt := range opts {
		opt(p)
	}
	if p.m == nil {
		if p.m, err = NewMetrics(ops.NewRegistry()); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// Run polls the stream until ctx ends, and returns nil then (or when
// UntilCaughtUp and a fetch found nothing new). It starts from the
// checkpoint, or, when from is not empty, from that cursor instead (a
// backfill or a replay; the checkpoint's deduplication window still
// applies). A page's records are published in one batch, retried until
// Kafka acknowledges them, before the checkpoint moves past them. It
// returns an error when a fetch fails permanently (see Permanent) or
// the checkpoint cannot be read or written.
func (p *Poller) Run(ctx context.Context, from string) error {
	ckpt, found, err := p.store.Load()
	if err != nil {
		return err
	}
	cursor := ckpt.Cursor
	switch {
	case from != "":
		cursor = from
		p.log.Info().Str("from", from).Bool("checkpoint_found", found).Msg("reading from the position given")
	case found:
		p.log.Info().Str("checkpoint", p.store.Path()).Time("checkpoint_time", ckpt.UpdatedAt).Msg("resuming from the checkpoint")
	default:
		p.log.Info().Str("checkpoint", p.store.Path()).Msg("no checkpoint yet: starting where the source is configured to")
	}
	window := NewWindow(p.cfg.Window, ckpt.Seen)
	backoff := retry.New(p.cfg.RetryMin, p.cfg.RetryMax)
	var total int64
	for ctx.Err() == nil {
		page, err := p.fetch.Fetch(ctx, cursor)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if rl, ok := errors.AsType[*RateLimitedError](err); ok {
				p.m.RateLimited.WithLabelValues(p.name).Inc()
				p.log.Warn().Dur("wait", rl.Wait).Str("reason", rl.Reason).Msg("rate limited by the source")
				p.wait(ctx, rl.Wait, "rate_limit")
				continue
			}
			if IsPermanent(err) {
				return fmt.Errorf("%s: %w", p.name, err)
			}
			p.m.FetchErrors.WithLabelValues(p.name).Inc()
			d := backoff.Next()
			p.log.Warn().Err(err).Dur("retry_in", d).Msg("fetch failed")
			p.wait(ctx, d, "backoff")
			continue
		}
		backoff.Reset()
		p.m.Pages.WithLabelValues(p.name).Inc()

		msgs, ids, newest := p.route(page, window)
		if !p.publish(ctx, msgs, backoff) {
			return nil
		}
		for _, id := range ids {
			window.Add(id)
		}
		if page.Next != "" {
			cursor = page.Next
		}
		now := p.clk.Now()
		if err := p.store.Save(Checkpoint{Cursor: cursor, Seen: window.IDs(), UpdatedAt: now.UTC()}); err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		p.m.LastPage.WithLabelValues(p.name).Set(float64(now.UnixNano()) / 1e9)
		switch {
		case len(page.Records) == 0:
			p.m.Lag.WithLabelValues(p.name).Set(0)
		case !newest.IsZero():
			p.m.Lag.WithLabelValues(p.name).Set(max(now.Sub(newest).Seconds(), 0))
		}
		total += int64(len(page.Records))
		if p.progress != nil {
			p.progress(total)
		}
		p.log.Debug().Int("records", len(page.Records)).Int("published", len(msgs)).Str("cursor", cursor).Msg("page published")
		if page.More {
			continue
		}
		if p.cfg.UntilCaughtUp {
			p.log.Info().Int64("records", total).Msg("caught up")
			return nil
		}
		p.wait(ctx, p.cfg.Interval, "poll")
	}
	return nil
}

// route turns a page's records into messages, dropping those in the
// window or earlier in the page, and returns the ids of the records
// routed and the newest event time among them.
func (p *Poller) route(page Page, window *Window) ([]kafkax.Message, []string, time.Time) {
	msgs := make([]kafkax.Message, 0, len(page.Records))
	ids := make([]string, 0, len(page.Records))
	inPage := make(map[string]struct{}, len(page.Records))
	var newest time.Time
	for _, rec := range page.Records {
		if rec.Time.After(newest) {
			newest = rec.Time
		}
		if _, dup := inPage[rec.ID]; dup || rec.ID != "" && window.Contains(rec.ID) {
			p.m.Records.WithLabelValues(p.name, "duplicate").Inc()
			continue
		}
		if rec.ID != "" {
			inPage[rec.ID] = struct{}{}
			ids = append(ids, rec.ID)
		}
		msg, outcome, reason := p.sink.Route(rec, p.mapper)
		p.m.Records.WithLabelValues(p.name, outcome.String()).Inc()
		if outcome != Published {
			p.log.Debug().Str("id", rec.ID).Str("type", rec.Type).Str("outcome", outcome.String()).Str("reason", reason).Msg("record not published as an event")
		}
		msgs = append(msgs, msg)
	}
	return msgs, ids, newest
}

// publish writes msgs, retrying with backoff until Kafka takes them; it
// reports false when ctx ended first (nothing after the last checkpoint
// counts as published then).
func (p *Poller) publish(ctx context.Context, msgs []kafkax.Message, backoff *retry.Schedule) bool {
	for {
		err := p.sink.Publish(ctx, msgs)
		if err == nil {
			backoff.Reset()
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		d := backoff.Next()
		p.log.Error().Err(err).Dur("retry_in", d).Msg("publishing a page failed; the checkpoint stays before it")
		if !p.wait(ctx, d, "backoff") {
			return false
		}
	}
}

// wait waits d on the poller's clock, counting it under reason; it
// reports false when ctx ended first.
func (p *Poller) wait(ctx context.Context, d time.Duration, reason string) bool {
	p.m.WaitSeconds.WithLabelValues(p.name, reason).Add(d.Seconds())
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := p.clk.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.Chan():
		return true
	case <-ctx.Done():
		return false
	}
}
