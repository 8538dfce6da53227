package okta_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/internal/config"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/kafka/kafkatest"
	"github.com/revoked-dev/revoked/internal/ops"
	"github.com/revoked-dev/revoked/producer/ingest"
	"github.com/revoked-dev/revoked/producer/ingest/okta"
	"github.com/revoked-dev/revoked/producer/ingest/source"
	"github.com/revoked-dev/revoked/schemas"
)

const (
	testToken  = "00QCjAl4MlV-WPXM-ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	testBearer = "eyJraWQiOiJFLTZKcWNFV0JLSzN5QnBwSWw0d1JGcHZHN3dKcFVYTGhjbmtMTjRXd0U0In0.e30.c2ln"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func mapEvent(t *testing.T, m okta.Mapping, e map[string]any) (schemas.AuditEvent, error) {
	t.Helper()
	ev, err := m.Event(source.Record{Raw: mustJSON(t, e)})
	if err == nil {
		if verr := ev.Validate(); verr != nil {
			t.Fatalf("mapped event does not validate: %v\n%+v", verr, ev)
		}
	}
	return ev, err
}

// The reference's own example has a published time that is not a date
// (2017-09-31): mapping it is an error, not an unmapped record, so the
// poller dead-letters it with the reason.
func TestReferenceExampleHasNoValidDate(t *testing.T) {
	_, err := okta.Mapping{}.Event(source.Record{Raw: fixture(t, "logevent_reference.json")})
	if err == nil || errors.Is(err, ingest.ErrUnmapped) || !strings.Contains(err.Error(), "published") {
		t.Fatalf("err %v, want a published-time error", err)
	}
}

func TestMapLogEvents(t *testing.T) {
	for _, c := range []struct {
		eventType, result string
		want              schemas.EventType
	}{
		{"user.session.start", "SUCCESS", schemas.EventLoginSuccess},
		{"user.session.start", "FAILURE", schemas.EventLoginFailure},
		{"user.authentication.auth_via_mfa", "FAILURE", schemas.EventMFAFailure},
		{"user.authentication.auth_via_AD_agent", "FAILURE", schemas.EventLoginFailure},
		{"user.authentication.auth_via_social", "FAILURE", schemas.EventLoginFailure},
		{"user.authentication.verify", "FAILURE", schemas.EventMFAFailure},
		{"user.mfa.okta_verify.deny_push", "FAILURE", schemas.EventMFAFailure},
		{"user.mfa.okta_verify.deny_push_upgrade_needed", "FAILURE", schemas.EventMFAFailure},
		{"user.mfa.okta_verify", "FAILURE", schemas.EventMFAFailure},
		{"user.mfa.attempt_bypass", "FAILURE", schemas.EventMFAFailure},
		{"user.account.update_password", "SUCCESS", schemas.EventPasswordChanged},
		{"user.account.reset_password", "SUCCESS", schemas.EventPasswordReset},
		{"user.session.end", "SUCCESS", schemas.EventLogout},
		{"user.account.lock", "SUCCESS", schemas.EventAccountLocked},
		{"user.account.lock.limit", "FAILURE", schemas.EventAccountLocked},
	} {
		t.Run(c.eventType+"/"+c.result, func(t *testing.T) {
			e := logEvent(t, "1b0f4e3a-7c1e-4e4a-9a3e-0c2d3e4f5a6b", c.eventType, c.result, t0)
			ev, err := mapEvent(t, okta.Mapping{}, e)
			if err != nil {
				t.Fatal(err)
			}
			if ev.Type != c.want || ev.UserID != "00u1qw1mqitPHM8AJ0g7" || ev.ID != "okta:1b0f4e3a-7c1e-4e4a-9a3e-0c2d3e4f5a6b" || !ev.Time.Equal(t0) {
				t.Errorf("event %+v", ev)
			}
			if ev.IP != "198.51.100.23" || ev.UserAgent != "UNKNOWN-DOWNLOAD" || ev.DeviceID != "guob5wtu7rBggkg9G1d7" ||
				ev.SessionID != "1013FfF-DKQSvCI4RVXChzX-w" || ev.Source != "okta" {
				t.Errorf("context %+v", ev)
			}
			if ev.Geo == nil || ev.Geo.ASN != 7922 || ev.Geo.Org != "comcast" || ev.Geo.Lat == nil || *ev.Geo.Lat != 37.7852 {
				t.Errorf("geo %+v", ev.Geo)
			}
			if ev.Attrs["okta_event_type"] != c.eventType || ev.Attrs["login"] != "admin@example.com" || ev.Attrs["outcome"] != c.result {
				t.Errorf("attrs %v", ev.Attrs)
			}
		})
	}
}

