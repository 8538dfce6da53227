package kafka

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/internal/retry"
	"github.com/revoked-dev/revoked/schemas"
)

// Start offsets: where a consumer group with no committed offset begins.
const (
	StartFirst = "first"
	StartLast  = "last"
)

// handlerCancelGrace is how long Run waits, after cancelling the handlers'
// context at the end of ShutdownTimeout, for them to return.
const handlerCancelGrace = time.Second

// Errors of the Reader.
var (
	// ErrReaderUsed means Run was called on a Reader that has run already.
	ErrReaderUsed = errors.New("kafka reader: Run called more than once")
	// ErrNilHandler means Run was called without a handler.
	ErrNilHandler = errors.New("kafka reader: nil handler")
	// ErrShutdownTimeout means a step of the shutdown did not finish in
	// time: in-flight handlers, the final commit or closing the clients.
	// Messages whose handling was cut off stay uncommitted and are
	// delivered again.
	ErrShutdownTimeout = errors.New("kafka reader: shutdown timed out")
	// ErrNotReady is what Check reports before the Reader has joined its
	// consumer group or after it stopped.
	ErrNotReady = errors.New("kafka reader: not ready")
)

// Handler handles one message. ctx is cancelled when the Reader gives up
// waiting for in-flight handlers at shutdown; a handler must return soon
// after.
//
// The result decides what happens to the message:
//
//   - nil: the message is done and will be committed.
//   - an error matching *PoisonError (see Poison): the message can never be
//     handled; it is written to the dead-letter topic and then committed.
//   - any other error: the failure is transient; the same message is
//     handled again after a backoff, and nothing after it in its partition
//     is handled until it is done or dead-lettered.
//
// A handler may be called again for a message it has already handled (after
// a restart, a rebalance or a failed commit), so its effects must be
// idempotent. Handlers for different partitions run concurrently.
type Handler func(ctx context.Context, m kafka.Message) error

