package campaign_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/producer/campaign"
	"github.com/revoked-dev/revoked/schemas"
)

// pagedTrail serves History by Limit and Offset over rows held newest
// first, like the stores, and grows by one new row before every page after
// the first, as a live trail does while it is read.
type pagedTrail struct {
	rows  []schemas.AuditRow
	calls int
}

func (p *pagedTrail) History(_ context.Context, q audit.Query) ([]schemas.AuditRow, error) {
	if p.calls > 0 {
		p.rows = append([]schemas.AuditRow{{UserID: fmt.Sprintf("late-%d", p.calls), Time: time.Now()}}, p.rows...)
	}
	p.calls++
	if q.Offset >= len(p.rows) {
		return nil, nil
	}
	return p.rows[q.Offset:min(len(p.rows), q.Offset+q.Limit)], nil
}

// TestUsersFromAuditPages reads a trail of several pages that grows while
// it is read: every user of the original rows is listed, once, sorted.
func TestUsersFromAuditPages(t *testing.T) {
	trail := &pagedTrail{}
	for i := range 25000 {
		trail.rows = append(trail.rows, schemas.AuditRow{UserID: fmt.Sprintf("u%05d", i%12000)})
	}
	trail.rows = append(trail.rows, schemas.AuditRow{}) // a row with no user
	got, err := campaign.UsersFromAudit(t.Context(), trail, time.Time{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if trail.calls < 3 {
		t.Fatalf("%d pages read", trail.calls)
	}
	want := map[string]bool{}
	for i := range 12000 {
		want[fmt.Sprintf("u%05d", i)] = true
	}
	for i, id := range got.IDs {
		if i > 0 && got.IDs[i-1] >= id {
			t.Fatalf("ids not sorted and distinct at %d: %q, %q", i, got.IDs[i-1], id)
		}
		delete(want, id)
	}
	if len(want) != 0 {
		t.Fatalf("%d users missing", len(want))
	}
}
