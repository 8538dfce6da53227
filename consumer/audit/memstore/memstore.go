// Package memstore is an in-memory audit.Store: the reference for the
// semantics every backend shares, and a fast store for tests. It keeps
// nothing across restarts.
package memstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/schemas"
)

var _ audit.Store = (*Store)(nil)

// Store keeps audit rows in memory at millisecond precision, like modern
// ClickHouse.
type Store struct {
	mu     sync.RWMutex
	rows   rows
	seen   map[[2]string]struct{} // (row_id, hash) of stored rows
	cps    []schemas.Checkpoint
	cpSeen map[schemas.Checkpoint]struct{}
	closed bool
}

// New returns an empty store.
func New() *Store {
	return &Store{seen: make(map[[2]string]struct{}), cpSeen: make(map[schemas.Checkpoint]struct{})}
}

func (s *Store) check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: %w", err)
	}
	if s.closed {
		return fmt.Errorf("memstore: %w", audit.ErrClosed)
	}
	return nil
}

// Migrate implements audit.Store; there is nothing to create.
func (s *Store) Migrate(ctx context.Context) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.check(ctx)
}

// Append implements audit.Store. Identical copies of a row (same RowID and
// Hash) are kept once, as a ReplacingMergeTree merge would.
func (s *Store) Append(ctx context.Context, rows []schemas.AuditRow) error {
	if err := audit.ValidateRows(rows); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return err
	}
	for _, r := range rows {
		key := [2]string{r.RowID, r.Hash}
		if _, ok := s.seen[key]; ok {
			continue
		}
		s.seen[key] = struct{}{}
		s.rows.add(stored(r))
	}
	return nil
}

// stored returns the row as the store keeps it: times in UTC at
// millisecond precision, the zero time for the epoch, Evidence and
// EvidenceContext copied.
func stored(r schemas.AuditRow) schemas.AuditRow {
	for _, t := range []*time.Time{&r.Time, &r.FirstEventTime, &r.LastEventTime, &r.DetectedAt, &r.IssuedAt, &r.ExpiresAt} {
		if t.IsZero() || t.Unix() == 0 {
			*t = time.Time{}
			continue
		}
		*t = t.UTC().Truncate(time.Millisecond)
	}
	r.Evidence = slices.Clone(r.Evidence)
	if len(r.Evidence) == 0 {
		r.Evidence = nil
	}
	r.EvidenceContext = slices.Clone(r.EvidenceContext)
	if len(r.EvidenceContext) == 0 {
		r.EvidenceContext = nil
	}
	return r
}

// CommandRows implements audit.Store.
func (s *Store) CommandRows(ctx context.Context, commandID string) ([]schemas.AuditRow, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	idx := s.firstByRowID(func(r *schemas.AuditRow) bool { return r.CommandID == commandID },
		func(a, b *schemas.AuditRow) int {
			return cmp.Or(cmp.Compare(a.Chain, b.Chain), cmp.Compare(a.Seq, b.Seq), cmp.Compare(a.Hash, b.Hash))
		})
	return s.rowsAt(idx), nil
}

// ChainHead implements audit.Store.
func (s *Store) ChainHead(ctx context.Context, chain string) (uint64, string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.check(ctx); err != nil {
		return 0, "", err
	}
	var seq uint64
	var hash string
	for i := range s.rows.n {
		if r := s.rows.at(i); r.Chain == chain && audit.HigherHead(r.Seq, r.Hash, seq, hash) {
			seq, hash = r.Seq, r.Hash
		}
	}
	return seq, hash, nil
}

