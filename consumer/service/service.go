package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/internal/guard"
	"github.com/revoked-dev/revoked/internal/held"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/schemas"
)

// Config configures the consumer's command path.
type Config struct {
	// Reader reads revoke commands. Its Component names the consumer in
	// dead-letter headers.
	Reader kafkax.ReaderConfig `flag:"kafka" env:"KAFKA" yaml:"kafka"`
	// Actor names this consumer in the audit trail and is its hash
	// chain's id.
	Actor string `flag:"actor" env:"ACTOR" yaml:"actor" usage:"name of this consumer in the audit trail (and its hash chain id)"`
	// MaxClockSkew bounds how far in the future a command's issued_at may be.
	MaxClockSkew time.Duration `flag:"max-clock-skew" env:"MAX_CLOCK_SKEW" yaml:"max_clock_skew" usage:"how far in the future a command's issued_at may be"`
	Retry        RetryConfig   `flag:"retry" env:"RETRY" yaml:"retry"`
	// Guard is the consumer's own budget, allowlist and kill switch.
	Guard guard.ConsumerConfig `flag:"guard" env:"GUARD" yaml:"guard"`
	// Replay tunes the in-memory index of executed commands that answers
	// the replay check without a store query per command.
	Replay ReplayConfig `flag:"replay" env:"REPLAY" yaml:"replay"`
}

// DefaultConfig reads revoke.commands as group revoked-consumer, each
// partition over 32 key lanes (commands about different users run
// concurrently, each user's in order), at most 128 commands at once:
// each lane waits for its group commit, so lanes are what carry
// throughput (bench -parts consumer: 1,389 revocations/s with 8 and 32,
// 2,381 with 32 and 128, chDB).
func DefaultConfig() Config {
	r := kafkax.DefaultReaderConfig()
	r.Topic = schemas.TopicRevokeCommands
	r.GroupID = "revoked-consumer"
	r.Component = "consumer"
	r.KeyConcurrency = 32
	r.Concurrency = 128
	return Config{Reader: r, Actor: "consumer", MaxClockSkew: time.Minute, Retry: DefaultRetryConfig(), Replay: DefaultReplayConfig(),
		Guard: guard.ConsumerConfig{HeldTopic: held.TopicHeld, DecisionsTopic: held.TopicHeldDecisions}}
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var p config.Problems
	p.Nest("kafka", c.Reader.Validate())
	p.Check(c.Actor != "", "actor", "must not be empty")
	p.Check(c.MaxClockSkew >= 0, "max-clock-skew", "must not be negative")
	p.Check(c.Retry.MaxAttempts > 0, "retry.max-attempts", "must be positive")
	p.Check(c.Retry.MinBackoff > 0 && c.Retry.MaxBackoff >= c.Retry.MinBackoff, "retry.min-backoff", "need 0 < min-backoff <= max-backoff")
	p.Nest("guard", c.Guard.Validate())
	p.Nest("replay", c.Replay.validate())
	return p.Err()
}

// HeldSources returns every held command the consumer of cfg lists and
// decides: its own (approvals) and, when cfg names the detector's held
// topic, the detector's, whose approvals are published to the command
// topic the consumer reads. The function returned closes what it opened.
func HeldSources(cfg Config, approvals *Approvals, log zerolog.Logger) (held.Source, func() error, error) {
	own := approvals.Source()
	if cfg.Guard.HeldTopic == "" || len(cfg.Reader.Brokers) == 0 {
		return own, func() error { return nil }, nil
	}
	clientID := cfg.Reader.Component + "-held"
	reader, err := kafkax.NewClient(cfg.Reader.Brokers, cfg.Reader.Security, clientID)
	if err != nil {
		return nil, nil, err
	}
	w := kafkax.DefaultWriterConfig()
	w.Brokers, w.Security, w.ClientID = cfg.Reader.Brokers, cfg.Reader.Security, clientID
	w.BatchSize = 1 // a decision is one message, written at once
	writer, err := kafkax.NewWriter(w, log)
	if err != nil {
		return nil, nil, err
	}
	detector := &held.TopicStore{
		Topics:    held.Topics{Held: cfg.Guard.HeldTopic, Decisions: cfg.Guard.DecisionsTopic, Commands: cfg.Reader.Topic},
		Reader:    reader,
		Publisher: writer,
	}
	return held.Sources{own, detector}, writer.Close, nil
}

