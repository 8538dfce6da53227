package spool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/schemas"
)

// LedgerFileName is the ledger file inside the spool directory: what the
// spool must still know after it truncated its file, namely the terminal
// steps of recent commands (so a replay is refused while the store is
// down) and the head of every chain written through it (so a writer can
// continue its chain while the store is down, also right after a start).
const LedgerFileName = "audit.ledger"

// ledgerChunk caps the entries of one ledger record, far below maxRecord.
const ledgerChunk = 10000

// ledgerRecord is the body of a kindLedger record. Records only add: a
// head replaces a lower one, an entry joins the others of its command.
type ledgerRecord struct {
	Heads map[string]ledgerHead `json:"heads,omitempty"`
	Done  []executed            `json:"done,omitempty"`
}

type ledgerHead struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
}

// executed is a terminal step of a command: enough of its row for the
// consumer's replay check (schemas.Step.Terminal, and the Kafka position
// that tells a redelivery from a replay).
type executed struct {
	CommandID string       `json:"command_id"`
	RowID     string       `json:"row_id"`
	Step      schemas.Step `json:"step"`
	Topic     string       `json:"topic,omitempty"`
	Partition int32        `json:"partition"`
	Offset    int64        `json:"offset"`
	ExpiresAt time.Time    `json:"expires_at"`
}

func (e executed) row() schemas.AuditRow {
	return schemas.AuditRow{
		RowID: e.RowID, CommandID: e.CommandID, Step: e.Step, ExpiresAt: e.ExpiresAt,
		SourceTopic: e.Topic, SourcePartition: e.Partition, SourceOffset: e.Offset,
	}
}

// ledger keeps the terminal steps and chain heads of rows that left the
// spool file. Its file is rewritten with the live entries only at open
// and whenever it has grown to twice its last rewritten size; entries are
// live until their command's expires_at plus grace (a command past its
// expiry is refused as expired before the replay check).
type ledger struct {
	mu    sync.Mutex
	dir   string
	path  string
	f     *os.File
	size  int64
	base  int64 // size after the last rewrite
	grace time.Duration
	now   func() time.Time
	log   zerolog.Logger

	done  map[string][]executed // by command id
	heads map[string]head
}

// minLedgerRewrite is the least size at which the ledger is rewritten.
const minLedgerRewrite = 1 << 20

func openLedger(dir string, grace time.Duration, now func() time.Time, log zerolog.Logger) (*ledger, error) {
	l := &ledger{
		dir: dir, path: filepath.Join(dir, LedgerFileName), grace: grace, now: now, log: log,
		done: make(map[string][]executed), heads: make(map[string]head),
	}
	f, err := os.OpenFile(l.path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the audit ledger: %w", err)
	}
	l.f = f
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("reading the audit ledger: %w", err)
	}
	var off int64
	for off < st.Size() {
		rec, n, err := readRecord(f, off)
		if errors.Is(err, errTorn) {
			// Only the last record can be torn, and it was never
			// acknowledged: the spool truncates only after its ledger
			// record is synced, and a direct append's caller waits for it.
			log.Warn().Err(err).Int64("offset", off).Msg("the audit ledger ends in a torn record; cutting it off")
			break
		}
		if err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("reading the audit ledger at offset %d: %w", off, err)
		}
		if rec.kind == kindLedger {
			l.apply(rec.led)
		}
		off += n
	}
	l.size = off
	if err := l.rewrite(); err != nil {
		_ = l.f.Close()
		return nil, err
	}
	return l, nil
}

// apply adds a record's heads and entries. Callers hold mu or own l.
func (l *ledger) apply(rec *ledgerRecord) {
	for chain, h := range rec.Heads {
		if cur, ok := l.heads[chain]; !ok || audit.HigherHead(h.Seq, h.Hash, cur.seq, cur.hash) {
			l.heads[chain] = head{h.Seq, h.Hash}
		}
	}
	for _, e := range rec.Done {
		l.add(e)
	}
}

func (l *ledger) add(e executed) {
	es := l.done[e.CommandID]
	for _, o := range es {
		if o.RowID == e.RowID {
			return
		}
	}
	l.done[e.CommandID] = append(es, e)
}

