package schemas

import (
	"hash/maphash"
	"sync/atomic"
)

// interner hands out one string for the same bytes, from a fixed-size,
// lock-free cache of the strings it made last: each slot holds the latest
// string whose bytes hash to it, and a decoder that meets those bytes again
// gets that string instead of a new copy. The values events repeat (a
// user's id, address, device, user agent; a token's or a session's id)
// then cost no allocation after their first event, and what the detector
// keeps of many events (rule records, baselines) shares one copy of each
// instead of one per event, which the collector has fewer objects to mark.
// A slot taken by other bytes only means a new copy: the cache never
// answers wrong, and it holds at most its slots' strings, whatever the
// traffic.
type interner struct {
	seed  maphash.Seed
	slots []atomic.Pointer[string]
	mask  uint64
}

// maxInterned is the longest value interned; longer ones are copied.
const maxInterned = 256

func newInterner(bits uint) *interner {
	return &interner{seed: maphash.MakeSeed(), slots: make([]atomic.Pointer[string], 1<<bits), mask: 1<<bits - 1}
}

// str returns a string of b's bytes, the cached one if b's slot holds it.
func (in *interner) str(b []byte) string {
	if len(b) > maxInterned {
		return string(b)
	}
	slot := &in.slots[maphash.Bytes(in.seed, b)&in.mask]
	if p := slot.Load(); p != nil && *p == string(b) {
		return *p
	}
	s := string(b)
	slot.Store(&s)
	return s
}

// decodeStrings is the interner of the fast event decoder: 2^16 slots,
// 512 KiB of pointers and at most 65,536 strings of up to maxInterned
// bytes (about 18 MiB at worst, a few MiB for ids), several times the
// values a busy tenant's traffic repeats within a few minutes. Its seed
// is random per process, so traffic cannot be shaped to collide in it;
// collisions would only cost copies.
var decodeStrings = newInterner(16)
