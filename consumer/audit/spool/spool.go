// Package spool keeps the consumer revoking while the audit store is down:
// Store wraps the real audit.Store and writes every append durably to an
// append-only file on local disk first (a write-ahead log), then to the
// store: at once while the store answers, otherwise by a drainer, in
// order, once the store answers again. The spool survives restarts: rows
// spooled by a process that died are drained by the next one to open the
// same directory.
//
// Beside the file, a ledger keeps what must outlive it once drained: the
// terminal steps of recent commands (Executed), so the consumer refuses a
// replay while the store is down, and each chain's head, so a writer can
// continue its chain while the store is down, also at start.
//
// Rows are deterministic and every store deduplicates by RowID, so a row
// appended twice (an append that timed out but was committed, a crash
// between a drained batch and the spool's truncation) is read back once.
package spool

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/internal/ops"
	"github.com/revoked-dev/revoked/internal/retry"
	"github.com/revoked-dev/revoked/schemas"
)

// FileName is the spool file inside the spool directory.
const FileName = "audit.spool"

// Option defaults.
const (
	DefaultAppendTimeout  = 2 * time.Second
	DefaultDrainTimeout   = 30 * time.Second
	DefaultDrainBatchRows = 1000
	DefaultMinBackoff     = 100 * time.Millisecond
	DefaultMaxBackoff     = 10 * time.Second
	DefaultCloseTimeout   = 5 * time.Second
	DefaultRollBytes      = 4 << 20
	DefaultExecutedGrace  = time.Hour
)

// ErrInvalidOptions wraps every problem Options.Validate finds.
var ErrInvalidOptions = errors.New("invalid audit spool options")

// Options tune a spool. The zero value takes every default.
type Options struct {
	// AppendTimeout bounds one try of the store by Append,
	// AppendCheckpoints, CommandRows and ChainHead before the spool
	// answers instead (default 2s).
	AppendTimeout time.Duration
	// DrainTimeout bounds one batch the drainer appends to the store
	// (default 30s).
	DrainTimeout time.Duration
	// DrainBatchRows caps the rows of one drained batch (default 1000); a
	// spooled append larger than that still goes whole.
	DrainBatchRows int
	// MinBackoff and MaxBackoff bound the drainer's wait between failed
	// tries of the store, doubling from one to the other (defaults 100ms
	// and 10s).
	MinBackoff, MaxBackoff time.Duration
	// CloseTimeout bounds the last drain Close tries when the store is up
	// (default 5s; negative: none). Rows it does not drain stay spooled
	// for the next process.
	CloseTimeout time.Duration
	// RollBytes is the size from which a spool file whose records the
	// store has all acknowledged is emptied (default 4 MiB). While the
	// store answers, records are acknowledged as they are written, and
	// the file is emptied only then, so most appends cost one fsync.
	RollBytes int64
	// ExecutedGrace is how long after a command's expires_at the ledger
	// still remembers its terminal steps (default 1h). The consumer
	// refuses an expired command before it looks for a replay, so only a
	// copy of the command re-signed with a later expiry needs more.
	ExecutedGrace time.Duration
	// Now is the ledger's clock (default time.Now).
	Now func() time.Time
	// Registerer, when set, receives the spool's metrics.
	Registerer prometheus.Registerer
}

func (o *Options) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&o.AppendTimeout, DefaultAppendTimeout)
	def(&o.DrainTimeout, DefaultDrainTimeout)
	def(&o.MinBackoff, DefaultMinBackoff)
	def(&o.MaxBackoff, DefaultMaxBackoff)
	def(&o.CloseTimeout, DefaultCloseTimeout)
	def(&o.ExecutedGrace, DefaultExecutedGrace)
	if o.RollBytes == 0 {
		o.RollBytes = DefaultRollBytes
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.DrainBatchRows == 0 {
		o.DrainBatchRows = DefaultDrainBatchRows
	}
}

