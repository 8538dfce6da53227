package killswitch_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/internal/killswitch"
)

// The endpoint answers only the token's holder, sets the switch from a
// JSON body or the query with who did it, refuses a change that does not
// say who, and answers the state; the file engages the switch whatever
// the runtime switch says.
func TestMount(t *testing.T) {
	file := filepath.Join(t.TempDir(), "kill")
	k := killswitch.New(file, false)
	mux := http.NewServeMux()
	k.Mount(mux, config.NewSecret("s3cret"), "a test", zerolog.Nop())
	do := func(method, target, token, body string) (int, killswitch.State) {
		req := httptest.NewRequest(method, target, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		var s killswitch.State
		_ = json.Unmarshal(rec.Body.Bytes(), &s)
		return rec.Code, s
	}
	p := killswitch.Path
	if code, _ := do("POST", p+"?state=on&by=x", "", ""); code != http.StatusUnauthorized || k.On() {
		t.Errorf("no token: %d, on %t", code, k.On())
	}
	if code, _ := do("POST", p+"?state=on&by=x", "wrong", ""); code != http.StatusUnauthorized || k.On() {
		t.Errorf("wrong token: %d", code)
	}
	for _, bad := range []struct{ target, body string }{{p + "?state=maybe&by=x", ""}, {p + "?state=on", ""}, {p, `{"engaged":true}`}, {p, `{"on":true,"by":"x"}`}} {
		if code, _ := do("POST", bad.target, "s3cret", bad.body); code != http.StatusBadRequest || k.On() {
			t.Errorf("%s %s: %d", bad.target, bad.body, code)
		}
	}
	if code, s := do("POST", p+"?state=on&by=oncall", "s3cret", ""); code != http.StatusOK || !s.Engaged || !s.Runtime || !strings.Contains(s.Reason, "oncall") {
		t.Errorf("on: %d %+v", code, s)
	}
	if code, s := do("GET", p, "s3cret", ""); code != http.StatusOK || !s.Engaged {
		t.Errorf("get: %d %+v", code, s)
	}
	if code, s := do("POST", p, "s3cret", `{"engaged":false,"by":"oncall"}`); code != http.StatusOK || s.Engaged || k.On() {
		t.Errorf("off: %d %+v", code, s)
	}
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, s := do("GET", p, "s3cret", ""); code != http.StatusOK || !s.Engaged || !s.File || s.Runtime {
		t.Errorf("with the file: %d %+v", code, s)
	}
	unmounted := http.NewServeMux()
	killswitch.New("", false).Mount(unmounted, config.Secret{}, "a test", zerolog.Nop())
	rec := httptest.NewRecorder()
	unmounted.ServeHTTP(rec, httptest.NewRequest("GET", p, nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("without a token the endpoint is served: %d", rec.Code)
	}
	if on, why := killswitch.New("", true).Engaged(); !on || why != "configured" {
		t.Errorf("configured: %v %q", on, why)
	}
}
