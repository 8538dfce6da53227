package box_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/kafka/kafkatest"
	"github.com/revoked-dev/revoked/internal/ops"
	"github.com/revoked-dev/revoked/producer/ingest"
	"github.com/revoked-dev/revoked/producer/ingest/box"
	"github.com/revoked-dev/revoked/producer/ingest/source"
	"github.com/revoked-dev/revoked/schemas"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func login(t testing.TB, id, typ string, sec int) map[string]any {
	return enterpriseEvent(t, id, typ, t0.Add(time.Duration(sec)*time.Second), "198.51.100.7")
}

type harness struct {
	k        *kafkatest.Cluster
	w        *kafkax.Writer
	box      *fakeBox
	ckpt     string
	metrics  *source.Metrics
	cfg      box.Config
	poll     source.PollConfig
	clk      clockwork.Clock
	ingestDf ingest.Config
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	k := kafkatest.New(t, schemas.TopicAuditEvents, schemas.TopicDLQ, schemas.TopicUnmapped)
	w, err := kafkax.NewWriter(k.WriterConfig(""), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	m, err := source.NewMetrics(ops.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	fb := newFakeBox(t)
	cfg := fb.config()
	cfg.Start = "0"
	poll := source.DefaultPollConfig()
	poll.Checkpoint = filepath.Join(t.TempDir(), "box.checkpoint")
	poll.UntilCaughtUp = true
	return &harness{k: k, w: w, box: fb, ckpt: poll.Checkpoint, metrics: m, cfg: cfg, poll: poll, clk: clockwork.NewRealClock(), ingestDf: ingest.DefaultConfig()}
}

// run polls until caught up (or ctx ends), publishing through pub.
func (h *harness) run(ctx context.Context, t *testing.T, pub ingest.Publisher) error {
	t.Helper()
	sink, err := source.NewSink(h.ingestDf, pub, box.FormatEvent, box.StreamSourceName, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := box.NewPoller(h.cfg, h.poll, sink, zerolog.Nop(), h.clk, nil, source.WithMetrics(h.metrics))
	if err != nil {
		t.Fatal(err)
	}
	return p.Run(ctx, h.cfg.From)
}

func ids(msgs []kafkax.Message) []string {
	var out []string
	for _, m := range msgs {
		ev, err := schemas.DecodeEvent(m.Value)
		if err != nil {
			out = append(out, "undecodable:"+string(m.Key))
			continue
		}
		out = append(out, ev.ID)
	}
	sort.Strings(out)
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

// The stream is read page by page into Kafka: mapped events to the events
// topic, the reference's unmapped type and an anonymous download to the
// unmapped topic with headers saying why, a redelivered event dropped,
// and the checkpoint left at the last position.
func TestPollIntoKafka(t *testing.T) {
	h := newHarness(t)
	anon := login(t, "e5", "DOWNLOAD", 40)
	anon["created_by"] = map[string]any{"type": "user", "id": "2", "name": "Unknown User", "login": ""}
	h.box.page("0", "1001", login(t, "e1", "LOGIN", 0), login(t, "e2", "DOWNLOAD", 10), referenceEntry(t))
	h.box.page("1001", "1002", login(t, "e4", "FAILED_LOGIN", 30), login(t, "e2", "DOWNLOAD", 10), anon)
	if err := h.run(t.Context(), t, h.w); err != nil {
		t.Fatal(err)
	}
	if got := ids(h.k.Records(t, schemas.TopicAuditEvents)); !slices.Equal(got, []string{"box:e1", "box:e2", "box:e4"}) {
		t.Errorf("events %v", got)
	}
	un := h.k.Records(t, schemas.TopicUnmapped)
	if len(un) != 2 {
		t.Fatalf("%d unmapped records", len(un))
	}
	for i, want := range []struct{ key, typ string }{{"f82c3ba03e41f7e8a7608363cc6c0390183c3f83", "FILE_MARKED_MALICIOUS"}, {"e5", "DOWNLOAD"}} {
		m := un[i]
		if string(m.Key) != want.key || header(m, schemas.HeaderUnmappedType) != want.typ ||
			header(m, schemas.HeaderUnmappedFormat) != box.FormatEvent || header(m, schemas.HeaderUnmappedSource) != box.StreamSourceName ||
			header(m, schemas.HeaderUnmappedReason) == "" {
			t.Errorf("unmapped %d: key %s headers %v", i, m.Key, m.Headers)
		}
	}
	if n := len(h.k.Records(t, schemas.TopicDLQ)); n != 0 {
		t.Errorf("%d dead letters", n)
	}
	if got := h.box.positions(); !slices.Equal(got, []string{"0", "1001", "1002"}) {
		t.Errorf("positions asked %v", got)
	}
	c, found, err := mustStore(t, h.ckpt).Load()
	if err != nil || !found || c.Cursor != "1002" || !slices.Contains(c.Seen, "e4") {
		t.Errorf("checkpoint %+v %v %v", c, found, err)
	}
	if d := value(h.metrics.Records.WithLabelValues(box.StreamSourceName, "duplicate")); d != 1 {
		t.Errorf("%v duplicates counted", d)
	}
	if n := value(h.metrics.Records.WithLabelValues(box.StreamSourceName, "published")); n != 3 {
		t.Errorf("%v published counted", n)
	}
}

func mustStore(t *testing.T, path string) *source.FileStore {
	t.Helper()
	s, err := source.NewFileStore(path, box.StreamSourceName)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// failingPublisher fails its n-th write and cancels the run, as a broker
// lost mid-run followed by the process being stopped.
type failingPublisher struct {
	ingest.Publisher
	mu     sync.Mutex
	calls  int
	failAt int
	cancel context.CancelFunc
}

func (p *failingPublisher) WriteMessages(ctx context.Context, msgs ...kafkax.Message) error {
	p.mu.Lock()
	p.calls++
	fail := p.calls == p.failAt
	p.mu.Unlock()
	if fail {
		p.cancel()
		return errors.New("kafka: broker not available")
	}
	return p.Publisher.WriteMessages(ctx, msgs...)
}

// A run stopped while publishing its second page leaves the checkpoint
// after the first; the next run resumes there (not from the start), reads
// the second page again and what came since, and Kafka ends with every
// event exactly once, though Box delivered one again.
func TestRestartFromCheckpointWithoutLossOrDuplicate(t *testing.T) {
	h := newHarness(t)
	h.box.page("0", "1001", login(t, "e1", "FAILED_LOGIN", 0), login(t, "e2", "FAILED_LOGIN", 1))
	h.box.page("1001", "1002", login(t, "e3", "FAILED_LOGIN", 2), login(t, "e4", "FAILED_LOGIN", 3))

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	if err := h.run(ctx, t, &failingPublisher{Publisher: h.w, failAt: 2, cancel: cancel}); err != nil {
		t.Fatalf("first run: %v", err)
	}
	c, found, err := mustStore(t, h.ckpt).Load()
	if err != nil || !found || c.Cursor != "1001" {
		t.Fatalf("checkpoint after the stopped run: %+v %v %v", c, found, err)
	}
	if got := ids(h.k.Records(t, schemas.TopicAuditEvents)); !slices.Equal(got, []string{"box:e1", "box:e2"}) {
		t.Fatalf("events after the stopped run %v", got)
	}

	// Meanwhile the stream went on, redelivering e1.
	h.box.page("1002", "1003", login(t, "e5", "LOGIN", 4), login(t, "e1", "FAILED_LOGIN", 0))
	before := len(h.box.positions())
	if err := h.run(t.Context(), t, h.w); err != nil {
		t.Fatalf("second run: %v", err)
	}
	if got := h.box.positions()[before:]; !slices.Equal(got, []string{"1001", "1002", "1003"}) {
		t.Errorf("second run asked for %v, want to resume at 1001", got)
	}
	if got := ids(h.k.Records(t, schemas.TopicAuditEvents)); !slices.Equal(got, []string{"box:e1", "box:e2", "box:e3", "box:e4", "box:e5"}) {
		t.Errorf("events %v, want each once", got)
	}
}

// -from-position reads from the position given, ignoring the
// checkpoint's cursor: a backfill.
func TestBackfillFromPosition(t *testing.T) {
	h := newHarness(t)
	h.box.page("0", "1001", login(t, "e1", "LOGIN", 0))
	h.box.page("500", "1001", login(t, "e0", "LOGIN", 0))
	if err := h.run(t.Context(), t, h.w); err != nil {
		t.Fatal(err)
	}
	h.cfg.From = "500"
	if err := h.run(t.Context(), t, h.w); err != nil {
		t.Fatal(err)
	}
	if got := h.box.positions(); !slices.Equal(got, []string{"0", "1001", "500", "1001"}) {
		t.Errorf("positions %v", got)
	}
	if got := ids(h.k.Records(t, schemas.TopicAuditEvents)); !slices.Equal(got, []string{"box:e0", "box:e1"}) {
		t.Errorf("events %v", got)
	}
}

// A 429 makes the poller wait Retry-After on its clock, and nothing else:
// the test's fake clock must be advanced by it before the next request.
func TestRateLimitWaitsRetryAfter(t *testing.T) {
	h := newHarness(t)
	clk := clockwork.NewFakeClockAt(t0)
	h.clk = clk
	h.box.answerOnce(func(w http.ResponseWriter) {
		w.Header().Set("Retry-After", "30")
		boxError(w, http.StatusTooManyRequests, "rate_limit_exceeded", "Request rate limit exceeded, please try again later")
	})
	h.box.page("0", "1001", login(t, "e1", "LOGIN", 0))

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.run(ctx, t, h.w) }()
	if err := clk.BlockUntilContext(ctx, 1); err != nil {
		t.Fatalf("the poller never waited: %v", err)
	}
	if got := h.box.positions(); len(got) != 1 {
		t.Fatalf("requests before the wait: %v", got)
	}
	if w := value(h.metrics.WaitSeconds.WithLabelValues(box.StreamSourceName, "rate_limit")); w != 30 {
		t.Errorf("rate-limit wait %vs, want Retry-After's 30s", w)
	}
	clk.Advance(30 * time.Second)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := h.box.positions(); !slices.Equal(got, []string{"0", "0", "1001"}) {
		t.Errorf("positions %v", got)
	}
	if n := value(h.metrics.RateLimited.WithLabelValues(box.StreamSourceName)); n != 1 {
		t.Errorf("rate limited %v times", n)
	}
	if got := ids(h.k.Records(t, schemas.TopicAuditEvents)); !slices.Equal(got, []string{"box:e1"}) {
		t.Errorf("events %v", got)
	}
}

// A token Box stopped honouring is renewed once, and the page read.
func TestRevokedTokenIsRenewed(t *testing.T) {
	h := newHarness(t)
	h.box.page("0", "1001", login(t, "e1", "LOGIN", 0))
	h.box.page("1001", "1002", login(t, "e2", "LOGIN", 1))
	c, err := box.NewClient(h.cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Fetch(t.Context(), "0"); err != nil {
		t.Fatal(err)
	}
	h.box.revokeToken()
	p, err := c.Fetch(t.Context(), "1001")
	if err != nil || len(p.Records) != 1 || p.Records[0].ID != "e2" || p.Next != "1002" {
		t.Fatalf("page %+v %v", p, err)
	}
	if n := h.box.tokenRequests(); n != 2 {
		t.Errorf("%d token requests, want 2", n)
	}
}

// Credentials Box refuses stop the poller with an error naming Box's
// answer, without the secret.
func TestBadCredentialsArePermanent(t *testing.T) {
	h := newHarness(t)
	h.cfg.ClientID = "wrong"
	err := h.run(t.Context(), t, h.w)
	if err == nil || !source.IsPermanent(err) {
		t.Fatalf("err %v, want permanent", err)
	}
	if got := err.Error(); !strings.Contains(got, "invalid_client") || strings.Contains(got, testSecret) {
		t.Errorf("error %q", got)
	}
	if _, err := os.Stat(h.ckpt); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a checkpoint was written: %v", err)
	}
}

// value reads a counter or gauge.
func value(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		return -1
	}
	if c := d.GetCounter(); c != nil {
		return c.GetValue()
	}
	return d.GetGauge().GetValue()
}
