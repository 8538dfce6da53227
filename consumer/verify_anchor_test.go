package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/revoked-dev/revoked/consumer/audit/audittest"
	"github.com/revoked-dev/revoked/schemas"
)

// Hash chains alone cannot prove that a trail's last rows were not
// deleted: with neither checkpoint keys nor expected heads, verify says
// "unanchored" and fails unless told to accept it.
func TestVerifyWithoutAnchorFails(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rows := make([]schemas.AuditRow, 3)
	for i := range rows {
		rows[i] = audittest.Row(i)
	}
	dir, lib := seedChDB(t, rows...)
	args := []string{"verify", "-audit.backend=chdb", "-audit.chdb-path=" + dir, "-audit.chdb-lib-path=" + lib, "-allow-unsigned", "-no-progress"}

	var out, errb bytes.Buffer
	err := run(ctx, args, &out, &errb)
	if !errors.Is(err, ErrUnanchored) {
		t.Fatalf("verify without keys or anchors = %v, want ErrUnanchored\n%s%s", err, out.String(), errb.String())
	}
	out.Reset()
	if err := run(ctx, append(args, "-allow-unanchored"), &out, &errb); err != nil {
		t.Fatalf("verify -allow-unanchored = %v\n%s%s", err, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "unanchored") {
		t.Errorf("summary does not say unanchored:\n%s", out.String())
	}
}