// ReaderConfig configures a Reader.
type ReaderConfig struct {
	Brokers  []string `flag:"brokers" env:"BROKERS" yaml:"brokers" usage:"Kafka bootstrap brokers, comma-separated host:port"`
	Topic    string   `flag:"topic" env:"TOPIC" yaml:"topic" usage:"topic to read"`
	GroupID  string   `flag:"group" env:"GROUP" yaml:"group" usage:"consumer group"`
	DLQTopic string   `flag:"dlq-topic" env:"DLQ_TOPIC" yaml:"dlq_topic" usage:"dead-letter topic for poison messages"`
	// Component names the program in the dlq-component header of the
	// messages it dead-letters, e.g. "consumer". Set by the program.
	Component string
	// StartOffset is where a group without a committed offset begins:
	// "first" (the oldest retained message) or "last" (only new ones).
	StartOffset string `flag:"start-offset" env:"START_OFFSET" yaml:"start_offset" usage:"where a new consumer group starts: first or last"`
	MinBytes    int    `flag:"min-bytes" env:"MIN_BYTES" yaml:"min_bytes" usage:"bytes a fetch waits for, up to max-wait"`
	MaxBytes    int    `flag:"max-bytes" env:"MAX_BYTES" yaml:"max_bytes" usage:"most bytes one fetch returns"`
	// MaxWait bounds a fetch that finds less than MinBytes: kafka-go asks
	// the broker to hold it for 3/4 of MaxWait (MaxWait minus 1s from 1s
	// up) and drops the connection when the answer comes later than
	// MaxWait, so the rest is all the broker may be late (see FetchWaits).
	// It costs no latency: a fetch returns as soon as MinBytes arrive.
	// Too small, and a busy broker's late answers make the reader
	// reconnect ("i/o timeout"); larger, and stopping or rebalancing
	// waits up to the hold for fetches in flight.
	MaxWait time.Duration `flag:"max-wait" env:"MAX_WAIT" yaml:"max_wait" usage:"how long a fetch may wait for min-bytes; the broker holds it 3/4 of this and the rest is slack for a late answer"`
	// CommitInterval is how often offsets of finished messages are
	// committed. Zero commits each message synchronously before the next
	// one of its partition starts, which is slower but redelivers the
	// least after a crash.
	CommitInterval time.Duration `flag:"commit-interval" env:"COMMIT_INTERVAL" yaml:"commit_interval" usage:"how often offsets are committed (0: after every message)"`
	// ShutdownTimeout bounds each step of the shutdown: waiting for
	// in-flight handlers, the final commit, and closing the clients.
	ShutdownTimeout time.Duration `flag:"shutdown-timeout" env:"SHUTDOWN_TIMEOUT" yaml:"shutdown_timeout" usage:"how long in-flight handlers may run on shutdown"`
	// RetryMin and RetryMax bound the exponential backoff, with jitter,
	// between attempts at a message that failed transiently and between
	// attempts to dead-letter a message.
	RetryMin time.Duration `flag:"retry-min" env:"RETRY_MIN" yaml:"retry_min" usage:"first backoff after a transient handler failure"`
	RetryMax time.Duration `flag:"retry-max" env:"RETRY_MAX" yaml:"retry_max" usage:"longest backoff after transient handler failures"`
	// Concurrency is how many handler calls may run at once, each for a
	// different partition (or, with KeyConcurrency, a different lane).
	Concurrency int `flag:"concurrency" env:"CONCURRENCY" yaml:"concurrency" usage:"handler calls running at once (each on its own partition or key lane)"`
	// KeyConcurrency, above 1, splits each partition's messages by key
	// over that many ordered lanes (by a hash of the key), so that
	// messages of different keys run concurrently while each key's
	// messages stay in order; offsets are committed only up to the
	// partition's watermark, below which every message is terminal.
	// 0 or 1: one lane per partition, the partition's total order.
	KeyConcurrency int `flag:"key-concurrency" env:"KEY_CONCURRENCY" yaml:"key_concurrency" usage:"ordered lanes per partition, by key hash (1: the partition's total order)"`
	// QueueSize is how many fetched messages may wait per partition.
	// When a partition's queue is full, fetching pauses for all of them.
	QueueSize         int           `flag:"queue-size" env:"QUEUE_SIZE" yaml:"queue_size" usage:"fetched messages waiting per partition"`
	SessionTimeout    time.Duration `flag:"session-timeout" env:"SESSION_TIMEOUT" yaml:"session_timeout" usage:"how long the group coordinator waits for a silent member before rebalancing"`
	HeartbeatInterval time.Duration `flag:"heartbeat-interval" env:"HEARTBEAT_INTERVAL" yaml:"heartbeat_interval" usage:"how often the member tells the coordinator it is alive"`
	RebalanceTimeout  time.Duration `flag:"rebalance-timeout" env:"REBALANCE_TIMEOUT" yaml:"rebalance_timeout" usage:"how long members have to rejoin during a rebalance"`
	// DLQMaxBytes bounds a dead-letter copy (key, value and headers): a
	// larger one is stored with its value cut to fit, and headers giving
	// the original size and SHA-256, so that the copy never needs more
	// than the broker accepts and a message at the broker's limit cannot
	// stop its partition. Below Kafka's default message.max.bytes.
	DLQMaxBytes int `flag:"dlq-max-bytes" env:"DLQ_MAX_BYTES" yaml:"dlq_max_bytes" usage:"most bytes of a dead-letter copy; a larger value is stored cut, with its size and SHA-256"`
	// StallTimeout is how long a lane may hold one message (handling it,
	// retrying it after transient failures, waiting for a handler slot or
	// dead-lettering it) before Check fails and names it. An idle lane is
	// never stalled. It must exceed the longest legitimate handler call.
	// 0 disables the check.
	StallTimeout time.Duration `flag:"stall-timeout" env:"STALL_TIMEOUT" yaml:"stall_timeout" usage:"how long a partition or key lane may hold one message before readiness fails (0: never)"`
	// Now is the clock of the stall check (nil: time.Now).
	Now func() time.Time `flag:"-" env:"-" yaml:"-"`
	// Security carries no prefix of its own: its settings are tls.* and
	// sasl.* beside the others. The dead-letter writer uses it too.
	Security Security
}

// DefaultReaderConfig reads from the first offset, dead-letters to
// schemas.TopicDLQ, fetches whatever is there (MinBytes 1) with a 1.5 s
// MaxWait, commits every second and handles up to eight partitions at
// once. The fetch settings were chosen by measurement (README, "Kafka"):
// MinBytes 1 gives the lowest latency at no cost in throughput; MaxWait
// costs no latency, and 1.5 s has kafka-go ask the broker for a 500 ms
// hold (the Java client's default) and leaves it the most slack kafka-go
// allows, one second, to answer late without the reader reconnecting.
func DefaultReaderConfig() ReaderConfig {
	return ReaderConfig{
		DLQTopic:          schemas.TopicDLQ,
		StartOffset:       StartFirst,
		MinBytes:          1,
		MaxBytes:          10 << 20,
		MaxWait:           1500 * time.Millisecond,
		CommitInterval:    time.Second,
		ShutdownTimeout:   10 * time.Second,
		RetryMin:          100 * time.Millisecond,
		RetryMax:          30 * time.Second,
		Concurrency:       8,
		QueueSize:         16,
		SessionTimeout:    30 * time.Second,
		HeartbeatInterval: 3 * time.Second,
		RebalanceTimeout:  30 * time.Second,
		DLQMaxBytes:       DefaultDLQMaxBytes,
		StallTimeout:      2 * time.Minute,
	}
}

