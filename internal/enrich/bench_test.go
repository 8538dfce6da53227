package enrich

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/revoked-dev/revoked/schemas"
)

// benchAddrs returns n addresses spread over the ASN database's ranges,
// 9 in 10 IPv4, the rest IPv6: a worst case with no locality at all.
func benchAddrs(tb testing.TB, e *Enricher, n int) []string {
	rng := rand.New(rand.NewPCG(1, 2))
	out := make([]string, 0, n)
	for len(out) < n {
		if rng.IntN(10) > 0 {
			i := rng.IntN(len(e.asn.v4first))
			lo, hi := e.asn.v4first[i], e.asn.v4last[i]
			var b [4]byte
			binary.BigEndian.PutUint32(b[:], lo+uint32(rng.Uint64N(uint64(hi-lo)+1)))
			out = append(out, netip.AddrFrom4(b).String())
			continue
		}
		i := rng.IntN(len(e.asn.v6first))
		lo := e.asn.v6first[i]
		var b [16]byte
		binary.BigEndian.PutUint64(b[:8], lo.hi)
		binary.BigEndian.PutUint64(b[8:], lo.lo+uint64(rng.IntN(1<<16)))
		out = append(out, netip.AddrFrom16(b).String())
	}
	return out
}

// BenchmarkEnrich enriches events without geo from addresses all over
// the databases.
func BenchmarkEnrich(b *testing.B) {
	e := realEnricher(b)
	addrs := benchAddrs(b, e, 1<<16)
	ev := schemas.AuditEvent{}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		ev.IP, ev.Geo = addrs[i&(len(addrs)-1)], nil
		e.Enrich(&ev)
		i++
	}
}

// BenchmarkEnrichSameAddresses enriches events from 64 addresses, as a
// partition's active users send them.
func BenchmarkEnrichSameAddresses(b *testing.B) {
	e := realEnricher(b)
	addrs := benchAddrs(b, e, 64)
	ev := schemas.AuditEvent{}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		ev.IP, ev.Geo = addrs[i&63], nil
		e.Enrich(&ev)
		i++
	}
}

// BenchmarkEnrichNoDatabase classifies events that carry their ASN, with
// the curated list only.
func BenchmarkEnrichNoDatabase(b *testing.B) {
	e, err := New(DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	asns := []uint32{16509, 21928, 64496, 3209, 7922}
	geo := &schemas.Geo{}
	ev := schemas.AuditEvent{IP: "192.0.2.1", Geo: geo}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		*geo = schemas.Geo{ASN: asns[i%len(asns)]}
		e.Enrich(&ev)
		i++
	}
}

// BenchmarkLookupParts splits an enrichment into its parts.
func BenchmarkLookupParts(b *testing.B) {
	e := realEnricher(b)
	strs := benchAddrs(b, e, 1<<16)
	addrs := make([]netip.Addr, len(strs))
	for i, s := range strs {
		addrs[i] = netip.MustParseAddr(s)
	}
	b.Run("parse", func(b *testing.B) {
		i := 0
		for b.Loop() {
			_, _ = netip.ParseAddr(strs[i&(len(strs)-1)])
			i++
		}
	})
	b.Run("asn", func(b *testing.B) {
		i := 0
		for b.Loop() {
			_ = e.asn.lookup(addrs[i&(len(addrs)-1)])
			i++
		}
	})
	b.Run("city", func(b *testing.B) {
		b.ReportAllocs()
		var rec cityRecord
		i := 0
		for b.Loop() {
			_, _ = e.city.lookup(addrs[i&(len(addrs)-1)], &rec)
			i++
		}
	})
}
