package guard

import (
	"fmt"

	"github.com/revoked-dev/revoked/internal/allowlist"
)

// Allowlist is the guards' one allowlist format (internal/allowlist):
//
//	entries:
//	  - user_ids: [break-glass-admin]
//	    reason: the on-call admin account
//	  - client_ids: [payroll-batch]
//	    rules: [impossible-travel]
//	    actions: [revoke, revoke_and_reverify]
//
// The consumer sees commands, not the events behind them, so it matches
// the target's user and client; entries that name only addresses (ips)
// belong in the detector's allowlist and are refused here.
type Allowlist = allowlist.Allowlist

// LoadAllowlist reads the consumer's allowlist file at path.
func LoadAllowlist(path string) (*Allowlist, error) {
	a, err := allowlist.Load(path)
	if err != nil {
		return nil, err
	}
	return forConsumer(a, path)
}

// ParseAllowlist reads the consumer's allowlist from YAML.
func ParseAllowlist(data []byte) (*Allowlist, error) {
	a, err := allowlist.Parse(data)
	if err != nil {
		return nil, err
	}
	return forConsumer(a, "allowlist")
}

func forConsumer(a *Allowlist, name string) (*Allowlist, error) {
	if idx := a.AddressOnly(); len(idx) > 0 {
		return nil, fmt.Errorf("%w: %s: entries %v name only ips, which the consumer cannot match (it sees commands, not the events behind them): put them in the detector's allowlist",
			allowlist.ErrInvalid, name, idx)
	}
	return a, nil
}
