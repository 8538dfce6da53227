package progress

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestPlainLinesAreThrottled(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	var out bytes.Buffer
	tty := false
	b := New(&out, Config{Label: "events.jsonl", Total: 1000, Unit: "events", TTY: &tty, Interval: 10 * time.Second, Now: clk.Now})
	for range 11 {
		clk.Advance(time.Second)
		b.Add(50)
	}
	clk.Advance(4 * time.Second)
	b.Add(450)
	b.Finish()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	// The first Add draws (second 1), then second 11, then Finish.
	if len(lines) != 3 {
		t.Fatalf("want 3 lines, got %d:\n%s", len(lines), out.String())
	}
	if strings.Contains(out.String(), "\r") || strings.Contains(out.String(), "\x1b") {
		t.Errorf("plain output must not contain terminal control characters: %q", out.String())
	}
	last := lines[len(lines)-1]
	for _, want := range []string{"events.jsonl", "1000 events / 1000 events", "100.0%", "done in 0:15"} {
		if !strings.Contains(last, want) {
			t.Errorf("last line %q lacks %q", last, want)
		}
	}
	if !strings.Contains(lines[1], "ETA 0:09") {
		t.Errorf("second line %q: want ETA 0:09 (550 of 1000 at 50/s)", lines[1])
	}
}

func TestTTYRedrawsInPlace(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	var out bytes.Buffer
	tty := true
	b := New(&out, Config{Format: FormatBytes, TTY: &tty, Now: clk.Now})
	b.Add(2048)
	clk.Advance(time.Second)
	b.Add(2048)
	b.Finish()
	s := out.String()
	if strings.Count(s, "\r") != 3 || !strings.HasSuffix(s, "\n") {
		t.Fatalf("want three redraws and a final newline, got %q", s)
	}
	if !strings.Contains(s, "4.0 KiB") || !strings.Contains(s, "4.0 KiB/s") {
		t.Errorf("want byte formatting, got %q", s)
	}
	b.Add(1)
	if out.String() != s {
		t.Error("a finished bar must not draw")
	}
}

func TestNilBarIsNoop(t *testing.T) {
	var b *Bar
	b.Add(1)
	b.Set(2)
	b.SetTotal(3)
	b.Finish()
	if b.Count() != 0 {
		t.Fatal("nil bar counts nothing")
	}
}

func TestIsTerminalOnBuffer(t *testing.T) {
	if IsTerminal(&bytes.Buffer{}) {
		t.Fatal("a buffer is not a terminal")
	}
}

func TestFormat(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{FormatCount(950, ""), "950"},
		{FormatCount(12345, "ev"), "12.3k ev"},
		{FormatCount(4_560_000, ""), "4.56M"},
		{FormatBytes(512), "512 B"},
		{FormatBytes(3 << 20), "3.0 MiB"},
		{FormatDuration(3723 * time.Second), "1:02:03"},
		{FormatDuration(59 * time.Second), "0:59"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}
