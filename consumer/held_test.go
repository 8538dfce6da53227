package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/consumer/audit/backends"
	"github.com/revoked-dev/revoked/consumer/audit/memstore"
	"github.com/revoked-dev/revoked/consumer/guard"
	"github.com/revoked-dev/revoked/consumer/service"
	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/internal/ops"
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

// TestGuardRoutes mounts the held-command and kill-switch endpoints beside
// the analysts' API on the ops server: all answer, and only with the token.
func TestGuardRoutes(t *testing.T) {
	srv, err := ops.NewServer(ops.DefaultServerConfig(), zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	store := memstore.New()
	mountAPI(srv, store, zerolog.Nop())
	kill := guard.NewKillSwitch("", false)
	mountGuards(srv, service.NewApprovals(nil, store, nil), kill, config.NewSecret("tok"), zerolog.Nop())
	h := srv.Handler()
	do := func(method, path, auth, body string) int {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	for _, tc := range []struct {
		method, path, auth, body string
		want                     int
	}{
		{"GET", "/api/v1/revocations?user_id=a", "", "", 200},
		{"GET", "/api/v1/held", "", "", 401},
		{"GET", "/api/v1/held", "tok", "", 200},
		{"POST", "/api/v1/held/x/approve", "tok", `{"approver":"a"}`, 503}, // listing-only approvals
		{"POST", "/api/v1/held/x/reject", "tok", `{"approver":"a"}`, 503},
		{"GET", "/api/v1/killswitch", "", "", 401},
		{"POST", "/api/v1/killswitch", "tok", `{"engaged":true,"by":"test"}`, 200},
	} {
		if got := do(tc.method, tc.path, tc.auth, tc.body); got != tc.want {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, got, tc.want)
		}
	}
	if on, _ := kill.Engaged(); !on {
		t.Error("the kill switch endpoint did not engage the switch")
	}
}
