package box_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"

	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/producer/ingest/box"
)

// fakeBox serves Box's token endpoint (client-credentials grant) and
// GET /2.0/events as the API reference documents them: pages of entries
// with next_stream_position, paged by stream_position, Box's error body
// on failures.
type fakeBox struct {
	t   testing.TB
	srv *httptest.Server

	mu     sync.Mutex
	pages  map[string]fakePage
	token  string
	tokens int
	asked  []string // stream positions asked for, in order
	// once are answers given instead of a page, one per events request,
	// before any page is served.
	once []func(http.ResponseWriter)
}

type fakePage struct {
	entries []map[string]any
	next    string
}

const (
	testClientID   = "ly1nj6n11vionaie65emwzk575hnnmrk"
	testSecret     = "hOzsTeFlT6ko0dme22uGbQal04SBPYc1"
	testEnterprise = "899905961"
)

func newFakeBox(t testing.TB) *fakeBox {
	t.Helper()
	f := &fakeBox{t: t, pages: map[string]fakePage{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth2/token", f.serveToken)
	mux.HandleFunc("GET /2.0/events", f.serveEvents)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeBox) config() box.Config {
	cfg := box.DefaultConfig()
	cfg.APIURL = f.srv.URL
	cfg.TokenURL = f.srv.URL + "/oauth2/token"
	cfg.ClientID = testClientID
	cfg.ClientSecret = config.NewSecret(testSecret)
	cfg.EnterpriseID = testEnterprise
	return cfg
}

// page makes position serve entries, then next.
func (f *fakeBox) page(position string, next string, entries ...map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pages[position] = fakePage{entries: entries, next: next}
}

// answerOnce queues an answer for the next events request.
func (f *fakeBox) answerOnce(fn func(http.ResponseWriter)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.once = append(f.once, fn)
}

func (f *fakeBox) positions() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.asked...)
}

func (f *fakeBox) tokenRequests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tokens
}

// revokeToken makes the token issued so far invalid, as an admin
// revoking the app's tokens would.
func (f *fakeBox) revokeToken() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.token = "revoked"
}

func boxError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"type": "error", "status": status, "code": code, "message": msg,
		"help_url": "http://developers.box.com/docs/#errors", "request_id": "abcdef123456",
	})
}

func (f *fakeBox) serveToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	want := map[string]string{
		"grant_type": "client_credentials", "client_id": testClientID, "client_secret": testSecret,
		"box_subject_type": "enterprise", "box_subject_id": testEnterprise,
	}
	for k, v := range want {
		if r.PostForm.Get(k) != v {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_client", "error_description": "The client credentials are invalid"})
			return
		}
	}
	f.mu.Lock()
	f.tokens++
	f.token = "T9cE5asGnuyYCCqIZFoWjFHvNbvVqHjl" + strconv.Itoa(f.tokens)
	tok := f.token
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "expires_in": 3600, "restricted_to": []any{}, "token_type": "bearer"})
}

func (f *fakeBox) serveEvents(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	tok := f.token
	f.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+tok {
		boxError(w, http.StatusUnauthorized, "unauthorized", "Unauthorized")
		return
	}
	q := r.URL.Query()
	if q.Get("stream_type") != "admin_logs_streaming" || q.Get("limit") == "" {
		boxError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("query %s", r.URL.RawQuery))
		return
	}
	pos := q.Get("stream_position")
	f.mu.Lock()
	f.asked = append(f.asked, pos)
	var once func(http.ResponseWriter)
	if len(f.once) > 0 {
		once, f.once = f.once[0], f.once[1:]
	}
	p, ok := f.pages[pos]
	f.mu.Unlock()
	if once != nil {
		once(w)
		return
	}
	if !ok {
		p = fakePage{next: pos}
	}
	entries := p.entries
	if entries == nil {
		entries = []map[string]any{}
	}
	// The reference writes next_stream_position as a number; so does
	// this server, as raw digits.
	body := fmt.Sprintf(`{"chunk_size":%d,"next_stream_position":%s,"entries":%s}`, len(entries), p.next, mustJSON(f.t, entries))
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(body))
}
