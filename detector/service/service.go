// Package service runs the rule engine over Kafka: it reads audit events,
// feeds them to the engine, signs the commands the engine builds and
// publishes them to the command topic, and only then lets the reader commit
// the event. A malformed event is a poison message: it is dead-lettered
// with the reason and the reader moves on.
package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/detector/engine"
	"github.com/revoked-dev/revoked/internal/enrich"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/schemas"
)

// Publisher writes messages to the command topic; *kafkax.Writer
// satisfies it.
//
// WriteMessages blocks until every message is acknowledged or returns an
// error; ctx cancels the wait, after which some messages may have been
// written. A command counts as published only when it returned nil.
// Messages carry no topic: the publisher knows its own.
type Publisher = kafkax.Publisher

// ErrNoSigner means New was given no signer: commands travel signed.
var ErrNoSigner = errors.New("detector: a signing key is required")

// Option adjusts New.
type Option func(*options)

type options struct {
	reg         prometheus.Registerer
	rules       []*engine.Rule
	onDetection func(schemas.RevokeCommand)
	publisher   Publisher
	now         func() time.Time
	guard       *guardSink
}

// WithRegistry registers the service's and its reader's metrics on reg.
// Without it they are not registered anywhere.
func WithRegistry(reg prometheus.Registerer) Option {
	return func(o *options) { o.reg = reg }
}

// WithRules runs rules instead of those Config.LoadRules names.
func WithRules(rules []*engine.Rule) Option {
	return func(o *options) { o.rules = rules }
}

// WithOnDetection calls fn with every command once Kafka acknowledged it,
// from the handler's goroutine (one per partition, so possibly several at
// once). fn must not block; it suits an embedding process that shows
// detections as they happen. A command can be reported twice when its
// event is redelivered after a restart.
func WithOnDetection(fn func(schemas.RevokeCommand)) Option {
	return func(o *options) { o.onDetection = fn }
}

// WithPublisher publishes commands through p instead of a writer built from
// Config.Writer. The service does not close p.
func WithPublisher(p Publisher) Option {
	return func(o *options) { o.publisher = p }
}

// WithClock replaces time.Now, which stamps the commands' issued_at,
// expires_at and detected_at and bounds the clock skew of events.
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

// Service is the detector: a Kafka reader feeding the rule engine and a
// publisher of signed commands.
type Service struct {
	cfg         Config
	log         zerolog.Logger
	signer      *schemas.Signer
	eng         *engineGuard
	reader      *kafkax.Reader
	pub         Publisher
	ownWriter   *kafkax.Writer // nil when the publisher was given
	rec         *recovery
	metrics     *metrics
	onDetection func(schemas.RevokeCommand)
	now         func() time.Time
	guard       *guardSink // nil: no guard
	// enrich adds address context to events before the engine sees
	// them; nil when enrichment is off.
	enrich *enrich.Enricher
	// evidence remembers the newest events' address context for the
	// commands' Reason.Context; nil when off.
	evidence *evidenceIndex
	// out writes the commands and baselines of handled events.
	out *outbox
	// chain is the event path, composed once from the steps.
	chain next
}

// pendingEvent is what handling one event produced, for the outbox.
type pendingEvent struct {
	msgs []kafkax.Message
	cmds []schemas.RevokeCommand
	// detected holds, per command, the event time at which the engine
	// detected it: the time of the event that completed the pattern.
	detected []time.Time
	// held are the commands the guard held, for the held topic.
	held []heldCommand
}

