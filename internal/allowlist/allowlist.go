// Package allowlist is the one allowlist format of the detector's and the
// consumer's guards: users, clients, IP addresses and CIDRs, each entry
// scoped to rules and actions.
package allowlist

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"

	"go.yaml.in/yaml/v3"

	"github.com/revoked-dev/revoked/schemas"
)

// ErrInvalid wraps every problem of an allowlist file.
var ErrInvalid = errors.New("invalid allowlist")

// Allowlist names targets a guard never enforces against. It is read from
// YAML:
//
//	entries:
//	  - user_ids: [svc-monitor, breakglass-admin]
//	    reason: monitoring account, logs in from everywhere
//	  - ips: [10.0.0.0/8, 192.0.2.7]
//	    rules: [brute_force_success]    # optional: only these rules
//	    actions: [revoke_and_reverify]  # optional: only these actions
//	  - client_ids: [ci-runner]
//
// An entry matches a command when one of its user ids is the target's user
// id or the triggering event's (so a token of an allowlisted user is spared
// too), one of its client ids is the target's client id or the triggering
// event's, or one of its CIDRs holds the triggering event's IP; and, when it
// lists rules or actions, the command's rule and action are among them.
// A bare IP is a /32 (or /128). Unknown keys are errors.
//
// An Allowlist is immutable and safe for concurrent use. The zero value
// allows nothing.
type Allowlist struct {
	entries []allowEntry
}

type allowEntry struct {
	ruleList, actionList []string
	reason               string
	ipOnly               bool
	users, clients       map[string]bool
	prefixes             []netip.Prefix
	rules                map[string]bool
	actions              map[schemas.Action]bool
}

type allowlistFile struct {
	Entries []allowlistEntryYAML `yaml:"entries"`
}

type allowlistEntryYAML struct {
	UserIDs   []string `yaml:"user_ids"`
	IPs       []string `yaml:"ips"`
	ClientIDs []string `yaml:"client_ids"`
	Rules     []string `yaml:"rules"`
	Actions   []string `yaml:"actions"`
	Reason    string   `yaml:"reason"`
	// The keys of the consumer's earlier format, read only to refuse
	// them with the key that replaced them.
	Users   []string `yaml:"users"`
	Clients []string `yaml:"clients"`
	Note    string   `yaml:"note"`
}

// Load reads the allowlist file at path.
func Load(path string) (*Allowlist, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading allowlist: %w", err)
	}
	a, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}

// Parse reads an allowlist from YAML and reports every problem of
// it at once, by entry.
func Parse(data []byte) (*Allowlist, error) {
	var f allowlistFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	var errs []error
	bad := func(i int, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: entries[%d]: %s", ErrInvalid, i, fmt.Sprintf(format, args...)))
	}
	a := &Allowlist{}
	for i, y := range f.Entries {
		for _, legacy := range []struct {
			set bool
			msg string
		}{{len(y.Users) > 0, "users: is user_ids now"}, {len(y.Clients) > 0, "clients: is client_ids now"}, {y.Note != "", "note: is reason now"}} {
			if legacy.set {
				bad(i, "%s", legacy.msg)
			}
		}
		e := allowEntry{users: set(y.UserIDs), clients: set(y.ClientIDs), rules: set(y.Rules), actions: map[schemas.Action]bool{},
			ruleList: y.Rules, actionList: y.Actions, reason: y.Reason, ipOnly: len(y.UserIDs)+len(y.ClientIDs) == 0 && len(y.IPs) > 0}
		if len(y.UserIDs)+len(y.IPs)+len(y.ClientIDs)+len(y.Users)+len(y.Clients) == 0 {
			bad(i, "names no user_ids, ips or client_ids")
		}
		for _, s := range slices.Concat(y.UserIDs, y.ClientIDs, y.Rules) {
			if s == "" {
				bad(i, "empty id")
			}
		}
		for _, s := range y.IPs {
			p, err := parsePrefix(s)
			if err != nil {
				bad(i, "ips: %q is neither an IP nor a CIDR", s)
				continue
			}
			e.prefixes = append(e.prefixes, p)
		}
		for _, s := range y.Actions {
			switch act := schemas.Action(s); act {
			case schemas.ActionRevoke, schemas.ActionRevokeAndReverify, schemas.ActionNotify:
				e.actions[act] = true
			default:
				bad(i, "actions: unknown action %q", s)
			}
		}
		a.entries = append(a.entries, e)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return a, nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	addr, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(addr.Unmap(), addr.Unmap().BitLen()), nil
}

func set(ids []string) map[string]bool {
	m := make(map[string]bool, len(ids))
	for _, id := range ids {
		m[id] = true
	}
	return m
}

// Len is the number of entries.
func (a *Allowlist) Len() int {
	if a == nil {
		return 0
	}
	return len(a.entries)
}

// Allows reports whether cmd, triggered by ev (nil when unknown), is
// allowlisted.
func (a *Allowlist) Allows(cmd *schemas.RevokeCommand, ev *schemas.AuditEvent) bool {
	_, ok := a.Match(cmd, ev)
	return ok
}

// Match reports whether cmd, triggered by ev (nil when unknown: then no
// entry matches by address), is allowlisted, and describes the entry that
// matched: what it named, its scope and its reason.
func (a *Allowlist) Match(cmd *schemas.RevokeCommand, ev *schemas.AuditEvent) (string, bool) {
	if a == nil {
		return "", false
	}
	var ip netip.Addr
	var evClient, evUser string
	if ev != nil {
		evClient, evUser = ev.ClientID, ev.UserID
		if addr, err := netip.ParseAddr(ev.IP); err == nil {
			ip = addr.Unmap()
		}
	}
	for _, e := range a.entries {
		if len(e.rules) > 0 && !e.rules[cmd.Reason.RuleID] {
			continue
		}
		if len(e.actions) > 0 && !e.actions[cmd.Action] {
			continue
		}
		switch {
		case cmd.Target.UserID != "" && e.users[cmd.Target.UserID]:
			return e.describe("user " + cmd.Target.UserID), true
		case evUser != "" && e.users[evUser]:
			return e.describe("user " + evUser), true
		case cmd.Target.ClientID != "" && e.clients[cmd.Target.ClientID]:
			return e.describe("client " + cmd.Target.ClientID), true
		case evClient != "" && e.clients[evClient]:
			return e.describe("client " + evClient), true
		}
		if ip.IsValid() {
			for _, p := range e.prefixes {
				if p.Contains(ip) {
					return e.describe("address " + ip.String()), true
				}
			}
		}
	}
	return "", false
}

// AddressOnly lists the entries (by index) that name only addresses: a
// guard that sees no events (the consumer's) can never match them.
func (a *Allowlist) AddressOnly() []int {
	if a == nil {
		return nil
	}
	var out []int
	for i, e := range a.entries {
		if e.ipOnly {
			out = append(out, i)
		}
	}
	return out
}

func (e allowEntry) describe(what string) string {
	if len(e.ruleList) > 0 {
		what += fmt.Sprintf(" for rules %v", e.ruleList)
	}
	if len(e.actionList) > 0 {
		what += fmt.Sprintf(" for actions %v", e.actionList)
	}
	if e.reason != "" {
		what += " (" + e.reason + ")"
	}
	return what
}
