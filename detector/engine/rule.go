package engine

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/revoked-dev/revoked/schemas"
)

// Kind names the evaluator of a rule.
type Kind string

// Rule kinds. Each has a parameter block of the same name in the rule.
const (
	// KindSequenceThreshold fires when at least Count events matching Of
	// are followed by an event matching Then within the window.
	KindSequenceThreshold Kind = "sequence_threshold"
	// KindDistinct fires when the events of a group within the window carry
	// at least Min distinct values of one of Fields.
	KindDistinct Kind = "distinct"
)

// Kinds lists the rule kinds this engine evaluates.
func Kinds() []Kind { return []Kind{KindSequenceThreshold, KindDistinct} }

// Limits on rules. They bound the state a rule can make the engine hold.
const (
	MaxWindow     = 7 * 24 * time.Hour
	MaxCooldown   = 30 * 24 * time.Hour
	maxRuleIDLen  = 128
	maxGroupBy    = 4
	maxDistinct   = 4
	maxConditions = 32
	maxAllowlist  = 10000
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
	// Match holds conditions every event the rule looks at must meet.
	Match []Condition `yaml:"match,omitempty"`
	// GroupBy names the event fields whose values split the rule's state.
	// Events missing any of them are ignored by the rule.
	GroupBy []string `yaml:"group_by"`
	// Window is the span of event time a detection's events must fit in.
	Window Duration `yaml:"window"`
	// Cooldown is the least event time between two commands of the rule for
	// the same target. It defaults to the window.
	Cooldown Duration         `yaml:"cooldown,omitempty"`
	Severity schemas.Severity `yaml:"severity"`
	Action   schemas.Action   `yaml:"action"`
	Target   TargetSpec       `yaml:"target"`
	// DryRun makes the rule's commands dry_run commands.
	DryRun    bool      `yaml:"dry_run,omitempty"`
	Allowlist Allowlist `yaml:"allowlist,omitempty"`

	SequenceThreshold *SequenceThreshold `yaml:"sequence_threshold,omitempty"`
	Distinct          *Distinct          `yaml:"distinct,omitempty"`

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

// Allowlist exempts users from a rule: their events are not tracked by it.
type Allowlist struct {
	UserIDs []string `yaml:"user_ids,omitempty"`
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
	Count   int         `yaml:"count"`
	Of      []Condition `yaml:"of"`
	Then    []Condition `yaml:"then"`
	Reset   *bool       `yaml:"reset,omitempty"`
	ResetBy []string    `yaml:"reset_by,omitempty"`
}

// Distinct is the parameter block of KindDistinct: the group's events
// within the window carry at least Min distinct non-empty values of any one
// of Fields (say geo.country or geo.asn).
type Distinct struct {
	Fields []string `yaml:"fields"`
	Min    int      `yaml:"min"`
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
	if len(r.Match) > maxConditions {
		errs.add("match", "%d conditions, limit %d", len(r.Match), maxConditions)
	}
	for i, c := range r.Match {
		c.validate(fmt.Sprintf("match[%d]", i), &errs)
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
	case "":
		errs.add("action", "required (revoke, revoke_and_reverify, notify)")
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
	if len(r.Allowlist.UserIDs) > maxAllowlist {
		errs.add("allowlist.user_ids", "%d ids, limit %d", len(r.Allowlist.UserIDs), maxAllowlist)
	}
	for i, u := range r.Allowlist.UserIDs {
		if u == "" {
			errs.add(fmt.Sprintf("allowlist.user_ids[%d]", i), "must not be empty")
		}
	}
	r.validateKind(&errs)
	if len(errs) == 0 {
		return nil
	}
	return errors.Join(errs...)
}

// validateKind checks that exactly the block of the rule's kind is present
// and valid.
func (r *Rule) validateKind(errs *fieldErrors) {
	blocks := map[Kind]bool{
		KindSequenceThreshold: r.SequenceThreshold != nil,
		KindDistinct:          r.Distinct != nil,
	}
	for _, k := range Kinds() {
		if k != r.Kind && blocks[k] {
			errs.add(string(k), "is the block of kind %s, but the rule is of kind %q", k, r.Kind)
		}
	}
	switch r.Kind {
	case KindSequenceThreshold:
		if r.SequenceThreshold == nil {
			errs.add("kind", "kind %s needs a %s block", r.Kind, r.Kind)
			return
		}
		r.SequenceThreshold.validate(errs)
	case KindDistinct:
		if r.Distinct == nil {
			errs.add("kind", "kind %s needs a %s block", r.Kind, r.Kind)
			return
		}
		r.Distinct.validate(errs)
	case "":
		errs.add("kind", "required (%s)", kindList())
	default:
		errs.add("kind", "unknown kind %q (%s)", r.Kind, kindList())
	}
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

func (s *SequenceThreshold) validate(errs *fieldErrors) {
	const p = "sequence_threshold"
	if s.Count < 1 {
		errs.add(p+".count", "must be at least 1")
	}
	if s.Count > MaxEvidenceRecords {
		errs.add(p+".count", "at most %d", MaxEvidenceRecords)
	}
	if len(s.Of) == 0 {
		errs.add(p+".of", "name at least one condition")
	}
	if len(s.Then) == 0 {
		errs.add(p+".then", "name at least one condition")
	}
	for i, c := range s.Of {
		c.validate(fmt.Sprintf("%s.of[%d]", p, i), errs)
	}
	for i, c := range s.Then {
		c.validate(fmt.Sprintf("%s.then[%d]", p, i), errs)
	}
	if len(s.ResetBy) > maxDistinct {
		errs.add(p+".reset_by", "%d fields, limit %d", len(s.ResetBy), maxDistinct)
	}
	if len(s.ResetBy) > 0 && s.Reset != nil && !*s.Reset {
		errs.add(p+".reset_by", "needs reset, which is false")
	}
	for i, f := range s.ResetBy {
		if _, ok := lookupField(f); !ok {
			errs.add(fmt.Sprintf("%s.reset_by[%d]", p, i), "unknown field %q", f)
		}
	}
}

func (d *Distinct) validate(errs *fieldErrors) {
	const p = "distinct"
	switch {
	case len(d.Fields) == 0:
		errs.add(p+".fields", "name at least one field")
	case len(d.Fields) > maxDistinct:
		errs.add(p+".fields", "%d fields, limit %d", len(d.Fields), maxDistinct)
	}
	for i, f := range d.Fields {
		if _, ok := lookupField(f); !ok {
			errs.add(fmt.Sprintf("%s.fields[%d]", p, i), "unknown field %q", f)
		}
	}
	if d.Min < 2 {
		errs.add(p+".min", "must be at least 2")
	}
	if d.Min > MaxEvidenceRecords {
		errs.add(p+".min", "at most %d", MaxEvidenceRecords)
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
