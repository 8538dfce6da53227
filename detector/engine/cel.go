package engine

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/interpreter"

	"github.com/revoked-dev/revoked/schemas"
)

// The CEL types of an event. Conditions see the event as the variable
// "event" of type schemas.AuditEvent, whose fields carry their JSON names:
//
//	event.id, event.type, event.user_id, event.session_id, event.token_id,
//	event.parent_token_id, event.client_id, event.ip, event.user_agent,
//	event.device_id, event.source                       string ("" if absent)
//	event.time                                          timestamp
//	event.scopes                                        list(string)
//	event.bytes                                         int
//	event.attrs                                         map(string, string)
//	event.geo.country, event.geo.city                   string
//	event.geo.lat, event.geo.lon                        double (0 if absent)
//	event.geo.asn                                       int (0 if absent)
//	event.geo.org, event.geo.network                    string
//	event.resource.type, event.resource.id              string
//
// and the variable "ctx", of type engine.Context: what the engine knows of
// the event beyond it (see Context): ctx.new_device, ctx.new_network,
// ctx.new_country, ctx.learned, ctx.known_user, ctx.watched, ctx.shared_egress, ctx.org_network,
// ctx.failures_recovered, ctx.token_bound, ctx.token_device_changed, ctx.token_network_changed,
// ctx.token_country_changed, ctx.token_interleaved (bool),
// ctx.token_network (string), ctx.device_days (int, -1 if never seen).
//
// An absent geo or resource reads as one whose fields are all empty, so
// event.geo.country != "" needs no has() guard; has(event.geo.lat) tells a
// located event from one at 0,0.
const (
	celEventType    = "schemas.AuditEvent"
	celGeoType      = "schemas.Geo"
	celResourceType = "schemas.Resource"
	celContextType  = "engine.Context"
)

type celField struct {
	typ   *types.Type
	isSet func(any) bool
	get   func(any) any
}

type celStruct struct {
	typ    *types.Type
	names  []string
	fields map[string]*types.FieldType
}

func newCELStruct(name string, fields map[string]celField) *celStruct {
	s := &celStruct{typ: types.NewObjectType(name), fields: make(map[string]*types.FieldType, len(fields))}
	for n, f := range fields {
		s.names = append(s.names, n)
		get := f.get
		s.fields[n] = &types.FieldType{
			Type:    f.typ,
			IsSet:   f.isSet,
			GetFrom: func(obj any) (any, error) { return get(obj), nil },
		}
	}
	return s
}

func evOf(o any) *schemas.AuditEvent {
	e, _ := o.(*schemas.AuditEvent)
	if e == nil {
		return &schemas.AuditEvent{}
	}
	return e
}

func geoOf(o any) *schemas.Geo {
	g, _ := o.(*schemas.Geo)
	if g == nil {
		return &noGeo
	}
	return g
}

func resOf(o any) *schemas.Resource {
	r, _ := o.(*schemas.Resource)
	if r == nil {
		return &noResource
	}
	return r
}

func ctxOf(o any) *Context {
	c, _ := o.(*Context)
	if c == nil {
		return &noContext
	}
	return c
}

var (
	noContext  Context
	noGeo      schemas.Geo
	noResource schemas.Resource
)

func strField(get func(*schemas.AuditEvent) string) celField {
	return celField{
		typ:   types.StringType,
		isSet: func(o any) bool { return get(evOf(o)) != "" },
		get:   func(o any) any { return types.String(get(evOf(o))) },
	}
}

// celTypes is the type provider and adapter of the event types.
type celTypes struct {
	*types.Registry
	structs map[string]*celStruct
}