// Validate reports every problem with the options at once (after
// defaults).
func (o Options) Validate() error {
	var errs []error
	for name, d := range map[string]time.Duration{"append timeout": o.AppendTimeout, "drain timeout": o.DrainTimeout, "min backoff": o.MinBackoff, "executed grace": o.ExecutedGrace} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%w: %s %s is negative", ErrInvalidOptions, name, d))
		}
	}
	if o.MaxBackoff < o.MinBackoff {
		errs = append(errs, fmt.Errorf("%w: max backoff %s is below min backoff %s", ErrInvalidOptions, o.MaxBackoff, o.MinBackoff))
	}
	if o.RollBytes < 0 {
		errs = append(errs, fmt.Errorf("%w: roll bytes %d is negative", ErrInvalidOptions, o.RollBytes))
	}
	if o.DrainBatchRows < 0 {
		errs = append(errs, fmt.Errorf("%w: drain batch rows %d is negative", ErrInvalidOptions, o.DrainBatchRows))
	}
	return errors.Join(errs...)
}

var _ audit.Store = (*Store)(nil)

// Store is an audit.Store that spools to local disk what the store behind
// it cannot take now. Every method may be called concurrently.
//
// Writes (Append, AppendCheckpoints) validate first: invalid rows fail
// with ErrInvalidRow and nothing is stored or spooled. Then they append
// the rows to the spool file and fsync it: from here on the rows are
// durable and will reach the store, and the write returns nil. When the
// store is thought up and every earlier record is acknowledged (so order
// is kept), the write also appends the rows to the store, for at most
// AppendTimeout, and marks the record acknowledged; otherwise, or when
// that fails, the drainer sends it. A write returns an error only for
// invalid rows, a closed spool, a caller's ctx that ended, or a spool
// file that cannot be written (a full disk): then nothing is spooled and
// the caller retries, as with any store error. Writing ahead costs one
// fsync per append (one per group commit of the audit.Writer); in
// exchange a crash can never leave rows the store acknowledged unknown to
// the spool, so the ledger's heads and terminal steps are never behind.
//
// A drainer goroutine appends the unacknowledged records to the store in
// order, in batches of up to DrainBatchRows rows, retrying with backoff.
// The file is emptied once the store has acknowledged everything in it:
// at once when the drainer caught up, at RollBytes when records were
// acknowledged as they were written. Before it is emptied, the heads of
// its chains and the terminal steps of its rows go to the ledger.
//
// Reads: CommandRows merges the spooled rows of the command with the
// store's (while the store is down: the spooled rows alone). Executed is
// what the consumer's replay check needs while the store is down: the
// terminal steps of a command that the file or the ledger hold. ChainHead
// is the higher of the store's head and the spool's (while the store is
// down: the spool's, from the file or else the ledger). History, Stats,
// ChainRows, Checkpoints and Chains read the store alone: spooled rows
// appear in them once drained. Ping pings the store; Check is the
// readiness check that tells "degraded" from "down".
type Store struct {
	inner audit.Store
	path  string
	opts  Options
	log   zerolog.Logger
	m     *metrics

	// send is held by whoever appends records of the file to the store
	// (the drainer, or a write acknowledging its own record), so records
	// reach the store in order and are acknowledged once.
	send sync.Mutex

	led *ledger

	mu      sync.RWMutex
	f       *os.File
	size    int64  // bytes in the file
	drained int64  // the store has acknowledged every record before this offset
	gen     uint64 // how often the file was emptied: offsets hold within one generation
	pending int    // rows and checkpoints in records at or after drained
	// Index of the records in the file, drained or not, for the reads.
	byCommand map[string][]int64 // offsets of the records holding rows of a command
	heads     map[string]head    // highest row of each chain in the file
	fileDone  []executed         // terminal steps of the rows in the file
	closed    bool
	// broken is set when a failed write could not be rolled back: the
	// file may end in a torn record, so nothing more is appended after it.
	broken error

	healthy atomic.Bool // the store was last seen up
	wake    chan struct{}
	cancel  context.CancelFunc
	done    chan struct{}
}

