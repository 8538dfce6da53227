package transmitter

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/revoked-dev/revoked/internal/ssf"
)

// errQueueClosed is what a SET waiting in a poll queue gets when its
// stream stops (paused, deleted, switched to push, shutdown): its
// revocation's message stays uncommitted and is read again.
var errQueueClosed = errors.New("the stream's poll queue closed before the SET was acknowledged")

// pollResult is what became of a SET a poll served: acknowledged, or
// reported in setErrs.
type pollResult struct {
	acked bool
	err   ssf.ErrorBody
}

// pollItem is one SET waiting to be polled and acknowledged.
type pollItem struct {
	jti    string
	set    string
	served time.Time // zero: not served yet
	// waiters hear the result; a SET enqueued again while it waits (its
	// message read again after a restart of the stream's reader) adds
	// one.
	waiters []chan pollResult
}

// pollQueue holds a poll stream's SETs until the receiver acknowledges
// them (RFC 8936). A SET a poll returned is not returned again for
// redeliverAfter, unless acknowledged; after that a poll returns it again
// (the receiver may have lost the answer). It is safe for concurrent use.
type pollQueue struct {
	clock          clockwork.Clock
	redeliverAfter time.Duration

	mu     sync.Mutex
	items  []*pollItem // in the order enqueued
	byJTI  map[string]*pollItem
	more   chan struct{} // closed when a SET is enqueued
	closed bool
}

func newPollQueue(clock clockwork.Clock, redeliverAfter time.Duration) *pollQueue {
	return &pollQueue{clock: clock, redeliverAfter: redeliverAfter, byJTI: map[string]*pollItem{}, more: make(chan struct{})}
}

// enqueue adds a SET; the returned channel gets its result (nil for a
// SET nobody waits for, such as a verification event). An enqueue on a
// closed queue returns errQueueClosed.
func (q *pollQueue) enqueue(jti, set string, wait bool) (<-chan pollResult, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil, errQueueClosed
	}
	var ch chan pollResult
	if wait {
		ch = make(chan pollResult, 1)
	}
	if it, ok := q.byJTI[jti]; ok {
		if ch != nil {
			it.waiters = append(it.waiters, ch)
		}
		return ch, nil
	}
	it := &pollItem{jti: jti, set: set}
	if ch != nil {
		it.waiters = append(it.waiters, ch)
	}
	q.items = append(q.items, it)
	q.byJTI[jti] = it
	close(q.more)
	q.more = make(chan struct{})
	return ch, nil
}

// PollRequest is the body of a poll (RFC 8936 section 2.4).
type PollRequest struct {
	MaxEvents         *int                     `json:"maxEvents,omitempty"`
	ReturnImmediately bool                     `json:"returnImmediately,omitempty"`
	Ack               []string                 `json:"ack,omitempty"`
	SetErrs           map[string]ssf.ErrorBody `json:"setErrs,omitempty"`
}

// PollResponse is the answer to a poll (RFC 8936 section 2.5).
type PollResponse struct {
	Sets          map[string]string `json:"sets"`
	MoreAvailable bool              `json:"moreAvailable,omitempty"`
}

// settle applies a poll's acknowledgements and errors: each SET named
// leaves the queue and its waiters hear of it. Unknown jti values are
// ignored (an acknowledgement repeated after a restart, say). It returns
// how many it settled.
func (q *pollQueue) settle(ack []string, errs map[string]ssf.ErrorBody) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	finish := func(jti string, r pollResult) {
		it, ok := q.byJTI[jti]
		if !ok {
			return
		}
		delete(q.byJTI, jti)
		for _, w := range it.waiters {
			w <- r
		}
		it.waiters = nil
		n++
	}
	for _, jti := range ack {
		finish(jti, pollResult{acked: true})
	}
	for jti, e := range errs {
		finish(jti, pollResult{err: e})
	}
	if n > 0 {
		kept := q.items[:0]
		for _, it := range q.items {
			if _, ok := q.byJTI[it.jti]; ok {
				kept = append(kept, it)
			}
		}
		clear(q.items[len(kept):])
		q.items = kept
	}
	return n
}

// take returns up to limit SETs due for serving (never served, or served
// longer than redeliverAfter ago), oldest first, marks them served, and
// says whether more are due. It also returns a channel closed when a SET
// is enqueued, for a long poll that found none.
func (q *pollQueue) take(limit int) (sets map[string]string, more bool, next <-chan struct{}) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return map[string]string{}, false, nil
	}
	now := q.clock.Now()
	sets = map[string]string{}
	for _, it := range q.items {
		if !it.served.IsZero() && now.Sub(it.served) < q.redeliverAfter {
			continue
		}
		if len(sets) == limit {
			more = true
			break
		}
		it.served = now
		sets[it.jti] = it.set
	}
	return sets, more, q.more
}

// poll serves one RFC 8936 poll: acknowledgements and errors first, then
// SETs. Without returnImmediately and with nothing to return it waits up
// to wait for a SET (a long poll), or until ctx ends.
func (q *pollQueue) poll(ctx context.Context, req PollRequest, maxDefault int, wait time.Duration) PollResponse {
	q.settle(req.Ack, req.SetErrs)
	limit := maxDefault
	if req.MaxEvents != nil {
		limit = min(*req.MaxEvents, maxDefault)
	}
	if limit <= 0 {
		// maxEvents 0: an acknowledge-only request.
		return PollResponse{Sets: map[string]string{}}
	}
	var timeout <-chan time.Time
	for {
		sets, more, next := q.take(limit)
		if len(sets) > 0 || req.ReturnImmediately || wait <= 0 || next == nil {
			return PollResponse{Sets: sets, MoreAvailable: more}
		}
		if timeout == nil {
			t := q.clock.NewTimer(wait)
			defer t.Stop()
			timeout = t.Chan()
		}
		select {
		case <-next:
		case <-timeout:
			return PollResponse{Sets: map[string]string{}}
		case <-ctx.Done():
			return PollResponse{Sets: map[string]string{}}
		}
	}
}

// outstanding is how many SETs wait for an acknowledgement.
func (q *pollQueue) outstanding() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// close ends the queue: every waiter hears errQueueClosed (as a closed
// channel) and later enqueues fail.
func (q *pollQueue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	q.closed = true
	for _, it := range q.items {
		for _, w := range it.waiters {
			close(w)
		}
	}
	q.items, q.byJTI = nil, map[string]*pollItem{}
	close(q.more)
}
