package service

import (
	"fmt"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/detector/state"
	"github.com/revoked-dev/revoked/schemas"
)

// TestEngineGuard runs events from several goroutines through one guard,
// with a restore-like caller taking the engine now and then: each call
// gets the result of its own event, the work runs one event at a time
// (never while the other caller holds the engine) and, per goroutine, in
// the order given; an event the work panics on panics its caller (whose
// reader dead-letters it) with the same value, and the others go on.
func TestEngineGuard(t *testing.T) {
	var g *engineGuard
	var order []string
	running := 0
	work := func(ev *schemas.AuditEvent) ([]schemas.RevokeCommand, []state.Baseline) {
		select {
		case g.sem <- struct{}{}:
			t.Error("work ran without the engine held")
			<-g.sem
		default:
		}
		running++
		defer func() { running-- }()
		if running != 1 {
			t.Errorf("%d events in the work at once", running)
		}
		if ev.ID == "boom" {
			panic("engine bug")
		}
		order = append(order, ev.ID)
		return []schemas.RevokeCommand{{CommandID: "cmd-" + ev.ID}}, nil
	}
	g = newGuard(work, zerolog.Nop())
	const workers, each = 8, 500
	var wg sync.WaitGroup
	stopOther := make(chan struct{})
	otherDone := make(chan struct{})
	go func() {
		defer close(otherDone)
		for {
			select {
			case <-stopOther:
				return
			default:
			}
			g.lock()
			running++
			if running != 1 {
				t.Errorf("%d holders of the engine at once", running)
			}
			running--
			g.unlock()
		}
	}()
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				id := fmt.Sprintf("w%d-%04d", w, i)
				cmds, _ := g.process(&schemas.AuditEvent{ID: id})
				if len(cmds) != 1 || cmds[0].CommandID != "cmd-"+id {
					t.Errorf("event %s got %+v", id, cmds)
					return
				}
			}
		})
	}
	wg.Go(func() {
		defer func() {
			if p := recover(); p != "engine bug" {
				t.Errorf("the caller of the event the engine panicked on recovered %v, want the engine's panic", p)
			}
		}()
		g.process(&schemas.AuditEvent{ID: "boom"})
		t.Error("process returned for an event the engine panicked on")
	})
	wg.Wait()
	close(stopOther)
	<-otherDone

	if len(order) != workers*each {
		t.Fatalf("the work ran %d events, want %d", len(order), workers*each)
	}
	next := map[string]int{}
	for _, id := range order {
		var w, i int
		if _, err := fmt.Sscanf(id, "w%d-%d", &w, &i); err != nil {
			t.Fatal(err)
		}
		key := fmt.Sprint(w)
		if i != next[key] {
			t.Fatalf("worker %d's event %d ran when %d was due", w, i, next[key])
		}
		next[key]++
	}
}
