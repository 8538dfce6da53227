package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/detector/quality"
	"github.com/revoked-dev/revoked/internal/cli"
	"github.com/revoked-dev/revoked/internal/enrich"
	"github.com/revoked-dev/revoked/internal/progress"
	"github.com/revoked-dev/revoked/producer/simulate"
)

// Quality profiles to run.
const (
	profileDefault = "default"
	profileHeldOut = "heldout"
	profileAll     = "all"
)

// qualityOutput is the JSON form of a quality run.
type qualityOutput struct {
	Default *quality.Report  `json:"default,omitempty"`
	HeldOut []quality.Report `json:"heldout,omitempty"`
	// Family aggregates the held-out profiles; the targets apply to it.
	Family *quality.Report `json:"heldout_family,omitempty"`
}

// runQuality runs the quality benchmark: the simulator's default (tuning)
// profile, the held-out family, or both, through the rules, scored
// against the ground truth per kind of attack and per benign class. It
// fails when a target is missed: on the default profile, and on the
// held-out family as a whole.
func runQuality(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := quality.DefaultConfig()
	fs := cli.NewFlagSet("detector quality", stderr)
	profile := fs.String("profile", profileDefault, "profiles to run: default (the tuning profile), heldout (the held-out family) or all")
	fs.IntVar(&cfg.Users, "users", cfg.Users, "simulated users (default profile)")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "simulated time (default profile)")
	fs.DurationVar(&cfg.Sim.AttacksAfter, "attacks-after", cfg.Sim.AttacksAfter, "attack-free start of the run, for baselines to learn (default profile)")
	fs.Int64Var(&cfg.Seed, "seed", cfg.Seed, "random seed of the simulation (default profile)")
	fs.Float64Var(&cfg.EventsPerUserDay, "events-per-user-day", cfg.EventsPerUserDay, "average events per user and simulated day (default profile)")
	fs.Func("start", "first simulated instant, RFC 3339, which sets the weekday and hour the simulated users keep (default profile; default "+cfg.Sim.Start.Format(time.RFC3339)+")", func(v string) error {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return fmt.Errorf("want an RFC 3339 time such as 2026-12-07T08:40:00Z: %w", err)
		}
		cfg.Sim.Start = t.UTC()
		return nil
	})
	rules := fs.String("rules", "", "directory of rule files added to (or overriding) the default pack")
	asJSON := fs.Bool("json", false, "print the reports as JSON")
	explainTo := fs.String("explain", "", "write each missed attack and each benign user revoked, with the user's events around it and the commands that targeted them, as JSON lines to this file (keeps every event of a run in memory)")
	geo := enrich.DefaultConfig()
	geo.Dir = os.Getenv("REVOKED_GEOIP_DIR")
	fs.StringVar(&geo.Dir, "geoip.dir", geo.Dir, "directory of the address databases (deployments/local/install-geoip.sh); empty: networks from the ASN events carry, as the simulator's do (env REVOKED_GEOIP_DIR)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *profile != profileDefault && *profile != profileHeldOut && *profile != profileAll {
		return fmt.Errorf("-profile: want default, heldout or all, got %q", *profile)
	}
	cfg.RulesDir = *rules
	// The simulator's events carry their ASN, as an IdP's do; the detector
	// adds the kind of network (and, with the databases, the
	// organisation) as it does live.
	enr, err := enrich.New(geo)
	if err != nil {
		return err
	}
	defer enr.Close()
	cfg.Enrich = enr.Enrich
	var explainW io.Writer
	closeExplain := func() error { return nil }
	if *explainTo != "" {
		f, err := os.Create(*explainTo)
		if err != nil {
			return err
		}
		bw := bufio.NewWriter(f)
		explainW = bw
		closeExplain = func() error { return errors.Join(bw.Flush(), f.Close()) }
	}
	cfg.Explain = explainW
	err = runProfiles(ctx, cfg, *profile, *asJSON, stdout, stderr)
	return errors.Join(err, closeExplain())
}

// runProfiles runs and prints the chosen profiles; the held-out ones take
// cfg's rules, enrichment and explanation writer. The error joins the
// targets missed.
func runProfiles(ctx context.Context, cfg quality.Config, profile string, asJSON bool, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	run := func(c quality.Config) (quality.Report, error) {
		bar := progress.New(stderr, progress.Config{Label: c.Name, Total: int64(c.Duration / time.Hour), Unit: "simulated h"})
		start := c.Sim.Start
		c.Progress = func(s simulate.Stats) { bar.Set(int64(s.SimTime.Sub(start) / time.Hour)) }
		r, err := quality.Run(ctx, c, zerolog.Nop())
		bar.Finish()
		return r, err
	}
	var out qualityOutput
	var missed []error
	if profile != profileHeldOut {
		r, err := run(cfg)
		if err != nil {
			return err
		}
		out.Default = &r
		if !asJSON {
			if err := r.Print(stdout); err != nil {
				return err
			}
		}
		missed = append(missed, r.Err())
	}
	if profile != profileDefault {
		for _, c := range quality.HeldOut() {
			c.RulesDir, c.Enrich, c.Explain = cfg.RulesDir, cfg.Enrich, cfg.Explain
			r, err := run(c)
			if err != nil {
				return err
			}
			out.HeldOut = append(out.HeldOut, r)
			if !asJSON {
				if err := r.Print(stdout); err != nil {
					return err
				}
			}
		}
		fam := quality.Aggregate("held-out family", out.HeldOut)
		out.Family = &fam
		if !asJSON {
			if err := fam.Print(stdout); err != nil {
				return err
			}
		}
		missed = append(missed, fam.Err())
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
	}
	return errors.Join(missed...)
}
