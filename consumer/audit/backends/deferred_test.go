package backends_test

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/consumer/audit/audittest"
	"github.com/revoked-dev/revoked/consumer/audit/backends"
	"github.com/revoked-dev/revoked/consumer/audit/memstore"
	"github.com/revoked-dev/revoked/schemas"
)

// The analysts' read path reaches Latest and TimePrecision through the
// deferred store and the read-only wrapper: the precision is unknown (0)
// until the store is open, then the store's.
func TestDeferredReadOnlyLatestAndPrecision(t *testing.T) {
	ctx := context.Background()
	mem := memstore.New()
	rows := audittest.Link("c", 0, "", []schemas.AuditRow{row()})
	if err := mem.Append(ctx, rows); err != nil {
		t.Fatal(err)
	}
	d := backends.Deferred(func(context.Context) (audit.Store, error) { return mem, nil }, zerolog.Nop())
	r := backends.ReadOnly(d)
	if p := r.TimePrecision(); p != 0 {
		t.Errorf("TimePrecision before the store is open = %s, want 0", p)
	}
	got, err := r.Latest(ctx, audit.Query{})
	if err != nil || !got.Equal(rows[0].Time.Truncate(time.Second)) {
		t.Errorf("Latest = %v, %v; want %v", got, err, rows[0].Time.Truncate(time.Second))
	}
	if p := r.TimePrecision(); p != time.Millisecond {
		t.Errorf("TimePrecision once open = %s, want 1ms", p)
	}
}