type head struct {
	seq  uint64
	hash string
}

// Open opens (creating it if needed) the spool in dir in front of store.
// Records a previous process left in dir are kept and drained; a torn last
// record (a crash in the middle of its write) is logged and cut off. One
// process at a time may use a directory. On success the spool owns store
// and closes it on Close; on error the caller still does.
func Open(dir string, store audit.Store, opts Options, log zerolog.Logger) (*Store, error) {
	opts.setDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if dir == "" {
		return nil, fmt.Errorf("%w: the spool directory is empty", ErrInvalidOptions)
	}
	if store == nil {
		return nil, fmt.Errorf("%w: no audit store", ErrInvalidOptions)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the audit spool directory: %w", err)
	}
	path := filepath.Join(dir, FileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the audit spool: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("locking the audit spool %s (is another process using it?): %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("syncing the audit spool directory: %w", err)
	}
	led, err := openLedger(dir, opts.ExecutedGrace, opts.Now, log.With().Str("component", "audit-spool").Logger())
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Store{
		led:   led,
		inner: store, path: path, opts: opts,
		log:       log.With().Str("component", "audit-spool").Logger(),
		f:         f,
		byCommand: make(map[string][]int64),
		heads:     make(map[string]head),
		wake:      make(chan struct{}, 1),
		cancel:    cancel,
		done:      make(chan struct{}),
	}
	s.healthy.Store(true)
	if err := s.recover(); err != nil {
		cancel()
		_ = f.Close()
		_ = led.close()
		return nil, err
	}
	if s.m, err = newMetrics(opts.Registerer, s); err != nil {
		cancel()
		_ = f.Close()
		_ = led.close()
		return nil, err
	}
	if s.pending > 0 {
		s.log.Warn().Int("rows", s.pending).Int64("bytes", s.size).Str("path", path).
			Msg("audit rows spooled by a previous run; draining them into the store")
	}
	go s.loop(ctx)
	return s, nil
}

// recover reads the records already in the file, indexes them, and cuts
// off a torn tail.
func (s *Store) recover() error {
	st, err := s.f.Stat()
	if err != nil {
		return fmt.Errorf("reading the audit spool: %w", err)
	}
	var off int64
	for off < st.Size() {
		rec, n, err := readRecord(s.f, off)
		if errors.Is(err, errTorn) {
			s.log.Warn().Err(err).Int64("offset", off).Int64("dropped_bytes", st.Size()-off).
				Msg("the audit spool ends in a torn record (a crash while it was written, before it was acknowledged); cutting it off")
			if err := s.f.Truncate(off); err != nil {
				return fmt.Errorf("cutting the torn tail off the audit spool: %w", err)
			}
			if err := s.f.Sync(); err != nil {
				return fmt.Errorf("syncing the audit spool: %w", err)
			}
			break
		}
		if err != nil {
			return fmt.Errorf("reading the audit spool at offset %d: %w", off, err)
		}
		s.index(off, rec)
		s.pending += rec.len()
		off += n
	}
	s.size = off
	return nil
}

// index records where rec's rows are, for the reads. Callers hold mu.
func (s *Store) index(off int64, rec *record) {
	for _, r := range rec.rows {
		if offs := s.byCommand[r.CommandID]; len(offs) == 0 || offs[len(offs)-1] != off {
			s.byCommand[r.CommandID] = append(offs, off)
		}
		if h, ok := s.heads[r.Chain]; !ok || audit.HigherHead(r.Seq, r.Hash, h.seq, h.hash) {
			s.heads[r.Chain] = head{r.Seq, r.Hash}
		}
	}
	s.fileDone = append(s.fileDone, terminal(rec.rows)...)
}

// Migrate implements audit.Store: it migrates the store.
func (s *Store) Migrate(ctx context.Context) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	return s.inner.Migrate(ctx)
}

