package testenv

import (
	"bytes"
	"strings"
	"sync"
	"testing"
)

// LogBuffer collects what a component under test writes, typically its
// log, and is safe for writers on several goroutines and a reader at once.
// A test can wait for a line to be written (WaitFor). The zero value is
// ready to use.
type LogBuffer struct {
	n  Notifier
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	n, err := l.b.Write(p)
	l.mu.Unlock()
	l.n.Notify()
	return n, err
}

// String returns everything written so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Count returns how many times substr occurs in what was written.
func (l *LogBuffer) Count(substr string) int {
	return strings.Count(l.String(), substr)
}

// WaitFor returns everything written once it contains substr, checking
// after each write, and fails the test, showing what was written, when
// that has not happened within WaitTimeout.
func (l *LogBuffer) WaitFor(t testing.TB, substr string) string {
	t.Helper()
	return l.WaitCount(t, substr, 1)
}

// WaitCount is WaitFor for at least n occurrences of substr.
func (l *LogBuffer) WaitCount(t testing.TB, substr string, n int) string {
	t.Helper()
	var out string
	if !l.n.await(func() bool {
		out = l.String()
		return strings.Count(out, substr) >= n
	}) {
		t.Fatalf("timed out after %s waiting for %d of %q in:\n%s", WaitTimeout, n, substr, out)
	}
	return out
}
