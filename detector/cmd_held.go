package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/revoked-dev/revoked/detector/guard"
	"github.com/revoked-dev/revoked/internal/cli"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/ops"
)

// runHeld lists the commands the guard held for approval, or approves or
// rejects one. It reads the same settings as "detector run" (flags,
// REVOKED_* variables, -config file) for the brokers and topics; it needs
// no signing key, since an approval republishes the command as signed.
func runHeld(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sub, args := cli.Subcommand(args, "list")
	cfg := defaultRunConfig()
	fs := cli.NewFlagSet("detector held "+sub, stderr)
	var id, approver, note string
	var all bool
	switch sub {
	case "list":
		fs.BoolVar(&all, "all", false, "list decided commands too")
	case "approve", "reject":
		fs.StringVar(&id, "id", "", "command id of the held command (required)")
		fs.StringVar(&approver, "approver", os.Getenv("USER"), "who decides, recorded with the decision (default $USER)")
		fs.StringVar(&note, "note", "", "why, recorded with the decision")
	default:
		return fmt.Errorf("unknown command held %q (want list, approve or reject)", sub)
	}
	if err := cli.Load(fs, args, &cfg); err != nil {
		return err
	}
	if len(cfg.Detector.Reader.Brokers) == 0 {
		return errors.New("kafka.brokers: required (-kafka.brokers or REVOKED_KAFKA_BROKERS)")
	}
	if err := cfg.Guard.Validate(); err != nil {
		return err
	}
	if sub != "list" && id == "" {
		return errors.New("-id is required")
	}
	if sub != "list" && approver == "" {
		return errors.New("-approver is required")
	}
	store, closeStore, err := newHeldStore(cfg, stderr)
	if err != nil {
		return err
	}
	defer closeStore()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()

	switch sub {
	case "approve":
		h, err := store.Approve(ctx, id, approver, note)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "approved %s by %s: published to %s (target %s %s, rule %s)\n", id, approver, store.Topics.Commands,
			h.Command.Target.Kind, h.Command.Target.ID(), h.Command.Reason.RuleID)
		return nil
	case "reject":
		if _, err := store.Reject(ctx, id, approver, note); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "rejected %s by %s: recorded in %s, never published\n", id, approver, store.Topics.Decisions)
		return nil
	}
	list, err := store.List(ctx)
	if list == nil && err != nil {
		return err
	}
	if err != nil {
		fmt.Fprintf(stderr, "detector held: skipped invalid messages: %v\n", err)
	}
	now := time.Now()
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "COMMAND ID\tHELD AT\tWHY\tRULE\tTARGET\tACTION\tEXPIRES\tSTATUS")
	for _, h := range list {
		if h.Resolution != nil && !all {
			continue
		}
		c := h.Command
		status := "pending"
		switch {
		case h.Resolution != nil:
			status = h.Resolution.Outcome + " by " + h.Resolution.By
		case c.Expired(now):
			status = "expired"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s %s\t%s\t%s\t%s\n", c.CommandID, h.HeldAt.UTC().Format(time.RFC3339), h.Reason, c.Reason.RuleID,
			c.Target.Kind, c.Target.ID(), c.Action, c.ExpiresAt.UTC().Format(time.RFC3339), status)
	}
	return tw.Flush()
}

func newHeldStore(cfg runConfig, stderr io.Writer) (*guard.HeldStore, func(), error) {
	log, err := ops.NewLogger(cfg.Log, stderr)
	if err != nil {
		return nil, nil, err
	}
	r := cfg.Detector.Reader
	reader, err := kafkax.NewClient(r.Brokers, r.Security, "revoked-detector-held")
	if err != nil {
		return nil, nil, err
	}
	w := cfg.Detector.HeldWriter("") // every message names its topic
	w.ClientID = "revoked-detector-held"
	writer, err := kafkax.NewWriter(w, log)
	if err != nil {
		return nil, nil, err
	}
	return &guard.HeldStore{
		Topics:    guard.Topics{Held: cfg.Guard.HeldTopic, Decisions: cfg.Guard.DecisionsTopic, Commands: cfg.Detector.Writer.Topic},
		Reader:    reader,
		Publisher: writer,
	}, func() { _ = writer.Close() }, nil
}
