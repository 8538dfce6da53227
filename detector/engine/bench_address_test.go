package engine

import (
	"fmt"
	"testing"
	"time"

	"github.com/revoked-dev/revoked/schemas"
)

// BenchmarkOneAddressManyUsers feeds the default pack failed logins from
// one address, each as another user: what a credential-stuffing run sends,
// and the worst case of the rules grouped by address (every group holds up
// to MaxEventsPerGroup records of distinct users).
func BenchmarkOneAddressManyUsers(b *testing.B) {
	rules, err := DefaultRules()
	if err != nil {
		b.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Issuer = "bench"
	e, err := New(cfg, rules)
	if err != nil {
		b.Fatal(err)
	}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	evs := make([]schemas.AuditEvent, 4096)
	for i := range evs {
		evs[i] = schemas.AuditEvent{ID: fmt.Sprintf("e%d", i), Type: schemas.EventLoginFailure, UserID: fmt.Sprintf("u%d", i), IP: "198.51.100.7"}
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		ev := evs[i%len(evs)]
		ev.ID = fmt.Sprintf("e%d", i)
		ev.Time = base.Add(time.Duration(i) * 50 * time.Millisecond)
		e.Process(&ev)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
