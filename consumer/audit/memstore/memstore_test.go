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

// BenchmarkHistoryRecent reads the rows of the last minute out of a
// million, as the consumer's replay index does at every refresh.
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
	last := audittest.Row(n - 1).Time
	q := audit.Query{Steps: []schemas.Step{schemas.StepRevoked}, From: last.Add(-time.Minute)}
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.History(context.Background(), q); err != nil {
			b.Fatal(err)
		}
	}
}
