package server

import (
	"cmp"
	"container/heap"
	"errors"
	"slices"
	"sync"
	"time"
)

// sweepBatch bounds how many expired tokens one write prunes, so that no
// single request pays for a large expiry wave.
const sweepBatch = 256

var (
	errInactive  = errors.New("token is unknown, expired or revoked")
	errCollision = errors.New("token id collision")
	// errReverify refuses a token for a subject that must verify again.
	errReverify = errors.New("re-verification required")
)

// token is what the server remembers of an access token. It never holds the
// raw token, only its fingerprint.
type token struct {
	id        string
	subject   string
	clientID  string
	sessionID string
	scopes    []string
	audience  []string
	parent    string
	children  map[string]struct{}
	issuedAt  time.Time
	expiresAt time.Time
	revoked   bool
}

func (t *token) live(now time.Time) bool { return !t.revoked && now.Before(t.expiresAt) }

// tokenView is a copy of a token's fields, safe to use after the lock is
// released.
type tokenView struct {
	ID        string
	Subject   string
	ClientID  string
	SessionID string
	Scopes    []string
	Audience  []string
	Parent    string
	IssuedAt  time.Time
	ExpiresAt time.Time
	Revoked   bool
}

func (t *token) view() tokenView {
	return tokenView{
		ID:        t.id,
		Subject:   t.subject,
		ClientID:  t.clientID,
		SessionID: t.sessionID,
		Scopes:    slices.Clone(t.scopes),
		Audience:  slices.Clone(t.audience),
		Parent:    t.parent,
		IssuedAt:  t.issuedAt,
		ExpiresAt: t.expiresAt,
		Revoked:   t.revoked,
	}
}

// index maps a key (subject, session or client id) to the ids of the
// unrevoked tokens under it.
type index map[string]map[string]struct{}

func (ix index) add(key, id string) {
	if key == "" {
		return
	}
	set := ix[key]
	if set == nil {
		set = make(map[string]struct{})
		ix[key] = set
	}
	set[id] = struct{}{}
}

func (ix index) remove(key, id string) {
	set := ix[key]
	if set == nil {
		return
	}
	delete(set, id)
	if len(set) == 0 {
		delete(ix, key)
	}
}

// store holds every known token. All fields are guarded by mu.
//
// Invariants: a token is in the subject, session and client indexes exactly
// while it is stored and not revoked; every descendant of a revoked token is
// revoked (revocation cascades, and a revoked token cannot be exchanged);
// a child never outlives its parent; a subject in reverify has no live
// token (requiring re-verification revokes them, and no token is issued or
// exchanged for the subject until it is cleared).
type store struct {
	mu        sync.RWMutex
	tokens    map[string]*token
	bySubject index
	bySession index
	byClient  index
	expiry    expiryHeap
	// reverify holds the subjects that must verify again before they get
	// a token, with the moment that was first required. It lives in
	// memory like the tokens; entries stay until cleared.
	reverify map[string]time.Time
}

func newStore() *store {
	return &store{
		tokens:    make(map[string]*token),
		bySubject: make(index),
		bySession: make(index),
		byClient:  make(index),
		reverify:  make(map[string]time.Time),
	}
}

// insertLocked adds t and links it to its parent. mu must be held for writing.
func (s *store) insertLocked(t *token) error {
	if _, dup := s.tokens[t.id]; dup {
		return errCollision
	}
	s.tokens[t.id] = t
	s.bySubject.add(t.subject, t.id)
	s.bySession.add(t.sessionID, t.id)
	s.byClient.add(t.clientID, t.id)
	if p := s.tokens[t.parent]; p != nil {
		if p.children == nil {
			p.children = make(map[string]struct{})
		}
		p.children[t.id] = struct{}{}
	}
	heap.Push(&s.expiry, expiryEntry{at: t.expiresAt.UnixNano(), id: t.id})
	return nil
}

func (s *store) unindexLocked(t *token) {
	s.bySubject.remove(t.subject, t.id)
	s.bySession.remove(t.sessionID, t.id)
	s.byClient.remove(t.clientID, t.id)
}

// issue stores a new root token, unless its subject must verify again
// (errReverify).
func (s *store) issue(t *token, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(now, sweepBatch)
	if _, wait := s.reverify[t.subject]; wait {
		return errReverify
	}
	return s.insertLocked(t)
}

// exchange looks up the live parent and stores the child that derive builds
// from it, atomically: the parent cannot be revoked in between. derive sees a
// copy of the parent and returns the child or an error that is passed
// through.
func (s *store) exchange(parentID string, now time.Time, derive func(parent tokenView) (*token, error)) (*token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(now, sweepBatch)
	p := s.tokens[parentID]
	if p == nil || !p.live(now) {
		return nil, errInactive
	}
	if _, wait := s.reverify[p.subject]; wait {
		return nil, errReverify
	}
	child, err := derive(p.view())
	if err != nil {
		return nil, err
	}
	child.parent = p.id
	if err := s.insertLocked(child); err != nil {
		return nil, err
	}
	return child, nil
}