// Validate reports every problem with c at once.
func (c ReaderConfig) Validate() error {
	var p config.Problems
	checkBrokers(&p, c.Brokers)
	p.Check(c.Topic != "", "topic", "required")
	p.Check(c.GroupID != "", "group", "required: the reader commits offsets through a consumer group")
	p.Check(c.DLQTopic != "", "dlq-topic", "required")
	p.Check(c.DLQTopic == "" || c.DLQTopic != c.Topic, "dlq-topic", "must differ from topic %q", c.Topic)
	p.Check(c.DLQMaxBytes >= minDLQBytes, "dlq-max-bytes", "must be at least %d", minDLQBytes)
	p.Check(c.Component != "", "component", "required: it names the program in dead-letter headers")
	p.Check(c.StartOffset == StartFirst || c.StartOffset == StartLast, "start-offset", "want first or last, got %q", c.StartOffset)
	p.Check(c.MinBytes > 0, "min-bytes", "must be positive, got %d", c.MinBytes)
	p.Check(c.MaxBytes >= c.MinBytes, "max-bytes", "must be at least min-bytes (%d), got %d", c.MinBytes, c.MaxBytes)
	p.Check(c.MaxWait > 0, "max-wait", "must be positive")
	if hold, _ := FetchWaits(c.MaxWait); c.MaxWait >= time.Second && hold < minFetchHold {
		p.Addf("max-wait", "from 1s up kafka-go asks the broker to hold a fetch for max-wait minus 1s, so %s makes an idle reader poll every %s: use less than 1s or at least %s", c.MaxWait, hold, time.Second+minFetchHold)
	}
	p.Check(c.CommitInterval >= 0, "commit-interval", "must not be negative")
	p.Check(c.ShutdownTimeout > 0, "shutdown-timeout", "must be positive")
	p.Check(c.RetryMin > 0, "retry-min", "must be positive")
	p.Check(c.RetryMax >= c.RetryMin, "retry-max", "must be at least retry-min (%s), got %s", c.RetryMin, c.RetryMax)
	p.Check(c.Concurrency > 0, "concurrency", "must be positive, got %d", c.Concurrency)
	p.Check(c.QueueSize > 0, "queue-size", "must be positive, got %d", c.QueueSize)
	p.Check(c.KeyConcurrency >= 0, "key-concurrency", "must not be negative, got %d", c.KeyConcurrency)
	p.Check(c.SessionTimeout > 0, "session-timeout", "must be positive")
	p.Check(c.HeartbeatInterval > 0 && c.HeartbeatInterval < c.SessionTimeout, "heartbeat-interval", "must be positive and below session-timeout")
	p.Check(c.RebalanceTimeout > 0, "rebalance-timeout", "must be positive")
	p.Check(c.StallTimeout >= 0, "stall-timeout", "must not be negative (0 disables the check)")
	p.Nest("", c.Security.Validate())
	return p.Err()
}

// Reader runs a Handler over every message of a topic, as a member of a
// consumer group, with at-least-once delivery:
//
//   - It fetches with kafka-go's FetchMessage and commits with
//     CommitMessages, never ReadMessage, which commits before handling.
//   - A message is committed only once it is terminal: its handler
//     returned nil, or returned a poison error and the message was then
//     written to the dead-letter topic. A dead-letter write that fails is
//     retried, with backoff, until it succeeds or the Reader stops; the
//     message is never committed before it is dead-lettered.
//   - Any other handler error is transient: the same message is retried
//     with exponential backoff and jitter, between RetryMin and RetryMax,
//     until it succeeds, turns out poison, or the Reader stops. Nothing
//     after it in its partition is handled meanwhile, and nothing is
//     committed past it.
//   - Order is kept within a partition: one goroutine handles a
//     partition's messages one after the other. Different partitions are
//     handled concurrently, at most Concurrency at a time. Because each
//     partition's messages become terminal in offset order, committing
//     offset N of a partition covers only terminal messages.
//   - With KeyConcurrency K > 1, a partition's messages are split over K
//     lanes by a hash of their key; each lane keeps the order above (a
//     transiently failing message holds back only its own lane), the
//     lanes run concurrently, and a partition's offset is committed only
//     up to its watermark: the newest message below which every fetched
//     message of the partition is terminal. So order holds per key, and
//     committing offset N still covers only terminal messages.
//   - Commits are batched every CommitInterval (or made after every
//     message when it is zero). A failed commit, such as a stale
//     generation after a rebalance, is logged and counted, never fatal;
//     its offsets are retried with the next commit, and whatever stays
//     uncommitted is delivered again, which idempotent handlers absorb.
//   - kafka-go does not tell its caller which partitions a rebalance took
//     away. Messages of a lost partition that were already fetched are
//     still handled and committed here while the partition's new owner
//     starts from the last commit, so for a moment both members handle it,
//     and a late commit from here can move its committed offset back
//     (the new owner's next commit moves it forward again). Nothing is
//     lost; some messages are delivered twice.
//   - A lane (a partition, or a key lane of one) that holds one message
//     for longer than StallTimeout is stalled: Check fails naming it, the
//     stall is logged once at error level and its end at warn, and the
//     stalled_lanes gauge counts it. A transient failure retried for that
//     long is such a stall; so is a handler that does not return.
//
// Routine per-message logs (received, handled) are at debug level and carry
// the key; failures and dead-letterings are logged at warn or error with
// partition and offset. No log line ever carries a message value, which may
// hold sealed data.
type Reader struct {
	cfg     ReaderConfig
	log     zerolog.Logger
	dlqLog  zerolog.Logger
	metrics readerMetrics
	dialer  *kafka.Dialer
	dlqCfg  WriterConfig

	started atomic.Bool
	kr      atomic.Pointer[kafka.Reader]
	joined  atomic.Bool
	// stuck names a lane whose dead-letter write keeps failing, for
	// Check; nil while none is.
	stuck atomic.Pointer[stuckLane]
	// lanes is the progress of the running session's lanes, for Check;
	// nil while not running.
	lanes atomic.Pointer[laneTable]
}

