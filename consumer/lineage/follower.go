package lineage

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/internal/config"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/schemas"
)

// Config configures the lineage follower and its index.
type Config struct {
	Enabled bool   `flag:"enabled" env:"ENABLED" yaml:"enabled" usage:"learn downscoped token lineage from token.exchanged events"`
	Topic   string `flag:"topic" env:"TOPIC" yaml:"topic" usage:"topic of the audit events to learn lineage from"`
	// Retention is how long an exchange is remembered; the follower
	// starts reading this far back.
	Retention  time.Duration `flag:"retention" env:"RETENTION" yaml:"retention" usage:"how long a learned exchange is remembered (the longest token lifetime to care about)"`
	MaxEntries int           `flag:"max-entries" env:"MAX_ENTRIES" yaml:"max_entries" usage:"most exchanges remembered; beyond it the oldest are forgotten"`
}

// DefaultConfig follows audit.events and remembers 24 hours of exchanges.
func DefaultConfig() Config {
	return Config{Enabled: true, Topic: schemas.TopicAuditEvents, Retention: DefaultRetention, MaxEntries: DefaultMaxEntries}
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	if !c.Enabled {
		return nil
	}
	var p config.Problems
	p.Check(c.Topic != "", "topic", "must not be empty")
	p.Check(c.Retention > 0, "retention", "must be positive")
	p.Check(c.MaxEntries > 0, "max-entries", "must be positive")
	return p.Err()
}

// Stats counts what the follower read.
type Stats struct {
	// Read is every message read.
	Read int64
	// Learned is the token.exchanged events the index kept.
	Learned int64
	// Malformed is the messages that are not a JSON object with a string
	// type, and the token exchanges that did not decode as audit events;
	// dead-lettering them is the detector's business.
	Malformed int64
}

// Follower reads every partition of the audit events topic outside any
// consumer group, from the offset of now less the retention, and feeds
// the token.exchanged events to an index. It commits nothing.
type Follower struct {
	topic string
	since time.Duration
	index *Index
	log   zerolog.Logger

	client *kafkax.Client
	now    func() time.Time
	retry  time.Duration

	read, learned, malformed atomic.Int64
}

// NewFollower returns a follower of cfg.Topic on brokers feeding index.
func NewFollower(brokers []string, sec kafkax.Security, cfg Config, index *Index, log zerolog.Logger) (*Follower, error) {
	if len(brokers) == 0 {
		return nil, errors.New("lineage: no brokers")
	}
	if index == nil {
		return nil, errors.New("lineage: no index")
	}
	if cfg.Topic == "" {
		cfg.Topic = schemas.TopicAuditEvents
	}
	if cfg.Retention <= 0 {
		cfg.Retention = DefaultRetention
	}
	client, err := kafkax.NewClient(brokers, sec, "revoked-consumer-lineage")
	if err != nil {
		return nil, fmt.Errorf("lineage: %w", err)
	}
	return &Follower{
		topic: cfg.Topic, since: cfg.Retention, index: index,
		log:    log.With().Str("component", "lineage").Logger(),
		client: client, now: time.Now, retry: time.Second,
	}, nil
}

// Stats returns the counts so far.
func (f *Follower) Stats() Stats {
	return Stats{Read: f.read.Load(), Learned: f.learned.Load(), Malformed: f.malformed.Load()}
}

// Run follows the topic until ctx is done, and then returns nil. Broker
// failures are logged and retried; partitions added to the topic later
// are picked up.
func (f *Follower) Run(ctx context.Context) error {
	defer f.client.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	started := map[int]bool{}
	evict := time.NewTicker(time.Minute)
	defer evict.Stop()
	for {
		parts, err := f.partitions(ctx)
		if err != nil && ctx.Err() == nil {
			f.log.Warn().Err(err).Str("topic", f.topic).Msg("listing partitions; retrying")
		}
		for _, p := range parts {
			if started[p] {
				continue
			}
			started[p] = true
			wg.Add(1)
			go func() {
				defer wg.Done()
				f.follow(ctx, p)
			}()
		}
		wait := 30 * time.Second
		if len(started) == 0 {
			wait = f.retry
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-evict.C:
			t.Stop()
			f.index.Evict()
		case <-t.C:
		}
	}
}

func (f *Follower) partitions(ctx context.Context) ([]int, error) {
	return f.client.Partitions(ctx, f.topic)
}

// follow reads one partition until ctx is done, restarting after a
// failure from the offset after the last message it saw.
func (f *Follower) follow(ctx context.Context, partition int) {
	next := int64(-1)
	for ctx.Err() == nil {
		if next < 0 {
			off, err := f.startOffset(ctx, partition)
			if err != nil {
				if ctx.Err() == nil {
					f.log.Warn().Err(err).Int("partition", partition).Msg("looking up the start offset; retrying")
					sleep(ctx, f.retry)
				}
				continue
			}
			next = off
		}
		var err error
		next, err = f.tail(ctx, partition, next)
		if err != nil && ctx.Err() == nil {
			f.log.Warn().Err(err).Int("partition", partition).Int64("offset", next).Msg("reading; retrying")
			sleep(ctx, f.retry)
		}
	}
}

// startOffset is the first offset stamped at or after now less the
// retention, or the end of the partition when none is.
//
// The end is read first: a message written between the two lookups is
// then either found by the time lookup or at or after that end, never
// skipped (read the other way round, a message written between them
// would fall before the end taken after it).
func (f *Follower) startOffset(ctx context.Context, partition int) (int64, error) {
	_, end, err := f.client.Bounds(ctx, f.topic, partition)
	if err != nil {
		return 0, err
	}
	if end < 0 {
		return 0, fmt.Errorf("no end offset for %s/%d", f.topic, partition)
	}
	off, ok, err := f.client.OffsetAt(ctx, f.topic, partition, f.now().Add(-f.since))
	if err != nil || ok {
		return off, err
	}
	// None stamped at or after the time: only new messages count.
	return end, nil
}

// tail reads from offset from on and returns the offset to resume at.
func (f *Follower) tail(ctx context.Context, partition int, from int64) (int64, error) {
	return f.client.Tail(ctx, f.topic, partition, from, func(m kafkax.Message) { f.learn(m.Value) })
}

func (f *Follower) learn(value []byte) {
	f.read.Add(1)
	// Most events are not token exchanges: their type alone is read (a
	// sixth of a whole decoding), and only exchanges are decoded whole.
	if t, err := schemas.PeekEventType(value); err != nil || t != schemas.EventTokenExchanged {
		if err != nil {
			f.malformed.Add(1)
		}
		return
	}
	e, err := schemas.DecodeEvent(value)
	if err != nil {
		f.malformed.Add(1)
		return
	}
	if f.index.Add(e.TokenID, e.ParentTokenID, e.UserID, e.Time) {
		f.learned.Add(1)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
