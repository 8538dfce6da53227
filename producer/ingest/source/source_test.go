package source_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/revoked-dev/revoked/producer/ingest/source"
)

func TestWindowForgetsTheOldestFirst(t *testing.T) {
	w := source.NewWindow(3, []string{"a", "b", "c", "d"})
	if w.Contains("a") || !w.Contains("b") || !w.Contains("d") || w.Len() != 3 {
		t.Fatalf("ids %v", w.IDs())
	}
	w.Add("e")
	w.Add("c") // already there: not moved, not doubled
	if got := w.IDs(); !slices.Equal(got, []string{"c", "d", "e"}) {
		t.Errorf("ids %v, want oldest first", got)
	}
	w.Add("f")
	if got := w.IDs(); !slices.Equal(got, []string{"d", "e", "f"}) {
		t.Errorf("ids %v", got)
	}
}

func TestCheckpointFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "box.checkpoint")
	s, err := source.NewFileStore(path, "box-events")
	if err != nil {
		t.Fatal(err)
	}
	if _, found, err := s.Load(); found || err != nil {
		t.Fatalf("empty store: found %v, %v", found, err)
	}
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	for i, cursor := range []string{"1001", "1002"} {
		if err := s.Save(source.Checkpoint{Cursor: cursor, Seen: []string{"e1", "e2"}[:i+1], UpdatedAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	c, found, err := s.Load()
	if err != nil || !found || c.Cursor != "1002" || !slices.Equal(c.Seen, []string{"e1", "e2"}) || c.Source != "box-events" || !c.UpdatedAt.Equal(at) {
		t.Fatalf("loaded %+v %v %v", c, found, err)
	}
	// Nothing but the checkpoint is left in the directory.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d files", len(entries))
	}
	// Another source's checkpoint is refused.
	other, err := source.NewFileStore(path, "okta-logs")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := other.Load(); err == nil || !strings.Contains(err.Error(), "box-events") {
		t.Errorf("another source's checkpoint: %v", err)
	}
	if _, err := source.NewFileStore(filepath.Join(dir, "missing", "x"), "box-events"); err == nil {
		t.Error("a checkpoint in a missing directory was accepted")
	}
}

func TestPollConfigReportsEverything(t *testing.T) {
	err := source.PollConfig{RetryMin: time.Second}.Validate()
	for _, want := range []string{"checkpoint", "poll-interval", "dedupe-window", "retry-max"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}
