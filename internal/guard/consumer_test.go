package guard_test

import (
	"github.com/rs/zerolog"

	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/internal/guard"
	"github.com/revoked-dev/revoked/internal/killswitch"
	"github.com/revoked-dev/revoked/schemas"
)

func cmd(id, rule, user string, action schemas.Action) *schemas.RevokeCommand {
	return &schemas.RevokeCommand{CommandID: id, Action: action, Mode: schemas.ModeEnforce,
		Target: schemas.Target{Kind: schemas.TargetUser, UserID: user}, Reason: schemas.Reason{RuleID: rule}}
}

func TestConsumerBudgetGlobalAndPerRuleWithClock(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	g, err := guard.NewConsumer(guard.ConsumerConfig{Budget: 3, RuleBudgets: []string{"noisy=1"}}, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	want := func(c *schemas.RevokeCommand, v guard.Verdict) {
		t.Helper()
		if d := g.Check(c); d.Verdict != v {
			t.Fatalf("%s: %v (%s), want %v", c.CommandID, d.Verdict, d.Reason, v)
		}
	}
	want(cmd("n1", "noisy", "u1", schemas.ActionRevoke), guard.Allow)
	want(cmd("n2", "noisy", "u2", schemas.ActionRevoke), guard.Hold)  // rule cap
	want(cmd("n1", "noisy", "u1", schemas.ActionRevoke), guard.Allow) // same id: not charged again
	want(cmd("a1", "other", "u3", schemas.ActionRevoke), guard.Allow)
	want(cmd("a2", "other", "u4", schemas.ActionRevoke), guard.Allow)
	want(cmd("a3", "other", "u5", schemas.ActionRevoke), guard.Hold) // global cap
	now = now.Add(59 * time.Second)
	want(cmd("a3", "other", "u5", schemas.ActionRevoke), guard.Hold)
	now = now.Add(2 * time.Second) // the window slid past the first three
	want(cmd("a3", "other", "u5", schemas.ActionRevoke), guard.Allow)
	want(cmd("n2", "noisy", "u2", schemas.ActionRevoke), guard.Allow)
}

func TestConsumerBudgetConfigErrors(t *testing.T) {
	_, err := guard.NewConsumer(guard.ConsumerConfig{Budget: -1, RuleBudgets: []string{"x", "y=-1"}}, nil)
	if err == nil || !strings.Contains(err.Error(), "budget:") || !strings.Contains(err.Error(), "rule-budgets") {
		t.Fatalf("err = %v", err)
	}
}

func TestConsumerAllowlistScopedPerRuleAndAction(t *testing.T) {
	a, err := guard.ParseConsumerAllowlist([]byte(`
entries:
  - user_ids: [admin]
    reason: break glass
  - client_ids: [batch]
    rules: [travel]
    actions: [revoke]
`))
	if err != nil {
		t.Fatal(err)
	}
	g, _ := guard.NewConsumer(guard.ConsumerConfig{}, nil)
	g.WithAllowlist(a)
	if d := g.Check(cmd("1", "any", "admin", schemas.ActionRevokeAndReverify)); d.Verdict != guard.Refuse || !strings.Contains(d.Reason, "break glass") {
		t.Errorf("admin: %+v", d)
	}
	client := func(rule string, act schemas.Action) *schemas.RevokeCommand {
		c := cmd("2", rule, "", act)
		c.Target = schemas.Target{Kind: schemas.TargetClient, ClientID: "batch"}
		return c
	}
	if d := g.Check(client("travel", schemas.ActionRevoke)); d.Verdict != guard.Refuse {
		t.Errorf("batch in scope: %+v", d)
	}
	if d := g.Check(client("other", schemas.ActionRevoke)); d.Verdict != guard.Allow {
		t.Errorf("batch, other rule: %+v", d)
	}
	if d := g.Check(client("travel", schemas.ActionRevokeAndReverify)); d.Verdict != guard.Allow {
		t.Errorf("batch, other action: %+v", d)
	}
	for _, bad := range []string{"entries: [{rules: [x]}]", "entries: [{user_ids: [a], actions: [nuke]}]", "entries: [{user_ids: [a], bogus: 1}]",
		"entries: [{users: [a]}]", "entries: [{ips: [10.0.0.0/8]}]"} {
		if _, err := guard.ParseConsumerAllowlist([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestConsumerAllowlistFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "allow.yaml")
	if err := os.WriteFile(p, []byte("entries:\n  - user_ids: [u1]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	g, err := guard.NewConsumer(guard.ConsumerConfig{AllowlistFile: p}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := g.Check(cmd("1", "r", "u1", schemas.ActionRevoke)); d.Verdict != guard.Refuse {
		t.Fatalf("%+v", d)
	}
	if _, err := guard.NewConsumer(guard.ConsumerConfig{AllowlistFile: p + ".missing"}, nil); err == nil {
		t.Fatal("missing allowlist file accepted")
	}
}

func TestConsumerKillSwitchFileConfigAndHTTP(t *testing.T) {
	file := filepath.Join(t.TempDir(), "kill")
	g, err := guard.NewConsumer(guard.ConsumerConfig{KillSwitchFile: file}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := g.Check(cmd("1", "r", "u", schemas.ActionRevoke)); d.Verdict != guard.Allow {
		t.Fatalf("%+v", d)
	}
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if d := g.Check(cmd("2", "r", "u", schemas.ActionRevoke)); d.Verdict != guard.Hold || g.Enforcing() == nil {
		t.Fatalf("file: %+v", d)
	}
	_ = os.Remove(file)

	if on, _ := killswitch.New("", true).Engaged(); !on {
		t.Fatal("configured switch not engaged")
	}

	mux := http.NewServeMux()
	g.KillSwitch().Mount(mux, config.NewSecret("tok"), guard.ConsumerKillSwitchMeaning, zerolog.Nop())
	srv := httptest.NewServer(mux)
	defer srv.Close()
	do := func(method, auth, body string) int {
		req, _ := http.NewRequest(method, srv.URL+killswitch.Path, strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := do("POST", "", `{"engaged":true,"by":"x"}`); s != 401 {
		t.Fatalf("unauthenticated: %d", s)
	}
	if s := do("POST", "Bearer nope", `{"engaged":true,"by":"x"}`); s != 401 {
		t.Fatalf("wrong token: %d", s)
	}
	if s := do("POST", "Bearer tok", `{"engaged":true}`); s != 400 {
		t.Fatalf("no by: %d", s)
	}
	if s := do("POST", "Bearer tok", `{"engaged":true,"by":"oncall"}`); s != 200 {
		t.Fatalf("set: %d", s)
	}
	if d := g.Check(cmd("3", "r", "u", schemas.ActionRevoke)); d.Verdict != guard.Hold || !strings.Contains(d.Reason, "oncall") {
		t.Fatalf("http: %+v", d)
	}
	if s := do("POST", "Bearer tok", `{"engaged":false,"by":"oncall"}`); s != 200 {
		t.Fatalf("release: %d", s)
	}
	if d := g.Check(cmd("4", "r", "u", schemas.ActionRevoke)); d.Verdict != guard.Allow {
		t.Fatalf("released: %+v", d)
	}
}
