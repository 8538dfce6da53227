package engine

import (
	"slices"
	"strings"

	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"

	"github.com/revoked-dev/revoked/schemas"
)

// pred is a condition compiled to Go: it says what the CEL program says,
// for the current event and context.
type pred func(a *eventActivation) bool

// nativeCond compiles conditions of a small, common form to Go instead of
// leaving them to the CEL interpreter: &&, || and ! over comparisons of
// the event's and the context's string and integer fields with literals
// (==, !=, and for integers <, <=, >, >=), `in` a list of string literals,
// the context's flags, and has() of the event's fields. Evaluating these
// can raise no CEL error (every field has a value, "" or 0 when absent),
// so plain Go logic gives exactly CEL's answer; TestNativeCondAgrees
// holds the two to the same result on every condition of the default
// pack. Anything else (a macro, a function, a map, a timestamp) reports
// false and stays with CEL.
//
// The interpreter cost about 3 µs per event of the detector's 10 µs in the
// engine, on the one goroutine all partitions share.
func nativeCond(e celast.Expr) (pred, bool) {
	switch e.Kind() {
	case celast.SelectKind:
		if e.AsSelect().IsTestOnly() {
			return hasField(e)
		}
		if get, ok := boolField(e); ok {
			return get, true
		}
		return nil, false
	case celast.CallKind:
	default:
		return nil, false
	}
	call := e.AsCall()
	args := call.Args()
	switch fn := call.FunctionName(); fn {
	case operators.LogicalAnd, operators.LogicalOr:
		a, okA := nativeCond(args[0])
		b, okB := nativeCond(args[1])
		if !okA || !okB {
			return nil, false
		}
		if fn == operators.LogicalAnd {
			return func(x *eventActivation) bool { return a(x) && b(x) }, true
		}
		return func(x *eventActivation) bool { return a(x) || b(x) }, true
	case operators.LogicalNot:
		a, ok := nativeCond(args[0])
		if !ok {
			return nil, false
		}
		return func(x *eventActivation) bool { return !a(x) }, true
	case operators.In:
		get, ok := stringField(args[0])
		if !ok || args[1].Kind() != celast.ListKind {
			return nil, false
		}
		var set []string
		for _, el := range args[1].AsList().Elements() {
			s, ok := stringLiteral(el)
			if !ok {
				return nil, false
			}
			set = append(set, s)
		}
		return func(x *eventActivation) bool { return slices.Contains(set, get(x)) }, true
	case operators.Equals, operators.NotEquals, operators.Less, operators.LessEquals, operators.Greater, operators.GreaterEquals:
		return comparison(fn, args[0], args[1])
	}
	return nil, false
}

// comparison compiles field op literal, or literal op field.
func comparison(fn string, l, r celast.Expr) (pred, bool) {
	if l.Kind() == celast.LiteralKind {
		l, r = r, l
		fn = mirrored[fn]
	}
	if r.Kind() != celast.LiteralKind {
		return nil, false
	}
	if get, ok := stringField(l); ok {
		lit, ok := stringLiteral(r)
		if !ok {
			return nil, false
		}
		switch fn {
		case operators.Equals:
			return func(x *eventActivation) bool { return get(x) == lit }, true
		case operators.NotEquals:
			return func(x *eventActivation) bool { return get(x) != lit }, true
		}
		return nil, false
	}
	get, ok := intField(l)
	if !ok {
		return nil, false
	}
	v, ok := r.AsLiteral().(types.Int)
	if !ok {
		return nil, false
	}
	n := int64(v)
	switch fn {
	case operators.Equals:
		return func(x *eventActivation) bool { return get(x) == n }, true
	case operators.NotEquals:
		return func(x *eventActivation) bool { return get(x) != n }, true
	case operators.Less:
		return func(x *eventActivation) bool { return get(x) < n }, true
	case operators.LessEquals:
		return func(x *eventActivation) bool { return get(x) <= n }, true
	case operators.Greater:
		return func(x *eventActivation) bool { return get(x) > n }, true
	case operators.GreaterEquals:
		return func(x *eventActivation) bool { return get(x) >= n }, true
	}
	return nil, false
}

// mirrored is the operator that says the same with its operands swapped.
var mirrored = map[string]string{
	operators.Equals: operators.Equals, operators.NotEquals: operators.NotEquals,
	operators.Less: operators.Greater, operators.LessEquals: operators.GreaterEquals,
	operators.Greater: operators.Less, operators.GreaterEquals: operators.LessEquals,
}

func stringLiteral(e celast.Expr) (string, bool) {
	if e.Kind() != celast.LiteralKind {
		return "", false
	}
	s, ok := e.AsLiteral().(types.String)
	return string(s), ok
}

// selectPath returns the names of a chain of field selections on a variable,
// outermost last (event.geo.network: event, geo, network).
func selectPath(e celast.Expr) []string {
	var names []string
	for e.Kind() == celast.SelectKind {
		sel := e.AsSelect()
		names = append(names, sel.FieldName())
		e = sel.Operand()
	}
	if e.Kind() != celast.IdentKind {
		return nil
	}
	names = append(names, e.AsIdent())
	slices.Reverse(names)
	return names
}

func geoOfEvent(x *eventActivation) *schemas.Geo      { return geoOf(x.ev.Geo) }
func resOfEvent(x *eventActivation) *schemas.Resource { return resOf(x.ev.Resource) }
func ctxOfAct(x *eventActivation) *Context            { return ctxOf(x.ctx) }

