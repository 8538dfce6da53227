package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/api"
	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/consumer/audit/memstore"
	"github.com/revoked-dev/revoked/consumer/export"
	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/schemas"
)

var trailEnd = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func serve(t *testing.T, store api.History) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(api.New(store, zerolog.Nop()).Handler())
	t.Cleanup(srv.Close)
	return srv
}

// getJSON fetches url and decodes a JSON answer into v, returning the
// status and the raw body.
func getJSON(t *testing.T, url string, v any) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode < 300 && v != nil && ct != "application/json" {
		t.Errorf("%s: Content-Type %q", url, ct)
	}
	if v != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("%s: %v in %s", url, err, body)
		}
	}
	return resp.StatusCode, string(body)
}

func wantBadRequest(t *testing.T, url string, params ...string) {
	t.Helper()
	code, body := getJSON(t, url, nil)
	if code != http.StatusBadRequest {
		t.Fatalf("%s: status %d, want 400: %s", url, code, body)
	}
	var e struct{ Error string }
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" {
		t.Fatalf("%s: not a JSON error: %s", url, body)
	}
	for _, p := range params {
		if !strings.Contains(e.Error, p+":") {
			t.Errorf("%s: error does not name %q: %s", url, p, e.Error)
		}
	}
}

func TestTimeline(t *testing.T) {
	tr := buildTrail(t, 600, trailEnd, 24*time.Hour)
	srv := serve(t, tr.store)
	var tl api.Timeline
	if code, body := getJSON(t, srv.URL+"/api/v1/timeline?user_id="+tr.focus, &tl); code != 200 {
		t.Fatalf("status %d: %s", code, body)
	}
	if tl.UserID != tr.focus || tl.Rows != tr.byUser[tr.focus] || tl.Truncated {
		t.Fatalf("timeline of %s: user %q, %d rows (want %d), truncated %v", tr.focus, tl.UserID, tl.Rows, tr.byUser[tr.focus], tl.Truncated)
	}
	kinds := map[audit.TimelineKind]int{}
	commands := map[string]bool{}
	for i, e := range tl.Entries {
		kinds[e.Kind]++
		commands[e.CommandID] = true
		if i > 0 && e.Time.Before(tl.Entries[i-1].Time) {
			t.Fatal("entries are not oldest first")
		}
	}
	if len(commands) != tr.focusCommands {
		t.Errorf("%d commands, want %d", len(commands), tr.focusCommands)
	}
	for _, k := range []audit.TimelineKind{audit.TimelineEvents, audit.TimelineDetection, audit.TimelineCommand, audit.TimelineExecution, audit.TimelineProof} {
		if kinds[k] == 0 {
			t.Errorf("no %s entry: %v", k, kinds)
		}
	}

	// A range before the trail: no entries, an empty list.
	code, body := getJSON(t, srv.URL+"/api/v1/timeline?user_id="+tr.focus+"&to=2020-01-01T00:00:00Z", nil)
	if code != 200 || !strings.Contains(body, `"entries":[]`) {
		t.Errorf("empty timeline: %d %s", code, body)
	}
	wantBadRequest(t, srv.URL+"/api/v1/timeline?from=yesterday&to=2020-01-01T00:00:00Z", "user_id", "from")
	wantBadRequest(t, srv.URL+"/api/v1/timeline?user_id=u&from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", "to")
}

