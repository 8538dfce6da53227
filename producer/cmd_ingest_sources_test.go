package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/revoked-dev/revoked/internal/kafka/kafkatest"
	"github.com/revoked-dev/revoked/producer/ingest/box"
	"github.com/revoked-dev/revoked/schemas"
)

// compact reads a fixture of another package and compacts it to a line.
func compact(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// "ingest -format ocsf" reads the OCSF project's examples: the console
// sign-in becomes an AuditEvent, the DNS record is kept on the unmapped
// topic, and the EKS record (its time in microseconds) is rejected.
func TestIngestOCSFFile(t *testing.T) {
	c := kafkatest.New(t, schemas.TopicAuditEvents, schemas.TopicDLQ, schemas.TopicUnmapped)
	dir := filepath.Join("ingest", "ocsf", "testdata")
	path := filepath.Join(t.TempDir(), "ocsf.jsonl")
	lines := []string{
		compact(t, filepath.Join(dir, "cloudtrail_authentication.json")),
		compact(t, filepath.Join(dir, "route53_dns_activity.json")),
		compact(t, filepath.Join(dir, "eks_api_activity.json")),
	}
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := runCLI(t, "", "ingest", "--kafka.brokers", c.Addr(), "--file", path, "--format", "ocsf")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "3 lines, 1 accepted, 1 rejected (dead-lettered), 1 unmapped") || !strings.Contains(out, "line 3: ") {
		t.Errorf("report:\n%s", out)
	}
	evs := c.Records(t, schemas.TopicAuditEvents)
	if len(evs) != 1 || string(evs[0].Key) != "arn:aws:iam::111122223333:user/anaya" {
		t.Fatalf("events %v", evs)
	}
	if un := c.Records(t, schemas.TopicUnmapped); len(un) != 1 || header(un[0], schemas.HeaderUnmappedFormat) != "ocsf" ||
		header(un[0], schemas.HeaderUnmappedType) != "class_uid 4003 activity_id 2" {
		t.Errorf("unmapped %v", un)
	}
	if dl := c.Records(t, schemas.TopicDLQ); len(dl) != 1 || !strings.Contains(header(dl[0], schemas.HeaderDLQReason), "milliseconds") {
		t.Errorf("dead letters %v", dl)
	}
}

// "producer ocsf" renders AuditEvents as OCSF, and reads them back.
func TestOCSFCommandRoundTrip(t *testing.T) {
	in := `{"id":"e1","time":"2026-03-02T09:00:00Z","type":"mfa.failure","user_id":"alice","ip":"198.51.100.7","source":"okta"}` + "\n" +
		`{"id":"e2","time":"2026-03-02T09:00:01Z","type":"token.revoked","user_id":"alice","token_id":"tfp_AAAAAAAAAAAAAAAAAAAAAA"}` + "\n"
	out, err := runCLI(t, in, "ocsf")
	if err != nil {
		t.Fatal(err)
	}
	var first map[string]any
	if err := json.Unmarshal([]byte(strings.SplitN(out, "\n", 2)[0]), &first); err != nil {
		t.Fatal(err)
	}
	if first["class_uid"] != 3002.0 || first["is_mfa"] != true || first["status_id"] != 2.0 {
		t.Errorf("first line %v", first)
	}
	back, err := runCLI(t, out, "ocsf", "--from", "ocsf")
	if err != nil {
		t.Fatal(err)
	}
	if back != in {
		t.Errorf("read back\n%s\nwant\n%s", back, in)
	}
	if _, err := runCLI(t, "not json\n", "ocsf"); err == nil {
		t.Error("a malformed line did not fail the conversion")
	}
}

// "ingest okta-logs" polls a System Log into Kafka and stops once
// caught up, leaving a checkpoint.
func TestOktaLogsCommand(t *testing.T) {
	c := kafkatest.New(t, schemas.TopicAuditEvents, schemas.TopicDLQ, schemas.TopicUnmapped)
	var ev map[string]any
	if err := json.Unmarshal([]byte(compact(t, filepath.Join("ingest", "okta", "testdata", "logevent_reference.json"))), &ev); err != nil {
		t.Fatal(err)
	}
	ev["published"] = "2026-03-02T09:00:00.000Z"
	ev["outcome"] = map[string]any{"result": "FAILURE", "reason": "INVALID_CREDENTIALS"}
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/logs" || r.Header.Get("Authorization") != "SSWS okta-test-token" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("X-Rate-Limit-Limit", "120")
		w.Header().Set("X-Rate-Limit-Remaining", "119")
		w.Header().Set("X-Rate-Limit-Reset", strconv.FormatInt(time.Now().Add(time.Minute).Unix(), 10))
		switch r.URL.Query().Get("after") {
		case "":
			w.Header().Add("Link", "<"+srv.URL+`/api/v1/logs?limit=1000&after=p1>; rel="next"`)
			_ = json.NewEncoder(w).Encode([]any{ev})
		default:
			w.Header().Add("Link", "<"+srv.URL+`/api/v1/logs?limit=1000&after=p1>; rel="next"`)
			_, _ = w.Write([]byte("[]"))
		}
	}))
	defer srv.Close()
	t.Setenv("REVOKED_OKTA_API_TOKEN", "okta-test-token")
	ckpt := filepath.Join(t.TempDir(), "okta.checkpoint")
	out, err := runCLI(t, "", "ingest", "okta-logs", "--kafka.brokers", c.Addr(), "--okta.org-url", srv.URL,
		"--okta.since", "24h", "--checkpoint", ckpt, "--until-caught-up", "--http.addr", "127.0.0.1:0", "--log.level", "warn")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "okta-logs: 1 events published") {
		t.Errorf("report %q", out)
	}
	evs := c.Records(t, schemas.TopicAuditEvents)
	if len(evs) != 1 || string(evs[0].Key) != "00u1qw1mqitPHM8AJ0g7" {
		t.Fatalf("events %v", evs)
	}
	b, err := os.ReadFile(ckpt)
	if err != nil || !strings.Contains(string(b), "after=p1") || strings.Contains(string(b), "okta-test-token") {
		t.Errorf("checkpoint %s %v", b, err)
	}
}

