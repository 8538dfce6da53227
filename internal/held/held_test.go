package held_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/revoked-dev/revoked/internal/held"
)

// memSource is a Source over a map, deciding the way every Source does.
type memSource struct {
	by   string
	cmds map[string]held.Held
	err  error
}

func (m *memSource) List(_ context.Context, all bool, _ int) ([]held.Held, error) {
	if m.err != nil {
		return nil, m.err
	}
	var out []held.Held
	for _, h := range m.cmds {
		if all || h.State == held.Pending {
			out = append(out, h)
		}
	}
	return out, nil
}

func (m *memSource) Get(_ context.Context, id string) (held.Held, error) {
	if h, ok := m.cmds[id]; ok {
		return h, nil
	}
	return held.Held{}, held.ErrNotHeld
}

func (m *memSource) decide(id, by string, to held.State) (held.Held, error) {
	h, ok := m.cmds[id]
	switch {
	case !ok:
		return held.Held{}, held.ErrNotHeld
	case h.State == to:
		return h, nil
	case h.State != held.Pending:
		return h, held.ErrDecided
	}
	h.State, h.Decision = to, &held.Decision{By: by}
	m.cmds[id] = h
	return h, nil
}

func (m *memSource) Approve(_ context.Context, id, by, _ string) (held.Held, error) {
	return m.decide(id, by, held.Approved)
}

func (m *memSource) Reject(_ context.Context, id, by, _ string) (held.Held, error) {
	return m.decide(id, by, held.Rejected)
}

// Sources lists every component's held commands newest first, decides a
// command where it is still pending (a command the detector held, approved
// and then the consumer held again is decided at the consumer), and
// fails a list when any source fails rather than hide its commands.
func TestSources(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	det := &memSource{by: held.ByDetector, cmds: map[string]held.Held{
		"a": {CommandID: "a", HeldBy: held.ByDetector, State: held.Approved, HeldAt: t0},
		"b": {CommandID: "b", HeldBy: held.ByDetector, State: held.Pending, HeldAt: t0.Add(2 * time.Second)},
	}}
	con := &memSource{by: held.ByConsumer, cmds: map[string]held.Held{
		"a": {CommandID: "a", HeldBy: held.ByConsumer, State: held.Pending, HeldAt: t0.Add(time.Second)},
	}}
	ss := held.Sources{det, con}
	ctx := context.Background()

	list, err := ss.List(ctx, false, 0)
	if err != nil || len(list) != 2 || list[0].CommandID != "b" || list[1].CommandID != "a" || list[1].HeldBy != held.ByConsumer {
		t.Fatalf("pending: %+v, %v", list, err)
	}
	if all, err := ss.List(ctx, true, 2); err != nil || len(all) != 2 {
		t.Errorf("all, limited to 2: %d, %v", len(all), err)
	}
	h, err := ss.Approve(ctx, "a", "alice", "")
	if err != nil || h.HeldBy != held.ByConsumer || h.State != held.Approved {
		t.Errorf("approving a: %+v, %v", h, err)
	}
	if _, err := ss.Reject(ctx, "a", "bob", ""); !errors.Is(err, held.ErrDecided) {
		t.Errorf("rejecting a, approved at both: %v", err)
	}
	if _, err := ss.Approve(ctx, "zz", "alice", ""); !errors.Is(err, held.ErrNotHeld) {
		t.Errorf("approving a command nobody held: %v", err)
	}
	con.err = errors.New("store down")
	if _, err := ss.List(ctx, false, 0); err == nil {
		t.Error("a list with one source down: no error")
	}
}
