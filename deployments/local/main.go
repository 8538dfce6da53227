// Command local runs the whole revocation pipeline in one process on
// embedded defaults: an in-process Kafka broker on 127.0.0.1:9092, the
// reference token API on 127.0.0.1:8090, the detector, the consumer with a
// chDB audit store, the analyst API on 127.0.0.1:8080 and the HTTP ingest
// endpoint on 127.0.0.1:8081.
//
//	go run ./deployments/local                  run until interrupted
//	go run ./deployments/local --simulate 60s   feed simulated traffic, print a summary, exit
//	go run ./deployments/local bench            measure each part against its plain baseline
//	go run ./deployments/local broker           run the embedded Kafka broker alone
//
// Any Kafka client can produce AuditEvents to audit.events and read
// revoke.commands on the broker's port. chDB needs libchdb.so, and the
// detector's address enrichment reads the databases in -geoip.dir
// (REVOKED_GEOIP_DIR): see deployments/local/run.sh, which installs both.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/revoked-dev/revoked/consumer/audit/backends"
	"github.com/revoked-dev/revoked/deployments/local/bench"
	"github.com/revoked-dev/revoked/deployments/local/stack"
	"github.com/revoked-dev/revoked/internal/cli"
	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/internal/kafka/broker"
	"github.com/revoked-dev/revoked/internal/ops"
	"github.com/revoked-dev/revoked/internal/progress"
	"github.com/revoked-dev/revoked/producer/simulate"
	"github.com/revoked-dev/revoked/schemas"
)

func main() {
	setGCPercent()
	cli.Exit("local", dispatch(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// localGCPercent is the garbage collector's target in this all-in-one
// process unless GOGC says otherwise. The in-process broker keeps every
// message in memory, so most of the heap is the broker's log, which Go's
// default (100) marks again every time the heap doubles. At 400 the
// bench's latency part at 10,000 events/s (10,000 users, 30 s, two runs
// each, interleaved) measured an event → revoked p99 of 30 and 36 ms
// against 51 and 47 ms at 100. The detector and consumer binaries keep
// Go's default: their heaps are their own state, and GOGC and GOMEMLIMIT
// are the operator's to set (see deployments/OPERATIONS.md).
const localGCPercent = 400

func setGCPercent() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(localGCPercent)
	}
}

// dispatch runs the bench subcommand, or the pipeline (the default, whose
// arguments are flags).
func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd, rest := cli.Subcommand(args, "run")
	switch cmd {
	case "run":
		return run(ctx, rest, stdout, stderr)
	case "bench":
		return runBench(ctx, rest, stdout, stderr)
	case "broker":
		return runBroker(ctx, rest, stdout, stderr)
	}
	return fmt.Errorf("unknown command %q (want bench, broker, or flags to run the pipeline)", cmd)
}

type brokerConfig struct {
	Broker broker.Config `flag:"broker" env:"REVOKED_BROKER"`
	Topics []string      `flag:"broker.topics" env:"REVOKED_BROKER_TOPICS" usage:"topics to create at start, as name=partitions (or name for the default count), comma-separated"`
	Log    ops.LogConfig `flag:"log" env:"REVOKED_LOG"`
}

// runBroker runs the embedded broker on its own, as a stand-in for Kafka
// for the commands run as separate processes (the deployment tests), until
// interrupted. It prints the address it listens on, one line on stdout,
// once it accepts connections.
func runBroker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := brokerConfig{Broker: broker.DefaultConfig(), Log: ops.DefaultLogConfig()}
	if err := config.Load(cli.NewFlagSet("local broker", stderr), args, &cfg); err != nil {
		return err
	}
	var p config.Problems
	cfg.Broker.Topics = map[string]int{}
	for _, t := range cfg.Topics {
		name, n, found := strings.Cut(t, "=")
		partitions := 0
		if found {
			var err error
			if partitions, err = strconv.Atoi(n); err != nil || partitions < 1 {
				p.Addf("broker.topics", "%q: want name=partitions with a positive count", t)
			}
		}
		cfg.Broker.Topics[strings.TrimSpace(name)] = partitions
	}
	p.Nest("broker", cfg.Broker.Validate())
	p.Nest("log", cfg.Log.Validate())
	if err := p.Err(); err != nil {
		return err
	}
	log, err := ops.NewLogger(cfg.Log, stderr)
	if err != nil {
		return err
	}
	cfg.Broker.Logger = log
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	b, err := broker.Start(ctx, cfg.Broker)
	if err != nil {
		return err
	}
	defer b.Close()
	log.Info().Str("addr", b.Addr()).Int("topics", len(cfg.Broker.Topics)).Msg("embedded broker listening")
	fmt.Fprintln(stdout, b.Addr())
	<-ctx.Done()
	return nil
}

