package api_test

import (
	"context"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/revoked-dev/revoked/consumer/api"
	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/consumer/audit/memstore"
	"github.com/revoked-dev/revoked/schemas"
)

// allRows reads every row of the store, newest first.
func allRows(t *testing.T, s *memstore.Store) []schemas.AuditRow {
	t.Helper()
	rows, err := s.History(context.Background(), audit.Query{})
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// pages reads every row /api/v1/revocations returns for params.
func pages(t *testing.T, base string, params url.Values) []schemas.AuditRow {
	t.Helper()
	var out []schemas.AuditRow
	params.Set("limit", "1000")
	for off := 0; ; {
		params.Set("offset", strconv.Itoa(off))
		var page api.Page
		if code, body := getJSON(t, base+"/api/v1/revocations?"+params.Encode(), &page); code != 200 {
			t.Fatalf("%v: status %d: %s", params, code, body)
		}
		out = append(out, page.Rows...)
		if page.NextOffset == nil {
			return out
		}
		off = *page.NextOffset
	}
}

// TestSearchByPrefix: q finds the rows in which a user, token, session,
// client or command id starts with it (q_in narrows the ids), case and
// LIKE's wildcards taken literally; the other filters and the export
// apply with it.
func TestSearchByPrefix(t *testing.T) {
	tr := buildTrail(t, 600, trailEnd, 24*time.Hour)
	srv := serve(t, tr.store)
	rows := allRows(t, tr.store)
	fields := func(r schemas.AuditRow) map[string]string {
		return map[string]string{"user": r.UserID, "token": r.TokenID, "session": r.SessionID, "client": r.ClientID, "command": r.CommandID}
	}
	count := func(prefix string, in ...string) int {
		if len(in) == 0 {
			in = []string{"user", "token", "session", "client", "command"}
		}
		n := 0
		for _, r := range rows {
			for _, f := range in {
				if strings.HasPrefix(fields(r)[f], prefix) {
					n++
					break
				}
			}
		}
		return n
	}
	var focusToken, focusSession string
	for _, r := range rows {
		if r.UserID == tr.focus {
			focusToken, focusSession = r.TokenID, r.SessionID
			break
		}
	}
	for _, tc := range []struct {
		q, in string
		want  int
	}{
		{"alice", "", tr.byUser[tr.focus]},
		{"alice", "user", tr.byUser[tr.focus]},
		{"alice", "token,session", 0},
		{"user-01", "", count("user-01")},
		{"user-01", "user", count("user-01", "user")},
		{focusToken[:10], "", count(focusToken[:10])},
		{focusToken[:10], "token", count(focusToken[:10], "token")},
		{focusSession[:9], "session", count(focusSession[:9], "session")},
		{"mobile-", "", count("mobile-")},
		{"mobile-", "client", count("mobile-", "client")},
		{"cmd-11", "command", count("cmd-11", "command")},
		{"user-0_", "", 0},
		{"%", "", 0},
		{"Alice", "", 0},
	} {
		p := url.Values{"q": {tc.q}}
		if tc.in != "" {
			p.Set("q_in", tc.in)
		}
		got := pages(t, srv.URL, p)
		if len(got) != tc.want {
			t.Errorf("q=%s q_in=%s: %d rows, want %d", tc.q, tc.in, len(got), tc.want)
		}
		in := strings.Split(tc.in, ",")
		if tc.in == "" {
			in = []string{"user", "token", "session", "client", "command"}
		}
		for _, r := range got {
			ok := false
			for _, f := range in {
				ok = ok || strings.HasPrefix(fields(r)[f], tc.q)
			}
			if !ok {
				t.Fatalf("q=%s q_in=%s: row %s matches in none of %v", tc.q, tc.in, r.RowID, in)
			}
		}
	}
	if want := count("user-01"); want < 20 {
		t.Fatalf("the trail has %d rows of users user-01*; the test needs more", want)
	}

	// With the other filters: rule, step and range.
	from, to := trailEnd.Add(-12*time.Hour), trailEnd.Add(-2*time.Hour)
	got := pages(t, srv.URL, url.Values{"q": {"user-1"}, "rule_id": {"impossible_travel"}, "step": {"received"},
		"from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}})
	want := 0
	for _, r := range rows {
		if strings.HasPrefix(r.UserID, "user-1") && r.RuleID == "impossible_travel" && r.Step == schemas.StepReceived && !r.Time.Before(from) && r.Time.Before(to) {
			want++
		}
	}
	if len(got) != want || want == 0 {
		t.Errorf("search with filters: %d rows, want %d (> 0)", len(got), want)
	}

	// The export writes what the search selects.
	exported := fetchCSV(t, srv.URL+"/api/v1/export?q=alice&q_in=user", "")
	if len(exported) != tr.byUser[tr.focus] {
		t.Errorf("export of q=alice: %d rows, want %d", len(exported), tr.byUser[tr.focus])
	}

	// A raw token is refused, and not repeated in the answer.
	const jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLWJ5dGVz"
	for _, path := range []string{"/api/v1/revocations", "/api/v1/export", "/api/v1/activity"} {
		wantBadRequest(t, srv.URL+path+"?q="+jwt, "q")
		if _, body := getJSON(t, srv.URL+path+"?q="+jwt, nil); strings.Contains(body, "eyJ") {
			t.Errorf("%s repeats the token: %s", path, body)
		}
	}
	wantBadRequest(t, srv.URL+"/api/v1/revocations?q=a&q_in=user,detail", "q_in")
	wantBadRequest(t, srv.URL+"/api/v1/revocations?q="+strings.Repeat("a", audit.MaxSearchLen+1), "q")
}

// precisionStore is a trail whose store keeps times at another precision.
type precisionStore struct {
	*memstore.Store
	precision time.Duration
}

func (s precisionStore) TimePrecision() time.Duration { return s.precision }

// TestActivity: the newest row the filters select within the range (31
// days before to at most), and the store's time precision.
func TestActivity(t *testing.T) {
	tr := buildTrail(t, 600, trailEnd, 24*time.Hour)
	srv := serve(t, tr.store)
	rows := allRows(t, tr.store)
	newest := func(keep func(schemas.AuditRow) bool) time.Time {
		for _, r := range rows { // newest first
			if keep(r) {
				return r.Time.Truncate(time.Second)
			}
		}
		return time.Time{}
	}
	to := trailEnd.Add(48 * time.Hour)
	for _, tc := range []struct {
		params string
		want   time.Time
	}{
		{"", newest(func(schemas.AuditRow) bool { return true })},
		{"&user_id=" + tr.focus, newest(func(r schemas.AuditRow) bool { return r.UserID == tr.focus })},
		{"&q=user-00", newest(func(r schemas.AuditRow) bool { return strings.HasPrefix(r.UserID, "user-00") })},
		{"&rule_id=token_replay&step=failed", newest(func(r schemas.AuditRow) bool {
			return r.RuleID == "token_replay" && r.Step == schemas.StepFailed
		})},
		{"&user_id=nobody", time.Time{}},
	} {
		var act api.Activity
		if code, body := getJSON(t, srv.URL+"/api/v1/activity?to="+to.Format(time.RFC3339)+tc.params, &act); code != 200 {
			t.Fatalf("%s: status %d: %s", tc.params, code, body)
		}
		if !act.Latest.Equal(tc.want) || !act.To.Equal(to) || !act.From.Equal(to.Add(-api.MaxActivityRange)) || act.TimePrecision != "ms" {
			t.Errorf("%s: %+v, want latest %v in [%v, %v) at ms", tc.params, act, tc.want, to.Add(-api.MaxActivityRange), to)
		}
	}

	// Before the trail: no latest.
	_, body := getJSON(t, srv.URL+"/api/v1/activity?from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z", nil)
	if strings.Contains(body, "latest") {
		t.Errorf("activity before the trail: %s", body)
	}
	// The range is bounded.
	wantBadRequest(t, srv.URL+"/api/v1/activity?from=2026-01-01T00:00:00Z&to=2026-11-25T00:00:00Z", "from")
	// Without to: up to now, 31 days.
	var act api.Activity
	if code, body := getJSON(t, srv.URL+"/api/v1/activity", &act); code != 200 || act.To.Sub(act.From) != api.MaxActivityRange {
		t.Errorf("default range: %d %s", code, body)
	}

	// The precision is the store's.
	for precision, want := range map[time.Duration]string{time.Second: `"time_precision":"s"`, 0: ""} {
		_, body := getJSON(t, serve(t, precisionStore{tr.store, precision}).URL+"/api/v1/activity?to="+to.Format(time.RFC3339), nil)
		if (want == "" && strings.Contains(body, "time_precision")) || !strings.Contains(body, want) {
			t.Errorf("precision %s: %s", precision, body)
		}
	}
}

// TestTimelineOfACommand: a timeline of one command, by command_id.
func TestTimelineOfACommand(t *testing.T) {
	tr := buildTrail(t, 600, trailEnd, 24*time.Hour)
	srv := serve(t, tr.store)
	rows := allRows(t, tr.store)
	cmd := ""
	n := 0
	for _, r := range rows {
		if r.UserID == tr.focus && cmd == "" {
			cmd = r.CommandID
		}
		if r.CommandID == cmd {
			n++
		}
	}
	var tl api.Timeline
	if code, body := getJSON(t, srv.URL+"/api/v1/timeline?command_id="+cmd, &tl); code != 200 {
		t.Fatalf("status %d: %s", code, body)
	}
	if tl.CommandID != cmd || tl.UserID != "" || tl.Rows != n || len(tl.Entries) < n {
		t.Fatalf("timeline of %s: %+v, want %d rows", cmd, tl, n)
	}
	for _, e := range tl.Entries {
		if e.CommandID != cmd {
			t.Fatalf("entry of command %s in the timeline of %s", e.CommandID, cmd)
		}
	}
	wantBadRequest(t, srv.URL+"/api/v1/timeline", "user_id")
}