// "ingest box-events" reads the stream with the client-credentials grant
// and stops once caught up.
func TestBoxEventsCommand(t *testing.T) {
	c := kafkatest.New(t, schemas.TopicAuditEvents, schemas.TopicDLQ, schemas.TopicUnmapped)
	var page map[string]any
	if err := json.Unmarshal([]byte(compact(t, filepath.Join("ingest", "box", "testdata", "events_reference.json"))), &page); err != nil {
		t.Fatal(err)
	}
	entry := page["entries"].([]any)[0].(map[string]any)
	entry["event_type"] = "LOGIN"
	entry["ip_address"] = "198.51.100.7"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/oauth2/token":
			_ = r.ParseForm()
			if r.PostForm.Get("client_secret") != "box-test-secret" || r.PostForm.Get("box_subject_id") != "899905961" {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			_, _ = w.Write([]byte(`{"access_token":"box-access","expires_in":3600,"restricted_to":[],"token_type":"bearer"}`))
		case "/2.0/events":
			if r.Header.Get("Authorization") != "Bearer box-access" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			if r.URL.Query().Get("stream_position") == "0" {
				_ = json.NewEncoder(w).Encode(page)
				return
			}
			_, _ = fmt.Fprintf(w, `{"chunk_size":0,"next_stream_position":%s,"entries":[]}`, r.URL.Query().Get("stream_position"))
		}
	}))
	defer srv.Close()
	t.Setenv("REVOKED_BOX_CLIENT_SECRET", "box-test-secret")
	out, err := runCLI(t, "", "ingest", "box-events", "--kafka.brokers", c.Addr(), "--box.api-url", srv.URL,
		"--box.token-url", srv.URL+"/oauth2/token", "--box.client-id", "cid", "--box.enterprise-id", "899905961", "--box.start", "0",
		"--checkpoint", filepath.Join(t.TempDir(), "box.checkpoint"), "--until-caught-up", "--http.addr", "127.0.0.1:0", "--log.level", "warn")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "box-events: 1 events published") {
		t.Errorf("report %q", out)
	}
	if evs := c.Records(t, schemas.TopicAuditEvents); len(evs) != 1 || string(evs[0].Key) != "11446498" {
		t.Fatalf("events %v", evs)
	}
}

// "ingest box-webhook" serves the receiver with the keys from the
// environment, and /readyz beside it.
func TestBoxWebhookCommand(t *testing.T) {
	c := kafkatest.New(t, schemas.TopicAuditEvents, schemas.TopicDLQ, schemas.TopicUnmapped)
	t.Setenv("REVOKED_BOX_WEBHOOK_PRIMARY_KEY", "wh-primary")
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"ingest", "box-webhook", "--kafka.brokers", c.Addr(), "--listen", addr, "--log.level", "warn"},
			strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{})
	}()
	body, err := os.ReadFile(filepath.Join("ingest", "box", "testdata", "webhook_file_uploaded.json"))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("receiver not ready: %v", err)
		}
		select {
		case err := <-done:
			t.Fatalf("receiver stopped: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	post := func(key string) int {
		ts := time.Now().Format(time.RFC3339)
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/box/webhook", bytes.NewReader(body))
		req.Header.Set(box.HeaderDeliveryTimestamp, ts)
		req.Header.Set(box.HeaderSignaturePrimary, box.Sign(key, body, ts))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("not-the-key"); code != http.StatusUnauthorized {
		t.Errorf("forged delivery: %d", code)
	}
	if code := post("wh-primary"); code != http.StatusOK {
		t.Fatalf("delivery: %d", code)
	}
	if evs := c.WaitRecords(t, schemas.TopicAuditEvents, 1); len(evs) != 1 {
		t.Errorf("events %v", evs)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("receiver: %v", err)
	}
}