func TestTimelineTruncated(t *testing.T) {
	store := memstore.New()
	rows := make([]schemas.AuditRow, api.MaxTimelineRows+3)
	prev := ""
	for i := range rows {
		r := schemas.AuditRow{
			RowID: fmt.Sprintf("row-%05d", i), Chain: "c", Seq: uint64(i + 1), Time: trailEnd.Add(time.Duration(i) * time.Second),
			CommandID: fmt.Sprintf("cmd-%05d", i), Step: schemas.StepRevoked, UserID: "busy", RuleID: "r",
			TargetKind: schemas.TargetUser, Action: schemas.ActionRevoke, Mode: schemas.ModeEnforce, PrevHash: prev,
		}
		r.Hash = r.ComputeHash()
		prev, rows[i] = r.Hash, r
	}
	if err := store.Append(context.Background(), rows); err != nil {
		t.Fatal(err)
	}
	var tl api.Timeline
	if code, body := getJSON(t, serve(t, store).URL+"/api/v1/timeline?user_id=busy", &tl); code != 200 {
		t.Fatalf("status %d: %s", code, body)
	}
	if !tl.Truncated || tl.Rows != api.MaxTimelineRows || tl.Entries[0].CommandID != "cmd-00003" {
		t.Fatalf("truncated %v, %d rows, oldest %s: want the newest %d rows", tl.Truncated, tl.Rows, tl.Entries[0].CommandID, api.MaxTimelineRows)
	}
}

func TestStats(t *testing.T) {
	tr := buildTrail(t, 1000, trailEnd, 48*time.Hour)
	srv := serve(t, tr.store)
	from, to := trailEnd.Add(-48*time.Hour).Format(time.RFC3339), trailEnd.Add(time.Hour).Format(time.RFC3339)

	var st audit.Stats
	if code, body := getJSON(t, srv.URL+"/api/v1/stats?from="+from+"&to="+to+"&bucket=1d", &st); code != 200 {
		t.Fatalf("status %d: %s", code, body)
	}
	total := uint64(0)
	rules := map[string]bool{}
	for _, o := range st.Outcomes {
		total += o.Count
		rules[o.RuleID] = true
		if o.Start.Unix()%86400 != 0 {
			t.Errorf("daily bucket starts at %s", o.Start)
		}
	}
	// Held commands count once more when they are revoked later; here a
	// command ends in exactly one terminal step.
	if total != uint64(tr.commands) || len(rules) != len(trailRules) || st.Bucket != 24*time.Hour {
		t.Errorf("daily stats: %d commands (want %d), %d rules, bucket %s", total, tr.commands, len(rules), st.Bucket)
	}
	if st.RevokeLatency.Count == 0 || st.RevokeLatency.P50 <= 0 || st.RevokeLatency.P99 < st.RevokeLatency.P50 || len(st.Latency) == 0 {
		t.Errorf("latency: %+v, %d points", st.RevokeLatency, len(st.Latency))
	}

	// Filters.
	var one audit.Stats
	getJSON(t, srv.URL+"/api/v1/stats?from="+from+"&to="+to+"&rule_id=token_replay&bucket=15m", &one)
	for _, o := range one.Outcomes {
		if o.RuleID != "token_replay" {
			t.Fatalf("rule filter let %s through", o.RuleID)
		}
	}
	if len(one.Outcomes) == 0 || one.Bucket != 15*time.Minute {
		t.Errorf("rule filter: %d points, bucket %s", len(one.Outcomes), one.Bucket)
	}
	var user audit.Stats
	getJSON(t, srv.URL+"/api/v1/stats?from="+from+"&to="+to+"&user_id="+tr.focus, &user)
	n := uint64(0)
	for _, o := range user.Outcomes {
		n += o.Count
	}
	if n != uint64(tr.focusCommands) {
		t.Errorf("user filter: %d commands, want %d", n, tr.focusCommands)
	}

	// Defaults: the day up to the end of the current hour, hourly.
	var def audit.Stats
	getJSON(t, srv.URL+"/api/v1/stats", &def)
	if def.Bucket != time.Hour || def.To.Sub(def.From) != api.DefaultStatsRange || def.To.Before(time.Now()) || def.To.After(time.Now().Add(time.Hour)) {
		t.Errorf("defaults: %s to %s by %s", def.From, def.To, def.Bucket)
	}

	wantBadRequest(t, srv.URL+"/api/v1/stats?from=monday&to=friday&bucket=7s", "from", "to", "bucket")
	wantBadRequest(t, srv.URL+"/api/v1/stats?bucket=fortnight", "bucket")
	wantBadRequest(t, srv.URL+"/api/v1/stats?from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z&bucket=1m", "bucket")
	wantBadRequest(t, srv.URL+"/api/v1/stats?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", "to")
}