// stuckLane is a message that can neither be handled nor dead-lettered.
type stuckLane struct {
	topic     string
	partition int
	offset    int64
	since     time.Time
	err       string
}

// NewReader returns a Reader for cfg, reporting to metrics (nil: metrics
// that are not registered anywhere). It checks the configuration and loads
// TLS material, but connects to nothing until Run.
func NewReader(cfg ReaderConfig, log zerolog.Logger, metrics *ReaderMetrics) (*Reader, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if metrics == nil {
		var err error
		if metrics, err = NewReaderMetrics(nil); err != nil {
			return nil, err
		}
	}
	dialer, err := cfg.Security.NewDialer(cfg.Component)
	if err != nil {
		return nil, fmt.Errorf("kafka reader: %w", err)
	}
	dlqCfg := DefaultWriterConfig()
	dlqCfg.Brokers = cfg.Brokers
	dlqCfg.Topic = cfg.DLQTopic
	dlqCfg.ClientID = cfg.Component
	dlqCfg.Security = cfg.Security
	if err := dlqCfg.Validate(); err != nil {
		return nil, fmt.Errorf("kafka reader dead-letter writer: %w", err)
	}
	rc := kafkaReaderConfig(cfg, dialer, log)
	if err := rc.Validate(); err != nil {
		return nil, fmt.Errorf("kafka reader: %w", err)
	}
	return &Reader{
		cfg:     cfg,
		log:     log.With().Str("kafka_topic", cfg.Topic).Str("kafka_group", cfg.GroupID).Logger(),
		dlqLog:  log.With().Str("kafka_group", cfg.GroupID).Logger(),
		metrics: metrics.forReader(cfg.Topic, cfg.GroupID),
		dialer:  dialer,
		dlqCfg:  dlqCfg,
	}, nil
}

func kafkaReaderConfig(cfg ReaderConfig, dialer *kafka.Dialer, log zerolog.Logger) kafka.ReaderConfig {
	start := kafka.FirstOffset
	if cfg.StartOffset == StartLast {
		start = kafka.LastOffset
	}
	return kafka.ReaderConfig{
		Brokers:               cfg.Brokers,
		GroupID:               cfg.GroupID,
		Topic:                 cfg.Topic,
		Dialer:                dialer,
		MinBytes:              cfg.MinBytes,
		MaxBytes:              cfg.MaxBytes,
		MaxWait:               cfg.MaxWait,
		StartOffset:           start,
		IsolationLevel:        kafka.ReadCommitted,
		WatchPartitionChanges: true,
		SessionTimeout:        cfg.SessionTimeout,
		HeartbeatInterval:     cfg.HeartbeatInterval,
		RebalanceTimeout:      cfg.RebalanceTimeout,
		// Commits go through CommitMessages synchronously; the Reader
		// batches them itself so that it learns whether they succeeded
		// and can make a last one before leaving the group.
		CommitInterval: 0,
		Logger:         kafkaLogger(log, zerolog.DebugLevel),
		ErrorLogger:    kafkaLogger(log, zerolog.WarnLevel),
	}
}

// Check reports ErrNotReady until Run has joined the consumer group, after
// Run returned, while a dead-letter write keeps failing and while a lane is
// stalled (see StallTimeout); the error names the topic, partition and
// offset that hold a lane. It suits ops.Server.AddCheck.
func (r *Reader) Check(context.Context) error {
	kr := r.kr.Load()
	if kr == nil {
		return fmt.Errorf("%w: not running", ErrNotReady)
	}
	if st := r.stuck.Load(); st != nil {
		return fmt.Errorf("%w: %s partition %d offset %d cannot be dead-lettered since %s: %s",
			ErrNotReady, st.topic, st.partition, st.offset, st.since.UTC().Format(time.RFC3339), st.err)
	}
	if l := r.lanes.Load(); l != nil && r.cfg.StallTimeout > 0 {
		if stalls, _ := l.stalled(r.now(), r.cfg.StallTimeout, false); len(stalls) > 0 {
			return fmt.Errorf("%w: %s", ErrNotReady, describeStalls(r.cfg.Topic, r.cfg.StallTimeout, stalls))
		}
	}
	if !r.joined.Load() {
		// Stats counts generations joined since the last call; only
		// Check calls it.
		if kr.Stats().Rebalances == 0 {
			return fmt.Errorf("%w: consumer group %q not joined yet", ErrNotReady, r.cfg.GroupID)
		}
		r.joined.Store(true)
	}
	return nil
}

