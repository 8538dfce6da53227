package enrich

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/revoked-dev/revoked/schemas"
)

// asnTable maps addresses to autonomous systems. It is loaded from the
// CSV files of the npm package @ip-location-db/asn (asn-ipv4.csv,
// asn-ipv6.csv: "first,last,asn,organisation" rows of inclusive,
// non-overlapping, ascending ranges). The family publishes no MaxMind
// format of this data on npm (@ip-location-db/asn-mmdb is not served), so
// the ranges are held in sorted arrays and found by binary search, which
// is also faster than walking an MMDB tree.
//
// IPv4 ranges take 12 bytes each and IPv6 ranges 36; with about 412,000
// and 103,000 rows that is about 9 MB. Loading both files takes about
// 0.2 s on the 2-core machines here (about 1.3 s under the race detector).
type asnTable struct {
	v4first []uint32
	v4last  []uint32
	v4as    []int32 // index into as
	v6first []uint128
	v6last  []uint128
	v6as    []int32
	// as holds one entry per autonomous system; byNumber indexes it.
	as       []asInfo
	byNumber map[uint32]int32
}

// asInfo is one autonomous system of the table.
type asInfo struct {
	number uint32
	org    string
	// guess is the kind of network the organisation's name suggests
	// (see guessNetwork), worked out once at load.
	guess string
}

type uint128 struct{ hi, lo uint64 }

func (a uint128) less(b uint128) bool { return a.hi < b.hi || a.hi == b.hi && a.lo < b.lo }

// next returns a+1 (a is never the last address: a range after it
// exists).
func (a uint128) next() uint128 {
	if a.lo == ^uint64(0) {
		return uint128{a.hi + 1, 0}
	}
	return uint128{a.hi, a.lo + 1}
}

