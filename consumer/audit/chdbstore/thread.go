package chdbstore

import (
	"fmt"
	"runtime"
)

// DefaultNice is how much lower than the process's own the CPU priority
// of the engine's work is by default (Config.Nice): a nice increment.
//
// chDB runs inside the pipeline's process, and an INSERT of the consumer's
// once-a-second group commit (about 1,300 rows at 10,000 events/s) kept a
// core for 50 to 120 ms while the pipeline needed both cores. Every
// revocation in flight then waited: in the local bench at 10,000
// events/s, the revocations slower than 50 ms came in bursts a second
// apart, one per insert. At a lower priority the kernel gives the engine
// what the pipeline leaves, and the audit rows, which no revocation waits
// for, land a little later. Event → revoked p99 in alternated 20 s runs
// (bench -parts latency -rates 10000): 59 to 109 ms, median 75, at 19
// (13 runs); 69 to 103 ms at 10 (4 runs), no better than 74 to 128 ms,
// median 98, at the process's priority (11 runs). The consumer bench
// revoked 5,120 and 5,672 tokens a second at 19 against 4,232 and 4,283
// without. Under sustained overload the engine still runs: the reader bounds the
// messages whose rows are not yet durable, so the pipeline slows to the
// store's pace rather than starving it.
const DefaultNice = 19

// MaxNice is the largest Config.Nice: Linux nice values end at 19.
const MaxNice = 19

// engineThread runs every call into libchdb on one OS thread whose nice
// value is raised: the calls run there, and the threads the engine
// starts from them (its thread pools, created as the first connection
// opens and as queries need them) inherit the value; only its memory
// worker sets a priority of its own. The Go runtime starts its threads
// from a template thread when a locked one needs another, so the
// goroutines' threads keep the process's priority. Raising one's nice
// value needs no privilege; lowering it again would, hence a thread of
// its own rather than a change and a change back around each call.
type engineThread struct {
	calls chan func()
}

// startEngineThread starts the thread with its nice value raised by
// increment (capped at MaxNice). A nil thread (increment ≤ 0, or a system
// other than Linux, where a nice value is the whole process's) runs calls
// on the caller's thread.
func startEngineThread(increment int) (*engineThread, error) {
	if increment <= 0 || !threadPriorities {
		return nil, nil
	}
	t := &engineThread{calls: make(chan func())}
	started := make(chan error, 1)
	go func() {
		// Never unlocked, and the goroutine never returns: the thread
		// is the engine's for the process's life.
		runtime.LockOSThread()
		if err := lowerThreadPriority(increment); err != nil {
			started <- fmt.Errorf("chdbstore: lowering the engine thread's priority: %w", err)
			return
		}
		started <- nil
		for call := range t.calls {
			call()
		}
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return t, nil
}

// do runs f on the thread and returns when it has; on a nil thread, here.
func (t *engineThread) do(f func()) {
	if t == nil {
		f()
		return
	}
	done := make(chan any, 1)
	t.calls <- func() {
		defer func() { done <- recover() }()
		f()
	}
	if p := <-done; p != nil {
		panic(p)
	}
}
