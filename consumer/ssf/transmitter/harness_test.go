package transmitter_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/consumer/audit/memstore"
	"github.com/revoked-dev/revoked/consumer/ssf/transmitter"
	"github.com/revoked-dev/revoked/internal/config"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/kafka/kafkatest"
	"github.com/revoked-dev/revoked/internal/ops"
	"github.com/revoked-dev/revoked/internal/ssf"
	"github.com/revoked-dev/revoked/internal/testenv"
	"github.com/revoked-dev/revoked/schemas"
)

// The test's receivers: alpha and beta, each with its token and audience.
const (
	alphaToken = "alpha-receiver-token-0123456789"
	alphaAud   = "https://alpha.example.com/"
	betaToken  = "beta-receiver-token-0123456789"
	betaAud    = "https://beta.example.com/"
	// idpIssuer is the iss of iss_sub subjects.
	idpIssuer = "https://idp.example.com/"
)

var signingKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// env is a Kafka broker, a fake clock, an audit store and a state file
// shared by the transmitters a test starts (one at a time, to restart).
type env struct {
	t     testing.TB
	kafka *kafkatest.Cluster
	clock *clockwork.FakeClock
	store *memstore.Store
	state string
	pub   *transmitter.Publisher
	// url is the address transmitters are served at: a test server
	// whose handler is the running transmitter's.
	url     string
	handler atomic.Pointer[http.Handler]
}

func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{
		t:     t,
		kafka: kafkatest.NewWithPartitions(t, map[string]int{transmitter.DefaultTopic: 2, schemas.TopicDLQ: 1}),
		clock: clockwork.NewFakeClockAt(time.Now().Truncate(time.Second)),
		store: memstore.New(),
		state: filepath.Join(t.TempDir(), "streams.json"),
	}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := e.handler.Load()
		if h == nil {
			http.Error(w, "no transmitter", http.StatusServiceUnavailable)
			return
		}
		(*h).ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	e.url = ts.URL
	w, err := kafkax.NewWriter(e.kafka.WriterConfig(""), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	if e.pub, err = transmitter.NewPublisher(w, transmitter.DefaultTopic); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) config() transmitter.Config {
	cfg := transmitter.DefaultConfig()
	cfg.Issuer = e.url
	cfg.AllowHTTP = true
	cfg.StateFile = e.state
	cfg.ReceiverAudience = alphaAud
	cfg.Kafka = e.kafka.ReaderConfig(transmitter.DefaultTopic, "ssf-test")
	cfg.Kafka.Component = "ssf-transmitter"
	cfg.Kafka.DLQTopic = schemas.TopicDLQ
	cfg.Kafka.StallTimeout = 0
	cfg.Subject.Issuer = idpIssuer
	cfg.Push.RetryMin = time.Second
	cfg.Push.RetryMax = time.Minute
	return cfg
}

// running is a started transmitter.
type running struct {
	tr   *transmitter.Transmitter
	reg  *prometheus.Registry
	stop func()
}

// start runs a transmitter on cfg until the returned stop (or the test's
// end).
func (e *env) start(cfg transmitter.Config, store audit.Store) *running {
	e.t.Helper()
	signer, err := ssf.NewSigner(signingKey())
	if err != nil {
		e.t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	ctx, cancel := context.WithCancel(context.Background())
	tr, err := transmitter.New(ctx, cfg, transmitter.Deps{
		Signer: signer, Store: store, Registry: reg, Clock: e.clock,
		Receivers: []transmitter.Receiver{
			{Name: "alpha", Audience: alphaAud, Token: config.NewSecret(alphaToken)},
			{Name: "beta", Audience: betaAud, Token: config.NewSecret(betaToken)},
		},
	}, zerolog.Nop())
	if err != nil {
		cancel()
		e.t.Fatal(err)
	}
	srv, err := ops.NewServer(cfg.HTTP, zerolog.Nop(), reg)
	if err != nil {
		cancel()
		e.t.Fatal(err)
	}
	if err := tr.Mount(srv); err != nil {
		cancel()
		e.t.Fatal(err)
	}
	h := srv.Handler()
	e.handler.Store(&h)
	done := make(chan error, 1)
	go func() { done <- tr.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				e.t.Errorf("transmitter Run: %v", err)
			}
			e.handler.Store(nil)
		})
	}
	e.t.Cleanup(stop)
	return &running{tr: tr, reg: reg, stop: stop}
}

// call makes an API request with a receiver's token and decodes a JSON
// answer into out (when not nil).
func (e *env) call(method, path, token string, body any, out any) int {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(data, out); err != nil {
			e.t.Fatalf("%s %s: decoding %q: %v", method, path, data, err)
		}
	}
	return resp.StatusCode
}

// createStream creates a stream for the receiver and returns its
// configuration.
func (e *env) createStream(token string, body map[string]any) transmitter.StreamConfig {
	e.t.Helper()
	var sc transmitter.StreamConfig
	if code := e.call(http.MethodPost, transmitter.PathStream, token, body, &sc); code != http.StatusCreated {
		e.t.Fatalf("create stream: HTTP %d", code)
	}
	return sc
}

