// Package lineage keeps an in-memory index of downscoped tokens learned
// from token.exchanged events: which token each child was exchanged from,
// and whose it is. No IdP exposes that lineage, so the consumer follows
// audit.events itself and consults the index when a command asks for a
// token's or a user's downscoped descendants too.
package lineage

import (
	"container/heap"
	"sync"
	"time"
)

// DefaultRetention is how long an exchange is remembered: the longest
// token lifetime worth caring about.
const DefaultRetention = 24 * time.Hour

// DefaultMaxEntries bounds the index when no cap is configured.
const DefaultMaxEntries = 1_000_000

// Entry is what the index knows about one downscoped token.
type Entry struct {
	TokenID       string
	ParentTokenID string
	UserID        string
	// LearnedAt is the time of the token.exchanged event.
	LearnedAt time.Time
}

type item struct {
	Entry
	pos int // index in the age heap
}

// Index maps child token ids to their parents and users. It forgets
// entries older than its retention and, beyond its cap, the oldest ones.
// It is safe for concurrent use.
type Index struct {
	retention time.Duration
	max       int
	now       func() time.Time

	mu       sync.RWMutex
	byToken  map[string]*item
	children map[string]map[string]struct{}
	byUser   map[string]map[string]struct{}
	age      ageHeap
	evicted  uint64
}

// NewIndex returns an empty index. retention <= 0 means DefaultRetention,
// maxEntries <= 0 DefaultMaxEntries; now nil means time.Now.
func NewIndex(retention time.Duration, maxEntries int, now func() time.Time) *Index {
	if retention <= 0 {
		retention = DefaultRetention
	}
	if maxEntries <= 0 {
		maxEntries = DefaultMaxEntries
	}
	if now == nil {
		now = time.Now
	}
	return &Index{
		retention: retention, max: maxEntries, now: now,
		byToken:  map[string]*item{},
		children: map[string]map[string]struct{}{},
		byUser:   map[string]map[string]struct{}{},
	}
}

// Add records that tokenID was exchanged from parentTokenID for userID at
// at. It reports whether the entry was kept: one without a token or
// parent id, exchanged from itself, or already past the retention is not.
// Adding a token again replaces what was known about it.
func (x *Index) Add(tokenID, parentTokenID, userID string, at time.Time) bool {
	if tokenID == "" || parentTokenID == "" || tokenID == parentTokenID {
		return false
	}
	cutoff := x.now().Add(-x.retention)
	if at.Before(cutoff) {
		return false
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if old, ok := x.byToken[tokenID]; ok {
		x.unlink(old)
		heap.Remove(&x.age, old.pos)
	}
	it := &item{Entry: Entry{TokenID: tokenID, ParentTokenID: parentTokenID, UserID: userID, LearnedAt: at}}
	x.byToken[tokenID] = it
	link(x.children, parentTokenID, tokenID)
	if userID != "" {
		link(x.byUser, userID, tokenID)
	}
	heap.Push(&x.age, it)
	x.evictLocked(cutoff)
	return true
}

// Evict forgets the entries past the retention and reports how many.
func (x *Index) Evict() int {
	cutoff := x.now().Add(-x.retention)
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.evictLocked(cutoff)
}

func (x *Index) evictLocked(cutoff time.Time) int {
	n := 0
	for len(x.age) > 0 && (len(x.age) > x.max || x.age[0].LearnedAt.Before(cutoff)) {
		it := heap.Pop(&x.age).(*item)
		x.unlink(it)
		delete(x.byToken, it.TokenID)
		n++
	}
	x.evicted += uint64(n)
	return n
}

func (x *Index) unlink(it *item) {
	unlink(x.children, it.ParentTokenID, it.TokenID)
	if it.UserID != "" {
		unlink(x.byUser, it.UserID, it.TokenID)
	}
}

func link(m map[string]map[string]struct{}, k, v string) {
	s := m[k]
	if s == nil {
		s = map[string]struct{}{}
		m[k] = s
	}
	s[v] = struct{}{}
}

func unlink(m map[string]map[string]struct{}, k, v string) {
	s := m[k]
	delete(s, v)
	if len(s) == 0 {
		delete(m, k)
	}
}

// Descendants returns every token known to descend from tokenID, any
// number of generations down, children before grandchildren. tokenID
// itself is not among them, even where the learned lineage has a cycle.
func (x *Index) Descendants(tokenID string) []string {
	x.mu.RLock()
	defer x.mu.RUnlock()
	var out []string
	seen := map[string]bool{tokenID: true}
	queue := []string{tokenID}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for c := range x.children[p] {
			if seen[c] {
				continue
			}
			seen[c] = true
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// UserTokens returns the downscoped tokens known to belong to userID.
func (x *Index) UserTokens(userID string) []string {
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := make([]string, 0, len(x.byUser[userID]))
	for t := range x.byUser[userID] {
		out = append(out, t)
	}
	return out
}

// Lookup returns what the index knows about tokenID.
func (x *Index) Lookup(tokenID string) (Entry, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	it, ok := x.byToken[tokenID]
	if !ok {
		return Entry{}, false
	}
	return it.Entry, true
}

// Len is the number of entries.
func (x *Index) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.byToken)
}

// Evicted is how many entries were forgotten so far, by age or the cap.
func (x *Index) Evicted() uint64 {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.evicted
}

// ageHeap orders entries oldest first.
type ageHeap []*item

func (h ageHeap) Len() int           { return len(h) }
func (h ageHeap) Less(i, j int) bool { return h[i].LearnedAt.Before(h[j].LearnedAt) }
func (h ageHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].pos, h[j].pos = i, j
}
func (h *ageHeap) Push(v any) {
	it := v.(*item)
	it.pos = len(*h)
	*h = append(*h, it)
}
func (h *ageHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return it
}
