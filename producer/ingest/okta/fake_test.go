package okta_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func object(t testing.TB, name string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(fixture(t, name), &m); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return m
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// logEvent builds a LogEvent of eventType with result from the
// reference's example: its fields, its own uuid and published time, and
// the optional objects the reference documents by attribute.
func logEvent(t testing.TB, uuid, eventType, result string, at time.Time) map[string]any {
	t.Helper()
	e := object(t, "logevent_reference.json")
	e["uuid"] = uuid
	e["eventType"] = eventType
	e["published"] = at.UTC().Format("2006-01-02T15:04:05.000Z")
	e["outcome"] = map[string]any{"result": result}
	client := e["client"].(map[string]any)
	client["ipAddress"] = "198.51.100.23"
	client["geographicalContext"] = map[string]any{
		"city": "San Francisco", "state": "California", "country": "United States", "postalCode": "94107",
		"geolocation": map[string]any{"lat": 37.7852, "lon": -122.3874},
	}
	e["securityContext"] = map[string]any{"asNumber": 7922, "asOrg": "comcast", "isp": "comcast", "domain": "comcast.net", "isProxy": false}
	return e
}

// fakeOkta serves GET /api/v1/logs as Okta documents a polling request:
// a first request with since, then next links carrying an opaque after
// token; a next link on every page, empty or not; the rate limit headers
// on every answer.
type fakeOkta struct {
	t   *testing.T
	srv *httptest.Server
	clk clockwork.Clock

	mu        sync.Mutex
	pages     map[string]fakePage // by after token; "" is the since request's
	requests  []url.Values
	auth      []string
	limit     int
	remaining int
	// once are answers given instead of a page, one per request.
	once []func(http.ResponseWriter)
}

type fakePage struct {
	events []map[string]any
	after  string // the token of the next link
}

func newFakeOkta(t *testing.T, clk clockwork.Clock) *fakeOkta {
	t.Helper()
	f := &fakeOkta{t: t, clk: clk, pages: map[string]fakePage{}, limit: 120, remaining: 119}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/logs", f.serve)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeOkta) page(after, next string, events ...map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pages[after] = fakePage{events: events, after: next}
}

func (f *fakeOkta) answerOnce(fn func(http.ResponseWriter)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.once = append(f.once, fn)
}

func (f *fakeOkta) setRemaining(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.remaining = n
}

func (f *fakeOkta) auths() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.auth...)
}

func (f *fakeOkta) asked() []url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]url.Values(nil), f.requests...)
}

// rateHeaders writes Okta's rate limit headers with a window resetting
// reset from now, and a Date by the fake clock.
func (f *fakeOkta) rateHeaders(w http.ResponseWriter, remaining int, reset time.Duration) {
	now := f.clk.Now()
	w.Header().Set("Date", now.UTC().Format(http.TimeFormat))
	w.Header().Set("X-Rate-Limit-Limit", strconv.Itoa(f.limit))
	w.Header().Set("X-Rate-Limit-Remaining", strconv.Itoa(remaining))
	w.Header().Set("X-Rate-Limit-Reset", strconv.FormatInt(now.Add(reset).Unix(), 10))
}

func (f *fakeOkta) serve(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f.mu.Lock()
	f.requests = append(f.requests, q)
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	var once func(http.ResponseWriter)
	if len(f.once) > 0 {
		once, f.once = f.once[0], f.once[1:]
	}
	after := q.Get("after")
	p, ok := f.pages[after]
	remaining := f.remaining
	f.mu.Unlock()
	if once != nil {
		once(w)
		return
	}
	if r.Header.Get("Authorization") != "SSWS "+testToken && r.Header.Get("Authorization") != "Bearer "+testBearer {
		f.rateHeaders(w, remaining, time.Minute)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"errorCode":"E0000011","errorSummary":"Invalid token provided","errorLink":"E0000011","errorId":"oaeW5QvBcFuRD6BY1P4Ysi5Fw","errorCauses":[]}`))
		return
	}
	if after == "" && (q.Get("since") == "" || q.Get("sortOrder") != "ASCENDING") {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if !ok {
		p = fakePage{after: after}
	}
	events := p.events
	if events == nil {
		events = []map[string]any{}
	}
	self := f.srv.URL + r.URL.RequestURI()
	nq := url.Values{"limit": {q.Get("limit")}, "sortOrder": {"ASCENDING"}, "after": {p.after}}
	if p.after == "" {
		nq.Set("after", after)
	}
	next := f.srv.URL + "/api/v1/logs?" + nq.Encode()
	w.Header().Add("Link", "<"+self+`>; rel="self"`)
	w.Header().Add("Link", "<"+next+`>; rel="next"`)
	f.rateHeaders(w, remaining, time.Minute)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(mustJSON(f.t, events))
}