func newCELTypes() (*celTypes, error) {
	reg, err := types.NewRegistry()
	if err != nil {
		return nil, err
	}
	ct := &celTypes{Registry: reg, structs: map[string]*celStruct{}}
	ct.structs[celGeoType] = newCELStruct(celGeoType, map[string]celField{
		"country": {types.StringType, func(o any) bool { return geoOf(o).Country != "" }, func(o any) any { return types.String(geoOf(o).Country) }},
		"city":    {types.StringType, func(o any) bool { return geoOf(o).City != "" }, func(o any) any { return types.String(geoOf(o).City) }},
		"asn":     {types.IntType, func(o any) bool { return geoOf(o).ASN != 0 }, func(o any) any { return types.Int(geoOf(o).ASN) }},
		"org":     {types.StringType, func(o any) bool { return geoOf(o).Org != "" }, func(o any) any { return types.String(geoOf(o).Org) }},
		"network": {types.StringType, func(o any) bool { return geoOf(o).Network != "" }, func(o any) any { return types.String(geoOf(o).Network) }},
		"lat": {types.DoubleType, func(o any) bool { return geoOf(o).Lat != nil }, func(o any) any {
			if p := geoOf(o).Lat; p != nil {
				return types.Double(*p)
			}
			return types.Double(0)
		}},
		"lon": {types.DoubleType, func(o any) bool { return geoOf(o).Lon != nil }, func(o any) any {
			if p := geoOf(o).Lon; p != nil {
				return types.Double(*p)
			}
			return types.Double(0)
		}},
	})
	ct.structs[celResourceType] = newCELStruct(celResourceType, map[string]celField{
		"type": {types.StringType, func(o any) bool { return resOf(o).Type != "" }, func(o any) any { return types.String(resOf(o).Type) }},
		"id":   {types.StringType, func(o any) bool { return resOf(o).ID != "" }, func(o any) any { return types.String(resOf(o).ID) }},
	})
	ev := map[string]celField{
		"id":              strField(func(e *schemas.AuditEvent) string { return e.ID }),
		"type":            strField(func(e *schemas.AuditEvent) string { return string(e.Type) }),
		"user_id":         strField(func(e *schemas.AuditEvent) string { return e.UserID }),
		"session_id":      strField(func(e *schemas.AuditEvent) string { return e.SessionID }),
		"token_id":        strField(func(e *schemas.AuditEvent) string { return e.TokenID }),
		"parent_token_id": strField(func(e *schemas.AuditEvent) string { return e.ParentTokenID }),
		"client_id":       strField(func(e *schemas.AuditEvent) string { return e.ClientID }),
		"ip":              strField(func(e *schemas.AuditEvent) string { return e.IP }),
		"user_agent":      strField(func(e *schemas.AuditEvent) string { return e.UserAgent }),
		"device_id":       strField(func(e *schemas.AuditEvent) string { return e.DeviceID }),
		"source":          strField(func(e *schemas.AuditEvent) string { return e.Source }),
		"time": {types.TimestampType, func(o any) bool { return !evOf(o).Time.IsZero() },
			func(o any) any { return types.Timestamp{Time: evOf(o).Time} }},
		"bytes": {types.IntType, func(o any) bool { return evOf(o).Bytes != 0 },
			func(o any) any { return types.Int(evOf(o).Bytes) }},
		"scopes": {types.NewListType(types.StringType), func(o any) bool { return len(evOf(o).Scopes) > 0 },
			func(o any) any { return types.NewStringList(reg, evOf(o).Scopes) }},
		"attrs": {types.NewMapType(types.StringType, types.StringType), func(o any) bool { return len(evOf(o).Attrs) > 0 },
			func(o any) any {
				a := evOf(o).Attrs
				if a == nil {
					a = noAttrs
				}
				return types.NewStringStringMap(reg, a)
			}},
		"geo": {types.NewObjectType(celGeoType), func(o any) bool { return evOf(o).Geo != nil },
			func(o any) any { return geoOf(evOf(o).Geo) }},
		"resource": {types.NewObjectType(celResourceType), func(o any) bool { return evOf(o).Resource != nil },
			func(o any) any { return resOf(evOf(o).Resource) }},
	}
	ct.structs[celEventType] = newCELStruct(celEventType, ev)
	ctxBool := func(get func(*Context) bool) celField {
		return celField{types.BoolType, func(o any) bool { return get(ctxOf(o)) }, func(o any) any { return types.Bool(get(ctxOf(o))) }}
	}
	ct.structs[celContextType] = newCELStruct(celContextType, map[string]celField{
		"learned":               ctxBool(func(c *Context) bool { return c.Learned }),
		"watched":               ctxBool(func(c *Context) bool { return c.Watched }),
		"known_user":            ctxBool(func(c *Context) bool { return c.KnownUser }),
		"new_device":            ctxBool(func(c *Context) bool { return c.NewDevice }),
		"new_network":           ctxBool(func(c *Context) bool { return c.NewNetwork }),
		"new_country":           ctxBool(func(c *Context) bool { return c.NewCountry }),
		"shared_egress":         ctxBool(func(c *Context) bool { return c.SharedEgress }),
		"org_network":           ctxBool(func(c *Context) bool { return c.OrgNetwork }),
		"failures_recovered":    ctxBool(func(c *Context) bool { return c.FailuresRecovered }),
		"token_bound":           ctxBool(func(c *Context) bool { return c.TokenBound }),
		"token_device_changed":  ctxBool(func(c *Context) bool { return c.TokenDeviceChanged }),
		"token_network_changed": ctxBool(func(c *Context) bool { return c.TokenNetworkChanged }),
		"token_country_changed": ctxBool(func(c *Context) bool { return c.TokenCountryChanged }),
		"token_interleaved":     ctxBool(func(c *Context) bool { return c.TokenInterleaved }),
		"device_days": {types.IntType, func(o any) bool { return ctxOf(o).DeviceDays >= 0 },
			func(o any) any { return types.Int(ctxOf(o).DeviceDays) }},
		"token_network": {types.StringType, func(o any) bool { return ctxOf(o).TokenNetwork != "" },
			func(o any) any { return types.String(ctxOf(o).TokenNetwork) }},
	})
	return ct, nil
}

