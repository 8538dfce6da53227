package audittest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/consumer/audit/internal/chsql"
)

// The shape of the large benchmark table: BigUsers users with BigRows /
// BigUsers rows each, at random times over the BigDays days from BigStart.
const (
	BigRows  = 10_000_000
	BigUsers = 100_000
	BigDays  = 181
)

// BigStart is the start of the large table's time range.
var BigStart = time.Date(2025, time.January, 1, 0, 0, 0, 0, time.UTC)

// BigTarget is a ClickHouse backend's part of BenchHistory10M: a store
// over a table with a fixed name that outlives the benchmark, so a second
// run reuses the rows instead of inserting them again, and raw SQL access
// to the same table for the fill.
type BigTarget struct {
	Store audit.Store
	// Database and Table name the store's audit table.
	Database, Table string
	// Exec runs a statement; QueryUint64 runs a query whose result is one
	// UInt64.
	Exec        func(ctx context.Context, sql string) error
	QueryUint64 func(ctx context.Context, sql string) (uint64, error)
}

// BigFillSQL is the INSERT ... SELECT that fills table with n realistic
// rows on the server, from numbers(n): row i belongs to user i%users, at a
// random second of the days from BigStart, with a mix of steps (about half
// terminal; revoked rows carry latencies), five rules, chains and Kafka
// positions. The values are plausible, not consistent: seq, prev_hash and
// hash are derived from i, so the chains do not verify (VerifyChain would
// reject them); the benchmark reads rows, it does not audit them. Column
// types follow the table's (DateTime or DateTime64), as INSERT ... SELECT
// converts.
func BigFillSQL(table string, n, users, days int) string {
	start := BigStart.Unix()
	steps := []string{
		"received", "received", "received", "received", "received", "received",
		"revoked", "revoked", "revoked", "revoked", "verified", "verified", "verified",
		"failed", "held", "dry_run", "rejected", "notified", "dead_lettered", "notified",
	}
	for i, s := range steps {
		steps[i] = chsql.Quote(s)
	}
	rules := []string{"impossible_travel", "mass_download", "mfa_fatigue", "token_reuse", "new_device_country"}
	for i, r := range rules {
		rules[i] = chsql.Quote(r)
	}
	// u: the user, k: the row's number among the user's rows, t: its Unix
	// time, st: its step, rl: its rule.
	cols := []string{
		"lower(hex(SHA256(concat('row-', toString(number))))) AS row_id",
		"concat('consumer-', toString(number % 4), '/p', toString(number % 12))",
		"toUInt64(intDiv(number, 12) + 1)",
		fmt.Sprintf("toDateTime(toUInt32(%d + cityHash64(number, 't') %% %d) AS t, 'UTC')", start, days*86400),
		fmt.Sprintf("concat('cmd-', toString(number %% %d AS u), '-', toString(intDiv(intDiv(number, %d) AS k, 3)))", users, users),
		fmt.Sprintf("[%s][cityHash64(number, 's') %% %d + 1] AS st", strings.Join(steps, ", "), len(steps)),
		"if(st = 'failed', 'token API answered 503 Service Unavailable', '')",
		"'detector'", "'consumer-1'", "if(st = 'held', '', 'auto')",
		"'user'", "concat('user-', toString(u))",
		"lower(hex(cityHash64(number, 'tok')))",
		"concat('sess-', toString(u), '-', toString(k % 7))",
		"'web-app'", "toUInt8(number % 2)", "'revoke'", "'enforce'",
		fmt.Sprintf("[%s][cityHash64(number, 'r') %% %d + 1] AS rl", strings.Join(rules, ", "), len(rules)),
		"toUInt32(1 + number % 3)",
		"['low', 'medium', 'high', 'critical'][cityHash64(number, 'v') % 4 + 1]",
		"concat(rl, ' for user-', toString(u))",
		"[concat('ev-', toString(number)), concat('ev-', toString(number + 1))]",
		"toDateTime(t - 600, 'UTC')", "toDateTime(t - 60, 'UTC')", "toDateTime(t - 30, 'UTC')",
		"toDateTime(t - 29, 'UTC')", "toDateTime(t + 3600, 'UTC')",
		"toUInt16(if(st IN ('revoked', 'verified'), 200, if(st = 'failed', 503, 0)))",
		"if(st = 'revoked', '{\"active\":false}', '')",
		"toUInt32(if(st = 'revoked', 1 + number % 3, 0))",
		"if(st = 'verified', 'introspection: active=false', '')",
		"toUInt32(1 + number % 2)",
		"toInt64(200 + cityHash64(number, 'd') % 5000)",
		"toInt64(if(st = 'revoked', 300 + cityHash64(number, 'l') % 8000, 0))",
		"'revoke.commands'", "toInt32(number % 12)", "toInt64(intDiv(number, 12))",
		"lower(hex(SHA256(concat('hash-', toString(number - 1)))))",
		"lower(hex(SHA256(concat('hash-', toString(number)))))",
	}
	return fmt.Sprintf("%s SELECT %s FROM numbers(%d)", chsql.Insert(table), strings.Join(cols, ",\n  "), n)
}

