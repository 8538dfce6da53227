package audit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/schemas"
)

// ErrInvalidWriterConfig wraps every problem WriterConfig.Validate finds.
var ErrInvalidWriterConfig = errors.New("invalid audit writer config")

// Writer defaults.
const (
	DefaultMaxBatchRows = 10000
	DefaultMaxDelay     = 2 * time.Millisecond
	DefaultFlushTimeout = 30 * time.Second
	// DefaultCheckpointRows and DefaultCheckpointInterval bound the rows a
	// signing Writer leaves unsigned: it checkpoints after that many rows
	// or that long after the first unsigned row, whichever comes first.
	DefaultCheckpointRows     = 1000
	DefaultCheckpointInterval = time.Minute
)

// WriterConfig configures a Writer.
type WriterConfig struct {
	// Chain names the hash chain the writer extends. Exactly one Writer may
	// extend a chain at a time (two would fork it): name chains after the
	// writing process, e.g. "consumer-<instance>".
	Chain string
	// MaxBatchRows caps the rows of one group commit (default 10,000). A
	// single Write with more rows still goes as one batch.
	MaxBatchRows int
	// MaxDelay is how long the first Write of a batch waits for others to
	// join it (default 2ms; negative: no wait, though Writes that queue up
	// while a batch is being stored still go together).
	MaxDelay time.Duration
	// WriteDelay, when positive, is how long a Write (whose caller waits
	// for its rows) lets others join its batch, where rows queued with
	// Enqueue wait MaxDelay: a caller that gets on with other work can
	// let a batch fill longer than one that waits. Zero: MaxDelay.
	WriteDelay time.Duration
	// FlushTimeout bounds one Append of a batch to the store (default 30s).
	FlushTimeout time.Duration

	// Signer, when set, makes the Writer sign checkpoints of the chain's
	// head (see schemas.Checkpoint) and store them with
	// Store.AppendCheckpoints: every CheckpointRows rows, CheckpointInterval
	// after the first row not yet covered by one, and on Close. Nil: no
	// checkpoints.
	Signer *schemas.Signer
	// CheckpointRows is the most rows written before a checkpoint
	// (default 1000).
	CheckpointRows int
	// CheckpointInterval is the longest a written row waits for a
	// checkpoint (default 1m).
	CheckpointInterval time.Duration
}

func (c *WriterConfig) setDefaults() {
	if c.MaxBatchRows == 0 {
		c.MaxBatchRows = DefaultMaxBatchRows
	}
	if c.MaxDelay == 0 {
		c.MaxDelay = DefaultMaxDelay
	}
	if c.MaxDelay < 0 {
		c.MaxDelay = 0
	}
	if c.WriteDelay <= 0 {
		c.WriteDelay = c.MaxDelay
	}
	if c.FlushTimeout == 0 {
		c.FlushTimeout = DefaultFlushTimeout
	}
	if c.CheckpointRows == 0 {
		c.CheckpointRows = DefaultCheckpointRows
	}
	if c.CheckpointInterval == 0 {
		c.CheckpointInterval = DefaultCheckpointInterval
	}
}

// Validate reports every problem with the config at once (after defaults).
func (c WriterConfig) Validate() error {
	var errs []error
	switch {
	case c.Chain == "":
		errs = append(errs, fmt.Errorf("%w: chain is required", ErrInvalidWriterConfig))
	case len(c.Chain) > 256 || !utf8.ValidString(c.Chain):
		errs = append(errs, fmt.Errorf("%w: chain must be valid UTF-8 of at most 256 bytes", ErrInvalidWriterConfig))
	}
	if c.MaxBatchRows < 0 {
		errs = append(errs, fmt.Errorf("%w: max batch rows %d is negative", ErrInvalidWriterConfig, c.MaxBatchRows))
	}
	if c.FlushTimeout < 0 {
		errs = append(errs, fmt.Errorf("%w: flush timeout %s is negative", ErrInvalidWriterConfig, c.FlushTimeout))
	}
	if c.CheckpointRows < 0 {
		errs = append(errs, fmt.Errorf("%w: checkpoint rows %d is negative", ErrInvalidWriterConfig, c.CheckpointRows))
	}
	if c.CheckpointInterval < 0 {
		errs = append(errs, fmt.Errorf("%w: checkpoint interval %s is negative", ErrInvalidWriterConfig, c.CheckpointInterval))
	}
	return errors.Join(errs...)
}

