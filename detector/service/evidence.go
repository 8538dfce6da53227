package service

import (
	"hash/maphash"
	"net/netip"
	"slices"
	"sync"

	"github.com/revoked-dev/revoked/schemas"
)

// DefaultEvidenceContext is how many events' address context the detector
// keeps unless configured (Config.EvidenceContext): about 23 MiB (about
// 120 bytes an event: BenchmarkEvidenceIndexMemory), the last 20 seconds
// of the local run at 10,000 events per second, over 3 minutes at 1,000.
const DefaultEvidenceContext = 200_000

// maxEvidenceContext bounds Config.EvidenceContext (slots are int32).
const maxEvidenceContext = 50_000_000

// evidenceIndex keeps the address context (address, country, autonomous
// system, kind of network) of the newest events the detector handled, by
// event id, so that a command can say where its evidence events came from
// (schemas.Reason.Context) while the engine's records stay lean and keep
// no addresses.
//
// It is a ring of the last size events that had an address, allocated
// whole when the index is made, and a map from a hash of the event id to
// the ring slot: adding an event takes the oldest slot once the ring is
// full and forgets the event that was there (a map lookup and delete, and
// an insert, on 64-bit keys, no allocation); a lookup is one map access,
// and checks the slot's event id, so two ids of one hash can cost an event
// its context (one of them becomes unreachable), never give it another's.
// A redelivered event takes a new slot like any other, and keeps it when
// its first copy's slot is taken.
// Evidence older than the ring's reach gets no context. Memory is bounded
// by size: an entry holds the event id's string, the address inline and
// the organisation's string (shared with the address databases' table
// when they named it).
//
// Partitions are handled concurrently; a mutex guards the index. A nil
// *evidenceIndex (size 0) keeps nothing.
type evidenceIndex struct {
	mu   sync.Mutex
	seed maphash.Seed
	ring []evidenceEntry
	// held is how many slots of ring hold an event; next is the slot the
	// next event takes.
	held, next int
	byID       map[uint64]int32
}

// evidenceEntry is one event's context as kept: the address parsed
// (inline, no allocation), the country as its two letters, the kind of
// network as its index in schemas.Networks plus one.
type evidenceEntry struct {
	id      string
	org     string
	addr    netip.Addr
	asn     uint32
	country [2]byte
	network uint8
}

// newEvidenceIndex returns an index of the newest size events; nil for
// size 0.
func newEvidenceIndex(size int) *evidenceIndex {
	if size <= 0 {
		return nil
	}
	return &evidenceIndex{seed: maphash.MakeSeed(), ring: make([]evidenceEntry, size), byID: make(map[uint64]int32, size)}
}

// add records ev's context, as enrichment left it. Events without an
// address that parses are not recorded.
func (x *evidenceIndex) add(ev *schemas.AuditEvent) {
	if x == nil || ev.IP == "" || ev.ID == "" {
		return
	}
	addr, err := netip.ParseAddr(ev.IP)
	if err != nil {
		return
	}
	e := evidenceEntry{id: ev.ID, addr: addr.Unmap().WithZone("")}
	if g := ev.Geo; g != nil {
		if len(g.Country) == 2 {
			e.country = [2]byte{g.Country[0], g.Country[1]}
		}
		e.asn, e.org = g.ASN, g.Org
		if i := slices.Index(schemas.Networks, g.Network); i >= 0 {
			e.network = uint8(i + 1)
		}
	}
	h := maphash.String(x.seed, ev.ID)
	x.mu.Lock()
	defer x.mu.Unlock()
	slot := x.next
	if x.held == len(x.ring) {
		old := maphash.String(x.seed, x.ring[slot].id)
		if s, ok := x.byID[old]; ok && int(s) == slot {
			delete(x.byID, old)
		}
	} else {
		x.held++
	}
	x.ring[slot] = e
	x.byID[h] = int32(slot)
	x.next = (slot + 1) % len(x.ring)
}

// lookup returns the context of each event of evidence the index holds,
// in evidence's order, as schemas.ContextOf builds it (what would not
// validate left out); nil for none.
func (x *evidenceIndex) lookup(evidence []string) []schemas.EventContext {
	if x == nil || len(evidence) == 0 {
		return nil
	}
	found := make([]evidenceEntry, 0, len(evidence))
	x.mu.Lock()
	for _, id := range evidence {
		if slot, ok := x.byID[maphash.String(x.seed, id)]; ok && x.ring[slot].id == id {
			found = append(found, x.ring[slot])
		}
	}
	x.mu.Unlock()
	if len(found) == 0 {
		return nil
	}
	out := make([]schemas.EventContext, 0, len(found))
	// Evidence names each event once; should it not, the context still
	// does (schemas.RevokeCommand.Validate).
	var seen map[string]bool
	if len(found) > 1 {
		seen = make(map[string]bool, len(found))
	}
	for i := range found {
		e := &found[i]
		if seen != nil {
			if seen[e.id] {
				continue
			}
			seen[e.id] = true
		}
		g := schemas.Geo{ASN: e.asn, Org: e.org}
		if e.country != [2]byte{} {
			g.Country = string(e.country[:])
		}
		if e.network > 0 {
			g.Network = schemas.Networks[e.network-1]
		}
		out = append(out, schemas.ContextOf(e.id, e.addr, g))
	}
	return out
}

// len is the number of events the index holds.
func (x *evidenceIndex) len() int {
	if x == nil {
		return 0
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.held
}
