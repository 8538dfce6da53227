package engine_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/revoked-dev/revoked/detector/engine"
	"github.com/revoked-dev/revoked/schemas"
)

const goodRule = `id: ok_rule
version: 1
kind: distinct
group_by: [token_id]
window: 15m
severity: high
action: revoke
target: {kind: token}
distinct:
  fields: [geo.country]
  min: 2
`

func TestLoadErrorsNameFileLineAndReason(t *testing.T) {
	cases := []struct {
		name string
		file string
		want []string // substrings, each of one reported problem
	}{
		{
			name: "unknown key",
			file: strings.Replace(goodRule, "window: 15m", "windw: 15m", 1),
			want: []string{`bad.yaml:5: rule "ok_rule": unknown key "windw"`},
		},
		{
			name: "bad duration",
			file: strings.Replace(goodRule, "15m", "fifteen minutes", 1),
			want: []string{`bad.yaml:5: rule "ok_rule": "fifteen minutes" is not a duration`},
		},
		{
			name: "wrong type",
			file: strings.Replace(goodRule, "min: 2", "min: [2]", 1),
			want: []string{`bad.yaml:11: rule "ok_rule": wrong type: seq where an integer is expected`},
		},
		{
			name: "unknown kind",
			file: strings.Replace(goodRule, "kind: distinct", "kind: geo_speed", 1),
			want: []string{
				`bad.yaml:3: rule "ok_rule": kind: unknown kind "geo_speed"`,
				`bad.yaml:9: rule "ok_rule": distinct: is the block of kind distinct`,
			},
		},
		{
			name: "missing block",
			file: strings.Replace(goodRule, "kind: distinct", "kind: sequence_threshold", 1),
			want: []string{
				`bad.yaml:3: rule "ok_rule": kind: kind sequence_threshold needs a sequence_threshold block`,
				`bad.yaml:9: rule "ok_rule": distinct: is the block of kind distinct, but the rule is of kind "sequence_threshold"`,
			},
		},
		{
			name: "several problems at once",
			file: `id: Bad Rule
version: 0
kind: sequence_threshold
when: event.type == "logon"
group_by: [user_id]
window: -1m
severity: urgent
action: delete
target: {kind: tenant}
sequence_threshold:
  count: 0
  of: event.type == "login.failed"
  then:
    - field: type
`,
			want: []string{
				`bad.yaml:1: rule "Bad Rule": id: must be`,
				`bad.yaml:2: rule "Bad Rule": version: must be at least 1`,
				`bad.yaml:4: rule "Bad Rule": when: unknown event type "logon"`,
				`bad.yaml:6: rule "Bad Rule": window: must be positive`,
				`bad.yaml:7: rule "Bad Rule": severity: unknown severity "urgent"`,
				`bad.yaml:8: rule "Bad Rule": action: unknown action "delete"`,
				`bad.yaml:9: rule "Bad Rule": target.kind: unknown target kind "tenant"`,
				`bad.yaml:11: rule "Bad Rule": sequence_threshold.count: must be at least 1`,
				`bad.yaml:12: rule "Bad Rule": sequence_threshold.of: unknown event type "login.failed"`,
				`bad.yaml:13: rule "Bad Rule": sequence_threshold.then: the list form of conditions is no longer read; write them as CEL`,
			},
		},
		{
			name: "reset_by without reset",
			file: `id: bf
version: 1
kind: sequence_threshold
group_by: [user_id]
window: 10m
severity: high
action: notify
target: {kind: user}
sequence_threshold:
  count: 3
  of: event.type == "login.failure"
  then: event.type == "login.success"
  reset: false
  reset_by: [ip, geo.galaxy]
`,
			want: []string{
				`bad.yaml:14: rule "bf": sequence_threshold.reset_by: needs reset, which is false`,
				`bad.yaml:14: rule "bf": sequence_threshold.reset_by[1]: unknown field "geo.galaxy"`,
			},
		},
		{
			name: "syntax error",
			file: "id: x\n  version: 1\n",
			want: []string{`bad.yaml:2: mapping values are not allowed`},
		},
		{
			name: "not a mapping",
			file: "- id: x\n",
			want: []string{`bad.yaml:1: a rule must be a mapping`},
		},
		{
			name: "second document",
			file: goodRule + "---\n" + strings.Replace(strings.Replace(goodRule, "ok_rule", "second", 1), "min: 2", "min: 1", 1),
			want: []string{`bad.yaml:23: rule "second": distinct.min: must be at least 2`},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{
				"rules/bad.yaml":  {Data: []byte(tc.file)},
				"rules/good.yaml": {Data: []byte(strings.Replace(goodRule, "ok_rule", "other", 1))},
			}
			rules, err := engine.LoadFS(fsys, "rules")
			if err == nil {
				t.Fatalf("loaded %d rules, want an error", len(rules))
			}
			if !errors.Is(err, engine.ErrInvalidRule) {
				t.Errorf("error does not wrap ErrInvalidRule: %v", err)
			}
			msg := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, "rules/"+w) {
					t.Errorf("error lacks %q; got:\n%s", "rules/"+w, msg)
				}
			}
			if got := strings.Count(msg, "\n") + 1; got != len(tc.want) {
				t.Errorf("%d problems reported, want %d:\n%s", got, len(tc.want), msg)
			}
		})
	}
}

