package chdbstore

// These tests run the rendered DDL on chDB's engine (26.7), beyond what
// schemas' rendering tests check: the retention TTL as the engine stores
// and applies it, and every variant of the DDL through the engine's own
// parser. They are in the package to reach Store.exec.

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/audit/audittest"
	"github.com/revoked-dev/revoked/internal/testenv"
	"github.com/revoked-dev/revoked/schemas"
)

func openTTL(t *testing.T, dir, table string, ttl time.Duration) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := Open(ctx, Config{Path: dir, Table: table, LibPath: testenv.ChDBLibPath(t), TTL: ttl}, zerolog.Nop())
	if err != nil {
		t.Fatalf("Open with TTL %s: %v", ttl, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("Migrate with TTL %s: %v", ttl, err)
	}
	return s
}

func (s *Store) scalar(t *testing.T, sql string) string {
	t.Helper()
	out, err := s.exec(context.Background(), sql, "TabSeparatedRaw")
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return strings.TrimSpace(string(out))
}

// appendAt appends one row per time, all in one INSERT (one part per
// month partition), each the head of a chain of its own.
func appendAt(t *testing.T, s *Store, label string, times ...time.Time) {
	t.Helper()
	var rows []schemas.AuditRow
	for i, at := range times {
		r := audittest.Row(i)
		r.Time = at
		r.RowID = fmt.Sprintf("%s-%d", label, i)
		rows = append(rows, audittest.Link(fmt.Sprintf("%s-%d", label, i), 0, "", []schemas.AuditRow{r})...)
	}
	if err := s.Append(context.Background(), rows); err != nil {
		t.Fatalf("Append %s: %v", label, err)
	}
}

// rowIDs lists the table's row ids in order.
func (s *Store) rowIDs(t *testing.T) string {
	t.Helper()
	return s.scalar(t, "SELECT arrayStringConcat(groupArray(row_id), ',') FROM (SELECT row_id FROM "+s.table+" ORDER BY row_id)")
}

// TestTTL creates the audit table with a 30-day TTL: the engine shows the
// TTL and ttl_only_drop_parts, and once TTL merges run, OPTIMIZE ... FINAL
// has dropped the months whose rows are all older than the TTL and kept
// the recent rows. TTL merges are stopped while the rows go in, or the
// engine drops the expired parts before they can be counted.
func TestTTL(t *testing.T) {
	s := openTTL(t, t.TempDir(), "audit", 30*24*time.Hour)
	ddl := s.scalar(t, "SHOW CREATE TABLE "+s.table)
	for _, want := range []string{
		"TTL toDateTime(time) + toIntervalSecond(2592000)",
		"ttl_only_drop_parts = 1",
		"PARTITION BY toYYYYMM(time)",
	} {
		if !strings.Contains(ddl, want) {
			t.Errorf("SHOW CREATE TABLE lacks %q:\n%s", want, ddl)
		}
	}
	if ddl := s.scalar(t, "SHOW CREATE TABLE "+s.cpTable); strings.Contains(ddl, "TTL") {
		t.Errorf("the checkpoint table has a TTL:\n%s", ddl)
	}

	s.scalar(t, "SYSTEM STOP TTL MERGES "+s.table)
	now := time.Now().UTC().Truncate(time.Second)
	// Two expired months, each in a part of its own; two recent rows.
	appendAt(t, s, "old", now.AddDate(0, 0, -100), now.AddDate(0, 0, -99))
	appendAt(t, s, "older", now.AddDate(0, 0, -160))
	appendAt(t, s, "new", now.Add(-time.Hour), now)
	if got := s.rowIDs(t); got != "new-0,new-1,old-0,old-1,older-0" {
		t.Fatalf("rows before the TTL is applied: %q, want all five", got)
	}
	s.scalar(t, "SYSTEM START TTL MERGES "+s.table)
	s.scalar(t, "OPTIMIZE TABLE "+s.table+" FINAL")
	if got := s.rowIDs(t); got != "new-0,new-1" {
		t.Errorf("rows after OPTIMIZE FINAL: %q, want the two recent ones", got)
	}
	// The store reads what is left; the dropped chains are gone.
	if seq, _, err := s.ChainHead(context.Background(), "old-0"); err != nil || seq != 0 {
		t.Errorf("ChainHead of a dropped chain: %d, %v", seq, err)
	}
	if seq, _, err := s.ChainHead(context.Background(), "new-1"); err != nil || seq != 1 {
		t.Errorf("ChainHead of a kept chain: %d, %v", seq, err)
	}
}

