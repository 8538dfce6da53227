package audittest

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/schemas"
)

// testEvidenceContextRoundTrip stores rows whose evidence context holds
// what the encoding allows and more (a store keeps any string): each reads
// back byte for byte and hashes as written, and a row without context
// reads back without it.
func testEvidenceContextRoundTrip(t *testing.T, s audit.Store) {
	c := ctx(t)
	in := rowsN(0, 4)
	for i := range in {
		in[i].CommandID = "cmd-context"
		in[i].RowID = schemas.AuditRowID(in[i].CommandID, in[i].Step, "t", 0, int64(i))
	}
	in[0].EvidenceContext = nil
	in[1].EvidenceContext = []string{""}
	in[2].EvidenceContext = []string{
		"'); DROP TABLE audit; -- \x00 \x01 \t \n \r \\' \\\\ `backtick` {p:String} ?",
		`{"event_id":"ev-1","ip":"192.0.2.7","as_org":"O'Reilly \"Media\" \\ \u0001"}`,
		strings.Repeat("y", 10_000),
	}
	in[3].EvidenceContext = slices.Repeat([]string{`{"event_id":"ev-0-a","ip":"2001:db8::1"}`}, schemas.MaxEvidence)
	rows := Link("chain-context", 0, "", in)
	if err := s.Append(c, rows); err != nil {
		t.Fatalf("Append: %v", err)
	}
	got, err := s.CommandRows(c, "cmd-context")
	if err != nil || len(got) != len(rows) {
		t.Fatalf("CommandRows: %d rows, %v; want %d", len(got), err, len(rows))
	}
	p := &precision{}
	byID := map[string]schemas.AuditRow{}
	for _, r := range got {
		byID[r.RowID] = r
	}
	for _, want := range rows {
		g, ok := byID[want.RowID]
		if !ok {
			t.Fatalf("row %s missing", want.RowID)
		}
		sameRow(t, p, g, want)
		if len(want.EvidenceContext) == 0 && g.EvidenceContext != nil {
			t.Errorf("row %s without context read back with %q", want.RowID, g.EvidenceContext)
		}
	}
	if err := audit.VerifyChain(got); err != nil {
		t.Errorf("the chain does not verify after the round trip: %v", err)
	}
}

// PreviousDDL returns stmts (schemas.RenderDDL's) without the definitions
// of the columns added since the audit table first shipped
// (schemas.AddedAuditColumns): the DDL with which an earlier release
// created the table (schemas' TestDDLWithoutAddedColumnsIsTheFirstRelease
// holds it to the first release's frozen text).
func PreviousDDL(stmts []string) []string {
	out := make([]string, len(stmts))
	for i, st := range stmts {
		lines := strings.Split(st, "\n")
		kept := lines[:0]
		for _, l := range lines {
			added := false
			for _, c := range schemas.AddedAuditColumns() {
				added = added || strings.HasPrefix(l, "    `"+c+"` ")
			}
			if !added {
				kept = append(kept, l)
			}
		}
		out[i] = strings.Join(kept, "\n")
	}
	return out
}

// PreviousColumns are the columns of the table PreviousDDL creates, in
// order: what an earlier release inserted.
func PreviousColumns() []string {
	var out []string
	for _, c := range schemas.AuditColumnNames() {
		if !slices.Contains(schemas.AddedAuditColumns(), c) {
			out = append(out, c)
		}
	}
	return out
}

// OldRows are n rows of chain as an earlier release wrote them: linked,
// without evidence context.
func OldRows(chain string, n int) []schemas.AuditRow {
	rows := rowsN(0, n)
	for i := range rows {
		rows[i].CommandID = fmt.Sprintf("cmd-old-%d", i)
		rows[i].RowID = schemas.AuditRowID(rows[i].CommandID, rows[i].Step, "old", 0, int64(i))
		rows[i].EvidenceContext = nil
	}
	return Link(chain, 0, "", rows)
}

// CheckMigration checks a store opened over a table an earlier release
// created (PreviousDDL) and filled with old (OldRows), before its first
// Migrate: Migrate adds the new columns, twice without harm; the old rows
// read back as they were written (no evidence context) and still verify;
// rows with context continue the same chain, read back with it, and the
// whole chain verifies.
func CheckMigration(t *testing.T, s audit.Store, old []schemas.AuditRow) {
	t.Helper()
	c := ctx(t)
	for i := range 2 {
		if err := s.Migrate(c); err != nil {
			t.Fatalf("Migrate %d over the earlier release's table: %v", i+1, err)
		}
	}
	chain := old[0].Chain
	got, err := s.ChainRows(c, chain, 0, 10*len(old))
	if err != nil {
		t.Fatalf("ChainRows after Migrate: %v", err)
	}
	if len(got) != len(old) {
		t.Fatalf("after Migrate: %d rows of the old chain, want %d", len(got), len(old))
	}
	p := &precision{}
	for i := range old {
		sameRow(t, p, got[i], old[i])
		if got[i].EvidenceContext != nil {
			t.Errorf("old row %d reads back with evidence context %q", i, got[i].EvidenceContext)
		}
	}
	if err := audit.VerifyChain(got); err != nil {
		t.Fatalf("the old rows do not verify after Migrate: %v", err)
	}
	last := old[len(old)-1]
	next := rowsN(len(old), 3)
	for i := range next {
		next[i].CommandID = fmt.Sprintf("cmd-new-%d", i)
		next[i].RowID = schemas.AuditRowID(next[i].CommandID, next[i].Step, "new", 0, int64(i))
	}
	next = Link(chain, last.Seq, last.Hash, next)
	if err := s.Append(c, next); err != nil {
		t.Fatalf("Append after Migrate: %v", err)
	}
	all, err := s.ChainRows(c, chain, 0, 10*len(old))
	if err != nil || len(all) != len(old)+len(next) {
		t.Fatalf("ChainRows after the new rows: %d rows, %v; want %d", len(all), err, len(old)+len(next))
	}
	for i, want := range next {
		g := all[len(old)+i]
		sameRow(t, p, g, want)
		if len(g.EvidenceContext) == 0 {
			t.Errorf("new row %d lost its evidence context", i)
		}
	}
	if err := audit.VerifyChain(all); err != nil {
		t.Errorf("the chain of old and new rows does not verify: %v", err)
	}
}