// Writer links rows into one hash chain and appends them to a Store.
//
// Write is safe for concurrent use. Concurrent Writes are grouped: the
// first waits up to MaxDelay (or until MaxBatchRows rows are queued) for
// others, then all of them go to the store in one Append. Rows get their
// Seq, PrevHash and Hash in the order the Writes were queued, the rows of
// one Write consecutively and in order. A batch that fails does not advance
// the chain, and the next batch first re-reads the chain head from the
// store, in case the failed insert was in fact stored (an error can arrive
// after the server committed); so the chain never forks.
//
// With a Signer, the Writer also signs checkpoints of its head (see
// WriterConfig.Signer). A checkpoint vouches for the whole chain up to
// its Seq, including rows the Writer found in the store when it started;
// a failed checkpoint is logged and retried at the next occasion, and the
// rows it would have covered stay written. Before signing over rows it
// found unsigned at start, the Writer verifies them against the last
// checkpoint (see NewWriterWithConfig).
type Writer struct {
	store Store
	cfg   WriterConfig
	log   zerolog.Logger

	mu     sync.Mutex
	queue  []*writeRequest
	queued int // rows in queue
	// due is the earliest due of the queue: kept as requests are queued
	// and found again when some leave, so the loop need not scan the queue
	// at every wake.
	due    time.Time
	closed bool
	wake   chan struct{} // capacity 1: something changed for the loop
	done   chan struct{} // closed when the loop has exited

	// Owned by the loop goroutine; read by Head under headMu.
	headMu sync.Mutex
	seq    uint64
	hash   string
	resync bool

	// Checkpoint state, owned by the loop goroutine.
	signedSeq    uint64    // Seq of the last checkpoint stored
	unsignedFrom time.Time // when the first row after signedSeq was stored
	closeErr     error     // the last checkpoint's, returned by Close
	noSign       error     // why this writer must not sign (a broken tail)
	// unchecked is set while the tail found at start could not be
	// checked (the store did not answer): the Writer signs nothing until
	// a later try of the check succeeds. startSeq and startHash are the
	// head it found.
	unchecked error
	startSeq  uint64
	startHash string
}

type writeRequest struct {
	rows []schemas.AuditRow
	at   time.Time
	due  time.Time  // when its batch goes at the latest: at plus its delay
	res  chan error // capacity 1
}

// NewWriter loads the head of chain from store and returns a Writer that
// extends it with default batching. Close it when done.
func NewWriter(ctx context.Context, store Store, chain string, log zerolog.Logger) (*Writer, error) {
	return NewWriterWithConfig(ctx, store, WriterConfig{Chain: chain}, log)
}

// NewWriterWithConfig is NewWriter with explicit settings. With a Signer,
// it also finds the last checkpoint of the chain signed by that key: if
// the head is not signed (the last writer crashed before signing), the
// rows after that checkpoint are verified, and if they do not hold the
// Writer writes on but signs nothing, and Close returns an error wrapping
// ErrChainBroken.
func NewWriterWithConfig(ctx context.Context, store Store, cfg WriterConfig, log zerolog.Logger) (*Writer, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	seq, hash, err := store.ChainHead(ctx, cfg.Chain)
	if err != nil {
		return nil, fmt.Errorf("loading the head of audit chain %q: %w", cfg.Chain, err)
	}
	w := &Writer{
		store: store,
		cfg:   cfg,
		log:   log.With().Str("component", "audit-writer").Str("chain", cfg.Chain).Logger(),
		wake:  make(chan struct{}, 1),
		done:  make(chan struct{}),
		seq:   seq,
		hash:  hash,
	}
	if cfg.Signer != nil && seq > 0 {
		w.startSeq, w.startHash = seq, hash
		if err := w.checkUnsignedTail(ctx); err != nil {
			if Permanent(err) || ctx.Err() != nil {
				return nil, err
			}
			// The store does not answer (an audit spool let the Writer
			// start without it): write on, sign once the check passes.
			w.unchecked = err
			w.log.Warn().Err(err).Msg("cannot check the unsigned tail of the audit chain now; signing no checkpoint until it is checked")
		}
	}
	w.log.Debug().Uint64("seq", seq).Uint64("signed_seq", w.signedSeq).Msg("audit chain head loaded")
	go w.loop()
	return w, nil
}