// TestTTLDropsWholeParts pins what ttl_only_drop_parts does and does not
// do: the engine's TTL merges drop a part whose rows have all expired and
// leave a part that holds a live row whole; a merge that happens anyway
// (here OPTIMIZE ... FINAL) removes the expired rows it reads.
func TestTTLDropsWholeParts(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	ttl, expired, live := mixedPart(now)
	s := openTTL(t, t.TempDir(), "audit", ttl)
	s.scalar(t, "SYSTEM STOP TTL MERGES "+s.table)
	// One part with an expired and a live row; one part, of an earlier
	// month, all expired. Each is alone in its partition, so no ordinary
	// merge joins them.
	appendAt(t, s, "mixed", expired, live)
	appendAt(t, s, "expired", now.AddDate(0, 0, -41), now.AddDate(0, 0, -40))
	if got := s.rowIDs(t); got != "expired-0,expired-1,mixed-0,mixed-1" {
		t.Fatalf("rows before the TTL is applied: %q", got)
	}
	s.scalar(t, "SYSTEM START TTL MERGES "+s.table)
	// The engine merges in the background and tells no one: look until
	// the expired part is gone. A merge that dropped more than the expired
	// part fails at once.
	var got string
	testenv.Eventually(t, "the TTL merge to drop the expired part", func() bool {
		got = s.rowIDs(t)
		switch got {
		case "mixed-0,mixed-1":
			return true
		case "expired-0,expired-1,mixed-0,mixed-1":
			return false
		}
		t.Fatalf("rows once TTL merges ran: %q, want the mixed part whole and the expired one gone", got)
		return false
	})
	s.scalar(t, "OPTIMIZE TABLE "+s.table+" FINAL")
	if got := s.rowIDs(t); got != "mixed-1" {
		t.Errorf("rows after OPTIMIZE FINAL: %q, want the live row only", got)
	}
}

// mixedPart picks a TTL and the times of an expired and a live row in the
// same month (the table's partition) at any moment of the calendar: the
// rows sit a minute before and two minutes after the TTL's threshold,
// which for one of a one-hour and a two-hour TTL is never a month's start.
func mixedPart(now time.Time) (ttl time.Duration, expired, live time.Time) {
	for _, ttl = range []time.Duration{time.Hour, 2 * time.Hour} {
		th := now.Add(-ttl)
		expired, live = th.Add(-time.Minute), th.Add(2*time.Minute)
		if expired.Year() == live.Year() && expired.Month() == live.Month() {
			return ttl, expired, live
		}
	}
	panic("month starts less than an hour apart")
}

// TestMixedPartAtMonthStarts: mixedPart finds rows of one month around
// every month start.
func TestMixedPartAtMonthStarts(t *testing.T) {
	start := time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)
	for d := -3 * time.Hour; d <= 3*time.Hour; d += 15 * time.Second {
		now := start.Add(d)
		ttl, expired, live := mixedPart(now)
		if expired.Month() != live.Month() || !expired.Before(now.Add(-ttl)) || !live.After(now.Add(-ttl).Add(time.Minute)) {
			t.Fatalf("at %s: ttl %s, rows at %s and %s", now, ttl, expired, live)
		}
	}
}

// TestDDLParses runs every variant of the rendered DDL (server version,
// cluster, TTL) through chDB's parser with formatQuery, which parses
// without executing: the cluster variant cannot run here (no cluster, no
// ZooKeeper in chDB); chstore's cluster test runs it on a real server.
func TestDDLParses(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := Open(ctx, Config{Path: t.TempDir(), Table: "audit", LibPath: testenv.ChDBLibPath(t)}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	for _, v := range []schemas.ServerVersion{{Major: 18, Minor: 16, Patch: 1}, s.EngineVersion()} {
		for _, cluster := range []string{"", "prod_cluster"} {
			for _, ttl := range []time.Duration{0, 400 * 24 * time.Hour} {
				if ttl > 0 && !v.Modern() {
					continue
				}
				opts := schemas.DDLOptions{Database: "revoked", Table: "audit_trail", ServerVersion: v, Cluster: cluster, TTL: ttl}
				stmts, err := schemas.RenderDDL(opts)
				if err != nil {
					t.Fatal(err)
				}
				cp, err := schemas.RenderCheckpointDDL(opts)
				if err != nil {
					t.Fatal(err)
				}
				for _, stmt := range append(stmts, cp...) {
					out, err := s.exec(ctx, "SELECT formatQuery('"+strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(stmt)+"')", "TabSeparatedRaw")
					if err != nil {
						t.Errorf("%s cluster %q ttl %s: chDB does not parse\n%s\n: %v", v, cluster, ttl, stmt, err)
						continue
					}
					// The parser keeps what matters: the engine, and ON CLUSTER.
					f := string(out)
					if cluster != "" && !strings.Contains(f, "ON CLUSTER prod_cluster") {
						t.Errorf("formatted statement lost ON CLUSTER:\n%s", f)
					}
				}
			}
		}
	}
}
