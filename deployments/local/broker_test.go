package main

import (
	"context"
	"io"
	"strings"
	"testing"

	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/testenv"
)

// TestBrokerSubcommand runs the embedded broker alone, as the deployment
// tests run it for the commands started as separate processes, and reads
// the topics it created through a Kafka client at the address it printed.
func TestBrokerSubcommand(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	stderr := &testenv.LogBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- dispatch(ctx, []string{"broker", "-broker.addr", "127.0.0.1:0", "-broker.topics", "audit.events=4,revoke.dlq"}, pw, stderr)
		_ = pw.Close()
	}()
	line := make([]byte, 64)
	n, err := pr.Read(line)
	if err != nil {
		t.Fatalf("reading the address: %v\nstderr:\n%s", err, stderr.String())
	}
	addr := strings.TrimSpace(string(line[:n]))

	c, err := kafkax.NewClient([]string{addr}, kafkax.Security{}, "broker-test")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for topic, want := range map[string]int{"audit.events": 4, "revoke.dlq": 3} {
		parts, err := c.Partitions(ctx, topic)
		if err != nil {
			t.Fatalf("%s: %v", topic, err)
		}
		if len(parts) != want {
			t.Errorf("%s has %d partitions, want %d", topic, len(parts), want)
		}
	}
	cancel()
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	if err := <-done; err != nil {
		t.Fatalf("broker: %v", err)
	}

	if err := dispatch(t.Context(), []string{"broker", "-broker.topics", "x=none"}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "x=none") {
		t.Fatalf("a bad topic count: err = %v", err)
	}
}