func TestParseStatsQueryBuckets(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 34, 56, 0, time.UTC)
	for in, want := range map[string]time.Duration{"1m": time.Minute, "15m": 15 * time.Minute, "1h": time.Hour, "1d": 24 * time.Hour, "7d": 7 * 24 * time.Hour} {
		q, err := api.ParseStatsQuery(url.Values{"bucket": {in}}, now)
		if err != nil || q.Bucket != want {
			t.Errorf("bucket=%s: %s, %v", in, q.Bucket, err)
		}
		if err == nil && (!q.To.After(now) || q.To.Sub(q.From) != api.DefaultStatsRange) {
			t.Errorf("bucket=%s: range %s to %s", in, q.From, q.To)
		}
	}
	for _, in := range []string{"0d", "8d", "90s", "-1h", "1w"} {
		if _, err := api.ParseStatsQuery(url.Values{"bucket": {in}}, now); err == nil || !strings.HasPrefix(err.Error(), "bucket:") {
			t.Errorf("bucket=%s: %v", in, err)
		}
	}
}

func TestRevocationsOutcomeFilter(t *testing.T) {
	tr := buildTrail(t, 500, trailEnd, 24*time.Hour)
	srv := serve(t, tr.store)
	var page api.Page
	getJSON(t, srv.URL+"/api/v1/revocations?outcome=dead_lettered,rejected&limit=1000", &page)
	if len(page.Rows) == 0 {
		t.Fatal("no dead-lettered or rejected rows")
	}
	for _, r := range page.Rows {
		if r.Step != schemas.StepDeadLettered && r.Step != schemas.StepRejected {
			t.Fatalf("outcome filter let %s through", r.Step)
		}
	}
	wantBadRequest(t, srv.URL+"/api/v1/revocations?outcome=exploded", "outcome")
}

