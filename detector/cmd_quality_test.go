package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
)

// TestQualityStart runs the quality benchmark from a chosen instant (a
// Monday morning, given with an offset), which its report names in UTC,
// and refuses a start that is not RFC 3339.
func TestQualityStart(t *testing.T) {
	var out bytes.Buffer
	err := runQuality(context.Background(), []string{
		"-users", "40", "-duration", "20m", "-attacks-after", "1h", "-start", "2026-12-07T08:40:00+01:00",
	}, &out, io.Discard)
	// So few users for so short a time miss the targets (no attack at
	// all here): that verdict is the run's, and fine for this test.
	if err != nil && !strings.Contains(err.Error(), "quality targets missed") {
		t.Fatalf("runQuality: %v\n%s", err, out.String())
	}
	if want := "20m0s simulated from 2026-12-07T07:40:00Z"; !strings.Contains(out.String(), want) {
		t.Errorf("the report does not say %q:\n%s", want, out.String())
	}
	err = runQuality(context.Background(), []string{"-start", "Monday 08:40"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "RFC 3339") {
		t.Errorf("-start Monday 08:40: %v, want an error asking for RFC 3339", err)
	}
}
