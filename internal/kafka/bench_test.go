package kafka_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/kafka/kafkatest"
)

// The benchmarks below choose the fetch and write defaults (README,
// "Kafka"). They run a Writer and a Reader against the embedded broker on
// loopback, as the local run does:
//
//	go test -run '^$' -bench 'Hop|Throughput' -benchtime 300x ./internal/kafka

// benchValue is about the size of an AuditEvent's JSON.
var benchValue = bytes.Repeat([]byte("x"), 700)

// fetchCase is a reader and writer setting under measurement.
type fetchCase struct {
	batchTimeout time.Duration
	batchSize    int
	maxWait      time.Duration
	minBytes     int
}

func (c fetchCase) String() string {
	return fmt.Sprintf("batch_timeout=%s/batch_size=%d/max_wait=%s/min_bytes=%d", c.batchTimeout, c.batchSize, c.maxWait, c.minBytes)
}

// benchPipe starts a broker with topic of partitions, a Reader on it that
// hands each message to h, and a Writer to it, configured by fc. It
// returns once the Reader handled a first message.
func benchPipe(b *testing.B, partitions int, fc fetchCase, h func(kafka.Message)) *kafkax.Writer {
	b.Helper()
	c := kafkatest.NewWithPartitions(b, map[string]int{topic: partitions})
	rcfg := c.ReaderConfig(topic, "bench")
	rcfg.MaxWait, rcfg.MinBytes = fc.maxWait, fc.minBytes
	rcfg.CommitInterval = time.Second
	r, err := kafkax.NewReader(rcfg, zerolog.Nop(), nil)
	if err != nil {
		b.Fatal(err)
	}
	warm := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- r.Run(ctx, func(_ context.Context, m kafka.Message) error {
			if string(m.Key) == "warm-up" {
				select {
				case warm <- struct{}{}:
				default:
				}
				return nil
			}
			h(m)
			return nil
		})
	}()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	})
	wcfg := c.WriterConfig(topic)
	wcfg.BatchTimeout, wcfg.BatchSize = fc.batchTimeout, fc.batchSize
	w, err := kafkax.NewWriter(wcfg, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = w.Close() })
	if err := w.WriteMessages(context.Background(), kafka.Message{Key: []byte("warm-up")}); err != nil {
		b.Fatal(err)
	}
	select {
	case <-warm:
	case <-time.After(30 * time.Second):
		b.Fatal("the reader did not start")
	}
	return w
}

// BenchmarkHop measures one produce→consume hop at a low rate: a single
// message written (WriteMessages, acks from all replicas) while the
// reader waits in a fetch, until its handler runs; then the next. It
// reports the hop's p50 and p99 in milliseconds.
func BenchmarkHop(b *testing.B) {
	cases := []fetchCase{
		{batchTimeout: 5 * time.Millisecond, batchSize: 100, maxWait: 50 * time.Millisecond, minBytes: 1}, // the old defaults
		{batchTimeout: 5 * time.Millisecond, batchSize: 100, maxWait: 500 * time.Millisecond, minBytes: 1},
		{batchTimeout: time.Millisecond, batchSize: 100, maxWait: 500 * time.Millisecond, minBytes: 1},
		{batchTimeout: time.Millisecond, batchSize: 100, maxWait: 1500 * time.Millisecond, minBytes: 1}, // the new defaults
		{batchTimeout: 200 * time.Microsecond, batchSize: 100, maxWait: 500 * time.Millisecond, minBytes: 1},
		{batchTimeout: time.Millisecond, batchSize: 100, maxWait: 500 * time.Millisecond, minBytes: 64 << 10},
	}
	for _, fc := range cases {
		b.Run(fc.String(), func(b *testing.B) {
			got := make(chan time.Time, 1)
			w := benchPipe(b, 1, fc, func(kafka.Message) { got <- time.Now() })
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				t0 := time.Now()
				if err := w.WriteMessages(context.Background(), kafka.Message{Key: []byte(strconv.Itoa(i)), Value: benchValue}); err != nil {
					b.Fatal(err)
				}
				select {
				case t1 := <-got:
					lat = append(lat, t1.Sub(t0))
				case <-time.After(10 * time.Second):
					b.Fatalf("message %d not handled", i)
				}
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
			b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
		})
	}
}

// BenchmarkThroughput measures how fast messages go from Writer to
// handler over 8 partitions when one producer writes them in calls of 500
// (as the simulator does) while the Reader keeps up. It reports messages
// per second, end to end.
func BenchmarkThroughput(b *testing.B) {
	cases := []fetchCase{
		{batchTimeout: 5 * time.Millisecond, batchSize: 100, maxWait: 50 * time.Millisecond, minBytes: 1}, // the old defaults
		{batchTimeout: 5 * time.Millisecond, batchSize: 100, maxWait: 500 * time.Millisecond, minBytes: 1},
		{batchTimeout: time.Millisecond, batchSize: 100, maxWait: 500 * time.Millisecond, minBytes: 1},
		{batchTimeout: time.Millisecond, batchSize: 100, maxWait: 1500 * time.Millisecond, minBytes: 1}, // the new defaults
		{batchTimeout: 200 * time.Microsecond, batchSize: 100, maxWait: 500 * time.Millisecond, minBytes: 1},
		{batchTimeout: time.Millisecond, batchSize: 1000, maxWait: 500 * time.Millisecond, minBytes: 1},
		{batchTimeout: time.Millisecond, batchSize: 100, maxWait: 500 * time.Millisecond, minBytes: 64 << 10},
	}
	const call = 500
	for _, fc := range cases {
		b.Run(fc.String(), func(b *testing.B) {
			var handled atomic.Int64
			all := make(chan struct{})
			total := int64(b.N) * call
			w := benchPipe(b, 8, fc, func(kafka.Message) {
				if handled.Add(1) == total {
					close(all)
				}
			})
			msgs := make([]kafka.Message, call)
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				for j := range msgs {
					msgs[j] = kafka.Message{Key: []byte(strconv.Itoa(i*call + j)), Value: benchValue}
				}
				if err := w.WriteMessages(context.Background(), msgs...); err != nil {
					b.Fatal(err)
				}
			}
			select {
			case <-all:
			case <-time.After(time.Minute):
				b.Fatalf("%d of %d messages handled", handled.Load(), total)
			}
			b.StopTimer()
			b.ReportMetric(float64(total)/time.Since(start).Seconds(), "msgs/s")
		})
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