// Append implements audit.Store; see Store for when rows are spooled.
func (s *Store) Append(ctx context.Context, rows []schemas.AuditRow) error {
	if err := audit.ValidateRows(rows); err != nil {
		return err
	}
	return s.write(ctx, &record{kind: kindRows, rows: rows}, func(ctx context.Context) error { return s.inner.Append(ctx, rows) })
}

// AppendCheckpoints implements audit.Store; checkpoints are spooled like
// rows, in the same file, so they reach the store in the order written.
func (s *Store) AppendCheckpoints(ctx context.Context, cps []schemas.Checkpoint) error {
	if err := audit.ValidateCheckpoints(cps); err != nil {
		return err
	}
	return s.write(ctx, &record{kind: kindCheckpoints, cps: cps}, func(ctx context.Context) error { return s.inner.AppendCheckpoints(ctx, cps) })
}

func (s *Store) write(ctx context.Context, rec *record, direct func(context.Context) error) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if rec.len() == 0 {
		return nil
	}
	off, end, gen, err := s.spool(rec)
	if err != nil {
		return err
	}
	if s.healthy.Load() {
		// The store answers: the record reaches it before Append
		// returns, after any record spooled before it (which another
		// append or the drainer may be sending), so a read that follows
		// sees it.
		acked := s.sendThrough(ctx, off, end, gen, rec.len(), direct)
		if acked {
			return nil
		}
	}
	s.m.spooled.Add(float64(rec.len()))
	s.signal()
	return nil
}

// sendThrough sends the records before off, then the record at off with
// direct, holding send; it reports whether the store has the record. A
// failure leaves the record in the file for the drainer.
func (s *Store) sendThrough(ctx context.Context, off, end int64, gen uint64, n int, direct func(context.Context) error) bool {
	s.send.Lock()
	defer s.send.Unlock()
	for {
		s.mu.RLock()
		drained, emptied := s.drained, s.gen != gen
		s.mu.RUnlock()
		switch {
		case emptied || drained >= end:
			// The file was emptied since the record was spooled, which
			// happens only once the store acknowledged all of it.
			return true
		case ctx.Err() != nil:
			// The caller gave up; the rows are durable in the file and
			// the drainer sends them.
			return false
		case drained == off:
			tctx, cancel := context.WithTimeout(ctx, s.opts.AppendTimeout)
			err := direct(tctx)
			cancel()
			if err != nil {
				if ctx.Err() == nil {
					// Transient or not, the record stays in the file:
					// the drainer retries it and logs what the store
					// says.
					s.storeDown(err)
				}
				return false
			}
			s.ack(end, n)
			return true
		}
		if _, err := s.drainBatch(ctx); err != nil {
			if ctx.Err() == nil {
				s.storeDown(err)
			}
			return false
		}
	}
}

// spooling reports whether the file holds records the store has not
// acknowledged.
func (s *Store) spooling() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.drained < s.size
}

// spool appends rec to the file and fsyncs it, and returns where it is:
// its offsets in the file of generation gen (truncate starts a new one).
func (s *Store) spool(rec *record) (off, end int64, gen uint64, err error) {
	buf, err := encode(rec)
	if err != nil {
		return 0, 0, 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return 0, 0, 0, fmt.Errorf("audit spool: %w", audit.ErrClosed)
	case s.broken != nil:
		return 0, 0, 0, fmt.Errorf("audit spool unusable after a failed write: %w", s.broken)
	}
	_, err = s.f.Write(buf)
	if err == nil {
		err = s.f.Sync()
	}
	if err != nil {
		// Cut off whatever part was written, so later records do not
		// follow a torn one.
		if terr := s.f.Truncate(s.size); terr != nil {
			s.broken = errors.Join(err, terr)
			s.log.Error().Err(s.broken).Msg("a failed audit spool write could not be rolled back; the spool takes no more rows")
		}
		s.m.writeErrors.Inc()
		return 0, 0, 0, fmt.Errorf("spooling %d audit records to %s: %w", rec.len(), s.path, err)
	}
	off = s.size
	s.index(off, rec)
	s.size += int64(len(buf))
	s.pending += rec.len()
	return off, s.size, s.gen, nil
}

