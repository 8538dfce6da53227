package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"

	kafkax "github.com/revoked-dev/revoked/internal/kafka"
)

// SchemaBaselineV1 is the schema header of a baseline record.
const SchemaBaselineV1 = "detector-baseline/v1"

// Baseline is one entry of a long-lived per-group baseline: rule Rule has
// seen Field take Value for group Key (a user id, for rules grouped by
// user) first at FirstSeen and last at LastSeen. An entry with a zero
// LastSeen reports a value forgotten: Save deletes it.
type Baseline struct {
	Rule      string    `json:"rule"`
	Key       string    `json:"key"`
	Field     string    `json:"field"`
	Value     string    `json:"value"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
}

// RecordKey is the Kafka key of the entry's record: rule, group key, field
// and value, each path-escaped, joined by "/". Compaction keeps the newest
// record per key, so the topic holds the newest version of every entry.
func (b Baseline) RecordKey() string {
	return url.PathEscape(b.Rule) + "/" + url.PathEscape(b.Key) + "/" + url.PathEscape(b.Field) + "/" + url.PathEscape(b.Value)
}

// Store keeps baselines in a compacted topic, one record per entry, each in
// the partition of the same number as the event partition it was learnt
// from. It is safe for concurrent use.
type Store struct {
	c     *kafkax.Client
	topic string
	w     *kafkax.Writer
}

// NewStore returns a Store for topic that reads through c and writes with
// a transport of its own, waiting for every in-sync replica.
func NewStore(c *kafkax.Client, topic string) (*Store, error) {
	if topic == "" {
		return nil, errors.New("state: no baseline topic")
	}
	// Every record goes to the partition Save names, not to the hash of
	// its key.
	w, err := c.NewPartitionWriter(topic)
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	return &Store{c: c, topic: topic, w: w}, nil
}

// Topic is the baseline topic.
func (s *Store) Topic() string { return s.topic }

// Ensure makes sure the baseline topic has at least as many partitions as
// source, and returns how many source has. With create, a missing topic is
// created with cleanup.policy=compact, and one with fewer partitions is
// grown; without, either is ErrPartitionCount (or the metadata error).
// Call it before the first Save: kafka-go caches metadata, and a writer
// that looked the topic up before it existed keeps failing for a few
// seconds.
func (s *Store) Ensure(ctx context.Context, source string, create bool) (int, error) {
	// A client of its own, so that no cached metadata outlives the
	// changes made here.
	admin, err := s.c.Fresh()
	if err != nil {
		return 0, fmt.Errorf("state: %w", err)
	}
	defer admin.Close()
	want, err := partitionCount(ctx, admin, source)
	if err != nil {
		return 0, err
	}
	if want < 0 {
		return 0, fmt.Errorf("state: event topic %q does not exist", source)
	}
	have, err := partitionCount(ctx, admin, s.topic)
	if err != nil {
		return 0, err
	}
	switch {
	case have >= want:
		return want, nil
	case !create && have < 0:
		return 0, fmt.Errorf("%w: baseline topic %q does not exist", ErrPartitionCount, s.topic)
	case !create:
		return 0, fmt.Errorf("%w: %q has %d, %q has %d", ErrPartitionCount, s.topic, have, source, want)
	case have < 0:
		err := admin.CreateTopics(ctx, kafkax.TopicSpec{
			Name: s.topic, Partitions: want, Configs: map[string]string{"cleanup.policy": "compact"},
		})
		if err != nil {
			return 0, fmt.Errorf("creating baseline topic: %w", err)
		}
		return want, nil
	default:
		if err := admin.GrowPartitions(ctx, s.topic, want); err != nil {
			return 0, fmt.Errorf("growing baseline topic: %w", err)
		}
		return want, nil
	}
}

// partitionCount is the number of partitions of topic, or -1 when it does
// not exist.
func partitionCount(ctx context.Context, admin *kafkax.Client, topic string) (int, error) {
	ps, err := admin.Partitions(ctx, topic)
	if errors.Is(err, kafkax.ErrNoTopic) {
		return -1, nil
	}
	if err != nil {
		return 0, err
	}
	return len(ps), nil
}

// Save writes entries to partition and returns once every record is
// acknowledged by all in-sync replicas. An entry with a zero LastSeen is
// written as a tombstone (a record without a value), which deletes its
// key. Entries with the same record key are written once, the last one
// winning. ctx cancels the wait, after which some records may have been
// written; writing them again is harmless.
func (s *Store) Save(ctx context.Context, partition int, entries []Baseline) error {
	if len(entries) == 0 {
		return nil
	}
	index := make(map[string]int, len(entries))
	msgs := make([]kafkax.Message, 0, len(entries))
	for _, b := range entries {
		value, err := json.Marshal(b)
		if err != nil {
			return fmt.Errorf("encoding baseline: %w", err)
		}
		m := kafkax.Message{
			Partition: partition,
			Key:       []byte(b.RecordKey()),
			Value:     value,
			Headers:   []kafkax.Header{{Key: "schema", Value: []byte(SchemaBaselineV1)}},
		}
		if b.LastSeen.IsZero() {
			m.Value, m.Headers = nil, nil
		}
		if i, ok := index[string(m.Key)]; ok {
			msgs[i] = m
			continue
		}
		index[string(m.Key)] = len(msgs)
		msgs = append(msgs, m)
	}
	if err := s.w.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("writing %d baseline(s) to %s/%d: %w", len(msgs), s.topic, partition, err)
	}
	return nil
}

// Load returns the baselines partition holds now: the newest record of
// every key, less those whose newest record is a tombstone, sorted by
// record key. Records that do not decode are skipped and counted in
// skipped.
func (s *Store) Load(ctx context.Context, partition int) (entries []Baseline, skipped int, err error) {
	first, end, err := s.c.Bounds(ctx, s.topic, partition)
	if err != nil {
		return nil, 0, err
	}
	latest := map[string]*Baseline{}
	// Compaction never cleans the active segment, so the partition's
	// last offset (end-1) holds a record, which is what Read needs.
	_, err = s.c.Read(ctx, s.topic, partition, first, end, func(m kafkax.Message) error {
		key := string(m.Key)
		if m.Value == nil {
			delete(latest, key)
			return nil
		}
		var b Baseline
		if err := json.Unmarshal(m.Value, &b); err != nil || b.RecordKey() != key {
			skipped++
			return nil
		}
		latest[key] = &b
		return nil
	})
	if err != nil {
		return nil, skipped, err
	}
	keys := make([]string, 0, len(latest))
	for k := range latest {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	entries = make([]Baseline, 0, len(keys))
	for _, k := range keys {
		entries = append(entries, *latest[k])
	}
	return entries, skipped, nil
}

// Close flushes pending writes and closes the Store's connections.
func (s *Store) Close() error {
	if err := s.w.Close(); err != nil {
		return fmt.Errorf("closing baseline writer: %w", err)
	}
	return nil
}
