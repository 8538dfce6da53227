// Command detector runs the rule engine over the audit event stream and
// publishes signed revoke commands.
//
//	detector [run] [flags]        read audit.events, publish revoke.commands (default)
//	detector rules [flags]        load and check the rules, list them, and exit
//	detector backtest -events F   replay recorded events through the rules offline (-guard: and the guards)
//	detector held list            list the commands held for approval
//	detector held approve -id ID  publish a held command (-approver NAME)
//	detector held reject -id ID   record a rejection; the command is never published
//	detector quality [flags]      score the rules on simulated traffic with labelled attacks
//
// Settings come from flags, REVOKED_* environment variables and an
// optional YAML file (-config or REVOKED_CONFIG), in that order of
// precedence; run "detector run -h" for the list. The signing key is an
// Ed25519 key, PKCS #8 PEM or the base64 of its 32-byte seed, read from the
// file named by -signing-key-file or REVOKED_SIGNING_KEY_FILE, or from
// REVOKED_SIGNING_KEY; it is never a flag value, which would show in the
// process list.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/revoked-dev/revoked/detector/app"
	"github.com/revoked-dev/revoked/detector/service"
	"github.com/revoked-dev/revoked/internal/cli"
	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/internal/guard"
	"github.com/revoked-dev/revoked/internal/ops"
)

func main() {
	cli.Exit("detector", run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd, args := cli.Subcommand(args, "run")
	switch cmd {
	case "run":
		return runDetector(ctx, args, stderr)
	case "rules":
		return listRules(args, stdout, stderr)
	case "backtest":
		return runBacktest(args, stdout, stderr)
	case "held":
		return runHeld(ctx, args, stdout, stderr)
	case "quality":
		return runQuality(ctx, args, stdout, stderr)
	}
	return fmt.Errorf("unknown command %q (want run, rules, backtest, held or quality)", cmd)
}

// runConfig is everything "detector run" reads.
type runConfig struct {
	// Detector's settings sit at the top level: -kafka.brokers,
	// REVOKED_KAFKA_BROKERS, kafka.brokers in YAML.
	Detector service.Config `env:"REVOKED"`
	Log      ops.LogConfig  `flag:"log" env:"REVOKED_LOG" yaml:"log"`
	// Ops is the HTTP server of /livez, /readyz, /metrics and the kill
	// switch: -http.*, REVOKED_HTTP_*, http in YAML, as the consumer's.
	Ops     ops.ServerConfig `flag:"http" env:"REVOKED_HTTP" yaml:"http"`
	Guard   guard.Config     `flag:"guard" env:"REVOKED_GUARD" yaml:"guard"`
	Signing cli.SigningKey
	// TokenIDs gives -token-id-pattern and REVOKED_TOKEN_ID_PATTERN.
	TokenIDs cli.TokenIDs
}

func defaultRunConfig() runConfig {
	o := ops.DefaultServerConfig()
	o.Addr = ":9091"
	return runConfig{Detector: service.DefaultConfig(), Log: ops.DefaultLogConfig(), Ops: o, Guard: guard.DefaultConfig()}
}

// Validate reports every problem at once.
func (c runConfig) Validate() error {
	var p config.Problems
	p.Nest("", c.Detector.Validate())
	p.Nest("log", c.Log.Validate())
	p.Nest("ops", c.Ops.Validate())
	p.Nest("guard", c.Guard.Validate())
	p.Nest("", c.Signing.Validate())
	p.Nest("", c.TokenIDs.Validate())
	return p.Err()
}

func runDetector(ctx context.Context, args []string, stderr io.Writer) error {
	// The HTTP server's settings were -ops.* and REVOKED_OPS_*.
	if err := cli.RefuseRenamed(args, os.Environ(), cli.Renamed{Flag: "ops.", NowFlag: "http.", Env: "REVOKED_OPS_", NowEnv: "REVOKED_HTTP_"}); err != nil {
		return err
	}
	cfg := defaultRunConfig()
	log, err := cli.Configure(cli.NewFlagSet("detector run", stderr), args, &cfg, &cfg.Log, stderr)
	if err != nil {
		return err
	}
	if err := cfg.TokenIDs.Apply(); err != nil {
		return err
	}
	signer, err := cfg.Signing.Signer()
	if err != nil {
		return err
	}
	reg := ops.NewRegistry()
	a, err := app.New(app.Config{Detector: cfg.Detector, Guard: cfg.Guard}, signer, log, reg)
	if err != nil {
		return err
	}
	srv, err := ops.NewServer(cfg.Ops, log, reg)
	if err != nil {
		return err
	}
	if err := a.Mount(srv, ""); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The detector may stop on its own (a fatal fetch error): RunWithOps
	// takes the ops server down with it.
	return cli.RunWithOps(ctx, stop, srv, a.Run)
}

// listRules loads the rules the detector would run, reports every problem
// with file and line, and lists them.
func listRules(args []string, stdout, stderr io.Writer) error {
	cfg := service.DefaultConfig()
	fs := cli.NewFlagSet("detector rules", stderr)
	fs.StringVar(&cfg.RulesDir, "rules-dir", os.Getenv("REVOKED_RULES_DIR"), "directory of rule files (env REVOKED_RULES_DIR)")
	fs.BoolVar(&cfg.DefaultRules, "default-rules", cfg.DefaultRules, "include the embedded default rules")
	if err := fs.Parse(args); err != nil {
		return err
	}
	rules, err := cfg.LoadRules()
	if err != nil {
		return err
	}
	if len(rules) == 0 {
		return errors.New("no rules")
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tVERSION\tKIND\tWINDOW\tACTION\tTARGET\tDRY RUN\tSOURCE")
	for _, r := range rules {
		action := string(r.Action)
		switch {
		case r.Signal != nil:
			action = fmt.Sprintf("signal %.2f", r.Signal.Weight)
			if r.Signal.Scope == "session" {
				action += " (session)"
			}
		case r.Risk != nil:
			var parts []string
			for _, th := range r.Risk.Thresholds {
				p := fmt.Sprintf("%s at %.2f", th.Action, th.At)
				if th.Scope == "session" {
					p += " (session)"
				}
				parts = append(parts, p)
			}
			action = strings.Join(parts, ", ")
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%t\t%s\n", r.ID, r.Version, r.Kind, r.Window, action, r.Target.Kind, r.DryRun, r.Source)
	}
	return tw.Flush()
}
