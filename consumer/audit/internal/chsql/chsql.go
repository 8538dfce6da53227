// Package chsql builds the audit trail's SQL, shared by the ClickHouse
// server and chDB backends so both run the same statements, on every
// supported ClickHouse version (18.16 and later: no OFFSET keyword, no
// query parameters, no FINAL needed).
//
// Values enter statements only through Quote, which escapes every byte
// outside a small safe set, so no row or filter content can end a string
// literal.
package chsql

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/schemas"
)

// Quote returns s as a ClickHouse string literal. Letters, digits and a
// few punctuation characters pass as they are; every other byte (quotes,
// backslashes, control characters, '?', braces, each byte of a multi-byte
// UTF-8 character) becomes a \xHH escape, which every ClickHouse version
// reads back as that byte.
func Quote(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if safe(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteString(`\x`)
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0xF])
	}
	b.WriteByte('\'')
	return b.String()
}

func safe(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte(" _-.:/@+=,", c) >= 0
}

// Ident quotes an identifier that has passed schemas.DDLOptions.Validate.
func Ident(s string) string { return "`" + s + "`" }

// Table returns the qualified, quoted table name.
func Table(database, table string) string { return Ident(database) + "." + Ident(table) }

// Columns is the audit table's column list, in schemas.AuditColumns order.
func Columns() string { return strings.Join(schemas.AuditColumnNames(), ", ") }

// Insert is the head of an INSERT with the explicit column list that
// ClickHouse 18.16 requires of clickhouse-go batches.
func Insert(table string) string {
	return "INSERT INTO " + table + " (" + Columns() + ")"
}

// CommandRows selects one command's rows, one per row_id, in chain and seq
// order.
func CommandRows(table, commandID string) string {
	return fmt.Sprintf("SELECT %s FROM %s WHERE command_id = %s ORDER BY chain, seq, hash LIMIT 1 BY row_id",
		Columns(), table, Quote(commandID))
}

// ChainHead selects the seq and hash of a chain's last row.
func ChainHead(table, chain string) string {
	return fmt.Sprintf("SELECT seq, hash FROM %s WHERE chain = %s ORDER BY seq DESC, hash LIMIT 1",
		table, Quote(chain))
}

// ChainRows selects a chain's rows after a seq, identical copies once.
func ChainRows(table, chain string, afterSeq uint64, limit int) string {
	q := fmt.Sprintf("SELECT %s FROM %s WHERE chain = %s AND seq > %d ORDER BY seq, hash LIMIT 1 BY seq, hash",
		Columns(), table, Quote(chain), afterSeq)
	if limit > 0 {
		q += " LIMIT " + strconv.Itoa(limit)
	}
	return q
}

// TableColumns selects the names of a table's columns.
func TableColumns(database, table string) string {
	return fmt.Sprintf("SELECT name FROM system.columns WHERE database = %s AND table = %s", Quote(database), Quote(table))
}

// Missing lists the columns of schemas.AddedAuditColumns not in have (a
// table's columns), in table order: what a migration adds.
func Missing(have map[string]bool) []string {
	var out []string
	for _, c := range schemas.AddedAuditColumns() {
		if !have[c] {
			out = append(out, c)
		}
	}
	return out
}

// CheckpointColumns is the checkpoint table's column list, in
// schemas.CheckpointColumns order.
func CheckpointColumns() string { return strings.Join(schemas.CheckpointColumnNames(), ", ") }

// CheckpointInsert is the head of an INSERT into the checkpoint table.
func CheckpointInsert(table string) string {
	return "INSERT INTO " + table + " (" + CheckpointColumns() + ")"
}

// Checkpoints selects a chain's checkpoints after a seq, identical copies
// once.
func Checkpoints(table, chain string, afterSeq uint64, limit int) string {
	q := fmt.Sprintf("SELECT %s FROM %s WHERE chain = %s AND seq > %d ORDER BY seq, key_id, signature, hash, time LIMIT 1 BY seq, hash, time, key_id, signature",
		CheckpointColumns(), table, Quote(chain), afterSeq)
	if limit > 0 {
		q += " LIMIT " + strconv.Itoa(limit)
	}
	return q
}

