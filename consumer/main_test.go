package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/consumer/audit/backends"
	"github.com/revoked-dev/revoked/internal/testenv"
	"github.com/revoked-dev/revoked/schemas"
)

// seedTrail writes rows through an audit.Writer (chain "consumer-test")
// into the audit store cfg names and closes it, for a subcommand to open.
func seedTrail(t *testing.T, cfg backends.Config, rows ...schemas.AuditRow) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	store, err := backends.Open(ctx, cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	w, err := audit.NewWriter(ctx, store, "consumer-test", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
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
}

// seedChDB seeds a new chDB audit trail (seedTrail) and returns its data
// directory and libchdb's path.
func seedChDB(t *testing.T, rows ...schemas.AuditRow) (dir, lib string) {
	t.Helper()
	lib, dir = testenv.ChDBLibPath(t), t.TempDir()
	seedTrail(t, backends.Config{Backend: backends.ChDB, ChDBPath: dir, ChDBLibPath: lib}, rows...)
	return dir, lib
}

// TestHistory seeds a chDB audit trail and reads it back through
// `consumer history`, as a table and as JSON lines.
func TestHistory(t *testing.T) {
	ctx := context.Background()
	now := time.Now().UTC()
	cmd := schemas.RevokeCommand{
		CommandID: "cmd_history", IssuedAt: now, ExpiresAt: now.Add(time.Hour), Issuer: "detector",
		Target: schemas.Target{Kind: schemas.TargetUser, UserID: "alice", IncludeDownscoped: true},
		Action: schemas.ActionRevokeAndReverify, Mode: schemas.ModeEnforce,
		Reason: schemas.Reason{RuleID: "brute_force_success", RuleVersion: 1, Severity: schemas.SeverityHigh, Summary: "5 failures then a success"},
	}
	var rows []schemas.AuditRow
	for i, step := range []schemas.Step{schemas.StepReceived, schemas.StepRevoked} {
		r := schemas.RowFromCommand(&cmd)
		r.Step, r.Time, r.Actor = step, now.Add(time.Duration(i)*time.Second), "consumer-test"
		r.RowID = schemas.AuditRowID(cmd.CommandID, step, schemas.TopicRevokeCommands, 0, 1)
		r.SourceTopic, r.SourceOffset = schemas.TopicRevokeCommands, 1
		if step == schemas.StepRevoked {
			r.TokensRevoked, r.RevokeLatencyMs = 3, 42
		}
		rows = append(rows, r)
	}
	other := rows[1]
	other.UserID, other.CommandID = "bob", "cmd_other"
	other.RowID = schemas.AuditRowID(other.CommandID, other.Step, schemas.TopicRevokeCommands, 0, 2)
	dir, lib := seedChDB(t, append(rows, other)...)

	args := []string{"history", "-audit.backend=chdb", "-audit.chdb-path=" + dir, "-audit.chdb-lib-path=" + lib, "-user", "alice"}
	var out, errb bytes.Buffer
	if err := run(ctx, args, &out, &errb); err != nil {
		t.Fatalf("history: %v\n%s", err, errb.String())
	}
	table := out.String()
	for _, want := range []string{"STEP", "revoked", "received", "user:alice+downscoped", "brute_force_success", "42ms", "cmd_history"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	if strings.Contains(table, "bob") {
		t.Errorf("table shows another user's rows:\n%s", table)
	}

	out.Reset()
	if err := run(ctx, append(args, "-json"), &out, &errb); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d JSON lines, want 2:\n%s", len(lines), out.String())
	}
	var first schemas.AuditRow
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if first.Step != schemas.StepRevoked {
		t.Errorf("newest first: got %s first", first.Step)
	}

	// Outcome and time range filters.
	jsonRows := func(extra ...string) []schemas.AuditRow {
		t.Helper()
		out.Reset()
		if err := run(ctx, append(append(args, "-json"), extra...), &out, &errb); err != nil {
			t.Fatalf("history %v: %v", extra, err)
		}
		var rows []schemas.AuditRow
		for line := range strings.Lines(out.String()) {
			var r schemas.AuditRow
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatal(err)
			}
			rows = append(rows, r)
		}
		return rows
	}
	if got := jsonRows("-outcome", "revoked,verified"); len(got) != 1 || got[0].Step != schemas.StepRevoked {
		t.Errorf("-outcome revoked,verified: %d rows", len(got))
	}
	at := func(d time.Duration) string { return now.Truncate(time.Second).Add(d).Format(time.RFC3339) }
	if got := jsonRows("-from", at(time.Second)); len(got) != 1 || got[0].Step != schemas.StepRevoked {
		t.Errorf("-from: %d rows", len(got))
	}
	if got := jsonRows("-to", at(time.Second)); len(got) != 1 || got[0].Step != schemas.StepReceived {
		t.Errorf("-to: %d rows", len(got))
	}
	err := run(ctx, append(args, "-outcome", "exploded", "-from", "yesterday"), &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "exploded") || !strings.Contains(err.Error(), "from") {
		t.Errorf("bad filters: %v", err)
	}
}

func TestRunConfigReportsEveryProblem(t *testing.T) {
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"run", "-audit.backend=nope", "-kafka.brokers="}, &out, &errb)
	if err == nil {
		t.Fatal("invalid configuration accepted")
	}
	for _, want := range []string{"audit", "verify-key-files", "idp"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q: %v", want, err)
		}
	}
}
