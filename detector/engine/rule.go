package engine

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/revoked-dev/revoked/schemas"
)

// Kind names the evaluator of a rule.
type Kind string

// Rule kinds. Each has a parameter block of the same name in the rule.
const (
	// KindThreshold fires when a group has at least Count matching events
	// within the window.
	KindThreshold Kind = "threshold"
	// KindDistinct fires when the events of a group within the window carry
	// at least Min distinct values of one of Fields.
	KindDistinct Kind = "distinct"
	// KindSequence fires when events matching Steps happen in order within
	// the window.
	KindSequence Kind = "sequence"
	// KindSequenceThreshold fires when at least Count events matching Of
	// are followed by an event matching Then within the window.
	KindSequenceThreshold Kind = "sequence_threshold"
	// KindGeoVelocity fires when two consecutive located events of a group
	// imply a travel speed above MaxKmh.
	KindGeoVelocity Kind = "geo_velocity"
	// KindFirstSeen fires when an event carries a value of one of Fields
	// the group's learned baseline does not hold, optionally followed by an
	// event matching Then within the window.
	KindFirstSeen Kind = "first_seen"
	// KindVolume fires when the sum of a numeric field over a group's
	// events within the window reaches Min (or their count MinCount).
	KindVolume Kind = "volume"
	// KindTokenLineage fires when a downscoped token is used beyond its
	// grant or after a token it descends from was revoked.
	KindTokenLineage Kind = "token_lineage"
)

// kindBlock is a kind's parameter block in a rule.
type kindBlock interface{ validate(errs *fieldErrors) }

// kindSpec is what the engine knows of a rule kind: where its block is in
// a rule and what evaluates it. Every list and switch over kinds reads
// this one table.
type kindSpec struct {
	kind Kind
	// block returns the rule's block of the kind, nil when it has none.
	block func(*Rule) kindBlock
	// eval builds the kind's evaluator; nil for risk, which the risk
	// model evaluates over the other rules' signals.
	eval func(*Rule, *eventActivation) evaluator
}

var kindSpecs = []kindSpec{
	{KindThreshold, func(r *Rule) kindBlock { return blockIf(r.Threshold) },
		func(r *Rule, _ *eventActivation) evaluator { return &thresholdEval{count: r.Threshold.Count} }},
	{KindDistinct, func(r *Rule) kindBlock { return blockIf(r.Distinct) },
		func(r *Rule, _ *eventActivation) evaluator { return newDistinctEval(r.Distinct) }},
	{KindSequence, func(r *Rule) kindBlock { return blockIf(r.Sequence) },
		func(r *Rule, act *eventActivation) evaluator { return newStepsEval(r.Sequence, act) }},
	{KindSequenceThreshold, func(r *Rule) kindBlock { return blockIf(r.SequenceThreshold) },
		func(r *Rule, act *eventActivation) evaluator { return newSequenceEval(r.SequenceThreshold, act) }},
	{KindGeoVelocity, func(r *Rule) kindBlock { return blockIf(r.GeoVelocity) },
		func(r *Rule, _ *eventActivation) evaluator { return newGeoEval(r.GeoVelocity) }},
	{KindFirstSeen, func(r *Rule) kindBlock { return blockIf(r.FirstSeen) },
		func(r *Rule, act *eventActivation) evaluator { return newFirstSeenEval(r, act) }},
	{KindVolume, func(r *Rule) kindBlock { return blockIf(r.Volume) },
		func(r *Rule, _ *eventActivation) evaluator { return newVolumeEval(r.Volume) }},
	{KindTokenLineage, func(r *Rule) kindBlock { return blockIf(r.TokenLineage) },
		func(r *Rule, _ *eventActivation) evaluator {
			return newLineageEval(r.TokenLineage, time.Duration(r.Window))
		}},
	{KindRisk, func(r *Rule) kindBlock { return blockIf(r.Risk) }, nil},
}

// blockIf is b as a kindBlock, and nil (not a nil pointer in an
// interface) when b is nil.
func blockIf[T any, P interface {
	*T
	kindBlock
}](b P) kindBlock {
	if b == nil {
		return nil
	}
	return b
}