// New builds the detector: it validates cfg, loads the rules, builds the
// engine, the reader and (unless WithPublisher) the writer. It connects to
// nothing until Run.
func New(cfg Config, signer *schemas.Signer, log zerolog.Logger, opts ...Option) (*Service, error) {
	o := options{now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if signer == nil {
		return nil, ErrNoSigner
	}
	rules := o.rules
	if rules == nil {
		var err error
		if rules, err = cfg.LoadRules(); err != nil {
			return nil, fmt.Errorf("loading rules: %w", err)
		}
	}
	eng, err := engine.New(cfg.Engine, rules)
	if err != nil {
		return nil, fmt.Errorf("building rule engine: %w", err)
	}
	guard := newEngineGuard(eng, log)
	evidence := newEvidenceIndex(cfg.EvidenceContext)
	m, err := newMetrics(o.reg, guard, evidence)
	if err != nil {
		return nil, err
	}
	readerMetrics, err := kafkax.NewReaderMetrics(o.reg)
	if err != nil {
		return nil, fmt.Errorf("detector reader metrics: %w", err)
	}
	reader, err := kafkax.NewReader(cfg.Reader, log, readerMetrics)
	if err != nil {
		return nil, err
	}
	enricher, err := enrich.NewLogged(cfg.GeoIP, log)
	if err != nil {
		return nil, err
	}
	rec, err := newRecovery(cfg, guard, o.now, log, o.reg)
	if err != nil {
		return nil, errors.Join(err, enricher.Close())
	}
	rec.enrich = enricher
	rec.evidence = evidence
	s := &Service{
		cfg:         cfg,
		log:         log,
		signer:      signer,
		eng:         guard,
		reader:      reader,
		pub:         o.publisher,
		metrics:     m,
		onDetection: o.onDetection,
		now:         o.now,
		guard:       o.guard,
		rec:         rec,
		enrich:      enricher,
		evidence:    evidence,
	}
	if s.pub == nil {
		w, err := kafkax.NewWriter(cfg.writer(), log)
		if err != nil {
			return nil, errors.Join(err, enricher.Close())
		}
		s.pub, s.ownWriter = w, w
	}
	s.out = newOutbox(s)
	rec.out = s.out
	s.chain = chain(s.decodeStep, s.enrichStep, s.detectStep, s.commandStep, s.publishStep)
	for _, r := range eng.Rules() {
		log.Info().Str("rule", r.ID).Int("version", r.Version).Str("kind", string(r.Kind)).
			Str("source", r.Source).Bool("dry_run", r.DryRun || cfg.Engine.DryRun).Msg("rule loaded")
	}
	return s, nil
}

// Rules returns the rules the detector runs.
func (s *Service) Rules() []*engine.Rule { return s.eng.eng.Rules() }

// Check reports whether the reader has joined its consumer group; it suits
// ops.Server.AddCheck.
func (s *Service) Check(ctx context.Context) error { return s.reader.Check(ctx) }

// Run reads and handles events until ctx is cancelled or reading fails,
// then shuts down in order: the reader stops fetching, finishes the events
// in hand (publishing their commands and saving the baselines they
// taught the engine), commits and leaves the group; then the writers flush
// and close. Before the first event of every partition it takes on, it
// rebuilds the engine's state for that partition from Kafka (see
// Config.State). It returns nil after a clean shutdown. Run may be called
// once.
func (s *Service) Run(ctx context.Context) error {
	s.log.Info().Str("topic", s.cfg.Reader.Topic).Str("group", s.cfg.Reader.GroupID).
		Str("command_topic", s.cfg.Writer.Topic).Bool("dry_run", s.cfg.Engine.DryRun).Msg("detector started")
	s.rec.start(ctx)
	var err error
	if s.restoreGuard(ctx) {
		err = s.reader.Run(ctx, s.rec.wrap(s.handle))
	}
	s.out.close()
	if cerr := s.rec.close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	if s.ownWriter != nil {
		if cerr := s.ownWriter.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}
	if cerr := s.enrich.Close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	if err != nil {
		return fmt.Errorf("detector: %w", err)
	}
	s.log.Info().Msg("detector stopped")
	return nil
}

// handle is the reader's handler for one audit event. It returns nil when
// the event produced nothing to publish, a poison error for an event that
// can never be handled, and otherwise kafkax.Later with what waits until
// the outbox has written the event's commands (the reader commits the
// event only then, while the partition's next event is handled
// meanwhile).
//
// An event goes through the steps of the chain in order, each in its own
// file: decode (schema, strict decoding, clock skew), enrich (address
// context, remembered for the evidence of later commands), detect (the
// rule engine and its state), command (stamp, add the evidence's context,
// guard and sign each command) and publish (hand them to the outbox). A step
// either settles the event or hands it to the next.
func (s *Service) handle(_ context.Context, m kafkax.Message) error {
	return s.chain(&flight{msg: m})
}

// flight is one event on its way through the steps.
type flight struct {
	msg kafkax.Message
	// ev is the decoded event and now the detector's clock when it was
	// decoded (decode step).
	ev  schemas.AuditEvent
	now time.Time
	// cmds are the commands the engine built (detect step).
	cmds []schemas.RevokeCommand
	// out is what the outbox writes: signed commands and held ones
	// (command step).
	out pendingEvent
}

// next hands an event in flight to the rest of the chain.
type next func(f *flight) error

// step is one link of the event path: it settles the event or calls next.
type step func(f *flight, next next) error

// chain composes steps into one handler; the end of the chain settles
// nothing.
func chain(steps ...step) next {
	run := next(func(*flight) error { return nil })
	for i := len(steps) - 1; i >= 0; i-- {
		st, rest := steps[i], run
		run = func(f *flight) error { return st(f, rest) }
	}
	return run
}

// publish writes signed commands to the command topic.
func (s *Service) publish(ctx context.Context, msgs []kafkax.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	if err := s.pub.WriteMessages(ctx, msgs...); err != nil {
		s.metrics.publishErrors.Inc()
		return fmt.Errorf("publishing %d command(s): %w", len(msgs), err)
	}
	return nil
}

// published records p's commands as published at t: metrics, a log line
// each and the detection callback.
func (s *Service) published(p pendingEvent, t time.Time) {
	for i, c := range p.cmds {
		s.metrics.published.WithLabelValues(c.Reason.RuleID, string(c.Mode)).Inc()
		s.metrics.latency.Observe(t.Sub(p.detected[i]).Seconds())
		s.log.Info().Str("command_id", c.CommandID).Str("rule", c.Reason.RuleID).
			Str("target_kind", string(c.Target.Kind)).Str("target", c.Target.ID()).
			Str("action", string(c.Action)).Str("mode", string(c.Mode)).Str("severity", string(c.Reason.Severity)).
			Strs("evidence", c.Reason.Evidence).Msg("command published")
		if s.onDetection != nil {
			s.onDetection(c)
		}
	}
}

// message encodes cmd as the signed message to publish: the JSON value,
// the Ed25519 signature over exactly those bytes, the key id and the
// schema in headers, keyed by the target key.
func (s *Service) message(cmd schemas.RevokeCommand) (kafkax.Message, error) {
	if err := cmd.Validate(); err != nil {
		return kafkax.Message{}, err
	}
	return kafkax.SignedCommand(s.signer, "", &cmd)
}

func header(m kafkax.Message, key string) string {
	return string(headerBytes(m, key))
}

// headerBytes is the value of m's header key without surrounding space,
// nil when m has none; unlike header it copies nothing, for the checks
// made on every event.
func headerBytes(m kafkax.Message, key string) []byte {
	for _, h := range m.Headers {
		if h.Key == key {
			return bytes.TrimSpace(h.Value)
		}
	}
	return nil
}
