package app

import (
	"context"
	"errors"
	"testing"
)

// TestAlongside: the tasks run beside the service, are stopped when it
// returns, and every error comes back.
func TestAlongside(t *testing.T) {
	errTask, errRun := errors.New("task failed"), errors.New("run failed")
	started := make(chan struct{}, 2)
	task := func(ctx context.Context) error {
		started <- struct{}{}
		<-ctx.Done()
		return nil
	}
	failing := func(ctx context.Context) error {
		started <- struct{}{}
		<-ctx.Done()
		return errTask
	}
	run := func(ctx context.Context) error {
		<-started
		<-started
		return errRun
	}
	err := alongside(run, task, failing)(t.Context())
	if !errors.Is(err, errRun) || !errors.Is(err, errTask) {
		t.Fatalf("err = %v", err)
	}
	if err := alongside(func(context.Context) error { return nil })(t.Context()); err != nil {
		t.Fatalf("no tasks: %v", err)
	}
}
