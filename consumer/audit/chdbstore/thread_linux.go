package chdbstore

import "syscall"

// threadPriorities: Linux gives each thread a nice value of its own.
const threadPriorities = true

// lowerThreadPriority raises the calling thread's nice value by increment,
// up to MaxNice. The caller has locked its goroutine to the thread.
func lowerThreadPriority(increment int) error {
	tid := syscall.Gettid()
	// The kernel's getpriority returns 20 - nice, to stay positive.
	cur, err := syscall.Getpriority(syscall.PRIO_PROCESS, tid)
	if err != nil {
		return err
	}
	return syscall.Setpriority(syscall.PRIO_PROCESS, tid, min(20-cur+increment, MaxNice))
}
