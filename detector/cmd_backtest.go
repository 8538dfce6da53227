package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/revoked-dev/revoked/detector/backtest"
	"github.com/revoked-dev/revoked/detector/engine"
	"github.com/revoked-dev/revoked/detector/service"
	"github.com/revoked-dev/revoked/internal/cli"
	"github.com/revoked-dev/revoked/internal/enrich"
	"github.com/revoked-dev/revoked/internal/guard"
	"github.com/revoked-dev/revoked/internal/progress"
)

// progressThreshold is the size of an events file above which backtest
// draws a progress bar.
const progressThreshold = 4 << 20

// runBacktest replays a JSON-lines file of audit events through the rules:
// the commands they would have issued on stdout, one JSON line each;
// malformed lines, a progress bar and the per-rule summary on stderr.
func runBacktest(args []string, stdout, stderr io.Writer) error {
	cfg := service.DefaultConfig()
	eng := engine.DefaultConfig()
	fs := cli.NewFlagSet("detector backtest", stderr)
	events := fs.String("events", "", "JSON-lines file of audit events to replay (required; - for stdin)")
	fs.StringVar(&cfg.RulesDir, "rules", os.Getenv("REVOKED_RULES_DIR"), "directory of rule files; they override default rules of the same id (env REVOKED_RULES_DIR)")
	fs.BoolVar(&cfg.DefaultRules, "default-rules", cfg.DefaultRules, "include the embedded default rules")
	fs.BoolVar(&eng.DryRun, "dry-run", false, "make every command dry_run, as the live detector's -engine.dry-run does")
	fs.DurationVar(&eng.Allowance, "allowance", eng.Allowance, "how far behind its group's newest event an event may arrive and still count")
	fs.DurationVar(&eng.CommandTTL, "command-ttl", eng.CommandTTL, "expires_at is the detection's event time plus this")
	gcfg := guard.DefaultConfig()
	guarded := fs.Bool("guard", false, "apply the detector's guards on event time: allowlist, cross-rule cooldown, budgets (held commands are left out and counted)")
	fs.StringVar(&gcfg.AllowlistFile, "allowlist", "", "with -guard: the allowlist file")
	fs.IntVar(&gcfg.Budget, "budget", gcfg.Budget, "with -guard: revocations per minute across rules (0: unlimited)")
	fs.IntVar(&gcfg.RuleBudget, "rule-budget", gcfg.RuleBudget, "with -guard: revocations per minute per rule (0: unlimited)")
	fs.DurationVar(&gcfg.Cooldown, "cooldown", gcfg.Cooldown, "with -guard: cross-rule cooldown per target (0: off)")
	geo := enrich.DefaultConfig()
	geo.Dir = os.Getenv("REVOKED_GEOIP_DIR")
	fs.StringVar(&geo.Dir, "geoip.dir", geo.Dir, "directory of the address databases (deployments/local/install-geoip.sh); empty: networks from the ASN events carry (env REVOKED_GEOIP_DIR)")
	fs.StringVar(&geo.Networks, "geoip.networks", os.Getenv("REVOKED_GEOIP_NETWORKS"), "YAML file of ASNs and CIDRs with their kind of network, over the curated list (env REVOKED_GEOIP_NETWORKS)")
	showProgress := fs.Bool("progress", true, fmt.Sprintf("draw a progress bar on stderr for files over %s", progress.FormatBytes(progressThreshold)))
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *events == "" {
		return errors.New("-events is required")
	}
	if !cfg.DefaultRules && cfg.RulesDir == "" {
		return errors.New("no rules: give -rules or keep -default-rules")
	}
	rules, err := cfg.LoadRules()
	if err != nil {
		return err
	}
	in := io.Reader(os.Stdin)
	var bar *progress.Bar
	if *events != "-" {
		f, err := os.Open(*events)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
		if st, err := f.Stat(); err == nil && *showProgress && st.Size() > progressThreshold {
			bar = progress.New(stderr, progress.Config{Label: *events, Total: st.Size(), Format: progress.FormatBytes})
		}
	}
	enr, err := enrich.New(geo)
	if err != nil {
		return err
	}
	defer enr.Close()
	opts := backtest.Options{Rules: rules, Engine: eng, Progress: bar, Enrich: enr.Enrich}
	if *guarded {
		opts.Guard = &gcfg
	} else if gcfg.AllowlistFile != "" {
		return errors.New("-allowlist needs -guard")
	}
	sum, err := backtest.Run(in, stdout, stderr, opts)
	bar.Finish()
	if err != nil {
		return err
	}
	return sum.WriteSummary(stderr)
}