// Run joins the consumer group and handles messages with h until ctx is
// cancelled or fetching fails. It may be called once.
//
// When ctx is cancelled Run stops fetching, lets handlers already running
// finish within ShutdownTimeout (then cancels their context and waits a
// moment more), starts no queued message, stops retrying, commits the
// offsets of every terminal message, leaves the group and closes its
// connections. It returns nil after such a clean shutdown, and an error
// wrapping ErrShutdownTimeout when a step ran out of time. Messages that
// were not terminal are delivered again to the group's next member.
//
// An error from FetchMessage that kafka-go did not recover from itself
// (for example, joining the group failed repeatedly) shuts the Reader down
// the same way and is returned.
func (r *Reader) Run(ctx context.Context, h Handler) error {
	if h == nil {
		return ErrNilHandler
	}
	if !r.started.CompareAndSwap(false, true) {
		return ErrReaderUsed
	}
	dlq, err := NewWriter(r.dlqCfg, r.dlqLog)
	if err != nil {
		return fmt.Errorf("kafka reader dead-letter writer: %w", err)
	}
	kr := kafka.NewReader(kafkaReaderConfig(r.cfg, r.dialer, r.log))
	r.kr.Store(kr)
	defer r.kr.Store(nil)

	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	handlerCtx, cancelHandlers := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHandlers()

	s := &session{
		r:          r,
		h:          h,
		kr:         kr,
		dlq:        dlq,
		runCtx:     runCtx,
		handlerCtx: handlerCtx,
		sem:        make(chan struct{}, r.cfg.Concurrency),
		durable:    make(chan struct{}, r.cfg.MaxLater()),
		workers:    map[int]chan kafka.Message{},
		pending:    map[int]kafka.Message{},
		lanes:      &laneTable{},
	}
	r.lanes.Store(s.lanes)
	defer r.lanes.Store(nil)
	committerDone := make(chan struct{})
	if r.cfg.CommitInterval > 0 {
		go s.commitLoop(committerDone)
	} else {
		close(committerDone)
	}
	watcherDone := make(chan struct{})
	if r.cfg.StallTimeout > 0 {
		go s.watchStalls(watcherDone)
	} else {
		close(watcherDone)
	}
	r.log.Info().Msg("kafka reader started")

	fetchErr := s.fetchLoop()

	// Stop intake: nothing new starts, backoffs end.
	stopRun()
	var errs []error
	if fetchErr != nil {
		errs = append(errs, fetchErr)
		r.log.Error().Err(fetchErr).Msg("kafka reader stopping after a fetch error")
	}
	// Let in-flight handlers finish.
	if err := s.drain(cancelHandlers); err != nil {
		errs = append(errs, err)
	}
	<-committerDone
	<-watcherDone
	// Commit what is terminal.
	if err := s.finalCommit(ctx); err != nil {
		errs = append(errs, err)
	}
	// Close the dead-letter writer and leave the group.
	if err := r.closeWithin("dead-letter writer", dlq.Close); err != nil {
		errs = append(errs, err)
	}
	if err := r.closeWithin("reader", kr.Close); err != nil {
		errs = append(errs, err)
	}
	r.joined.Store(false)
	if err := errors.Join(errs...); err != nil {
		return err
	}
	r.log.Info().Msg("kafka reader stopped")
	return nil
}

// closeWithin runs closeFn, giving up after ShutdownTimeout.
func (r *Reader) closeWithin(what string, closeFn func() error) error {
	done := make(chan error, 1)
	go func() { done <- closeFn() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("closing kafka %s: %w", what, err)
		}
		return nil
	case <-time.After(r.cfg.ShutdownTimeout):
		return fmt.Errorf("%w: closing kafka %s took longer than %s", ErrShutdownTimeout, what, r.cfg.ShutdownTimeout)
	}
}

func (r *Reader) now() time.Time {
	if r.cfg.Now != nil {
		return r.cfg.Now()
	}
	return time.Now()
}

// session is the state of one Run.
type session struct {
	r          *Reader
	h          Handler
	kr         *kafka.Reader
	dlq        *Writer
	runCtx     context.Context // cancelled when intake stops
	handlerCtx context.Context // cancelled when handlers run out of time
	sem        chan struct{}
	// durable bounds the messages handled and not yet durable (Later):
	// a lane that would exceed it waits, so a slow store slows intake
	// instead of piling up work.
	durable chan struct{}
	wg      sync.WaitGroup
	workers map[int]chan kafka.Message // by partition; only fetchLoop touches it
	lanes   *laneTable

	mu      sync.Mutex
	pending map[int]kafka.Message // by partition: the newest terminal message not yet committed
	closed  bool                  // no more commits: the final one is done or under way
}

