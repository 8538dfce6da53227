package chstore

import (
	"context"
	"testing"
	"time"
)

// An insert's context ends with its caller's while the insert is under
// way, and never after it is done, so clickhouse-go's watchdog cannot
// close a connection already back in the pool (see batchContext).
func TestBatchContextEndsOnlyWhileInserting(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	bctx, done := batchContext(ctx)
	done()
	cancel()
	if bctx.Err() != nil {
		t.Fatal("the insert's context ended with its caller's after the insert was done")
	}

	ctx, cancel = context.WithCancel(context.Background())
	bctx, done = batchContext(ctx)
	defer done()
	cancel()
	select {
	case <-bctx.Done():
	case <-time.After(10 * time.Second): // only ends a hung test
		t.Fatal("the insert's context did not end with its caller's")
	}
}
