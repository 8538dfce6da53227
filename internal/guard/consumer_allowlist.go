package guard

import (
	"fmt"

	"github.com/revoked-dev/revoked/internal/allowlist"
)

// LoadConsumerAllowlist reads the consumer's allowlist file at path.
func LoadConsumerAllowlist(path string) (*Allowlist, error) {
	a, err := allowlist.Load(path)
	if err != nil {
		return nil, err
	}
	return forConsumer(a, path)
}

// ParseConsumerAllowlist reads the consumer's allowlist from YAML.
func ParseConsumerAllowlist(data []byte) (*Allowlist, error) {
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
