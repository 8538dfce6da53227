package memstore_test

import (
	"testing"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/consumer/audit/audittest"
	"github.com/revoked-dev/revoked/consumer/audit/memstore"
)

func open(tb testing.TB) audit.Store {
	s := memstore.New()
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

func TestContract(t *testing.T) { audittest.Run(t, open) }

func BenchmarkAppend(b *testing.B) { audittest.Bench(b, open) }