// Deps are the consumer's collaborators, opened by the caller.
type Deps struct {
	Store    audit.Store
	TokenAPI TokenAPI
	Keyring  *schemas.Keyring
	// Seal opens sealed tokens; nil rejects commands that carry one.
	Seal     *schemas.SealKey
	Registry prometheus.Registerer
	// Observe, when set, sees every audit row after it was written.
	Observe func(schemas.AuditRow)
	// Now is the clock of the handler and the budget (nil: time.Now).
	Now func() time.Time
	// Fetcher re-reads held commands for approval (nil: from the reader's
	// brokers).
	Fetcher MessageFetcher
	// CheckpointSigner signs checkpoints of the audit chain's head, which
	// make truncation and wholesale rewrites of the trail detectable (nil:
	// no checkpoints; `consumer verify` then needs -allow-unsigned).
	CheckpointSigner *schemas.Signer
	// Lineage knows downscoped tokens from token.exchanged events; the
	// revoker also revokes those for include_downscoped commands (nil:
	// only what the token API knows).
	Lineage Lineage
	// Revocations, when set, hears of every revocation carried out (the
	// Shared Signals transmitter's publisher); the command's offset is
	// committed only once it has.
	Revocations RevocationSink
}

// auditMaxDelay is how long the first audit row of a group commit waits
// for others (a batch also goes once it holds as many rows as the reader
// lets messages wait on it). Revocations never wait on it: rows are
// written after the token API call and the reader commits once they are
// durable, so only the offset commit does, and the latency a revocation
// records is taken at the call. Each batch costs chDB an INSERT of the
// rows and one of a checkpoint, about 15 ms of CPU each however few the
// rows, and a row costs less in a bigger batch; the parts inserts make
// are merged in the background on the same cores as the pipeline. In the
// consumer bench (40,000 commands, three runs each) the process CPU per
// command was 424-468 µs at 200 ms, 380-384 at 500 ms and 326-397 at
// 1 s (305-334 at 2 s), for 4,300-4,800 against 5,100-6,400
// revocations/s at 1 s. At 1 s the offset commit trails by about a
// second, which a restart pays for in messages delivered again (the
// replay guard and the row IDs make them harmless).
const auditMaxDelay = time.Second

// AuditWriterConfig is the configuration of the consumer's audit chain
// writer for chain: rows the handler enqueues (a revocation's, whose
// offset commit waits for them) wait up to auditMaxDelay for a group
// commit, which goes at once when it holds as many rows as the reader
// lets messages wait on it (every such message has at least one row), so
// that a reader at its bound never waits out the delay; rows a handler
// waits for (dry runs, notices, holds, rejections) wait the Writer's
// default of a few milliseconds; checkpoints are signed by signer (nil:
// none).
func AuditWriterConfig(cfg Config, chain string, signer *schemas.Signer) audit.WriterConfig {
	return audit.WriterConfig{
		Chain: chain, Signer: signer, MaxDelay: auditMaxDelay, WriteDelay: audit.DefaultMaxDelay,
		MaxBatchRows: min(audit.DefaultMaxBatchRows, cfg.Reader.MaxLater()),
	}
}

// openWriter opens the audit chain writer, signing checkpoints when the
// deps carry a key.
func openWriter(ctx context.Context, cfg Config, deps Deps, chain string, log zerolog.Logger) (*audit.Writer, error) {
	w, err := audit.NewWriterWithConfig(ctx, deps.Store, AuditWriterConfig(cfg, chain, deps.CheckpointSigner), log)
	if err != nil {
		return nil, fmt.Errorf("opening the audit chain: %w", err)
	}
	return w, nil
}

// Service reads commands and carries them out. Run it once.
type Service struct {
	reader    *kafkax.Reader
	writer    *audit.Writer
	replay    *replayIndex
	handler   *Handler
	store     audit.Store
	approvals *Approvals
	guard     *guard.Consumer
	log       zerolog.Logger
}

