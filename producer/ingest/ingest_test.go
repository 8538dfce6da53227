package ingest

import (
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

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/internal/config"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/schemas"
)

// memPublisher records published batches.
type memPublisher struct {
	mu      sync.Mutex
	batches [][]kafkax.Message
	failAt  int // fail the n-th call (1-based); 0 never
	calls   int
}

func (p *memPublisher) WriteMessages(_ context.Context, msgs ...kafkax.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	if p.failAt == p.calls {
		return errors.New("broker unavailable")
	}
	p.batches = append(p.batches, append([]kafkax.Message(nil), msgs...))
	return nil
}

func (p *memPublisher) all() []kafkax.Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []kafkax.Message
	for _, b := range p.batches {
		out = append(out, b...)
	}
	return out
}

func header(m kafkax.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func event(id, user string) string {
	return fmt.Sprintf(`{"id":%q,"time":"2026-03-01T10:00:00Z","type":"login.success","user_id":%q,"ip":"203.0.113.7"}`, id, user)
}

const (
	badLat     = `{"id":"e-bad","time":"2026-03-01T10:00:00Z","type":"login.success","user_id":"u9","geo":{"country":"DE","lat":123,"lon":5}}`
	badUnknown = `{"id":"e-x","time":"2026-03-01T10:00:00Z","type":"login.success","user_id":"u9","password":"hunter2"}`
	notJSON    = `this is not json`
)

func sampleInput() string {
	return strings.Join([]string{
		event("e1", "alice"),
		badLat,
		"",
		event("e2", "bob") + "\r",
		notJSON,
		"   ",
		badUnknown,
		event("e3", "alice"),
	}, "\n") + "\n"
}

func newTestIngester(t *testing.T, pub Publisher, mutate func(*Config)) *Ingester {
	t.Helper()
	cfg := DefaultConfig()
	cfg.BatchSize = 2
	if mutate != nil {
		mutate(&cfg)
	}
	in, err := New(cfg, pub, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func TestIngestSplitsValidAndRejected(t *testing.T) {
	pub := &memPublisher{}
	in := newTestIngester(t, pub, nil)
	var progressCalls int
	res, err := in.Ingest(t.Context(), strings.NewReader(sampleInput()), "events.jsonl", func(_, _ int64) { progressCalls++ })
	if err != nil {
		t.Fatal(err)
	}
	if res.Lines != 8 || res.Accepted != 3 || res.RejectedTotal != 3 || res.Blank != 2 || res.PublishedThrough != 8 {
		t.Fatalf("unexpected result %+v", res)
	}
	if res.Bytes != int64(len(sampleInput())) {
		t.Errorf("bytes %d, want %d", res.Bytes, len(sampleInput()))
	}
	if progressCalls == 0 {
		t.Error("progress was never called")
	}
	wantLines := []int64{2, 5, 7}
	for i, r := range res.Rejected {
		if r.Line != wantLines[i] {
			t.Errorf("rejection %d on line %d, want %d", i, r.Line, wantLines[i])
		}
	}
	if got := res.Rejected[0].Error; !strings.HasPrefix(got, `field "geo.lat": `) {
		t.Errorf("rejection names no field: %q", got)
	}
	if got := res.Rejected[2].Error; !strings.Contains(got, `field "password": unknown field`) {
		t.Errorf("unknown field not named: %q", got)
	}

	msgs := pub.all()
	if len(msgs) != 6 {
		t.Fatalf("published %d messages, want 6", len(msgs))
	}
	for _, b := range pub.batches {
		if len(b) > 2 {
			t.Errorf("batch of %d exceeds BatchSize 2", len(b))
		}
	}
	var keys []string
	for _, m := range msgs {
		switch m.Topic {
		case schemas.TopicAuditEvents:
			ev, err := schemas.DecodeEvent(m.Value)
			if err != nil {
				t.Errorf("published event does not decode: %v", err)
			}
			if string(m.Key) != ev.UserID {
				t.Errorf("key %q, want user id %q", m.Key, ev.UserID)
			}
			if header(m, schemas.HeaderSchema) != schemas.SchemaAuditEventV1 {
				t.Errorf("schema header missing")
			}
			keys = append(keys, string(m.Key))
		case schemas.TopicDLQ:
			if header(m, schemas.HeaderDLQReason) == "" || header(m, schemas.HeaderDLQComponent) != "producer" ||
				header(m, schemas.HeaderDLQTopic) != schemas.TopicAuditEvents || header(m, HeaderDLQSource) != "events.jsonl" {
				t.Errorf("dead-letter headers incomplete: %+v", m.Headers)
			}
		default:
			t.Errorf("unexpected topic %q", m.Topic)
		}
	}
	if strings.Join(keys, ",") != "alice,bob,alice" {
		t.Errorf("event keys %v", keys)
	}
	// Rejected lines travel exactly as received.
	if msgs[1].Topic != schemas.TopicDLQ || string(msgs[1].Value) != badLat || header(msgs[1], schemas.HeaderDLQOffset) != "2" {
		t.Errorf("second message should be line 2 as received, got %s %q offset %s", msgs[1].Topic, msgs[1].Value, header(msgs[1], schemas.HeaderDLQOffset))
	}
}

// Valid events are enriched before they are published; rejected lines
// travel as received.
func TestIngestEnriches(t *testing.T) {
	pub := &memPublisher{}
	var seen []string
	in, err := New(DefaultConfig(), pub, zerolog.Nop(), WithEnrich(func(ev *schemas.AuditEvent) {
		seen = append(seen, ev.ID)
		ev.Geo = &schemas.Geo{ASN: 64500, Network: schemas.NetworkBusiness}
	}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.Ingest(t.Context(), strings.NewReader(sampleInput()), "events.jsonl", nil); err != nil {
		t.Fatal(err)
	}
	if strings.Join(seen, ",") != "e1,e2,e3" {
		t.Errorf("enriched %v, want the valid events e1,e2,e3", seen)
	}
	for _, m := range pub.all() {
		if m.Topic != schemas.TopicAuditEvents {
			if strings.Contains(string(m.Value), "64500") {
				t.Errorf("a rejected line was enriched: %s", m.Value)
			}
			continue
		}
		ev, err := schemas.DecodeEvent(m.Value)
		if err != nil {
			t.Fatalf("published event does not decode: %v", err)
		}
		if ev.Geo == nil || ev.Geo.ASN != 64500 || ev.Geo.Network != schemas.NetworkBusiness {
			t.Errorf("published %s without its enrichment", m.Value)
		}
	}
}

func TestIngestLongLineIsTruncatedAndDeadLettered(t *testing.T) {
	pub := &memPublisher{}
	in := newTestIngester(t, pub, func(c *Config) { c.MaxLineBytes = schemas.MaxEventBytes })
	long := `{"id":"` + strings.Repeat("x", 300<<10) + `"}`
	input := event("e1", "alice") + "\n" + long + "\n" + event("e2", "bob") + "\n"
	res, err := in.Ingest(t.Context(), strings.NewReader(input), "big.jsonl", nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 2 || res.RejectedTotal != 1 || res.Lines != 3 {
		t.Fatalf("unexpected result %+v", res)
	}
	dl := pub.all()[1]
	if dl.Topic != schemas.TopicDLQ || len(dl.Value) != schemas.MaxEventBytes || header(dl, HeaderDLQTruncated) != "true" {
		t.Fatalf("long line: topic %s, %d bytes, truncated=%q", dl.Topic, len(dl.Value), header(dl, HeaderDLQTruncated))
	}
	if !strings.Contains(res.Rejected[0].Error, "longer than the limit") {
		t.Errorf("reason %q", res.Rejected[0].Error)
	}
}

func TestIngestLastLineWithoutNewline(t *testing.T) {
	pub := &memPublisher{}
	in := newTestIngester(t, pub, nil)
	res, err := in.Ingest(t.Context(), strings.NewReader(event("e1", "a")+"\n"+event("e2", "b")), "x", nil)
	if err != nil || res.Accepted != 2 {
		t.Fatalf("res %+v err %v", res, err)
	}
}

func TestIngestPublishFailureSaysWhereToResume(t *testing.T) {
	pub := &memPublisher{failAt: 2}
	in := newTestIngester(t, pub, nil)
	res, err := in.Ingest(t.Context(), strings.NewReader(sampleInput()), "events.jsonl", nil)
	if err == nil || !strings.Contains(err.Error(), "broker unavailable") {
		t.Fatalf("want the publish error, got %v", err)
	}
	// The first batch held lines 1 and 2, line 3 is blank, and the second
	// batch (lines 4 and 5) failed.
	if res.PublishedThrough != 3 {
		t.Fatalf("published through %d, want 3", res.PublishedThrough)
	}
}

func TestIngestStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	in := newTestIngester(t, &memPublisher{}, nil)
	if _, err := in.Ingest(ctx, strings.NewReader(sampleInput()), "x", nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("want context.Canceled, got %v", err)
	}
}

func TestConfigValidateReportsEverything(t *testing.T) {
	err := Config{}.Validate()
	if err == nil {
		t.Fatal("empty config must not validate")
	}
	for _, f := range []string{"topic", "batch-size", "max-line-bytes"} {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error lacks %q: %v", f, err)
		}
	}
	if !errors.Is(err, config.ErrInvalid) {
		t.Error("validation errors must match config.ErrInvalid")
	}
}

func newTestServer(t *testing.T, pub Publisher, token string) *httptest.Server {
	t.Helper()
	in := newTestIngester(t, pub, nil)
	hc := DefaultHTTPConfig()
	hc.MaxBodyBytes = 4096
	hc.BearerToken = config.NewSecret(token)
	srv, err := NewServer(hc, in, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return ts
}

func post(t *testing.T, url, token, body string) (int, Response, map[string]string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url+EventsPath, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var r Response
	var e map[string]string
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusMultiStatus ||
		(resp.StatusCode == http.StatusBadRequest && strings.Contains(string(raw), `"accepted"`)) {
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatalf("decoding %s: %v", raw, err)
		}
	} else {
		_ = json.Unmarshal(raw, &e)
	}
	return resp.StatusCode, r, e
}

func TestHTTPEndpoint(t *testing.T) {
	pub := &memPublisher{}
	ts := newTestServer(t, pub, "s3cret")

	status, r, _ := post(t, ts.URL, "s3cret", event("e1", "alice")+"\n"+event("e2", "bob")+"\n")
	if status != http.StatusOK || r.Accepted != 2 || len(r.Rejected) != 0 {
		t.Fatalf("all valid: status %d, %+v", status, r)
	}

	status, r, _ = post(t, ts.URL, "s3cret", event("e3", "alice")+"\n"+badLat+"\n")
	if status != http.StatusMultiStatus || r.Accepted != 1 || len(r.Rejected) != 1 || r.Rejected[0].Line != 2 ||
		!strings.HasPrefix(r.Rejected[0].Error, `field "geo.lat": `) {
		t.Fatalf("partial: status %d, %+v", status, r)
	}

	status, r, _ = post(t, ts.URL, "s3cret", notJSON+"\n")
	if status != http.StatusBadRequest || r.Accepted != 0 || r.RejectedTotal != 1 {
		t.Fatalf("all rejected: status %d, %+v", status, r)
	}

	dl := 0
	for _, m := range pub.all() {
		if m.Topic == schemas.TopicDLQ {
			dl++
			if !strings.HasPrefix(header(m, HeaderDLQSource), "http:") {
				t.Errorf("source header %q", header(m, HeaderDLQSource))
			}
		}
	}
	if dl != 2 {
		t.Errorf("dead-lettered %d lines, want 2", dl)
	}

	if status, _, e := post(t, ts.URL, "", event("e4", "a")); status != http.StatusUnauthorized || e["error"] == "" {
		t.Errorf("no token: status %d %v", status, e)
	}
	if status, _, _ := post(t, ts.URL, "wrong", event("e4", "a")); status != http.StatusUnauthorized {
		t.Errorf("wrong token: status %d", status)
	}
	before := len(pub.all())
	if status, _, _ := post(t, ts.URL, "s3cret", strings.Repeat(event("e5", "a")+"\n", 100)); status != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized: status %d", status)
	}
	if len(pub.all()) != before {
		t.Error("an oversized body must publish nothing")
	}
	resp, err := http.Get(ts.URL + EventsPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: status %d", resp.StatusCode)
	}
}

func TestHTTPPublishFailureIs503(t *testing.T) {
	ts := newTestServer(t, &memPublisher{failAt: 1}, "")
	status, _, e := post(t, ts.URL, "", event("e1", "alice")+"\n")
	if status != http.StatusServiceUnavailable || e["error"] == "" {
		t.Fatalf("status %d %v", status, e)
	}
}

// A line whose token id is a raw token is refused naming the field, and its
// dead-letter copy carries the token's fingerprint, never the token.
func TestIngestRedactsRawTokenIDInDeadLetter(t *testing.T) {
	const raw = "q0B3pVbS9nIc7tYx_1kEwRf2LmZ8uJg4HdA6oTsXyN5"
	line := `{"id":"e-tok","time":"2026-03-01T10:00:00Z","type":"token.used","user_id":"u9","token_id":"` + raw + `"}`
	pub := &memPublisher{}
	in := newTestIngester(t, pub, nil)
	res, err := in.Ingest(t.Context(), strings.NewReader(line+"\n"), "events.jsonl", nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.RejectedTotal != 1 || !strings.HasPrefix(res.Rejected[0].Error, `field "token_id": looks like a raw token`) || strings.Contains(res.Rejected[0].Error, raw) {
		t.Fatalf("result %+v", res)
	}
	msgs := pub.all()
	if len(msgs) != 1 || msgs[0].Topic != schemas.TopicDLQ {
		t.Fatalf("published %+v", msgs)
	}
	dl := msgs[0]
	if strings.Contains(string(dl.Value), raw) || !strings.Contains(string(dl.Value), schemas.Fingerprint(raw)) {
		t.Errorf("dead letter value %s", dl.Value)
	}
	if header(dl, schemas.HeaderDLQRedacted) != "token_id" || header(dl, schemas.HeaderDLQOriginalSHA256) == "" {
		t.Errorf("dead letter headers %+v", dl.Headers)
	}
	for _, h := range dl.Headers {
		if strings.Contains(string(h.Value), raw) {
			t.Errorf("header %s holds the raw token", h.Key)
		}
	}
}
