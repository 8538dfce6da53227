// Package bench measures each part of the pipeline against the plainest
// client that does the same work, in one process and one run, and the
// whole pipeline's event → revoked latency at fixed rates. It is what
// `go run ./deployments/local bench` runs.
//
// Each part is assembled from the components' public constructors
// (detector/service, consumer/service, the audit stores, internal/kafka,
// the embedded broker, the reference token API), so it measures whatever
// those components are at the time:
//
//   - detector: N simulated events (producer/simulate, seeded) fill
//     audit.events on an embedded broker; a plain kafka-go Reader fetches
//     them all (FetchMessage, no commits), then the detector service reads,
//     decodes, enriches, runs the rules and publishes commands for all of
//     them, each side in a consumer group of its own. Events per second
//     from the first event fetched to the last.
//   - consumer: M tokens at the reference token API are revoked by M signed
//     commands through the consumer service (RFC 7009 revocation and the
//     introspection that proves it, audit rows in the configured store),
//     and M others by a plain net/http client posting the same revocation
//     and introspection with as many requests in flight as the consumer may
//     run handlers. Revocations per second.
//   - audit: R audit rows made from realistic commands go through the audit
//     Writer (hash chain, group commit, signed checkpoints), a command's
//     two rows per Enqueue as the consumer hands them over, into the chDB
//     store, and, as one raw INSERT through libchdb, into a table of the
//     same schema in the same engine; with a ClickHouse DSN, the same again
//     against the server with a raw clickhouse-go batch
//     (PrepareBatch/Append/Send). Rows per second.
//   - latency: the whole local stack (deployments/local/stack) is fed
//     simulated traffic at each fixed rate for a while, and the latency
//     from the event that completed a detection to the token API's answer
//     is reported as percentiles.
//
// Setup is deterministic (seeded simulator, fixed sizes); the timings are
// whatever the machine gives, so on a shared machine they are noisy.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/audit/backends"
	"github.com/revoked-dev/revoked/deployments/local/stack"
	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/internal/enrich"
)

// Parts of a benchmark run, in the order they run.
const (
	PartDetector = "detector"
	PartConsumer = "consumer"
	PartAudit    = "audit"
	PartLatency  = "latency"
)

// Parts lists every part in the order they run.
var Parts = []string{PartDetector, PartConsumer, PartAudit, PartLatency}

// Targets: the least ratio of project to baseline each part should reach,
// and the most p99 latency at each rate (issue 11).
const (
	TargetDetector = 0.5
	TargetConsumer = 0.5
	TargetAudit    = 0.7
)

// LatencyTargets is the most p99 event → revoked latency wanted at a rate
// (events per second); rates not listed have no target.
var LatencyTargets = map[float64]time.Duration{1000: 20 * time.Millisecond, 10000: 50 * time.Millisecond}

// Config configures a benchmark run.
type Config struct {
	// Parts to run, any of Parts.
	Parts []string `flag:"parts" env:"REVOKED_BENCH_PARTS" usage:"parts to run, comma-separated: detector, consumer, audit, latency"`
	// Events is how many simulated events the detector part reads (each
	// side).
	Events int `flag:"events" env:"REVOKED_BENCH_EVENTS" usage:"simulated events the detector and the raw fetch each read"`
	// Commands is how many tokens the consumer part revokes (each side).
	Commands int `flag:"commands" env:"REVOKED_BENCH_COMMANDS" usage:"tokens the consumer and the plain client each revoke"`
	// Rows is how many audit rows the audit part writes (each side).
	Rows int `flag:"rows" env:"REVOKED_BENCH_ROWS" usage:"audit rows the store and each raw insert write"`
	// Rates are the fixed event rates of the latency part, events/s.
	Rates []string `flag:"rates" env:"REVOKED_BENCH_RATES" usage:"event rates (events/s) of the latency part, comma-separated"`
	// Duration is how long the latency part feeds traffic at each rate.
	Duration time.Duration `flag:"duration" env:"REVOKED_BENCH_DURATION" usage:"how long the latency part feeds traffic at each rate"`
	// Drain is how long the latency part waits after feeding for the last
	// revocations.
	Drain time.Duration `flag:"drain" env:"REVOKED_BENCH_DRAIN" usage:"how long the latency part waits for the last revocations after each rate"`
	// Users is the number of simulated users of the detector part, and
	// the fewest of the latency part, which takes one per event a second
	// of its rate when that is more.
	Users int `flag:"users" env:"REVOKED_BENCH_USERS" usage:"simulated users (the latency part takes at least one per event a second)"`
	// Seed seeds the simulator and the audit rows.
	Seed int64 `flag:"seed" env:"REVOKED_BENCH_SEED" usage:"seed of the simulated traffic and rows (same seed, same setup)"`
	// Partitions of audit.events and revoke.commands on the embedded
	// brokers; 0: each part's own, the local stack's default for the
	// latency part (stack.DefaultPartitions) and 8 for the detector part,
	// whose decoding runs in parallel over them.
	Partitions int `flag:"partitions" env:"REVOKED_BENCH_PARTITIONS" usage:"partitions of audit.events and revoke.commands (0: the local stack's for the latency part, 8 for the detector part)"`
	// ClickHouseDSN, when set, adds the ClickHouse rows to the audit part:
	// chstore through the Writer against a raw clickhouse-go batch, in a
	// database of their own that is dropped afterwards. It may hold a
	// password; it is printed redacted.
	ClickHouseDSN string `flag:"clickhouse-dsn" env:"REVOKED_BENCH_CLICKHOUSE_DSN" usage:"ClickHouse server for the audit part's ClickHouse rows, clickhouse://user:password@host:9000/db (empty: chDB only)"`
	// Audit is the store the consumer and latency parts write to (chDB by
	// default, in a temporary directory); the audit part always measures
	// chDB, and ClickHouse with ClickHouseDSN.
	Audit backends.Config `flag:"audit" env:"REVOKED_AUDIT"`
	// GeoIP is the detector's address enrichment: -geoip.dir,
	// REVOKED_GEOIP_DIR.
	GeoIP enrich.Config `flag:"geoip" env:"REVOKED_GEOIP"`
}

