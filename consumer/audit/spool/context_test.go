package spool_test

import (
	"context"
	"slices"
	"testing"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/consumer/audit/audittest"
	"github.com/revoked-dev/revoked/consumer/audit/memstore"
	"github.com/revoked-dev/revoked/consumer/audit/spool"
	"github.com/revoked-dev/revoked/schemas"
)

// downStore refuses every call, as a store that does not answer.
type downStore struct{ audit.Store }

func (downStore) Append(context.Context, []schemas.AuditRow) error { return errDown }
func (downStore) CommandRows(context.Context, string) ([]schemas.AuditRow, error) {
	return nil, errDown
}
func (downStore) ChainHead(context.Context, string) (uint64, string, error) { return 0, "", errDown }

// keepOpen is a store the spool's Close leaves open, to be read after.
type keepOpen struct{ *memstore.Store }

func (keepOpen) Close() error { return nil }

// Rows with evidence context spooled while the store is down read back
// from the spool with it, and reach the store with it, hashing as
// written, once a later process drains the spool.
func TestEvidenceContextThroughTheSpool(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	rows := make([]schemas.AuditRow, 3)
	for i := range rows {
		rows[i] = audittest.Row(i)
		rows[i].CommandID = "cmd-spooled"
	}
	rows[1].EvidenceContext = nil
	rows = audittest.Link("spooled", 0, "", rows)

	s, err := spool.Open(dir, downStore{memstore.New()}, spool.Options{CloseTimeout: -1}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, rows); err != nil {
		t.Fatalf("Append while the store is down: %v", err)
	}
	got, err := s.CommandRows(ctx, "cmd-spooled")
	if err != nil {
		t.Fatal(err)
	}
	check := func(where string, got []schemas.AuditRow) {
		t.Helper()
		if len(got) != len(rows) {
			t.Fatalf("%s: %d rows, want %d", where, len(got), len(rows))
		}
		for _, want := range rows {
			i := slices.IndexFunc(got, func(r schemas.AuditRow) bool { return r.RowID == want.RowID })
			if i < 0 {
				t.Fatalf("%s: row %s missing", where, want.RowID)
			}
			if !slices.Equal(got[i].EvidenceContext, want.EvidenceContext) || (want.EvidenceContext == nil) != (got[i].EvidenceContext == nil) {
				t.Errorf("%s: row %s has context %q, want %q", where, want.RowID, got[i].EvidenceContext, want.EvidenceContext)
			}
			if h := got[i].ComputeHash(); h != want.Hash {
				t.Errorf("%s: row %s hashes %s, want %s", where, want.RowID, h, want.Hash)
			}
		}
	}
	check("spooled", got)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	store := memstore.New()
	s, err = spool.Open(dir, keepOpen{store}, spool.Options{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil { // drains what is spooled
		t.Fatal(err)
	}
	got, err = store.CommandRows(ctx, "cmd-spooled")
	if err != nil {
		t.Fatal(err)
	}
	check("drained", got)
}
