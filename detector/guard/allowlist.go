package guard

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

// ErrInvalidAllowlist wraps every problem of an allowlist file.
var ErrInvalidAllowlist = errors.New("invalid allowlist")

// Allowlist names targets the detector never enforces against. It is read
// from YAML:
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
	users, clients map[string]bool
	prefixes       []netip.Prefix
	rules          map[string]bool
	actions        map[schemas.Action]bool
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
}

// LoadAllowlist reads the allowlist file at path.
func LoadAllowlist(path string) (*Allowlist, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading allowlist: %w", err)
	}
	a, err := ParseAllowlist(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}

// ParseAllowlist reads an allowlist from YAML and reports every problem of
// it at once, by entry.
func ParseAllowlist(data []byte) (*Allowlist, error) {
	var f allowlistFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: %w", ErrInvalidAllowlist, err)
	}
	var errs []error
	bad := func(i int, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: entries[%d]: %s", ErrInvalidAllowlist, i, fmt.Sprintf(format, args...)))
	}
	a := &Allowlist{}
	for i, y := range f.Entries {
		e := allowEntry{users: set(y.UserIDs), clients: set(y.ClientIDs), rules: set(y.Rules), actions: map[schemas.Action]bool{}}
		if len(y.UserIDs)+len(y.IPs)+len(y.ClientIDs) == 0 {
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
	if a == nil {
		return false
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
		if (cmd.Target.UserID != "" && e.users[cmd.Target.UserID]) || (evUser != "" && e.users[evUser]) {
			return true
		}
		if (cmd.Target.ClientID != "" && e.clients[cmd.Target.ClientID]) || (evClient != "" && e.clients[evClient]) {
			return true
		}
		if ip.IsValid() {
			for _, p := range e.prefixes {
				if p.Contains(ip) {
					return true
				}
			}
		}
	}
	return false
}