func TestLoadDuplicateIDs(t *testing.T) {
	fsys := fstest.MapFS{
		"a.yaml":     {Data: []byte(goodRule)},
		"b.yml":      {Data: []byte("# the same id again\n" + goodRule)},
		"notes.txt":  {Data: []byte("not a rule")},
		"sub/c.yaml": {Data: []byte("not: loaded")},
		"empty.yaml": {Data: []byte("# nothing yet\n")},
	}
	_, err := engine.LoadFS(fsys, ".")
	if err == nil || !strings.Contains(err.Error(), `b.yml:2: rule "ok_rule": id: rule id already defined at a.yaml:1`) {
		t.Fatalf("got %v", err)
	}
}

func TestDefaultRules(t *testing.T) {
	rules, err := engine.DefaultRules()
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]*engine.Rule{}
	for _, r := range rules {
		byID[r.ID] = r
	}
	want := []string{"brute_force", "brute_force_success", "credential_stuffing", "distributed_stuffing",
		"downscoped_bulk", "downscoped_misuse", "hosting_login", "idp_compromise", "idp_session_revoked", "idp_sessions_revoked",
		"impossible_travel", "logout", "mass_download", "mass_download_usual_device",
		"mfa_fatigue", "mfa_push_flood", "new_country_login", "new_device_network", "new_device_sensitive_actions", "new_location_sensitive_action", "new_location_sensitive_event",
		"password_reset_takeover", "password_spraying", "privilege_escalation", "risk", "security_alert", "session_hijack",
		"stuffing_campaign",
		"slow_guessing", "slow_guessing_success", "token_after_password_change", "token_device_change", "token_moved"}
	for _, id := range want {
		r := byID[id]
		if r == nil {
			t.Errorf("default pack lacks %s", id)
			continue
		}
		if len(r.Description) < 80 {
			t.Errorf("%s: the description should explain the reasoning and thresholds", id)
		}
	}
	if len(rules) != len(want) {
		t.Errorf("default pack has %d rules, want %d", len(rules), len(want))
	}
	bf, sh, risk := byID["brute_force_success"], byID["session_hijack"], byID["risk"]
	if bf == nil || sh == nil || risk == nil {
		t.Fatalf("default pack: %v", byID)
	}
	if bf.Kind != engine.KindSequenceThreshold || bf.SequenceThreshold.Count != 5 || bf.Window.D() != 10*time.Minute ||
		bf.Action != "" || bf.Signal == nil || bf.Signal.Weight != 1 || bf.Target.Kind != schemas.TargetUser ||
		!bf.Target.IncludeDownscoped || bf.Severity != schemas.SeverityHigh {
		t.Errorf("brute_force_success: %+v", bf)
	}
	if sh.Kind != engine.KindThreshold || sh.Signal == nil || sh.Signal.Scope != "session" ||
		sh.Target.Kind != schemas.TargetToken || !sh.Target.IncludeDownscoped {
		t.Errorf("session_hijack: %+v", sh)
	}
	if risk.Kind != engine.KindRisk || len(risk.Risk.Thresholds) != 3 || risk.Risk.HalfLife.D() != 4*time.Hour {
		t.Errorf("risk: %+v", risk)
	}
	for _, r := range rules {
		if r.Signal == nil && r.Kind != engine.KindRisk && r.Action == "" {
			t.Errorf("%s is neither a signal nor a rule with an action", r.ID)
		}
	}
	if !strings.HasPrefix(bf.Source, "rules/brute_force_success.yaml:") {
		t.Errorf("source %q", bf.Source)
	}
}

