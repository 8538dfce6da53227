package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/consumer/audit/backends"
	"github.com/revoked-dev/revoked/internal/testenv"
	"github.com/revoked-dev/revoked/schemas"
)

// TestHeldListAndConfigErrors lists held commands from a chDB audit trail
// and checks what approve and reject require.
func TestHeldListAndConfigErrors(t *testing.T) {
	lib := testenv.ChDBLibPath(t)
	dir := t.TempDir()
	ctx := context.Background()
	store, err := backends.Open(ctx, backends.Config{Backend: backends.ChDB, ChDBPath: dir, ChDBLibPath: lib}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	w, err := audit.NewWriter(ctx, store, "consumer-test", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	var rows []schemas.AuditRow
	for i, id := range []string{"cmd_pending", "cmd_rejected"} {
		cmd := schemas.RevokeCommand{
			CommandID: id, IssuedAt: now, ExpiresAt: now.Add(time.Hour), Issuer: "detector",
			Target: schemas.Target{Kind: schemas.TargetUser, UserID: "alice"}, Action: schemas.ActionRevoke, Mode: schemas.ModeEnforce,
			Reason: schemas.Reason{RuleID: "mass_download", Severity: schemas.SeverityHigh, Summary: "s"},
		}
		steps := []schemas.Step{schemas.StepReceived, schemas.StepHeld}
		if id == "cmd_rejected" {
			steps = append(steps, schemas.StepRejected)
		}
		for _, step := range steps {
			r := schemas.RowFromCommand(&cmd)
			r.Step, r.Time, r.Actor = step, now, "consumer-test"
			r.RowID = schemas.AuditRowID(id, step, schemas.TopicRevokeCommands, 0, int64(i))
			r.SourceTopic, r.SourceOffset = schemas.TopicRevokeCommands, int64(i)
			switch step {
			case schemas.StepHeld:
				r.Detail = "over budget: 60 revocations in the last minute (global cap 60)"
			case schemas.StepRejected:
				r.Approver, r.Detail = "bob", "rejected by bob"
			}
			rows = append(rows, r)
		}
	}
	if err := w.Write(ctx, rows...); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	base := []string{"-audit.backend=chdb", "-audit.chdb-path=" + dir, "-audit.chdb-lib-path=" + lib}

	var out, errb bytes.Buffer
	if err := run(ctx, append([]string{"held", "list"}, base...), &out, &errb); err != nil {
		t.Fatalf("held list: %v\n%s", err, errb.String())
	}
	if s := out.String(); !strings.Contains(s, "cmd_pending") || !strings.Contains(s, "over budget") || strings.Contains(s, "cmd_rejected") {
		t.Errorf("pending list:\n%s", s)
	}
	out.Reset()
	if err := run(ctx, append([]string{"held", "list", "-all"}, base...), &out, &errb); err != nil {
		t.Fatalf("held list -all: %v\n%s", err, errb.String())
	}
	if s := out.String(); !strings.Contains(s, "cmd_rejected") || !strings.Contains(s, "bob") {
		t.Errorf("full list:\n%s", s)
	}

	err = run(ctx, append([]string{"held", "approve", "-approver="}, base...), &out, &errb)
	for _, want := range []string{"id", "approver", "verify-key-files"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("approve without settings: %v, want a problem with %s", err, want)
		}
	}
	if err := run(ctx, []string{"held", "nuke"}, &out, &errb); err == nil {
		t.Error("unknown held command accepted")
	}
}