// save makes rec durable in the ledger and adds it. It is the step
// before the spool truncates its file: the rows' terminal steps and the
// chains' heads must outlive the file.
func (l *ledger) save(rec *ledgerRecord) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for len(rec.Done) > ledgerChunk {
		part := &ledgerRecord{Done: rec.Done[:ledgerChunk]}
		if err := l.append(part); err != nil {
			return err
		}
		rec = &ledgerRecord{Heads: rec.Heads, Done: rec.Done[ledgerChunk:]}
	}
	if err := l.append(rec); err != nil {
		return err
	}
	if l.size >= max(minLedgerRewrite, 2*l.base) {
		if err := l.rewrite(); err != nil {
			// The appended records stand; the rewrite is retried at the
			// next save.
			l.log.Warn().Err(err).Msg("rewriting the audit ledger failed")
		}
	}
	return nil
}

// append writes and syncs one record. Callers hold mu.
func (l *ledger) append(rec *ledgerRecord) error {
	buf, err := encode(&record{kind: kindLedger, led: rec})
	if err != nil {
		return err
	}
	_, err = l.f.Write(buf)
	if err == nil {
		err = l.f.Sync()
	}
	if err != nil {
		if terr := l.f.Truncate(l.size); terr != nil {
			err = errors.Join(err, terr)
		}
		return fmt.Errorf("writing the audit ledger %s: %w", l.path, err)
	}
	l.size += int64(len(buf))
	l.apply(rec)
	return nil
}

// rewrite drops the entries that are no longer live and writes the rest,
// with every head, to a new file that replaces the old one. Callers hold
// mu or own l.
func (l *ledger) rewrite() error {
	l.prune()
	var live []executed
	for _, es := range l.done {
		live = append(live, es...)
	}
	slices.SortFunc(live, func(a, b executed) int { return a.ExpiresAt.Compare(b.ExpiresAt) })
	heads := make(map[string]ledgerHead, len(l.heads))
	for c, h := range l.heads {
		heads[c] = ledgerHead{h.seq, h.hash}
	}
	tmp := l.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("rewriting the audit ledger: %w", err)
	}
	var size int64
	write := func(rec *ledgerRecord) error {
		buf, err := encode(&record{kind: kindLedger, led: rec})
		if err != nil {
			return err
		}
		if _, err := f.Write(buf); err != nil {
			return err
		}
		size += int64(len(buf))
		return nil
	}
	err = write(&ledgerRecord{Heads: heads})
	for i := 0; err == nil && i < len(live); i += ledgerChunk {
		err = write(&ledgerRecord{Done: live[i:min(i+ledgerChunk, len(live))]})
	}
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = os.Rename(tmp, l.path)
	}
	if err == nil {
		err = syncDir(l.dir)
	}
	if err != nil {
		_ = f.Close()
		_ = os.Remove(tmp)
		return fmt.Errorf("rewriting the audit ledger: %w", err)
	}
	_ = l.f.Close()
	l.f, l.size, l.base = f, size, size
	return nil
}

// prune forgets the entries past their expiry and grace. Callers hold mu
// or own l.
func (l *ledger) prune() {
	cut := l.now().Add(-l.grace)
	for id, es := range l.done {
		es = slices.DeleteFunc(es, func(e executed) bool { return e.ExpiresAt.Before(cut) })
		if len(es) == 0 {
			delete(l.done, id)
		} else {
			l.done[id] = es
		}
	}
}

// executed returns the live terminal steps the ledger holds for a command.
func (l *ledger) executed(commandID string) []schemas.AuditRow {
	l.mu.Lock()
	defer l.mu.Unlock()
	cut := l.now().Add(-l.grace)
	var out []schemas.AuditRow
	for _, e := range l.done[commandID] {
		if !e.ExpiresAt.Before(cut) {
			out = append(out, e.row())
		}
	}
	return out
}

func (l *ledger) head(chain string) (head, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	h, ok := l.heads[chain]
	return h, ok
}

func (l *ledger) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}

// terminal returns the ledger entries of rows' terminal steps. Rows
// without an expiry (a message that never verified as a command) cannot
// be replayed as a command and are left out.
func terminal(rows []schemas.AuditRow) []executed {
	var out []executed
	for _, r := range rows {
		if !r.Step.Terminal() || r.ExpiresAt.IsZero() {
			continue
		}
		out = append(out, executed{
			CommandID: r.CommandID, RowID: r.RowID, Step: r.Step, ExpiresAt: r.ExpiresAt,
			Topic: r.SourceTopic, Partition: r.SourcePartition, Offset: r.SourceOffset,
		})
	}
	return out
}