// checkUnsignedTail runs at start when the chain has rows. If its head is
// signed, there is nothing to do. Otherwise (a crash before the last
// checkpoint) the rows after the last checkpoint this key signed are
// verified against it before the Writer signs over them: if they do not
// hold (the tail was tampered with while no writer ran), the Writer does
// not sign at all, so it does not vouch for the tampering; it logs the
// broken link, writes on, and Close reports it. A chain with no checkpoint
// of this key is signed from its head on without a check (verify it with
// package trail first). It checks the tail up to the head the Writer
// started from (startSeq, startHash), also when it runs again later
// because the store did not answer at start.
func (w *Writer) checkUnsignedTail(ctx context.Context) error {
	keyring := schemas.NewKeyring(w.cfg.Signer.Public())
	head, headHash := w.startSeq, w.startHash
	var anchor *schemas.Checkpoint
	// Look back from the head, widening the window, for the last
	// checkpoint this key signed at or before it.
	for back := uint64(1); ; back *= 64 {
		after := head - min(back, head)
		cps, err := w.store.Checkpoints(ctx, w.cfg.Chain, after, 0)
		if err != nil {
			return fmt.Errorf("loading the checkpoints of audit chain %q: %w", w.cfg.Chain, err)
		}
		for i := range cps {
			if c := cps[i]; c.Seq <= head && c.Verify(keyring) == nil && (anchor == nil || c.Seq >= anchor.Seq) {
				anchor = &cps[i]
			}
		}
		if anchor != nil || after == 0 {
			break
		}
	}
	if w.unsignedFrom.IsZero() {
		w.unsignedFrom = time.Now()
	}
	switch {
	case anchor == nil:
		w.log.Warn().Uint64("seq", head).Msg("audit chain has no checkpoint of this key; signing it from its head on unchecked")
		return nil
	case anchor.Seq == head && anchor.Hash == headHash:
		w.headMu.Lock()
		w.signedSeq = head
		w.headMu.Unlock()
		if w.seq == head {
			w.unsignedFrom = time.Time{}
		}
		return nil
	}
	rows, err := w.store.ChainRows(ctx, w.cfg.Chain, anchor.Seq-1, 0)
	if err != nil {
		return fmt.Errorf("reading the unsigned tail of audit chain %q: %w", w.cfg.Chain, err)
	}
	w.headMu.Lock()
	w.signedSeq = anchor.Seq
	w.headMu.Unlock()
	var broken error
	switch {
	case len(rows) == 0 || rows[0].Seq != anchor.Seq:
		broken = &ChainError{Chain: w.cfg.Chain, Index: -1, Seq: anchor.Seq, Fault: FaultTruncated, Detail: "the row of the last checkpoint is missing"}
	case rows[0].Hash != anchor.Hash:
		broken = &ChainError{Chain: w.cfg.Chain, Index: -1, Seq: anchor.Seq, RowID: rows[0].RowID, Fault: FaultCheckpoint, Detail: "the row does not have the checkpointed hash"}
	default:
		broken = VerifyChain(rows)
	}
	if broken != nil {
		w.noSign = fmt.Errorf("not signing audit chain %q: its tail after the checkpoint at seq %d does not verify: %w", w.cfg.Chain, anchor.Seq, broken)
		w.log.Error().Err(broken).Uint64("checkpoint_seq", anchor.Seq).Msg("the unsigned tail of the audit chain is broken; this writer will not sign checkpoints")
	}
	return nil
}

// uncheckedTimeout bounds a later try of the start's tail check, which
// holds up the writer's loop.
const uncheckedTimeout = 5 * time.Second

// Head returns the Seq and Hash of the last row the writer has stored.
func (w *Writer) Head() (seq uint64, hash string) {
	w.headMu.Lock()
	defer w.headMu.Unlock()
	return w.seq, w.hash
}

// Write normalizes rows (see Normalize), assigns them their place in the
// chain and appends them. It returns nil once the store has acknowledged
// them, or the error that stopped them; an invalid row (ErrInvalidRow)
// fails only its own Write, before anything is queued.
//
// When ctx ends first, Write returns ctx's error: rows still queued are
// withdrawn, but rows already handed to the store may yet be stored, so
// the caller must treat them as possibly written (writing the same rows
// again is harmless to readers, which deduplicate by RowID).
func (w *Writer) Write(ctx context.Context, rows ...schemas.AuditRow) error {
	if len(rows) == 0 {
		return nil
	}
	req, err := w.enqueue(rows, w.cfg.WriteDelay)
	if err != nil {
		return err
	}
	return w.wait(ctx, req)
}

// Enqueue queues rows like Write and returns at once with the wait for
// their durability, which returns what Write would have; a caller that
// has other work gets on with it and waits later (the wait may be called
// once). An error means nothing was queued.
func (w *Writer) Enqueue(rows ...schemas.AuditRow) (wait func(context.Context) error, err error) {
	if len(rows) == 0 {
		return func(context.Context) error { return nil }, nil
	}
	req, err := w.enqueue(rows, w.cfg.MaxDelay)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) error { return w.wait(ctx, req) }, nil
}