// specOf returns the spec of kind k, and false for an unknown kind.
func specOf(k Kind) (kindSpec, bool) {
	for _, s := range kindSpecs {
		if s.kind == k {
			return s, true
		}
	}
	return kindSpec{}, false
}

// Kinds lists the rule kinds this engine evaluates.
func Kinds() []Kind {
	out := make([]Kind, len(kindSpecs))
	for i, s := range kindSpecs {
		out[i] = s.kind
	}
	return out
}

// Limits on rules. They bound the state a rule can make the engine hold.
const (
	MaxWindow     = 7 * 24 * time.Hour
	MaxCooldown   = 30 * 24 * time.Hour
	maxRuleIDLen  = 128
	maxGroupBy    = 4
	maxDistinct   = 3
	maxConditions = 32
	maxAllowlist  = 10000
	maxSteps      = 8
)

// Rule is one detection rule, as written in a rule file.
type Rule struct {
	// ID names the rule in commands (reason.rule_id) and metrics.
	ID string `yaml:"id"`
	// Version is bumped whenever the rule's logic changes; it is part of the
	// command id.
	Version     int    `yaml:"version"`
	Description string `yaml:"description"`
	Kind        Kind   `yaml:"kind"`
	// When is a CEL condition every event the rule looks at must meet.
	When string `yaml:"when,omitempty"`
	// Match is the older form of When (field conditions, all of which had
	// to hold). It is read only to refuse it with the CEL to write instead.
	Match []Condition `yaml:"match,omitempty"`
	// GroupBy names the event fields whose values split the rule's state.
	// Events missing any of them are ignored by the rule.
	GroupBy []string `yaml:"group_by"`
	// Window is the span of event time a detection's events must fit in.
	Window Duration `yaml:"window"`
	// Cooldown is the least event time between two commands of the rule for
	// the same target (or group, see CooldownScope). It defaults to the
	// window.
	Cooldown Duration `yaml:"cooldown,omitempty"`
	// CooldownScope is what the cooldown is kept per: "target" (the
	// default) or "group", for rules whose detections about one group
	// (one attacking address) would otherwise name a new target each time.
	CooldownScope string           `yaml:"cooldown_scope,omitempty"`
	Severity      schemas.Severity `yaml:"severity"`
	Action        schemas.Action   `yaml:"action"`
	Target        TargetSpec       `yaml:"target"`
	// DryRun makes the rule's commands dry_run commands.
	DryRun    bool      `yaml:"dry_run,omitempty"`
	Allowlist Allowlist `yaml:"allowlist,omitempty"`

	Threshold         *Threshold         `yaml:"threshold,omitempty"`
	Distinct          *Distinct          `yaml:"distinct,omitempty"`
	Sequence          *Sequence          `yaml:"sequence,omitempty"`
	SequenceThreshold *SequenceThreshold `yaml:"sequence_threshold,omitempty"`
	GeoVelocity       *GeoVelocity       `yaml:"geo_velocity,omitempty"`
	FirstSeen         *FirstSeen         `yaml:"first_seen,omitempty"`
	Volume            *Volume            `yaml:"volume,omitempty"`
	TokenLineage      *TokenLineage      `yaml:"token_lineage,omitempty"`
	Risk              *RiskModel         `yaml:"risk,omitempty"`

	// Signal makes the rule's detections evidence for the risk model (the
	// rule of kind risk) instead of commands; such a rule has no action.
	Signal *Signal `yaml:"signal,omitempty"`

	// Source is where the rule was loaded from ("file:line"); empty for
	// rules built in code.
	Source string `yaml:"-"`
}

// TargetSpec says what a rule's commands revoke. The ids come from the
// event that completed the detection: user_id for a user; token_id (and the
// user_id) for a token; session_id (and the user_id) for a session;
// client_id for a client. A detection whose event lacks the id is dropped.
type TargetSpec struct {
	Kind              schemas.TargetKind `yaml:"kind"`
	IncludeDownscoped bool               `yaml:"include_downscoped"`
}

