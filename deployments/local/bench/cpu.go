package bench

import (
	"syscall"
	"time"
)

// cpuMeter measures how many cores the process used over a span of wall
// time: the user and system CPU time of all its threads (Go's, and
// chDB's) over the span's length.
type cpuMeter struct {
	wall  time.Time
	cpu   time.Duration
	ok    bool
	done  bool
	cores float64 // set by stop; 0 when the CPU time could not be read
}

func startCPU() *cpuMeter {
	cpu, ok := processCPU()
	return &cpuMeter{wall: time.Now(), cpu: cpu, ok: ok}
}

// stop ends the span; only the first call counts.
func (m *cpuMeter) stop() {
	if m.done {
		return
	}
	m.done = true
	cpu, ok := processCPU()
	if d := time.Since(m.wall); ok && m.ok && d > 0 {
		m.cores = (cpu - m.cpu).Seconds() / d.Seconds()
	}
}

// processCPU is the user and system CPU time the process has used.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
