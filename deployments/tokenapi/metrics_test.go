package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/revoked-dev/revoked/internal/testenv"
)

// The standalone command serves /livez, /readyz and /metrics on its own
// listener.
func TestCommandServesMetrics(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	base := "http://" + addr

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var stderr testenv.LogBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"--addr", addr}, lookup(nil), &stderr) }()

	get := func(path string) (int, string, error) {
		resp, err := http.Get(base + path)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	// The command logs this once its listener is open.
	stderr.WaitFor(t, "token API serving")
	if code, _, err := get("/livez"); err != nil || code != http.StatusOK {
		t.Fatalf("livez: %d %v\n%s", code, err, stderr.String())
	}
	if code, _, err := get("/readyz"); err != nil || code != http.StatusOK {
		t.Errorf("readyz: %d %v", code, err)
	}

	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"app"}, "client_secret": {devAppSecret}}
	resp, err := http.PostForm(base+"/oauth2/token", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("token: %d", resp.StatusCode)
	}

	code, body, err := get("/metrics")
	if err != nil || code != http.StatusOK {
		t.Fatalf("metrics: %d %v", code, err)
	}
	for _, want := range []string{
		"revoked_tokenapi_tokens_issued_total 1\n",
		"revoked_tokenapi_tokens_exchanged_total 0\n",
		"revoked_tokenapi_tokens_revoked_total 0\n",
		"revoked_tokenapi_tokens_stored 1\n",
		`revoked_tokenapi_http_requests_total{code="200",route="POST /oauth2/token"} 1` + "\n",
		`revoked_tokenapi_http_request_duration_seconds_count{route="POST /oauth2/token"} 1` + "\n",
		"go_goroutines ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return")
	}
}
