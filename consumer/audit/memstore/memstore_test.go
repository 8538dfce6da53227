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
