package testenv

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A Wait sees every change announced by Notify, however the goroutines
// interleave: the condition holds only at the last of many changes.
func TestNotifierSeesTheLastChange(t *testing.T) {
	for range 50 {
		var n Notifier
		var count atomic.Int32
		const changes = 200
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for range changes / 4 {
					count.Add(1)
					n.Notify()
				}
			})
		}
		n.Wait(t, "every change", func() bool { return count.Load() == changes })
		wg.Wait()
	}
}

func TestRecorderWaitsForACondition(t *testing.T) {
	var r Recorder[int]
	go func() {
		for i := range 100 {
			r.Add(i)
		}
	}()
	got := r.Wait(t, "100 values", func(all []int) bool { return len(all) == 100 })
	for i, v := range got {
		if v != i {
			t.Fatalf("value %d is %d: %v", i, v, got)
		}
	}
	if all := r.All(); len(all) != 100 {
		t.Fatalf("All = %d values", len(all))
	}
}

func TestLogBufferWaitFor(t *testing.T) {
	var l LogBuffer
	go func() {
		for i := range 20 {
			fmt.Fprintf(&l, "line %d\n", i)
		}
	}()
	out := l.WaitFor(t, "line 19\n")
	if !strings.Contains(out, "line 0\n") {
		t.Fatalf("WaitFor returned %q", out)
	}
	if got := l.WaitCount(t, "line 1", 11); !strings.Contains(got, "line 19") {
		t.Fatalf("WaitCount returned %q", got)
	}
	if n := l.Count("line"); n != 20 {
		t.Fatalf("Count = %d", n)
	}
}

func TestEventuallyReturnsOnceTheConditionHolds(t *testing.T) {
	var done atomic.Bool
	go func() { done.Store(true) }()
	Eventually(t, "the flag", done.Load)
}

// fatalTB records a Fatalf and ends the goroutine that called it, as
// testing.T does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestEventuallyFailsNamingWhatItWaitedFor(t *testing.T) {
	tb := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		EventuallyWithin(tb, 30*time.Millisecond, "a condition that never holds", func() bool { return false })
	}()
	<-done
	if !strings.Contains(tb.msg, "waiting for a condition that never holds") {
		t.Fatalf("Fatalf(%q)", tb.msg)
	}
}
