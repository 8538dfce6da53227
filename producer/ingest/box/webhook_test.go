package box_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/internal/config"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/kafka/kafkatest"
	"github.com/revoked-dev/revoked/internal/ops"
	"github.com/revoked-dev/revoked/producer/ingest"
	"github.com/revoked-dev/revoked/producer/ingest/box"
	"github.com/revoked-dev/revoked/producer/ingest/source"
	"github.com/revoked-dev/revoked/schemas"
)

const (
	primaryKey   = "SamplePrimaryKey"
	secondaryKey = "SampleSecondaryKey"
)

type webhookHarness struct {
	k   *kafkatest.Cluster
	url string
	clk *clockwork.FakeClock
}

func newWebhookHarness(t *testing.T, mutate func(*box.WebhookConfig)) *webhookHarness {
	t.Helper()
	k := kafkatest.New(t, schemas.TopicAuditEvents, schemas.TopicDLQ, schemas.TopicUnmapped)
	w, err := kafkax.NewWriter(k.WriterConfig(""), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	sink, err := source.NewSink(ingest.DefaultConfig(), w, box.FormatWebhook, box.WebhookSourceName, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := box.DefaultWebhookConfig()
	cfg.PrimaryKey = config.NewSecret(primaryKey)
	cfg.SecondaryKey = config.NewSecret(secondaryKey)
	if mutate != nil {
		mutate(&cfg)
	}
	clk := clockwork.NewFakeClockAt(time.Date(2016, 7, 11, 17, 12, 0, 0, time.UTC))
	rc, err := box.NewReceiver(cfg, sink, zerolog.Nop(), ops.NewRegistry(), clk)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	return &webhookHarness{k: k, url: srv.URL + cfg.Path, clk: clk}
}

// deliver posts body as Box would at sent, signed with the keys given
// (empty: no such header).
func (h *webhookHarness) deliver(t *testing.T, body []byte, sent time.Time, primary, secondary string) (int, map[string]string) {
	t.Helper()
	ts := sent.In(time.FixedZone("PDT", -7*3600)).Format(time.RFC3339)
	req, err := http.NewRequest(http.MethodPost, h.url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json; charset=UTF-8")
	req.Header.Set("User-Agent", "Box-WH-Client/0.1")
	req.Header.Set(box.HeaderDeliveryID, "673a081b-bb4b-4d45-b4f1-4131a29c1d07")
	req.Header.Set(box.HeaderDeliveryTimestamp, ts)
	req.Header.Set(box.HeaderSignatureVersion, "1")
	req.Header.Set(box.HeaderSignatureAlgorithm, "HmacSHA256")
	if primary != "" {
		req.Header.Set(box.HeaderSignaturePrimary, box.Sign(primary, body, ts))
	}
	if secondary != "" {
		req.Header.Set(box.HeaderSignatureSecondary, box.Sign(secondary, body, ts))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// The documented FILE.UPLOADED payload, delivered and signed as Box
// does, becomes one AuditEvent; Box's retry of it (same payload id, a new
// delivery) is answered 200 and not published again; an unmapped trigger
// is kept on the unmapped topic.
func TestWebhookDelivery(t *testing.T) {
	h := newWebhookHarness(t, nil)
	body := fixture(t, "webhook_file_uploaded.json")
	now := h.clk.Now()
	if code, out := h.deliver(t, body, now.Add(-time.Minute), primaryKey, secondaryKey); code != http.StatusOK || out["status"] != "published" {
		t.Fatalf("delivery: %d %v", code, out)
	}
	if code, out := h.deliver(t, body, now, primaryKey, secondaryKey); code != http.StatusOK || out["status"] != "duplicate" {
		t.Fatalf("redelivery: %d %v", code, out)
	}
	// Rotation: only the secondary key still matches.
	var other map[string]any
	if err := json.Unmarshal(body, &other); err != nil {
		t.Fatal(err)
	}
	other["id"] = "0f4d2d2e-2b43-4a6a-9a43-3a2b5e1d7c10"
	other["trigger"] = "FILE.TRASHED"
	if code, out := h.deliver(t, mustJSON(t, other), now, "", secondaryKey); code != http.StatusOK || out["status"] != "published" {
		t.Fatalf("unmapped trigger: %d %v", code, out)
	}

	evs := h.k.WaitRecords(t, schemas.TopicAuditEvents, 1)
	if got := ids(evs); !slices.Equal(got, []string{"box-webhook:eb0c4e06-751f-442c-86f8-fd5bb404dbec"}) {
		t.Errorf("events %v", got)
	}
	un := h.k.WaitRecords(t, schemas.TopicUnmapped, 1)
	if len(un) != 1 || header(un[0], schemas.HeaderUnmappedType) != "FILE.TRASHED" || header(un[0], schemas.HeaderUnmappedFormat) != box.FormatWebhook {
		t.Errorf("unmapped %v", un)
	}
}

// A delivery whose signature does not verify, and a stale one correctly
// signed, are refused and publish nothing.
func TestWebhookRefusesBadSignatureAndStaleTimestamp(t *testing.T) {
	h := newWebhookHarness(t, nil)
	body := fixture(t, "webhook_file_uploaded.json")
	now := h.clk.Now()
	if code, out := h.deliver(t, body, now, "not-the-key", "not-the-other"); code != http.StatusUnauthorized || out["status"] != "bad_signature" {
		t.Errorf("bad signature: %d %v", code, out)
	}
	if code, out := h.deliver(t, body, now, "", ""); code != http.StatusUnauthorized {
		t.Errorf("unsigned: %d %v", code, out)
	}
	if code, out := h.deliver(t, body, now.Add(-11*time.Minute), primaryKey, secondaryKey); code != http.StatusBadRequest || out["status"] != "stale" {
		t.Errorf("stale: %d %v", code, out)
	}
	// Box's own documented delivery is signed correctly but from 2020.
	hs, vb := webhookVector(t)
	req, _ := http.NewRequest(http.MethodPost, h.url, bytes.NewReader(vb))
	req.Header = hs
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("documented 2020 delivery: %d, want 400 (stale)", resp.StatusCode)
	}
	// Now a good one, so that an empty topic is not an accident of
	// timing.
	if code, _ := h.deliver(t, body, now, primaryKey, ""); code != http.StatusOK {
		t.Fatalf("good delivery: %d", code)
	}
	if got := ids(h.k.WaitRecords(t, schemas.TopicAuditEvents, 1)); len(got) != 1 {
		t.Errorf("events %v, want only the good delivery's", got)
	}
	for _, topic := range []string{schemas.TopicUnmapped, schemas.TopicDLQ} {
		if n := len(h.k.Records(t, topic)); n != 0 {
			t.Errorf("%d records on %s", n, topic)
		}
	}
}

func TestWebhookNeedsAKey(t *testing.T) {
	cfg := box.DefaultWebhookConfig()
	if err := cfg.Validate(); err == nil {
		t.Fatal("a receiver without keys validated")
	}
}