func TestMergeOverridesByID(t *testing.T) {
	base, err := engine.DefaultRules()
	if err != nil {
		t.Fatal(err)
	}
	override, err := engine.ParseRules("site.yaml", []byte(strings.Replace(goodRule, "ok_rule", "token_moved", 1)))
	if err != nil {
		t.Fatal(err)
	}
	merged := engine.Merge(base, override)
	last := merged[len(merged)-1]
	if len(merged) != len(base) || last.ID != "token_moved" || last.Source != "site.yaml:1" {
		t.Fatalf("merged %d rules, last %v", len(merged), last)
	}
}

func TestConfigValidateReportsEverything(t *testing.T) {
	err := engine.Config{CommandTTL: -time.Second, Allowance: 2 * time.Hour, MaxEventsPerGroup: 1}.Validate()
	for _, want := range []error{engine.ErrNoIssuer, engine.ErrBadCommandTTL, engine.ErrBadAllowance, engine.ErrBadGroupLimit} {
		if !errors.Is(err, want) {
			t.Errorf("missing %v in %v", want, err)
		}
	}
	if err := engine.DefaultConfig().Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	if _, err := engine.New(engine.DefaultConfig(), nil); !errors.Is(err, engine.ErrNoRules) {
		t.Errorf("New without rules: %v", err)
	}
}

// The example of the package documentation loads.
func TestDocumentedExampleLoads(t *testing.T) {
	const doc = `id: brute_force_success
version: 1
description: Failed logins, then a successful one.
kind: sequence_threshold
when: event.source in ["okta", "keycloak"]
group_by: [user_id]
window: 10m
cooldown: 1h
severity: high
action: revoke_and_reverify
target:
  kind: user
  include_downscoped: true
dry_run: false
allowlist:
  user_ids: [svc-monitor]
sequence_threshold:
  count: 5
  of: event.type == "login.failure"
  then: event.type == "login.success"
  reset: true
  reset_by: [ip]
`
	rules, err := engine.ParseRules("doc.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := engine.New(engine.DefaultConfig(), rules); err != nil {
		t.Fatal(err)
	}
}

func TestLoadErrorsOfConditionsAndKinds(t *testing.T) {
	file := `id: bad_cel
version: 1
kind: sequence
when: event.typ == "login.failure"
group_by: [user_id]
window: 10m
severity: high
action: notify
target: {kind: user}
allowlist:
  ips: [10.0.0.0/33]
sequence:
  join: token_id
  steps:
    - when: event.bytes
    - when: event.type == "login.failed" || event.type in ["logout", "log.out"]
      join: differ
---
id: bad_kinds
version: 1
kind: geo_velocity
group_by: [user_id]
window: 10m
severity: high
action: notify
target: {kind: user}
geo_velocity:
  max_kmh: 0
volume:
  field: size
---
id: bad_first_seen
version: 1
kind: first_seen
when: event.geo.asn == "3320"
group_by: [user_id]
window: 1h
severity: high
action: notify
target: {kind: user}
first_seen:
  fields: [geo.planet]
  learning: 168h
  then: event.attrs["k"]
`
	_, err := engine.LoadFS(fstest.MapFS{"rules/bad.yaml": {Data: []byte(file)}}, "rules")
	if !errors.Is(err, engine.ErrInvalidRule) {
		t.Fatalf("error %v does not wrap ErrInvalidRule", err)
	}
	for _, want := range []string{
		`rules/bad.yaml:4: rule "bad_cel": when: CEL 1:6: undefined field 'typ'`,
		`rules/bad.yaml:11: rule "bad_cel": allowlist.ips[0]: "10.0.0.0/33" is neither an IP address nor a CIDR prefix`,
		`rules/bad.yaml:15: rule "bad_cel": sequence.steps[0].when: condition yields int, want bool`,
		`rules/bad.yaml:16: rule "bad_cel": sequence.steps[1].when: unknown event type "login.failed"`,
		`rules/bad.yaml:16: rule "bad_cel": sequence.steps[1].when: unknown event type "log.out"`,
		`rules/bad.yaml:17: rule "bad_cel": sequence.steps[1].join: the last step's event gives the joined value`,
		`rules/bad.yaml:29: rule "bad_kinds": volume: is the block of kind volume, but the rule is of kind "geo_velocity"`,
		`rules/bad.yaml:28: rule "bad_kinds": geo_velocity.max_kmh: must be positive`,
		`rules/bad.yaml:35: rule "bad_first_seen": when: CEL 1:15: found no matching overload for '_==_' applied to '(int, string)'`,
		`rules/bad.yaml:42: rule "bad_first_seen": first_seen.fields[0]: unknown field "geo.planet"`,
		`rules/bad.yaml:44: rule "bad_first_seen": first_seen.then: condition yields string, want bool`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q; got:\n%v", want, err)
		}
	}
}

