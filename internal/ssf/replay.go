package ssf

import (
	"container/heap"
	"crypto/sha256"
	"errors"
	"sync"
	"time"
)

// ErrReplayFull means the replay index holds its maximum of unexpired
// entries: refusing the JWT is safer than forgetting one.
var ErrReplayFull = errors.New("replay index full")

// Replay remembers the jti of JWTs already accepted until each can no
// longer be accepted anyway (its expiry, or the end of the freshness
// window), so a second use is recognised. It keeps a digest of each JWT:
// the same JWT again is a redelivery, another JWT with the same jti a
// replay or a transmitter's error. It holds at most max entries. It is
// safe for concurrent use. The index lives in memory: after a restart a
// SET already accepted is accepted again, which the pipeline absorbs
// (its AuditEvents and commands have ids derived from the jti).
type Replay struct {
	mu   sync.Mutex
	max  int
	seen map[string]*replayItem
	exp  replayHeap
}

type replayItem struct {
	key    string
	digest [32]byte
	until  time.Time
	index  int
}

// NewReplay returns an index of at most limit entries.
func NewReplay(limit int) *Replay {
	return &Replay{max: limit, seen: map[string]*replayItem{}}
}

// Digest is the digest Replay keeps of a JWT.
func Digest(jwt string) [32]byte { return sha256.Sum256([]byte(jwt)) }

// Seen reports whether key was accepted before and not yet expired at
// now, and whether with the same digest.
func (r *Replay) Seen(key string, digest [32]byte, now time.Time) (seen, same bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.prune(now)
	it, ok := r.seen[key]
	if !ok {
		return false, false
	}
	return true, it.digest == digest
}

// Add remembers key until until. It returns ErrReplayFull when the
// index is full of unexpired entries. Adding a known key again keeps the
// later expiry.
func (r *Replay) Add(key string, digest [32]byte, until, now time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.prune(now)
	if it, ok := r.seen[key]; ok {
		if until.After(it.until) {
			it.until = until
			heap.Fix(&r.exp, it.index)
		}
		return nil
	}
	if len(r.seen) >= r.max {
		return ErrReplayFull
	}
	it := &replayItem{key: key, digest: digest, until: until}
	r.seen[key] = it
	heap.Push(&r.exp, it)
	return nil
}

// Len is how many entries are held.
func (r *Replay) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}

func (r *Replay) prune(now time.Time) {
	for len(r.exp) > 0 && !r.exp[0].until.After(now) {
		it := heap.Pop(&r.exp).(*replayItem)
		delete(r.seen, it.key)
	}
}

type replayHeap []*replayItem

func (h replayHeap) Len() int           { return len(h) }
func (h replayHeap) Less(i, j int) bool { return h[i].until.Before(h[j].until) }
func (h replayHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *replayHeap) Push(x any) {
	it := x.(*replayItem)
	it.index = len(*h)
	*h = append(*h, it)
}
func (h *replayHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return it
}
