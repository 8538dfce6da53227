package campaign

import (
	"fmt"
	"runtime"
	"slices"
	"sync"

	kafkax "github.com/revoked-dev/revoked/internal/kafka"
)

// builder builds and signs batches of commands, the next batch in the
// background while the current one is being published, and each batch on
// every core: signing is most of a campaign's CPU time.
type builder struct {
	r     *Runner
	st    *State
	batch int
	// skip holds ids of commands published already, which are left out.
	skip    map[string]bool
	pending chan built
	start   int // first target of the pending batch
}

type built struct {
	msgs    []kafkax.Message
	covered int // targets the batch covers, skipped ones included
	err     error
}

func newBuilder(r *Runner, st *State, batch int, skip map[string]bool) *builder {
	return &builder{r: r, st: st, batch: batch, skip: skip}
}

// next returns the signed messages for the batch starting at target start
// and how many targets it covers, and starts building the one after it.
func (b *builder) next(ids []string, start int) ([]kafkax.Message, int, error) {
	var res built
	if b.pending != nil && b.start == start {
		res = <-b.pending
	} else {
		b.stop()
		res = b.build(ids, start)
	}
	b.pending = nil
	if res.err != nil {
		return nil, 0, res.err
	}
	if after := start + res.covered; after < len(ids) {
		ch := make(chan built, 1)
		b.pending, b.start = ch, after
		go func() { ch <- b.build(ids, after) }()
	}
	return res.msgs, res.covered, nil
}

// stop waits for a batch being built in the background and drops it.
func (b *builder) stop() {
	if b.pending != nil {
		<-b.pending
		b.pending = nil
	}
}

func (b *builder) build(ids []string, start int) built {
	n := min(b.batch, len(ids)-start)
	msgs := make([]kafkax.Message, n)
	workers := 1
	if n >= 64 {
		workers = runtime.GOMAXPROCS(0)
	}
	errs := make([]error, workers)
	var wg sync.WaitGroup
	chunk := (n + workers - 1) / workers
	for w := range workers {
		lo, hi := w*chunk, min(n, (w+1)*chunk)
		if lo >= hi {
			continue
		}
		wg.Go(func() {
			for i := lo; i < hi; i++ {
				cmd, err := b.r.command(b.st, b.st.Kind, ids[start+i], b.st.Action, b.st.Summary)
				if err != nil {
					errs[w] = fmt.Errorf("target %d (%q): %w", start+i, ids[start+i], err)
					return
				}
				if b.skip[cmd.CommandID] {
					continue
				}
				if msgs[i], err = b.r.rev.Message(cmd); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return built{err: err}
		}
	}
	if len(b.skip) > 0 {
		msgs = slices.DeleteFunc(msgs, func(m kafkax.Message) bool { return m.Value == nil })
	}
	return built{msgs: msgs, covered: n}
}
