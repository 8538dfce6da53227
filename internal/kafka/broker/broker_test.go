package broker_test

import (
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/internal/kafka/broker"
	"github.com/revoked-dev/revoked/internal/testenv"
)

func start(t *testing.T, cfg broker.Config) *broker.Broker {
	t.Helper()
	b, err := broker.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// TestClientsProduceAndConsumeOverTCP runs a plain kafka-go producer and a
// consumer group against the broker's TCP port, as any external client would.
func TestClientsProduceAndConsumeOverTCP(t *testing.T) {
	b := start(t, broker.Config{Addr: "127.0.0.1:0", Topics: map[string]int{"events": 3}, DefaultPartitions: 1})
	host, port, err := net.SplitHostPort(b.Addr())
	if err != nil || host != "127.0.0.1" || port == "0" {
		t.Fatalf("Addr() = %q", b.Addr())
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := kafka.DialContext(ctx, "tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	parts, err := conn.ReadPartitions("events")
	_ = conn.Close()
	if err != nil || len(parts) != 3 {
		t.Fatalf("partitions = %v, %v", parts, err)
	}

	w := &kafka.Writer{Addr: kafka.TCP(b.Addr()), Topic: "events", RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
	defer func() { _ = w.Close() }()
	var msgs []kafka.Message
	for i := range 10 {
		msgs = append(msgs, kafka.Message{Key: []byte(strconv.Itoa(i)), Value: []byte("v" + strconv.Itoa(i))})
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}

	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{b.Addr()}, Topic: "events", GroupID: "g", MaxWait: 10 * time.Millisecond})
	defer func() { _ = r.Close() }()
	seen := map[string]bool{}
	for len(seen) < 10 {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		seen[string(m.Key)] = true
		if err := r.CommitMessages(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
}

// Ending the context closes the broker: it stops accepting connections
// and closes those it has. A client connected before the end reads until
// its connection is closed, and then finds the broker gone.
func TestContextCancelClosesBroker(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	b, err := broker.Start(ctx, broker.Config{Addr: "127.0.0.1:0", DefaultPartitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	conn, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	cancel()
	if err := conn.SetReadDeadline(time.Now().Add(testenv.WaitTimeout)); err != nil {
		t.Fatal(err)
	}
	n, err := conn.Read(make([]byte, 1))
	switch {
	case err == nil:
		t.Fatalf("read %d bytes from a broker that was asked nothing", n)
	case errors.Is(err, os.ErrDeadlineExceeded):
		t.Fatal("the broker kept a connection open after its context ended")
	}
	// The broker closes its listener before its connections.
	if c, err := net.Dial("tcp", b.Addr()); err == nil {
		_ = c.Close()
		t.Fatal("broker still accepts connections after its context ended")
	}
}

func TestDataDirKeepsTopicsAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	b, err := broker.Start(context.Background(), broker.Config{Addr: "127.0.0.1:0", Topics: map[string]int{"kept": 2}, DefaultPartitions: 1, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	w := &kafka.Writer{Addr: kafka.TCP(b.Addr()), Topic: "kept", RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
	if err := w.WriteMessages(ctx, kafka.Message{Value: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	_ = w.Close()
	b.Close()

	b = start(t, broker.Config{Addr: "127.0.0.1:0", DefaultPartitions: 1, DataDir: dir})
	conn, err := kafka.DialContext(ctx, "tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	parts, err := conn.ReadPartitions("kept")
	if err != nil || len(parts) != 2 {
		t.Fatalf("partitions after restart = %v, %v", parts, err)
	}
}

func TestConfigValidate(t *testing.T) {
	_, err := broker.Start(context.Background(), broker.Config{Addr: "nowhere", DefaultPartitions: 0})
	if !errors.Is(err, config.ErrInvalid) {
		t.Fatalf("err = %v", err)
	}
	if err := broker.DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
}
