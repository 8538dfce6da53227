package spool_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/consumer/audit/audittest"
	"github.com/revoked-dev/revoked/consumer/audit/memstore"
	"github.com/revoked-dev/revoked/consumer/audit/spool"
	"github.com/revoked-dev/revoked/consumer/trail"
	"github.com/revoked-dev/revoked/internal/ops"
	"github.com/revoked-dev/revoked/internal/testenv"
	"github.com/revoked-dev/revoked/schemas"
)

// TestContract: the spool is a proper audit.Store in front of a healthy
// one.
func TestContract(t *testing.T) {
	audittest.Run(t, func(tb testing.TB) audit.Store {
		s, err := spool.Open(tb.TempDir(), memstore.New(), spool.Options{}, zerolog.Nop())
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { _ = s.Close() })
		return s
	})
}

var errDown = errors.New("dial tcp 10.0.0.9:9000: connect: connection refused")

// flaky is a store that can be taken down: down, its calls fail at once
// (or, with hang, when their ctx ends) and store nothing.
type flaky struct {
	audit.Store
	down    atomic.Bool
	hang    atomic.Bool
	tries   atomic.Int64 // Append and AppendCheckpoints calls, up or down
	appends atomic.Int64 // successful Append calls
	rows    atomic.Int64 // rows stored
	stored  testenv.Notifier
}

func (f *flaky) fail(ctx context.Context) error {
	if !f.down.Load() {
		return nil
	}
	if f.hang.Load() {
		<-ctx.Done()
		return ctx.Err()
	}
	return errDown
}

func (f *flaky) Append(ctx context.Context, rows []schemas.AuditRow) error {
	f.tries.Add(1)
	if err := f.fail(ctx); err != nil {
		return err
	}
	err := f.Store.Append(ctx, rows)
	if err == nil {
		f.appends.Add(1)
		f.rows.Add(int64(len(rows)))
		f.stored.Notify()
	}
	return err
}

func (f *flaky) AppendCheckpoints(ctx context.Context, cps []schemas.Checkpoint) error {
	f.tries.Add(1)
	if err := f.fail(ctx); err != nil {
		return err
	}
	return f.Store.AppendCheckpoints(ctx, cps)
}

func (f *flaky) CommandRows(ctx context.Context, id string) ([]schemas.AuditRow, error) {
	if err := f.fail(ctx); err != nil {
		return nil, err
	}
	return f.Store.CommandRows(ctx, id)
}

func (f *flaky) ChainHead(ctx context.Context, chain string) (uint64, string, error) {
	if err := f.fail(ctx); err != nil {
		return 0, "", err
	}
	return f.Store.ChainHead(ctx, chain)
}

func (f *flaky) Ping(ctx context.Context) error {
	if err := f.fail(ctx); err != nil {
		return err
	}
	return f.Store.Ping(ctx)
}

// Close leaves the memstore open, so a test can read it after the spool
// closed and reopen a spool over it.
func (f *flaky) Close() error { return nil }

func opts() spool.Options {
	return spool.Options{AppendTimeout: 100 * time.Millisecond, MinBackoff: 2 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}
}

