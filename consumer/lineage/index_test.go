package lineage

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func sorted(s []string) []string {
	slices.Sort(s)
	return s
}

func TestDescendantsThreeGenerations(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	x := NewIndex(time.Hour, 100, c.now)
	at := c.now()
	// root -> c1 -> g1 -> gg1; root -> c2; other -> o1.
	for _, e := range [][2]string{{"c1", "root"}, {"g1", "c1"}, {"gg1", "g1"}, {"c2", "root"}, {"o1", "other"}} {
		if !x.Add(e[0], e[1], "u1", at) {
			t.Fatalf("%v not kept", e)
		}
	}
	x.Add("v1", "vroot", "u2", at)
	if got, want := sorted(x.Descendants("root")), []string{"c1", "c2", "g1", "gg1"}; !slices.Equal(got, want) {
		t.Fatalf("Descendants(root) = %v, want %v", got, want)
	}
	if got, want := sorted(x.Descendants("g1")), []string{"gg1"}; !slices.Equal(got, want) {
		t.Fatalf("Descendants(g1) = %v, want %v", got, want)
	}
	if got := x.Descendants("gg1"); len(got) != 0 {
		t.Fatalf("Descendants(gg1) = %v", got)
	}
	if got, want := sorted(x.UserTokens("u1")), []string{"c1", "c2", "g1", "gg1", "o1"}; !slices.Equal(got, want) {
		t.Fatalf("UserTokens(u1) = %v, want %v", got, want)
	}
	if got := x.UserTokens("nobody"); len(got) != 0 {
		t.Fatalf("UserTokens(nobody) = %v", got)
	}
	// Re-parenting replaces the old link.
	x.Add("c2", "other", "u1", at)
	if got, want := sorted(x.Descendants("root")), []string{"c1", "g1", "gg1"}; !slices.Equal(got, want) {
		t.Fatalf("after re-parenting, Descendants(root) = %v, want %v", got, want)
	}
}

func TestDescendantsCycleSafe(t *testing.T) {
	x := NewIndex(time.Hour, 100, nil)
	now := time.Now()
	x.Add("b", "a", "u", now)
	x.Add("c", "b", "u", now)
	x.Add("a", "c", "u", now)
	if x.Add("d", "d", "u", now) {
		t.Fatal("a token exchanged from itself was kept")
	}
	if got, want := sorted(x.Descendants("a")), []string{"b", "c"}; !slices.Equal(got, want) {
		t.Fatalf("Descendants(a) = %v, want %v", got, want)
	}
}

func TestEviction(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	x := NewIndex(time.Hour, 100, c.now)
	if x.Add("stale", "p", "u", c.now().Add(-2*time.Hour)) {
		t.Fatal("an exchange past the retention was kept")
	}
	x.Add("old", "p", "u", c.now().Add(-50*time.Minute))
	x.Add("new", "p", "u", c.now())
	c.advance(20 * time.Minute)
	if n := x.Evict(); n != 1 {
		t.Fatalf("Evict = %d, want 1", n)
	}
	if _, ok := x.Lookup("old"); ok {
		t.Fatal("old entry not evicted")
	}
	if got := x.Descendants("p"); !slices.Equal(got, []string{"new"}) {
		t.Fatalf("Descendants(p) = %v", got)
	}
	if got := x.UserTokens("u"); !slices.Equal(got, []string{"new"}) {
		t.Fatalf("UserTokens(u) = %v", got)
	}
	// Adding evicts too, without an explicit Evict.
	c.advance(time.Hour)
	x.Add("newer", "q", "v", c.now())
	if x.Len() != 1 || len(x.UserTokens("u")) != 0 || len(x.Descendants("p")) != 0 {
		t.Fatalf("after the retention: len %d, u %v, p %v", x.Len(), x.UserTokens("u"), x.Descendants("p"))
	}
	if x.Evicted() != 2 {
		t.Fatalf("Evicted = %d, want 2", x.Evicted())
	}
}

func TestCapEvictsOldest(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	x := NewIndex(time.Hour, 3, c.now)
	base := c.now().Add(-30 * time.Minute)
	// Learned out of order: the cap forgets by event time, oldest first.
	for _, i := range []int{2, 0, 4, 1, 3} {
		x.Add(fmt.Sprintf("t%d", i), "root", "u", base.Add(time.Duration(i)*time.Minute))
	}
	if x.Len() != 3 {
		t.Fatalf("Len = %d, want 3", x.Len())
	}
	if got, want := sorted(x.Descendants("root")), []string{"t2", "t3", "t4"}; !slices.Equal(got, want) {
		t.Fatalf("Descendants(root) = %v, want %v", got, want)
	}
}

func TestConcurrentUse(t *testing.T) {
	x := NewIndex(time.Hour, 500, nil)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range 200 {
				parent := "root"
				if i > 0 {
					parent = fmt.Sprintf("w%d-%d", w, i-1)
				}
				x.Add(fmt.Sprintf("w%d-%d", w, i), parent, fmt.Sprintf("u%d", w), time.Now())
			}
		}()
		go func() {
			defer wg.Done()
			for range 200 {
				_ = x.Descendants("root")
				_ = x.UserTokens(fmt.Sprintf("u%d", w))
				x.Evict()
			}
		}()
	}
	wg.Wait()
	if x.Len() != 500 {
		t.Fatalf("Len = %d, want the cap, 500", x.Len())
	}
}