// DefaultConfig runs every part at sizes that take a few minutes in all.
func DefaultConfig() Config {
	return Config{
		Parts:      slices.Clone(Parts),
		Events:     200_000,
		Commands:   20_000,
		Rows:       50_000,
		Rates:      []string{"1000", "10000"},
		Duration:   10 * time.Second,
		Drain:      30 * time.Second,
		Users:      1000,
		Seed:       1,
		Partitions: 0,
		Audit:      backends.Config{Backend: backends.ChDB},
		GeoIP:      enrich.DefaultConfig(),
	}
}

// partitions is the partition count of part (PartDetector or
// PartLatency).
func (c Config) partitions(part string) int {
	switch {
	case c.Partitions > 0:
		return c.Partitions
	case part == PartLatency:
		return stack.DefaultPartitions()
	}
	return detectorPartitions
}

// detectorPartitions is the detector part's default partition count: its
// handlers decode in parallel, one per partition, while the engine takes
// one event at a time; with 2 partitions it read 28,000 events/s where 8
// read 35,000 (two runs each).
const detectorPartitions = 8

// Validate reports every problem at once.
func (c Config) Validate() error {
	var p config.Problems
	p.Check(len(c.Parts) > 0, "parts", "at least one of %s", strings.Join(Parts, ", "))
	for _, part := range c.Parts {
		p.Check(slices.Contains(Parts, part), "parts", "unknown part %q (want %s)", part, strings.Join(Parts, ", "))
	}
	p.Check(c.Events > 0, "events", "must be positive")
	p.Check(c.Commands > 0, "commands", "must be positive")
	p.Check(c.Rows > 1, "rows", "must be at least 2")
	if c.runs(PartLatency) {
		_, err := c.rates()
		p.Check(err == nil, "rates", "%v", err)
		p.Check(c.Duration >= time.Second, "duration", "must be at least a second")
		p.Check(c.Drain > 0, "drain", "must be positive")
	}
	p.Check(c.Users > 0, "users", "must be positive")
	p.Check(c.Partitions >= 0 && c.Partitions <= 256, "partitions", "must be in [0, 256]")
	if c.Audit.Backend == backends.ChDB && c.Audit.ChDBPath != "" {
		p.Addf("audit.chdb-path", "leave it empty: each part keeps its chDB data in a directory of its own, removed at the end")
	}
	a := c.Audit
	if a.Backend == backends.ChDB {
		a.ChDBPath = "set-per-part"
	}
	p.Nest("audit", a.Validate())
	return p.Err()
}

func (c Config) runs(part string) bool { return slices.Contains(c.Parts, part) }

func (c Config) rates() ([]float64, error) {
	if len(c.Rates) == 0 {
		return nil, errors.New("at least one rate")
	}
	out := make([]float64, 0, len(c.Rates))
	for _, s := range c.Rates {
		r, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || r <= 0 {
			return nil, fmt.Errorf("rate %q is not a positive number of events per second", s)
		}
		out = append(out, r)
	}
	return out, nil
}

// Run runs the configured parts one after another (so they do not compete
// for the machine), drawing progress on progress, and returns their
// results. It stops at the first part that fails.
func Run(ctx context.Context, cfg Config, progress io.Writer, log zerolog.Logger) (Results, error) {
	if err := cfg.Validate(); err != nil {
		return Results{}, err
	}
	root, err := os.MkdirTemp("", "revoked-bench-")
	if err != nil {
		return Results{}, err
	}
	defer os.RemoveAll(root)
	r := &runner{cfg: cfg, root: root, progress: progress, log: log}
	var res Results
	for _, part := range Parts {
		if !cfg.runs(part) {
			continue
		}
		fmt.Fprintf(progress, "bench: %s\n", part)
		var err error
		switch part {
		case PartDetector:
			var row Row
			row, err = r.detector(ctx)
			res.Rows = append(res.Rows, row)
		case PartConsumer:
			var row Row
			row, err = r.consumer(ctx)
			res.Rows = append(res.Rows, row)
		case PartAudit:
			var rows []Row
			rows, err = r.audit(ctx)
			res.Rows = append(res.Rows, rows...)
		case PartLatency:
			res.Latency, err = r.latency(ctx)
		}
		if err != nil {
			return res, fmt.Errorf("%s: %w", part, err)
		}
	}
	return res, nil
}

// runner carries what every part needs.
type runner struct {
	cfg      Config
	root     string // temporary directory of the run, removed at its end
	progress io.Writer
	log      zerolog.Logger
}

func (r *runner) logger(component string) zerolog.Logger {
	return r.log.With().Str("component", component).Logger()
}
