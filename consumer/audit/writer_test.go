package audit_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/consumer/audit/audittest"
	"github.com/revoked-dev/revoked/consumer/audit/memstore"
	"github.com/revoked-dev/revoked/internal/testenv"
	"github.com/revoked-dev/revoked/schemas"
)

// slowStore records the size of every Append and can hold Appends until
// released.
type slowStore struct {
	audit.Store
	mu      sync.Mutex
	sizes   []int
	gate    chan struct{} // when set, Append waits for it to close
	entered chan struct{}
	fail    atomic.Bool
}

func (s *slowStore) Append(ctx context.Context, rows []schemas.AuditRow) error {
	s.mu.Lock()
	s.sizes = append(s.sizes, len(rows))
	gate, entered := s.gate, s.entered
	s.mu.Unlock()
	if entered != nil {
		select {
		case entered <- struct{}{}:
		default:
		}
	}
	if gate != nil {
		<-gate
	}
	if s.fail.Load() {
		return errors.New("store down")
	}
	return s.Store.Append(ctx, rows)
}

func (s *slowStore) appendSizes() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.sizes...)
}

func row(i int) schemas.AuditRow {
	r := audittest.Row(i)
	r.RowID = fmt.Sprintf("row-%d", i)
	return r
}

func newWriter(t *testing.T, s audit.Store, cfg audit.WriterConfig) *audit.Writer {
	t.Helper()
	if cfg.Chain == "" {
		cfg.Chain = "test"
	}
	w, err := audit.NewWriterWithConfig(context.Background(), s, cfg, zerolog.Nop())
	if err != nil {
		t.Fatalf("NewWriter: %v", err)
	}
	t.Cleanup(func() { _ = w.Close() })
	return w
}

func TestWriterGroupsConcurrentWrites(t *testing.T) {
	t.Parallel()
	s := &slowStore{Store: memstore.New()}
	w := newWriter(t, s, audit.WriterConfig{MaxDelay: 50 * time.Millisecond, MaxBatchRows: 1000})
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			if err := w.Write(context.Background(), row(i)); err != nil {
				t.Errorf("Write: %v", err)
			}
		})
	}
	wg.Wait()
	sizes := s.appendSizes()
	if len(sizes) > 5 {
		t.Errorf("20 concurrent writes went in %d appends %v, want them grouped", len(sizes), sizes)
	}
}

// Enqueued rows wait MaxDelay for company and a Write waits WriteDelay:
// with an hour's MaxDelay, a Write still goes in milliseconds and takes
// the enqueued rows queued before it along; enqueued rows alone go once
// MaxBatchRows of them are queued.
func TestWriterWriteDelayAndMaxDelay(t *testing.T) {
	t.Parallel()
	s := &slowStore{Store: memstore.New()}
	w := newWriter(t, s, audit.WriterConfig{MaxDelay: time.Hour, WriteDelay: time.Millisecond, MaxBatchRows: 4})
	// The deadline only ends a hung test: an hour's delay would outlast it.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	early, err := w.Enqueue(row(0))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(ctx, row(1)); err != nil {
		t.Fatalf("Write waited out the enqueued rows' delay: %v", err)
	}
	if err := early(ctx); err != nil {
		t.Fatalf("the row enqueued before the Write: %v", err)
	}
	var waits []func(context.Context) error
	for i := 2; i < 6; i++ {
		wait, err := w.Enqueue(row(i))
		if err != nil {
			t.Fatal(err)
		}
		waits = append(waits, wait)
	}
	for i, wait := range waits {
		if err := wait(ctx); err != nil {
			t.Fatalf("enqueued row %d of a full batch: %v", i+2, err)
		}
	}
	if got := s.appendSizes(); !slices.Equal(got, []int{2, 4}) {
		t.Errorf("appends of %v rows, want [2 4]", got)
	}
}

func TestWriterCapsBatchRows(t *testing.T) {
	t.Parallel()
	s := &slowStore{Store: memstore.New()}
	w := newWriter(t, s, audit.WriterConfig{MaxDelay: 200 * time.Millisecond, MaxBatchRows: 4})
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			if err := w.Write(context.Background(), row(i)); err != nil {
				t.Errorf("Write: %v", err)
			}
		})
	}
	wg.Wait()
	total := 0
	for _, n := range s.appendSizes() {
		if n > 4 {
			t.Errorf("a batch of %d rows, cap 4", n)
		}
		total += n
	}
	if total != 10 {
		t.Errorf("%d rows appended, want 10", total)
	}
}

