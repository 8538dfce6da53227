package idp_test

import (
	"encoding/json"
	"errors"
	"flag"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/idp"
	"github.com/revoked-dev/revoked/deployments/tokenapi/server"
	"github.com/revoked-dev/revoked/deployments/tokenapi/server/servertest"
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

	// The reference preset's step-up is the default; without the preset
	// (its calls kept) there is none.
	bare := scriptedClient(t, ts, func(c *idp.Config) { c.Admin.Preset = "" })
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

// uncommentStepUp turns the commented step_up block of an example into
// configuration.
var uncommentStepUp = map[string]string{"  # step_up:": "  step_up:", "  #   ": "    "}

// The step-up presets, as the examples configure them, send what each
// provider documents.
func TestStepUpPresets(t *testing.T) {
	const user = "00u1abcd2EFGH3ijk4l5"
	type want struct {
		method, path, query, body, auth string
		status                          int
	}
	for _, tc := range []struct {
		name   string
		preset idp.AdminCall
		env    map[string]string
		want   want
	}{
		{"keycloak", idp.KeycloakStepUp(), map[string]string{"REVOKED_IDP_CLIENT_SECRET": "kc-secret"},
			want{http.MethodPut, "/admin/realms/revoked/users/" + user, "", `{"emailVerified":false,"requiredActions":["VERIFY_EMAIL"]}`, "Bearer kc-admin", 204}},
		{"okta", idp.OktaStepUp(), map[string]string{"REVOKED_IDP_ADMIN_AUTH_TOKEN": "00okta"},
			want{http.MethodPost, "/api/v1/users/" + user + "/lifecycle/reset_password", "sendEmail=true", "", "SSWS 00okta", 200}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got atomic.Int32
			_, ts := startFake(t, func(w http.ResponseWriter, r *http.Request, _ url.Values) bool {
				switch {
				case r.URL.Path == "/realms/revoked/protocol/openid-connect/token":
					writeJSON(w, 200, map[string]any{"access_token": "kc-admin", "expires_in": 300, "token_type": "Bearer"})
					return true
				case r.Method == tc.want.method && r.URL.Path == tc.want.path:
					body, _ := io.ReadAll(r.Body)
					if r.URL.RawQuery != tc.want.query || string(body) != tc.want.body || r.Header.Get("Authorization") != tc.want.auth {
						t.Errorf("step-up %s?%s body %q auth %q", r.URL.Path, r.URL.RawQuery, body, r.Header.Get("Authorization"))
					}
					if tc.want.body != "" && r.Header.Get("Content-Type") != "application/json" {
						t.Errorf("content type %q", r.Header.Get("Content-Type"))
					}
					got.Add(1)
					if tc.want.status == 200 {
						writeJSON(w, 200, map[string]any{})
					} else {
						w.WriteHeader(tc.want.status)
					}
					return true
				}
				return false
			})
			// The example's commented block is the preset.
			cfg := loadExample(t, tc.name, uncommentStepUp, tc.env)
			if !reflect.DeepEqual(cfg.StepUp, tc.preset) {
				t.Errorf("example's step_up differs from the preset:\n got %+v\nwant %+v", cfg.StepUp, tc.preset)
			}
			// Without uncommenting, no step-up: the presets are opt-in.
			if off := loadExample(t, tc.name, nil, tc.env); off.StepUp.URL != "" {
				t.Errorf("step-up on by default: %+v", off.StepUp)
			}
			cfg = loadExample(t, tc.name, mergeReplace(uncommentStepUp, map[string]string{
				"https://keycloak.example.com": ts.URL, "https://example.okta.com": ts.URL,
			}), tc.env)
			cfg.PrivateKeyFile = writeKey(t, testKeys()["rsa"], true)
			c, err := idp.New(cfg, nil, zerolog.Nop())
			if err != nil {
				t.Fatal(err)
			}
			res, err := c.StepUp(t.Context(), idp.StepUpRequest{UserID: user, SessionID: "s", CommandID: "cmd-1"})
			if err != nil || res.Status != tc.want.status || got.Load() != 1 {
				t.Fatalf("step-up: %+v %v (%d calls)", res, err, got.Load())
			}
		})
	}
}

func mergeReplace(a, b map[string]string) map[string]string {
	out := maps.Clone(a)
	maps.Copy(out, b)
	return out
}

// With the reference preset the step-up is on by default and holds: after
// it the token API refuses the user's tokens until they verify again, and
// a token issued after the subject-wide revocation does not survive it.
func TestReferenceStepUp(t *testing.T) {
	env := servertest.Start(t)
	c := newClient(t, env, nil)
	late, _ := env.Issue(t, server.IssueRequest{UserID: "alice", ClientID: servertest.AppID})
	res, err := c.StepUp(t.Context(), idp.StepUpRequest{UserID: "alice", CommandID: "cmd-1"})
	if err != nil || res.Status != 200 || !strings.Contains(res.Body, `"required":true`) || !strings.Contains(res.Body, `"revoked":1`) {
		t.Fatalf("step-up: %+v %v", res, err)
	}
	if in, err := c.Introspect(t.Context(), late); err != nil || in.Active {
		t.Errorf("a token issued before the step-up is active: %+v %v", in, err)
	}
	var st server.ReverificationResponse
	env.Admin(t, http.MethodGet, "/admin/subjects/alice/reverification", nil, &st)
	if !st.Required {
		t.Fatalf("not required: %+v", st)
	}
	// Repeating it (a redelivered command) is harmless.
	if _, err := c.StepUp(t.Context(), idp.StepUpRequest{UserID: "alice", CommandID: "cmd-1"}); err != nil {
		t.Fatal(err)
	}
	env.Admin(t, http.MethodPost, "/admin/subjects/alice/reverified", nil, nil)
	env.Issue(t, server.IssueRequest{UserID: "alice", ClientID: servertest.AppID})

	// An explicit step_up wins over the preset's.
	var hits atomic.Int32
	_, hook := startScripted(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusAccepted)
	})
	own := newClient(t, env, func(cfg *idp.Config) {
		cfg.StepUp = idp.AdminCall{Method: http.MethodPost, URL: hook.URL + "/ticket/{user_id}", Auth: idp.AdminAuth{Kind: idp.AdminAuthNone}}
	})
	if _, err := own.StepUp(t.Context(), idp.StepUpRequest{UserID: "bob"}); err != nil || hits.Load() != 1 {
		t.Errorf("explicit step-up: %v, %d hits", err, hits.Load())
	}
}
