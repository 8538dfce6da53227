package service_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/consumer/audit/memstore"
	"github.com/revoked-dev/revoked/consumer/service"
	"github.com/revoked-dev/revoked/deployments/tokenapi/server"
	"github.com/revoked-dev/revoked/deployments/tokenapi/server/servertest"
	"github.com/revoked-dev/revoked/internal/guard"
	"github.com/revoked-dev/revoked/schemas"
)

// clock is a settable clock for the handler and the budget.
type clock struct{ off atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *clock) advance(d time.Duration) { c.off.Add(int64(d)) }

func (f *fixture) startService(t *testing.T, cfg service.Config, now func() time.Time) (*service.Service, func() error) {
	t.Helper()
	return f.run(t, cfg, service.Deps{Now: now})
}

// TestBudgetHoldsThenApproveAndReject runs more commands than the budget
// allows: the excess is held (terminal, so the reader moves on), listed,
// and a human approves one (it runs once, with the approver in the trail,
// however often it is approved) and rejects another (it never runs).
func TestBudgetHoldsThenApproveAndReject(t *testing.T) {
	f := newFixture(t, memstore.New())
	clk := &clock{}
	now := clk.now()
	raws := map[string]string{}
	var cmds []schemas.RevokeCommand
	for i := range 3 {
		u := fmt.Sprintf("u-held-%d", i)
		raws[u], _ = f.api.Issue(t, server.IssueRequest{UserID: u, ClientID: servertest.AppID, Scopes: servertest.AppScopes})
		c := command(schemas.Target{Kind: schemas.TargetUser, UserID: u}, now)
		c.ExpiresAt = now.Add(10 * time.Minute)
		cmds = append(cmds, c)
	}
	// One key, so one partition, keeps the order: the first command takes
	// the budget.
	for _, c := range cmds {
		m := f.message(t, c)
		m.Key = []byte("one-partition")
		f.kafka.Produce(t, schemas.TopicRevokeCommands, m)
	}
	cfg := f.config("g-held")
	cfg.Guard.Budget = 1
	svc, stop := f.startService(t, cfg, clk.now)
	f.waitStep(t, cmds[0].CommandID, schemas.StepConfirmed)
	f.waitStep(t, cmds[1].CommandID, schemas.StepHeld)
	f.waitStep(t, cmds[2].CommandID, schemas.StepHeld)
	ctx := context.Background()
	a := svc.Approvals()
	list, err := a.List(ctx, false, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].State != service.HeldPending || list[0].Held.Detail == "" {
		t.Fatalf("pending: %+v", list)
	}
	for _, u := range []string{"u-held-1", "u-held-2"} {
		if !f.introspect(t, raws[u]) {
			t.Fatalf("%s revoked while held", u)
		}
	}

	if _, err := a.Approve(ctx, cmds[1].CommandID, ""); !errors.Is(err, service.ErrNoApprover) {
		t.Fatalf("approval without approver: %v", err)
	}
	for range 3 { // approval is idempotent
		hc, err := a.Approve(ctx, cmds[1].CommandID, "alice")
		if err != nil || hc.State != service.HeldApproved || hc.Decision.Approver != "alice" {
			t.Fatalf("approve: %+v, %v", hc, err)
		}
	}
	if f.introspect(t, raws["u-held-1"]) {
		t.Fatal("approved command did not revoke")
	}
	rows, _ := f.store.CommandRows(ctx, cmds[1].CommandID)
	revoked := 0
	for _, r := range rows {
		if r.Step == schemas.StepConfirmed {
			revoked++
			if r.Approver != "alice" || r.SourceOffset != list[1].Held.SourceOffset && r.SourceOffset != list[0].Held.SourceOffset {
				t.Errorf("revoked row: approver %q offset %d", r.Approver, r.SourceOffset)
			}
		}
	}
	if revoked != 1 {
		t.Fatalf("%d revoked rows after three approvals, want 1", revoked)
	}
	if _, err := a.Reject(ctx, cmds[1].CommandID, "bob", ""); !errors.Is(err, service.ErrDecided) {
		t.Fatalf("rejecting an approved command: %v", err)
	}

	hc, err := a.Reject(ctx, cmds[2].CommandID, "bob", "false positive")
	if err != nil || hc.State != service.HeldRejected || hc.Decision.Approver != "bob" {
		t.Fatalf("reject: %+v, %v", hc, err)
	}
	if _, err := a.Approve(ctx, cmds[2].CommandID, "alice"); !errors.Is(err, service.ErrDecided) {
		t.Fatalf("approving a rejected command: %v", err)
	}
	if !f.introspect(t, raws["u-held-2"]) {
		t.Fatal("rejected command revoked")
	}
	if _, err := a.Approve(ctx, cmds[0].CommandID, "alice"); !errors.Is(err, service.ErrNotHeld) {
		t.Fatalf("approving a command that was never held: %v", err)
	}
	if list, _ := a.List(ctx, false, 100); len(list) != 0 {
		t.Fatalf("still pending: %+v", list)
	}
	if list, _ := a.List(ctx, true, 100); len(list) != 2 {
		t.Fatalf("all held: %+v", list)
	}

	// The kill switch holds everything and refuses approvals; an approval
	// after expiry is refused and recorded.
	svc.KillSwitch().Set(true, "test")
	raw, _ := f.api.Issue(t, server.IssueRequest{UserID: "u-kill", ClientID: servertest.AppID, Scopes: servertest.AppScopes})
	killed := command(schemas.Target{Kind: schemas.TargetUser, UserID: "u-kill"}, clk.now())
	killed.ExpiresAt = clk.now().Add(5 * time.Minute)
	f.kafka.Produce(t, schemas.TopicRevokeCommands, f.message(t, killed))
	f.waitStep(t, killed.CommandID, schemas.StepHeld)
	if _, err := a.Approve(ctx, killed.CommandID, "alice"); !errors.Is(err, guard.ErrKillSwitch) {
		t.Fatalf("approval under the kill switch: %v", err)
	}
	svc.KillSwitch().Set(false, "test")
	clk.advance(10 * time.Minute)
	hc, err = a.Approve(ctx, killed.CommandID, "alice")
	if err == nil || hc.State != service.HeldRejected || hc.Decision.Approver != "alice" {
		t.Fatalf("approval after expiry: %+v, %v", hc, err)
	}
	if !f.introspect(t, raw) {
		t.Fatal("expired command revoked")
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	chain, err := f.store.ChainRows(ctx, "consumer-test", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := audit.VerifyChain(chain); err != nil {
		t.Fatal(err)
	}
}

// TestAllowlistRefuses: an allowlisted user's command is audited as
// rejected and never runs.
func TestAllowlistRefuses(t *testing.T) {
	f := newFixture(t, memstore.New())
	raw, _ := f.api.Issue(t, server.IssueRequest{UserID: "break-glass", ClientID: servertest.AppID, Scopes: servertest.AppScopes})
	c := command(schemas.Target{Kind: schemas.TargetUser, UserID: "break-glass"}, time.Now())
	f.kafka.Produce(t, schemas.TopicRevokeCommands, f.message(t, c))
	cfg := f.config("g-allow")
	cfg.Guard.AllowlistFile = writeFile(t, "entries:\n  - user_ids: [break-glass]\n    rules: [manual]\n")
	_, stop := f.startService(t, cfg, nil)
	f.waitStep(t, c.CommandID, schemas.StepRejected)
	_ = stop()
	if !f.introspect(t, raw) {
		t.Fatal("allowlisted user revoked")
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := t.TempDir() + "/allowlist.yaml"
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
