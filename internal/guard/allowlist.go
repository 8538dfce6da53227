package guard

import "github.com/revoked-dev/revoked/internal/allowlist"

// Allowlist is the guards' one allowlist format (internal/allowlist):
//
//	entries:
//	  - user_ids: [break-glass-admin]
//	    reason: the on-call admin account
//	  - client_ids: [payroll-batch]
//	    rules: [impossible-travel]
//	    actions: [revoke, revoke_and_reverify]
//	  - ips: [10.0.0.0/8]
//
// The detector matches its entries against each command and the event that
// triggered it, so entries of addresses and CIDRs apply there. The consumer
// sees commands, not the events behind them, so it matches the target's
// user and client, and refuses entries that name only addresses
// (LoadConsumerAllowlist).
type Allowlist = allowlist.Allowlist
