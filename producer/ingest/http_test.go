package ingest

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/internal/config"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
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

// The ingest listener also serves /livez, /readyz and /metrics.
func TestHTTPOpsEndpoints(t *testing.T) {
	pub := &memPublisher{failAt: 4}
	in := newTestIngester(t, pub, nil)
	hc := DefaultHTTPConfig()
	hc.Addr = "127.0.0.1:0"
	hc.BearerToken = config.NewSecret("tok")
	hc.ShutdownTimeout = 2 * time.Second
	var kafkaDown atomic.Bool
	reg := prometheus.NewRegistry()
	srv, err := NewServer(hc, in, zerolog.Nop(), WithRegistry(reg),
		WithReadyCheck("kafka", func(context.Context) error {
			if kafkaDown.Load() {
				return errors.New("no broker")
			}
			return nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", hc.Addr)
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()

	if code, _ := get(t, base+"/livez"); code != http.StatusOK {
		t.Errorf("livez: %d", code)
	}
	if code, body := get(t, base+"/readyz"); code != http.StatusOK || !strings.Contains(body, "kafka: ok") {
		t.Errorf("readyz: %d %q", code, body)
	}
	kafkaDown.Store(true)
	if code, body := get(t, base+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "no broker") {
		t.Errorf("readyz with kafka down: %d %q", code, body)
	}
	kafkaDown.Store(false)

	for _, c := range []struct {
		token, body string
		want        int
	}{
		{"tok", event("e1", "alice") + "\n" + event("e2", "bob") + "\n", http.StatusOK},
		{"tok", event("e3", "alice") + "\n" + badLat + "\n", http.StatusMultiStatus},
		{"tok", notJSON + "\n", http.StatusBadRequest},
		{"tok", event("e4", "carol") + "\n", http.StatusServiceUnavailable}, // 4th publish fails
		{"", event("e5", "dave") + "\n", http.StatusUnauthorized},
	} {
		if status, _, _ := post(t, base, c.token, c.body); status != c.want {
			t.Errorf("post %q: status %d, want %d", c.body, status, c.want)
		}
	}

	code, body := get(t, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("metrics: %d", code)
	}
	for _, want := range []string{
		"revoked_ingest_lines_accepted_total 3\n",
		"revoked_ingest_lines_rejected_total 2\n",
		"revoked_ingest_lines_dead_lettered_total 2\n",
		"revoked_ingest_publish_failures_total 1\n",
		`revoked_ingest_http_requests_total{code="200"} 1` + "\n",
		`revoked_ingest_http_requests_total{code="207"} 1` + "\n",
		`revoked_ingest_http_requests_total{code="400"} 1` + "\n",
		`revoked_ingest_http_requests_total{code="401"} 1` + "\n",
		`revoked_ingest_http_requests_total{code="503"} 1` + "\n",
		`revoked_ingest_http_request_duration_seconds_count{code="200"} 1` + "\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}

	srv.Drain()
	if code, _ := get(t, base+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("readyz after Drain: %d", code)
	}
	if code, _ := get(t, base+"/livez"); code != http.StatusOK {
		t.Errorf("livez after Drain: %d", code)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
}

// Without WithRegistry the server still serves its own metrics.
func TestHTTPDefaultRegistry(t *testing.T) {
	ts := newTestServer(t, &memPublisher{}, "")
	if status, _, _ := post(t, ts.URL, "", event("e1", "alice")+"\n"); status != http.StatusOK {
		t.Fatalf("post: %d", status)
	}
	code, body := get(t, ts.URL+"/metrics")
	if code != http.StatusOK || !strings.Contains(body, "revoked_ingest_lines_accepted_total 1\n") || !strings.Contains(body, "go_goroutines ") {
		t.Errorf("metrics: %d\n%s", code, body)
	}
}

func TestHTTPServersShareARegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	for range 2 {
		if _, err := NewServer(DefaultHTTPConfig(), newTestIngester(t, &memPublisher{}, nil), zerolog.Nop(), WithRegistry(reg)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := NewServer(DefaultHTTPConfig(), newTestIngester(t, &memPublisher{}, nil), zerolog.Nop(),
		WithReadyCheck("x", nil)); err == nil {
		t.Error("nil check accepted")
	}
}
