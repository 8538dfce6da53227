package guard

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"go.yaml.in/yaml/v3"

	"github.com/revoked-dev/revoked/schemas"
)

// Allowlist names users and clients that are never revoked automatically.
// Each entry is scoped: to the rules and actions it lists, or to all of
// them when it lists none. In YAML:
//
//	entries:
//	  - users: [break-glass-admin]
//	    note: the on-call admin account
//	  - clients: [payroll-batch]
//	    rules: [impossible-travel]
//	    actions: [revoke, revoke_and_reverify]
type Allowlist struct {
	Entries []AllowEntry `yaml:"entries"`
}

// AllowEntry is one scoped allowlist entry. A command matches when its
// user or client is listed and its rule and action are in scope.
type AllowEntry struct {
	Users   []string         `yaml:"users"`
	Clients []string         `yaml:"clients"`
	Rules   []string         `yaml:"rules"`
	Actions []schemas.Action `yaml:"actions"`
	Note    string           `yaml:"note"`
}

// LoadAllowlist reads and checks a YAML allowlist; unknown keys are errors.
func LoadAllowlist(path string) (*Allowlist, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the allowlist: %w", err)
	}
	a, err := ParseAllowlist(data)
	if err != nil {
		return nil, fmt.Errorf("allowlist %s: %w", path, err)
	}
	return a, nil
}

// ParseAllowlist decodes and checks a YAML allowlist.
func ParseAllowlist(data []byte) (*Allowlist, error) {
	var a Allowlist
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&a); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	var errs []error
	for i, e := range a.Entries {
		if len(e.Users) == 0 && len(e.Clients) == 0 {
			errs = append(errs, fmt.Errorf("entries[%d]: names no user and no client", i))
		}
		for _, act := range e.Actions {
			switch act {
			case schemas.ActionRevoke, schemas.ActionRevokeAndReverify, schemas.ActionNotify:
			default:
				errs = append(errs, fmt.Errorf("entries[%d]: unknown action %q", i, act))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &a, nil
}

// Match reports whether cmd's target is allowlisted for its rule and
// action, and describes the entry.
func (a *Allowlist) Match(cmd *schemas.RevokeCommand) (string, bool) {
	if a == nil {
		return "", false
	}
	t := cmd.Target
	for _, e := range a.Entries {
		if len(e.Rules) > 0 && !slices.Contains(e.Rules, cmd.Reason.RuleID) {
			continue
		}
		if len(e.Actions) > 0 && !slices.Contains(e.Actions, cmd.Action) {
			continue
		}
		switch {
		case t.UserID != "" && slices.Contains(e.Users, t.UserID):
			return "user " + t.UserID + scope(e), true
		case t.ClientID != "" && slices.Contains(e.Clients, t.ClientID):
			return "client " + t.ClientID + scope(e), true
		}
	}
	return "", false
}

func scope(e AllowEntry) string {
	s := ""
	if len(e.Rules) > 0 {
		s += fmt.Sprintf(" for rules %v", e.Rules)
	}
	if len(e.Actions) > 0 {
		s += fmt.Sprintf(" for actions %v", e.Actions)
	}
	if e.Note != "" {
		s += " (" + e.Note + ")"
	}
	return s
}