// BenchHistory10M fills tg's table with BigRows rows (BigFillSQL) unless
// it holds them already, merges each month's parts into one unless
// $REVOKED_BENCH_UNMERGED is set, then measures History of one random
// user (newest 100 rows; and within the last 30 days), what the analysts'
// UI asks when it opens (Latest over 30 days, a page of the last hour,
// its Stats by the minute), prefix searches over a week, and Stats of a
// whole day by the hour. Each reports ms/query beside ns/op.
//
// The merge stands for the steady state of a trail months old: background
// merges leave its past months in a few large parts, while right after a
// bulk insert every month is in several parts, and one user's history
// reads a granule (8192 rows, every column) of each part (on ClickHouse
// 18.16: 6 parts instead of 36 take one user's 100 rows from about 140 ms
// to about 20 ms).
func BenchHistory10M(b *testing.B, tg BigTarget) {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Hour)
	defer cancel()
	if err := tg.Store.Migrate(c); err != nil {
		b.Fatalf("Migrate: %v", err)
	}
	table := chsql.Table(tg.Database, tg.Table)
	countSQL := "SELECT count() FROM " + table
	n, err := tg.QueryUint64(c, countSQL)
	if err != nil {
		b.Fatalf("counting rows: %v", err)
	}
	if n != BigRows {
		// Empty, or a fill that did not finish: start over.
		b.Logf("%s holds %d rows; filling it with %d", table, n, BigRows)
		if err := tg.Exec(c, "DROP TABLE IF EXISTS "+table); err != nil {
			b.Fatalf("dropping: %v", err)
		}
		if err := tg.Store.Migrate(c); err != nil {
			b.Fatalf("Migrate: %v", err)
		}
		start := time.Now()
		if err := tg.Exec(c, BigFillSQL(table, BigRows, BigUsers, BigDays)); err != nil {
			b.Fatalf("filling: %v", err)
		}
		took := time.Since(start)
		if n, err = tg.QueryUint64(c, countSQL); err != nil || n != BigRows {
			b.Fatalf("after the fill: %d rows, %v", n, err)
		}
		b.Logf("filled %d rows in %s (%.0f rows/s)", n, took.Round(time.Millisecond), float64(n)/took.Seconds())
	} else {
		b.Logf("reusing %s with %d rows", table, n)
	}
	inParts := fmt.Sprintf("FROM system.parts WHERE active AND database = %s AND table = %s", chsql.Quote(tg.Database), chsql.Quote(tg.Table))
	parts, err := tg.QueryUint64(c, "SELECT count() "+inParts)
	if err != nil {
		b.Fatalf("counting parts: %v", err)
	}
	months, err := tg.QueryUint64(c, "SELECT uniqExact(partition) "+inParts)
	if err != nil {
		b.Fatalf("counting partitions: %v", err)
	}
	if parts > months && os.Getenv("REVOKED_BENCH_UNMERGED") == "" {
		start := time.Now()
		if err := tg.Exec(c, "OPTIMIZE TABLE "+table+" FINAL"); err != nil {
			b.Fatalf("merging: %v", err)
		}
		b.Logf("merged %d parts into one per month (%d) in %s", parts, months, time.Since(start).Round(time.Millisecond))
	} else {
		b.Logf("%d parts in %d months", parts, months)
	}

	end := BigStart.AddDate(0, 0, BigDays)
	rng := rand.New(rand.NewPCG(1, 2))
	user := func() string { return fmt.Sprintf("user-%d", rng.IntN(BigUsers)) }
	perQuery := func(b *testing.B, rows int) {
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/query")
		b.ReportMetric(float64(rows)/float64(b.N), "rows/query")
	}
	b.Run("user_limit100", func(b *testing.B) {
		rows := 0
		for b.Loop() {
			got, err := tg.Store.History(c, audit.Query{UserID: user(), Limit: 100})
			if err != nil {
				b.Fatal(err)
			}
			if len(got) == 0 {
				b.Fatal("a user without rows")
			}
			rows += len(got)
		}
		perQuery(b, rows)
	})
	b.Run("user_30days_limit100", func(b *testing.B) {
		rows := 0
		for b.Loop() {
			got, err := tg.Store.History(c, audit.Query{UserID: user(), From: end.AddDate(0, 0, -30), To: end, Limit: 100})
			if err != nil {
				b.Fatal(err)
			}
			rows += len(got)
		}
		perQuery(b, rows)
	})
	// What the analysts' UI asks on opening: the newest activity of the
	// last 30 days (bounded), a page of every user's rows in the last hour
	// and its chart by the minute; then a prefix search, of the user ids
	// alone (the primary key) and of all five ids, over a week.
	hour := func() time.Time { return BigStart.Add(time.Duration(1+rng.IntN(BigDays*24-1)) * time.Hour) }
	b.Run("latest_30days", func(b *testing.B) {
		for b.Loop() {
			got, err := tg.Store.Latest(c, audit.Query{From: end.AddDate(0, 0, -30), To: end})
			if err != nil {
				b.Fatal(err)
			}
			if got.IsZero() {
				b.Fatal("no activity in the last 30 days")
			}
		}
		perQuery(b, b.N)
	})
	// The page and the chart of the 1-hour preset (the UI's default) and
	// of the 7-day one (its default before).
	for _, pc := range []struct {
		name, by     string
		span, bucket time.Duration
	}{{"1h", "minute", time.Hour, time.Minute}, {"7d", "hour", 7 * 24 * time.Hour, time.Hour}} {
		b.Run("page_"+pc.name+"_limit26", func(b *testing.B) {
			rows := 0
			for b.Loop() {
				to := hour()
				got, err := tg.Store.History(c, audit.Query{From: to.Add(-pc.span), To: to, Limit: 26})
				if err != nil {
					b.Fatal(err)
				}
				rows += len(got)
			}
			perQuery(b, rows)
		})
		b.Run("stats_"+pc.name+"_by_"+pc.by, func(b *testing.B) {
			points := 0
			for b.Loop() {
				to := hour()
				st, err := tg.Store.Stats(c, audit.StatsQuery{From: to.Add(-pc.span), To: to, Bucket: pc.bucket})
				if err != nil {
					b.Fatal(err)
				}
				points += len(st.Outcomes)
			}
			perQuery(b, points)
		})
	}
	for _, sc := range []struct {
		name string
		in   []audit.SearchField
	}{{"search_user_prefix_7d_limit26", []audit.SearchField{audit.SearchUser}}, {"search_all_ids_prefix_7d_limit26", nil}} {
		b.Run(sc.name, func(b *testing.B) {
			rows := 0
			for b.Loop() {
				// user-1234 is a prefix of user-1234 and user-12340..12349.
				prefix := fmt.Sprintf("user-%d", 1000+rng.IntN(9000))
				to := hour()
				got, err := tg.Store.History(c, audit.Query{Search: prefix, SearchIn: sc.in, From: to.AddDate(0, 0, -7), To: to, Limit: 26})
				if err != nil {
					b.Fatal(err)
				}
				rows += len(got)
			}
			perQuery(b, rows)
		})
	}
	b.Run("stats_24h_hourly", func(b *testing.B) {
		points := 0
		for b.Loop() {
			day := BigStart.AddDate(0, 0, rng.IntN(BigDays))
			st, err := tg.Store.Stats(c, audit.StatsQuery{From: day, To: day.Add(24 * time.Hour), Bucket: time.Hour})
			if err != nil {
				b.Fatal(err)
			}
			if st.RevokeLatency.Count == 0 {
				b.Fatal("a day without revocations")
			}
			points += len(st.Outcomes)
		}
		perQuery(b, points)
	})
}
