package engine

import (
	"testing"
	"time"

	"cel.dev/cel-go/common/types"

	"github.com/revoked-dev/revoked/schemas"
)

func celEvent() *schemas.AuditEvent {
	lat, lon := 48.85, 2.35
	return &schemas.AuditEvent{
		ID: "e1", Time: time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC), Type: schemas.EventFileDownload,
		UserID: "u1", TokenID: "t1", IP: "192.0.2.7", Scopes: []string{"item_preview", "item_download"},
		Geo:      &schemas.Geo{Country: "FR", City: "Paris", ASN: 3215, Lat: &lat, Lon: &lon},
		Resource: &schemas.Resource{Type: "file", ID: "f1"}, Bytes: 2048, Attrs: map[string]string{"k": "v"},
	}
}

func TestConditionsSeeTheEventByJSONNames(t *testing.T) {
	bare := &schemas.AuditEvent{ID: "e2", Time: time.Now(), Type: schemas.EventLoginSuccess, UserID: "u2"}
	cases := []struct {
		expr       string
		full, bare bool
	}{
		{`event.type == "file.download" && event.user_id == "u1"`, true, false},
		{`event.geo.country == "FR" && event.geo.asn == 3215 && event.geo.city == "Paris"`, true, false},
		{`event.geo.country == ""`, false, true},
		{`has(event.geo.lat) && event.geo.lat > 48.0 && event.geo.lon < 3.0`, true, false},
		{`has(event.geo)`, true, false},
		{`event.resource.type == "file" && event.resource.id == "f1"`, true, false},
		{`"item_download" in event.scopes && size(event.scopes) == 2`, true, false},
		{`event.scopes.exists(s, s.startsWith("item_"))`, true, false},
		{`event.attrs["k"] == "v"`, true, false},
		{`"k" in event.attrs`, true, false},
		{`event.bytes >= 2048`, true, false},
		{`event.time > timestamp("2025-01-01T00:00:00Z")`, true, true},
		{`event.ip.startsWith("192.0.2.")`, true, false},
		{`event.token_id != "" || event.type == "login.success"`, true, true},
	}
	act := &eventActivation{}
	for _, c := range cases {
		if err := func() error { _, err := compileExpr(c.expr); return err }(); err != nil {
			t.Errorf("%s: %v", c.expr, err)
			continue
		}
		cd := newCond(c.expr, act)
		for _, in := range []struct {
			ev   *schemas.AuditEvent
			want bool
		}{{celEvent(), c.full}, {bare, c.bare}} {
			act.ev, act.typIdx = in.ev, typeIndex(in.ev.Type)
			act.typ = 1 << act.typIdx
			if got := cd.match(); got != in.want {
				t.Errorf("%s on %s: %v, want %v", c.expr, in.ev.ID, got, in.want)
			}
		}
	}
}

func TestTypeSetOfConditions(t *testing.T) {
	bits := func(ts ...schemas.EventType) uint32 {
		var b uint32
		for _, t := range ts {
			b |= typeBit(t)
		}
		return b
	}
	cases := []struct {
		expr string
		want uint32
	}{
		{`event.type == "logout"`, bits(schemas.EventLogout)},
		{`"logout" == event.type && event.session_id != ""`, bits(schemas.EventLogout)},
		{`event.type in ["login.failure", "login.success"]`, bits(schemas.EventLoginFailure, schemas.EventLoginSuccess)},
		{`event.type == "logout" || event.type in ["token.used"]`, bits(schemas.EventLogout, schemas.EventTokenUsed)},
		{`event.type == "logout" || event.ip != ""`, allTypes},
		{`has(event.geo.lat)`, allTypes},
		{`event.type != "logout"`, allTypes},
		{`event.type == "logout" && event.type == "token.used"`, 0},
	}
	for _, c := range cases {
		if got := compiled(c.expr).types; got != c.want {
			t.Errorf("%s: types %b, want %b", c.expr, got, c.want)
		}
	}
}

// A condition that tests nothing but the event's type is decided by its
// type set, as evaluating it would decide it, for every type; others are
// evaluated.
func TestTypeOnlyConditions(t *testing.T) {
	for _, c := range []struct {
		expr     string
		typeOnly bool
	}{
		{`event.type == "logout"`, true},
		{`"logout" == event.type`, true},
		{`event.type in ["login.failure", "login.success"]`, true},
		{`event.type == "logout" || event.type in ["token.used", "file.download"]`, true},
		{`event.type == "logout" && event.type == "token.used"`, true},
		{`event.type in ["mfa.failure", "login.success"] && (event.type == "login.success" || event.type == "mfa.failure")`, true},
		{`event.type in ["login.failure", "login.success"] && !ctx.shared_egress`, false},
		{`"logout" == event.type && event.session_id != ""`, false},
		{`event.type == "logout" || event.ip != ""`, false},
		{`event.type != "logout"`, false},
		{`!(event.type in ["logout"])`, false},
		{`has(event.geo.lat)`, false},
	} {
		cc := compiled(c.expr)
		if cc.err != nil {
			t.Fatalf("%s: %v", c.expr, cc.err)
		}
		if cc.typeOnly != c.typeOnly {
			t.Errorf("%s: typeOnly %t, want %t", c.expr, cc.typeOnly, c.typeOnly)
		}
		for _, typ := range schemas.EventTypes {
			ev := celEvent()
			ev.Type = typ
			act := &eventActivation{ev: ev}
			act.typIdx = typeIndex(typ)
			act.typ = 1 << act.typIdx
			out, _, err := cc.prg.Eval(act)
			want := err == nil && out == types.True
			if got := newCond(c.expr, act).match(); got != want {
				t.Errorf("%s on %s: match %t, evaluated %t", c.expr, typ, got, want)
			}
		}
	}
}

// BenchmarkCondition evaluates a compiled condition of the default pack
// against an event.
func BenchmarkCondition(b *testing.B) {
	act := &eventActivation{ev: celEvent()}
	act.typIdx = typeIndex(act.ev.Type)
	act.typ = 1 << act.typIdx
	for _, expr := range []string{
		`event.type == "file.download" && event.bytes >= 104857600`,
		`has(event.geo) && event.geo.country != "" && "item_download" in event.scopes`,
		`["role", "permission"].exists(k, k in event.attrs && event.attrs[k].matches("(?i)^admin$"))`,
	} {
		c := newCond(expr, act)
		b.Run(expr[:20], func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.match()
			}
		})
	}
}
