package chdbstore_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/consumer/audit/audittest"
	"github.com/revoked-dev/revoked/consumer/audit/chdbstore"
	"github.com/revoked-dev/revoked/internal/testenv"
	"github.com/revoked-dev/revoked/schemas"
)

// chDB runs one data directory per process, so the tests here do not run
// in parallel: each opens a directory of its own and closes it when done.

func openAt(tb testing.TB, dir string) *chdbstore.Store {
	tb.Helper()
	lib := testenv.ChDBLibPath(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := chdbstore.Open(ctx, chdbstore.Config{Path: dir, Table: "audit", LibPath: lib}, zerolog.Nop())
	if err != nil {
		tb.Fatalf("chdbstore.Open: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

func open(tb testing.TB) audit.Store { return openAt(tb, tb.TempDir()) }

func TestContract(t *testing.T) { audittest.Run(t, open) }

func BenchmarkAppend(b *testing.B) { audittest.Bench(b, open) }

func TestEngineVersionIsModern(t *testing.T) {
	s := openAt(t, t.TempDir())
	if v := s.EngineVersion(); !v.Modern() {
		t.Errorf("engine version %s is not modern", v)
	}
}

func TestSharedDirectoryAndBusy(t *testing.T) {
	dir := t.TempDir()
	a := openAt(t, dir)
	b := openAt(t, dir) // the same directory: shares the engine
	ctx := context.Background()
	if err := a.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	rows := audittest.Link("shared", 0, "", []schemas.AuditRow{audittest.Row(1)})
	if err := a.Append(ctx, rows); err != nil {
		t.Fatal(err)
	}
	if got, err := b.ChainRows(ctx, "shared", 0, 0); err != nil || len(got) != 1 {
		t.Fatalf("second store on the directory: %d rows, %v", len(got), err)
	}

	_, err := chdbstore.Open(ctx, chdbstore.Config{Path: t.TempDir(), LibPath: testenv.ChDBLibPath(t)}, zerolog.Nop())
	if !errors.Is(err, chdbstore.ErrBusy) {
		t.Errorf("Open of a second directory: %v, want ErrBusy", err)
	}

	// Closing one store leaves the other working.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Ping(ctx); err != nil {
		t.Errorf("Ping after the other store closed: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	// With both closed, the directory can be reopened and keeps its rows.
	c := openAt(t, dir)
	if got, err := c.ChainRows(ctx, "shared", 0, 0); err != nil || len(got) != 1 {
		t.Fatalf("after reopening: %d rows, %v", len(got), err)
	}
}

// TestLockedByAnotherProcess runs this test binary again as a child that
// holds a data directory until its standard input ends, and expects
// ErrLocked here while it does.
func TestLockedByAnotherProcess(t *testing.T) {
	if dir := os.Getenv("CHDBSTORE_TEST_HOLD"); dir != "" {
		s := openAt(t, dir)
		if err := s.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
		os.Stdout.WriteString("HOLDING\n")
		if _, err := io.Copy(io.Discard, os.Stdin); err != nil {
			t.Fatal(err)
		}
		return
	}
	lib := testenv.ChDBLibPath(t)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestLockedByAnotherProcess$", "-test.v")
	cmd.Env = append(os.Environ(), "CHDBSTORE_TEST_HOLD="+dir, "CHDB_LIB_PATH="+lib)
	hold, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel() // the child is killed if the test ends before it is let go
		_ = cmd.Wait()
	}()
	// A child that never gets to hold the directory is killed, which ends
	// the read below.
	giveUp := time.AfterFunc(testenv.WaitTimeout, cancel)
	buf := make([]byte, 4096)
	var seen strings.Builder
	for !strings.Contains(seen.String(), "HOLDING") {
		n, err := out.Read(buf)
		seen.Write(buf[:n])
		if err != nil {
			t.Fatalf("child never opened the directory: %v: %s", err, seen.String())
		}
	}
	giveUp.Stop()
	_, err = chdbstore.Open(context.Background(), chdbstore.Config{Path: dir, LibPath: lib}, zerolog.Nop())
	if !errors.Is(err, chdbstore.ErrLocked) {
		t.Errorf("Open of a directory held by another process: %v, want ErrLocked", err)
	}
	// Let the child go: it closes the store and passes.
	if err := hold.Close(); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(out)
	seen.Write(rest)
	if err != nil {
		t.Fatalf("reading the child's output: %v", err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("child: %v:\n%s", err, seen.String())
	}
}

func TestConfigValidate(t *testing.T) {
	err := chdbstore.Config{Database: "x-y", TTL: -1}.Validate()
	if !errors.Is(err, chdbstore.ErrInvalidConfig) {
		t.Fatalf("Validate = %v, want ErrInvalidConfig", err)
	}
	for _, want := range []string{"path is required", "database", "ttl"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error %q does not mention %q", err, want)
		}
	}
}

// TestMissingLibrary runs in a child process, where no library is loaded
// yet: Open reports ErrLibrary instead of the process dying.
func TestMissingLibrary(t *testing.T) {
	if os.Getenv("CHDBSTORE_TEST_MISSING_LIB") != "" {
		_, err := chdbstore.Open(context.Background(), chdbstore.Config{Path: t.TempDir(), LibPath: "/nonexistent/libchdb.so"}, zerolog.Nop())
		if !errors.Is(err, chdbstore.ErrLibrary) {
			t.Fatalf("Open with a missing library: %v, want ErrLibrary", err)
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestMissingLibrary$")
	cmd.Env = append(os.Environ(), "CHDBSTORE_TEST_MISSING_LIB=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

// TestLargeAppend stores an Append bigger than one statement holds.
func TestLargeAppend(t *testing.T) {
	s := openAt(t, t.TempDir())
	ctx := context.Background()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	const n = 3000
	rows := make([]schemas.AuditRow, n)
	for i := range rows {
		rows[i] = audittest.Row(i)
		rows[i].RowID = fmt.Sprintf("large-%d", i)
		rows[i].Detail = strings.Repeat("d", 4096)
	}
	rows = audittest.Link("large", 0, "", rows)
	if err := s.Append(ctx, rows); err != nil {
		t.Fatal(err)
	}
	seq, hash, err := s.ChainHead(ctx, "large")
	if err != nil || seq != n || hash != rows[n-1].Hash {
		t.Fatalf("ChainHead = %d %s %v, want %d", seq, hash, err, n)
	}
	got, err := s.ChainRows(ctx, "large", n-10, 0)
	if err != nil || len(got) != 10 {
		t.Fatalf("ChainRows: %d rows, %v", len(got), err)
	}
	if err := audit.VerifyChain(got); err != nil {
		t.Error(err)
	}
}

// BenchmarkHistory10M runs audittest.BenchHistory10M on a data directory
// that outlives the run ($REVOKED_BENCH_CHDB_DIR, else revoked/bench-chdb
// in the user's cache directory), so the 10 million rows are inserted
// once.
func BenchmarkHistory10M(b *testing.B) {
	dir := os.Getenv("REVOKED_BENCH_CHDB_DIR")
	if dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			b.Fatal(err)
		}
		dir = filepath.Join(cache, "revoked", "bench-chdb")
	}
	s := openAt(b, dir)
	audittest.BenchHistory10M(b, audittest.BigTarget{
		Store: s, Database: "default", Table: "audit",
		Exec: func(ctx context.Context, sql string) error {
			_, err := chdbstore.ExecForTest(ctx, s, sql)
			return err
		},
		QueryUint64: func(ctx context.Context, sql string) (uint64, error) {
			out, err := chdbstore.ExecForTest(ctx, s, sql)
			if err != nil {
				return 0, err
			}
			return strconv.ParseUint(strings.TrimSpace(string(out)), 10, 64)
		},
	})
}