func TestWriterOversizedWriteIsOneBatch(t *testing.T) {
	t.Parallel()
	s := &slowStore{Store: memstore.New()}
	w := newWriter(t, s, audit.WriterConfig{MaxBatchRows: 2})
	rows := []schemas.AuditRow{row(1), row(2), row(3), row(4), row(5)}
	if err := w.Write(context.Background(), rows...); err != nil {
		t.Fatal(err)
	}
	if sizes := s.appendSizes(); len(sizes) != 1 || sizes[0] != 5 {
		t.Errorf("append sizes %v, want [5]", sizes)
	}
}

func TestWriterCanceledWhileQueued(t *testing.T) {
	t.Parallel()
	s := &slowStore{Store: memstore.New(), gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	w := newWriter(t, s, audit.WriterConfig{MaxDelay: -1})
	first := make(chan error, 1)
	go func() { first <- w.Write(context.Background(), row(1)) }()
	<-s.entered // the first batch is in the store, held

	// Enqueue is Write's first half: the row is queued when it returns,
	// and the wait is Write's second half.
	ctx, cancel := context.WithCancel(context.Background())
	wait, err := w.Enqueue(row(2))
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := wait(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled Write: %v, want context.Canceled", err)
	}
	s.mu.Lock()
	gate := s.gate
	s.gate = nil
	s.mu.Unlock()
	close(gate)
	if err := <-first; err != nil {
		t.Fatalf("first Write: %v", err)
	}
	if err := w.Write(context.Background(), row(3)); err != nil {
		t.Fatal(err)
	}
	rows, err := s.ChainRows(context.Background(), "test", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range rows {
		ids = append(ids, r.RowID)
	}
	if strings.Join(ids, ",") != "row-1,row-3" {
		t.Errorf("chain holds %v, want the withdrawn row-2 left out", ids)
	}
	if err := audit.VerifyChain(rows); err != nil {
		t.Error(err)
	}
}

func TestWriterCloseFlushesQueued(t *testing.T) {
	t.Parallel()
	s := memstore.New()
	w, err := audit.NewWriterWithConfig(context.Background(), s, audit.WriterConfig{Chain: "c", MaxDelay: time.Hour, MaxBatchRows: 100}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	wait, err := w.Enqueue(row(1)) // queued when it returns
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := wait(context.Background()); err != nil {
		t.Errorf("Write queued at Close: %v", err)
	}
	if seq, _, _ := s.ChainHead(context.Background(), "c"); seq != 1 {
		t.Errorf("chain head %d after Close, want 1", seq)
	}
}

func TestWriterInvalidRowFailsAlone(t *testing.T) {
	t.Parallel()
	s := memstore.New()
	w := newWriter(t, s, audit.WriterConfig{})
	bad := row(1)
	bad.CommandID = ""
	err := w.Write(context.Background(), row(0), bad)
	var re *audit.RowError
	if !errors.As(err, &re) || re.Index != 1 || re.Field != "command_id" {
		t.Errorf("Write with an invalid row: %v, want a RowError for index 1, command_id", err)
	}
	if err := w.Write(context.Background(), row(2)); err != nil {
		t.Errorf("next Write: %v", err)
	}
	if seq, _ := w.Head(); seq != 1 {
		t.Errorf("head %d, want 1", seq)
	}
}

func TestWriterNormalizes(t *testing.T) {
	t.Parallel()
	s := memstore.New()
	w := newWriter(t, s, audit.WriterConfig{})
	r := row(1)
	r.Time = time.Date(2025, 1, 2, 3, 4, 5, 123456789, time.FixedZone("X", 3600))
	r.Detail = "bad \xff byte"
	if err := w.Write(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	got, err := s.CommandRows(context.Background(), r.CommandID)
	if err != nil || len(got) != 1 {
		t.Fatalf("%d rows, %v", len(got), err)
	}
	if want := time.Date(2025, 1, 2, 2, 4, 5, 123000000, time.UTC); !got[0].Time.Equal(want) || got[0].Time.Location() != time.UTC {
		t.Errorf("time %v, want %v", got[0].Time, want)
	}
	if got[0].Detail != "bad \uFFFD byte" {
		t.Errorf("detail %q", got[0].Detail)
	}
	if got[0].Hash != got[0].ComputeHash() {
		t.Error("hash does not cover the stored row")
	}
}

func TestWriterConfigValidate(t *testing.T) {
	t.Parallel()
	err := audit.WriterConfig{MaxBatchRows: -1, FlushTimeout: -time.Second, CheckpointRows: -1, CheckpointInterval: -time.Second}.Validate()
	if !errors.Is(err, audit.ErrInvalidWriterConfig) {
		t.Fatalf("Validate = %v", err)
	}
	for _, want := range []string{"chain is required", "max batch rows", "flush timeout", "checkpoint rows", "checkpoint interval"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not mention %q", err, want)
		}
	}
	if _, err := audit.NewWriter(context.Background(), memstore.New(), "", zerolog.Nop()); !errors.Is(err, audit.ErrInvalidWriterConfig) {
		t.Errorf("NewWriter without a chain: %v", err)
	}
}

// failingCheckpoints stores rows but fails every checkpoint until ok.
type failingCheckpoints struct {
	*memstore.Store
	ok atomic.Bool
}

func (s *failingCheckpoints) AppendCheckpoints(ctx context.Context, cps []schemas.Checkpoint) error {
	if !s.ok.Load() {
		return errors.New("checkpoint table unavailable")
	}
	return s.Store.AppendCheckpoints(ctx, cps)
}

// TestWriterCheckpointFailure: rows are written while checkpoints fail,
// the next occasion retries, and Close reports a checkpoint it could not
// store.
func TestWriterCheckpointFailure(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := &failingCheckpoints{Store: memstore.New()}
	sg := audittest.Signer()
	var logs testenv.LogBuffer
	w, err := audit.NewWriterWithConfig(ctx, s, audit.WriterConfig{Chain: "c", MaxDelay: -1, Signer: sg, CheckpointRows: 2, CheckpointInterval: time.Hour}, zerolog.New(&logs))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := w.Write(ctx, audittest.Row(i)); err != nil {
			t.Fatalf("Write with checkpoints failing: %v", err)
		}
	}
	if got := w.SignedSeq(); got != 0 {
		t.Errorf("SignedSeq = %d while checkpoints fail", got)
	}
	s.ok.Store(true)
	if err := w.Write(ctx, audittest.Row(3)); err != nil {
		t.Fatal(err)
	}
	// The checkpoint follows the acknowledgement of the rows it covers
	// (the retry of the one that failed at seq 3 may already have gone
	// through); the Writer logs it once stored.
	logs.WaitFor(t, "audit checkpoint stored")
	if got := w.SignedSeq(); got != 3 && got != 4 {
		t.Fatalf("SignedSeq = %d after checkpoints recovered, want 3 or 4", got)
	}
	s.ok.Store(false)
	if err := w.Write(ctx, audittest.Row(4)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err == nil || !strings.Contains(err.Error(), "checkpoint table unavailable") {
		t.Errorf("Close with the last checkpoint failing: %v", err)
	}
}

func TestNewWriterStoreDown(t *testing.T) {
	t.Parallel()
	s := memstore.New()
	_ = s.Close()
	if _, err := audit.NewWriter(context.Background(), s, "c", zerolog.Nop()); !errors.Is(err, audit.ErrClosed) {
		t.Errorf("NewWriter on a closed store: %v", err)
	}
}

// TestWriterCancellationStress: Writes whose contexts end at random
// moments never break the chain, and every Write that returned nil is in
// it.
func TestWriterCancellationStress(t *testing.T) {
	t.Parallel()
	s := memstore.New()
	w := newWriter(t, s, audit.WriterConfig{MaxDelay: time.Millisecond, MaxBatchRows: 8})
	var (
		wg sync.WaitGroup
		ok sync.Map
	)
	for g := range 16 {
		wg.Go(func() {
			for i := range 40 {
				id := g*1000 + i
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(id%4)*500*time.Microsecond)
				if err := w.Write(ctx, row(id)); err == nil {
					ok.Store(fmt.Sprintf("row-%d", id), true)
				} else if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("Write: %v", err)
				}
				cancel()
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	rows, err := s.ChainRows(context.Background(), "test", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := audit.VerifyChain(rows); err != nil {
		t.Fatal(err)
	}
	stored := map[string]bool{}
	for _, r := range rows {
		stored[r.RowID] = true
	}
	ok.Range(func(k, _ any) bool {
		if !stored[k.(string)] {
			t.Errorf("%s: Write returned nil but the row is not stored", k)
		}
		return true
	})
}
