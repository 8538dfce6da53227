package server_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/revoked-dev/revoked/deployments/tokenapi/server"
	"github.com/revoked-dev/revoked/deployments/tokenapi/server/servertest"
)

func getBody(t *testing.T, env *servertest.Env, path string) (int, string) {
	t.Helper()
	resp, err := env.HTTP.Client().Get(env.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestMetrics(t *testing.T) {
	env := servertest.Start(t)
	reg := prometheus.NewRegistry()
	if err := env.Server.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if err := env.Server.ServeMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if err := env.Server.RegisterMetrics(prometheus.NewRegistry()); err == nil {
		t.Error("second RegisterMetrics succeeded")
	}
	if err := env.Server.ServeMetrics(reg); err == nil {
		t.Error("second ServeMetrics succeeded")
	}

	root, _ := issue(t, env, "u", servertest.AppID, "")
	mustExchange(t, env, asApp, root, nil)
	postForm(t, env, server.PathRevoke, &asApp, url.Values{"token": {root}})
	postForm(t, env, server.PathRevoke, nil, url.Values{"token": {root}}) // 401
	env.Admin(t, http.MethodPost, "/admin/subjects/u/require-reverification", nil, nil)
	adminReq(t, env, http.MethodPost, "/admin/tokens", servertest.AdminToken, server.IssueRequest{UserID: "u", ClientID: servertest.AppID}) // 400
	if code, _ := getBody(t, env, "/no/such/path"); code != http.StatusNotFound {
		t.Errorf("unknown path: %d", code)
	}
	if code, _ := getBody(t, env, server.PathLivez); code != http.StatusOK {
		t.Errorf("livez: %d", code)
	}

	code, body := getBody(t, env, server.PathMetrics)
	if code != http.StatusOK {
		t.Fatalf("metrics: %d\n%s", code, body)
	}
	for _, want := range []string{
		"revoked_tokenapi_tokens_issued_total 2\n",
		"revoked_tokenapi_tokens_exchanged_total 1\n",
		"revoked_tokenapi_tokens_revoked_total 2\n",
		"revoked_tokenapi_tokens_stored 2\n",
		"revoked_tokenapi_reverification_required_total 1\n",
		"revoked_tokenapi_reverification_refused_total 1\n",
		"revoked_tokenapi_subjects_awaiting_reverification 1\n",
		`revoked_tokenapi_http_requests_total{code="400",route="POST /admin/tokens"} 1` + "\n",
		`revoked_tokenapi_http_requests_total{code="200",route="POST /oauth2/token"} 1` + "\n",
		`revoked_tokenapi_http_requests_total{code="200",route="POST /admin/tokens"} 1` + "\n",
		`revoked_tokenapi_http_requests_total{code="200",route="POST /oauth2/revoke"} 1` + "\n",
		`revoked_tokenapi_http_requests_total{code="401",route="POST /oauth2/revoke"} 1` + "\n",
		`revoked_tokenapi_http_requests_total{code="404",route="unmatched"} 1` + "\n",
		`revoked_tokenapi_http_requests_total{code="200",route="GET /livez"} 1` + "\n",
		`revoked_tokenapi_http_request_duration_seconds_count{route="POST /oauth2/revoke"} 2` + "\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestMetricsUnderIssuerPath(t *testing.T) {
	env := servertest.Start(t, servertest.WithConfig(func(c *server.Config) { c.Issuer += "/idp" }))
	reg := prometheus.NewRegistry()
	if err := env.Server.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if err := env.Server.ServeMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if code, body := getBody(t, env, "/idp"+server.PathMetrics); code != http.StatusOK || !strings.Contains(body, "revoked_tokenapi_tokens_stored 0\n") {
		t.Errorf("metrics under /idp: %d\n%s", code, body)
	}
}
