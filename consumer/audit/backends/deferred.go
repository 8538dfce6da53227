package backends

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/schemas"
)

// ErrNotOpen wraps the error of every call to a Deferred store that could
// not open its store yet. It is transient (not audit.Permanent).
var ErrNotOpen = errors.New("the audit store is not reachable yet")

// OpenDeferred is Open for a process that can work while the store is
// down (the consumer with an audit spool): it tries Open once, for at
// most try, and returns its store; if that fails it logs why and returns
// a Deferred store that tries again on each later call. Errors of the
// config are returned, never deferred.
func OpenDeferred(ctx context.Context, cfg Config, try time.Duration, log zerolog.Logger) (audit.Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	open := func(ctx context.Context) (audit.Store, error) { return Open(ctx, cfg, log) }
	tctx, cancel := context.WithTimeout(ctx, try)
	s, err := open(tctx)
	cancel()
	if err == nil {
		return s, nil
	}
	if ctx.Err() != nil {
		return nil, err
	}
	log.Warn().Err(err).Str("audit_backend", cfg.Backend).
		Msg("the audit store is unreachable at start; starting without it, it is opened (and migrated) when it answers")
	return Deferred(open, log), nil
}

// Deferred returns a store that opens its store with open on the first
// call after which open succeeds: until then every call except Close
// fails at once with an error wrapping ErrNotOpen (a call that finds
// another one opening does not wait for it). open bounds itself by the
// ctx of the call that runs it; it should create the database objects
// (Open does, unless SkipMigrate). The returned store owns what open
// returns and closes it on Close.
func Deferred(open func(context.Context) (audit.Store, error), log zerolog.Logger) *DeferredStore {
	return &DeferredStore{open: open, log: log}
}

// DeferredStore is the store Deferred returns. Its methods may be called
// concurrently.
type DeferredStore struct {
	open func(context.Context) (audit.Store, error)
	log  zerolog.Logger

	mu      sync.Mutex
	store   audit.Store
	opening bool
	closed  bool
}

var _ audit.Store = (*DeferredStore)(nil)

// get returns the open store, opening it first if no other call is.
func (d *DeferredStore) get(ctx context.Context) (audit.Store, error) {
	d.mu.Lock()
	switch {
	case d.closed:
		d.mu.Unlock()
		return nil, fmt.Errorf("deferred audit store: %w", audit.ErrClosed)
	case d.store != nil:
		s := d.store
		d.mu.Unlock()
		return s, nil
	case d.opening:
		d.mu.Unlock()
		return nil, fmt.Errorf("%w: opening it is under way", ErrNotOpen)
	}
	d.opening = true
	d.mu.Unlock()

	s, err := d.open(ctx)

	d.mu.Lock()
	defer d.mu.Unlock()
	d.opening = false
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotOpen, err)
	}
	if d.closed {
		// Close ran while this call opened the store.
		_ = s.Close()
		return nil, fmt.Errorf("deferred audit store: %w", audit.ErrClosed)
	}
	d.store = s
	d.log.Info().Msg("the audit store answers; opened and migrated it")
	return s, nil
}

// Migrate implements audit.Store.
func (d *DeferredStore) Migrate(ctx context.Context) error {
	s, err := d.get(ctx)
	if err != nil {
		return err
	}
	return s.Migrate(ctx)
}

// Append implements audit.Store.
func (d *DeferredStore) Append(ctx context.Context, rows []schemas.AuditRow) error {
	s, err := d.get(ctx)
	if err != nil {
		return err
	}
	return s.Append(ctx, rows)
}

// CommandRows implements audit.Store.
func (d *DeferredStore) CommandRows(ctx context.Context, commandID string) ([]schemas.AuditRow, error) {
	s, err := d.get(ctx)
	if err != nil {
		return nil, err
	}
	return s.CommandRows(ctx, commandID)
}

// ChainHead implements audit.Store.
func (d *DeferredStore) ChainHead(ctx context.Context, chain string) (uint64, string, error) {
	s, err := d.get(ctx)
	if err != nil {
		return 0, "", err
	}
	return s.ChainHead(ctx, chain)
}

// ChainRows implements audit.Store.
func (d *DeferredStore) ChainRows(ctx context.Context, chain string, afterSeq uint64, limit int) ([]schemas.AuditRow, error) {
	s, err := d.get(ctx)
	if err != nil {
		return nil, err
	}
	return s.ChainRows(ctx, chain, afterSeq, limit)
}

// History implements audit.Store.
func (d *DeferredStore) History(ctx context.Context, q audit.Query) ([]schemas.AuditRow, error) {
	s, err := d.get(ctx)
	if err != nil {
		return nil, err
	}
	return s.History(ctx, q)
}

// Latest implements audit.Store.
func (d *DeferredStore) Latest(ctx context.Context, q audit.Query) (time.Time, error) {
	s, err := d.get(ctx)
	if err != nil {
		return time.Time{}, err
	}
	return s.Latest(ctx, q)
}

// TimePrecision implements audit.Store: the open store's, 0 before it is
// open.
func (d *DeferredStore) TimePrecision() time.Duration {
	d.mu.Lock()
	s := d.store
	d.mu.Unlock()
	if s == nil {
		return 0
	}
	return s.TimePrecision()
}

// Stats implements audit.Store.
func (d *DeferredStore) Stats(ctx context.Context, q audit.StatsQuery) (audit.Stats, error) {
	s, err := d.get(ctx)
	if err != nil {
		return audit.Stats{}, err
	}
	return s.Stats(ctx, q)
}

// AppendCheckpoints implements audit.Store.
func (d *DeferredStore) AppendCheckpoints(ctx context.Context, cps []schemas.Checkpoint) error {
	s, err := d.get(ctx)
	if err != nil {
		return err
	}
	return s.AppendCheckpoints(ctx, cps)
}

// Checkpoints implements audit.Store.
func (d *DeferredStore) Checkpoints(ctx context.Context, chain string, afterSeq uint64, limit int) ([]schemas.Checkpoint, error) {
	s, err := d.get(ctx)
	if err != nil {
		return nil, err
	}
	return s.Checkpoints(ctx, chain, afterSeq, limit)
}

// Chains implements audit.Store.
func (d *DeferredStore) Chains(ctx context.Context) ([]string, error) {
	s, err := d.get(ctx)
	if err != nil {
		return nil, err
	}
	return s.Chains(ctx)
}

// Ping implements audit.Store: it opens the store if need be, then pings
// it.
func (d *DeferredStore) Ping(ctx context.Context) error {
	s, err := d.get(ctx)
	if err != nil {
		return err
	}
	return s.Ping(ctx)
}

// Close implements audit.Store: it closes the store if it was opened.
func (d *DeferredStore) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	if d.store != nil {
		return d.store.Close()
	}
	return nil
}
