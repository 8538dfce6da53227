package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/api"
	"github.com/revoked-dev/revoked/consumer/audit/memstore"
	"github.com/revoked-dev/revoked/schemas"
)

func seed(t *testing.T, n int) *httptest.Server {
	t.Helper()
	store := memstore.New()
	base := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	var rows []schemas.AuditRow
	prev := ""
	for i := range n {
		user := "alice"
		if i%2 == 1 {
			user = "bob"
		}
		r := schemas.AuditRow{
			RowID: fmt.Sprintf("row-%03d", i), Chain: "c", Seq: uint64(i + 1), Time: base.Add(time.Duration(i) * time.Minute),
			CommandID: fmt.Sprintf("cmd-%03d", i), Step: schemas.StepRevoked, Issuer: "detector", Actor: "consumer",
			TargetKind: schemas.TargetUser, UserID: user, Action: schemas.ActionRevoke, Mode: schemas.ModeEnforce,
			RuleID: "brute_force_success", Severity: schemas.SeverityHigh,
		}
		r.PrevHash = prev
		r.Hash = r.ComputeHash()
		prev = r.Hash
		rows = append(rows, r)
	}
	if err := store.Append(context.Background(), rows); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(store, zerolog.Nop()).Handler())
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url string) (int, api.Page, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		t.Fatal(err)
	}
	var page api.Page
	_ = json.Unmarshal(raw, &page)
	return resp.StatusCode, page, string(raw)
}

func TestRevocationsFiltersAndPages(t *testing.T) {
	srv := seed(t, 25)
	code, page, _ := get(t, srv.URL+"/api/v1/revocations?user_id=alice&limit=5")
	if code != 200 || len(page.Rows) != 5 || page.NextOffset == nil || *page.NextOffset != 5 {
		t.Fatalf("first page: %d %+v", code, page)
	}
	for i, r := range page.Rows {
		if r.UserID != "alice" {
			t.Errorf("row of %s in alice's history", r.UserID)
		}
		if i > 0 && r.Time.After(page.Rows[i-1].Time) {
			t.Error("not newest first")
		}
	}
	// alice has 13 rows: pages of 5, 5, 3.
	_, last, _ := get(t, srv.URL+"/api/v1/revocations?user_id=alice&limit=5&offset=10")
	if len(last.Rows) != 3 || last.NextOffset != nil {
		t.Fatalf("last page: %+v", last)
	}
	_, ranged, _ := get(t, srv.URL+"/api/v1/revocations?from=2026-11-24T09:10:00Z&to=2026-11-24T09:14:00Z")
	if len(ranged.Rows) == 0 || len(ranged.Rows) > 5 {
		t.Fatalf("time range returned %d rows", len(ranged.Rows))
	}
	_, none, body := get(t, srv.URL+"/api/v1/revocations?user_id=nobody")
	if len(none.Rows) != 0 || !strings.Contains(body, `"rows":[]`) {
		t.Fatalf("empty result is not an empty list: %s", body)
	}
}

func TestRevocationsRejectsBadFiltersAtOnce(t *testing.T) {
	srv := seed(t, 1)
	code, _, body := get(t, srv.URL+"/api/v1/revocations?limit=0&from=yesterday&step=exploded")
	if code != http.StatusBadRequest {
		t.Fatalf("status %d", code)
	}
	for _, want := range []string{"limit", "from", "step"} {
		if !strings.Contains(body, want) {
			t.Errorf("error does not name %q: %s", want, body)
		}
	}
}

func TestWriteTable(t *testing.T) {
	var b strings.Builder
	if err := api.WriteTable(&b, nil); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "(no revocations)") {
		t.Fatalf("empty table: %q", b.String())
	}
	b.Reset()
	at := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	var rows []schemas.AuditRow
	for _, st := range []schemas.Step{schemas.StepNotEffective, schemas.StepConfirmed, schemas.StepUnconfirmed, schemas.StepVerified, schemas.StepRevoked, schemas.StepReceived} {
		rows = append(rows, schemas.AuditRow{Time: at, Step: st, CommandID: "cmd-1", TargetKind: schemas.TargetUser, UserID: "alice"})
	}
	if err := api.WriteTable(&b, rows); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	want := []string{"OUTCOME", "not_effective", "confirmed", "unconfirmed", "confirmed", "unconfirmed", "-"}
	for i, line := range lines {
		if f := strings.Fields(strings.TrimPrefix(line, "TIME (UTC)")); i >= len(want) || (i == 0 && f[1] != want[0]) || (i > 0 && f[3] != want[i]) {
			t.Errorf("line %d %q: want outcome %q", i, line, want[min(i, len(want)-1)])
		}
	}
}