func (w *Writer) enqueue(rows []schemas.AuditRow, delay time.Duration) (*writeRequest, error) {
	own := make([]schemas.AuditRow, len(rows))
	for i := range rows {
		own[i] = rows[i]
		Normalize(&own[i])
		if err := validateContent(i, &own[i]); err != nil {
			return nil, err
		}
	}
	now := time.Now()
	req := &writeRequest{rows: own, at: now, due: now.Add(delay), res: make(chan error, 1)}

	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil, fmt.Errorf("audit writer for chain %q: %w", w.cfg.Chain, ErrClosed)
	}
	w.queue = append(w.queue, req)
	w.queued += len(own)
	if len(w.queue) == 1 || req.due.Before(w.due) {
		w.due = req.due
	}
	w.mu.Unlock()
	w.signal()
	return req, nil
}

// wait waits for req's rows to be stored (or spooled); if ctx ends first,
// the rows still queued are withdrawn.
func (w *Writer) wait(ctx context.Context, req *writeRequest) error {
	select {
	case err := <-req.res:
		return err
	case <-ctx.Done():
		w.mu.Lock()
		if i := slices.Index(w.queue, req); i >= 0 {
			w.queue = slices.Delete(w.queue, i, i+1)
			w.queued -= len(req.rows)
			w.findDue()
		}
		w.mu.Unlock()
		return fmt.Errorf("writing audit rows: %w", ctx.Err())
	}
}

// Close stores the rows already queued, waits for the batch in flight,
// signs a checkpoint of the head if the Writer has a Signer and the head
// is not signed yet, and stops the writer. Writes after Close fail with
// ErrClosed. It returns the error of that last checkpoint, if any. It does
// not close the store.
func (w *Writer) Close() error {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	w.signal()
	<-w.done
	return w.closeErr
}

// SignedSeq returns the Seq of the last checkpoint the Writer stored (or
// found stored for the head it started from); 0 if none.
func (w *Writer) SignedSeq() uint64 {
	w.headMu.Lock()
	defer w.headMu.Unlock()
	return w.signedSeq
}

func (w *Writer) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// loop is the single goroutine that assigns chain positions and appends,
// so the chain head needs no lock on the write path.
func (w *Writer) loop() {
	defer close(w.done)
	var tick <-chan time.Time
	if w.cfg.Signer != nil {
		// Checking a few times per interval keeps a row's wait for its
		// checkpoint close to CheckpointInterval.
		t := time.NewTicker(max(w.cfg.CheckpointInterval/4, time.Millisecond))
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-w.wake:
		case <-tick:
			// A failure is logged and retried at the next occasion.
			_ = w.maybeCheckpoint(false)
			continue
		}
		for {
			w.mu.Lock()
			empty, closed := len(w.queue) == 0, w.closed
			w.mu.Unlock()
			if empty {
				if closed {
					w.closeErr = w.maybeCheckpoint(true)
					return
				}
				break
			}
			w.waitForBatch()
			w.flush(w.take())
			_ = w.maybeCheckpoint(false) // logged; retried at the next occasion
		}
	}
}

// maybeCheckpoint signs and stores a checkpoint of the head when the
// unsigned rows are due (or, with force, whenever there are any).
func (w *Writer) maybeCheckpoint(force bool) error {
	if w.cfg.Signer == nil || w.seq == w.signedSeq {
		return nil
	}
	if w.unchecked != nil {
		ctx, cancel := context.WithTimeout(context.Background(), min(w.cfg.FlushTimeout, uncheckedTimeout))
		err := w.checkUnsignedTail(ctx)
		cancel()
		if err != nil {
			w.unchecked = err
			if force {
				return fmt.Errorf("not signing audit chain %q: its unsigned tail could not be checked: %w", w.cfg.Chain, err)
			}
			return nil
		}
		w.unchecked = nil
		w.log.Info().Uint64("signed_seq", w.SignedSeq()).Msg("the unsigned tail of the audit chain is checked; signing again")
	}
	if w.noSign != nil {
		if force {
			return w.noSign
		}
		return nil
	}
	due := force || w.seq-w.signedSeq >= uint64(w.cfg.CheckpointRows) ||
		(!w.unsignedFrom.IsZero() && time.Since(w.unsignedFrom) >= w.cfg.CheckpointInterval)
	if !due {
		return nil
	}
	cp := schemas.NewCheckpoint(w.cfg.Signer, w.cfg.Chain, w.seq, w.hash, time.Now())
	ctx, cancel := context.WithTimeout(context.Background(), w.cfg.FlushTimeout)
	defer cancel()
	if err := w.store.AppendCheckpoints(ctx, []schemas.Checkpoint{cp}); err != nil {
		w.log.Error().Err(err).Uint64("seq", cp.Seq).Msg("storing an audit checkpoint failed; retrying at the next occasion")
		return fmt.Errorf("storing the checkpoint of audit chain %q at seq %d: %w", w.cfg.Chain, cp.Seq, err)
	}
	w.headMu.Lock()
	w.signedSeq = cp.Seq
	w.headMu.Unlock()
	w.unsignedFrom = time.Time{}
	w.log.Debug().Uint64("seq", cp.Seq).Str("key_id", cp.KeyID).Msg("audit checkpoint stored")
	return nil
}