// Allowlist exempts events from a rule: events of these users, from these
// addresses (IPs or CIDR prefixes) or of these clients are not tracked by
// it.
type Allowlist struct {
	UserIDs   []string `yaml:"user_ids,omitempty"`
	IPs       []string `yaml:"ips,omitempty"`
	ClientIDs []string `yaml:"client_ids,omitempty"`
}

// Expr is a condition in a kind's block: a CEL expression over event. The
// older form, a list of field conditions, is read only to refuse it with
// the CEL to write instead.
type Expr struct {
	CEL        string
	Conditions []Condition
}

// UnmarshalYAML reads a CEL string or a list of conditions.
func (x *Expr) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		return n.Decode(&x.CEL)
	}
	if n.Kind != yaml.SequenceNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: want a CEL condition", n.Line)}}
	}
	return n.Decode(&x.Conditions)
}

// MarshalYAML writes the condition as it was read.
func (x Expr) MarshalYAML() (any, error) {
	if x.Conditions != nil {
		return x.Conditions, nil
	}
	return x.CEL, nil
}

// expr is the condition as CEL.
func (x Expr) expr() string { return x.CEL }

func (x Expr) empty() bool { return x.CEL == "" && len(x.Conditions) == 0 }

func (x Expr) validate(path string, errs *fieldErrors) {
	if x.Conditions != nil {
		errs.add(path, "the list form of conditions is no longer read; write them as CEL: %s: %s", path, strconv.Quote(conditionsCEL(x.Conditions)))
		return
	}
	validateCEL(path, x.CEL, errs)
}

// validateCEL compiles a condition and checks the event types it names.
func validateCEL(path, src string, errs *fieldErrors) {
	if _, err := compileExpr(src); err != nil {
		errs.add(path, "%v", err)
		return
	}
	for _, t := range namedEventTypes(src) {
		if !schemas.EventType(t).Known() {
			errs.add(path, "unknown event type %q", t)
		}
	}
}

// Threshold is the parameter block of KindThreshold: at least Count
// events of the group within the window.
type Threshold struct {
	Count int `yaml:"count"`
}

// Distinct is the parameter block of KindDistinct: the group's events
// within the window carry at least Min distinct non-empty values of any one
// of Fields (say geo.country or geo.asn). MinPerField sets another minimum
// for some fields (ip.prefix: 4). With MaxPerValue, a value counts only
// while it appears in at most that many events of the window: one address
// failing a few times against each of many users is a spray, one failing
// hundreds of times against each is something else.
type Distinct struct {
	Fields      []string       `yaml:"fields"`
	Min         int            `yaml:"min"`
	MinPerField map[string]int `yaml:"min_per_field,omitempty"`
	MaxPerValue int            `yaml:"max_per_value,omitempty"`
}

// Sequence is the parameter block of KindSequence: events matching each
// step, in order, all within the window. A step may need Count events, or
// Count distinct values of Distinct. With Join, the steps' events share the
// value of that field with the last step's event; a step's own Join says
// otherwise: "differ" (its events must carry another value, or none) or
// "any".
type Sequence struct {
	Join  string `yaml:"join,omitempty"`
	Steps []Step `yaml:"steps"`
}

// Step is one step of a Sequence.
type Step struct {
	When     string `yaml:"when"`
	Count    int    `yaml:"count,omitempty"`
	Distinct string `yaml:"distinct,omitempty"`
	Join     string `yaml:"join,omitempty"`
}

// SequenceThreshold is the parameter block of KindSequenceThreshold: at
// least Count events matching Of, then an event matching Then, all within
// the window. An event matching both Of and Then counts as Then.
//
// With Reset (the default), an earlier Then event clears the Of events
// before it, so a user who mistypes a password now and then and logs in
// each time is not taken for a brute force. ResetBy narrows that: a Then
// event clears only the Of events that share its values of these fields.
// With reset_by [ip], the victim's own logins from home clear the victim's
// typos but not an attacker's failures from elsewhere, so interleaving
// with the victim does not hide a brute force.
type SequenceThreshold struct {
	Count   int      `yaml:"count"`
	Of      Expr     `yaml:"of"`
	Then    Expr     `yaml:"then"`
	Reset   *bool    `yaml:"reset,omitempty"`
	ResetBy []string `yaml:"reset_by,omitempty"`
}

