package main

import (
	"context"
	"errors"
	"io"
	"os"
	"slices"
	"time"

	"github.com/revoked-dev/revoked/detector/app"
	"github.com/revoked-dev/revoked/internal/cli"
	"github.com/revoked-dev/revoked/internal/held"
	"github.com/revoked-dev/revoked/internal/ops"
)

// heldConfig is what "detector held" reads: what "detector run" reads
// (flags, REVOKED_* variables, -config file) for the brokers and topics,
// and the held command's own settings, the same as "consumer held" takes.
type heldConfig struct {
	Run  runConfig
	Held held.Flags
}

// runHeld lists the commands the detector's guard held for approval, or
// approves or rejects one. It needs no signing key, since an approval
// republishes the command as signed.
func runHeld(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	action, args := cli.Subcommand(args, "list")
	if !slices.Contains(held.Actions, action) {
		return held.DefaultFlags("").Validate(action)
	}
	if err := cli.RefuseRenamed(args, nil, cli.Renamed{Flag: "note", NowFlag: "reason"}); err != nil {
		return err
	}
	cfg := heldConfig{Run: defaultRunConfig(), Held: held.DefaultFlags(os.Getenv("USER"))}
	fs := cli.NewFlagSet("detector held "+action, stderr)
	if err := cli.Load(fs, args, &cfg); err != nil {
		return err
	}
	if len(cfg.Run.Detector.Reader.Brokers) == 0 {
		return errors.New("kafka.brokers: required (-kafka.brokers or REVOKED_KAFKA_BROKERS)")
	}
	if err := cfg.Run.Guard.Validate(); err != nil {
		return err
	}
	if err := cfg.Held.Validate(action); err != nil {
		return err
	}
	log, err := ops.NewLogger(cfg.Run.Log, stderr)
	if err != nil {
		return err
	}
	store, closeStore, err := app.NewHeldStore(app.Config{Detector: cfg.Run.Detector, Guard: cfg.Run.Guard}, "revoked-detector-held", log)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return errors.Join(held.Run(ctx, action, cfg.Held, store, stdout), closeStore())
}