// Identity Engine writes a failed password as a failed verification
// whose credential is the password.
func TestFailedPasswordVerifyIsALoginFailure(t *testing.T) {
	e := logEvent(t, "u1", "user.authentication.verify", "FAILURE", t0)
	e["authenticationContext"] = map[string]any{"authenticationStep": 0, "credentialType": "PASSWORD", "externalSessionId": "unknown"}
	ev, err := mapEvent(t, okta.Mapping{}, e)
	if err != nil || ev.Type != schemas.EventLoginFailure || ev.SessionID != "" {
		t.Fatalf("%+v %v", ev, err)
	}
}

func TestSSOIsATokenForTheApp(t *testing.T) {
	e := logEvent(t, "u1", "user.authentication.sso", "SUCCESS", t0)
	e["target"] = []any{object(t, "target_app_instance.json")}
	ev, err := mapEvent(t, okta.Mapping{}, e)
	if err != nil || ev.Type != schemas.EventTokenIssued || ev.ClientID != "0oaabcd1234" || ev.Attrs["okta_app"] != "Workday" {
		t.Fatalf("%+v %v", ev, err)
	}
}

func TestUnmapped(t *testing.T) {
	for _, c := range []struct{ eventType, result string }{
		{"user.session.start", "SKIPPED"},
		{"user.authentication.auth_via_mfa", "SUCCESS"},
		{"user.authentication.sso", "FAILURE"},
		{"application.lifecycle.update", "SUCCESS"},
		{"user.mfa.factor.activate", "SUCCESS"},
	} {
		e := logEvent(t, "u1", c.eventType, c.result, t0)
		_, err := mapEvent(t, okta.Mapping{}, e)
		u, ok := errors.AsType[*ingest.UnmappedType](err)
		if !ok || u.Type != c.eventType {
			t.Errorf("%s/%s: err %v, want unmapped", c.eventType, c.result, err)
		}
	}
}

// An admin's action on a user is the target user's event; an attempt on
// a login Okta does not know is keyed by that login, not by "unknown".
func TestUserFromTargetAndUnknownActor(t *testing.T) {
	e := logEvent(t, "u1", "user.account.lock", "SUCCESS", t0)
	e["actor"] = map[string]any{"id": "0oa1gjh63g214q0Hq0g4", "type": "PublicClientApp", "alternateId": "Okta Admin Console"}
	e["target"] = []any{object(t, "target_user.json")}
	ev, err := mapEvent(t, okta.Mapping{}, e)
	if err != nil || ev.UserID != "00u3gjksoiRGRAZHLSYV" {
		t.Fatalf("%+v %v", ev, err)
	}
	e = logEvent(t, "u2", "user.session.start", "FAILURE", t0)
	e["actor"] = map[string]any{"id": "unknown", "type": "User", "alternateId": "mallory@example.com", "displayName": "unknown"}
	ev, err = mapEvent(t, okta.Mapping{}, e)
	if err != nil || ev.UserID != "mallory@example.com" || ev.Attrs["okta_unknown_user"] != "true" {
		t.Fatalf("%+v %v", ev, err)
	}
	e["actor"] = map[string]any{"id": "0oa1gjh63g214q0Hq0g4", "type": "PublicClientApp"}
	if _, err := mapEvent(t, okta.Mapping{}, e); !errors.Is(err, ingest.ErrUnmapped) {
		t.Fatalf("no user: err %v", err)
	}
}

