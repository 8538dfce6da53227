package guard

import "github.com/revoked-dev/revoked/internal/allowlist"

// Allowlist is the guards' one allowlist format (internal/allowlist). The
// detector matches its entries against each command and the event that
// triggered it, so entries of addresses and CIDRs apply here.
type Allowlist = allowlist.Allowlist