var noAttrs = map[string]string{}

// FindStructType implements types.Provider.
func (ct *celTypes) FindStructType(name string) (*types.Type, bool) {
	if s, ok := ct.structs[name]; ok {
		return types.NewTypeTypeWithParam(s.typ), true
	}
	return ct.Registry.FindStructType(name)
}

// FindStructFieldNames implements types.Provider.
func (ct *celTypes) FindStructFieldNames(name string) ([]string, bool) {
	if s, ok := ct.structs[name]; ok {
		return s.names, true
	}
	return ct.Registry.FindStructFieldNames(name)
}

// FindStructFieldType implements types.Provider.
func (ct *celTypes) FindStructFieldType(name, field string) (*types.FieldType, bool) {
	if s, ok := ct.structs[name]; ok {
		f, ok := s.fields[field]
		return f, ok
	}
	return ct.Registry.FindStructFieldType(name, field)
}

// NewValue implements types.Provider: event values cannot be built in an
// expression.
func (ct *celTypes) NewValue(name string, fields map[string]ref.Val) ref.Val {
	if _, ok := ct.structs[name]; ok {
		return types.NewErr("%s values cannot be created in a condition", name)
	}
	return ct.Registry.NewValue(name, fields)
}

// NativeToValue implements types.Adapter.
func (ct *celTypes) NativeToValue(v any) ref.Val {
	switch o := v.(type) {
	case *schemas.AuditEvent:
		return celObject{v: o, t: ct.structs[celEventType].typ}
	case *schemas.Geo:
		return celObject{v: o, t: ct.structs[celGeoType].typ}
	case *schemas.Resource:
		return celObject{v: o, t: ct.structs[celResourceType].typ}
	case *Context:
		return celObject{v: o, t: ct.structs[celContextType].typ}
	}
	return ct.Registry.NativeToValue(v)
}

// celObject is an event, geo or resource as a CEL value. Its fields are
// read through the provider's field getters, never by reflection.
type celObject struct {
	v any
	t *types.Type
}

func (o celObject) ConvertToNative(t reflect.Type) (any, error) {
	if reflect.TypeOf(o.v) == t {
		return o.v, nil
	}
	return nil, fmt.Errorf("cannot convert %s to %s", o.t.TypeName(), t)
}

func (o celObject) ConvertToType(t ref.Type) ref.Val {
	if t.TypeName() == o.t.TypeName() {
		return o
	}
	if t == types.TypeType {
		return o.t
	}
	return types.NewErr("type conversion error from %s to %s", o.t.TypeName(), t.TypeName())
}

func (o celObject) Equal(other ref.Val) ref.Val {
	p, ok := other.(celObject)
	return types.Bool(ok && reflect.DeepEqual(o.v, p.v))
}

func (o celObject) Type() ref.Type { return o.t }
func (o celObject) Value() any     { return o.v }

// eventActivation binds the variable "event" to the event being processed.
// An engine owns one and points it at each event in turn.
type eventActivation struct {
	ev     *schemas.AuditEvent
	ctx    *Context
	typ    uint32 // typeBit of the event's type
	typIdx uint8  // typeIndex of the event's type
}

var _ interpreter.Activation = (*eventActivation)(nil)

func (a *eventActivation) ResolveName(name string) (any, bool) {
	switch name {
	case "event":
		return a.ev, true
	case "ctx":
		return a.ctx, true
	}
	return nil, false
}

func (a *eventActivation) Parent() interpreter.Activation { return nil }

var (
	celEnvOnce sync.Once
	celEnv     *cel.Env
	celEnvErr  error

	// celPrograms caches compiled programs by expression text: the same
	// condition in several rules, or in several engines (tests, reloads),
	// is compiled once. Programs are safe for concurrent use.
	celPrograms sync.Map // string -> *celCompiled
)

type celCompiled struct {
	prg cel.Program
	// types is the set of event types the condition can hold for (a bit
	// per index in schemas.EventTypes), or allTypes.
	types uint32
	// typeOnly: the condition tests nothing but the event's type, so
	// types decides it without evaluating it.
	typeOnly bool
	// native is the condition compiled to Go, when it has the form
	// nativeCond takes; nil otherwise.
	native pred
	err    error
}