func u128(a netip.Addr) uint128 {
	b := a.As16()
	return uint128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

// ASN file names inside the database directory.
const (
	asnIPv4File = "asn-ipv4.csv"
	asnIPv6File = "asn-ipv6.csv"
)

// loadASN reads the two ASN files of dir.
func loadASN(dir string) (*asnTable, error) {
	t := &asnTable{byNumber: make(map[uint32]int32, 1<<17)}
	for _, name := range []string{asnIPv4File, asnIPv6File} {
		path := dir + string(os.PathSeparator) + name
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		if err := t.parse(data, name == asnIPv6File); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	if len(t.v4first) == 0 || len(t.v6first) == 0 {
		return nil, errors.New("the ASN files hold no ranges")
	}
	return t, nil
}

// parse adds the rows of one CSV file. Rows must be ascending by their
// first address: a lookup's binary search depends on it.
func (t *asnTable) parse(data []byte, v6 bool) error {
	if rows := bytes.Count(data, []byte{'\n'}) + 1; v6 {
		t.v6first = slices.Grow(t.v6first, rows)
		t.v6last = slices.Grow(t.v6last, rows)
		t.v6as = slices.Grow(t.v6as, rows)
	} else {
		t.v4first = slices.Grow(t.v4first, rows)
		t.v4last = slices.Grow(t.v4last, rows)
		t.v4as = slices.Grow(t.v4as, rows)
	}
	line := 0
	for len(data) > 0 {
		line++
		var row []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			row, data = data[:i], data[i+1:]
		} else {
			row, data = data, nil
		}
		row = bytes.TrimSuffix(row, []byte{'\r'})
		if len(row) == 0 {
			continue
		}
		if err := t.add(row, v6); err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
	}
	return nil
}

// add parses one row: first,last,asn,organisation. The addresses and the
// number never contain commas or quotes; the organisation may be quoted,
// with "" for a quote.
func (t *asnTable) add(row []byte, v6 bool) error {
	var f [3][]byte
	for i := range f {
		j := bytes.IndexByte(row, ',')
		if j < 0 {
			return errors.New("want 4 fields")
		}
		f[i], row = row[:j], row[j+1:]
	}
	first, err1 := netip.ParseAddr(string(f[0]))
	last, err2 := netip.ParseAddr(string(f[1]))
	n, err3 := strconv.ParseUint(string(f[2]), 10, 32)
	if err := errors.Join(err1, err2, err3); err != nil {
		return err
	}
	if first.Is4() != !v6 || last.Is4() != !v6 || last.Less(first) {
		return fmt.Errorf("bad range %s-%s", first, last)
	}
	as := t.system(uint32(n), row)
	// Rows are ascending. The pinned files have one row that overlaps
	// the one before it (215.0.0.0/16, announced by two DoD ASes): the
	// earlier row keeps the overlap and the later one starts after it,
	// so the ranges stay disjoint for the binary search.
	if v6 {
		lo, hi := u128(first), u128(last)
		if k := len(t.v6last); k > 0 {
			if lo.less(t.v6first[k-1]) {
				return fmt.Errorf("range %s-%s precedes the one before", first, last)
			}
			if !t.v6last[k-1].less(lo) {
				if !t.v6last[k-1].less(hi) {
					return nil // inside the row before
				}
				lo = t.v6last[k-1].next()
			}
		}
		t.v6first, t.v6last, t.v6as = append(t.v6first, lo), append(t.v6last, hi), append(t.v6as, as)
		return nil
	}
	lo, hi := u32(first), u32(last)
	if k := len(t.v4last); k > 0 {
		if lo < t.v4first[k-1] {
			return fmt.Errorf("range %s-%s precedes the one before", first, last)
		}
		if t.v4last[k-1] >= lo {
			if t.v4last[k-1] >= hi {
				return nil // inside the row before
			}
			lo = t.v4last[k-1] + 1
		}
	}
	t.v4first, t.v4last, t.v4as = append(t.v4first, lo), append(t.v4last, hi), append(t.v4as, as)
	return nil
}

// system returns the index of AS n, adding it with the organisation org
// (a CSV field) the first time. The files name every AS the same way
// wherever it appears, so later names are not even parsed.
func (t *asnTable) system(n uint32, org []byte) int32 {
	if i, ok := t.byNumber[n]; ok {
		return i
	}
	name := unquoteCSV(org)
	i := int32(len(t.as))
	t.as = append(t.as, asInfo{number: n, org: name, guess: guessNetwork(name)})
	t.byNumber[n] = i
	return i
}

// unquoteCSV returns a CSV field's text: without its quotes and with ""
// turned into ", trimmed, and cut to what an AuditEvent accepts.
func unquoteCSV(b []byte) string {
	if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' {
		b = bytes.ReplaceAll(b[1:len(b)-1], []byte(`""`), []byte(`"`))
	}
	return clip(strings.TrimSpace(string(b)))
}

// clip cuts s to schemas.MaxIDLen bytes at a character boundary, so an
// enriched event stays valid.
func clip(s string) string {
	if len(s) <= schemas.MaxIDLen {
		return s
	}
	s = s[:schemas.MaxIDLen]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// lookup returns the AS that announces a, or nil.
func (t *asnTable) lookup(a netip.Addr) *asInfo {
	if a.Is4() {
		x := u32(a)
		// The last range whose first address is <= x.
		i, found := slices.BinarySearch(t.v4first, x)
		if !found {
			i--
		}
		if i < 0 || x > t.v4last[i] {
			return nil
		}
		return &t.as[t.v4as[i]]
	}
	x := u128(a)
	i, found := slices.BinarySearchFunc(t.v6first, x, func(e, x uint128) int {
		switch {
		case e.less(x):
			return -1
		case x.less(e):
			return 1
		}
		return 0
	})
	if !found {
		i--
	}
	if i < 0 || t.v6last[i].less(x) {
		return nil
	}
	return &t.as[t.v6as[i]]
}

// number returns AS n of the table, or nil.
func (t *asnTable) number(n uint32) *asInfo {
	if i, ok := t.byNumber[n]; ok {
		return &t.as[i]
	}
	return nil
}
