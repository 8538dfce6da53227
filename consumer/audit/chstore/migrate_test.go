package chstore

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/audit/audittest"
	"github.com/revoked-dev/revoked/internal/testenv"
	"github.com/revoked-dev/revoked/schemas"
)

// TestMigratesTableOfEarlierRelease creates the audit table as an earlier
// release did, without the evidence_context column, fills it through that
// release's column list, and opens the store over it: Migrate adds the
// column (after evidence, as in a new table), old rows read back and
// verify as before, new rows keep their context (audittest.CheckMigration).
// On the cluster layout the column goes to the replicated local table and
// to the Distributed table, and the rows go through the Distributed table.
func TestMigratesTableOfEarlierRelease(t *testing.T) {
	dsn := testenv.ClickHouseDSN(t)
	for _, layout := range []string{"table", "cluster"} {
		t.Run(layout, func(t *testing.T) {
			cluster := ""
			if layout == "cluster" {
				cluster = strings.TrimSpace(os.Getenv("REVOKED_TEST_CLICKHOUSE_CLUSTER"))
				if cluster == "" {
					if testenv.Required(testenv.ClickHouse) {
						t.Fatal("REVOKED_TEST_CLICKHOUSE_CLUSTER is not set but ClickHouse is required for this run")
					}
					t.Skip(`REVOKED_TEST_CLICKHOUSE_CLUSTER is not set; start the test server with: eval "$(bash .ci/clickhouse.sh)"`)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			db := testenv.UniqueName(t, "revoked_test")
			s, err := Open(ctx, Config{DSN: dsn, Database: db, Table: "audit", Cluster: cluster}, zerolog.Nop())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				_ = s.Close()
				testenv.DropClickHouseDatabase(t, dsn, db)
			})
			for _, stmt := range audittest.PreviousDDL(s.ddl) {
				if err := s.conn.Exec(ctx, stmt); err != nil {
					t.Fatalf("the earlier release's DDL: %v\n%s", err, stmt)
				}
			}
			tables := []string{"audit"}
			if cluster != "" {
				tables = append(tables, "audit_local")
			}
			// system.columns lists a table's columns in their order (18.16
			// has no position column to order by).
			columnsOf := func(table string) []string {
				rows, err := s.conn.Query(ctx, fmt.Sprintf("SELECT name FROM system.columns WHERE database = '%s' AND table = '%s'", db, table))
				if err != nil {
					t.Fatal(err)
				}
				defer func() { _ = rows.Close() }()
				var out []string
				for rows.Next() {
					var n string
					if err := rows.Scan(&n); err != nil {
						t.Fatal(err)
					}
					out = append(out, n)
				}
				return out
			}
			for _, table := range tables {
				if got := columnsOf(table); !slices.Equal(got, audittest.PreviousColumns()) {
					t.Fatalf("the earlier release's %s has columns %q", table, got)
				}
			}

			// The rows as the earlier release inserted them: its column
			// list, its values.
			old := audittest.OldRows("chain-old", 5)
			batch, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.table+" ("+strings.Join(audittest.PreviousColumns(), ", ")+")")
			if err != nil {
				t.Fatal(err)
			}
			drop := slices.Index(schemas.AuditColumnNames(), "evidence_context")
			for i, col := range slices.Delete(rowColumns(old), drop, drop+1) {
				if err := batch.Column(i).Append(col); err != nil {
					t.Fatal(err)
				}
			}
			if err := batch.Send(); err != nil {
				t.Fatalf("inserting the earlier release's rows: %v", err)
			}

			audittest.CheckMigration(t, s, old)
			for _, table := range tables {
				if got := columnsOf(table); !slices.Equal(got, schemas.AuditColumnNames()) {
					t.Errorf("after Migrate %s has columns\n%q\nwant those of a new table\n%q", table, got, schemas.AuditColumnNames())
				}
			}
		})
	}
}

// rowColumns is columns, named apart from the test's local helper.
func rowColumns(rows []schemas.AuditRow) []any { return columns(rows) }
