package lineage

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

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
	// Malformed is the messages that did not decode as audit events;
	// dead-lettering them is the detector's business.
	Malformed int64
}

// Follower reads every partition of the audit events topic outside any
// consumer group, from the offset of now less the retention, and feeds
// the token.exchanged events to an index. It commits nothing.
type Follower struct {
	brokers []string
	topic   string
	since   time.Duration
	index   *Index
	log     zerolog.Logger

	client *kafka.Client
	trans  *kafka.Transport
	dialer *kafka.Dialer
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
	trans, err := sec.NewTransport("revoked-consumer-lineage")
	if err != nil {
		return nil, fmt.Errorf("lineage: %w", err)
	}
	dialer, err := sec.NewDialer("revoked-consumer-lineage")
	if err != nil {
		return nil, fmt.Errorf("lineage: %w", err)
	}
	return &Follower{
		brokers: brokers, topic: cfg.Topic, since: cfg.Retention, index: index,
		log:    log.With().Str("component", "lineage").Logger(),
		client: &kafka.Client{Addr: kafka.TCP(brokers...), Transport: trans},
		trans:  trans, dialer: dialer, now: time.Now, retry: time.Second,
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
	defer f.trans.CloseIdleConnections()
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
	resp, err := f.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{f.topic}})
	if err != nil {
		return nil, err
	}
	var out []int
	for _, t := range resp.Topics {
		if t.Name != f.topic {
			continue
		}
		if t.Error != nil {
			return nil, t.Error
		}
		for _, p := range t.Partitions {
			out = append(out, p.ID)
		}
	}
	return out, nil
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
func (f *Follower) startOffset(ctx context.Context, partition int) (int64, error) {
	resp, err := f.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{
		Topics: map[string][]kafka.OffsetRequest{f.topic: {
			kafka.TimeOffsetOf(partition, f.now().Add(-f.since)), kafka.LastOffsetOf(partition),
		}},
		IsolationLevel: kafka.ReadCommitted,
	})
	if err != nil {
		return 0, err
	}
	for _, po := range resp.Topics[f.topic] {
		if po.Partition != partition {
			continue
		}
		if po.Error != nil {
			return 0, po.Error
		}
		// A found time offset is filed under Offsets; "none at or after
		// the time" comes back as -1, and then only new messages count.
		for off := range po.Offsets {
			if off >= 0 {
				return off, nil
			}
		}
		if po.LastOffset >= 0 {
			return po.LastOffset, nil
		}
		return 0, fmt.Errorf("no end offset for %s/%d", f.topic, partition)
	}
	return 0, fmt.Errorf("%s/%d missing from the offsets answer", f.topic, partition)
}

// tail reads from offset from on and returns the offset to resume at.
func (f *Follower) tail(ctx context.Context, partition int, from int64) (int64, error) {
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:   f.brokers,
		Topic:     f.topic,
		Partition: partition,
		Dialer:    f.dialer,
		MinBytes:  1,
		MaxBytes:  10 << 20,
		// The reader's own fetch wait (kafkax.DefaultReaderConfig): a
		// tail waits on an idle partition, and kafka-go gives the broker
		// only 3/4 of MaxWait below a second, so a short one times out
		// and reconnects whenever the broker answers a little late.
		MaxWait:        kafkax.DefaultReaderConfig().MaxWait,
		IsolationLevel: kafka.ReadCommitted,
	})
	defer func() { _ = r.Close() }()
	if err := r.SetOffset(from); err != nil {
		return from, err
	}
	next := from
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			return next, err
		}
		next = m.Offset + 1
		f.learn(m.Value)
	}
}

func (f *Follower) learn(value []byte) {
	f.read.Add(1)
	e, err := schemas.DecodeEvent(value)
	if err != nil {
		f.malformed.Add(1)
		return
	}
	if e.Type != schemas.EventTokenExchanged {
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
