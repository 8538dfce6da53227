package api_test

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

	"github.com/revoked-dev/revoked/consumer/api"
	"github.com/revoked-dev/revoked/consumer/guard"
	"github.com/revoked-dev/revoked/consumer/service"
	"github.com/revoked-dev/revoked/internal/config"
)

// fakeHeld keeps decisions in memory, with the errors Approvals returns.
type fakeHeld struct {
	mu    sync.Mutex
	state map[string]service.HeldState
	by    map[string]string
	kill  bool
}

func (f *fakeHeld) List(_ context.Context, all bool, limit int) ([]service.HeldCommand, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []service.HeldCommand{}
	for id, s := range f.state {
		if all || s == service.HeldPending {
			out = append(out, service.HeldCommand{CommandID: id, State: s})
		}
	}
	return out[:min(limit, len(out))], nil
}

func (f *fakeHeld) decide(id, approver string, to service.HeldState) (service.HeldCommand, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.state[id]
	switch {
	case !ok:
		return service.HeldCommand{}, service.ErrNotHeld
	case s == to:
		return service.HeldCommand{CommandID: id, State: s}, nil
	case s != service.HeldPending:
		return service.HeldCommand{CommandID: id, State: s}, service.ErrDecided
	case to == service.HeldApproved && f.kill:
		return service.HeldCommand{CommandID: id, State: s}, guard.ErrKillSwitch
	}
	f.state[id], f.by[id] = to, approver
	return service.HeldCommand{CommandID: id, State: to}, nil
}

func (f *fakeHeld) Approve(_ context.Context, id, approver string) (service.HeldCommand, error) {
	return f.decide(id, approver, service.HeldApproved)
}

func (f *fakeHeld) Reject(_ context.Context, id, approver, _ string) (service.HeldCommand, error) {
	return f.decide(id, approver, service.HeldRejected)
}

func TestHeldEndpoints(t *testing.T) {
	held := &fakeHeld{state: map[string]service.HeldState{"c1": service.HeldPending, "c2": service.HeldPending, "c3": service.HeldPending}, by: map[string]string{}}
	srv := httptest.NewServer(api.NewHeld(held, config.NewSecret("s3cret"), zerolog.Nop()).Handler())
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
	if held.by["c1"] != "alice" || held.by["c2"] != "bob" {
		t.Errorf("approvers: %v", held.by)
	}
	held.kill = true
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
	var list []service.HeldCommand
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || len(list) != 3 {
		t.Fatalf("all held: %v, %v", list, err)
	}
}
