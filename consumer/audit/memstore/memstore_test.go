package memstore_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/consumer/audit/audittest"
	"github.com/revoked-dev/revoked/consumer/audit/memstore"
	"github.com/revoked-dev/revoked/schemas"
)

func open(tb testing.TB) audit.Store {
	s := memstore.New()
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

func TestContract(t *testing.T) { audittest.Run(t, open) }

func BenchmarkAppend(b *testing.B) { audittest.Bench(b, open) }

// BenchmarkHistoryRecent reads the newest rows out of a million, as the
// consumer's replay index does at every refresh: a minute of a quiet trail
// (60 rows) and of a campaign (a fifth of the trail).
func BenchmarkHistoryRecent(b *testing.B) {
	const n = 1_000_000
	s := memstore.New()
	b.Cleanup(func() { _ = s.Close() })
	rows := make([]schemas.AuditRow, 0, 10_000)
	for i := range n {
		rows = append(rows, audittest.Row(i))
		if len(rows) == cap(rows) || i == n-1 {
			// A chain per batch: Link starts each at its first row.
			if err := s.Append(context.Background(), audittest.Link(strconv.Itoa(i), 0, "", rows)); err != nil {
				b.Fatal(err)
			}
			rows = rows[:0]
		}
	}
	last := audittest.Row(n - 1).Time // rows are a second apart
	for _, c := range []struct {
		name string
		rows int
	}{{"quiet", 60}, {"campaign", n / 5}} {
		q := audit.Query{From: last.Add(-time.Duration(c.rows-1) * time.Second)}
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				got, err := s.History(context.Background(), q)
				if err != nil {
					b.Fatal(err)
				}
				if len(got) != c.rows {
					b.Fatalf("%d rows, want %d", len(got), c.rows)
				}
			}
		})
	}
}

// Rows held across many chunks read back as one trail, in every read:
// history, chain rows and head, stats, a clone, and a tampered copy.
func TestRowsAcrossChunks(t *testing.T) {
	const n = 3*4096 + 5
	s := memstore.New()
	ctx := context.Background()
	var all []schemas.AuditRow
	for i := 0; i < n; i += 1000 {
		rows := make([]schemas.AuditRow, 0, 1000)
		for j := i; j < min(i+1000, n); j++ {
			rows = append(rows, audittest.Row(j))
		}
		rows = audittest.Link("c", uint64(i), prevHash(all), rows)
		if err := s.Append(ctx, rows); err != nil {
			t.Fatal(err)
		}
		all = append(all, rows...)
	}
	check := func(name string, s *memstore.Store, want int) {
		t.Helper()
		got, err := s.History(ctx, audit.Query{})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != want {
			t.Fatalf("%s: history holds %d rows, want %d", name, len(got), want)
		}
		chain, err := s.ChainRows(ctx, "c", 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(chain) != want {
			t.Fatalf("%s: chain holds %d rows, want %d", name, len(chain), want)
		}
		for i, r := range chain {
			if r.RowID != all[i].RowID || r.Seq != all[i].Seq {
				t.Fatalf("%s: chain row %d is %s seq %d, want %s seq %d", name, i, r.RowID, r.Seq, all[i].RowID, all[i].Seq)
			}
		}
		seq, hash, err := s.ChainHead(ctx, "c")
		if err != nil {
			t.Fatal(err)
		}
		if last := all[want-1]; seq != last.Seq || hash != last.Hash {
			t.Fatalf("%s: head %d %s, want %d %s", name, seq, hash, last.Seq, last.Hash)
		}
	}
	check("store", s, n)
	check("clone", s.Clone(), n)
	tampered := s.Clone()
	tampered.Tamper(func(rows []schemas.AuditRow, cps []schemas.Checkpoint) ([]schemas.AuditRow, []schemas.Checkpoint) {
		if len(rows) != n {
			t.Fatalf("tamper got %d rows, want %d", len(rows), n)
		}
		return rows[:n-4096], cps
	})
	check("tampered", tampered, n-4096)
	// The rows dropped are gone from the store's dedup too: appending them
	// again stores them.
	if err := tampered.Append(ctx, all[n-4096:]); err != nil {
		t.Fatal(err)
	}
	check("tampered and appended again", tampered, n)
}

func prevHash(rows []schemas.AuditRow) string {
	if len(rows) == 0 {
		return ""
	}
	return rows[len(rows)-1].Hash
}