const allTypes = ^uint32(0)

// typeBit is the bit of an event type in a type set.
func typeBit(t schemas.EventType) uint32 {
	for i, k := range schemas.EventTypes {
		if k == t {
			return 1 << i
		}
	}
	return 0
}

func eventEnv() (*cel.Env, error) {
	celEnvOnce.Do(func() {
		ct, err := newCELTypes()
		if err != nil {
			celEnvErr = err
			return
		}
		celEnv, celEnvErr = cel.NewEnv(
			cel.CustomTypeProvider(ct),
			cel.CustomTypeAdapter(ct),
			cel.Variable("event", cel.ObjectType(celEventType)),
			cel.Variable("ctx", cel.ObjectType(celContextType)),
		)
	})
	return celEnv, celEnvErr
}

// maxExprLen bounds a condition's text.
const maxExprLen = 4096

// compileExpr compiles a condition, or returns why it cannot be one: a
// syntax or type error, or a result that is not a bool.
func compileExpr(src string) (cel.Program, error) {
	cc := compiled(src)
	return cc.prg, cc.err
}

func compiled(src string) *celCompiled {
	if c, ok := celPrograms.Load(src); ok {
		return c.(*celCompiled)
	}
	cc := &celCompiled{types: allTypes}
	var ast *cel.Ast
	ast, cc.prg, cc.err = compileExprUncached(src)
	if cc.err == nil {
		if set, ok := typeSet(ast.NativeRep().Expr()); ok {
			cc.types = set
			cc.typeOnly = typeOnly(ast.NativeRep().Expr())
		}
		if p, ok := nativeCond(ast.NativeRep().Expr()); ok {
			cc.native = p
		}
	}
	celPrograms.Store(src, cc)
	return cc
}

// typeSet works out, from the condition's syntax, the event types it can
// hold for: it is false for every other type when event.type == "x" or
// event.type in [...] is one of its top-level conjuncts (or holds on each
// side of a disjunction). The engine skips the condition, and the rule,
// for events of the other types without evaluating it.
func typeSet(e celast.Expr) (uint32, bool) {
	if e.Kind() != celast.CallKind {
		return 0, false
	}
	call := e.AsCall()
	args := call.Args()
	switch call.FunctionName() {
	case operators.LogicalAnd:
		a, okA := typeSet(args[0])
		b, okB := typeSet(args[1])
		switch {
		case okA && okB:
			return a & b, true
		case okA:
			return a, true
		case okB:
			return b, true
		}
	case operators.LogicalOr:
		a, okA := typeSet(args[0])
		b, okB := typeSet(args[1])
		if okA && okB {
			return a | b, true
		}
	case operators.Equals:
		if isEventType(args[0]) {
			return literalTypes(args[1])
		}
		if isEventType(args[1]) {
			return literalTypes(args[0])
		}
	case operators.In:
		if isEventType(args[0]) && args[1].Kind() == celast.ListKind {
			var set uint32
			for _, el := range args[1].AsList().Elements() {
				b, ok := literalTypes(el)
				if !ok {
					return 0, false
				}
				set |= b
			}
			return set, true
		}
	}
	return 0, false
}

// typeOnly reports whether e is nothing but comparisons of event.type
// with literal types (event.type == "x", event.type in [...]) joined by
// && and ||, so that typeSet's set is exactly the events it holds for.
func typeOnly(e celast.Expr) bool {
	if e.Kind() != celast.CallKind {
		return false
	}
	call := e.AsCall()
	switch call.FunctionName() {
	case operators.LogicalAnd, operators.LogicalOr:
		return typeOnly(call.Args()[0]) && typeOnly(call.Args()[1])
	case operators.Equals, operators.In:
		_, ok := typeSet(e)
		return ok
	}
	return false
}

func isEventType(e celast.Expr) bool {
	if e.Kind() != celast.SelectKind {
		return false
	}
	sel := e.AsSelect()
	op := sel.Operand()
	return !sel.IsTestOnly() && sel.FieldName() == "type" && op.Kind() == celast.IdentKind && op.AsIdent() == "event"
}

func literalTypes(e celast.Expr) (uint32, bool) {
	if e.Kind() != celast.LiteralKind {
		return 0, false
	}
	s, ok := e.AsLiteral().(types.String)
	if !ok {
		return 0, false
	}
	return typeBit(schemas.EventType(s)), true
}