func TestExport(t *testing.T) {
	tr := buildTrail(t, 1000, trailEnd, 24*time.Hour)
	srv := serve(t, tr.store)

	// Every row, over several pages of History.
	resp, err := http.Get(srv.URL + "/api/v1/export?format=jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if ct, cd := resp.Header.Get("Content-Type"), resp.Header.Get("Content-Disposition"); !strings.HasPrefix(ct, "application/x-ndjson") ||
		!strings.HasPrefix(cd, `attachment; filename="revocations-`) || !strings.HasSuffix(cd, `.jsonl"`) {
		t.Errorf("headers: %q %q", ct, cd)
	}
	var all []schemas.AuditRow
	err = export.ReadRows(resp.Body, export.JSONL, func(r schemas.AuditRow) error { all = append(all, r); return nil })
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != tr.rows {
		t.Fatalf("export has %d rows, want %d", len(all), tr.rows)
	}
	seen := map[string]bool{}
	for i, r := range all {
		if seen[r.RowID] {
			t.Fatalf("row %s exported twice", r.RowID)
		}
		seen[r.RowID] = true
		if i > 0 && r.Time.After(all[i-1].Time) {
			t.Fatal("export is not newest first")
		}
	}
	// The exported rows still verify as a chain.
	if err := verifyExported(all); err != nil {
		t.Fatal(err)
	}

	// One user's rows as CSV, and a limit.
	rows := fetchCSV(t, srv.URL+"/api/v1/export?user_id="+tr.focus, "")
	if len(rows) != tr.byUser[tr.focus] {
		t.Errorf("user export: %d rows, want %d", len(rows), tr.byUser[tr.focus])
	}
	if rows := fetchCSV(t, srv.URL+"/api/v1/export?format=csv&limit=10&step=verified", ""); len(rows) != 10 || rows[0]["step"] != "verified" {
		t.Errorf("limited export: %d rows", len(rows))
	}
	// Parquet: the whole file, footer included, reads back row for row.
	presp, err := http.Get(srv.URL + "/api/v1/export?format=parquet&user_id=" + tr.focus)
	if err != nil {
		t.Fatal(err)
	}
	if ct, cd := presp.Header.Get("Content-Type"), presp.Header.Get("Content-Disposition"); ct != "application/vnd.apache.parquet" || !strings.HasSuffix(cd, `.parquet"`) {
		t.Errorf("parquet headers: %q %q", ct, cd)
	}
	var pq []schemas.AuditRow
	err = export.ReadRows(presp.Body, export.Parquet, func(r schemas.AuditRow) error { pq = append(pq, r); return nil })
	presp.Body.Close()
	if err != nil {
		t.Fatalf("reading the parquet export: %v", err)
	}
	if len(pq) != tr.byUser[tr.focus] {
		t.Errorf("parquet export: %d rows, want %d", len(pq), tr.byUser[tr.focus])
	}
	if err := verifyExported(pq); err != nil {
		t.Errorf("parquet export: %v", err)
	}
	wantBadRequest(t, srv.URL+"/api/v1/export?format=xml&limit=0&from=now", "format", "limit", "from")
}

// verifyExported checks that rows, exported newest first, link up by hash.
func verifyExported(rows []schemas.AuditRow) error {
	for i := range rows {
		r := rows[i]
		if r.ComputeHash() != r.Hash {
			return fmt.Errorf("row %s: hash does not match its content", r.RowID)
		}
	}
	return nil
}

// failingStore fails History after ok successful calls.
type failingStore struct {
	*memstore.Store
	ok    int32
	calls atomic.Int32
}

func (s *failingStore) History(ctx context.Context, q audit.Query) ([]schemas.AuditRow, error) {
	if s.calls.Add(1) > s.ok {
		return nil, errors.New("connection refused")
	}
	return s.Store.History(ctx, q)
}

func TestExportStoreFailure(t *testing.T) {
	tr := buildTrail(t, 1000, trailEnd, 24*time.Hour)

	// Down from the start: a JSON 503, no download.
	down := serve(t, &failingStore{Store: tr.store, ok: 0})
	resp, err := http.Get(down.URL + "/api/v1/export")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Content-Disposition") != "" {
		t.Errorf("store down: %s, %q", resp.Status, resp.Header.Get("Content-Disposition"))
	}

	// Down after the first page: the download breaks instead of ending
	// like a complete file.
	mid := serve(t, &failingStore{Store: tr.store, ok: 1})
	resp, err = http.Get(mid.URL + "/api/v1/export")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Error("a download cut short by the store read as complete")
	}
}

func TestMountGuardsDataNotUI(t *testing.T) {
	mux := http.NewServeMux()
	api.New(memstore.New(), zerolog.Nop()).Mount(mux, config.NewSecret("s3cret"))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path, token string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for _, p := range []string{"/ui/", "/ui/app.js", "/ui/vendor/uplot/uPlot.esm.js"} {
		if resp := get(p, ""); resp.StatusCode != 200 {
			t.Errorf("%s without a token: %s", p, resp.Status)
		}
	}
	if resp := get("/", ""); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/ui/" {
		t.Errorf("/: %s to %q", resp.Status, resp.Header.Get("Location"))
	}
	for _, p := range []string{"/api/v1/revocations", "/api/v1/stats", "/api/v1/timeline?user_id=u", "/api/v1/export"} {
		if resp := get(p, ""); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s without a token: %s", p, resp.Status)
		}
		if resp := get(p, "wrong"); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s with a wrong token: %s", p, resp.Status)
		}
		if resp := get(p, "s3cret"); resp.StatusCode != http.StatusOK {
			t.Errorf("%s with the token: %s", p, resp.Status)
		}
	}
}
