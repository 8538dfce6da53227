package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/kafka/kafkatest"
	"github.com/revoked-dev/revoked/internal/testenv"
	"github.com/revoked-dev/revoked/schemas"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

func TestBrokersCheck(t *testing.T) {
	wc := kafkax.DefaultWriterConfig()
	wc.Brokers = []string{freeAddr(t)}
	check, err := kafkax.BrokersCheck(wc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if err := check(ctx); err == nil || !strings.Contains(err.Error(), "no Kafka broker reachable") {
		t.Errorf("closed port: %v", err)
	}
}

// "ingest --listen" serves the events endpoint and /livez, /readyz and
// /metrics on one address; /readyz checks the brokers.
func TestIngestListenServesOps(t *testing.T) {
	c := kafkatest.New(t, schemas.TopicAuditEvents, schemas.TopicDLQ)
	addr := freeAddr(t)
	base := "http://" + addr
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out, errOut bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"ingest", "--kafka.brokers=" + c.Addr(), "--listen", addr}, strings.NewReader(""), &out, &errOut)
	}()

	get := func(path string) (int, string, error) {
		resp, err := http.Get(base + path)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	// Readiness gives no notice: it is polled, as an orchestrator would.
	var body string
	testenv.Eventually(t, "/readyz to answer 200", func() bool {
		select {
		case err := <-done:
			t.Fatalf("ingest returned early: %v", err)
		default:
		}
		code, b, err := get("/readyz")
		body = b
		return err == nil && code == http.StatusOK
	})
	if !strings.Contains(body, "kafka: ok") {
		t.Errorf("readyz: %q", body)
	}
	if code, _, err := get("/livez"); err != nil || code != http.StatusOK {
		t.Errorf("livez: %d %v", code, err)
	}

	ev := `{"id":"e1","time":"2026-03-01T10:00:00Z","type":"logout","user_id":"alice"}` + "\n" + `{"id":"e2"}` + "\n"
	resp, err := http.Post(base+"/v1/events", "application/x-ndjson", strings.NewReader(ev))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMultiStatus {
		t.Fatalf("post: %d", resp.StatusCode)
	}
	c.WaitRecords(t, schemas.TopicDLQ, 1)

	code, body, err := get("/metrics")
	if err != nil || code != http.StatusOK {
		t.Fatalf("metrics: %d %v", code, err)
	}
	for _, want := range []string{
		"revoked_ingest_lines_accepted_total 1\n",
		"revoked_ingest_lines_rejected_total 1\n",
		"revoked_ingest_lines_dead_lettered_total 1\n",
		`revoked_ingest_http_requests_total{code="207"} 1` + "\n",
		"process_start_time_seconds ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("ingest: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("ingest did not return")
	}
}