// waitForBatch waits until the delay of a queued Write (WriteDelay) or
// Enqueue (MaxDelay) has run out, enough rows are queued, or the writer
// is closing.
func (w *Writer) waitForBatch() {
	for {
		w.mu.Lock()
		if len(w.queue) == 0 || w.queued >= w.cfg.MaxBatchRows || w.closed {
			// An empty queue: a Write whose ctx ended withdrew itself.
			w.mu.Unlock()
			return
		}
		deadline := w.due
		w.mu.Unlock()
		wait := time.Until(deadline)
		if wait <= 0 {
			return
		}
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
			return
		case <-w.wake:
			timer.Stop()
		}
	}
}

// findDue sets due to the earliest due of the queue. The caller holds mu.
func (w *Writer) findDue() {
	w.due = time.Time{}
	for i, r := range w.queue {
		if i == 0 || r.due.Before(w.due) {
			w.due = r.due
		}
	}
}

// take removes the next batch from the queue: whole Writes, at least one,
// up to MaxBatchRows rows.
func (w *Writer) take() []*writeRequest {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, rows := 0, 0
	for n < len(w.queue) && (n == 0 || rows+len(w.queue[n].rows) <= w.cfg.MaxBatchRows) {
		rows += len(w.queue[n].rows)
		n++
	}
	batch := slices.Clone(w.queue[:n])
	w.queue = slices.Delete(w.queue, 0, n)
	w.queued -= rows
	w.findDue()
	if len(w.queue) > 0 {
		// More is waiting: make sure the loop comes round again.
		w.signal()
	}
	return batch
}

func (w *Writer) flush(batch []*writeRequest) {
	if len(batch) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.cfg.FlushTimeout)
	defer cancel()
	err := w.commit(ctx, batch)
	for _, req := range batch {
		req.res <- err
	}
}

func (w *Writer) commit(ctx context.Context, batch []*writeRequest) error {
	if w.resync {
		seq, hash, err := w.store.ChainHead(ctx, w.cfg.Chain)
		if err != nil {
			return fmt.Errorf("re-reading the head of audit chain %q after a failed append: %w", w.cfg.Chain, err)
		}
		w.headMu.Lock()
		if seq > w.seq {
			w.log.Warn().Uint64("seq", w.seq).Uint64("stored_seq", seq).
				Msg("a failed audit append was stored after all; continuing the chain after it")
			w.seq, w.hash = seq, hash
		}
		w.headMu.Unlock()
		w.resync = false
	}

	total := 0
	for _, req := range batch {
		total += len(req.rows)
	}
	rows := make([]schemas.AuditRow, 0, total)
	seq, prev := w.seq, w.hash
	for _, req := range batch {
		for _, r := range req.rows {
			seq++
			r.Chain, r.Seq, r.PrevHash = w.cfg.Chain, seq, prev
			r.Hash = r.ComputeHash()
			prev = r.Hash
			rows = append(rows, r)
		}
	}
	start := time.Now()
	if err := w.store.Append(ctx, rows); err != nil {
		w.resync = true
		w.log.Error().Err(err).Int("rows", len(rows)).Uint64("first_seq", w.seq+1).Msg("audit append failed; chain not advanced")
		return fmt.Errorf("appending %d audit rows to chain %q: %w", len(rows), w.cfg.Chain, err)
	}
	w.headMu.Lock()
	w.seq, w.hash = seq, prev
	w.headMu.Unlock()
	if w.unsignedFrom.IsZero() {
		w.unsignedFrom = time.Now()
	}
	w.log.Debug().Int("rows", len(rows)).Int("writes", len(batch)).Uint64("seq", seq).
		Dur("took", time.Since(start)).Msg("audit batch stored")
	return nil
}
