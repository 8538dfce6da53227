package allowlist_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/revoked-dev/revoked/internal/allowlist"
	"github.com/revoked-dev/revoked/schemas"
)

func cmdFor(rule, user string, action schemas.Action) *schemas.RevokeCommand {
	return &schemas.RevokeCommand{CommandID: "cmd_" + rule + "_" + user, Action: action, Mode: schemas.ModeEnforce,
		Target: schemas.Target{Kind: schemas.TargetUser, UserID: user}, Reason: schemas.Reason{RuleID: rule}}
}

func TestParse(t *testing.T) {
	a, err := allowlist.Parse([]byte(`
entries:
  - user_ids: [svc-monitor]
    reason: monitoring
  - ips: [192.0.2.0/24, 198.51.100.7]
    rules: [brute_force_success]
  - client_ids: [ci-runner]
    actions: [revoke]
`))
	if err != nil {
		t.Fatal(err)
	}
	if a.Len() != 3 {
		t.Fatalf("%d entries", a.Len())
	}
	ev := func(user, ip, client string) *schemas.AuditEvent {
		return &schemas.AuditEvent{UserID: user, IP: ip, ClientID: client}
	}
	for _, tc := range []struct {
		name string
		cmd  *schemas.RevokeCommand
		ev   *schemas.AuditEvent
		want bool
	}{
		{"user", cmdFor("any", "svc-monitor", schemas.ActionRevoke), ev("svc-monitor", "", ""), true},
		{"token of the user", &schemas.RevokeCommand{Target: schemas.Target{Kind: schemas.TargetToken, TokenID: "t"}, Reason: schemas.Reason{RuleID: "x"}}, ev("svc-monitor", "", ""), true},
		{"other user", cmdFor("any", "u1", schemas.ActionRevoke), ev("u1", "203.0.113.1", ""), false},
		{"cidr in scope", cmdFor("brute_force_success", "u1", schemas.ActionRevoke), ev("u1", "192.0.2.44", ""), true},
		{"bare ip", cmdFor("brute_force_success", "u1", schemas.ActionRevoke), ev("u1", "198.51.100.7", ""), true},
		{"cidr, other rule", cmdFor("token_replay", "u1", schemas.ActionRevoke), ev("u1", "192.0.2.44", ""), false},
		{"client, action in scope", cmdFor("any", "u1", schemas.ActionRevoke), ev("u1", "", "ci-runner"), true},
		{"client, other action", cmdFor("any", "u1", schemas.ActionRevokeAndReverify), ev("u1", "", "ci-runner"), false},
		{"no event", cmdFor("any", "u1", schemas.ActionRevoke), nil, false},
	} {
		if got := a.Allows(tc.cmd, tc.ev); got != tc.want {
			t.Errorf("%s: Allows = %t, want %t", tc.name, got, tc.want)
		}
	}
	var none *allowlist.Allowlist
	if none.Allows(cmdFor("r", "u", schemas.ActionRevoke), nil) || none.Len() != 0 {
		t.Error("a nil allowlist allows")
	}
}

func TestParseReportsEveryProblem(t *testing.T) {
	_, err := allowlist.Parse([]byte(`
entries:
  - rules: [r]
  - ips: [not-an-ip]
    actions: [delete]
`))
	if !errors.Is(err, allowlist.ErrInvalid) {
		t.Fatalf("err %v", err)
	}
	for _, want := range []string{"entries[0]: names no user_ids", `entries[1]: ips: "not-an-ip"`, `entries[1]: actions: unknown action "delete"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v\nlacks %q", err, want)
		}
	}
	if _, err := allowlist.Parse([]byte("entries:\n  - user_id: [x]\n")); err == nil || !strings.Contains(err.Error(), "user_id") {
		t.Errorf("unknown key: %v", err)
	}
}

// The consumer's earlier keys are refused with the keys that replaced
// them; a match says what matched, its scope and its reason; entries that
// name only addresses are listed for a guard that sees no events.
func TestLegacyKeysMatchAndAddressOnly(t *testing.T) {
	_, err := allowlist.Parse([]byte("entries:\n  - users: [admin]\n    note: on call\n  - clients: [batch]\n"))
	if !errors.Is(err, allowlist.ErrInvalid) {
		t.Fatalf("err %v", err)
	}
	for _, want := range []string{"entries[0]: users: is user_ids now", "entries[0]: note: is reason now", "entries[1]: clients: is client_ids now"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v\nlacks %q", err, want)
		}
	}
	a, err := allowlist.Parse([]byte("entries:\n  - user_ids: [admin]\n    rules: [manual]\n    reason: on call\n  - ips: [10.0.0.0/8]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := a.Match(cmdFor("manual", "admin", schemas.ActionRevoke), nil); !ok || got != "user admin for rules [manual] (on call)" {
		t.Errorf("Match = %q, %v", got, ok)
	}
	if _, ok := a.Match(cmdFor("other", "admin", schemas.ActionRevoke), nil); ok {
		t.Error("an entry scoped to a rule matched another")
	}
	if got := a.AddressOnly(); len(got) != 1 || got[0] != 1 {
		t.Errorf("AddressOnly = %v, want [1]", got)
	}
}