func open(t *testing.T, dir string, store audit.Store, o spool.Options) *spool.Store {
	t.Helper()
	s, err := spool.Open(dir, store, o, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// waitDrained waits until the store has acknowledged everything spooled.
// The drainer gives no notice of that, so its Pending is polled.
func waitDrained(t *testing.T, s *spool.Store) {
	t.Helper()
	testenv.Eventually(t, "the spool to drain", func() bool {
		n, size := s.Pending()
		return n == 0 && size == 0
	})
}

func fileSize(t *testing.T, dir string) int64 {
	t.Helper()
	st, err := os.Stat(filepath.Join(dir, spool.FileName))
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// checkTrail verifies every chain of mem, signatures included, and that
// each chain holds want rows, one per RowID.
func checkTrail(t *testing.T, mem audit.Store, want map[string]int) {
	t.Helper()
	rep, err := trail.Verify(ctx(t), mem, schemas.NewKeyring(audittest.Signer().Public()), trail.Options{AllowUnsigned: true})
	if err != nil {
		t.Fatalf("trail does not verify: %v", err)
	}
	for chain, n := range want {
		rows, err := mem.ChainRows(ctx(t), chain, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		ids := map[string]int{}
		for _, r := range rows {
			ids[r.RowID]++
		}
		if len(rows) != n || len(ids) != n {
			t.Errorf("chain %s: %d rows, %d row ids, want %d of each", chain, len(rows), len(ids), n)
		}
	}
	if rep.Rows == 0 {
		t.Error("trail verified no rows")
	}
}

// TestStoreDownSpoolsThenDrains: with the store down (hanging), the
// first append waits AppendTimeout and every later one goes to the spool
// at once; rows and checkpoints are in the file, readable through
// CommandRows and ChainHead; once the store is back, everything is
// drained, once, and the signed trail verifies.
func TestStoreDownSpoolsThenDrains(t *testing.T) {
	mem := memstore.New()
	f := &flaky{Store: mem}
	dir := t.TempDir()
	reg := prometheus.NewRegistry()
	o := opts()
	o.Registerer = reg
	s := open(t, dir, f, o)
	const chain = "spool-chain"
	w, err := audit.NewWriterWithConfig(ctx(t), s, audit.WriterConfig{Chain: chain, Signer: audittest.Signer(), CheckpointRows: 7}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	// Some rows reach the store directly.
	for i := range 10 {
		if err := w.Write(ctx(t), audittest.Row(i)); err != nil {
			t.Fatal(err)
		}
	}
	f.hang.Store(true)
	f.down.Store(true)
	tried := f.tries.Load()
	for i := 10; i < 60; i++ {
		if err := w.Write(ctx(t), audittest.Row(i)); err != nil {
			t.Fatalf("Write %d with the store down: %v", i, err)
		}
	}
	// Only the first write tried the store, and waited AppendTimeout for
	// it; every later one went to the spool without waiting on the store.
	if n := f.tries.Load() - tried; n != 1 {
		t.Errorf("writes with the store down tried it %d times, want once: rows already spooled must not wait on the store", n)
	}
	// The file also holds the first ten rows, acknowledged by the store
	// as they were written and kept until the file rolls.
	if n, size := s.Pending(); n < 50 || size == 0 || fileSize(t, dir) <= size {
		t.Fatalf("Pending = %d records, %d bytes (file %d), want at least 50 records on disk after the acknowledged ones", n, size, fileSize(t, dir))
	}
	if rows, _ := mem.ChainRows(ctx(t), chain, 0, 0); len(rows) != 10 {
		t.Fatalf("the down store got %d rows, want 10", len(rows))
	}
	// Reads merge the spool.
	if seq, _, err := s.ChainHead(ctx(t), chain); err != nil || seq != 60 {
		t.Errorf("ChainHead with the store down = %d, %v, want 60", seq, err)
	}
	cmd := audittest.Row(45).CommandID // rows 45, 46, 47
	if rows, err := s.CommandRows(ctx(t), cmd); err != nil || len(rows) != 3 {
		t.Errorf("CommandRows(%s) with the store down = %d rows, %v, want 3", cmd, len(rows), err)
	}
	if err := s.Check(ctx(t)); !errors.Is(err, ops.ErrDegraded) {
		t.Errorf("Check with rows spooled = %v, want ErrDegraded", err)
	}
	if got := metric(t, reg, "revoked_audit_spool_pending"); got < 50 {
		t.Errorf("pending gauge %v, want >= 50", got)
	}

	f.down.Store(false)
	waitDrained(t, s)
	if fileSize(t, dir) != 0 {
		t.Errorf("spool file holds %d bytes after the drain", fileSize(t, dir))
	}
	if err := s.Check(ctx(t)); err != nil {
		t.Errorf("Check after the drain = %v", err)
	}
	// Later writes go to the store directly again.
	before := f.appends.Load()
	if err := w.Write(ctx(t), audittest.Row(60)); err != nil {
		t.Fatal(err)
	}
	if f.appends.Load() != before+1 {
		t.Error("a write after the drain did not go to the store directly")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if rows, err := s.CommandRows(ctx(t), cmd); err != nil || len(rows) != 3 {
		t.Errorf("CommandRows(%s) after the drain = %d rows, %v, want 3", cmd, len(rows), err)
	}
	checkTrail(t, mem, map[string]int{chain: 61})
	if cps, _ := mem.Checkpoints(ctx(t), chain, 0, 0); len(cps) < 8 {
		t.Errorf("%d checkpoints stored, want at least 8 (every 7 rows)", len(cps))
	}
	if got := metric(t, reg, "revoked_audit_spool_drain_errors_total"); got == 0 {
		t.Error("no drain errors counted while the store was down")
	}
}

func metric(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			return m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestCrashDuringOutage: a process spools rows and dies; the next one
// starts while the store is still down, continues the chain from the
// spool's head, and, once the store is back, drains both runs' rows.
func TestCrashDuringOutage(t *testing.T) {
	mem := memstore.New()
	f := &flaky{Store: mem}
	dir := t.TempDir()
	const chain = "crash-chain"

	s1, err := spool.Open(dir, f, opts(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	w1, err := audit.NewWriter(ctx(t), s1, chain, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := w1.Write(ctx(t), audittest.Row(0), audittest.Row(1)); err != nil {
		t.Fatal(err)
	}
	f.down.Store(true)
	for i := 2; i < 20; i++ {
		if err := w1.Write(ctx(t), audittest.Row(i)); err != nil {
			t.Fatal(err)
		}
	}
	s1.Abandon() // the process dies; w1 is never closed

	s2 := open(t, dir, f, opts())
	// Rows 0 and 1 reached the store, but the crash came before the file
	// rolled: they are sent again, which the store deduplicates.
	if n, _ := s2.Pending(); n != 20 {
		t.Fatalf("reopened spool holds %d records, want 20", n)
	}
	w2, err := audit.NewWriter(ctx(t), s2, chain, zerolog.Nop())
	if err != nil {
		t.Fatalf("NewWriter with the store down and the chain spooled: %v", err)
	}
	if seq, _ := w2.Head(); seq != 20 {
		t.Fatalf("restarted writer at seq %d, want 20", seq)
	}
	for i := 20; i < 30; i++ {
		if err := w2.Write(ctx(t), audittest.Row(i)); err != nil {
			t.Fatal(err)
		}
	}
	f.down.Store(false)
	waitDrained(t, s2)
	if err := w2.Close(); err != nil {
		t.Fatal(err)
	}
	checkTrail(t, mem, map[string]int{chain: 30})
}

// TestDrainAtOpen: rows a dead process spooled are drained by the next
// Open when the store is up, and a spool drained twice (a crash after the
// drain, before the truncation) stores every row once.
func TestDrainAtOpen(t *testing.T) {
	mem := memstore.New()
	f := &flaky{Store: mem}
	dir := t.TempDir()
	const chain = "reopen-chain"
	f.down.Store(true)
	s1, err := spool.Open(dir, f, opts(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	rows := audittest.Link(chain, 0, "", rowsN(0, 40))
	for i := 0; i < len(rows); i += 4 {
		if err := s1.Append(ctx(t), rows[i:i+4]); err != nil {
			t.Fatal(err)
		}
	}
	s1.Abandon()
	// A copy of the spool, as a crash after the drain and before the
	// truncation would leave it.
	data, err := os.ReadFile(filepath.Join(dir, spool.FileName))
	if err != nil {
		t.Fatal(err)
	}
	f.down.Store(false)
	s2 := open(t, dir, f, opts())
	waitDrained(t, s2)
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, spool.FileName), data, 0o600); err != nil {
		t.Fatal(err)
	}
	s3 := open(t, dir, f, opts())
	waitDrained(t, s3)
	checkTrail(t, mem, map[string]int{chain: 40})
}

func rowsN(from, n int) []schemas.AuditRow {
	out := make([]schemas.AuditRow, n)
	for i := range out {
		out[i] = audittest.Row(from + i)
	}
	return out
}

// TestTornTail: a record cut short or corrupted at the end of the file is
// cut off at Open; the records before it are kept and drained.
func TestTornTail(t *testing.T) {
	for name, tear := range map[string]func(data []byte, last int) []byte{
		"cut in the header": func(data []byte, last int) []byte { return data[:last+5] },
		"cut in the body":   func(data []byte, last int) []byte { return data[:len(data)-3] },
		"bad crc": func(data []byte, last int) []byte {
			data[len(data)-2] ^= 0xff
			return data
		},
		"garbage length": func(data []byte, last int) []byte {
			return append(data, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 1)
		},
	} {
		t.Run(name, func(t *testing.T) {
			mem := memstore.New()
			f := &flaky{Store: mem}
			f.down.Store(true)
			dir := t.TempDir()
			const chain = "torn"
			rows := audittest.Link(chain, 0, "", rowsN(0, 10))
			s1, err := spool.Open(dir, f, opts(), zerolog.Nop())
			if err != nil {
				t.Fatal(err)
			}
			if err := s1.Append(ctx(t), rows[:9]); err != nil {
				t.Fatal(err)
			}
			_, last := s1.Pending()
			if err := s1.Append(ctx(t), rows[9:]); err != nil {
				t.Fatal(err)
			}
			s1.Abandon()
			path := filepath.Join(dir, spool.FileName)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if name == "garbage length" {
				last = int64(len(data))
			}
			if err := os.WriteFile(path, tear(data, int(last)), 0o600); err != nil {
				t.Fatal(err)
			}

			s2 := open(t, dir, f, opts())
			n, size := s2.Pending()
			wantN, wantSize := 9, last
			if name == "garbage length" {
				wantN = 10
			}
			if n != wantN || size != wantSize || fileSize(t, dir) != wantSize {
				t.Fatalf("after the torn tail: %d records, %d bytes (file %d), want %d records, %d bytes", n, size, fileSize(t, dir), wantN, wantSize)
			}
			// The spool goes on after the cut.
			if wantN == 9 {
				if err := s2.Append(ctx(t), rows[9:]); err != nil {
					t.Fatal(err)
				}
			}
			f.down.Store(false)
			waitDrained(t, s2)
			checkTrail(t, mem, map[string]int{chain: 10})
		})
	}
}

// TestInvalidRowsNotSpooled: invalid rows fail with ErrInvalidRow whether
// or not the store is up, and nothing reaches the spool.
func TestInvalidRowsNotSpooled(t *testing.T) {
	f := &flaky{Store: memstore.New()}
	f.down.Store(true)
	dir := t.TempDir()
	s := open(t, dir, f, opts())
	bad := audittest.Link("bad", 0, "", rowsN(0, 2))
	bad[1].PrevHash = ""
	if err := s.Append(ctx(t), bad); !errors.Is(err, audit.ErrInvalidRow) {
		t.Errorf("Append of an invalid row = %v, want ErrInvalidRow", err)
	}
	cp := schemas.NewCheckpoint(audittest.Signer(), "bad", 0, "h", time.Now())
	if err := s.AppendCheckpoints(ctx(t), []schemas.Checkpoint{cp}); !errors.Is(err, audit.ErrInvalidRow) {
		t.Errorf("AppendCheckpoints of an invalid checkpoint = %v, want ErrInvalidRow", err)
	}
	if n, size := s.Pending(); n != 0 || size != 0 || fileSize(t, dir) != 0 {
		t.Errorf("invalid rows spooled: %d records, %d bytes", n, size)
	}
	// A caller whose ctx ended gets an error, and nothing is spooled.
	c, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Append(c, audittest.Link("c", 0, "", rowsN(0, 1))); !errors.Is(err, context.Canceled) {
		t.Errorf("Append with a canceled ctx = %v", err)
	}
	if fileSize(t, dir) != 0 {
		t.Error("a canceled append was spooled")
	}
}

// TestCommandRowsAndChainHeadMerge: reads combine rows in the store with
// rows in the spool.
func TestCommandRowsAndChainHeadMerge(t *testing.T) {
	mem := memstore.New()
	f := &flaky{Store: mem}
	s := open(t, t.TempDir(), f, opts())
	const chain = "merge"
	// Rows 0-5: commands cmd-0000 and cmd-0001, three rows each; the
	// first four go to the store, the last two to the spool.
	rows := audittest.Link(chain, 0, "", rowsN(0, 6))
	if err := s.Append(ctx(t), rows[:4]); err != nil {
		t.Fatal(err)
	}
	f.down.Store(true)
	if err := s.Append(ctx(t), rows[4:]); err != nil {
		t.Fatal(err)
	}
	// With the store down, reads see the rows in the file alone: the
	// spooled ones, and seq 4 if the file has not been emptied since the
	// store acknowledged it.
	if got, err := s.CommandRows(ctx(t), rows[3].CommandID); err != nil || len(got) < 2 || got[len(got)-2].Seq != 5 || got[len(got)-1].Seq != 6 {
		t.Errorf("CommandRows with the store down = %v, %v, want the spooled seqs 5, 6 last", seqs(got), err)
	}
	// The store is back, and the drainer has not drained yet: reads
	// merge.
	s.StopDrainerForTest()
	f.down.Store(false)
	s.MarkUpForTest()
	got, err := s.CommandRows(ctx(t), rows[3].CommandID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Seq != 4 || got[1].Seq != 5 || got[2].Seq != 6 {
		t.Errorf("merged CommandRows = %v, want seqs 4, 5, 6", seqs(got))
	}
	if seq, hash, err := s.ChainHead(ctx(t), chain); err != nil || seq != 6 || hash != rows[5].Hash {
		t.Errorf("ChainHead = %d %s %v, want the spooled head 6", seq, hash, err)
	}
	if seq, _, err := s.ChainHead(ctx(t), "other"); err != nil || seq != 0 {
		t.Errorf("ChainHead of an unknown chain = %d, %v", seq, err)
	}
}

func seqs(rows []schemas.AuditRow) []uint64 {
	var out []uint64
	for _, r := range rows {
		out = append(out, r.Seq)
	}
	return out
}

// TestConcurrentAppends: writers on their own chains append while the
// store goes down and up; every chain ends complete and verified.
func TestConcurrentAppends(t *testing.T) {
	mem := memstore.New()
	f := &flaky{Store: mem}
	o := opts()
	o.DrainBatchRows = 7
	s := open(t, t.TempDir(), f, o)
	const writers, writes = 8, 60
	// The writers load their heads from the store before it flips.
	var ws []*audit.Writer
	want := map[string]int{}
	for w := range writers {
		chain := fmt.Sprintf("chain-%d", w)
		want[chain] = writes
		wr, err := audit.NewWriterWithConfig(ctx(t), s, audit.WriterConfig{Chain: chain, MaxDelay: -1}, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		ws = append(ws, wr)
	}
	stop := make(chan struct{})
	var flips sync.WaitGroup
	flips.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				f.down.Store(false)
				return
			case <-time.After(3 * time.Millisecond):
				f.down.Store(i%3 == 0)
			}
		}
	})
	var wg sync.WaitGroup
	for w, wr := range ws {
		chain := fmt.Sprintf("chain-%d", w)
		wg.Go(func() {
			defer func() { _ = wr.Close() }()
			for i := range writes {
				if err := wr.Write(ctx(t), audittest.Row(w*1000+i)); err != nil {
					t.Errorf("%s write %d: %v", chain, i, err)
					return
				}
				if i%10 == 0 {
					if _, err := s.CommandRows(ctx(t), audittest.Row(w*1000+i).CommandID); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	flips.Wait()
	waitDrained(t, s)
	checkTrail(t, mem, want)
}

// BenchmarkSpoolAppend measures appends to the spool with the store down:
// one Writer-sized batch of rows per op, fsynced.
func BenchmarkSpoolAppend(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("rows=%d", n), func(b *testing.B) {
			f := &flaky{Store: memstore.New()}
			f.down.Store(true)
			s, err := spool.Open(b.TempDir(), f, spool.Options{MinBackoff: time.Hour, MaxBackoff: time.Hour}, zerolog.Nop())
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			seq, prev := uint64(0), ""
			c := context.Background()
			for b.Loop() {
				rows := audittest.Link("bench", seq, prev, rowsN(int(seq), n))
				seq, prev = rows[n-1].Seq, rows[n-1].Hash
				if err := s.Append(c, rows); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// BenchmarkDrain measures draining a spool of 10,000 rows (in records of
// 10) into a memstore at Open, until the store holds every row.
func BenchmarkDrain(b *testing.B) {
	const rows = 10000
	for b.Loop() {
		b.StopTimer()
		dir := b.TempDir()
		f := &flaky{Store: memstore.New()}
		f.down.Store(true)
		s, err := spool.Open(dir, f, spool.Options{MinBackoff: time.Hour, MaxBackoff: time.Hour}, zerolog.Nop())
		if err != nil {
			b.Fatal(err)
		}
		all := audittest.Link("bench", 0, "", rowsN(0, rows))
		for i := 0; i < rows; i += 10 {
			if err := s.Append(context.Background(), all[i:i+10]); err != nil {
				b.Fatal(err)
			}
		}
		s.Abandon()
		f.down.Store(false)
		b.StartTimer()
		s, err = spool.Open(dir, f, spool.Options{}, zerolog.Nop())
		if err != nil {
			b.Fatal(err)
		}
		f.stored.Wait(b, "the drain", func() bool { return f.rows.Load() == rows })
		b.StopTimer()
		_ = s.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.N*rows)/b.Elapsed().Seconds(), "rows/s")
}