// ack marks the records up to end acknowledged by the store (n rows and
// checkpoints) and empties the file when it has reached RollBytes and
// holds nothing else. Callers hold send.
func (s *Store) ack(end int64, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drained = end
	s.pending -= n
	if s.drained == s.size && s.size >= s.opts.RollBytes {
		if err := s.truncate(); err != nil {
			// The records stay, acknowledged; the next roll tries again.
			s.log.Warn().Err(err).Msg("emptying the acknowledged audit spool failed")
		}
	}
}

// storeDown notes a transient failure of the store and has the drainer
// probe it.
func (s *Store) storeDown(err error) {
	if s.healthy.Swap(false) {
		s.log.Warn().Err(err).Msg("the audit store is unavailable; spooling audit rows to local disk")
	}
	s.signal()
}

func (s *Store) storeUp() {
	if !s.healthy.Swap(true) {
		s.log.Info().Msg("the audit store answers again")
	}
}

func (s *Store) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// loop is the drainer: it drains the spool while it holds records, and
// probes the store while it is thought down, backing off after failures.
func (s *Store) loop(ctx context.Context) {
	defer close(s.done)
	sched := retry.New(s.opts.MinBackoff, s.opts.MaxBackoff)
	for {
		pending := s.spooling()
		if !pending && s.healthy.Load() {
			select {
			case <-s.wake:
				continue
			case <-ctx.Done():
				return
			}
		}
		// While the store is thought down, a ping bounded by
		// AppendTimeout probes it: a drain could wait DrainTimeout on a
		// hanging server.
		var err error
		if !s.healthy.Load() {
			pctx, cancel := context.WithTimeout(ctx, s.opts.AppendTimeout)
			err = s.inner.Ping(pctx)
			cancel()
			if err == nil {
				s.storeUp()
			}
		}
		if err == nil && pending {
			err = s.drain(ctx)
		}
		if err == nil {
			sched.Reset()
			continue
		}
		if ctx.Err() != nil {
			return
		}
		s.m.drainErrors.Inc()
		s.healthy.Store(false)
		ev := s.log.Warn()
		if audit.Permanent(err) {
			// Rows are validated before they are spooled, so the store
			// refusing them means its rules differ from ValidateRow's;
			// the spool keeps them for an operator rather than drop them.
			ev = s.log.Error()
		}
		wait := sched.Next()
		ev.Err(err).Dur("retry_in", wait).Int("spooled", s.pendingRows()).Msg("the audit store is still unavailable")
		if !retry.Sleep(ctx, wait) {
			return
		}
	}
}

// drain appends the spooled records to the store in order until it has
// caught up with the file, then truncates the file. Only the drainer (and
// Close, after the drainer stopped) calls it. Each batch is sent holding
// send; appends only add records after the ones it reads, so it reads the
// file without mu.
func (s *Store) drain(ctx context.Context) error {
	for {
		s.send.Lock()
		done, err := s.drainBatch(ctx)
		s.send.Unlock()
		if err != nil || done {
			return err
		}
	}
}

// drainBatch sends the next batch of unacknowledged records, or, when
// there is none, truncates the file and reports done. Callers hold send.
func (s *Store) drainBatch(ctx context.Context) (done bool, err error) {
	s.mu.RLock()
	from, end := s.drained, s.size
	s.mu.RUnlock()
	if from == end {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.drained != s.size {
			return false, nil
		}
		if s.size > 0 {
			if err := s.truncate(); err != nil {
				return false, err
			}
		}
		return true, nil
	}
	var rows []schemas.AuditRow
	var cps []schemas.Checkpoint
	next := from
	for next < end && len(rows) < s.opts.DrainBatchRows {
		rec, n, err := readRecord(s.f, next)
		if err != nil {
			return false, fmt.Errorf("reading the audit spool at offset %d: %w", next, err)
		}
		if rec.kind == kindCheckpoints {
			if len(rows) > 0 {
				break // the rows before it go first
			}
			cps = rec.cps
			next += n
			break
		}
		rows = append(rows, rec.rows...)
		next += n
	}
	bctx, cancel := context.WithTimeout(ctx, s.opts.DrainTimeout)
	if len(cps) > 0 {
		err = s.inner.AppendCheckpoints(bctx, cps)
	} else {
		err = s.inner.Append(bctx, rows)
	}
	cancel()
	if err != nil {
		return false, fmt.Errorf("draining %d spooled audit records from offset %d: %w", len(rows)+len(cps), from, err)
	}
	s.storeUp()
	s.mu.Lock()
	s.drained = next
	s.pending -= len(rows) + len(cps)
	s.mu.Unlock()
	s.m.drained.Add(float64(len(rows) + len(cps)))
	return false, nil
}

