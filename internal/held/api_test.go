package held_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/internal/held"
)

// fakeHeld keeps decisions in memory, with the errors Approvals returns.
type fakeHeld struct {
	mu    sync.Mutex
	state map[string]held.State
	by    map[string]string
	kill  bool
}

func (f *fakeHeld) List(_ context.Context, all bool, limit int) ([]held.Held, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []held.Held{}
	for id, s := range f.state {
		if all || s == held.Pending {
			out = append(out, held.Held{CommandID: id, State: s})
		}
	}
	return out[:min(limit, len(out))], nil
}

func (f *fakeHeld) decide(id, approver string, to held.State) (held.Held, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.state[id]
	switch {
	case !ok:
		return held.Held{}, held.ErrNotHeld
	case s == to:
		return held.Held{CommandID: id, State: s}, nil
	case s != held.Pending:
		return held.Held{CommandID: id, State: s}, held.ErrDecided
	case to == held.Approved && f.kill:
		return held.Held{CommandID: id, State: s}, held.ErrBlocked
	}
	f.state[id], f.by[id] = to, approver
	return held.Held{CommandID: id, State: to}, nil
}

func (f *fakeHeld) Get(_ context.Context, id string) (held.Held, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.state[id]
	if !ok {
		return held.Held{}, held.ErrNotHeld
	}
	return held.Held{CommandID: id, State: s}, nil
}

func (f *fakeHeld) Approve(_ context.Context, id, approver, _ string) (held.Held, error) {
	return f.decide(id, approver, held.Approved)
}

func (f *fakeHeld) Reject(_ context.Context, id, approver, _ string) (held.Held, error) {
	return f.decide(id, approver, held.Rejected)
}

func TestHeldEndpoints(t *testing.T) {
	h := &fakeHeld{state: map[string]held.State{"c1": held.Pending, "c2": held.Pending, "c3": held.Pending}, by: map[string]string{}}
	srv := httptest.NewServer(held.NewAPI(h, config.NewSecret("s3cret"), zerolog.Nop()).Handler())
	defer srv.Close()
	call := func(method, path, auth, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		_, _ = fmt.Fprint(&b, json.NewDecoder(resp.Body).Decode(new(any)))
		return resp.StatusCode, b.String()
	}
	for _, tc := range []struct {
		method, path, auth, body string
		want                     int
	}{
		{"GET", "/api/v1/held", "", "", 401},
		{"GET", "/api/v1/held", "wrong", "", 401},
		{"POST", "/api/v1/held/c1/approve", "", `{"approver":"alice"}`, 401},
		{"GET", "/api/v1/held", "s3cret", "", 200},
		{"GET", "/api/v1/held?limit=0", "s3cret", "", 400},
		{"POST", "/api/v1/held/c1/approve", "s3cret", `{}`, 400},
		{"POST", "/api/v1/held/c1/approve", "s3cret", `{"approver":"alice","extra":1}`, 400},
		{"POST", "/api/v1/held/c1/approve", "s3cret", `{"approver":"alice"}`, 200},
		{"POST", "/api/v1/held/c1/approve", "s3cret", `{"approver":"alice"}`, 200}, // idempotent
		{"POST", "/api/v1/held/c1/reject", "s3cret", `{"approver":"bob"}`, 409},
		{"POST", "/api/v1/held/c2/reject", "s3cret", `{"approver":"bob","reason":"false positive"}`, 200},
		{"POST", "/api/v1/held/nope/approve", "s3cret", `{"approver":"alice"}`, 404},
	} {
		if got, _ := call(tc.method, tc.path, tc.auth, tc.body); got != tc.want {
			t.Errorf("%s %s (auth %q, %s): %d, want %d", tc.method, tc.path, tc.auth, tc.body, got, tc.want)
		}
	}
	if h.by["c1"] != "alice" || h.by["c2"] != "bob" {
		t.Errorf("approvers: %v", h.by)
	}
	h.kill = true
	if got, _ := call("POST", "/api/v1/held/c3/approve", "s3cret", `{"approver":"alice"}`); got != 409 {
		t.Errorf("approval under the kill switch: %d, want 409", got)
	}
	req, _ := http.NewRequest("GET", srv.URL+"/api/v1/held?all=true", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list []held.Held
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || len(list) != 3 {
		t.Fatalf("all held: %v, %v", list, err)
	}
}
