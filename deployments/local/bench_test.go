package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/revoked-dev/revoked/internal/testenv"
)

// TestBenchPrintsEveryRow runs the bench subcommand at tiny sizes and
// checks that its tables have a row for every part and rate. It asserts
// nothing about the timings.
func TestBenchPrintsEveryRow(t *testing.T) {
	testenv.ChDBLibPath(t)
	args := []string{"bench", "-events", "500", "-commands", "20", "-rows", "100",
		"-rates", "300", "-duration", "2s", "-drain", "3s", "-users", "50", "-partitions", "2"}
	want := []string{"detector ", "consumer ", "audit chDB ", "at 300 events/s "}
	if dsn := os.Getenv(testenv.EnvClickHouseDSN); dsn != "" {
		args = append(args, "-clickhouse-dsn", dsn)
		want = append(want, "audit ClickHouse ")
	}
	// Progress and the components' logs share stderr from several
	// goroutines, as they share the process's.
	var stdout bytes.Buffer
	stderr := &testenv.LogBuffer{}
	if err := dispatch(context.Background(), args, &stdout, stderr); err != nil {
		t.Fatalf("bench: %v\nstderr:\n%s", err, stderr.String())
	}
	out := stdout.String()
	for _, w := range append(want, "part ", "event → revoked ") {
		if !strings.Contains(out, "\n"+w) && !strings.HasPrefix(out, w) {
			t.Errorf("no line starting %q in:\n%s", w, out)
		}
	}
	if !strings.Contains(stderr.String(), "bench: latency") {
		t.Errorf("no progress on stderr:\n%s", stderr.String())
	}
}

func TestBenchRefusesUnknownPart(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := dispatch(context.Background(), []string{"bench", "-parts", "detector,nope"}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), `unknown part "nope"`) {
		t.Fatalf("err = %v, want unknown part", err)
	}
}
