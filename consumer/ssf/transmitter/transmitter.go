// Package transmitter is the Shared Signals (SSF 1.0) transmitter: it
// tells receivers (apps, other IdPs) of every revocation the consumer
// carried out, as Security Event Tokens (RFC 8417) of CAEP 1.0:
// session-revoked for each revocation, and credential-change where its
// cause was a credential. SETs are signed RS256 (the CAEP
// interoperability profile) and delivered by push (RFC 8935) or poll
// (RFC 8936) over the streams receivers create through the management
// API of SSF 1.0 section 8: stream configuration, status, subjects and
// verification, behind bearer tokens, with the transmitter configuration
// at /.well-known/ssf-configuration and the key at its jwks_uri.
//
// Deliveries are durable. The consumer records each revocation it
// carried out on a Kafka topic (Publisher, through the consumer's
// service.RevocationSink, before its own offset is committed), and every
// stream reads that topic as its own consumer group: a record is
// committed only once the stream's receiver took its SETs (push answered
// 2xx, or poll acknowledged) or refused them, so a receiver that is down,
// a paused stream and a restart all leave the SETs in Kafka, to be
// delivered later. Pushes are retried with backoff (internal/retry).
// Outcomes are counted, logged and, with an audit store, recorded as
// signalled or signal_failed rows on the transmitter's own audit chain.
package transmitter

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/audit"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/retry"
	"github.com/revoked-dev/revoked/internal/ssf"
)

// Deps are what the caller builds: the signing key, the receivers, and
// optionally the audit store the outcomes are recorded in.
type Deps struct {
	Signer *ssf.Signer
	// ExtraKeys are published in the JWKS beside the signer's (a key
	// being rotated out).
	ExtraKeys []jose.JSONWebKey
	Receivers []Receiver
	// Store, when set, records each SET's outcome on the chain Actor
	// (nil: outcomes are logged and counted only).
	Store    audit.Store
	Registry prometheus.Registerer
	// Clock times retries, poll redelivery and long polls (nil: real).
	Clock clockwork.Clock
	// Client makes the pushes (nil: a client with the push timeout).
	Client *http.Client
}

// Transmitter serves the SSF endpoints and delivers SETs. Run it once.
type Transmitter struct {
	cfg         Config
	signer      *ssf.Signer
	jwks        jose.JSONWebKeySet
	receivers   []Receiver
	credentials CredentialRules
	streams     *streamStore
	writer      *audit.Writer
	client      *http.Client
	clock       clockwork.Clock
	log         zerolog.Logger
	metrics     *metrics
	readers     *kafkax.ReaderMetrics

	mu         sync.Mutex
	runCtx     context.Context // set by Run; nil before
	runners    map[string]*runner
	lastVerify map[string]time.Time
	tasks      sync.WaitGroup
}

// runner is a stream's reader while the stream delivers.
type runner struct {
	streamID string
	method   string
	queue    *pollQueue // poll streams
	cancel   context.CancelFunc
	done     chan struct{}

	mu     sync.Mutex
	reader *kafkax.Reader
}

// New checks the configuration, loads the streams and opens the audit
// chain when there is a store. It connects to Kafka only when Run runs.
func New(ctx context.Context, cfg Config, deps Deps, log zerolog.Logger) (*Transmitter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Signer == nil {
		return nil, errors.New("transmitter: a SET signing key is required")
	}
	if len(deps.Receivers) == 0 {
		return nil, errors.New("transmitter: at least one receiver is required")
	}
	creds, err := ParseCredentialRules(cfg.CredentialRules)
	if err != nil {
		return nil, err
	}
	streams, err := openStreams(cfg.StateFile)
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(deps.Registry)
	if err != nil {
		return nil, err
	}
	rm, err := kafkax.NewReaderMetrics(deps.Registry)
	if err != nil {
		return nil, err
	}
	clock := deps.Clock
	if clock == nil {
		clock = clockwork.NewRealClock()
	}
	client := deps.Client
	if client == nil {
		client = &http.Client{Timeout: cfg.Push.Timeout}
	}
	t := &Transmitter{
		cfg: cfg, signer: deps.Signer, receivers: deps.Receivers, credentials: creds, streams: streams,
		client: client, clock: clock, log: log.With().Str("component", "ssf-transmitter").Logger(),
		metrics: m, readers: rm, runners: map[string]*runner{}, lastVerify: map[string]time.Time{},
		jwks: ssf.JWKS(append([]jose.JSONWebKey{deps.Signer.PublicJWK()}, deps.ExtraKeys...)...),
	}
	if deps.Store != nil {
		t.writer, err = audit.NewWriterWithConfig(ctx, deps.Store, audit.WriterConfig{
			Chain: cfg.Actor, MaxDelay: 100 * time.Millisecond, WriteDelay: audit.DefaultMaxDelay,
			MaxBatchRows: min(audit.DefaultMaxBatchRows, cfg.Kafka.MaxLater()),
		}, log)
		if err != nil {
			return nil, fmt.Errorf("opening the transmitter's audit chain: %w", err)
		}
	}
	return t, nil
}

// Run delivers every stream's SETs until ctx ends, then stops the
// streams' readers (each commits what was delivered) and closes the
// audit chain.
func (t *Transmitter) Run(ctx context.Context) error {
	t.mu.Lock()
	t.runCtx = ctx
	t.mu.Unlock()
	for _, s := range t.streams.list("") {
		t.reconcile(s.ID)
	}
	t.log.Info().Int("streams", len(t.streams.list(""))).Str("issuer", t.cfg.Issuer).Str("kid", t.signer.KeyID()).Msg("ssf transmitter started")
	<-ctx.Done()
	t.mu.Lock()
	for id, r := range t.runners {
		t.stopLocked(id, r)
	}
	t.mu.Unlock()
	t.tasks.Wait()
	if t.writer != nil {
		if err := t.writer.Close(); err != nil {
			return fmt.Errorf("closing the transmitter's audit chain: %w", err)
		}
	}
	return nil
}

