//go:build !linux

package chdbstore

// threadPriorities: elsewhere a nice value is the whole process's, so the
// engine runs at the process's priority.
const threadPriorities = false

func lowerThreadPriority(int) error { return nil }