// fetchLoop hands fetched messages to their partition's worker until
// runCtx ends (nil) or fetching fails (the error).
func (s *session) fetchLoop() error {
	for {
		m, err := s.kr.FetchMessage(s.runCtx)
		if err != nil {
			if s.runCtx.Err() != nil {
				return nil
			}
			return fmt.Errorf("fetching from kafka topic %s: %w", s.r.cfg.Topic, err)
		}
		s.r.joined.Store(true)
		if m.HighWaterMark > 0 {
			s.r.metrics.lag.WithLabelValues(strconv.Itoa(m.Partition)).Set(float64(max(m.HighWaterMark-m.Offset-1, 0)))
		}
		q, ok := s.workers[m.Partition]
		if !ok {
			q = make(chan kafka.Message, s.r.cfg.QueueSize)
			s.workers[m.Partition] = q
			if s.r.cfg.KeyConcurrency > 1 {
				s.wg.Go(func() { s.workByKey(m.Partition, q) })
			} else {
				p := s.lanes.add(m.Partition, -1)
				s.wg.Go(func() { s.work(p, q) })
			}
		}
		select {
		case q <- m:
		case <-s.runCtx.Done():
			return nil
		}
	}
}

// work handles one partition's messages in order until intake stops or a
// message is abandoned at shutdown, reporting its progress to p. A message
// whose handler returned Later does not hold up the next one: the
// partition's commit waits behind it on the watermark instead.
func (s *session) work(p *laneProgress, q <-chan kafka.Message) {
	wm := &watermark{done: map[int64]kafka.Message{}}
	for {
		select {
		case <-s.runCtx.Done():
			return
		case m := <-q:
			if s.runCtx.Err() != nil {
				return // shutting down: leave queued messages uncommitted
			}
			wm.add(m.Offset)
			if !s.handleIn(p, wm, m) {
				return
			}
		}
	}
}

// handleIn takes m to a terminal state on lane p, whose partition's
// commits wm orders, and reports whether the lane goes on. A message
// handled with Later becomes committable on wm once its wait returns nil,
// while the lane goes on to its next message; at most laterPerHandler
// times Concurrency such waits run at once, so a slow sink slows intake
// instead of piling up work.
func (s *session) handleIn(p *laneProgress, wm *watermark, m kafka.Message) bool {
	p.take(m, s.r.now())
	ok, later := s.process(m, p)
	if !ok {
		p.release(s.r.now())
		return false
	}
	if later != nil {
		select {
		case s.durable <- struct{}{}:
		case <-s.runCtx.Done():
			p.release(s.r.now())
			return false
		}
		s.wg.Go(func() {
			defer func() { <-s.durable }()
			if s.settle(m, later) {
				wm.finish(m, s.commit)
			}
		})
		s.progressed(p)
		return true
	}
	// Released before it is recorded for commit, so that a committed
	// offset means its lane has let go of the message.
	s.progressed(p)
	wm.finish(m, s.commit)
	return true
}

// workByKey hands one partition's messages to KeyConcurrency lanes by key
// hash, each handling its messages in order, and commits the partition's
// watermark as it advances.
func (s *session) workByKey(partition int, q <-chan kafka.Message) {
	wm := &watermark{done: map[int64]kafka.Message{}}
	lanes := make([]chan kafka.Message, s.r.cfg.KeyConcurrency)
	var wg sync.WaitGroup
	for i := range lanes {
		lanes[i] = make(chan kafka.Message, s.r.cfg.QueueSize)
		lane := lanes[i]
		p := s.lanes.add(partition, i)
		wg.Go(func() {
			for {
				select {
				case <-s.runCtx.Done():
					return
				case m := <-lane:
					if s.runCtx.Err() != nil {
						return
					}
					if !s.handleIn(p, wm, m) {
						return
					}
				}
			}
		})
	}
	defer wg.Wait()
	for {
		select {
		case <-s.runCtx.Done():
			return
		case m := <-q:
			wm.add(m.Offset)
			h := fnv.New32a()
			h.Write(m.Key)
			select {
			case lanes[h.Sum32()%uint32(len(lanes))] <- m:
			case <-s.runCtx.Done():
				return
			}
		}
	}
}

// watermark tracks one partition's fetched messages that are not yet
// committable: a message is committable once it and every message fetched
// before it are terminal.
type watermark struct {
	mu      sync.Mutex
	pending []int64                 // offsets in fetch order, from the oldest not terminal
	done    map[int64]kafka.Message // terminal messages among pending
}

func (w *watermark) add(offset int64) {
	w.mu.Lock()
	w.pending = append(w.pending, offset)
	w.mu.Unlock()
}

// finish records m as terminal and, if the watermark moved, hands the
// newest message it passed to commit. commit runs under the watermark's
// lock so that one partition's commits are made in offset order.
func (w *watermark) finish(m kafka.Message, commit func(kafka.Message)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.done[m.Offset] = m
	var last kafka.Message
	moved := false
	for len(w.pending) > 0 {
		d, ok := w.done[w.pending[0]]
		if !ok {
			break
		}
		delete(w.done, w.pending[0])
		w.pending = w.pending[1:]
		last, moved = d, true
	}
	if moved {
		commit(last)
	}
}