// GeoVelocity is the parameter block of KindGeoVelocity: two consecutive
// located events (geo.lat and geo.lon set) of a group, at most a window
// apart, farther apart than MinDistanceKm and implying a speed above
// MaxKmh (great-circle distance over the time between them). Pairs on the
// same network (ASN) are ignored unless IgnoreSameASN is false: geolocation
// of one network's addresses jumps about.
type GeoVelocity struct {
	MaxKmh        float64 `yaml:"max_kmh"`
	MinDistanceKm float64 `yaml:"min_distance_km"`
	IgnoreSameASN *bool   `yaml:"ignore_same_asn,omitempty"`
	// IgnoreSameDevice ignores pairs from the same device (device_id and
	// user agent): a device is where it is, its addresses are what moves.
	IgnoreSameDevice bool `yaml:"ignore_same_device,omitempty"`
}

// FirstSeen is the parameter block of KindFirstSeen. Per group (per user),
// the rule learns the values of Fields its events carry. An event with a
// value the group has not shown before is new, once the group's history is
// at least Learning old. Without Then, a new value fires; with Then, an
// event matching Then within the window after a new value fires.
//
// The baseline keeps the MaxValues most recently seen values per field and
// forgets values unseen for Retention; see Engine.BaselineChanges.
type FirstSeen struct {
	Fields []string `yaml:"fields"`
	// AllNew makes an event new only when it has a value for every field
	// and all of them are new to the user (a new network and a new device,
	// say); by default one new value is enough.
	AllNew    bool     `yaml:"all_new,omitempty"`
	Learning  Duration `yaml:"learning"`
	MaxValues int      `yaml:"max_values,omitempty"`
	Retention Duration `yaml:"retention,omitempty"`
	Then      string   `yaml:"then,omitempty"`
}

// Volume is the parameter block of KindVolume: the sum of Field (bytes, or
// a numeric attrs.<key>) over the group's events within the window reaches
// Min, or their number reaches MinCount. Either may be left out.
type Volume struct {
	Field    string `yaml:"field"`
	Min      int64  `yaml:"min,omitempty"`
	MinCount int    `yaml:"min_count,omitempty"`
}

// TokenLineage is the parameter block of KindTokenLineage. Within the
// window, it learns downscoped tokens from token.exchanged events (the
// child token_id, its parent_token_id, its scopes and resource) and
// revocations from token.revoked events. An event using a token (any
// other event with a token_id) fires when the token is a known child and
// uses a scope it was not granted, acts on any resource other than the one
// it was bound to (unless that one's type is in HierarchicalTypes: a folder
// grant covers what is inside, which is not known here), or when an
// ancestor of the token was revoked before.
type TokenLineage struct {
	Scopes            *bool    `yaml:"scopes,omitempty"`
	Resource          *bool    `yaml:"resource,omitempty"`
	Revoked           *bool    `yaml:"revoked,omitempty"`
	HierarchicalTypes []string `yaml:"hierarchical_types,omitempty"`
}

// Duration is a time.Duration written as a Go duration string ("10m").
type Duration time.Duration

// D is the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats the duration like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML reads a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if n.Kind != yaml.ScalarNode || n.Decode(&s) != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: want a duration such as \"10m\"", n.Line)}}
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %q is not a duration such as \"10m\" or \"1h30m\"", n.Line, s)}}
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as a Go duration string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// ErrInvalidRule is wrapped by every error about a rule.
var ErrInvalidRule = errors.New("invalid rule")

// FieldError is one problem with one field of a rule. Field is a dotted
// path as written in the rule file ("sequence_threshold.of[0].field").
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return e.Field + ": " + e.Reason
}

// Unwrap makes every FieldError an ErrInvalidRule.
func (e *FieldError) Unwrap() error { return ErrInvalidRule }

type fieldErrors []error

