package kafka

import (
	"bytes"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"
)

func TestKafkaLoggerCreatesAnEventPerCall(t *testing.T) {
	var buf bytes.Buffer
	l := zerolog.New(zerolog.SyncWriter(&buf))
	kl := kafkaLogger(l, zerolog.InfoLevel)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() { kl.Printf("line %d\n", i) })
	}
	wg.Wait()
	kl.Printf("joined %s", "group")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 51 {
		t.Fatalf("got %d lines", len(lines))
	}
	if !strings.Contains(lines[50], `"message":"joined group"`) || !strings.Contains(lines[50], `"lib":"kafka-go"`) {
		t.Fatalf("last line = %s", lines[50])
	}
	// Disabled levels cost nothing and do not panic.
	kafkaLogger(l.Level(zerolog.ErrorLevel), zerolog.DebugLevel).Printf("quiet")
}