// process takes m to a terminal state and reports true, or reports false
// when the Reader stopped first and m must stay uncommitted. Transient
// failures are recorded in p, for the stall check.
func (s *session) process(m kafka.Message, p *laneProgress) (ok bool, later func(context.Context) error) {
	s.debug(m).Bytes("key", m.Key).Msg("message received")
	var sched *retry.Schedule // from the first failure
	for attempt := 0; ; attempt++ {
		select {
		case s.sem <- struct{}{}:
		case <-s.runCtx.Done():
			return false, nil
		}
		start := time.Now()
		err := s.call(m)
		<-s.sem
		s.r.metrics.duration.Observe(time.Since(start).Seconds())

		var pe *PoisonError
		var le *LaterError
		switch {
		case err == nil:
			s.r.metrics.handled.Inc()
			s.debug(m).Int("attempts", attempt+1).Msg("message handled")
			return true, nil
		case errors.As(err, &le):
			s.r.metrics.handled.Inc()
			s.debug(m).Int("attempts", attempt+1).Msg("message handled; durable later")
			return true, le.Wait
		case errors.As(err, &pe):
			return s.deadLetter(*s.msgLog(m), m, pe), nil
		case s.runCtx.Err() != nil:
			s.msgLog(m).Info().Err(err).Msg("handler failed during shutdown; the message will be delivered again")
			return false, nil
		}
		s.r.metrics.retries.Inc()
		p.failed(err)
		if sched == nil {
			sched = retry.New(s.r.cfg.RetryMin, s.r.cfg.RetryMax)
		}
		wait := sched.Next()
		s.msgLog(m).Warn().Err(err).Int("attempt", attempt+1).Dur("retry_in", wait).Msg("handler failed; retrying the message")
		if !retry.Sleep(s.runCtx, wait) {
			return false, nil
		}
	}
}

// settle waits for a handled message's effect to be durable (Later) and
// reports whether it is; false leaves m uncommitted, to be delivered
// again, which the handler's contract makes harmless.
func (s *session) settle(m kafka.Message, later func(context.Context) error) bool {
	if err := later(s.handlerCtx); err != nil {
		s.r.log.Warn().Err(err).Int("partition", m.Partition).Int64("offset", m.Offset).
			Msg("a handled message did not become durable; it stays uncommitted and will be delivered again")
		return false
	}
	return true
}

// laterPerHandler is how many messages per handler slot may be handled
// and not yet durable at once. At the default 128 slots, 64 lets 8,192
// wait on the consumer's audit group commit, so a batch can reach 8,192
// rows where 8 capped it at 1,024: ClickHouse and chDB pay most of an
// INSERT's cost per statement, and against 8 the bench measured the
// consumer's appends (Writer.Enqueue) at 0.54 of one raw clickhouse-go
// batch instead of 0.39, and 1.11 of one raw chDB INSERT instead of 0.72.
// A message waiting costs its bytes and a slot; revocation never waits
// for it, only the offset commit does.
const laterPerHandler = 64

// LaterError is what a handler returns, through Later, when it has done
// its work and what makes that work durable (an audit row in a group
// commit, say) finishes after it returns: the Reader takes the message as
// handled, lets its lane go on to the next message, and commits it only
// once Wait returns nil. Wait gets a context that ends at the shutdown
// timeout and may block; an error leaves the message uncommitted, so the
// handler must take a delivery of the same message again as it takes a
// redelivery after a crash. Handler calls keep their lane's order either
// way; what waits is the commit, which never passes a message whose wait
// has not returned nil.
type LaterError struct {
	Wait func(context.Context) error
}

func (e *LaterError) Error() string { return "kafka reader: handled; durable later" }

// Later returns a *LaterError: the message is handled and wait says when
// its effect is durable.
func Later(wait func(context.Context) error) error { return &LaterError{Wait: wait} }

// msgLog is the Reader's log with m's partition and offset. It is built
// where something is logged, not for every message: building it took
// about 1 µs of CPU per message in the detector's profile.
func (s *session) msgLog(m kafka.Message) *zerolog.Logger {
	l := s.r.log.With().Int("partition", m.Partition).Int64("offset", m.Offset).Logger()
	return &l
}

// debug is a debug line about m, with its partition and offset; nil, and
// every call on it free, when the log is not at debug level.
func (s *session) debug(m kafka.Message) *zerolog.Event {
	return s.r.log.Debug().Int("partition", m.Partition).Int64("offset", m.Offset)
}

// call runs the handler on m. A panic is a bug, not a reason to die: it
// is logged with its stack and the message is dead-lettered with the
// panic's value as the reason, so the reader goes on and the redelivered
// message does not bring it down again.
func (s *session) call(m kafka.Message) (err error) {
	defer func() {
		if p := recover(); p != nil {
			s.msgLog(m).Error().Str("panic", fmt.Sprint(p)).Bytes("stack", debug.Stack()).Msg("handler panicked; dead-lettering the message")
			err = Poison("handler panicked", fmt.Errorf("%v", p))
		}
	}()
	return s.h(s.handlerCtx, m)
}

