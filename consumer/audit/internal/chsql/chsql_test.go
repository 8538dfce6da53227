package chsql

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/schemas"
)

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"":              `''`,
		"user-1@x.com":  `'user-1@x.com'`,
		"it's":          `'it\x27s'`,
		`a\b`:           `'a\x5Cb'`,
		"?{p:String}":   `'\x3F\x7Bp:String\x7D'`,
		"é":             `'\xC3\xA9'`,
		"\x00\n":        `'\x00\x0A'`,
		"'; DROP x; --": `'\x27\x3B DROP x\x3B --'`,
	} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
}

// FuzzQuote: the literal holds only safe bytes and \xHH escapes, and
// decodes back to the input.
func FuzzQuote(f *testing.F) {
	for _, s := range []string{"", "it's a \\ test ? {x:String}", "\x00\xff", "é🚀"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q := Quote(s)
		if len(q) < 2 || q[0] != '\'' || q[len(q)-1] != '\'' {
			t.Fatalf("not a literal: %s", q)
		}
		inner := q[1 : len(q)-1]
		var back []byte
		for i := 0; i < len(inner); i++ {
			c := inner[i]
			if safe(c) {
				back = append(back, c)
				continue
			}
			if c != '\\' || i+3 >= len(inner) || inner[i+1] != 'x' {
				t.Fatalf("byte %q at %d is neither safe nor an escape: %s", c, i, q)
			}
			n, err := strconv.ParseUint(inner[i+2:i+4], 16, 8)
			if err != nil {
				t.Fatalf("bad escape at %d: %s", i, q)
			}
			back = append(back, byte(n))
			i += 3
		}
		if string(back) != s {
			t.Fatalf("Quote(%q) = %s decodes to %q", s, q, back)
		}
	})
}

func TestHistorySQL(t *testing.T) {
	q := audit.Query{
		UserID: "u'1", Steps: []schemas.Step{schemas.StepRevoked, schemas.StepFailed},
		From: time.Unix(1700000000, 500_000_000), To: time.Unix(1700000100, 0), Limit: 10, Offset: 20,
	}
	legacy, fallback := History("`d`.`t`", false, q)
	if fallback != nil {
		t.Error("one user's history has a fallback")
	}
	for _, want := range []string{
		`user_id = ? AND step IN (?, ?)`,
		`time >= toDateTime(1700000000, 'UTC') AND time < toDateTime(1700000100, 'UTC')`,
		`LIMIT 1 BY row_id LIMIT 20, 10`,
	} {
		if !strings.Contains(legacy.SQL, want) {
			t.Errorf("legacy query lacks %q:\n%s", want, legacy.SQL)
		}
	}
	if want := []string{"u'1", "revoked", "failed"}; !reflect.DeepEqual(legacy.Args, want) {
		t.Errorf("args %q, want %q", legacy.Args, want)
	}
	modern, _ := History("`d`.`t`", true, q)
	if !strings.Contains(modern.SQL, `time >= toDateTime64(1700000000, 3, 'UTC')`) {
		t.Errorf("modern query:\n%s", modern.SQL)
	}
	if strings.ReplaceAll(modern.SQL, "toDateTime64(", "") == modern.SQL {
		t.Error("modern bounds are not DateTime64")
	}
	if all, fallback := History("t", true, audit.Query{Offset: 5}); !strings.HasSuffix(all.SQL, "LIMIT 5, 4611686018427387904") || strings.Contains(all.SQL, "WHERE") || len(all.Args) != 0 || fallback != nil {
		t.Errorf("offset without limit: %+v", all)
	}
	// A page of every user's rows: bounded below by the time of the
	// offset+limit-th newest row, with the statement without the bound to
	// fall back on.
	page := audit.Query{RuleID: "r", Limit: 26, Offset: 4}
	bounded, fallback := History("t", true, page)
	want := "SELECT " + Columns() + " FROM t WHERE rule_id = ? AND time >= (SELECT min(t) FROM (SELECT time AS t FROM t WHERE rule_id = ? ORDER BY time DESC LIMIT 30)) ORDER BY time DESC, chain, seq DESC, row_id, hash LIMIT 1 BY row_id LIMIT 4, 26"
	if bounded.SQL != want || !reflect.DeepEqual(bounded.Args, []string{"r", "r"}) {
		t.Errorf("bounded page:\n%s %q\nwant\n%s [r r]", bounded.SQL, bounded.Args, want)
	}
	wantPlain := "SELECT " + Columns() + " FROM t WHERE rule_id = ? ORDER BY time DESC, chain, seq DESC, row_id, hash LIMIT 1 BY row_id LIMIT 4, 26"
	if fallback == nil || fallback.SQL != wantPlain || !reflect.DeepEqual(fallback.Args, []string{"r"}) {
		t.Errorf("fallback: %+v, want %s [r]", fallback, wantPlain)
	}
	if b, _ := History("t", true, audit.Query{Limit: 1}); !strings.Contains(b.SQL, "FROM t WHERE time >= (SELECT min(t) FROM (SELECT time AS t FROM t ORDER BY time DESC LIMIT 1)) ORDER BY") {
		t.Errorf("bounded page without filters:\n%s", b.SQL)
	}
}

