package idp_test

import (
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/idp"
	"github.com/revoked-dev/revoked/internal/config"
)

func TestStepUp(t *testing.T) {
	var status atomic.Int32
	status.Store(http.StatusAccepted)
	s, ts := startScripted(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(int(status.Load()))
		_, _ = w.Write([]byte(`{"ticket":"MFA-1"}`))
	})
	c := scriptedClient(t, ts, func(c *idp.Config) {
		c.Admin = idp.AdminConfig{BaseURL: ts.URL + "/api", Auth: idp.AdminAuth{Kind: idp.AdminAuthBearer, Token: config.NewSecret("hook-token")}}
		c.StepUp = idp.AdminCall{
			Method:       http.MethodPost,
			URL:          "{base}/users/{user_id}/reverify?command={command_id}",
			Body:         `{"session":"{session_id}","reason":"revoked"}`,
			AcceptStatus: []string{"202"},
		}
	})
	res, err := c.StepUp(t.Context(), idp.StepUpRequest{UserID: "alice/x", SessionID: `s"1`, CommandID: "cmd-{user_id}"})
	if err != nil || res.Status != 202 || !strings.Contains(res.Body, "MFA-1") {
		t.Fatalf("%+v %v", res, err)
	}
	r := s.requests[0]
	if r.Method != http.MethodPost || r.URL.EscapedPath() != "/api/users/alice%2Fx/reverify" {
		t.Errorf("request %s %s", r.Method, r.URL.EscapedPath())
	}
	// A value that looks like a placeholder stays as it is.
	if q := r.URL.Query(); q.Get("command") != "cmd-{user_id}" {
		t.Errorf("query %v", q)
	}
	if r.Header.Get("Authorization") != "Bearer hook-token" {
		t.Errorf("auth %q", r.Header.Get("Authorization"))
	}
	var body map[string]string
	if err := json.Unmarshal([]byte(s.bodies[0]), &body); err != nil || body["session"] != `s"1` || body["reason"] != "revoked" {
		t.Errorf("body %s", s.bodies[0])
	}

	// A placeholder in use needs a value.
	if _, err := c.StepUp(t.Context(), idp.StepUpRequest{UserID: "alice", CommandID: "c"}); !errors.Is(err, idp.ErrInvalidArgument) {
		t.Errorf("missing session: %v", err)
	}
	// Answers are classified like every other call.
	for st, retry := range map[int]bool{409: false, 403: false, 503: true, 200: false} {
		status.Store(int32(st))
		_, err := c.StepUp(t.Context(), idp.StepUpRequest{UserID: "alice", SessionID: "s", CommandID: "c"})
		if r, _ := idp.Retryable(err); err == nil || r != retry {
			t.Errorf("status %d: %v retryable=%v", st, err, r)
		}
	}

	bare := scriptedClient(t, ts, nil)
	if _, err := bare.StepUp(t.Context(), idp.StepUpRequest{UserID: "alice"}); !errors.Is(err, idp.ErrNotConfigured) {
		t.Errorf("unconfigured: %v", err)
	}
	if retry, _ := idp.Retryable(idp.ErrNotConfigured); retry {
		t.Error("ErrNotConfigured retryable")
	}
}

func TestStepUpConfig(t *testing.T) {
	err := idp.Config{StepUp: idp.AdminCall{Method: "POST", URL: "{base}/x/{token_id}"}}.Validate()
	for _, want := range []string{"step_up: unknown placeholder {token_id}", "admin.base_url", "step_up.auth.kind"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
	// From YAML, with the admin auth as fallback.
	path := filepath.Join(t.TempDir(), "c.yaml")
	yaml := `idp:
  admin:
    base_url: https://hooks.example.com
    auth:
      kind: bearer
  step_up:
    method: PUT
    url: "{base}/reverify/{user_id}"
    body: '{"command":"{command_id}","session":"{session_id}"}'
    accept_status: ["2xx"]
`
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	var wrapped struct {
		IdP idp.Config `flag:"idp" env:"REVOKED_IDP" yaml:"idp"`
	}
	env := map[string]string{"REVOKED_IDP_ADMIN_AUTH_TOKEN": "t"}
	if err := config.Load(flag.NewFlagSet("t", flag.ContinueOnError), nil, &wrapped, config.WithFile(path),
		config.WithLookupEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })); err != nil {
		t.Fatal(err)
	}
	if _, err := idp.New(wrapped.IdP, nil, zerolog.Nop()); err != nil {
		t.Fatal(err)
	}
	if wrapped.IdP.StepUp.Method != "PUT" {
		t.Errorf("%+v", wrapped.IdP.StepUp)
	}
}