// deadLetter writes m to the dead-letter topic, retrying until it succeeds
// (true) or the Reader stops (false). While it keeps failing, the Reader's
// Check names the message's partition and offset.
func (s *session) deadLetter(log zerolog.Logger, m kafka.Message, pe *PoisonError) bool {
	var stuck *stuckLane
	sched := retry.New(s.r.cfg.RetryMin, s.r.cfg.RetryMax)
	for attempt := 0; ; attempt++ {
		dm := deadLetter(m, pe, s.r.cfg.Component, time.Now(), s.r.cfg.DLQMaxBytes)
		err := s.dlq.WriteMessages(s.handlerCtx, dm)
		if err == nil {
			if stuck != nil {
				s.r.stuck.CompareAndSwap(stuck, nil)
			}
			s.r.metrics.poisoned.Inc()
			log.Warn().Str("reason", pe.Reason).AnErr("cause", pe.Err).Str("dlq_topic", s.r.cfg.DLQTopic).Msg("poison message dead-lettered")
			return true
		}
		s.r.metrics.dlqErrors.Inc()
		if s.runCtx.Err() != nil {
			log.Warn().Err(err).Msg("dead-letter write failed during shutdown; the message will be delivered again")
			return false
		}
		since := time.Now()
		if stuck != nil {
			since = stuck.since
		}
		stuck = &stuckLane{topic: m.Topic, partition: m.Partition, offset: m.Offset, since: since, err: err.Error()}
		s.r.stuck.Store(stuck)
		wait := sched.Next()
		log.Error().Err(err).Int("attempt", attempt+1).Dur("retry_in", wait).Msg("dead-letter write failed; retrying")
		if !retry.Sleep(s.runCtx, wait) {
			return false
		}
	}
}

// commit records m as terminal and commits it now when CommitInterval is
// zero; otherwise the next batch does.
func (s *session) commit(m kafka.Message) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	mark(s.pending, m)
	s.mu.Unlock()
	if s.r.cfg.CommitInterval == 0 {
		_ = s.flush(s.handlerCtx)
	}
}

// mark keeps the newest message per partition.
func mark(pending map[int]kafka.Message, m kafka.Message) {
	if cur, ok := pending[m.Partition]; !ok || m.Offset > cur.Offset {
		pending[m.Partition] = m
	}
}

func (s *session) commitLoop(done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(s.r.cfg.CommitInterval)
	defer t.Stop()
	for {
		select {
		case <-s.runCtx.Done():
			return
		case <-t.C:
			_ = s.flush(s.runCtx)
		}
	}
}

// flush commits the pending offsets; on failure they stay pending for the
// next attempt unless newer ones replaced them meanwhile.
func (s *session) flush(ctx context.Context) error {
	s.mu.Lock()
	msgs := make([]kafka.Message, 0, len(s.pending))
	for p, m := range s.pending {
		msgs = append(msgs, m)
		delete(s.pending, p)
	}
	s.mu.Unlock()
	if len(msgs) == 0 {
		return nil
	}
	err := s.kr.CommitMessages(ctx, msgs...)
	if err == nil {
		if e := s.r.log.Debug(); e.Enabled() {
			e.Int("partitions", len(msgs)).Msg("offsets committed")
		}
		return nil
	}
	s.mu.Lock()
	for _, m := range msgs {
		mark(s.pending, m)
	}
	s.mu.Unlock()
	s.commitFailed(err, len(msgs))
	return err
}

func (s *session) commitFailed(err error, partitions int) {
	s.r.metrics.commitErrors.Inc()
	s.r.log.Warn().Err(err).Int("partitions", partitions).
		Msg("committing offsets failed (after a rebalance this is expected); uncommitted messages are delivered again")
}

// drain waits for the workers, cancelling the handlers' context once
// ShutdownTimeout has passed; having to cancel them is a timeout.
func (s *session) drain(cancelHandlers context.CancelFunc) error {
	s.r.log.Info().Dur("shutdown_timeout", s.r.cfg.ShutdownTimeout).Msg("kafka reader stopping: no new message starts; waiting for those in flight")
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	timer := time.NewTimer(s.r.cfg.ShutdownTimeout)
	defer timer.Stop()
	select {
	case <-done:
		return nil
	case <-timer.C:
	}
	cancelHandlers()
	s.r.log.Warn().Dur("shutdown_timeout", s.r.cfg.ShutdownTimeout).Msg("handlers still running at the shutdown timeout; cancelling them")
	select {
	case <-done:
		return fmt.Errorf("%w: in-flight handlers were cancelled after %s", ErrShutdownTimeout, s.r.cfg.ShutdownTimeout)
	case <-time.After(handlerCancelGrace):
		return fmt.Errorf("%w: handlers did not return within %s of being cancelled", ErrShutdownTimeout, handlerCancelGrace)
	}
}

// finalCommit commits the last terminal offsets and refuses any later
// commit.
func (s *session) finalCommit(parent context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), s.r.cfg.ShutdownTimeout)
	defer cancel()
	err := s.flush(ctx)
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%w: final offset commit: %w", ErrShutdownTimeout, err)
		}
		return fmt.Errorf("final offset commit: %w", err)
	}
	return nil
}
