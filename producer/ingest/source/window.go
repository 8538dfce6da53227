package source

import "sync"

// Window remembers the ids of the last records published, up to a bound,
// forgetting the oldest first. A stream that delivers a record more than
// once (Box's admin_logs_streaming is at least once; webhooks are retried)
// delivers it again soon after, so a window of recent ids catches the
// copies without growing with the stream. It is safe for concurrent use.
type Window struct {
	mu  sync.Mutex
	max int
	ids []string // a ring of up to max ids; head is the oldest
	at  int      // index of the oldest id once the ring is full
	set map[string]struct{}
}

// NewWindow returns a window of up to limit ids (at least 1) holding ids,
// oldest first; beyond the limit, the oldest of ids are forgotten.
func NewWindow(limit int, ids []string) *Window {
	limit = max(limit, 1)
	w := &Window{max: limit, set: make(map[string]struct{}, min(len(ids), limit))}
	for _, id := range ids {
		w.add(id)
	}
	return w
}

// Contains reports whether id is in the window.
func (w *Window) Contains(id string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.set[id]
	return ok
}

// Add puts id in the window (once), forgetting the oldest id when full.
func (w *Window) Add(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.add(id)
}

func (w *Window) add(id string) {
	if _, ok := w.set[id]; ok {
		return
	}
	w.set[id] = struct{}{}
	if len(w.ids) < w.max {
		w.ids = append(w.ids, id)
		return
	}
	delete(w.set, w.ids[w.at])
	w.ids[w.at] = id
	w.at = (w.at + 1) % w.max
}

// Len is the number of ids in the window.
func (w *Window) Len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.ids)
}

// IDs returns the ids in the window, oldest first.
func (w *Window) IDs() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]string, 0, len(w.ids))
	out = append(out, w.ids[w.at:]...)
	return append(out, w.ids[:w.at]...)
}
