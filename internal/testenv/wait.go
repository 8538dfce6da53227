package testenv

import (
	"sync"
	"testing"
	"time"
)

// WaitTimeout bounds every wait of this package: generous, so that a slow
// or busy machine never fails a test that would pass, since a wait ends as
// soon as its condition holds. Only a test that is failing waits it out.
const WaitTimeout = time.Minute

// pollInterval is how often Eventually looks again.
const pollInterval = 10 * time.Millisecond

// Eventually calls cond at once and then every 10 ms until it reports
// true, and fails the test naming what it waited for when that has not
// happened within WaitTimeout. It is for state that gives no notice of
// its changes, such as what another system holds (a broker's committed
// offsets, a table after a background merge): where the code under test
// can tell when something happened (a channel, an observer callback, a log
// line), wait on that instead (Notifier, Recorder, LogBuffer.WaitFor).
// Call it from the test's goroutine: a timeout calls t.Fatalf.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	EventuallyWithin(t, WaitTimeout, what, cond)
}

// EventuallyWithin is Eventually with a bound of its own, for a wait that
// is known to take longer than WaitTimeout on a busy machine.
func EventuallyWithin(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if cond() {
		return
	}
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		select {
		case <-tick.C:
			if cond() {
				return
			}
		case <-deadline.C:
			if cond() {
				return
			}
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
	}
}

// Notifier lets a test wait for a condition on state that other
// goroutines change: each change is followed by Notify, and Wait checks
// its condition again after each. No change is missed, so no wait depends
// on how fast the machine is. The zero value is ready to use.
type Notifier struct {
	mu sync.Mutex
	ch chan struct{} // closed by the next Notify
}

// Notify wakes every Wait to check its condition again. It never blocks.
func (n *Notifier) Notify() {
	n.mu.Lock()
	if n.ch != nil {
		close(n.ch)
		n.ch = nil
	}
	n.mu.Unlock()
}

func (n *Notifier) next() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch == nil {
		n.ch = make(chan struct{})
	}
	return n.ch
}

// Wait returns once cond reports true, checking it at once and after each
// Notify, and fails the test naming what it waited for when that has not
// happened within WaitTimeout. Call it from the test's goroutine.
func (n *Notifier) Wait(t testing.TB, what string, cond func() bool) {
	t.Helper()
	if !n.await(cond) {
		t.Fatalf("timed out after %s waiting for %s", WaitTimeout, what)
	}
}

// await reports whether cond came to hold within WaitTimeout.
func (n *Notifier) await(cond func() bool) bool {
	// The channel is taken before cond looks, so that a change made after
	// that wakes the wait.
	changed := n.next()
	if cond() {
		return true
	}
	deadline := time.NewTimer(WaitTimeout)
	defer deadline.Stop()
	for {
		select {
		case <-changed:
		case <-deadline.C:
			return cond()
		}
		changed = n.next()
		if cond() {
			return true
		}
	}
}

// Recorder collects what code under test reports through a callback (an
// observer of audit rows, say) from any goroutine, and lets the test wait
// for a condition on it. The zero value is ready to use.
type Recorder[T any] struct {
	n   Notifier
	mu  sync.Mutex
	all []T
}

// Add records v; it never blocks, so it suits callbacks that must not.
func (r *Recorder[T]) Add(v T) {
	r.mu.Lock()
	r.all = append(r.all, v)
	r.mu.Unlock()
	r.n.Notify()
}

// All returns what was recorded so far, in the order it was added.
func (r *Recorder[T]) All() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]T(nil), r.all...)
}

// Wait returns what was recorded once cond holds of it, checking at once
// and after each Add, and fails the test naming what it waited for when
// that has not happened within WaitTimeout. cond must not modify the
// slice it is given.
func (r *Recorder[T]) Wait(t testing.TB, what string, cond func([]T) bool) []T {
	t.Helper()
	var got []T
	r.n.Wait(t, what, func() bool {
		got = r.snapshot()
		return cond(got)
	})
	return append([]T(nil), got...)
}

// snapshot returns what was recorded so far without copying it: Add only
// appends, and never writes where a snapshot already reaches.
func (r *Recorder[T]) snapshot() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.all[:len(r.all):len(r.all)]
}