func TestNextLink(t *testing.T) {
	h := http.Header{}
	h.Add("Link", `<https://example.okta.com/api/v1/logs?q=&sortOrder=DESCENDING&limit=20&until=2017-09-17T23%3A59%3A59%2B00%3A00&since=2017-06-10T00%3A00%3A00%2B00%3A00>; rel="self"`)
	h.Add("Link", `<https://example.okta.com/api/v1/logs?q=&sortOrder=DESCENDING&limit=20&until=2017-09-17T15%3A41%3A12.994Z&after=349996bd-5091-45dc-a39f-d357867a30d7&since=2017-06-10T00%3A00%3A00%2B00%3A00>; rel="next"`)
	want := "https://example.okta.com/api/v1/logs?q=&sortOrder=DESCENDING&limit=20&until=2017-09-17T15%3A41%3A12.994Z&after=349996bd-5091-45dc-a39f-d357867a30d7&since=2017-06-10T00%3A00%3A00%2B00%3A00"
	if got := okta.NextLink(h); got != want {
		t.Errorf("next %q", got)
	}
	// Both links in one header value, as some proxies fold them.
	h2 := http.Header{"Link": {strings.Join(h.Values("Link"), ", ")}}
	if got := okta.NextLink(h2); got != want {
		t.Errorf("folded: next %q", got)
	}
	if got := okta.NextLink(http.Header{"Link": {h.Values("Link")[0]}}); got != "" {
		t.Errorf("no next: %q", got)
	}
}

type harness struct {
	k       *kafkatest.Cluster
	w       *kafkax.Writer
	okta    *fakeOkta
	clk     clockwork.Clock
	cfg     okta.Config
	poll    source.PollConfig
	metrics *source.Metrics
}