type benchConfig struct {
	Bench bench.Config
	Log   ops.LogConfig `flag:"log" env:"REVOKED_LOG"`
	// CPUProfile, when set, is where the run's CPU profile is written
	// (go tool pprof -top FILE), to see where the parts spend their time.
	CPUProfile string `flag:"cpuprofile" usage:"write a CPU profile of the run to this file"`
	// BlockProfile, when set, is where the run's blocking profile is
	// written: where goroutines waited (locks, channels, select) and how
	// long, which shows what holds a part back when its CPU is not busy.
	BlockProfile string `flag:"blockprofile" usage:"write a profile of where goroutines waited (locks, channels) to this file"`
}

// startBlockProfile records every blocking event from now and returns
// what writes them to path (empty: none).
func startBlockProfile(path string) (stop func() error) {
	if path == "" {
		return func() error { return nil }
	}
	runtime.SetBlockProfileRate(1)
	return func() error {
		runtime.SetBlockProfileRate(0)
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		return errors.Join(pprof.Lookup("block").WriteTo(f, 0), f.Close())
	}
}

// startCPUProfile starts a CPU profile written to path (empty: none) and
// returns what stops it.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		return nil, errors.Join(err, f.Close())
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}

// runBench runs the benchmark and prints its tables to stdout; progress
// and logs go to stderr.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := benchConfig{Bench: bench.DefaultConfig(), Log: ops.DefaultLogConfig()}
	cfg.Log.Level = "warn"
	if err := config.Load(cli.NewFlagSet("local bench", stderr), args, &cfg); err != nil {
		return err
	}
	var p config.Problems
	p.Nest("", cfg.Bench.Validate())
	p.Nest("log", cfg.Log.Validate())
	if err := p.Err(); err != nil {
		return err
	}
	log, err := ops.NewLogger(cfg.Log, stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	stopProfile, err := startCPUProfile(cfg.CPUProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	stopBlock := startBlockProfile(cfg.BlockProfile)
	res, err := bench.Run(ctx, cfg.Bench, stderr, log)
	res.Print(stdout)
	return errors.Join(err, stopBlock())
}

// maxBenignLines is how many benign users revoked the local run's
// report describes.
const maxBenignLines = 20

// LocalFlushInterval is the local run's bound on how long a simulated
// event waits for its batch. The simulator's own default, 50 ms, suits a
// remote broker; here it was most of event → revoked latency (p50 35 ms,
// p99 61 ms at 600 events/s, against 5 and 16 ms with 2 ms).
const LocalFlushInterval = 2 * time.Millisecond

type localConfig struct {
	Stack    stack.Config
	Log      ops.LogConfig `flag:"log" env:"REVOKED_LOG"`
	DataDir  string        `flag:"data-dir" env:"REVOKED_LOCAL_DATA_DIR" usage:"directory of the chDB audit store (default: a new temporary directory, removed at exit)"`
	Simulate time.Duration `flag:"simulate" usage:"feed this long of simulated traffic, print a summary and exit (0: run until interrupted)"`
	Users    int           `flag:"users" usage:"simulated users"`
	Rate     float64       `flag:"rate" usage:"simulated events per second"`
	// FlushInterval is how long a simulated event may wait for others
	// to be published with it: short, as a source that publishes each
	// event as it happens, since it counts in event → revoked latency.
	FlushInterval time.Duration `flag:"flush-interval" usage:"longest time a simulated event waits to be published with others while no batch is being written"`
	Seed          int64         `flag:"seed" usage:"simulation seed (0: from the clock)"`
	Truth         string        `flag:"ground-truth" usage:"write the simulation's ground truth (JSON lines) to this file"`
	Drain         time.Duration `flag:"drain" usage:"how long to wait after the simulation for the last revocations"`
	// Stay keeps the pipeline and the analyst UI up after a simulation,
	// to browse its audit trail.
	Stay bool `flag:"stay" usage:"after --simulate, keep the pipeline and the analyst UI running until interrupted"`
	// AttackScale compresses attackers' timing so a one-minute run holds
	// whole attacks (a realistic brute force takes minutes).
	AttackScale float64 `flag:"attack-time-scale" usage:"multiplies attackers' timing in the simulation (1: realistic)"`
	// TokenIDs gives -token-id-pattern and REVOKED_TOKEN_ID_PATTERN, for
	// every part of the stack at once.
	TokenIDs cli.TokenIDs
	// CPUProfile, when set, is where the run's CPU profile is written.
	CPUProfile string `flag:"cpuprofile" usage:"write a CPU profile of the run to this file"`
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := localConfig{Stack: stack.DefaultConfig(), Log: ops.DefaultLogConfig(), Users: 500, Rate: 300, FlushInterval: LocalFlushInterval, Drain: 30 * time.Second, AttackScale: 0.05}
	cfg.Log.Level = "warn"
	if err := config.Load(cli.NewFlagSet("local", stderr), args, &cfg); err != nil {
		return err
	}
	if cfg.Stack.Audit.Backend == backends.ChDB && cfg.Stack.Audit.ChDBPath == "" {
		dir := cfg.DataDir
		if dir == "" {
			var err error
			if dir, err = os.MkdirTemp("", "revoked-local-"); err != nil {
				return err
			}
			defer os.RemoveAll(dir)
		}
		cfg.Stack.Audit.ChDBPath = dir
		cfg.Stack.KeyDir = filepath.Join(dir, "keys")
	}
	var p config.Problems
	p.Nest("", cfg.Stack.Validate())
	p.Check(cfg.Simulate >= 0, "simulate", "must not be negative")
	p.Check(cfg.Users > 0, "users", "must be positive")
	p.Check(cfg.Rate > 0, "rate", "must be positive")
	p.Check(cfg.FlushInterval > 0, "flush-interval", "must be positive")
	p.Nest("", cfg.TokenIDs.Validate())
	if err := p.Err(); err != nil {
		return err
	}
	if err := cfg.TokenIDs.Apply(); err != nil {
		return err
	}
	stopProfile, err := startCPUProfile(cfg.CPUProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	log, err := ops.NewLogger(cfg.Log, stderr)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := stack.Start(ctx, cfg.Stack, stack.Observer{}, log)
	if err != nil {
		return err
	}
	defer s.Close()
	fmt.Fprintf(stderr, "pipeline up: kafka %s, token API %s, analyst UI %s/ui/, analyst API %s/api/v1/revocations, metrics %s/metrics\n",
		s.Brokers[0], s.TokenAPIURL, s.HTTPURL, s.HTTPURL, s.HTTPURL)
	if cfg.Stack.KeyDir != "" {
		kept := ""
		if cfg.DataDir == "" {
			kept = " (this directory is removed at exit; --data-dir keeps the trail and its key)"
		}
		fmt.Fprintf(stderr, "audit checkpoints signed with %s; verify the trail with: consumer verify -audit.backend chdb -audit.chdb-path %s -verify-key-files %s%s\n",
			filepath.Join(cfg.Stack.KeyDir, stack.CheckpointKeyFile), cfg.Stack.Audit.ChDBPath, filepath.Join(cfg.Stack.KeyDir, stack.CheckpointPublicKeyFile), kept)
	}

	if cfg.Simulate == 0 {
		fmt.Fprintln(stderr, "running until interrupted (Ctrl-C); produce AuditEvents to audit.events")
		<-ctx.Done()
		return s.Close()
	}

	scfg := simulate.DefaultConfig()
	scfg.Clock = simulate.ClockLive
	scfg.Users = cfg.Users
	scfg.Rate = cfg.Rate
	scfg.FlushInterval = cfg.FlushInterval
	scfg.Duration = cfg.Simulate
	scfg.Start = time.Time{}
	scfg.Seed = cfg.Seed
	scfg.AttackTimeScale = cfg.AttackScale
	scfg.BruteForceProb, scfg.ReplayProb = 0.05, 0.05
	if scfg.Seed == 0 {
		scfg.Seed = time.Now().UnixNano()
	}
	var truth io.Writer
	if cfg.Truth != "" {
		f, err := os.Create(cfg.Truth)
		if err != nil {
			return err
		}
		defer f.Close()
		truth = f
	}
	bar := progress.New(stderr, progress.Config{Label: "simulating", Total: int64(cfg.Simulate / time.Second), Unit: "s"})
	report, err := s.Simulate(ctx, scfg, cfg.Drain, truth, func(st simulate.Stats) { bar.Set(int64(st.Elapsed / time.Second)) })
	bar.Finish()
	if err != nil {
		return err
	}
	printReport(stdout, report)
	if cfg.Stay {
		fmt.Fprintf(stderr, "analyst UI %s/ui/ — running until interrupted (Ctrl-C)\n", s.HTTPURL)
		<-ctx.Done()
	}
	if err := s.Close(); err != nil {
		return err
	}
	if report.TokensStillActive > 0 || report.Unfinished > 0 {
		return fmt.Errorf("%d attacked tokens still active, %d commands unfinished", report.TokensStillActive, report.Unfinished)
	}
	return nil
}

func printReport(w io.Writer, r stack.Report) {
	fmt.Fprintf(w, "\nsimulated traffic\n")
	fmt.Fprintf(w, "  events             %d in %s (%.0f events/s)\n", r.Events, r.Elapsed.Round(time.Millisecond), r.EventsPerSec)
	if r.DetectorCaughtUp > 0 {
		fmt.Fprintf(w, "  detector           read all %d by %s after the start (%.0f events/s sustained)\n",
			r.DetectorEvents, r.DetectorCaughtUp.Round(time.Millisecond), float64(r.DetectorEvents)/r.DetectorCaughtUp.Seconds())
	} else {
		fmt.Fprintf(w, "  detector           read %d, had not caught up by the end\n", r.DetectorEvents)
	}
	fmt.Fprintf(w, "detections per rule\n")
	rules := make([]string, 0, len(r.Detections))
	for k := range r.Detections {
		rules = append(rules, k)
	}
	sort.Strings(rules)
	for _, k := range rules {
		fmt.Fprintf(w, "  %-18s %d\n", k, r.Detections[k])
	}
	fmt.Fprintf(w, "audit trail\n")
	steps := make([]string, 0, len(r.Steps))
	for k := range r.Steps {
		steps = append(steps, string(k))
	}
	sort.Strings(steps)
	for _, k := range steps {
		fmt.Fprintf(w, "  %-18s %d\n", k, r.Steps[schemas.Step(k)])
	}
	fmt.Fprintf(w, "latency (from the event that completed a detection)\n")
	fmt.Fprintf(w, "  to detection       p50 %s  p99 %s  (n=%d)\n", r.EventToDetect.P50, r.EventToDetect.P99, r.EventToDetect.N)
	fmt.Fprintf(w, "  to token revoked   p50 %s  p99 %s  max %s  (n=%d)\n", r.EventToRevoke.P50, r.EventToRevoke.P99, r.EventToRevoke.Max, r.EventToRevoke.N)
	fmt.Fprintf(w, "against the ground truth\n")
	fmt.Fprintf(w, "  attacks detected   %d of %d\n", r.AttacksDetected, r.Attacks)
	for _, m := range r.Missed {
		fmt.Fprintf(w, "    missed %s on %s (%s .. %s)\n", m.Attack, m.UserID, m.Start.Format(time.TimeOnly), m.End.Format(time.TimeOnly))
	}
	for _, m := range r.LoggedOut {
		fmt.Fprintf(w, "    not detected, stopped by the victim's logout: %s on %s (%s .. %s)\n", m.Attack, m.UserID, m.Start.Format(time.TimeOnly), m.End.Format(time.TimeOnly))
	}
	fmt.Fprintf(w, "  benign users revoked %d%s\n", len(r.FalsePositives), byRule(r.FalsePositivesByRule))
	for i, b := range r.BenignRevocations {
		if i == maxBenignLines {
			fmt.Fprintf(w, "    ... and %d more\n", len(r.BenignRevocations)-i)
			break
		}
		fmt.Fprintf(w, "    %s\n", b)
	}
	fmt.Fprintf(w, "  attacked tokens    %d introspected, %d still active\n", r.TokensChecked, r.TokensStillActive)
	for _, t := range r.StillActive {
		fmt.Fprintf(w, "    still active: %s\n", t)
	}
	a := r.AfterRevocation
	fmt.Fprintf(w, "tokens the token API issued to a user after revoking them\n")
	fmt.Fprintf(w, "  after revoke_and_reverify, before re-verifying  %d (named by an attack %d)\n", a.Unverified, a.AttackerUnverified)
	fmt.Fprintf(w, "  after a plain revocation or re-verifying        %d (named by an attack %d)\n", a.Later, a.AttackerLater)
	fmt.Fprintf(w, "  refused until the user verifies again           %d (users verified again %d times)\n", a.Refused, a.Reverified)
	if r.Unfinished > 0 {
		fmt.Fprintf(w, "  unfinished commands %d\n", r.Unfinished)
	}
}

// byRule formats counts per rule as " (risk 3, token_replay 1)", rules
// in name order, or "" when there are none.
func byRule(counts map[string]int) string {
	if len(counts) == 0 {
		return ""
	}
	rules := make([]string, 0, len(counts))
	for rule := range counts {
		rules = append(rules, rule)
	}
	sort.Strings(rules)
	parts := make([]string, len(rules))
	for i, rule := range rules {
		parts[i] = fmt.Sprintf("%s %d", rule, counts[rule])
	}
	return " (" + strings.Join(parts, ", ") + ")"
}