// poll makes an RFC 8936 poll.
func (e *env) poll(streamID, token string, req transmitter.PollRequest) transmitter.PollResponse {
	e.t.Helper()
	var resp transmitter.PollResponse
	if code := e.call(http.MethodPost, transmitter.PathPoll+streamID, token, req, &resp); code != http.StatusOK {
		e.t.Fatalf("poll: HTTP %d", code)
	}
	return resp
}

var commandSeq atomic.Int64

// revocation is an outcome row as the consumer records it.
func (e *env) revocation(user, rule string) schemas.AuditRow {
	n := commandSeq.Add(1)
	now := e.clock.Now().UTC()
	return schemas.AuditRow{
		CommandID: fmt.Sprintf("cmd_%016x", n), Step: schemas.StepConfirmed, Time: now, Issuer: "detector", Actor: "consumer",
		TargetKind: schemas.TargetUser, UserID: user, IncludeDownscoped: true, Action: schemas.ActionRevokeAndReverify,
		Mode: schemas.ModeEnforce, RuleID: rule, RuleVersion: 1, Severity: schemas.SeverityHigh,
		Summary: "tokens used after the password changed", Evidence: []string{"e1", "e2"},
		LastEventTime: now.Add(-time.Second), DetectedAt: now.Add(-500 * time.Millisecond), IssuedAt: now, ExpiresAt: now.Add(time.Hour),
		IdPStatus: 200, TokensRevoked: 2, Attempts: 1, SourceTopic: schemas.TopicRevokeCommands, SourceOffset: n,
	}
}

// publish records revocations as the consumer does.
func (e *env) publish(rows ...schemas.AuditRow) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.pub.Revoked(ctx, rows); err != nil {
		e.t.Fatal(err)
	}
}

// outcomes returns the transmitter's audit rows of a command.
func (e *env) outcomes(commandID string) []schemas.AuditRow {
	e.t.Helper()
	rows, err := e.store.CommandRows(context.Background(), commandID)
	if err != nil {
		e.t.Fatal(err)
	}
	return rows
}

// waitOutcomes waits until the command has n outcome rows.
func (e *env) waitOutcomes(commandID string, n int) []schemas.AuditRow {
	e.t.Helper()
	var rows []schemas.AuditRow
	testenv.Eventually(e.t, fmt.Sprintf("%d outcome rows of command %s", n, commandID), func() bool {
		rows = e.outcomes(commandID)
		return len(rows) >= n
	})
	return rows
}

// committed waits until the stream's group committed every record of
// the revocations topic.
func (e *env) committed(cfg transmitter.Config, streamID string) {
	e.t.Helper()
	want := map[int]int64{}
	for _, m := range e.kafka.Records(e.t, transmitter.DefaultTopic) {
		want[m.Partition] = m.Offset + 1
	}
	e.kafka.WaitCommitted(e.t, cfg.Kafka.GroupID+"."+streamID, transmitter.DefaultTopic, want)
}

// joseHeader decodes a SET's header.
func joseHeader(t *testing.T, set string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.SplitN(set, ".", 2)[0])
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

// payload decodes a SET's claims without verifying them.
func payload(t *testing.T, set string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(set, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// pushed is one request a push receiver got.
type pushed struct {
	body, auth, contentType string
}

// pushReceiver is an RFC 8935 receiver whose answers a test scripts.
type pushReceiver struct {
	url  string
	reqs chan pushed
	// answer gives the status of the n-th request (1-based).
	answer func(n int) int
	n      atomic.Int32
}

func newPushReceiver(t *testing.T, answer func(n int) int) *pushReceiver {
	t.Helper()
	p := &pushReceiver{reqs: make(chan pushed, 64), answer: answer}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		code := p.answer(int(p.n.Add(1)))
		p.reqs <- pushed{body: string(body), auth: r.Header.Get("Authorization"), contentType: r.Header.Get("Content-Type")}
		if code == http.StatusBadRequest {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			fmt.Fprint(w, `{"err":"invalid_audience","description":"The audience value was invalid."}`)
			return
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(ts.Close)
	p.url = ts.URL + "/events"
	return p
}

// next waits for the receiver's next request.
func (p *pushReceiver) next(t *testing.T) pushed {
	t.Helper()
	select {
	case r := <-p.reqs:
		return r
	case <-time.After(20 * time.Second):
		t.Fatal("no push arrived")
	}
	return pushed{}
}

// advancePastRetry waits until the transmitter waits out a backoff on
// the fake clock, then moves the clock past it.
func (e *env) advancePastRetry(cfg transmitter.Config) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.clock.BlockUntilContext(ctx, 1); err != nil {
		e.t.Fatalf("no retry is waiting: %v", err)
	}
	e.clock.Advance(cfg.Push.RetryMax)
}