func (fe *fieldErrors) add(field, format string, args ...any) {
	*fe = append(*fe, &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
}

// Validate reports every problem of the rule at once, each a *FieldError.
func (r *Rule) Validate() error {
	var errs fieldErrors
	switch {
	case r.ID == "":
		errs.add("id", "required")
	case !validRuleID(r.ID):
		errs.add("id", "must be 1-%d characters of a-z, 0-9, '_', '.', '-', starting with a letter or digit", maxRuleIDLen)
	}
	if r.Version < 1 {
		errs.add("version", "must be at least 1")
	}
	if len(r.Match) > 0 {
		errs.add("match", "the list form of conditions is no longer read; write them as CEL: when: %s", strconv.Quote(andCEL(r.When, conditionsCEL(r.Match))))
	}
	if r.When != "" {
		validateCEL("when", r.When, &errs)
	}
	switch {
	case len(r.GroupBy) == 0:
		errs.add("group_by", "name at least one field")
	case len(r.GroupBy) > maxGroupBy:
		errs.add("group_by", "%d fields, limit %d", len(r.GroupBy), maxGroupBy)
	}
	for i, f := range r.GroupBy {
		if _, ok := lookupField(f); !ok {
			errs.add(fmt.Sprintf("group_by[%d]", i), "unknown field %q", f)
		}
	}
	switch {
	case r.Window <= 0:
		errs.add("window", "must be positive")
	case r.Window.D() > MaxWindow:
		errs.add("window", "longer than %s", MaxWindow)
	}
	switch {
	case r.Cooldown < 0:
		errs.add("cooldown", "must be positive (omit it to use the window)")
	case r.Cooldown.D() > MaxCooldown:
		errs.add("cooldown", "longer than %s", MaxCooldown)
	}
	switch r.Severity {
	case schemas.SeverityLow, schemas.SeverityMedium, schemas.SeverityHigh, schemas.SeverityCritical:
	case "":
		errs.add("severity", "required (low, medium, high, critical)")
	default:
		errs.add("severity", "unknown severity %q (low, medium, high, critical)", r.Severity)
	}
	switch r.Action {
	case schemas.ActionRevoke, schemas.ActionRevokeAndReverify, schemas.ActionNotify:
		if r.Signal != nil {
			errs.add("action", "a signal rule has no action: the risk model decides")
		}
		if r.Kind == KindRisk {
			errs.add("action", "the risk rule's actions are its thresholds'")
		}
	case "":
		if r.Signal == nil && r.Kind != KindRisk {
			errs.add("action", "required (revoke, revoke_and_reverify, notify), or a signal block")
		}
	default:
		errs.add("action", "unknown action %q (revoke, revoke_and_reverify, notify)", r.Action)
	}
	switch r.Target.Kind {
	case schemas.TargetUser, schemas.TargetToken, schemas.TargetSession, schemas.TargetClient:
	case "":
		errs.add("target.kind", "required (user, token, session, client)")
	default:
		errs.add("target.kind", "unknown target kind %q (user, token, session, client)", r.Target.Kind)
	}
	switch r.CooldownScope {
	case "", "target", "group":
	default:
		errs.add("cooldown_scope", "unknown scope %q (target, group)", r.CooldownScope)
	}
	r.Allowlist.validate(&errs)
	if r.Signal != nil {
		r.Signal.validate(&errs)
		if r.Kind == KindRisk {
			errs.add("signal", "the risk rule cannot be a signal")
		}
	}
	r.validateKind(&errs)
	if len(errs) == 0 {
		return nil
	}
	return errors.Join(errs...)
}

func (a *Allowlist) validate(errs *fieldErrors) {
	lists := []struct {
		name string
		ids  []string
	}{{"user_ids", a.UserIDs}, {"ips", a.IPs}, {"client_ids", a.ClientIDs}}
	for _, l := range lists {
		if len(l.ids) > maxAllowlist {
			errs.add("allowlist."+l.name, "%d entries, limit %d", len(l.ids), maxAllowlist)
		}
		for i, v := range l.ids {
			if v == "" {
				errs.add(fmt.Sprintf("allowlist.%s[%d]", l.name, i), "must not be empty")
			}
		}
	}
	for i, v := range a.IPs {
		if _, err := parsePrefix(v); v != "" && err != nil {
			errs.add(fmt.Sprintf("allowlist.ips[%d]", i), "%q is neither an IP address nor a CIDR prefix", v)
		}
	}
}

// parsePrefix reads an address ("10.0.0.1") or a prefix ("10.0.0.0/8").
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// validateKind checks that exactly the block of the rule's kind is present
// and valid.
func (r *Rule) validateKind(errs *fieldErrors) {
	for _, k := range kindSpecs {
		if k.kind != r.Kind && k.block(r) != nil {
			errs.add(string(k.kind), "is the block of kind %s, but the rule is of kind %q", k.kind, r.Kind)
		}
	}
	if r.Kind == "" {
		errs.add("kind", "required (%s)", kindList())
		return
	}
	spec, ok := specOf(r.Kind)
	if !ok {
		errs.add("kind", "unknown kind %q (%s)", r.Kind, kindList())
		return
	}
	b := spec.block(r)
	if b == nil {
		errs.add("kind", "kind %s needs a %s block", r.Kind, r.Kind)
		return
	}
	b.validate(errs)
}

func kindList() string {
	var b strings.Builder
	for i, k := range Kinds() {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(string(k))
	}
	return b.String()
}

func validateFields(path string, fields []string, errs *fieldErrors) {
	for i, f := range fields {
		if _, ok := lookupField(f); !ok {
			errs.add(fmt.Sprintf("%s[%d]", path, i), "unknown field %q", f)
		}
	}
}

func (t *Threshold) validate(errs *fieldErrors) {
	if t.Count < 1 {
		errs.add("threshold.count", "must be at least 1")
	}
	if t.Count > MaxEvidenceRecords*10 {
		errs.add("threshold.count", "at most %d", MaxEvidenceRecords*10)
	}
}

func (s *SequenceThreshold) validate(errs *fieldErrors) {
	const p = "sequence_threshold"
	if s.Count < 1 {
		errs.add(p+".count", "must be at least 1")
	}
	if s.Count > MaxEvidenceRecords {
		errs.add(p+".count", "at most %d", MaxEvidenceRecords)
	}
	if s.Of.empty() {
		errs.add(p+".of", "name at least one condition")
	} else {
		s.Of.validate(p+".of", errs)
	}
	if s.Then.empty() {
		errs.add(p+".then", "name at least one condition")
	} else {
		s.Then.validate(p+".then", errs)
	}
	if len(s.ResetBy) > maxDistinct {
		errs.add(p+".reset_by", "%d fields, limit %d", len(s.ResetBy), maxDistinct)
	}
	if len(s.ResetBy) > 0 && s.Reset != nil && !*s.Reset {
		errs.add(p+".reset_by", "needs reset, which is false")
	}
	validateFields(p+".reset_by", s.ResetBy, errs)
}

func (d *Distinct) validate(errs *fieldErrors) {
	const p = "distinct"
	switch {
	case len(d.Fields) == 0:
		errs.add(p+".fields", "name at least one field")
	case len(d.Fields) > maxDistinct:
		errs.add(p+".fields", "%d fields, limit %d", len(d.Fields), maxDistinct)
	}
	validateFields(p+".fields", d.Fields, errs)
	checkMin := func(path string, m int) {
		if m < 2 {
			errs.add(path, "must be at least 2")
		}
		if m > MaxEvidenceRecords {
			errs.add(path, "at most %d", MaxEvidenceRecords)
		}
	}
	checkMin(p+".min", d.Min)
	for f, m := range d.MinPerField {
		if !slices.Contains(d.Fields, f) {
			errs.add(p+".min_per_field", "%q is not one of the fields", f)
		}
		checkMin(p+".min_per_field."+f, m)
	}
	if d.MaxPerValue < 0 {
		errs.add(p+".max_per_value", "must not be negative")
	}
}

func (s *Sequence) validate(errs *fieldErrors) {
	const p = "sequence"
	switch {
	case len(s.Steps) < 2:
		errs.add(p+".steps", "name at least two steps")
	case len(s.Steps) > maxSteps:
		errs.add(p+".steps", "%d steps, limit %d", len(s.Steps), maxSteps)
	}
	if s.Join != "" {
		if _, ok := lookupField(s.Join); !ok {
			errs.add(p+".join", "unknown field %q", s.Join)
		}
	}
	var slots []string
	for _, st := range s.Steps {
		if st.Distinct != "" && !slices.Contains(slots, st.Distinct) {
			slots = append(slots, st.Distinct)
		}
	}
	if len(slots) > maxDistinct-1 {
		errs.add(p+".steps", "%d different distinct fields, limit %d", len(slots), maxDistinct-1)
	}
	for i, st := range s.Steps {
		sp := fmt.Sprintf("%s.steps[%d]", p, i)
		if st.When == "" {
			errs.add(sp+".when", "required")
		} else {
			validateCEL(sp+".when", st.When, errs)
		}
		if st.Count < 0 || st.Count > MaxEvidenceRecords {
			errs.add(sp+".count", "must be between 1 and %d", MaxEvidenceRecords)
		}
		if st.Distinct != "" {
			if _, ok := lookupField(st.Distinct); !ok {
				errs.add(sp+".distinct", "unknown field %q", st.Distinct)
			}
		}
		switch st.Join {
		case "", "same", "differ", "any":
		default:
			errs.add(sp+".join", "unknown join %q (same, differ, any)", st.Join)
		}
		if st.Join != "" && s.Join == "" {
			errs.add(sp+".join", "the sequence has no join field")
		}
		if i == len(s.Steps)-1 && st.Join != "" && st.Join != "same" {
			errs.add(sp+".join", "the last step's event gives the joined value, so its join must be same")
		}
	}
}

func (g *GeoVelocity) validate(errs *fieldErrors) {
	const p = "geo_velocity"
	if g.MaxKmh <= 0 {
		errs.add(p+".max_kmh", "must be positive")
	}
	if g.MinDistanceKm < 0 {
		errs.add(p+".min_distance_km", "must not be negative")
	}
}

func (f *FirstSeen) validate(errs *fieldErrors) {
	const p = "first_seen"
	switch {
	case len(f.Fields) == 0:
		errs.add(p+".fields", "name at least one field")
	case len(f.Fields) > maxDistinct:
		errs.add(p+".fields", "%d fields, limit %d", len(f.Fields), maxDistinct)
	}
	validateFields(p+".fields", f.Fields, errs)
	if f.Learning < 0 || f.Learning.D() > maxRetention {
		errs.add(p+".learning", "must be between 0 and %s", maxRetention)
	}
	if f.MaxValues < 0 || f.MaxValues > maxBaselineValues {
		errs.add(p+".max_values", "must be between 1 and %d", maxBaselineValues)
	}
	if f.Retention < 0 || f.Retention.D() > maxRetention {
		errs.add(p+".retention", "must be between 0 and %s", maxRetention)
	}
	if f.Then != "" {
		validateCEL(p+".then", f.Then, errs)
	}
}

func (v *Volume) validate(errs *fieldErrors) {
	const p = "volume"
	if v.Field != "bytes" && !strings.HasPrefix(v.Field, "attrs.") {
		errs.add(p+".field", "must be bytes or attrs.<key>")
	}
	if v.Min < 0 || v.MinCount < 0 {
		errs.add(p, "min and min_count must not be negative")
	}
	if v.Min == 0 && v.MinCount == 0 {
		errs.add(p, "needs min or min_count")
	}
}

func (t *TokenLineage) validate(errs *fieldErrors) {
	off := func(b *bool) bool { return b != nil && !*b }
	if off(t.Scopes) && off(t.Resource) && off(t.Revoked) {
		errs.add("token_lineage", "checks nothing: scopes, resource and revoked are all false")
	}
}

func validRuleID(id string) bool {
	if len(id) > maxRuleIDLen {
		return false
	}
	for i, c := range id {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '_' || c == '.' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// cooldown is the rule's cooldown, defaulting to its window.
func (r *Rule) cooldown() time.Duration {
	if r.Cooldown > 0 {
		return r.Cooldown.D()
	}
	return r.Window.D()
}
