package main

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/consumer/audit/backends"
)

// startTry bounds the consumer's first try of the audit store when it has
// a spool and so need not wait for it.
const startTry = 10 * time.Second

// openWriter opens the store "consumer run" writes to. With a spool
// directory, the store is tried once at start and, if it does not
// answer, opened (and migrated) when it does (backends.OpenDeferred),
// behind the spool, which takes the rows meanwhile; the caller closes
// what it returns. Without one, an unreachable store fails the start.
func (c storeConfig) openWriter(ctx context.Context, reg prometheus.Registerer, log zerolog.Logger) (audit.Store, error) {
	if c.Audit.SpoolDir == "" {
		store, err := c.open(ctx, log)
		if err != nil {
			return nil, fmt.Errorf("%w (without -audit.spool-dir the consumer needs the audit store to start; with one it starts, spools and writes the rows once the store answers)", err)
		}
		return store, nil
	}
	store, err := backends.OpenDeferred(ctx, c.Audit, startTry, log)
	if err != nil {
		return nil, fmt.Errorf("opening the audit store: %w", err)
	}
	return c.spool(store, reg, log)
}
