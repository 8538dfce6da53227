package kafka_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/revoked-dev/revoked/internal/config"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/kafka/kafkatest"
)

func TestWriterRequiresAllAcksAndKeepsKeysTogether(t *testing.T) {
	const partitions = 3
	c := kafkatest.NewWithPartitions(t, map[string]int{"out": partitions})

	var mu sync.Mutex
	var acks []int16
	c.Fake().ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.Fake().KeepControl()
		mu.Lock()
		acks = append(acks, kreq.(*kmsg.ProduceRequest).Acks)
		mu.Unlock()
		return nil, nil, false // observe only; the broker handles it
	})

	w, err := kafkax.NewWriter(c.WriterConfig("out"), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	var msgs []kafka.Message
	for i := range 60 {
		key := "user-" + strconv.Itoa(i%6)
		msgs = append(msgs, kafka.Message{Key: []byte(key), Value: []byte(strconv.Itoa(i))})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteMessages(ctx, msgs[0]); err == nil {
		t.Fatal("write after Close succeeded")
	}

	mu.Lock()
	if len(acks) == 0 {
		t.Fatal("no produce request seen")
	}
	for _, a := range acks {
		if a != -1 {
			t.Fatalf("produce request with acks=%d, want -1 (all in-sync replicas)", a)
		}
	}
	mu.Unlock()

	got := c.Records(t, "out")
	if len(got) != len(msgs) {
		t.Fatalf("topic holds %d messages, want %d", len(got), len(msgs))
	}
	partitionOf := map[string]int{}
	used := map[int]bool{}
	all := make([]int, partitions)
	for i := range all {
		all[i] = i
	}
	for _, m := range got {
		key := string(m.Key)
		if p, ok := partitionOf[key]; ok && p != m.Partition {
			t.Fatalf("key %s on partitions %d and %d", key, p, m.Partition)
		}
		partitionOf[key] = m.Partition
		used[m.Partition] = true
		// The Java client's murmur2 partitioner picks the same one.
		if want := (kafka.Murmur2Balancer{}).Balance(kafka.Message{Key: m.Key}, all...); m.Partition != want {
			t.Fatalf("key %s on partition %d, murmur2 says %d", key, m.Partition, want)
		}
	}
	if len(used) < 2 {
		t.Fatalf("six keys all landed on partition(s) %v", used)
	}
	// Within a key, order is kept.
	last := map[string]int{}
	for _, m := range got {
		n, _ := strconv.Atoi(string(m.Value))
		if prev, ok := last[string(m.Key)]; ok && n < prev {
			t.Fatalf("key %s: %d after %d", m.Key, n, prev)
		}
		last[string(m.Key)] = n
	}
}

func TestWriterDoesNotCreateTopics(t *testing.T) {
	c := kafkatest.New(t, "out")
	cfg := c.WriterConfig("missing")
	cfg.MaxAttempts = 1
	w, err := kafkax.NewWriter(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, kafka.Message{Value: []byte("x")}); err == nil {
		t.Fatal("write to a missing topic succeeded")
	}
	if err := kafkax.EnsureTopics(ctx, c.Brokers, kafkax.Security{}, nil); err != nil {
		t.Fatal(err)
	}
	md, err := (&kafka.Client{Addr: kafka.TCP(c.Brokers...)}).Metadata(ctx, &kafka.MetadataRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tm := range md.Topics {
		if tm.Name == "missing" {
			t.Fatal("the write created the topic")
		}
	}
}

func TestEnsureTopicsIsIdempotent(t *testing.T) {
	c := kafkatest.New(t, "existing")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	topics := map[string]int{"existing": 5, "fresh": 4, "defaulted": 0}
	for range 2 {
		if err := kafkax.EnsureTopics(ctx, c.Brokers, kafkax.Security{}, topics); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(c.Partitions(t, "existing")); got != 1 {
		t.Fatalf("existing topic has %d partitions, want it left at 1", got)
	}
	if got := len(c.Partitions(t, "fresh")); got != 4 {
		t.Fatalf("fresh topic has %d partitions, want 4", got)
	}
	if got := len(c.Partitions(t, "defaulted")); got != 1 {
		t.Fatalf("defaulted topic has %d partitions, want the broker default 1", got)
	}
	if err := kafkax.EnsureTopics(ctx, nil, kafkax.Security{}, topics); err == nil {
		t.Fatal("no brokers accepted")
	}
}

func TestWriterConfigReportsEveryProblem(t *testing.T) {
	_, err := kafkax.NewWriter(kafkax.WriterConfig{
		Security: kafkax.Security{SASL: kafkax.SASLConfig{Mechanism: kafkax.SASLPlain}},
	}, zerolog.Nop())
	if !errors.Is(err, config.ErrInvalid) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{"brokers", "batch-timeout", "batch-size", "batch-bytes", "write-timeout", "max-attempts", "sasl.username", "sasl.password"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
	cfg := kafkax.DefaultWriterConfig()
	cfg.Brokers = []string{"localhost:9092"}
	cfg.Security.TLS = kafkax.TLSConfig{Enabled: true, CAFile: "/nonexistent/ca.pem"}
	if _, err := kafkax.NewWriter(cfg, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), "CA file") {
		t.Fatalf("missing CA file: err = %v", err)
	}
}
