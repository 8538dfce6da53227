package schemas

import (
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func contextCommand(ctx ...EventContext) RevokeCommand {
	at := time.Date(2026, 11, 24, 9, 0, 5, 0, time.UTC)
	return RevokeCommand{
		CommandID: "cmd_1", IssuedAt: at, ExpiresAt: at.Add(time.Hour), Issuer: "detector",
		Target: Target{Kind: TargetUser, UserID: "u-alice"}, Action: ActionRevoke, Mode: ModeEnforce,
		Reason: Reason{RuleID: "risk", RuleVersion: 1, Severity: SeverityHigh, Evidence: []string{"ev-1", "ev-2"}, Context: ctx},
	}
}

func TestContextValidation(t *testing.T) {
	ok := EventContext{EventID: "ev-1", IP: "192.0.2.7", Country: "DE", ASN: 3320, ASOrg: "Deutsche Telekom AG", Network: NetworkResidential}
	c := contextCommand(ok, EventContext{EventID: "ev-2", IP: "2001:db8::1"})
	if err := c.Validate(); err != nil {
		t.Fatalf("valid context: %v", err)
	}
	for _, tc := range []struct {
		name  string
		ctx   []EventContext
		field string
	}{
		{"twice", []EventContext{ok, ok}, "reason.context[1].event_id"},
		{"not evidence", []EventContext{{EventID: "ev-9", IP: "192.0.2.7"}}, "reason.context[0].event_id"},
		{"no event id", []EventContext{{IP: "192.0.2.7"}}, "reason.context[0].event_id"},
		{"no ip", []EventContext{{EventID: "ev-1", Country: "DE"}}, "reason.context[0].ip"},
		{"bad ip", []EventContext{{EventID: "ev-1", IP: "192.0.2"}}, "reason.context[0].ip"},
		{"zone", []EventContext{{EventID: "ev-1", IP: "fe80::1%eth0"}}, "reason.context[0].ip"},
		{"country", []EventContext{{EventID: "ev-1", IP: "192.0.2.7", Country: "DEU"}}, "reason.context[0].country"},
		{"org too long", []EventContext{{EventID: "ev-1", IP: "192.0.2.7", ASOrg: strings.Repeat("x", MaxIDLen+1)}}, "reason.context[0].as_org"},
		{"org control", []EventContext{{EventID: "ev-1", IP: "192.0.2.7", ASOrg: "a\nb"}}, "reason.context[0].as_org"},
		{"network", []EventContext{{EventID: "ev-1", IP: "192.0.2.7", Network: "satellite"}}, "reason.context[0].network"},
		{"too many", slices.Repeat([]EventContext{ok}, MaxEvidence+1), "reason.context"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := contextCommand(tc.ctx...)
			err := c.Validate()
			if !errors.Is(err, ErrInvalidCommand) {
				t.Fatalf("Validate = %v, want ErrInvalidCommand", err)
			}
			var fields []string
			collectFields(err, &fields)
			if !slices.Contains(fields, tc.field) {
				t.Errorf("error %q names %q, want %q", err, fields, tc.field)
			}
		})
	}
}

// The command id is the detection's, whatever context the command carries.
func TestContextIsNotPartOfTheCommandID(t *testing.T) {
	data, err := os.ReadFile("testdata/commands/valid/detection_context.json")
	if err != nil {
		t.Fatal(err)
	}
	c, err := DecodeCommand(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Reason.Context) != 2 {
		t.Fatalf("decoded %d context entries, want 2", len(c.Reason.Context))
	}
	with := DetectionCommandID(c.Reason.RuleID, c.Reason.RuleVersion, c.Target, c.Reason.Evidence)
	c.Reason.Context = nil
	if without := DetectionCommandID(c.Reason.RuleID, c.Reason.RuleVersion, c.Target, c.Reason.Evidence); with != without {
		t.Errorf("command id %s with context, %s without", with, without)
	}
}

// The encoding of an entry is frozen: stored rows hash over it.
func TestEncodeEventContextFrozen(t *testing.T) {
	for _, tc := range []struct {
		in   EventContext
		want string
	}{
		{EventContext{EventID: "ev-1", IP: "84.17.43.10", Country: "DE", ASN: 3320, ASOrg: "Deutsche Telekom AG", Network: NetworkResidential},
			`{"event_id":"ev-1","ip":"84.17.43.10","country":"DE","asn":3320,"as_org":"Deutsche Telekom AG","network":"residential"}`},
		{EventContext{EventID: "ev-2", IP: "2001:db8::1"}, `{"event_id":"ev-2","ip":"2001:db8::1"}`},
		{EventContext{EventID: `a"b\c`, IP: "192.0.2.1", ASOrg: "Zürich <&> \x01\t"},
			`{"event_id":"a\"b\\c","ip":"192.0.2.1","as_org":"Zürich <&> \u0001\t"}`},
	} {
		got := EncodeEventContext(tc.in)
		if got != tc.want {
			t.Errorf("EncodeEventContext(%+v) =\n%s\nwant\n%s", tc.in, got, tc.want)
		}
		if !json.Valid([]byte(got)) {
			t.Errorf("%s is not JSON", got)
		}
		back, err := ParseEventContext(got)
		if err != nil || back != tc.in {
			t.Errorf("ParseEventContext(%s) = %+v, %v; want %+v", got, back, err, tc.in)
		}
	}
	// Keys a later version adds are ignored.
	c, err := ParseEventContext(`{"event_id":"e","ip":"192.0.2.1","city":"Berlin"}`)
	if err != nil || c != (EventContext{EventID: "e", IP: "192.0.2.1"}) {
		t.Errorf("entry with an unknown key: %+v, %v", c, err)
	}
	if _, err := ParseEventContext("e\t192.0.2.1"); err == nil {
		t.Error("ParseEventContext accepted what is not JSON")
	}
	if EncodeEventContexts(nil) != nil {
		t.Error("EncodeEventContexts(nil) is not nil")
	}
}

