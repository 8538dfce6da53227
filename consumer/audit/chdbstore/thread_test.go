//go:build linux

package chdbstore

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/revoked-dev/revoked/consumer/audit/audittest"
	"github.com/revoked-dev/revoked/schemas"
)

// niceOf reads a thread's nice value from /proc (field 19 of its stat).
func niceOf(t *testing.T, tid int) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/proc/self/task", strconv.Itoa(tid), "stat"))
	if err != nil {
		t.Fatal(err)
	}
	// The command name, field 2, is in parentheses and may hold spaces.
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	n, err := strconv.Atoi(fields[16]) // field 19, counted from field 3
	if err != nil {
		t.Fatalf("stat of thread %d: %v", tid, err)
	}
	return n
}

// threadName is a thread's name (comm): the engine names the threads it
// starts after their pools; the Go runtime's threads carry the program's.
func threadName(t *testing.T, tid string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/proc/self/task", tid, "comm"))
	if err != nil {
		if os.IsNotExist(err) {
			return "" // ended since the directory was read
		}
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// The engine's work runs below the process's CPU priority: the thread
// that calls into the library and every thread the engine started run at
// the process's nice value plus DefaultNice (capped at 19), while the
// Go runtime's other threads keep the process's. Every store the tests
// of this package open uses the default Nice, and the process's first
// connection sets the engine thread's priority.
func TestEngineRunsBelowTheProcessPriority(t *testing.T) {
	runtime.LockOSThread()
	own := niceOf(t, syscall.Gettid())
	runtime.UnlockOSThread()
	want := min(own+DefaultNice, MaxNice)

	s := openTTL(t, t.TempDir(), "audit", 0)
	ctx := context.Background()
	rows := make([]schemas.AuditRow, 2000)
	for i := range rows {
		rows[i] = audittest.Row(i)
	}
	if err := s.Append(ctx, audittest.Link("c1", 0, "", rows)); err != nil {
		t.Fatal(err)
	}
	// A query the engine spreads over its pool's threads.
	if got := s.scalar(t, "SELECT count() FROM numbers(20000000) WHERE number % 7 = 3 SETTINGS max_threads = 4"); got != "2857143" {
		t.Fatalf("count = %s", got)
	}

	var tid int
	engine.thread.do(func() { tid = syscall.Gettid() })
	if tid == 0 {
		t.Fatal("no engine thread")
	}
	if got := niceOf(t, tid); got != want {
		t.Errorf("engine thread %d runs at nice %d, want %d (the process's %d + %d)", tid, got, want, own, DefaultNice)
	}

	// Threads the engine named run at its priority, but for those it
	// raised itself: its memory worker sets nice -20 where the process
	// may, and a pool thread that worker starts inherits that (CI saw a
	// "ThreadPool" thread at -20). A raised thread is above the process's
	// priority, never at it.
	// Go names no thread: each starts with the program's name, which the
	// kernel cuts to 15 bytes (the engine may rename the main thread, so
	// that thread's name is no guide).
	program := filepath.Base(os.Args[0])
	if len(program) > 15 {
		program = program[:15]
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	named := 0
	for _, task := range tasks {
		name := threadName(t, task.Name())
		if name == "" || name == program {
			continue
		}
		named++
		id, _ := strconv.Atoi(task.Name())
		if got := niceOf(t, id); got != want && got >= own {
			t.Errorf("engine thread %d (%s) runs at nice %d, want %d", id, name, got, want)
		}
	}
	if named == 0 {
		t.Fatal("no thread named by the engine")
	}

	// The threads that run goroutines keep the process's priority, those
	// the runtime starts while the engine thread exists included: each
	// of these goroutines holds a thread until released, so the others
	// need new ones.
	const n = 8
	tids := make(chan int, n)
	release := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			tids <- syscall.Gettid()
			<-release
		})
	}
	for range n {
		id := <-tids
		if got := niceOf(t, id); got != own {
			t.Errorf("goroutine thread %d runs at nice %d, want the process's %d", id, got, own)
		}
	}
	close(release)
	wg.Wait()
	t.Logf("engine call thread and %d threads the engine named at nice %d; goroutine threads at %d", named, want, own)
}

func TestConfigRefusesNiceAbove19(t *testing.T) {
	err := Config{Path: t.TempDir(), Nice: MaxNice + 1}.Validate()
	if err == nil || !strings.Contains(err.Error(), "nice 20 is above 19") {
		t.Fatalf("Validate with nice %d = %v", MaxNice+1, err)
	}
	if err := (Config{Path: t.TempDir(), Nice: -1}).Validate(); err != nil {
		t.Fatalf("Validate with nice -1 (the process's priority) = %v", err)
	}
}