// truncate empties the file once the store has everything in it, after
// the ledger took the heads of its chains and the terminal steps of its
// rows. Callers hold mu.
func (s *Store) truncate() error {
	heads := make(map[string]ledgerHead, len(s.heads))
	for c, h := range s.heads {
		heads[c] = ledgerHead{h.seq, h.hash}
	}
	if err := s.led.save(&ledgerRecord{Heads: heads, Done: s.fileDone}); err != nil {
		return fmt.Errorf("keeping the drained audit spool's heads and executed commands: %w", err)
	}
	if err := s.f.Truncate(0); err != nil {
		return fmt.Errorf("truncating the drained audit spool: %w", err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("syncing the drained audit spool: %w", err)
	}
	s.log.Debug().Int64("bytes", s.size).Msg("audit spool acknowledged by the store; emptied")
	s.size, s.drained, s.pending = 0, 0, 0
	s.gen++
	clear(s.byCommand)
	clear(s.heads)
	s.fileDone = nil
	return nil
}

// CommandRows implements audit.Store: the store's rows of the command and
// the spooled ones, one per RowID (the store's copy first).
func (s *Store) CommandRows(ctx context.Context, commandID string) ([]schemas.AuditRow, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	var stored []schemas.AuditRow
	if s.healthy.Load() {
		tctx, cancel := context.WithTimeout(ctx, s.opts.AppendTimeout)
		rows, err := s.inner.CommandRows(tctx, commandID)
		cancel()
		switch {
		case err == nil:
			stored = rows
		case audit.Permanent(err) || ctx.Err() != nil:
			return nil, err
		default:
			s.storeDown(err)
		}
	}
	spooled, err := s.spooledRows(commandID)
	if err != nil {
		return nil, err
	}
	if len(spooled) == 0 {
		return stored, nil
	}
	out := append(stored, spooled...)
	slices.SortStableFunc(out, func(a, b schemas.AuditRow) int {
		return cmp.Or(cmp.Compare(a.Chain, b.Chain), cmp.Compare(a.Seq, b.Seq))
	})
	seen := make(map[string]struct{}, len(out))
	return slices.DeleteFunc(out, func(r schemas.AuditRow) bool {
		_, dup := seen[r.RowID]
		seen[r.RowID] = struct{}{}
		return dup
	}), nil
}

// Executed returns the terminal steps of a command that the spool knows
// without the store: its rows in the file, and the ledger's entries for
// rows of files since emptied (until the command's expires_at plus
// ExecutedGrace). A ledger entry is a partial row: RowID, CommandID,
// Step, ExpiresAt and the source position. It answers the consumer's
// replay check while the store is down; with the store up, the store's
// CommandRows answers it.
func (s *Store) Executed(ctx context.Context, commandID string) ([]schemas.AuditRow, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	spooled, err := s.spooledRows(commandID)
	if err != nil {
		return nil, err
	}
	out := slices.DeleteFunc(spooled, func(r schemas.AuditRow) bool { return !r.Step.Terminal() })
	for _, r := range s.led.executed(commandID) {
		if !slices.ContainsFunc(out, func(o schemas.AuditRow) bool { return o.RowID == r.RowID }) {
			out = append(out, r)
		}
	}
	return out, nil
}

// spooledRows reads the spooled rows of a command, drained or not.
func (s *Store) spooledRows(commandID string) ([]schemas.AuditRow, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []schemas.AuditRow
	for _, off := range s.byCommand[commandID] {
		rec, _, err := readRecord(s.f, off)
		if err != nil {
			return nil, fmt.Errorf("reading the audit spool at offset %d: %w", off, err)
		}
		for _, r := range rec.rows {
			if r.CommandID == commandID {
				if len(r.Evidence) == 0 {
					r.Evidence = nil
				}
				if len(r.EvidenceContext) == 0 {
					r.EvidenceContext = nil
				}
				out = append(out, r)
			}
		}
	}
	return out, nil
}

// ChainHead implements audit.Store: the higher of the store's head and
// the spool's. While the store is down it is the spool's head when the
// spool's file or ledger holds rows of the chain: every row goes through
// the file before the store, the ledger keeps the heads of emptied files,
// and one Writer at a time extends a chain, so no row of the chain in the
// store is later than it (as long as the chain is written through this
// spool directory alone).
func (s *Store) ChainHead(ctx context.Context, chain string) (uint64, string, error) {
	if err := s.check(ctx); err != nil {
		return 0, "", err
	}
	s.mu.RLock()
	sh, inSpool := s.heads[chain]
	s.mu.RUnlock()
	if !inSpool {
		sh, inSpool = s.led.head(chain)
	}
	if inSpool && !s.healthy.Load() {
		return sh.seq, sh.hash, nil
	}
	tctx, cancel := context.WithTimeout(ctx, s.opts.AppendTimeout)
	seq, hash, err := s.inner.ChainHead(tctx, chain)
	cancel()
	if err != nil {
		if inSpool && !audit.Permanent(err) && ctx.Err() == nil {
			s.storeDown(err)
			return sh.seq, sh.hash, nil
		}
		if !audit.Permanent(err) && ctx.Err() == nil {
			return 0, "", fmt.Errorf("the audit store is unavailable and the spool in %s has never written chain %q, so it does not know where the chain goes on (start once with the store reachable): %w",
				filepath.Dir(s.path), chain, err)
		}
		return 0, "", err
	}
	if inSpool && audit.HigherHead(sh.seq, sh.hash, seq, hash) {
		return sh.seq, sh.hash, nil
	}
	return seq, hash, nil
}

// ChainRows implements audit.Store: the store's rows; spooled rows appear
// once drained.
func (s *Store) ChainRows(ctx context.Context, chain string, afterSeq uint64, limit int) ([]schemas.AuditRow, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	return s.inner.ChainRows(ctx, chain, afterSeq, limit)
}

// History implements audit.Store: the store's rows; spooled rows appear
// once drained.
func (s *Store) History(ctx context.Context, q audit.Query) ([]schemas.AuditRow, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	return s.inner.History(ctx, q)
}

// Latest implements audit.Store over the store's rows; spooled rows count
// once drained.
func (s *Store) Latest(ctx context.Context, q audit.Query) (time.Time, error) {
	if err := s.check(ctx); err != nil {
		return time.Time{}, err
	}
	return s.inner.Latest(ctx, q)
}

// TimePrecision implements audit.Store: the store's.
func (s *Store) TimePrecision() time.Duration { return s.inner.TimePrecision() }

// Stats implements audit.Store over the store's rows; spooled rows count
// once drained.
func (s *Store) Stats(ctx context.Context, q audit.StatsQuery) (audit.Stats, error) {
	if err := s.check(ctx); err != nil {
		return audit.Stats{}, err
	}
	return s.inner.Stats(ctx, q)
}

// ErrNotDrained is the error of Checkpoints while the store lacks
// records of the spool (or is thought down): the store's checkpoints
// would then be older than the chain the spool knows, and a writer
// checking its unsigned tail against them would take spooled rows for
// missing ones. It is transient: the store is not at fault.
var ErrNotDrained = errors.New("the audit spool holds records the store has not acknowledged")

// Checkpoints implements audit.Store: the store's checkpoints, once it
// has every spooled record; before, an error wrapping ErrNotDrained.
func (s *Store) Checkpoints(ctx context.Context, chain string, afterSeq uint64, limit int) ([]schemas.Checkpoint, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if n, _ := s.Pending(); n > 0 || !s.healthy.Load() {
		return nil, fmt.Errorf("reading checkpoints of chain %q: %w (%d records pending)", chain, ErrNotDrained, n)
	}
	return s.inner.Checkpoints(ctx, chain, afterSeq, limit)
}

// Chains implements audit.Store: the store's chains.
func (s *Store) Chains(ctx context.Context) ([]string, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	return s.inner.Chains(ctx)
}

// Ping implements audit.Store: it pings the store, whatever is spooled.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	return s.inner.Ping(ctx)
}