func TestContextFromEvent(t *testing.T) {
	lat, lon := 52.5, 13.4
	ev := AuditEvent{ID: "ev-1", IP: "::ffff:84.17.43.10", Geo: &Geo{Country: "DE", City: "Berlin", Lat: &lat, Lon: &lon, ASN: 3320, Org: "Deutsche Telekom AG", Network: NetworkResidential}}
	c, ok := ContextFromEvent(&ev)
	want := EventContext{EventID: "ev-1", IP: "84.17.43.10", Country: "DE", ASN: 3320, ASOrg: "Deutsche Telekom AG", Network: NetworkResidential}
	if !ok || c != want {
		t.Errorf("ContextFromEvent = %+v, %t; want %+v", c, ok, want)
	}
	for _, ip := range []string{"", "not-an-address"} {
		if _, ok := ContextFromEvent(&AuditEvent{ID: "ev-1", IP: ip}); ok {
			t.Errorf("ContextFromEvent with ip %q: ok", ip)
		}
	}
	// What would not validate is left out, and the command stays valid.
	long := strings.Repeat("é", MaxIDLen) // two bytes each: cut inside a character
	for _, tc := range []struct {
		geo  Geo
		want EventContext
	}{
		{Geo{Org: "Evil\u202eCorp", Country: "de"}, EventContext{EventID: "ev-1", IP: "fe80::1"}},
		{Geo{Org: long}, EventContext{EventID: "ev-1", IP: "fe80::1", ASOrg: long[:MaxIDLen]}},
		{Geo{Org: "x" + long}, EventContext{EventID: "ev-1", IP: "fe80::1", ASOrg: ("x" + long)[:MaxIDLen-1]}},
	} {
		ev := AuditEvent{ID: "ev-1", IP: "fe80::1%eth0", Geo: &tc.geo}
		c, ok := ContextFromEvent(&ev)
		if !ok || c != tc.want {
			t.Errorf("ContextFromEvent(%+v) = %+v, %t; want %+v", tc.geo, c, ok, tc.want)
			continue
		}
		cmd := contextCommand(c)
		if err := cmd.Validate(); err != nil {
			t.Errorf("command with the context of %+v: %v", tc.geo, err)
		}
	}
}

// RowFromCommand keeps the context in the audit trail's encoding; a row
// without context hashes exactly as rows did before the field existed
// (the frozen vectors), and context changes the hash.
func TestRowContextAndHash(t *testing.T) {
	ctx := []EventContext{{EventID: "ev-1", IP: "192.0.2.7", Country: "NL", ASN: 1136}}
	c := contextCommand(ctx...)
	r := RowFromCommand(&c)
	if want := []string{`{"event_id":"ev-1","ip":"192.0.2.7","country":"NL","asn":1136}`}; !slices.Equal(r.EvidenceContext, want) {
		t.Errorf("row context %q, want %q", r.EvidenceContext, want)
	}
	c.Reason.Context = nil
	if r := RowFromCommand(&c); r.EvidenceContext != nil {
		t.Errorf("row of a command without context has %q", r.EvidenceContext)
	}

	data, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	for i, vec := range v.RowHashes {
		if len(vec.Row.EvidenceContext) > 0 {
			continue
		}
		for _, empty := range [][]string{nil, {}} {
			r := vec.Row
			r.EvidenceContext = empty
			if got := r.ComputeHash(); got != vec.Want {
				t.Errorf("row_hashes[%d] with evidence context %#v: %s, frozen %s", i, empty, got, vec.Want)
			}
		}
		seen := map[string]bool{vec.Want: true}
		for _, ctx := range [][]string{{""}, {"", ""}, {`{"event_id":"ev-1","ip":"192.0.2.7"}`}, {`{"event_id":"ev-1","ip":"192.0.2.8"}`}} {
			r := vec.Row
			r.EvidenceContext = ctx
			h := r.ComputeHash()
			if seen[h] {
				t.Errorf("row_hashes[%d] with evidence context %q hashes like another variant", i, ctx)
			}
			seen[h] = true
		}
	}
	withContext := 0
	for _, vec := range v.RowHashes {
		if len(vec.Row.EvidenceContext) > 0 {
			withContext++
		}
	}
	if withContext == 0 {
		t.Error("testdata/vectors.json has no row with evidence context")
	}
}
