package chdbstore

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/audit/audittest"
	"github.com/revoked-dev/revoked/internal/testenv"
	"github.com/revoked-dev/revoked/schemas"
)

// TestMigratesTableOfEarlierRelease opens a data directory whose audit
// table an earlier release created, without the evidence_context column,
// and holds rows it wrote: Migrate adds the column where a new table has
// it, old rows read back and verify as before, new rows keep their
// context (audittest.CheckMigration).
func TestMigratesTableOfEarlierRelease(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := Open(ctx, Config{Path: t.TempDir(), Table: "audit", LibPath: testenv.ChDBLibPath(t)}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	for _, stmt := range audittest.PreviousDDL(s.ddl) {
		if _, err := s.exec(ctx, stmt, "TabSeparated"); err != nil {
			t.Fatalf("the earlier release's DDL: %v\n%s", err, stmt)
		}
	}
	columns := func() []string {
		out := s.scalar(t, "SELECT arrayStringConcat(groupArray(name), ',') FROM (SELECT name FROM system.columns WHERE database = 'default' AND table = 'audit' ORDER BY position)")
		return strings.Split(out, ",")
	}
	if got := columns(); !slices.Equal(got, audittest.PreviousColumns()) {
		t.Fatalf("the earlier release's table has columns %q", got)
	}

	// The rows as the earlier release inserted them: its column list, its
	// values.
	old := audittest.OldRows("chain-old", 5)
	drop := slices.Index(schemas.AuditColumnNames(), "evidence_context")
	var b strings.Builder
	b.WriteString("INSERT INTO " + s.table + " (" + strings.Join(audittest.PreviousColumns(), ", ") + ") FORMAT TabSeparated\n")
	for i := range old {
		fields := strings.Split(strings.TrimSuffix(string(AppendTSVRow(nil, &old[i])), "\n"), "\t")
		b.WriteString(strings.Join(slices.Delete(fields, drop, drop+1), "\t") + "\n")
	}
	if _, err := s.exec(ctx, b.String(), "TabSeparated"); err != nil {
		t.Fatalf("inserting the earlier release's rows: %v", err)
	}

	audittest.CheckMigration(t, s, old)
	if got := columns(); !slices.Equal(got, schemas.AuditColumnNames()) {
		t.Errorf("after Migrate the table has columns\n%q\nwant those of a new table\n%q", got, schemas.AuditColumnNames())
	}
}