// Pending returns the records (rows and checkpoints) spooled and not yet
// acknowledged by the store, and the bytes of the spool file they take.
func (s *Store) Pending() (records int, bytes int64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.pending, s.size - s.drained
}

func (s *Store) pendingRows() int {
	n, _ := s.Pending()
	return n
}

// Check is a readiness check (ops.Check) for a process that writes
// through the spool, its ping of the store bounded by AppendTimeout: nil
// when the store answers and nothing is spooled;
// an error wrapping ops.ErrDegraded, which does not fail readiness, while
// rows are spooled or the store is down but the spool takes rows; a plain
// error when the spool itself cannot take rows (closed, or a write that
// could not be rolled back).
func (s *Store) Check(ctx context.Context) error {
	s.mu.RLock()
	closed, broken, n := s.closed, s.broken, s.pending
	s.mu.RUnlock()
	switch {
	case closed:
		return fmt.Errorf("audit spool: %w", audit.ErrClosed)
	case broken != nil:
		return fmt.Errorf("audit spool unusable after a failed write: %w", broken)
	}
	pctx, cancel := context.WithTimeout(ctx, s.opts.AppendTimeout)
	err := s.inner.Ping(pctx)
	cancel()
	switch {
	case err != nil:
		return fmt.Errorf("%w: %d audit records spooled; the audit store is down: %w", ops.ErrDegraded, n, err)
	case n > 0:
		return fmt.Errorf("%w: %d audit records spooled, draining into the store", ops.ErrDegraded, n)
	}
	return nil
}

