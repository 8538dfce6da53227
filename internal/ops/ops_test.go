package ops_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/internal/ops"
)

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

func newServer(t *testing.T, reg *prometheus.Registry) *ops.Server {
	t.Helper()
	cfg := ops.DefaultServerConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.CheckTimeout = 200 * time.Millisecond
	s, err := ops.NewServer(cfg, zerolog.Nop(), reg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestLivezReadyzMetrics(t *testing.T) {
	reg := ops.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "revoked_test_things_total", Help: "things"})
	reg.MustRegister(c)
	c.Add(3)
	s := newServer(t, reg)
	h := s.Handler()

	if code, body := get(t, h, "/livez"); code != http.StatusOK || body != "ok\n" {
		t.Fatalf("/livez = %d %q", code, body)
	}
	if code, body := get(t, h, "/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz without checks = %d %q", code, body)
	}

	var mu sync.Mutex
	kafkaErr := errors.New("no partitions assigned yet")
	if err := s.AddCheck("kafka", func(context.Context) error { mu.Lock(); defer mu.Unlock(); return kafkaErr }); err != nil {
		t.Fatal(err)
	}
	if err := s.AddCheck("audit-store", func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.AddCheck("kafka", func(context.Context) error { return nil }); !errors.Is(err, ops.ErrDuplicateCheck) {
		t.Fatalf("duplicate check: err = %v", err)
	}
	code, body := get(t, h, "/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "kafka: failed: no partitions assigned yet") || !strings.Contains(body, "audit-store: ok") {
		t.Fatalf("/readyz with failing check = %d %q", code, body)
	}

	mu.Lock()
	kafkaErr = nil
	mu.Unlock()
	if code, body := get(t, h, "/readyz"); code != http.StatusOK || !strings.Contains(body, "kafka: ok") {
		t.Fatalf("/readyz after recovery = %d %q", code, body)
	}
	// A degraded check is reported and does not fail readiness.
	mu.Lock()
	kafkaErr = fmt.Errorf("%w: 12 rows spooled", ops.ErrDegraded)
	mu.Unlock()
	if code, body := get(t, h, "/readyz"); code != http.StatusOK || !strings.Contains(body, "kafka: degraded: 12 rows spooled\n") {
		t.Fatalf("/readyz with a degraded check = %d %q", code, body)
	}

	code, body = get(t, h, "/metrics")
	if code != http.StatusOK || !strings.Contains(body, "revoked_test_things_total 3") || !strings.Contains(body, "go_goroutines") {
		t.Fatalf("/metrics = %d, body lacks expected series:\n%.500s", code, body)
	}

	s.Drain()
	if code, body := get(t, h, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "shutting down") {
		t.Fatalf("/readyz while draining = %d %q", code, body)
	}
}

func TestSlowCheckFailsWithinTimeout(t *testing.T) {
	s := newServer(t, prometheus.NewRegistry())
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	if err := s.AddCheck("stuck", func(context.Context) error { <-release; return nil }); err != nil {
		t.Fatal(err)
	}
	code, body := get(t, s.Handler(), "/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "stuck: failed") {
		t.Fatalf("/readyz = %d %q", code, body)
	}
}

func TestRunServesAndShutsDown(t *testing.T) {
	s := newServer(t, prometheus.NewRegistry())
	s.Handle("GET /hello", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("hi")) }))
	addr, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	for _, path := range []string{"/livez", "/hello"} {
		resp, err := http.Get("http://" + addr.String() + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s = %d %q", path, resp.StatusCode, b)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if err := s.Run(context.Background()); !errors.Is(err, ops.ErrServerStarted) {
		t.Fatalf("second Run = %v", err)
	}
}

func TestShutdownIsBounded(t *testing.T) {
	cfg := ops.DefaultServerConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.ShutdownTimeout = 100 * time.Millisecond
	s, err := ops.NewServer(cfg, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	entered := make(chan struct{})
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	s.Handle("GET /slow", http.HandlerFunc(func(http.ResponseWriter, *http.Request) { close(entered); <-release }))
	addr, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	go func() {
		resp, err := http.Get("http://" + addr.String() + "/slow")
		if err == nil {
			_ = resp.Body.Close()
		}
	}()
	<-entered
	cancel()
	if err := <-done; !errors.Is(err, ops.ErrShutdownTimeout) {
		t.Fatalf("Run = %v, want ErrShutdownTimeout", err)
	}
}

func TestServerConfigValidate(t *testing.T) {
	err := ops.ServerConfig{Addr: "nope"}.Validate()
	if !errors.Is(err, config.ErrInvalid) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{"addr", "shutdown-timeout", "read-header-timeout", "check-timeout"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s: %v", want, err)
		}
	}
}

func TestLogger(t *testing.T) {
	var buf bytes.Buffer
	l, err := ops.NewLogger(ops.LogConfig{Level: "warn", Format: ops.FormatJSON}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	l.Info().Msg("dropped")
	l.Warn().Str("k", "v").Msg("kept")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("lines = %q", lines)
	}
	var ev map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &ev); err != nil {
		t.Fatal(err)
	}
	ts, _ := ev["time"].(string)
	if _, err := time.Parse(time.RFC3339Nano, ts); err != nil || ev["message"] != "kept" || ev["level"] != "warn" {
		t.Fatalf("event = %v", ev)
	}

	buf.Reset()
	l, err = ops.NewLogger(ops.LogConfig{Level: "debug", Format: ops.FormatConsole}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	l.Debug().Msg("console line")
	if !strings.Contains(buf.String(), "console line") || strings.HasPrefix(buf.String(), "{") {
		t.Fatalf("console output = %q", buf.String())
	}

	if _, err := ops.NewLogger(ops.LogConfig{Level: "loud", Format: "xml"}, &buf); err == nil ||
		!strings.Contains(err.Error(), "level") || !strings.Contains(err.Error(), "format") {
		t.Fatalf("bad config: err = %v", err)
	}
}