var stringFields = map[string]func(*eventActivation) string{
	"event.id":              func(x *eventActivation) string { return x.ev.ID },
	"event.type":            func(x *eventActivation) string { return string(x.ev.Type) },
	"event.user_id":         func(x *eventActivation) string { return x.ev.UserID },
	"event.session_id":      func(x *eventActivation) string { return x.ev.SessionID },
	"event.token_id":        func(x *eventActivation) string { return x.ev.TokenID },
	"event.parent_token_id": func(x *eventActivation) string { return x.ev.ParentTokenID },
	"event.client_id":       func(x *eventActivation) string { return x.ev.ClientID },
	"event.ip":              func(x *eventActivation) string { return x.ev.IP },
	"event.user_agent":      func(x *eventActivation) string { return x.ev.UserAgent },
	"event.device_id":       func(x *eventActivation) string { return x.ev.DeviceID },
	"event.source":          func(x *eventActivation) string { return x.ev.Source },
	"event.geo.country":     func(x *eventActivation) string { return geoOfEvent(x).Country },
	"event.geo.city":        func(x *eventActivation) string { return geoOfEvent(x).City },
	"event.geo.org":         func(x *eventActivation) string { return geoOfEvent(x).Org },
	"event.geo.network":     func(x *eventActivation) string { return geoOfEvent(x).Network },
	"event.resource.type":   func(x *eventActivation) string { return resOfEvent(x).Type },
	"event.resource.id":     func(x *eventActivation) string { return resOfEvent(x).ID },
	"ctx.token_network":     func(x *eventActivation) string { return ctxOfAct(x).TokenNetwork },
}

var intFields = map[string]func(*eventActivation) int64{
	"event.bytes":     func(x *eventActivation) int64 { return x.ev.Bytes },
	"event.geo.asn":   func(x *eventActivation) int64 { return int64(geoOfEvent(x).ASN) },
	"ctx.device_days": func(x *eventActivation) int64 { return int64(ctxOfAct(x).DeviceDays) },
}

var boolFields = map[string]pred{
	"ctx.learned":               func(x *eventActivation) bool { return ctxOfAct(x).Learned },
	"ctx.watched":               func(x *eventActivation) bool { return ctxOfAct(x).Watched },
	"ctx.known_user":            func(x *eventActivation) bool { return ctxOfAct(x).KnownUser },
	"ctx.new_device":            func(x *eventActivation) bool { return ctxOfAct(x).NewDevice },
	"ctx.new_network":           func(x *eventActivation) bool { return ctxOfAct(x).NewNetwork },
	"ctx.new_country":           func(x *eventActivation) bool { return ctxOfAct(x).NewCountry },
	"ctx.shared_egress":         func(x *eventActivation) bool { return ctxOfAct(x).SharedEgress },
	"ctx.org_network":           func(x *eventActivation) bool { return ctxOfAct(x).OrgNetwork },
	"ctx.failures_recovered":    func(x *eventActivation) bool { return ctxOfAct(x).FailuresRecovered },
	"ctx.token_bound":           func(x *eventActivation) bool { return ctxOfAct(x).TokenBound },
	"ctx.token_device_changed":  func(x *eventActivation) bool { return ctxOfAct(x).TokenDeviceChanged },
	"ctx.token_network_changed": func(x *eventActivation) bool { return ctxOfAct(x).TokenNetworkChanged },
	"ctx.token_country_changed": func(x *eventActivation) bool { return ctxOfAct(x).TokenCountryChanged },
	"ctx.token_interleaved":     func(x *eventActivation) bool { return ctxOfAct(x).TokenInterleaved },
}

// hasFields are the fields has() is compiled for, by what CEL's presence
// test reads (the field getters' isSet in cel.go).
var hasFields = map[string]pred{
	"event.geo":      func(x *eventActivation) bool { return x.ev.Geo != nil },
	"event.resource": func(x *eventActivation) bool { return x.ev.Resource != nil },
	"event.geo.lat":  func(x *eventActivation) bool { return geoOfEvent(x).Lat != nil },
	"event.geo.lon":  func(x *eventActivation) bool { return geoOfEvent(x).Lon != nil },
}

// joined is the dotted name of a selection on a variable
// ("event.geo.network"), or "" for anything else.
func joined(e celast.Expr) string {
	if p := selectPath(e); len(p) >= 2 {
		return strings.Join(p, ".")
	}
	return ""
}

func stringField(e celast.Expr) (func(*eventActivation) string, bool) {
	if e.Kind() != celast.SelectKind || e.AsSelect().IsTestOnly() {
		return nil, false
	}
	get, ok := stringFields[joined(e)]
	return get, ok
}

func intField(e celast.Expr) (func(*eventActivation) int64, bool) {
	if e.Kind() != celast.SelectKind || e.AsSelect().IsTestOnly() {
		return nil, false
	}
	get, ok := intFields[joined(e)]
	return get, ok
}

func boolField(e celast.Expr) (pred, bool) {
	get, ok := boolFields[joined(e)]
	return get, ok
}

// hasField compiles has(x.f), a test-only selection.
func hasField(e celast.Expr) (pred, bool) {
	name := joined(e)
	if get, ok := hasFields[name]; ok {
		return get, true
	}
	if get, ok := stringFields[name]; ok {
		return func(x *eventActivation) bool { return get(x) != "" }, true
	}
	// An integer is present when it is not 0, but for ctx.device_days,
	// whose presence is >= 0 (-1: a device never seen): left to CEL.
	if get, ok := intFields[name]; ok && name != "ctx.device_days" {
		return func(x *eventActivation) bool { return get(x) != 0 }, true
	}
	return nil, false
}