func compileExprUncached(src string) (*cel.Ast, cel.Program, error) {
	if len(src) > maxExprLen {
		return nil, nil, fmt.Errorf("condition is %d bytes, limit %d", len(src), maxExprLen)
	}
	env, err := eventEnv()
	if err != nil {
		return nil, nil, fmt.Errorf("CEL environment: %w", err)
	}
	ast, iss := env.Compile(src)
	if iss.Err() != nil {
		return nil, nil, errors.New(strings.ReplaceAll(strings.ReplaceAll(iss.Err().Error(), "ERROR: <input>:", "CEL "), "<input>:", "CEL "))
	}
	if !ast.OutputType().IsExactType(types.BoolType) {
		return nil, nil, fmt.Errorf("condition yields %s, want bool", ast.OutputType())
	}
	prg, err := env.Program(ast, cel.EvalOptions(cel.OptOptimize))
	return ast, prg, err
}

// cond is a compiled condition. The zero cond (no expression) holds for
// every event.
type cond struct {
	src    string
	prg    cel.Program
	native pred
	types  uint32
	act    *eventActivation
}

func newCond(src string, act *eventActivation) cond {
	if src == "" {
		return cond{types: allTypes, act: act}
	}
	cc := compiled(src)
	if cc.err != nil {
		// Unreachable: rules are validated, which compiles them, first.
		panic("engine: condition does not compile: " + cc.err.Error())
	}
	c := cond{src: src, prg: cc.prg, native: cc.native, types: cc.types, act: act}
	if cc.typeOnly {
		// The type set decides it: an event of one of its types holds
		// it, as evaluating it would say, at no cost.
		c.prg = nil
	}
	return c
}

// match evaluates the condition against the engine's current event. An
// evaluation error (a missing map key, say) counts as false.
func (c cond) match() bool {
	if c.types&c.act.typ == 0 {
		return false
	}
	if c.prg == nil {
		return true
	}
	if c.native != nil {
		return c.native(c.act)
	}
	out, _, err := c.prg.Eval(c.act)
	if err != nil {
		return false
	}
	b, ok := out.(types.Bool)
	return ok && bool(b)
}

// conditionsCEL turns a list of field conditions into the equivalent CEL
// expression, so that rule files written with conditions keep loading.
func conditionsCEL(cs []Condition) string {
	parts := make([]string, 0, len(cs))
	for _, c := range cs {
		vals := c.In
		if c.Equals != nil {
			vals = []string{*c.Equals}
		}
		quoted := make([]string, len(vals))
		for i, v := range vals {
			quoted[i] = strconv.Quote(v)
		}
		parts = append(parts, fmt.Sprintf("%s in [%s]", fieldCEL(c.Field), strings.Join(quoted, ", ")))
	}
	return strings.Join(parts, " && ")
}

// fieldCEL is the CEL expression reading a field as a string, "" when
// absent, as field conditions read it.
func fieldCEL(name string) string {
	switch name {
	case "geo.asn":
		return `(event.geo.asn == 0 ? "" : string(event.geo.asn))`
	case "ip.prefix":
		return "event.ip"
	}
	if key, ok := strings.CutPrefix(name, "attrs."); ok {
		k := strconv.Quote(key)
		return fmt.Sprintf(`(%s in event.attrs ? event.attrs[%s] : "")`, k, k)
	}
	return "event." + name
}

// andCEL joins conditions with &&, each in parentheses.
func andCEL(exprs ...string) string {
	var parts []string
	for _, e := range exprs {
		if strings.TrimSpace(e) != "" {
			parts = append(parts, "("+e+")")
		}
	}
	if len(parts) == 1 {
		return strings.TrimSpace(parts[0][1 : len(parts[0])-1])
	}
	return strings.Join(parts, " && ")
}

var (
	typeEqRE = regexp.MustCompile(`event\.type\s*(?:==|!=)\s*(?:"([^"\\]*)"|'([^'\\]*)')`)
	typeInRE = regexp.MustCompile(`event\.type\s+in\s*\[([^\]]*)\]`)
	quotedRE = regexp.MustCompile(`"([^"\\]*)"|'([^'\\]*)'`)
)

// namedEventTypes finds the event types a condition compares event.type
// with, so that a misspelt type is a load error rather than a rule that
// never fires.
func namedEventTypes(src string) []string {
	var out []string
	for _, m := range typeEqRE.FindAllStringSubmatch(src, -1) {
		out = append(out, m[1]+m[2])
	}
	for _, m := range typeInRE.FindAllStringSubmatch(src, -1) {
		for _, q := range quotedRE.FindAllStringSubmatch(m[1], -1) {
			out = append(out, q[1]+q[2])
		}
	}
	return out
}