// reconcile starts or stops the stream's reader to match its status: a
// paused stream holds its SETs in Kafka, so its reader stops; an enabled
// or disabled one reads (a disabled one drops). A stream whose delivery
// method changed starts over, so SETs queued for polls go out by push.
func (t *Transmitter) reconcile(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.runCtx == nil || t.runCtx.Err() != nil {
		return
	}
	s, ok := t.streams.get(id)
	r := t.runners[id]
	want := ok && s.Status != StatusPaused
	if r != nil && (!want || r.method != s.Delivery.Method) {
		t.stopLocked(id, r)
		r = nil
	}
	if want && r == nil {
		t.startLocked(s)
	}
}

func (t *Transmitter) startLocked(s Stream) {
	ctx, cancel := context.WithCancel(t.runCtx)
	r := &runner{streamID: s.ID, method: s.Delivery.Method, cancel: cancel, done: make(chan struct{})}
	if s.Delivery.Method == ssf.DeliveryPoll {
		r.queue = newPollQueue(t.clock, t.cfg.Poll.RedeliverAfter)
	}
	t.runners[s.ID] = r
	t.tasks.Add(1)
	go func() {
		defer t.tasks.Done()
		defer close(r.done)
		t.runReader(ctx, r)
	}()
}

// runReader runs the stream's reader until ctx ends, starting a new one
// after a fetch failure, with backoff.
func (t *Transmitter) runReader(ctx context.Context, r *runner) {
	log := t.log.With().Str("stream_id", r.streamID).Logger()
	sched := retry.New(time.Second, time.Minute)
	for ctx.Err() == nil {
		rc := t.cfg.Kafka
		rc.GroupID = t.cfg.groupOf(r.streamID)
		reader, err := kafkax.NewReader(rc, log, t.readers)
		if err != nil {
			log.Error().Err(err).Msg("stream reader")
			return
		}
		r.mu.Lock()
		r.reader = reader
		r.mu.Unlock()
		err = reader.Run(ctx, t.handler(r))
		if ctx.Err() != nil {
			return
		}
		wait := sched.Next()
		log.Error().Err(err).Dur("retry_in", wait).Msg("stream reader stopped; starting it again")
		if !t.sleep(ctx, wait) {
			return
		}
	}
}

func (t *Transmitter) stopLocked(id string, r *runner) {
	delete(t.runners, id)
	r.cancel()
	if r.queue != nil {
		r.queue.close()
		t.metrics.outstanding.WithLabelValues(id).Set(0)
	}
}

// queue is the poll queue of a running poll stream, or nil.
func (t *Transmitter) queue(id string) *pollQueue {
	t.mu.Lock()
	defer t.mu.Unlock()
	if r := t.runners[id]; r != nil {
		return r.queue
	}
	return nil
}

// Check is a readiness check: every running stream's reader joined its
// group and no lane is stuck (a receiver down for longer than the
// reader's stall timeout makes its stream's lane stall).
func (t *Transmitter) Check(ctx context.Context) error {
	t.mu.Lock()
	ids := make([]string, 0, len(t.runners))
	for id := range t.runners {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	runners := make([]*runner, len(ids))
	for i, id := range ids {
		runners[i] = t.runners[id]
	}
	t.mu.Unlock()
	var errs []error
	for _, r := range runners {
		r.mu.Lock()
		reader := r.reader
		r.mu.Unlock()
		if reader == nil {
			errs = append(errs, fmt.Errorf("stream %s: reader not started", r.streamID))
			continue
		}
		if err := reader.Check(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stream %s: %w", r.streamID, err))
		}
	}
	return errors.Join(errs...)
}

// verify sends a verification event on the stream (SSF 1.0 section
// 8.1.4): queued for the next poll, or pushed in the background with up
// to five attempts. It is not durable: a receiver that does not get it
// asks again.
func (t *Transmitter) verify(s Stream, state string) error {
	jti, err := newStreamID()
	if err != nil {
		return err
	}
	claims, err := ssf.NewClaims(t.cfg.Issuer, jti, t.clock.Now(), s.Audience, "", ssf.OpaqueSubject(s.ID),
		ssf.EventVerification, ssf.Verification{State: state})
	if err != nil {
		return err
	}
	compact, err := t.signer.Sign(claims)
	if err != nil {
		return err
	}
	set := signedSET{eventType: ssf.EventVerification, jti: jti, compact: compact}
	if s.Delivery.Method == ssf.DeliveryPoll {
		q := t.queue(s.ID)
		if q == nil {
			return errors.New("the stream is not delivering")
		}
		_, err := q.enqueue(jti, compact, false)
		t.metrics.verifications.WithLabelValues(s.ID, "queued").Inc()
		return err
	}
	t.mu.Lock()
	ctx := t.runCtx
	t.mu.Unlock()
	if ctx == nil {
		return errors.New("the transmitter is not running")
	}
	t.tasks.Add(1)
	go func() {
		defer t.tasks.Done()
		res, err := t.pushAttempts(ctx, s.ID, set, 5)
		outcome := "delivered"
		switch {
		case err != nil:
			outcome = "stopped"
		case !res.delivered:
			outcome = "failed"
		}
		t.metrics.verifications.WithLabelValues(s.ID, outcome).Inc()
		t.log.Info().Str("stream_id", s.ID).Str("outcome", outcome).Str("detail", res.detail).Msg("verification event")
	}()
	return nil
}
