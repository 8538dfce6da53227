package service

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/revoked-dev/revoked/internal/enrich"
	"github.com/revoked-dev/revoked/internal/testenv"
	"github.com/revoked-dev/revoked/schemas"
)

// enrichedEvents decodes and enriches the simulated steady traffic
// (steadyEvents: 2^18 events) as the detector does before the index sees
// them.
func enrichedEvents(b *testing.B) ([]schemas.AuditEvent, *enrich.Enricher) {
	msgs, err := steadyEvents()
	if err != nil {
		b.Fatal(err)
	}
	cfg := enrich.DefaultConfig()
	cfg.Dir = testenv.GeoIPDir(b, enrich.Files...)
	e, err := enrich.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	evs := make([]schemas.AuditEvent, len(msgs))
	for i, m := range msgs {
		if evs[i], err = schemas.DecodeEvent(m.Value); err != nil {
			b.Fatal(err)
		}
		e.Enrich(&evs[i])
	}
	return evs, e
}

// BenchmarkEvidenceIndexMemory fills an index of DefaultEvidenceContext
// events with simulated traffic, as decoding and enrichment leave it, and
// reports the heap the full index holds: per event and in all (the
// events' ids, the ring and the map; the organisations' names are the
// address databases' own strings).
func BenchmarkEvidenceIndexMemory(b *testing.B) {
	srcs := memorySources(b)
	var held uint64
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		x := newEvidenceIndex(DefaultEvidenceContext)
		for _, s := range srcs {
			// A new string per event id, as the decoder makes one.
			ev := schemas.AuditEvent{ID: string([]byte(s.id)), IP: s.ip, Geo: s.geo}
			x.add(&ev)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		held = after.HeapAlloc - before.HeapAlloc
		if x.len() != DefaultEvidenceContext {
			b.Fatalf("index holds %d events", x.len())
		}
		runtime.KeepAlive(x)
	}
	b.ReportMetric(float64(held)/DefaultEvidenceContext, "B/event-held")
	b.ReportMetric(float64(held)/(1<<20), "MiB-held")
}

// memorySource is what the index reads of an event.
type memorySource struct {
	id, ip string
	geo    *schemas.Geo
}

// memorySources are the enriched simulated events, reduced to what the
// index reads, so that the decoded events are garbage by the time
// BenchmarkEvidenceIndexMemory measures.
func memorySources(b *testing.B) []memorySource {
	evs, e := enrichedEvents(b)
	b.Cleanup(func() { _ = e.Close() })
	srcs := make([]memorySource, len(evs))
	for i := range evs {
		srcs[i] = memorySource{id: evs[i].ID, ip: evs[i].IP, geo: evs[i].Geo}
	}
	return srcs
}

// BenchmarkEvidenceIndexAdd is the cost per event of remembering its
// context in a full index of DefaultEvidenceContext events (each add
// forgets the oldest), the work the enrich step adds to every event.
func BenchmarkEvidenceIndexAdd(b *testing.B) {
	evs, e := enrichedEvents(b)
	defer e.Close()
	x := newEvidenceIndex(DefaultEvidenceContext)
	for i := range evs {
		x.add(&evs[i])
	}
	// Fresh ids, as new events have.
	ids := make([]string, len(evs))
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-again", evs[i].ID)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		j := i % len(evs)
		ev := evs[j]
		ev.ID = ids[j]
		x.add(&ev)
	}
}

// BenchmarkEvidenceIndexLookup is the cost of a command's context: the
// lookup of 20 evidence events in a full index.
func BenchmarkEvidenceIndexLookup(b *testing.B) {
	evs, e := enrichedEvents(b)
	defer e.Close()
	x := newEvidenceIndex(DefaultEvidenceContext)
	for i := range evs {
		x.add(&evs[i])
	}
	var evidence []string
	for i := len(evs) - 20; i < len(evs); i++ {
		evidence = append(evidence, evs[i].ID)
	}
	b.ReportAllocs()
	for b.Loop() {
		if len(x.lookup(evidence)) == 0 {
			b.Fatal("nothing found")
		}
	}
}