// ChainRows implements audit.Store.
func (s *Store) ChainRows(ctx context.Context, chain string, afterSeq uint64, limit int) ([]schemas.AuditRow, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	var out []schemas.AuditRow
	for i := range s.rows.n {
		if r := s.rows.at(i); r.Chain == chain && r.Seq > afterSeq {
			out = append(out, *r)
		}
	}
	slices.SortFunc(out, func(a, b schemas.AuditRow) int {
		return cmp.Or(cmp.Compare(a.Seq, b.Seq), cmp.Compare(a.Hash, b.Hash))
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// History implements audit.Store.
func (s *Store) History(ctx context.Context, q audit.Query) ([]schemas.AuditRow, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	idx := s.firstByRowID(q.Matches, func(a, b *schemas.AuditRow) int {
		return cmp.Or(b.Time.Compare(a.Time), cmp.Compare(a.Chain, b.Chain), cmp.Compare(b.Seq, a.Seq),
			cmp.Compare(a.RowID, b.RowID), cmp.Compare(a.Hash, b.Hash))
	})
	if q.Offset >= len(idx) {
		return nil, nil
	}
	idx = idx[q.Offset:]
	if q.Limit > 0 && len(idx) > q.Limit {
		idx = idx[:q.Limit]
	}
	return s.rowsAt(idx), nil
}

// Latest implements audit.Store.
func (s *Store) Latest(ctx context.Context, q audit.Query) (time.Time, error) {
	if err := q.Validate(); err != nil {
		return time.Time{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.check(ctx); err != nil {
		return time.Time{}, err
	}
	var latest time.Time
	for i := range s.rows.n {
		if r := s.rows.at(i); q.Matches(r) && r.Time.After(latest) {
			latest = r.Time
		}
	}
	return latest.Truncate(time.Second), nil
}

// TimePrecision implements audit.Store: milliseconds, as stored.
func (s *Store) TimePrecision() time.Duration { return time.Millisecond }

// AppendCheckpoints implements audit.Store. Identical copies are kept
// once.
func (s *Store) AppendCheckpoints(ctx context.Context, cps []schemas.Checkpoint) error {
	if err := audit.ValidateCheckpoints(cps); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return err
	}
	for _, c := range cps {
		c.Time = c.Time.UTC().Truncate(time.Millisecond)
		if _, ok := s.cpSeen[c]; ok {
			continue
		}
		s.cpSeen[c] = struct{}{}
		s.cps = append(s.cps, c)
	}
	return nil
}

// Checkpoints implements audit.Store.
func (s *Store) Checkpoints(ctx context.Context, chain string, afterSeq uint64, limit int) ([]schemas.Checkpoint, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	var out []schemas.Checkpoint
	for _, c := range s.cps {
		if c.Chain == chain && c.Seq > afterSeq {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b schemas.Checkpoint) int {
		return cmp.Or(cmp.Compare(a.Seq, b.Seq), cmp.Compare(a.KeyID, b.KeyID), cmp.Compare(a.Signature, b.Signature))
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// Chains implements audit.Store.
func (s *Store) Chains(ctx context.Context) ([]string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	var out []string
	for i := range s.rows.n {
		out = append(out, s.rows.at(i).Chain)
	}
	for _, c := range s.cps {
		out = append(out, c.Chain)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// Clone returns an independent copy of the store's rows and checkpoints,
// for tests that tamper with a trail without touching the original.
func (s *Store) Clone() *Store {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c := New()
	for i := range s.rows.n {
		r := *s.rows.at(i)
		r.Evidence = slices.Clone(r.Evidence)
		r.EvidenceContext = slices.Clone(r.EvidenceContext)
		c.rows.add(r)
	}
	for k := range s.seen {
		c.seen[k] = struct{}{}
	}
	c.cps = slices.Clone(s.cps)
	for k := range s.cpSeen {
		c.cpSeen[k] = struct{}{}
	}
	return c
}

// Tamper lets tests change the stored trail behind the store's rules, as
// someone with write access to the tables could: fn gets the rows and the
// checkpoints (in the order they were appended) and returns what the store
// holds from then on. Nothing is validated or deduplicated.
func (s *Store) Tamper(fn func(rows []schemas.AuditRow, cps []schemas.Checkpoint) ([]schemas.AuditRow, []schemas.Checkpoint)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var kept []schemas.AuditRow
	kept, s.cps = fn(s.rows.flat(), s.cps)
	s.rows = rows{}
	clear(s.seen)
	for _, r := range kept {
		s.rows.add(r)
		s.seen[[2]string{r.RowID, r.Hash}] = struct{}{}
	}
	clear(s.cpSeen)
	for _, c := range s.cps {
		s.cpSeen[c] = struct{}{}
	}
}

// firstByRowID returns the positions of the rows match selects, in the
// order order gives, keeping the first row of each RowID (ORDER BY ...
// LIMIT 1 BY row_id). It sorts positions, not rows: a row is hundreds of
// bytes, and the replay index reads a minute of a busy trail at a time.
func (s *Store) firstByRowID(match func(*schemas.AuditRow) bool, order func(a, b *schemas.AuditRow) int) []int {
	var idx []int
	for i := range s.rows.n {
		if match(s.rows.at(i)) {
			idx = append(idx, i)
		}
	}
	slices.SortFunc(idx, func(i, j int) int { return order(s.rows.at(i), s.rows.at(j)) })
	seen := make(map[string]struct{}, len(idx))
	return slices.DeleteFunc(idx, func(i int) bool {
		id := s.rows.at(i).RowID
		_, dup := seen[id]
		seen[id] = struct{}{}
		return dup
	})
}

// rowsAt copies the rows at positions idx; nil for none.
func (s *Store) rowsAt(idx []int) []schemas.AuditRow {
	if len(idx) == 0 {
		return nil
	}
	out := make([]schemas.AuditRow, len(idx))
	for k, i := range idx {
		out[k] = *s.rows.at(i)
	}
	return out
}

// Ping implements audit.Store.
func (s *Store) Ping(ctx context.Context) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.check(ctx)
}

// Close implements audit.Store.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

// Stats implements audit.Store with audit.ComputeStats, the reference.
func (s *Store) Stats(ctx context.Context, q audit.StatsQuery) (audit.Stats, error) {
	if err := q.Validate(); err != nil {
		return audit.Stats{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.check(ctx); err != nil {
		return audit.Stats{}, err
	}
	return audit.ComputeStats(s.rows.flat(), q)
}

// chunkRows is how many rows a chunk of rows holds.
const chunkRows = 4096

// rows holds the stored rows in append order, in chunks of chunkRows, so
// that an append never copies the rows before it: one array doubling as
// it grew copied every row held so far, which the 1,000,000-user campaign
// test (two million rows of hundreds of bytes) paid for again and again
// under the store's lock.
type rows struct {
	chunks [][]schemas.AuditRow
	n      int
}

// at is the i-th row stored.
func (rs *rows) at(i int) *schemas.AuditRow { return &rs.chunks[i/chunkRows][i%chunkRows] }

func (rs *rows) add(r schemas.AuditRow) {
	if rs.n%chunkRows == 0 {
		rs.chunks = append(rs.chunks, make([]schemas.AuditRow, 0, chunkRows))
	}
	last := len(rs.chunks) - 1
	rs.chunks[last] = append(rs.chunks[last], r)
	rs.n++
}

// flat copies the rows into one slice.
func (rs *rows) flat() []schemas.AuditRow {
	out := make([]schemas.AuditRow, 0, rs.n)
	for _, c := range rs.chunks {
		out = append(out, c...)
	}
	return out
}