// Rule files written with field conditions (match, of, then as lists)
// are refused, each error naming the CEL to write instead; written so,
// the rule detects what the lists described.
func TestConditionListsRefusedWithTheirCEL(t *testing.T) {
	_, err := engine.ParseRules("old.yaml", []byte(`id: old_style
version: 1
kind: sequence_threshold
match:
  - field: source
    in: [okta, keycloak]
  - field: attrs.tenant
    equals: acme
  - field: geo.asn
    equals: "3320"
group_by: [user_id]
window: 10m
severity: high
action: notify
target: {kind: user}
sequence_threshold:
  count: 2
  of: [{field: type, equals: login.failure}]
  then: [{field: type, in: [login.success]}]
`))
	if err == nil {
		t.Fatal("a rule with condition lists loaded")
	}
	when := `event.source in [\"okta\", \"keycloak\"] && (\"tenant\" in event.attrs ? event.attrs[\"tenant\"] : \"\") in [\"acme\"] && (event.geo.asn == 0 ? \"\" : string(event.geo.asn)) in [\"3320\"]`
	for _, want := range []string{
		`old.yaml:4: rule "old_style": match: the list form of conditions is no longer read; write them as CEL: when: "` + when + `"`,
		`sequence_threshold.of: the list form of conditions is no longer read; write them as CEL: sequence_threshold.of: "event.type in [\"login.failure\"]"`,
		`sequence_threshold.then: the list form of conditions is no longer read; write them as CEL: sequence_threshold.then: "event.type in [\"login.success\"]"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q; got:\n%v", want, err)
		}
	}

	rules, err := engine.ParseRules("new.yaml", []byte(`id: new_style
version: 1
kind: sequence_threshold
when: 'event.source in ["okta", "keycloak"] && ("tenant" in event.attrs ? event.attrs["tenant"] : "") in ["acme"] && (event.geo.asn == 0 ? "" : string(event.geo.asn)) in ["3320"]'
group_by: [user_id]
window: 10m
severity: high
action: notify
target: {kind: user}
sequence_threshold:
  count: 2
  of: 'event.type in ["login.failure"]'
  then: 'event.type in ["login.success"]'
`))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(engine.DefaultConfig(), rules)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	var n int
	for i, typ := range []schemas.EventType{schemas.EventLoginFailure, schemas.EventLoginFailure, schemas.EventLoginSuccess} {
		for _, u := range []string{"match", "other-tenant"} {
			tenant := "acme"
			if u != "match" {
				tenant = "globex"
			}
			n += len(eng.Process(&schemas.AuditEvent{ID: fmt.Sprintf("%s-%d", u, i), Time: t0.Add(time.Duration(i) * time.Minute),
				Type: typ, UserID: u, Source: "okta", Attrs: map[string]string{"tenant": tenant}, Geo: &schemas.Geo{ASN: 3320}}))
		}
	}
	if n != 1 {
		t.Errorf("got %d commands, want 1 (for the user of tenant acme)", n)
	}
}
