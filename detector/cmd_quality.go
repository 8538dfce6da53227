package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/detector/quality"
	"github.com/revoked-dev/revoked/internal/cli"
)

// runQuality runs the quality benchmark: the simulator's profile through
// the rules, scored against its ground truth. It fails when the targets
// are missed.
func runQuality(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := quality.DefaultConfig()
	fs := cli.NewFlagSet("detector quality", stderr)
	fs.IntVar(&cfg.Users, "users", cfg.Users, "simulated users")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "simulated time")
	fs.DurationVar(&cfg.Sim.AttacksAfter, "attacks-after", cfg.Sim.AttacksAfter, "attack-free start of the run, for baselines to learn")
	fs.Int64Var(&cfg.Seed, "seed", cfg.Seed, "random seed of the simulation")
	fs.Float64Var(&cfg.EventsPerUserDay, "events-per-user-day", cfg.EventsPerUserDay, "average events per user and simulated day")
	fs.StringVar(&cfg.RulesDir, "rules", "", "directory of rule files added to (or overriding) the default pack")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	r, err := quality.Run(ctx, cfg, zerolog.Nop())
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return err
		}
	} else if err := r.Print(stdout); err != nil {
		return err
	}
	return r.Err()
}