// lookup returns a copy of the token with the given id.
func (s *store) lookup(id string) (tokenView, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t := s.tokens[id]
	if t == nil {
		return tokenView{}, false
	}
	return t.view(), true
}

// revokeFamily revokes the token and all its descendants and returns how
// many of them were live.
func (s *store) revokeFamily(id string, now time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.revokeFamilyLocked(id, now)
	s.sweepLocked(now, sweepBatch)
	return n
}

func (s *store) revokeFamilyLocked(id string, now time.Time) int {
	n := 0
	stack := []string{id}
	for len(stack) > 0 {
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		t := s.tokens[id]
		if t == nil || t.revoked {
			// A revoked token's descendants are revoked already.
			continue
		}
		if now.Before(t.expiresAt) {
			n++
		}
		t.revoked = true
		s.unindexLocked(t)
		for c := range t.children {
			stack = append(stack, c)
		}
	}
	return n
}

type indexKind int

const (
	bySubject indexKind = iota
	bySession
	byClient
)

func (s *store) indexLocked(k indexKind) index {
	switch k {
	case bySession:
		return s.bySession
	case byClient:
		return s.byClient
	default:
		return s.bySubject
	}
}

// revokeIndexed revokes every token under key in the given index, with
// descendants, and returns how many were live.
func (s *store) revokeIndexed(k indexKind, key string, now time.Time) int {
	if key == "" {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	set := s.indexLocked(k)[key]
	ids := make([]string, 0, len(set))
	for id := range set {
		ids = append(ids, id)
	}
	n := 0
	for _, id := range ids {
		n += s.revokeFamilyLocked(id, now)
	}
	s.sweepLocked(now, sweepBatch)
	return n
}

// requireReverification makes the subject verify again before it gets
// another token, and revokes its live tokens (with descendants) in the
// same step, so no token issued before this call outlives it. It returns
// how many tokens were live, and when re-verification was first required
// (now, unless it already was and is not yet cleared).
func (s *store) requireReverification(subject string, now time.Time) (revoked int, since time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	since, ok := s.reverify[subject]
	if !ok {
		since = now
		s.reverify[subject] = since
	}
	set := s.bySubject[subject]
	ids := make([]string, 0, len(set))
	for id := range set {
		ids = append(ids, id)
	}
	for _, id := range ids {
		revoked += s.revokeFamilyLocked(id, now)
	}
	s.sweepLocked(now, sweepBatch)
	return revoked, since
}

// reverified clears the subject's re-verification and reports whether one
// was required.
func (s *store) reverified(subject string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.reverify[subject]
	delete(s.reverify, subject)
	return ok
}

// reverification returns when the subject was first required to verify
// again, and whether it still is.
func (s *store) reverification(subject string) (time.Time, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	since, ok := s.reverify[subject]
	return since, ok
}

// awaitingReverification is how many subjects must verify again.
func (s *store) awaitingReverification() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.reverify)
}

// listSubject returns the subject's live tokens ordered by issue time.
func (s *store) listSubject(subject string, now time.Time) []tokenView {
	s.mu.RLock()
	defer s.mu.RUnlock()
	set := s.bySubject[subject]
	out := make([]tokenView, 0, len(set))
	for id := range set {
		if t := s.tokens[id]; t != nil && t.live(now) {
			out = append(out, t.view())
		}
	}
	slices.SortFunc(out, func(a, b tokenView) int {
		if c := a.IssuedAt.Compare(b.IssuedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out
}

// size returns how many tokens are stored, revoked and expired ones not yet
// pruned included.
func (s *store) size() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.tokens)
}

// sweepLocked forgets at most limit tokens that expired before now.
func (s *store) sweepLocked(now time.Time, limit int) {
	cutoff := now.UnixNano()
	for i := 0; i < limit && len(s.expiry) > 0 && s.expiry[0].at <= cutoff; i++ {
		e := heap.Pop(&s.expiry).(expiryEntry)
		t := s.tokens[e.id]
		if t == nil {
			continue
		}
		s.unindexLocked(t)
		if p := s.tokens[t.parent]; p != nil {
			delete(p.children, t.id)
		}
		delete(s.tokens, t.id)
	}
}

type expiryEntry struct {
	at int64 // unix nanoseconds
	id string
}

// expiryHeap is a min-heap of tokens by expiry time.
type expiryHeap []expiryEntry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiryEntry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = expiryEntry{}
	*h = old[:len(old)-1]
	return e
}