// A search is one bound LIKE prefix per column; with user_id alone it is
// the primary key's range.
func TestSearchSQL(t *testing.T) {
	all, _ := History("t", true, audit.Query{Search: "cmd_7%'?", RuleID: "r"})
	want := "WHERE rule_id = ? AND (user_id LIKE ? OR token_id LIKE ? OR session_id LIKE ? OR client_id LIKE ? OR command_id LIKE ?) ORDER BY"
	if !strings.Contains(all.SQL, want) {
		t.Errorf("search query lacks %q:\n%s", want, all.SQL)
	}
	pattern := `cmd\_7\%'?%`
	if wantArgs := []string{"r", pattern, pattern, pattern, pattern, pattern}; !reflect.DeepEqual(all.Args, wantArgs) {
		t.Errorf("args %q, want %q", all.Args, wantArgs)
	}
	if strings.Count(all.SQL, "?") != len(all.Args) {
		t.Errorf("%d placeholders for %d args:\n%s", strings.Count(all.SQL, "?"), len(all.Args), all.SQL)
	}
	user, _ := History("t", false, audit.Query{Search: "ali", SearchIn: []audit.SearchField{audit.SearchUser}})
	if !strings.Contains(user.SQL, "WHERE user_id LIKE ? ORDER BY") || !reflect.DeepEqual(user.Args, []string{"ali%"}) {
		t.Errorf("user search: %+v", user)
	}
	for in, want := range map[string]string{"": "%", "a_b": `a\_b%`, `50%\`: `50\%\\%`, "é": "é%"} {
		if got := LikePrefix(in); got != want {
			t.Errorf("LikePrefix(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLatestSQL(t *testing.T) {
	st := Latest("`d`.`t`", false, audit.Query{UserID: "u", From: time.Unix(1700000000, 0), Limit: 3, Offset: 9})
	want := "SELECT toUInt32(max(time)) AS latest FROM `d`.`t` WHERE user_id = ? AND time >= toDateTime(1700000000, 'UTC')"
	if st.SQL != want || !reflect.DeepEqual(st.Args, []string{"u"}) {
		t.Errorf("Latest = %+v, want %s with [u]", st, want)
	}
}

// A row goes into the table's values and comes back as it was: zero times
// and nil evidence included.
func TestStoredRowRoundTrip(t *testing.T) {
	paris := time.FixedZone("CET", 3600)
	in := schemas.AuditRow{
		RowID: "r1", Time: time.Date(2026, 3, 1, 11, 0, 0, 0, paris), DetectedAt: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC),
		IncludeDownscoped: true,
	}
	stored := StoredRow(in)
	epoch := time.Unix(0, 0).UTC()
	if !stored.FirstEventTime.Equal(epoch) || !stored.ExpiresAt.Equal(epoch) || stored.Evidence == nil || len(stored.Evidence) != 0 {
		t.Errorf("stored %+v", stored)
	}
	if stored.Time.Location() != time.UTC || !stored.Time.Equal(in.Time) {
		t.Errorf("stored time %v", stored.Time)
	}
	if in.Evidence != nil || !in.FirstEventTime.IsZero() {
		t.Error("StoredRow changed its argument")
	}
	LoadRow(&stored)
	if !stored.FirstEventTime.IsZero() || !stored.LastEventTime.IsZero() || !stored.IssuedAt.IsZero() || !stored.ExpiresAt.IsZero() || stored.Evidence != nil {
		t.Errorf("loaded %+v", stored)
	}
	if !stored.Time.Equal(in.Time) || !stored.DetectedAt.Equal(in.DetectedAt) {
		t.Errorf("loaded times %v %v", stored.Time, stored.DetectedAt)
	}
	if Bool(true) != 1 || Bool(false) != 0 {
		t.Error("Bool")
	}
}

func TestCheckpointStatements(t *testing.T) {
	tbl := Table("db", "audit_checkpoints")
	if got, want := CheckpointInsert(tbl), "INSERT INTO `db`.`audit_checkpoints` (chain, seq, hash, time, key_id, signature)"; got != want {
		t.Errorf("CheckpointInsert = %s, want %s", got, want)
	}
	q := Checkpoints(tbl, "it's", 7, 3)
	for _, want := range []string{"WHERE chain = 'it\\x27s' AND seq > 7", "ORDER BY seq", "LIMIT 1 BY seq, hash, time, key_id, signature", " LIMIT 3"} {
		if !strings.Contains(q, want) {
			t.Errorf("Checkpoints query %q lacks %q", q, want)
		}
	}
	if strings.Contains(Checkpoints(tbl, "c", 0, 0), " LIMIT 0") {
		t.Error("Checkpoints with no limit has a LIMIT")
	}
	c := Chains(Table("db", "audit"), tbl)
	for _, want := range []string{"FROM `db`.`audit`", "UNION ALL", "FROM `db`.`audit_checkpoints`", "GROUP BY chain ORDER BY chain"} {
		if !strings.Contains(c, want) {
			t.Errorf("Chains query %q lacks %q", c, want)
		}
	}
}

func TestStatsSQL(t *testing.T) {
	q := audit.StatsQuery{UserID: "u'1", RuleID: "r", From: time.Unix(1700000000, 700_000_000), To: time.Unix(1700086400, 0), Bucket: 15 * time.Minute}
	legacy := Stats("`d`.`t`", false, q)
	inner := legacy[strings.Index(legacy, "FROM (")+len("FROM ("):]
	for _, want := range []string{
		// Filters run inside, before LIMIT 1 BY: the primary key and the
		// partitions prune.
		`WHERE time >= toDateTime(1700000000, 'UTC') AND time < toDateTime(1700086400, 'UTC') AND user_id = 'u\x271' AND rule_id = 'r' AND step IN ('rejected', 'held', 'dry_run', 'revoked', 'confirmed', 'unconfirmed', 'not_effective', 'dead_lettered', 'notified') ORDER BY toUInt32(time) DESC, chain, seq DESC, hash LIMIT 1 BY row_id)`,
		`toUInt64(intDiv(toUInt32(time), 900) * 900)`,
		`quantilesExact(0.5, 0.9, 0.99)(revoke_latency_ms)`,
		`ARRAY JOIN if(step IN ('revoked', 'confirmed', 'unconfirmed') AND revoke_latency_ms > 0, [0, 1, 2], [0]) AS k`,
	} {
		if !strings.Contains(legacy, want) {
			t.Errorf("stats query lacks %q:\n%s", want, legacy)
		}
	}
	if !strings.Contains(inner, "user_id = ") {
		t.Errorf("the user filter is not in the inner query:\n%s", legacy)
	}
	if modern := Stats("t", true, q); !strings.Contains(modern, "time >= toDateTime64(1700000000, 3, 'UTC')") {
		t.Errorf("modern stats query:\n%s", modern)
	}

	var st audit.Stats
	AddStats(&st, StatsOutcome, 1700000000, "r", "revoked", 3, nil, 0, nil, 0)
	AddStats(&st, StatsLatency, 1700000000, "", "", 2, []int64{5, 9, 9}, 9, []int64{1, 2, 2}, 2)
	AddStats(&st, StatsRange, 0, "", "", 2, []int64{5, 9, 9}, 9, []int64{1, 2, 2}, 2)
	want := audit.Stats{
		Outcomes:      []audit.OutcomePoint{{Start: time.Unix(1700000000, 0).UTC(), RuleID: "r", Outcome: schemas.StepRevoked, Count: 3}},
		Latency:       []audit.LatencyPoint{{Start: time.Unix(1700000000, 0).UTC(), Percentiles: audit.Percentiles{Count: 2, P50: 5, P90: 9, P99: 9, Max: 9}}},
		RevokeLatency: audit.Percentiles{Count: 2, P50: 5, P90: 9, P99: 9, Max: 9},
		DetectLatency: audit.Percentiles{Count: 2, P50: 1, P90: 2, P99: 2, Max: 2},
	}
	if !reflect.DeepEqual(st, want) {
		t.Errorf("AddStats: %+v, want %+v", st, want)
	}
	if p := PercentilesOf(0, []int64{1, 2, 3}, 4); p != (audit.Percentiles{}) {
		t.Errorf("PercentilesOf with no rows = %+v", p)
	}
}
