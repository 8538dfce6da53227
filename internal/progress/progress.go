// Package progress draws a small progress bar for long-running commands:
// count and total, rate and ETA. On a terminal it redraws one line in place;
// elsewhere (a log file, a CI job) it prints a plain line now and then, so
// the output stays readable.
//
// A nil *Bar is valid and does nothing, so callers can pass one around
// without checking whether progress was asked for.
package progress

import (
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/mattn/go-isatty"
)

// Config configures a Bar. The zero value works: it counts "items" with no
// known total and decides between redrawing and plain lines by looking at
// the writer.
type Config struct {
	// Label starts every line, e.g. a file name.
	Label string
	// Total is the count at completion; zero or less means unknown (no
	// percentage and no ETA).
	Total int64
	// Unit follows plain counts ("events"). Ignored when Format is set.
	Unit string
	// Format renders a count, e.g. FormatBytes. Defaults to a compact count
	// with k/M/G suffixes followed by Unit.
	Format func(n int64) string
	// TTY forces redraw-in-place (true) or plain lines (false). Nil means
	// redraw exactly when the writer is a terminal.
	TTY *bool
	// Interval is the least time between two draws. Defaults to 150ms on a
	// terminal and 10s otherwise.
	Interval time.Duration
	// Width is the number of cells of the bar itself. Defaults to 30.
	Width int
	// Now is the clock, for tests. Defaults to time.Now.
	Now func() time.Time
}

// Bar is a progress bar. It is safe for concurrent use.
type Bar struct {
	out      io.Writer
	cfg      Config
	tty      bool
	mu       sync.Mutex
	n        int64
	total    int64
	start    time.Time
	lastDraw time.Time
	drawn    bool
	done     bool
}

// IsTerminal reports whether w is a terminal (a character device that
// answers terminal requests, not /dev/null or a pipe).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	return isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())
}

// New returns a Bar drawing to w. It draws nothing until the first Add or Set.
func New(w io.Writer, cfg Config) *Bar {
	tty := IsTerminal(w)
	if cfg.TTY != nil {
		tty = *cfg.TTY
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 10 * time.Second
		if tty {
			cfg.Interval = 150 * time.Millisecond
		}
	}
	if cfg.Width <= 0 {
		cfg.Width = 30
	}
	if cfg.Format == nil {
		unit := cfg.Unit
		cfg.Format = func(n int64) string { return FormatCount(n, unit) }
	}
	return &Bar{out: w, cfg: cfg, tty: tty, total: cfg.Total, start: cfg.Now()}
}

// Add advances the count by n and redraws if Interval has passed.
func (b *Bar) Add(n int64) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n += n
	b.maybeDraw()
}

// Set sets the count to n and redraws if Interval has passed.
func (b *Bar) Set(n int64) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n = n
	b.maybeDraw()
}

// SetTotal changes the total; zero or less makes it unknown.
func (b *Bar) SetTotal(total int64) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.total = total
}

// Count is the current count.
func (b *Bar) Count() int64 {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n
}

// Finish draws the final state and, on a terminal, ends the line. Later
// calls to Add, Set and Finish draw nothing.
func (b *Bar) Finish() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return
	}
	b.draw(b.cfg.Now())
	if b.tty {
		_, _ = io.WriteString(b.out, "\n")
	}
	b.done = true
}

func (b *Bar) maybeDraw() {
	if b.done {
		return
	}
	now := b.cfg.Now()
	if b.drawn && now.Sub(b.lastDraw) < b.cfg.Interval {
		return
	}
	b.draw(now)
}

func (b *Bar) draw(now time.Time) {
	b.lastDraw, b.drawn = now, true
	line := b.render(now)
	if b.tty {
		// Carriage return, the line, then erase whatever a longer previous
		// line left behind.
		_, _ = io.WriteString(b.out, "\r"+line+"\x1b[K")
		return
	}
	_, _ = io.WriteString(b.out, line+"\n")
}

// render formats one line: label, bar, count/total, percentage, rate, ETA.
func (b *Bar) render(now time.Time) string {
	var sb strings.Builder
	if b.cfg.Label != "" {
		sb.WriteString(b.cfg.Label)
		sb.WriteString(" ")
	}
	elapsed := now.Sub(b.start)
	rate := 0.0
	if elapsed > 0 {
		rate = float64(b.n) / elapsed.Seconds()
	}
	if b.total > 0 {
		frac := math.Min(float64(b.n)/float64(b.total), 1)
		if frac < 0 {
			frac = 0
		}
		full := int(frac * float64(b.cfg.Width))
		sb.WriteString("[")
		sb.WriteString(strings.Repeat("=", full))
		if full < b.cfg.Width {
			sb.WriteString(">")
			sb.WriteString(strings.Repeat(" ", b.cfg.Width-full-1))
		}
		sb.WriteString("] ")
		fmt.Fprintf(&sb, "%s / %s %5.1f%%", b.cfg.Format(b.n), b.cfg.Format(b.total), frac*100)
	} else {
		sb.WriteString(b.cfg.Format(b.n))
	}
	fmt.Fprintf(&sb, "  %s/s", b.cfg.Format(int64(math.Round(rate))))
	switch {
	case b.total > 0 && b.n >= b.total:
		fmt.Fprintf(&sb, "  done in %s", FormatDuration(elapsed))
	case b.total > 0 && rate > 0:
		eta := time.Duration(float64(b.total-b.n) / rate * float64(time.Second))
		fmt.Fprintf(&sb, "  ETA %s", FormatDuration(eta))
	default:
		fmt.Fprintf(&sb, "  %s", FormatDuration(elapsed))
	}
	return sb.String()
}

// FormatCount renders n compactly (950, 12.3k, 4.56M, 7.89G) followed by unit.
func FormatCount(n int64, unit string) string {
	var s string
	f := float64(n)
	switch a := math.Abs(f); {
	case a >= 1e9:
		s = fmt.Sprintf("%.2fG", f/1e9)
	case a >= 1e6:
		s = fmt.Sprintf("%.2fM", f/1e6)
	case a >= 1e4:
		s = fmt.Sprintf("%.1fk", f/1e3)
	default:
		s = fmt.Sprintf("%d", n)
	}
	if unit != "" {
		s += " " + unit
	}
	return s
}

// FormatBytes renders n in binary units (512 B, 1.5 KiB, 12.0 MiB, 3.25 GiB).
func FormatBytes(n int64) string {
	f := float64(n)
	switch a := math.Abs(f); {
	case a >= 1<<30:
		return fmt.Sprintf("%.2f GiB", f/(1<<30))
	case a >= 1<<20:
		return fmt.Sprintf("%.1f MiB", f/(1<<20))
	case a >= 1<<10:
		return fmt.Sprintf("%.1f KiB", f/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// FormatDuration renders d as h:mm:ss, or m:ss under an hour.
func FormatDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int64(d.Round(time.Second) / time.Second)
	h, m, sec := s/3600, s/60%60, s%60
	if h > 0 {
		return fmt.Sprintf("%d:%02d:%02d", h, m, sec)
	}
	return fmt.Sprintf("%d:%02d", m, sec)
}