func newHarness(t *testing.T, clk clockwork.Clock) *harness {
	t.Helper()
	// revoke.commands is for the end-to-end test's detector.
	k := kafkatest.New(t, schemas.TopicAuditEvents, schemas.TopicDLQ, schemas.TopicUnmapped, schemas.TopicRevokeCommands)
	w, err := kafkax.NewWriter(k.WriterConfig(""), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	m, err := source.NewMetrics(ops.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	f := newFakeOkta(t, clk)
	cfg := okta.DefaultConfig()
	cfg.OrgURL = f.srv.URL
	cfg.APIToken = config.NewSecret(testToken)
	cfg.Since = "2026-03-02T08:00:00Z"
	poll := source.DefaultPollConfig()
	poll.Checkpoint = filepath.Join(t.TempDir(), "okta.checkpoint")
	poll.UntilCaughtUp = true
	return &harness{k: k, w: w, okta: f, clk: clk, cfg: cfg, poll: poll, metrics: m}
}

func (h *harness) run(ctx context.Context, t *testing.T, pub ingest.Publisher) error {
	t.Helper()
	sink, err := source.NewSink(ingest.DefaultConfig(), pub, okta.Format, okta.StreamSourceName, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := okta.NewPoller(h.cfg, h.poll, sink, zerolog.Nop(), h.clk, nil, nil, source.WithMetrics(h.metrics))
	if err != nil {
		t.Fatal(err)
	}
	return p.Run(ctx, h.cfg.From)
}

func ids(msgs []kafkax.Message) []string {
	var out []string
	for _, m := range msgs {
		if ev, err := schemas.DecodeEvent(m.Value); err == nil {
			out = append(out, ev.ID)
		} else {
			out = append(out, "undecodable:"+string(m.Key))
		}
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

// The log is polled from since, then by next links, into Kafka: sign-in
// failures, a rejected push, a password change, a lock and a logout as
// AuditEvents; an event type without one on the unmapped topic; the
// reference's undated example dead-lettered; a uuid delivered twice
// published once.
func TestPollIntoKafka(t *testing.T) {
	h := newHarness(t, clockwork.NewRealClock())
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	h.okta.page("", "tok1",
		logEvent(t, "a1", "user.session.start", "FAILURE", at(0)),
		logEvent(t, "a2", "user.mfa.okta_verify.deny_push", "FAILURE", at(1)),
		logEvent(t, "a3", "application.lifecycle.update", "SUCCESS", at(2)),
	)
	h.okta.page("tok1", "tok2",
		logEvent(t, "a2", "user.mfa.okta_verify.deny_push", "FAILURE", at(1)),
		logEvent(t, "a4", "user.account.update_password", "SUCCESS", at(3)),
		logEvent(t, "a5", "user.account.lock", "SUCCESS", at(4)),
		logEvent(t, "a6", "user.session.end", "SUCCESS", at(5)),
		object(t, "logevent_reference.json"),
	)
	if err := h.run(t.Context(), t, h.w); err != nil {
		t.Fatal(err)
	}
	if got := ids(h.k.Records(t, schemas.TopicAuditEvents)); !slices.Equal(got, []string{"okta:a1", "okta:a2", "okta:a4", "okta:a5", "okta:a6"}) {
		t.Errorf("events %v", got)
	}
	un := h.k.Records(t, schemas.TopicUnmapped)
	if len(un) != 1 || string(un[0].Key) != "a3" || header(un[0], schemas.HeaderUnmappedType) != "application.lifecycle.update" {
		t.Errorf("unmapped %v", un)
	}
	dl := h.k.Records(t, schemas.TopicDLQ)
	if len(dl) != 1 || string(dl[0].Key) != "f790999f-fe87-467a-9880-6982a583986c" || !strings.Contains(header(dl[0], schemas.HeaderDLQReason), "published") {
		t.Errorf("dead letters %v", dl)
	}
	asked := h.okta.asked()
	if len(asked) != 3 || asked[0].Get("since") != "2026-03-02T08:00:00.000Z" || asked[0].Get("sortOrder") != "ASCENDING" ||
		asked[1].Get("after") != "tok1" || asked[2].Get("after") != "tok2" {
		t.Errorf("requests %v", asked)
	}
	if got := h.okta.auths()[0]; got != "SSWS "+testToken {
		t.Errorf("authorization %q", got)
	}
	if d := value(h.metrics.Records.WithLabelValues(okta.StreamSourceName, "duplicate")); d != 1 {
		t.Errorf("%v duplicates", d)
	}
}

// failingPublisher fails its n-th write and cancels the run.
type failingPublisher struct {
	ingest.Publisher
	calls, failAt int
	cancel        context.CancelFunc
}

func (p *failingPublisher) WriteMessages(ctx context.Context, msgs ...kafkax.Message) error {
	p.calls++
	if p.calls == p.failAt {
		p.cancel()
		return errors.New("kafka: broker not available")
	}
	return p.Publisher.WriteMessages(ctx, msgs...)
}

// A run stopped while publishing its second page keeps the first page's
// next link; the next run follows it, not since again, and every event is
// in Kafka once.
func TestRestartFromCheckpointWithoutLossOrDuplicate(t *testing.T) {
	h := newHarness(t, clockwork.NewRealClock())
	h.okta.page("", "tok1", logEvent(t, "b1", "user.session.start", "FAILURE", t0), logEvent(t, "b2", "user.session.start", "FAILURE", t0))
	h.okta.page("tok1", "tok2", logEvent(t, "b3", "user.session.start", "FAILURE", t0), logEvent(t, "b4", "user.session.start", "SUCCESS", t0))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	if err := h.run(ctx, t, &failingPublisher{Publisher: h.w, failAt: 2, cancel: cancel}); err != nil {
		t.Fatal(err)
	}
	store, err := source.NewFileStore(h.poll.Checkpoint, okta.StreamSourceName)
	if err != nil {
		t.Fatal(err)
	}
	c, found, err := store.Load()
	if err != nil || !found || !strings.Contains(c.Cursor, "after=tok1") || !strings.HasPrefix(c.Cursor, h.okta.srv.URL+"/api/v1/logs?") {
		t.Fatalf("checkpoint %+v %v %v", c, found, err)
	}
	h.okta.page("tok2", "tok3", logEvent(t, "b5", "user.session.end", "SUCCESS", t0), logEvent(t, "b1", "user.session.start", "FAILURE", t0))
	n := len(h.okta.asked())
	if err := h.run(t.Context(), t, h.w); err != nil {
		t.Fatal(err)
	}
	asked := h.okta.asked()[n:]
	if len(asked) != 3 || asked[0].Get("after") != "tok1" || asked[0].Get("since") != "" {
		t.Errorf("second run's requests %v, want to resume at after=tok1", asked)
	}
	if got := ids(h.k.Records(t, schemas.TopicAuditEvents)); !slices.Equal(got, []string{"okta:b1", "okta:b2", "okta:b3", "okta:b4", "okta:b5"}) {
		t.Errorf("events %v, want each once", got)
	}
}

// An answer saying the rate limit window is spent (X-Rate-Limit-Remaining
// 0) holds the next request until X-Rate-Limit-Reset, on the poller's
// clock; a 429 likewise.
func TestRateLimitWaitsForReset(t *testing.T) {
	clk := clockwork.NewFakeClockAt(t0)
	h := newHarness(t, clk)
	h.okta.setRemaining(0)
	h.okta.page("", "tok1", logEvent(t, "c1", "user.session.start", "SUCCESS", t0))
	h.okta.page("tok1", "tok2", logEvent(t, "c2", "user.session.start", "SUCCESS", t0))
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.run(ctx, t, h.w) }()

	if err := clk.BlockUntilContext(ctx, 1); err != nil {
		t.Fatalf("the poller never waited: %v", err)
	}
	if n := len(h.okta.asked()); n != 1 {
		t.Fatalf("%d requests before the reset, want 1", n)
	}
	if w := value(h.metrics.WaitSeconds.WithLabelValues(okta.StreamSourceName, "rate_limit")); w != 60 {
		t.Errorf("waited %vs, want the 60s until X-Rate-Limit-Reset", w)
	}
	// The window resets; the next answer is a 429 with a reset 40 s on.
	h.okta.setRemaining(100)
	h.okta.answerOnce(func(w http.ResponseWriter) {
		h.okta.rateHeaders(w, 0, 40*time.Second)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write(fixture(t, "error_rate_limit.json"))
	})
	clk.Advance(60 * time.Second)
	if err := clk.BlockUntilContext(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if n := len(h.okta.asked()); n != 2 {
		t.Fatalf("%d requests, want 2", n)
	}
	if w := value(h.metrics.WaitSeconds.WithLabelValues(okta.StreamSourceName, "rate_limit")); w != 100 {
		t.Errorf("waited %vs in all, want 60+40", w)
	}
	clk.Advance(40 * time.Second)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := ids(h.k.Records(t, schemas.TopicAuditEvents)); !slices.Equal(got, []string{"okta:c1", "okta:c2"}) {
		t.Errorf("events %v", got)
	}
	if n := value(h.metrics.RateLimited.WithLabelValues(okta.StreamSourceName)); n != 2 {
		t.Errorf("rate limited %v times", n)
	}
}

// A next link to another host is never followed, so the token never goes
// there.
func TestNextLinkToAnotherHostIsRefused(t *testing.T) {
	h := newHarness(t, clockwork.NewRealClock())
	var leaked []string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked = append(leaked, r.Header.Get("Authorization"))
	}))
	defer other.Close()
	h.okta.answerOnce(func(w http.ResponseWriter) {
		w.Header().Add("Link", "<"+other.URL+`/api/v1/logs?after=x>; rel="next"`)
		_, _ = w.Write([]byte("[]"))
	})
	err := h.run(t.Context(), t, h.w)
	if err == nil || !source.IsPermanent(err) {
		t.Fatalf("err %v, want permanent", err)
	}
	if len(leaked) != 0 {
		t.Errorf("the other host was asked: %v", leaked)
	}
	// Nor from a checkpoint pointing there.
	store, err := source.NewFileStore(h.poll.Checkpoint, okta.StreamSourceName)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Save(source.Checkpoint{Cursor: other.URL + "/api/v1/logs?after=x"}); err != nil {
		t.Fatal(err)
	}
	if err := h.run(t.Context(), t, h.w); err == nil || !source.IsPermanent(err) || len(leaked) != 0 {
		t.Errorf("err %v, leaked %v", err, leaked)
	}
}

// An OAuth access token goes as a bearer; one Okta refuses is renewed
// once through the renewal given.
func TestBearerTokenRenewal(t *testing.T) {
	h := newHarness(t, clockwork.NewRealClock())
	h.cfg.APIToken = config.Secret{}
	h.cfg.AccessToken = config.NewSecret("expired")
	h.okta.page("", "tok1", logEvent(t, "d1", "user.session.start", "SUCCESS", t0))
	c, err := okta.NewClient(h.cfg, nil, nil, zerolog.Nop(), okta.WithTokenRenewal(func() (config.Secret, error) {
		return config.NewSecret(testBearer), nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Fetch(t.Context(), "")
	if err != nil || len(p.Records) != 1 {
		t.Fatalf("page %+v %v", p, err)
	}
	if got := h.okta.auths(); len(got) != 2 || got[0] != "Bearer expired" || got[1] != "Bearer "+testBearer {
		t.Errorf("authorization %v", got)
	}
}

func TestConfigNeedsExactlyOneToken(t *testing.T) {
	cfg := okta.DefaultConfig()
	cfg.OrgURL = "https://example.okta.com"
	if err := cfg.Validate(); err == nil {
		t.Error("no token validated")
	}
	cfg.APIToken, cfg.AccessToken = config.NewSecret("a"), config.NewSecret("b")
	if err := cfg.Validate(); err == nil {
		t.Error("two tokens validated")
	}
	cfg.AccessToken = config.Secret{}
	cfg.Since = "last tuesday"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "since") {
		t.Errorf("bad since: %v", err)
	}
}
