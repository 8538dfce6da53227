package kafka

import (
	"context"

	"github.com/segmentio/kafka-go"
)

// RawGroupReader is a plain kafka-go consumer-group reader with none of
// Reader's machinery (no lanes, no dead-lettering, no commits): a baseline
// that measures kafka-go itself, for benchmarks. Production code reads
// with Reader.
type RawGroupReader struct {
	r *kafka.Reader
}

// NewRawGroupReader returns a reader of topic in consumer group group on
// brokers, fetching as cfg says (MinBytes, MaxBytes, MaxWait; its other
// settings are ignored) and starting at the first offset when the group
// has none committed. It connects in plaintext.
func NewRawGroupReader(brokers []string, topic, group string, cfg ReaderConfig) *RawGroupReader {
	return &RawGroupReader{r: kafka.NewReader(kafka.ReaderConfig{
		Brokers:     brokers,
		GroupID:     group,
		Topic:       topic,
		MinBytes:    cfg.MinBytes,
		MaxBytes:    cfg.MaxBytes,
		MaxWait:     cfg.MaxWait,
		StartOffset: kafka.FirstOffset,
	})}
}

// Fetch returns the next message, blocking until there is one or ctx is
// done. It commits nothing.
func (r *RawGroupReader) Fetch(ctx context.Context) (Message, error) { return r.r.FetchMessage(ctx) }

// Close leaves the group and closes the connections.
func (r *RawGroupReader) Close() error { return r.r.Close() }