func (s *Store) check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("audit spool: %w", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return fmt.Errorf("audit spool: %w", audit.ErrClosed)
	}
	return nil
}

// Close stops the drainer, tries a last drain for at most CloseTimeout
// when the store is up, and closes the spool file and the store. Rows
// still spooled stay in the file for the next process to drain.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	<-s.done
	if s.opts.CloseTimeout > 0 && s.spooling() && s.healthy.Load() {
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.CloseTimeout)
		if err := s.drain(ctx); err != nil {
			s.log.Warn().Err(err).Msg("the last drain of the audit spool failed")
		}
		cancel()
	}
	s.mu.Lock()
	if s.size > 0 && s.drained == s.size {
		if err := s.truncate(); err != nil {
			s.log.Warn().Err(err).Msg("emptying the acknowledged audit spool failed; the next start sends its records again")
		}
	}
	s.mu.Unlock()
	if n, size := s.Pending(); n > 0 {
		s.log.Warn().Int("records", n).Int64("bytes", size).Str("path", s.path).
			Msg("audit records stay spooled; the next start drains them")
	}
	s.m.unregister()
	return errors.Join(s.f.Close(), s.led.close(), s.inner.Close())
}

// abandon stops the spool as a crash would: no last drain, the store left
// open, the file closed (which releases its lock, as the process's death
// does).
func (s *Store) abandon() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	<-s.done
	s.m.unregister()
	_ = s.f.Close()
	_ = s.led.close()
}
