package engine

import (
	"math/rand/v2"
	"testing"

	"cel.dev/cel-go/common/types"

	"github.com/revoked-dev/revoked/schemas"
)

// TestNativeCondAgrees evaluates every condition of the default pack that
// compiles to Go, and conditions written to reach each form nativeCond
// takes, both ways on random events and contexts: the Go version must
// give the CEL program's answer every time.
func TestNativeCondAgrees(t *testing.T) {
	rules, err := DefaultRules()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(DefaultConfig(), rules); err != nil {
		t.Fatal(err)
	}
	extra := []string{
		`event.type == "login.success" && ctx.new_device`,
		`"hosting" == event.geo.network || event.resource.type != "file"`,
		`!(event.geo.network in ["vpn", "cellular"]) && has(event.geo.lat) && has(event.geo.lon)`,
		`has(event.geo) || has(event.resource) || has(event.token_id) || has(event.geo.asn) || has(event.bytes)`,
		`event.bytes >= 104857600 || event.bytes < 0 || 10 > event.bytes || event.bytes <= 5 || event.bytes > 7 || event.bytes != 3`,
		`event.geo.asn == 0 && ctx.device_days < 0 || ctx.device_days >= 1 && ctx.device_days == 7`,
		`ctx.token_network == "hosting" || ctx.learned && ctx.watched && ctx.known_user || !ctx.org_network`,
		`event.geo.country in ["NL", "SG"] && event.geo.city != "" && event.geo.org != "x" && event.ip != "" && event.source == "idp"`,
		`event.client_id == "app" || event.session_id == "" || event.parent_token_id != "" || event.user_id == "u1" || event.id != ""`,
		`ctx.new_network || ctx.new_country || ctx.shared_egress || ctx.token_bound || ctx.token_device_changed || ctx.token_network_changed || ctx.token_country_changed || ctx.token_interleaved || !ctx.failures_recovered`,
	}
	for _, src := range extra {
		if cc := compiled(src); cc.err != nil || cc.native == nil {
			t.Fatalf("%s: err %v, native %v; want it compiled to Go", src, cc.err, cc.native != nil)
		}
	}
	var native, interpreted []string
	celPrograms.Range(func(k, v any) bool {
		cc := v.(*celCompiled)
		switch {
		case cc.err != nil || cc.typeOnly:
		case cc.native != nil:
			native = append(native, k.(string))
		default:
			interpreted = append(interpreted, k.(string))
		}
		return true
	})
	if len(native) < len(extra)+10 {
		t.Fatalf("only %d conditions compiled to Go", len(native))
	}
	for _, src := range []string{`event.token_id != ""`, `event.type == "login.failure" && !ctx.shared_egress`} {
		if compiled(src).native == nil {
			t.Errorf("%s from the default pack is not compiled to Go", src)
		}
	}
	t.Logf("%d conditions compiled to Go, %d left to CEL", len(native), len(interpreted))

	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(vals ...string) string { return vals[rng.IntN(len(vals))] }
	act := &eventActivation{}
	for i := range 20000 {
		ev := &schemas.AuditEvent{
			ID: pick("", "e1"), Type: schemas.EventTypes[rng.IntN(len(schemas.EventTypes))], UserID: pick("", "u1", "u2"),
			SessionID: pick("", "s1"), TokenID: pick("", "t1"), ParentTokenID: pick("", "t0"), ClientID: pick("", "app", "cli"),
			IP: pick("", "203.0.113.7"), UserAgent: pick("", "ua"), DeviceID: pick("", "d1"), Source: pick("", "idp"),
			Bytes: []int64{0, 3, 5, 7, 10, 104857599, 104857600, -1}[rng.IntN(8)],
		}
		if rng.IntN(4) > 0 {
			ev.Geo = &schemas.Geo{Country: pick("", "NL", "SG"), City: pick("", "Delft"), Org: pick("", "x", "y"),
				Network: pick("", "hosting", "vpn", "cellular", "residential"), ASN: uint32(rng.IntN(2) * 64500)}
			if rng.IntN(2) == 0 {
				lat := 52.0
				ev.Geo.Lat = &lat
			}
			if rng.IntN(2) == 0 {
				lon := 4.0
				ev.Geo.Lon = &lon
			}
		}
		if rng.IntN(3) == 0 {
			ev.Resource = &schemas.Resource{Type: pick("", "file", "folder"), ID: pick("", "f1")}
		}
		b := func() bool { return rng.IntN(2) == 0 }
		var ctx *Context
		if rng.IntN(8) > 0 {
			ctx = &Context{Learned: b(), Watched: b(), KnownUser: b(), NewDevice: b(), NewNetwork: b(), NewCountry: b(),
				SharedEgress: b(), OrgNetwork: b(), FailuresRecovered: b(), TokenBound: b(), TokenDeviceChanged: b(), TokenNetworkChanged: b(),
				TokenCountryChanged: b(), TokenInterleaved: b(), TokenNetwork: pick("", "hosting", "vpn"),
				DeviceDays: []int{-1, 0, 1, 7, 30}[rng.IntN(5)]}
		}
		act.ev, act.ctx = ev, ctx
		for _, src := range native {
			cc := compiled(src)
			out, _, err := cc.prg.Eval(act)
			want := err == nil && out == types.True
			if got := cc.native(act); got != want {
				t.Fatalf("case %d: %s: Go says %v, CEL %v (err %v)\nevent %+v geo %+v resource %+v\nctx %+v", i, src, got, want, err, ev, ev.Geo, ev.Resource, ctx)
			}
		}
	}
}