// New wires the command path: chain writer over the store, revoker over the
// token API, handler, reader.
func New(ctx context.Context, cfg Config, deps Deps, log zerolog.Logger) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Store == nil || deps.TokenAPI == nil {
		return nil, errors.New("consumer: an audit store and a token API are required")
	}
	g, err := guard.NewConsumer(cfg.Guard, deps.Now)
	if err != nil {
		return nil, err
	}
	writer, err := openWriter(ctx, cfg, deps, cfg.Actor, log)
	if err != nil {
		return nil, err
	}
	var rm *kafkax.ReaderMetrics
	if deps.Registry != nil {
		if rm, err = kafkax.NewReaderMetrics(deps.Registry); err != nil {
			return nil, errors.Join(err, writer.Close())
		}
	}
	replay := newReplayIndex(deps.Store, cfg.Replay, deps.Now, log)
	h, err := newHandler(cfg, deps, writer, g, NewMetrics(deps.Registry), replay, log)
	if err != nil {
		return nil, errors.Join(err, writer.Close())
	}
	reader, err := kafkax.NewReader(cfg.Reader, log, rm)
	if err != nil {
		return nil, errors.Join(err, writer.Close())
	}
	replay.start()
	fetch := deps.Fetcher
	if fetch == nil {
		fetch = NewKafkaFetcher(cfg.Reader)
	}
	return &Service{
		reader: reader, writer: writer, replay: replay, handler: h, store: deps.Store, guard: g, log: log,
		approvals: NewApprovals(h, deps.Store, fetch),
	}, nil
}

func newHandler(cfg Config, deps Deps, writer *audit.Writer, g *guard.Consumer, m *Metrics, replay *replayIndex, log zerolog.Logger) (*Handler, error) {
	return NewHandler(HandlerConfig{
		Keyring:      deps.Keyring,
		Seal:         deps.Seal,
		Revoker:      NewIdPRevoker(deps.TokenAPI, cfg.Retry).WithLineage(deps.Lineage),
		Audit:        withRevocations(withExecuted(NewAuditLog(writer, deps.Store), executedIndex(deps.Store)), deps.Revocations),
		Actor:        cfg.Actor,
		MaxClockSkew: cfg.MaxClockSkew,
		Now:          deps.Now,
		Metrics:      m,
		Observe:      deps.Observe,
		Guard:        g,
		replay:       replay,
	}, log)
}

// executedIndex is the store's local index of executed commands when it
// has one (an audit spool), else nil.
func executedIndex(s audit.Store) ExecutedIndex {
	if idx, ok := s.(ExecutedIndex); ok {
		return idx
	}
	return nil
}

// Approvals lists, approves and rejects the commands this service held;
// its rows go to the service's own chain.
func (s *Service) Approvals() *Approvals { return s.approvals }

// KillSwitch is the service's kill switch.
func (s *Service) KillSwitch() *guard.KillSwitch { return s.guard.KillSwitch() }

// OpenApprovals serves approvals outside a running consumer (the command
// line): the same verification, guards and token API, with the rows on a
// chain of its own, chain, since one writer at a time may extend a chain.
// Close the returned function when done.
func OpenApprovals(ctx context.Context, cfg Config, deps Deps, chain string, log zerolog.Logger) (*Approvals, func() error, error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	if deps.Store == nil || deps.TokenAPI == nil {
		return nil, nil, errors.New("consumer: an audit store and a token API are required")
	}
	g, err := guard.NewConsumer(cfg.Guard, deps.Now)
	if err != nil {
		return nil, nil, err
	}
	writer, err := openWriter(ctx, cfg, deps, chain, log)
	if err != nil {
		return nil, nil, err
	}
	h, err := newHandler(cfg, deps, writer, g, NewMetrics(nil), nil, log)
	if err != nil {
		return nil, nil, errors.Join(err, writer.Close())
	}
	fetch := deps.Fetcher
	if fetch == nil {
		fetch = NewKafkaFetcher(cfg.Reader)
	}
	return NewApprovals(h, deps.Store, fetch), writer.Close, nil
}

// Run reads and executes commands until ctx is cancelled; it then lets
// in-flight commands finish, commits, and flushes the audit writer.
func (s *Service) Run(ctx context.Context) error {
	err := s.reader.Run(ctx, s.handler.Handle)
	s.replay.close()
	return errors.Join(err, s.writer.Close())
}

// Check is a readiness check: the audit store answers.
func (s *Service) Check(ctx context.Context) error { return s.store.Ping(ctx) }

// ReaderCheck reports whether the command reader has joined its group and
// no lane is stuck on a message it can neither handle nor dead-letter; it
// suits ops.Server.AddCheck.
func (s *Service) ReaderCheck(ctx context.Context) error { return s.reader.Check(ctx) }