// Chains selects the names of the chains with rows in the audit table or
// checkpoints in the checkpoint table, sorted.
func Chains(auditTable, checkpointTable string) string {
	return fmt.Sprintf("SELECT chain FROM (SELECT DISTINCT chain FROM %s UNION ALL SELECT DISTINCT chain FROM %s) GROUP BY chain ORDER BY chain",
		auditTable, checkpointTable)
}

// Stmt is a statement whose string values are bound, not written into
// it: SQL has a ? for each of Args, in order, and no ? anywhere else (a
// literal from Quote escapes every ?). The ClickHouse server backend
// passes Args to clickhouse-go, which binds ? on every server version;
// chDB's binds them as server-side query parameters (chdb_query_with_params).
type Stmt struct {
	SQL  string
	Args []string
}

// where builds the WHERE clause of q's filters (empty when q has none),
// binding every string value.
func (s *Stmt) where(modern bool, q audit.Query) string {
	var conds []string
	bind := func(v string) string {
		s.Args = append(s.Args, v)
		return "?"
	}
	eq := func(col, v string) {
		if v != "" {
			conds = append(conds, col+" = "+bind(v))
		}
	}
	eq("user_id", q.UserID)
	eq("token_id", q.TokenID)
	eq("command_id", q.CommandID)
	eq("rule_id", q.RuleID)
	eq("chain", q.Chain)
	if len(q.Steps) > 0 {
		steps := make([]string, len(q.Steps))
		for i, st := range q.Steps {
			steps[i] = bind(string(st))
		}
		conds = append(conds, "step IN ("+strings.Join(steps, ", ")+")")
	}
	if q.Search != "" {
		// LIKE with a constant prefix is a range of the primary index on
		// user_id (every version since 18.16 reads it so); the other ids
		// are read and compared in the time range.
		pattern := LikePrefix(q.Search)
		var ors []string
		for _, f := range q.SearchColumns() {
			ors = append(ors, string(f)+" LIKE "+bind(pattern))
		}
		if len(ors) == 1 {
			conds = append(conds, ors[0])
		} else {
			conds = append(conds, "("+strings.Join(ors, " OR ")+")")
		}
	}
	if !q.From.IsZero() {
		conds = append(conds, "time >= "+timeBound(modern, q.From))
	}
	if !q.To.IsZero() {
		conds = append(conds, "time < "+timeBound(modern, q.To))
	}
	if len(conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(conds, " AND ")
}

// LikePrefix returns the LIKE pattern of the values that start with
// prefix: its %, _ and backslashes escaped, then %.
func LikePrefix(prefix string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(prefix) + "%"
}

// History selects the rows matching q, one per row_id, newest first. The
// tie-breakers after time make the order, and so the pages, deterministic.
// modern is schemas.ServerVersion.Modern of the server: it selects how the
// time bounds are written (see timeBound).
//
// A page of every user's rows (q.Limit set, q.UserID not) reads rows from
// the time of the offset+limit-th newest matching row on, which a first
// pass over the time column finds: the table is ordered by user, so without it
// every granule of the range would be read whole, every column, for the
// few rows of the page (on 10,000,000 rows, chDB: the newest 26 rows of an
// hour in about a sixth of the time). Copies of a row_id not merged yet
// count in that pass and once in the page, so a page can come out short:
// then, and only then, fallback is the same statement without the bound,
// to run instead. It is nil when the bound does not apply.
func History(table string, modern bool, q audit.Query) (st Stmt, fallback *Stmt) {
	plain := history(table, modern, q, false)
	if q.Limit <= 0 || q.UserID != "" {
		return plain, nil
	}
	return history(table, modern, q, true), &plain
}

func history(table string, modern bool, q audit.Query, bounded bool) Stmt {
	var st Stmt
	var b strings.Builder
	fmt.Fprintf(&b, "SELECT %s FROM %s", Columns(), table)
	where := st.where(modern, q)
	b.WriteString(where)
	if bounded {
		if where == "" {
			b.WriteString(" WHERE ")
		} else {
			b.WriteString(" AND ")
		}
		// The scalar subquery runs first; its result is a constant of the
		// column's own type.
		fmt.Fprintf(&b, "time >= (SELECT min(t) FROM (SELECT time AS t FROM %s%s ORDER BY time DESC LIMIT %d))",
			table, st.where(modern, q), q.Offset+q.Limit)
	}
	b.WriteString(" ORDER BY time DESC, chain, seq DESC, row_id, hash LIMIT 1 BY row_id")
	switch {
	case q.Limit > 0:
		// 18.16 knows LIMIT offset, count but not OFFSET.
		fmt.Fprintf(&b, " LIMIT %d, %d", q.Offset, q.Limit)
	case q.Offset > 0:
		fmt.Fprintf(&b, " LIMIT %d, %d", q.Offset, uint64(1)<<62)
	}
	st.SQL = b.String()
	return st
}

// Latest selects the newest time, in whole seconds since the epoch (a
// UInt32, 0 when no row matches), among the rows matching q. It reads
// the time column and the filtered ones only; duplicates of a row_id
// share their time, so nothing is deduplicated.
func Latest(table string, modern bool, q audit.Query) Stmt {
	var st Stmt
	st.SQL = fmt.Sprintf("SELECT toUInt32(max(time)) AS latest FROM %s%s", table, st.where(modern, q))
	return st
}

// timeBound writes a time bound, truncated to whole seconds, as a constant
// of the time column's own type. Not a DateTime constant for every
// version: ClickHouse 26.7 compares a DateTime64 column with a DateTime
// constant wrongly when it prunes parts by their time range (with rows
// at 23.5s in a part of their own, "time < toDateTime(24s)" skips that
// part and the rows go missing), and not a string literal: 18.16 parses
// one in the server's time zone, not the column's.
func timeBound(modern bool, t time.Time) string {
	secs := t.Truncate(time.Second).Unix()
	if modern {
		return fmt.Sprintf("toDateTime64(%d, 3, 'UTC')", secs)
	}
	return fmt.Sprintf("toDateTime(%d, 'UTC')", secs)
}

// StatsBucket is the SQL expression of the start of a row's Stats bucket,
// in Unix seconds (a UInt64): the row's time at whole seconds rounded
// down to a multiple of the bucket, as audit.StatsQuery.BucketStart.
// toUInt32 reads a DateTime (18.16) and a DateTime64 (modern) alike as
// whole seconds since the epoch.
func StatsBucket(bucket time.Duration) string {
	s := int64(bucket / time.Second)
	return fmt.Sprintf("toUInt64(intDiv(toUInt32(time), %d) * %d)", s, s)
}

// statsRows is the subquery every Stats statement reads: the terminal rows
// of q's range (and user and rule, when set), one per row_id. Filters run
// before LIMIT 1 BY, so the primary key (user_id, time) and the monthly
// partitions prune what is read. Among copies of a row_id that differ
// (the same step recorded by two writers), the one kept is the newest at
// whole seconds, then the first by chain, seq descending and hash: the
// copy audit.ComputeStats counts too.
func statsRows(table string, modern bool, q audit.StatsQuery) string {
	q = q.Normalized()
	where := []string{
		"time >= " + timeBound(modern, q.From),
		"time < " + timeBound(modern, q.To),
	}
	if q.UserID != "" {
		where = append(where, "user_id = "+Quote(q.UserID))
	}
	if q.RuleID != "" {
		where = append(where, "rule_id = "+Quote(q.RuleID))
	}
	terminal := audit.TerminalSteps()
	steps := make([]string, len(terminal))
	for i, s := range terminal {
		steps[i] = Quote(string(s))
	}
	where = append(where, "step IN ("+strings.Join(steps, ", ")+")")
	return fmt.Sprintf("SELECT row_id, time, rule_id, step, detect_latency_ms, revoke_latency_ms FROM %s WHERE %s ORDER BY toUInt32(time) DESC, chain, seq DESC, hash LIMIT 1 BY row_id",
		table, strings.Join(where, " AND "))
}

// Kinds of the rows Stats returns.
const (
	// StatsOutcome: a count of Stats.Outcomes (bucket, rule_id, step, n).
	StatsOutcome uint8 = 0
	// StatsLatency: a point of Stats.Latency (bucket, n, r_q, r_max).
	StatsLatency uint8 = 1
	// StatsRange: the whole range's latencies (n, r_q, r_max for
	// revocation; d_q, d_max for detection).
	StatsRange uint8 = 2
)

// Stats selects everything audit.Stats holds in one statement, so the
// rows are read and deduplicated once: each terminal row counts towards
// its outcome, and a revoked row with a positive latency also towards its
// bucket's latency and the range's, by way of an ARRAY JOIN over the kinds
// it belongs to. The columns are kind (UInt8, StatsOutcome, StatsLatency,
// StatsRange), bucket (UInt64 Unix seconds; 0 for the range), rule_id and
// step (empty but for outcomes), n (UInt64), r_q and d_q (Array(Int64),
// the revocation and detection latency at audit.PercentileLevels: ClickHouse's
// quantileExact picks the value at index floor(level*n) of the sorted
// values on 18.16 and 26.7 alike, as audit.PercentilesOf does) and r_max
// and d_max (Int64). Latency columns of outcome rows are meaningless.
// There are no rows when nothing matches.
func Stats(table string, modern bool, q audit.StatsQuery) string {
	q = q.Normalized()
	levels := make([]string, len(audit.PercentileLevels))
	for i, l := range audit.PercentileLevels {
		levels[i] = strconv.FormatFloat(l, 'g', -1, 64)
	}
	quantiles := func(col string) string {
		return fmt.Sprintf("arrayMap(x -> toInt64(x), quantilesExact(%s)(%s))", strings.Join(levels, ", "), col)
	}
	return fmt.Sprintf("SELECT k AS kind, if(k = %[1]d, toUInt64(0), %[2]s) AS b, if(k = %[3]d, rule_id, '') AS r, if(k = %[3]d, step, '') AS s, "+
		"toUInt64(count()) AS n, %[4]s AS r_q, toInt64(max(revoke_latency_ms)) AS r_max, %[5]s AS d_q, toInt64(max(detect_latency_ms)) AS d_max "+
		"FROM (%[6]s) ARRAY JOIN if(step IN ('revoked', 'confirmed', 'unconfirmed') AND revoke_latency_ms > 0, [%[3]d, %[7]d, %[1]d], [%[3]d]) AS k "+
		"GROUP BY kind, b, r, s ORDER BY kind, b, r, s",
		StatsRange, StatsBucket(q.Bucket), StatsOutcome, quantiles("revoke_latency_ms"), quantiles("detect_latency_ms"),
		statsRows(table, modern, q), StatsLatency)
}

// AddStats adds one row of the Stats statement to st: an outcome count,
// a bucket's latency or the range's.
func AddStats(st *audit.Stats, kind uint8, bucket uint64, rule, step string, n uint64, rq []int64, rmax int64, dq []int64, dmax int64) {
	start := time.Unix(int64(bucket), 0).UTC()
	switch kind {
	case StatsOutcome:
		st.Outcomes = append(st.Outcomes, audit.OutcomePoint{Start: start, RuleID: rule, Outcome: schemas.Step(step), Count: n})
	case StatsLatency:
		st.Latency = append(st.Latency, audit.LatencyPoint{Start: start, Percentiles: PercentilesOf(n, rq, rmax)})
	case StatsRange:
		st.RevokeLatency, st.DetectLatency = PercentilesOf(n, rq, rmax), PercentilesOf(n, dq, dmax)
	}
}

// PercentilesOf turns a row of count, quantiles and max into
// audit.Percentiles (all zero when n is).
func PercentilesOf(n uint64, q []int64, hi int64) audit.Percentiles {
	if n == 0 {
		return audit.Percentiles{}
	}
	p := audit.Percentiles{Count: n, Max: hi}
	for i, dst := range []*int64{&p.P50, &p.P90, &p.P99} {
		if i < len(q) {
			*dst = q[i]
		}
	}
	return p
}
