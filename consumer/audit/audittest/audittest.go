// Package audittest is the contract every audit.Store passes: Run from a
// backend's tests with a function that opens a fresh, empty store.
package audittest

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/internal/testenv"
	"github.com/revoked-dev/revoked/schemas"
)

// Open returns a store over a fresh, empty table that no other test uses,
// and registers its cleanup (Close, dropping the table) with tb. The suite
// runs Migrate itself.
type Open func(tb testing.TB) audit.Store

// Run runs the contract suite. Subtests run one after another (chDB allows
// one data directory per process), each on a store of its own.
func Run(t *testing.T, open Open) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s audit.Store)
	}{
		{"MigrateTwice", testMigrateTwice},
		{"RoundTrip", testRoundTrip},
		{"EvidenceContextRoundTrip", testEvidenceContextRoundTrip},
		{"AppendTwiceKeepsOneCopy", testAppendTwice},
		{"CommandRowsOrder", testCommandRowsOrder},
		{"ChainHead", testChainHead},
		{"HistoryFilters", testHistoryFilters},
		{"HistorySearch", testHistorySearch},
		{"Latest", testLatest},
		{"Stats", testStats},
		{"InvalidRowsStoreNothing", testInvalidRows},
		{"NoRawTokens", testNoRawTokens},
		{"WriterConcurrentChain", testWriterConcurrent},
		{"WriterFailedBatchDoesNotAdvance", testWriterFailedBatch},
		{"WriterRestartContinuesChain", testWriterRestart},
		{"VerifyDetectsTampering", testVerifyDetectsTampering},
		{"Checkpoints", testCheckpoints},
		{"Chains", testChains},
		{"WriterCheckpoints", testWriterCheckpoints},
		{"CanceledContext", testCanceledContext},
		{"Closed", testClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			if err := s.Migrate(ctx(t)); err != nil {
				t.Fatalf("Migrate: %v", err)
			}
			tc.fn(t, s)
		})
	}
}

func ctx(tb testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	tb.Cleanup(cancel)
	return c
}

// base is a time in the past with a millisecond part, in the current
// partition range of every backend.
var base = time.Date(2025, time.March, 14, 9, 26, 53, 589_000_000, time.UTC)

// Row returns a deterministic, fully populated row numbered i, with
// strings that would break naive quoting. Its chain fields are unset.
func Row(i int) schemas.AuditRow {
	cmd := fmt.Sprintf("cmd-%04d", i/3)
	step := schemas.Steps[i%len(schemas.Steps)]
	r := schemas.AuditRow{
		Time:              base.Add(time.Duration(i) * time.Second),
		CommandID:         cmd,
		Step:              step,
		Detail:            fmt.Sprintf("it's a \"detail\" \\ with\ttabs\nnewlines, ? and {x:String} %d", i),
		Issuer:            "detector",
		Actor:             "consumer-1",
		Approver:          "alice@example.com",
		TargetKind:        schemas.TargetUser,
		UserID:            fmt.Sprintf("user-%d", i%5),
		TokenID:           schemas.Fingerprint(fmt.Sprintf("token-%d", i)),
		SessionID:         fmt.Sprintf("sess-%d", i),
		ClientID:          "client-α",
		IncludeDownscoped: i%2 == 0,
		Action:            schemas.ActionRevoke,
		Mode:              schemas.ModeEnforce,
		RuleID:            fmt.Sprintf("rule-%d", i%3),
		RuleVersion:       uint32(i%4 + 1),
		Severity:          schemas.SeverityHigh,
		Summary:           "impossible travel: Zürich → 東京 🚀",
		Evidence:          []string{fmt.Sprintf("ev-%d-a", i), "ev-'b'", ""},
		FirstEventTime:    base.Add(-time.Minute),
		LastEventTime:     base.Add(-45 * time.Second),
		DetectedAt:        base.Add(-30 * time.Second),
		IssuedAt:          base.Add(-29 * time.Second),
		ExpiresAt:         base.Add(time.Hour),
		IdPStatus:         200,
		IdPResponse:       `{"error":"invalid_token"}`,
		TokensRevoked:     uint32(i),
		Proof:             "introspection: active=false",
		Attempts:          2,
		DetectLatencyMs:   1234,
		RevokeLatencyMs:   -5,
		SourceTopic:       schemas.TopicRevokeCommands,
		SourcePartition:   int32(i % 7),
		SourceOffset:      int64(1)<<40 + int64(i),
	}
	r.EvidenceContext = schemas.EncodeEventContexts([]schemas.EventContext{
		{EventID: fmt.Sprintf("ev-%d-a", i), IP: fmt.Sprintf("2001:db8::%x", i), Country: "CH", ASN: 559,
			ASOrg: `SWITCH "Peering" \ Zürich`, Network: schemas.NetworkBusiness},
		{EventID: "ev-'b'", IP: "192.0.2.7"},
	})
	r.RowID = schemas.AuditRowID(r.CommandID, r.Step, r.SourceTopic, r.SourcePartition, r.SourceOffset)
	return r
}

// Link assigns chain, Seq, PrevHash and Hash to rows in order, continuing
// after (seq, prev), as the Writer does (without its Normalize).
func Link(chain string, seq uint64, prev string, rows []schemas.AuditRow) []schemas.AuditRow {
	out := make([]schemas.AuditRow, len(rows))
	for i, r := range rows {
		seq++
		r.Chain, r.Seq, r.PrevHash = chain, seq, prev
		r.Hash = r.ComputeHash()
		prev = r.Hash
		out[i] = r
	}
	return out
}

func rowsN(from, n int) []schemas.AuditRow {
	out := make([]schemas.AuditRow, n)
	for i := range out {
		out[i] = Row(from + i)
	}
	return out
}

func testMigrateTwice(t *testing.T, s audit.Store) {
	c := ctx(t)
	if err := s.Migrate(c); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	if err := s.Ping(c); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	rows := Link("c", 0, "", rowsN(0, 1))
	if err := s.Append(c, rows); err != nil {
		t.Fatalf("Append: %v", err)
	}
	if err := s.Migrate(c); err != nil {
		t.Fatalf("Migrate over data: %v", err)
	}
	got, err := s.CommandRows(c, rows[0].CommandID)
	if err != nil || len(got) != 1 {
		t.Fatalf("after Migrate over data: %d rows, %v; want 1", len(got), err)
	}
}

// precision learns the backend's time precision from the first row read
// back and checks every timestamp against it.
type precision struct{ d time.Duration }

func (p *precision) check(t *testing.T, field string, got, want time.Time) {
	t.Helper()
	if want.IsZero() {
		if !got.IsZero() {
			t.Errorf("%s: got %v, want the zero time", field, got)
		}
		return
	}
	if p.d == 0 {
		for _, d := range []time.Duration{time.Millisecond, time.Second} {
			if got.Equal(want.Truncate(d)) {
				p.d = d
				break
			}
		}
		if p.d == 0 {
			t.Fatalf("%s: got %v, want %v at millisecond or second precision", field, got, want)
		}
	}
	if w := want.Truncate(p.d); !got.Equal(w) {
		t.Errorf("%s: got %v, want %v (precision %s)", field, got, w, p.d)
	}
	if got.Location() != time.UTC {
		t.Errorf("%s: location %v, want UTC", field, got.Location())
	}
}

// sameRow compares everything but timestamps exactly, and timestamps at
// the backend's precision.
func sameRow(t *testing.T, p *precision, got, want schemas.AuditRow) {
	t.Helper()
	p.check(t, "time", got.Time, want.Time)
	p.check(t, "first_event_time", got.FirstEventTime, want.FirstEventTime)
	p.check(t, "last_event_time", got.LastEventTime, want.LastEventTime)
	p.check(t, "detected_at", got.DetectedAt, want.DetectedAt)
	p.check(t, "issued_at", got.IssuedAt, want.IssuedAt)
	p.check(t, "expires_at", got.ExpiresAt, want.ExpiresAt)
	g, w := got, want
	for _, r := range []*schemas.AuditRow{&g, &w} {
		r.Time, r.FirstEventTime, r.LastEventTime, r.DetectedAt, r.IssuedAt, r.ExpiresAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}, time.Time{}, time.Time{}
	}
	if len(w.Evidence) == 0 {
		w.Evidence = nil
	}
	if len(g.Evidence) == 0 {
		g.Evidence = nil
	}
	if len(w.EvidenceContext) == 0 {
		w.EvidenceContext = nil
	}
	if len(g.EvidenceContext) == 0 {
		g.EvidenceContext = nil
	}
	if !reflect.DeepEqual(g, w) {
		gv, wv := reflect.ValueOf(g), reflect.ValueOf(w)
		for i := range gv.NumField() {
			if !reflect.DeepEqual(gv.Field(i).Interface(), wv.Field(i).Interface()) {
				t.Errorf("row %s: %s: got %#v, want %#v", want.RowID, gv.Type().Field(i).Name, gv.Field(i).Interface(), wv.Field(i).Interface())
			}
		}
	}
	if h := got.ComputeHash(); h != want.Hash {
		t.Errorf("row %s: hash after the round trip %s, want %s", want.RowID, h, want.Hash)
	}
}

func testRoundTrip(t *testing.T, s audit.Store) {
	c := ctx(t)
	in := rowsN(0, 3)
	for i := range in {
		in[i].CommandID = "cmd-roundtrip"
		in[i].RowID = schemas.AuditRowID(in[i].CommandID, in[i].Step, "t", 0, int64(i))
	}
	// Edge values: an injection attempt, NUL and control bytes, extremes.
	in[1].Detail = "'); DROP TABLE audit; -- \x00 \x01 \x7f \\' \\\\ `backtick` $1 @p {p:String}"
	in[1].Evidence = nil
	in[1].IncludeDownscoped = true
	in[1].RuleVersion = 1<<32 - 1
	in[1].IdPStatus = 1<<16 - 1
	in[1].TokensRevoked = 1<<32 - 1
	in[1].Attempts = 0
	in[1].DetectLatencyMs = -1 << 63
	in[1].RevokeLatencyMs = 1<<63 - 1
	in[1].SourcePartition = -1 << 31
	in[1].SourceOffset = -1
	in[1].Approver, in[1].Summary, in[1].Proof, in[1].IdPResponse = "", "", "", ""
	in[2].FirstEventTime, in[2].LastEventTime, in[2].DetectedAt, in[2].IssuedAt, in[2].ExpiresAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}, time.Time{}
	in[2].Time = time.Date(2105, time.December, 31, 23, 59, 58, 500_000_000, time.UTC)
	in[2].Evidence = []string{strings.Repeat("x", 10_000)}
	rows := Link("chain-roundtrip/α", 0, "", in)
	if err := s.Append(c, rows); err != nil {
		t.Fatalf("Append: %v", err)
	}

	got, err := s.CommandRows(c, "cmd-roundtrip")
	if err != nil {
		t.Fatalf("CommandRows: %v", err)
	}
	if len(got) != len(rows) {
		t.Fatalf("CommandRows: %d rows, want %d", len(got), len(rows))
	}
	p := &precision{}
	for i := range rows {
		sameRow(t, p, got[i], rows[i])
	}
	if err := audit.VerifyChain(got); err != nil {
		t.Errorf("VerifyChain after the round trip: %v", err)
	}
	t.Logf("time precision: %s", p.d)
	if got := s.TimePrecision(); got != p.d {
		t.Errorf("TimePrecision() = %s, but times come back at %s", got, p.d)
	}

	chain, err := s.ChainRows(c, "chain-roundtrip/α", 0, 0)
	if err != nil || len(chain) != len(rows) {
		t.Fatalf("ChainRows: %d rows, %v; want %d", len(chain), err, len(rows))
	}
	for i := range rows {
		sameRow(t, p, chain[i], rows[i])
	}
	hist, err := s.History(c, audit.Query{CommandID: "cmd-roundtrip"})
	if err != nil || len(hist) != len(rows) {
		t.Fatalf("History: %d rows, %v; want %d", len(hist), err, len(rows))
	}
	for i := range rows {
		sameRow(t, p, hist[len(rows)-1-i], rows[i])
	}
}

func testAppendTwice(t *testing.T, s audit.Store) {
	c := ctx(t)
	rows := Link("dup", 0, "", rowsN(0, 6))
	if err := s.Append(c, rows); err != nil {
		t.Fatalf("Append: %v", err)
	}
	// The same rows again, alone, shuffled, and twice within one batch.
	if err := s.Append(c, rows); err != nil {
		t.Fatalf("Append again: %v", err)
	}
	again := append(slices.Clone(rows[3:]), rows[:3]...)
	again = append(again, rows[1], rows[1])
	if err := s.Append(c, again); err != nil {
		t.Fatalf("Append shuffled with duplicates: %v", err)
	}

	for _, cmd := range []string{rows[0].CommandID, rows[3].CommandID} {
		got, err := s.CommandRows(c, cmd)
		if err != nil {
			t.Fatalf("CommandRows: %v", err)
		}
		if len(got) != 3 {
			t.Errorf("CommandRows(%s): %d rows, want 3", cmd, len(got))
		}
	}
	hist, err := s.History(c, audit.Query{Chain: "dup"})
	if err != nil {
		t.Fatalf("History: %v", err)
	}
	if len(hist) != len(rows) {
		t.Errorf("History: %d rows, want %d", len(hist), len(rows))
	}
	// Pages of every user's rows, whose first pass (chsql.History) counts
	// the copies not merged yet: every page is whole, in order.
	for limit := 1; limit <= 4; limit++ {
		var paged []string
		for off := 0; off < len(rows)+limit; off += limit {
			got, err := s.History(c, audit.Query{Limit: limit, Offset: off})
			if err != nil {
				t.Fatalf("History page: %v", err)
			}
			if want := min(limit, max(0, len(rows)-off)); len(got) != want {
				t.Errorf("History(limit %d, offset %d): %d rows, want %d", limit, off, len(got), want)
			}
			for _, r := range got {
				paged = append(paged, r.RowID)
			}
		}
		want := make([]string, len(hist))
		for i, r := range hist {
			want[i] = r.RowID
		}
		if !slices.Equal(paged, want) {
			t.Errorf("pages of %d: %v, want %v", limit, short(paged), short(want))
		}
	}
	chain, err := s.ChainRows(c, "dup", 0, 0)
	if err != nil {
		t.Fatalf("ChainRows: %v", err)
	}
	if len(chain) != len(rows) {
		t.Errorf("ChainRows: %d rows, want %d", len(chain), len(rows))
	}
	if err := audit.VerifyChain(chain); err != nil {
		t.Errorf("VerifyChain: %v", err)
	}
	if seq, hash, err := s.ChainHead(c, "dup"); err != nil || seq != 6 || hash != rows[5].Hash {
		t.Errorf("ChainHead: %d %s %v; want 6 %s", seq, hash, err, rows[5].Hash)
	}
}

func testCommandRowsOrder(t *testing.T, s audit.Store) {
	c := ctx(t)
	// One command's steps written by two chains, interleaved with another
	// command's, appended out of order.
	mk := func(cmd string, step schemas.Step, off int64, at time.Duration) schemas.AuditRow {
		r := Row(0)
		r.CommandID, r.Step, r.SourceOffset, r.Time = cmd, step, off, base.Add(at)
		r.RowID = schemas.AuditRowID(cmd, step, r.SourceTopic, r.SourcePartition, off)
		return r
	}
	a := Link("chain-a", 0, "", []schemas.AuditRow{
		mk("cmd-x", schemas.StepReceived, 1, 0),
		mk("cmd-y", schemas.StepReceived, 2, time.Second),
		mk("cmd-x", schemas.StepHeld, 1, 2*time.Second),
	})
	b := Link("chain-b", 0, "", []schemas.AuditRow{
		mk("cmd-x", schemas.StepRevoked, 1, -time.Hour), // earlier time, later chain
		mk("cmd-x", schemas.StepVerified, 1, -time.Hour+time.Second),
	})
	all := []schemas.AuditRow{b[1], a[2], a[0], b[0], a[1]}
	for _, r := range all {
		if err := s.Append(c, []schemas.AuditRow{r}); err != nil {
			t.Fatalf("Append: %v", err)
		}
	}
	got, err := s.CommandRows(c, "cmd-x")
	if err != nil {
		t.Fatalf("CommandRows: %v", err)
	}
	want := []schemas.AuditRow{a[0], a[2], b[0], b[1]}
	if len(got) != len(want) {
		t.Fatalf("CommandRows: %d rows, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].RowID != want[i].RowID {
			t.Errorf("CommandRows[%d] = %s/%d %s, want %s/%d %s", i, got[i].Chain, got[i].Seq, got[i].Step, want[i].Chain, want[i].Seq, want[i].Step)
		}
	}
	none, err := s.CommandRows(c, "no-such-command")
	if err != nil || len(none) != 0 {
		t.Errorf("CommandRows(unknown) = %d rows, %v; want none", len(none), err)
	}
}

func testChainHead(t *testing.T, s audit.Store) {
	c := ctx(t)
	chain := "consumer-1/partition '0'"
	seq, hash, err := s.ChainHead(c, chain)
	if err != nil || seq != 0 || hash != "" {
		t.Fatalf("ChainHead(empty) = %d %q %v; want 0 \"\" nil", seq, hash, err)
	}
	first := Link(chain, 0, "", rowsN(0, 4))
	second := Link(chain, 4, first[3].Hash, rowsN(4, 3))
	other := Link(chain+"x", 0, "", rowsN(10, 9))
	// Append the later rows first: the head is the highest seq, not the
	// last insert.
	for _, batch := range [][]schemas.AuditRow{second, other, first} {
		if err := s.Append(c, batch); err != nil {
			t.Fatalf("Append: %v", err)
		}
	}
	seq, hash, err = s.ChainHead(c, chain)
	if err != nil || seq != 7 || hash != second[2].Hash {
		t.Errorf("ChainHead = %d %s %v; want 7 %s", seq, hash, err, second[2].Hash)
	}
	page, err := s.ChainRows(c, chain, 2, 3)
	if err != nil {
		t.Fatalf("ChainRows: %v", err)
	}
	var seqs []uint64
	for _, r := range page {
		seqs = append(seqs, r.Seq)
	}
	if !slices.Equal(seqs, []uint64{3, 4, 5}) {
		t.Errorf("ChainRows(after 2, limit 3) seqs = %v, want [3 4 5]", seqs)
	}
}

func testHistoryFilters(t *testing.T, s audit.Store) {
	c := ctx(t)
	const n = 60
	// Two chains, so the chain filter has something to exclude.
	rows := append(Link("hist", 0, "", rowsN(0, n/2)), Link("hist-2", 0, "", rowsN(n/2, n/2))...)
	// Two appends, to have two parts: the second part starts at row n/2,
	// whose time has a fraction of a second, so a bound in the same second
	// exercises part pruning by time range (ClickHouse 26.7 prunes such a
	// part wrongly when the bound is a DateTime and the column DateTime64).
	if err := s.Append(c, rows[:n/2]); err != nil {
		t.Fatalf("Append: %v", err)
	}
	if err := s.Append(c, rows[n/2:]); err != nil {
		t.Fatalf("Append: %v", err)
	}
	// Expected results: filter in Go, newest first (rows are a second
	// apart, so time alone orders them).
	expect := func(q audit.Query) []string {
		var ids []string
		for i := n - 1; i >= 0; i-- {
			r := rows[i]
			switch {
			case q.UserID != "" && r.UserID != q.UserID,
				q.TokenID != "" && r.TokenID != q.TokenID,
				q.CommandID != "" && r.CommandID != q.CommandID,
				q.RuleID != "" && r.RuleID != q.RuleID,
				q.Chain != "" && r.Chain != q.Chain,
				len(q.Steps) > 0 && !slices.Contains(q.Steps, r.Step),
				!q.From.IsZero() && r.Time.Before(q.From.Truncate(time.Second)),
				!q.To.IsZero() && !r.Time.Truncate(time.Second).Before(q.To.Truncate(time.Second)):
				continue
			}
			ids = append(ids, r.RowID)
		}
		if q.Offset >= len(ids) {
			return nil
		}
		ids = ids[q.Offset:]
		if q.Limit > 0 && len(ids) > q.Limit {
			ids = ids[:q.Limit]
		}
		return ids
	}
	queries := map[string]audit.Query{
		"all":               {},
		"user":              {UserID: "user-3"},
		"token":             {TokenID: rows[17].TokenID},
		"user and token":    {UserID: rows[17].UserID, TokenID: rows[17].TokenID},
		"token other user":  {UserID: rows[18].UserID, TokenID: rows[17].TokenID},
		"chain":             {Chain: "hist-2"},
		"chain user range":  {Chain: "hist", UserID: "user-4", From: rows[3].Time, To: rows[40].Time},
		"one step":          {Steps: []schemas.Step{schemas.StepDeadLettered}},
		"rule steps range":  {RuleID: "rule-1", Steps: []schemas.Step{schemas.StepRevoked, schemas.StepHeld, schemas.StepRejected}, From: rows[8].Time, To: rows[52].Time},
		"user empty range":  {UserID: "user-3", From: rows[33].Time, To: rows[33].Time},
		"command":           {CommandID: rows[10].CommandID},
		"rule":              {RuleID: "rule-2"},
		"steps":             {Steps: []schemas.Step{schemas.StepRevoked, schemas.StepFailed}},
		"from":              {From: rows[40].Time},
		"to":                {To: rows[10].Time},
		"range":             {From: rows[20].Time, To: rows[30].Time},
		"range sub-second":  {From: rows[20].Time.Add(400 * time.Millisecond), To: rows[30].Time.Add(900 * time.Millisecond)},
		"to in part start":  {To: rows[n/2].Time.Add(time.Second)},
		"from in part end":  {From: rows[n/2-1].Time},
		"limit":             {Limit: 7},
		"limit offset":      {Limit: 7, Offset: 7},
		"offset only":       {Offset: 55},
		"offset past end":   {Offset: 100, Limit: 5},
		"user rule steps":   {UserID: "user-1", RuleID: "rule-0", Steps: []schemas.Step{schemas.StepReceived, schemas.StepHeld, schemas.StepDryRun, schemas.StepVerified}},
		"user range paged":  {UserID: "user-2", From: rows[5].Time, To: rows[55].Time, Limit: 3, Offset: 2},
		"no match":          {UserID: "nobody"},
		"injection attempt": {UserID: "' OR 1=1 --"},
	}
	for name, q := range queries {
		got, err := s.History(c, q)
		if err != nil {
			t.Errorf("%s: History: %v", name, err)
			continue
		}
		ids := make([]string, len(got))
		for i, r := range got {
			ids[i] = r.RowID
		}
		if want := expect(q); !slices.Equal(ids, want) {
			t.Errorf("%s: History returned %d rows %v\nwant %d rows %v", name, len(ids), short(ids), len(want), short(want))
		}
	}
	// Pages cover the whole result without overlap.
	var paged []string
	for off := 0; ; off += 8 {
		got, err := s.History(c, audit.Query{Limit: 8, Offset: off})
		if err != nil {
			t.Fatalf("History page: %v", err)
		}
		if len(got) == 0 {
			break
		}
		for _, r := range got {
			paged = append(paged, r.RowID)
		}
	}
	if want := expect(audit.Query{}); !slices.Equal(paged, want) {
		t.Errorf("paging: %d rows, want %d in order", len(paged), len(want))
	}
	for _, bad := range []audit.Query{{Limit: -1}, {Offset: -1}, {From: base, To: base.Add(-time.Second)}} {
		if _, err := s.History(c, bad); !errors.Is(err, audit.ErrInvalidQuery) {
			t.Errorf("History(%+v) error = %v, want ErrInvalidQuery", bad, err)
		}
	}
}

// searchRows are rows whose ids test prefix search: LIKE's wildcards and
// escape character taken literally, non-ASCII, and every searched column.
func searchRows() []schemas.AuditRow {
	rows := rowsN(0, 30)
	for i, u := range []string{"alice", "alice.chen", "al_ce", "al%x", `a\b`} {
		rows[i].UserID = u
	}
	rows[5].SessionID = "ses_alpha"
	rows[6].ClientID = "alpha-client"
	rows[9].UserID = "ålice"
	rows[10].CommandID = "cmd_al-10"
	return Link("search", 0, "", rows)
}

func testHistorySearch(t *testing.T, s audit.Store) {
	c := ctx(t)
	rows := searchRows()
	if err := s.Append(c, rows); err != nil {
		t.Fatalf("Append: %v", err)
	}
	fields := func(r schemas.AuditRow) map[audit.SearchField]string {
		return map[audit.SearchField]string{
			audit.SearchUser: r.UserID, audit.SearchToken: r.TokenID, audit.SearchSession: r.SessionID,
			audit.SearchClient: r.ClientID, audit.SearchCommand: r.CommandID,
		}
	}
	// Expected results, newest first (rows are a second apart).
	expect := func(q audit.Query) []string {
		in := q.SearchIn
		if len(in) == 0 {
			in = audit.SearchFields
		}
		var ids []string
		for i := len(rows) - 1; i >= 0; i-- {
			r := rows[i]
			match := false
			for _, f := range in {
				match = match || strings.HasPrefix(fields(r)[f], q.Search)
			}
			switch {
			case !match,
				len(q.Steps) > 0 && !slices.Contains(q.Steps, r.Step),
				!q.From.IsZero() && r.Time.Before(q.From.Truncate(time.Second)),
				!q.To.IsZero() && !r.Time.Truncate(time.Second).Before(q.To.Truncate(time.Second)):
				continue
			}
			ids = append(ids, r.RowID)
		}
		if q.Limit > 0 && len(ids) > q.Limit {
			ids = ids[:q.Limit]
		}
		return ids
	}
	user := []audit.SearchField{audit.SearchUser}
	queries := map[string]struct {
		q    audit.Query
		want int
	}{
		"any field":              {audit.Query{Search: "al"}, 5},
		"user only":              {audit.Query{Search: "alice", SearchIn: user}, 2},
		"underscore is literal":  {audit.Query{Search: "al_"}, 1},
		"percent is literal":     {audit.Query{Search: "al%"}, 1},
		"backslash is literal":   {audit.Query{Search: `a\`}, 1},
		"non-ASCII":              {audit.Query{Search: "å"}, 1},
		"session":                {audit.Query{Search: "ses_al", SearchIn: []audit.SearchField{audit.SearchSession}}, 1},
		"session not in user":    {audit.Query{Search: "ses_al", SearchIn: user}, 0},
		"client":                 {audit.Query{Search: "alpha-"}, 1},
		"command":                {audit.Query{Search: "cmd-0002", SearchIn: []audit.SearchField{audit.SearchCommand}}, 3},
		"token fingerprint":      {audit.Query{Search: rows[17].TokenID[:12]}, 1},
		"two fields":             {audit.Query{Search: "al", SearchIn: []audit.SearchField{audit.SearchSession, audit.SearchClient}}, 1},
		"whole id":               {audit.Query{Search: "alice.chen"}, 1},
		"with steps and range":   {audit.Query{Search: "al", Steps: []schemas.Step{schemas.Steps[1], schemas.Steps[6]}, From: rows[1].Time, To: rows[10].Time}, -1},
		"limited":                {audit.Query{Search: "al", Limit: 2}, 2},
		"no match":               {audit.Query{Search: "zz"}, 0},
		"injection attempt":      {audit.Query{Search: "' OR 1=1 --"}, 0},
		"placeholder lookalikes": {audit.Query{Search: "?{p0:String}"}, 0},
		"tab and newline":        {audit.Query{Search: "al\tx\ny"}, 0},
	}
	for name, tc := range queries {
		got, err := s.History(c, tc.q)
		if err != nil {
			t.Errorf("%s: History: %v", name, err)
			continue
		}
		ids := make([]string, len(got))
		for i, r := range got {
			ids[i] = r.RowID
		}
		want := expect(tc.q)
		if tc.want >= 0 && len(want) != tc.want {
			t.Fatalf("%s: the test expects %d rows but its rows give %d", name, tc.want, len(want))
		}
		if !slices.Equal(ids, want) {
			t.Errorf("%s: History returned %d rows %v\nwant %d rows %v", name, len(ids), short(ids), len(want), short(want))
		}
	}
	for name, bad := range map[string]audit.Query{
		"a JWT":            {Search: "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"},
		"an unknown field": {Search: "al", SearchIn: []audit.SearchField{"detail"}},
		"too long":         {Search: strings.Repeat("a", audit.MaxSearchLen+1)},
	} {
		if _, err := s.History(c, bad); !errors.Is(err, audit.ErrInvalidQuery) {
			t.Errorf("%s: History error = %v, want ErrInvalidQuery", name, err)
		}
		if _, err := s.Latest(c, bad); !errors.Is(err, audit.ErrInvalidQuery) {
			t.Errorf("%s: Latest error = %v, want ErrInvalidQuery", name, err)
		}
	}
}

func testLatest(t *testing.T, s audit.Store) {
	c := ctx(t)
	if got, err := s.Latest(c, audit.Query{}); err != nil || !got.IsZero() {
		t.Fatalf("Latest of an empty store = %v, %v; want the zero time", got, err)
	}
	rows := searchRows()
	if err := s.Append(c, rows); err != nil {
		t.Fatalf("Append: %v", err)
	}
	sec := func(i int) time.Time { return rows[i].Time.Truncate(time.Second) }
	for name, tc := range map[string]struct {
		q    audit.Query
		want time.Time
	}{
		"all":                   {audit.Query{}, sec(29)},
		"limit and offset":      {audit.Query{Limit: 1, Offset: 5}, sec(29)},
		"user":                  {audit.Query{UserID: "user-3"}, sec(28)},
		"before":                {audit.Query{To: rows[20].Time}, sec(19)},
		"range":                 {audit.Query{From: rows[3].Time, To: rows[12].Time.Add(time.Second)}, sec(12)},
		"search":                {audit.Query{Search: "alice"}, sec(1)},
		"search in one field":   {audit.Query{Search: "ses_al", SearchIn: []audit.SearchField{audit.SearchSession}}, sec(5)},
		"steps":                 {audit.Query{Steps: []schemas.Step{rows[4].Step}}, sec(4 + (len(rows)-5)/len(schemas.Steps)*len(schemas.Steps))},
		"after the newest":      {audit.Query{From: rows[29].Time.Add(time.Second)}, time.Time{}},
		"no match":              {audit.Query{UserID: "nobody"}, time.Time{}},
		"injection attempt":     {audit.Query{UserID: "' OR 1=1 --"}, time.Time{}},
		"search with no result": {audit.Query{Search: "zz"}, time.Time{}},
	} {
		got, err := s.Latest(c, tc.q)
		if err != nil {
			t.Errorf("%s: Latest: %v", name, err)
			continue
		}
		if !got.Equal(tc.want) || (!got.IsZero() && got.Location() != time.UTC) {
			t.Errorf("%s: Latest = %v, want %v", name, got, tc.want)
		}
	}
}

func short(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id[:min(8, len(id))]
	}
	return out
}

func testInvalidRows(t *testing.T, s audit.Store) {
	c := ctx(t)
	good := Link("inv", 0, "", rowsN(0, 3))
	cases := map[string]func(r *schemas.AuditRow){
		"empty row id":   func(r *schemas.AuditRow) { r.RowID = "" },
		"no chain":       func(r *schemas.AuditRow) { r.Chain = "" },
		"seq zero":       func(r *schemas.AuditRow) { r.Seq = 0 },
		"no hash":        func(r *schemas.AuditRow) { r.Hash = "" },
		"invalid utf-8":  func(r *schemas.AuditRow) { r.Detail = "bad \xff byte" },
		"time before 70": func(r *schemas.AuditRow) { r.IssuedAt = time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC) },
		"zero time":      func(r *schemas.AuditRow) { r.Time = time.Time{} },
	}
	for name, mutate := range cases {
		rows := slices.Clone(good)
		mutate(&rows[1])
		err := s.Append(c, rows)
		var re *audit.RowError
		if !errors.Is(err, audit.ErrInvalidRow) || !errors.As(err, &re) || re.Index != 1 {
			t.Errorf("%s: Append error = %v, want a *RowError for index 1", name, err)
		}
		if !audit.Permanent(err) {
			t.Errorf("%s: Permanent(%v) = false", name, err)
		}
	}
	if got, err := s.History(c, audit.Query{}); err != nil || len(got) != 0 {
		t.Errorf("after rejected appends: %d rows, %v; want none", len(got), err)
	}
}

const rawJWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEiLCJleHAiOjE3MDAwMDAwMDB9.c2lnbmF0dXJlLWJ5dGVz"

func testNoRawTokens(t *testing.T, s audit.Store) {
	c := ctx(t)
	// A raw token handed to Append is refused.
	r := Row(0)
	r.IdPResponse = `{"error":"invalid_token","token":"` + rawJWT + `"}`
	if err := s.Append(c, Link("tok", 0, "", []schemas.AuditRow{r})); !errors.Is(err, audit.ErrInvalidRow) {
		t.Errorf("Append with a raw token: error = %v, want ErrInvalidRow", err)
	}
	// Through the Writer it is replaced by its fingerprint.
	w, err := audit.NewWriter(c, s, "tok", zerolog.Nop())
	if err != nil {
		t.Fatalf("NewWriter: %v", err)
	}
	defer func() { _ = w.Close() }()
	r.TokenID = rawJWT
	r.Detail = "revoking " + rawJWT + " now"
	r.Evidence = []string{rawJWT}
	if err := w.Write(c, r); err != nil {
		t.Fatalf("Write: %v", err)
	}
	got, err := s.CommandRows(c, r.CommandID)
	if err != nil || len(got) != 1 {
		t.Fatalf("CommandRows: %d rows, %v; want 1", len(got), err)
	}
	g := got[0]
	fields := append([]string{g.TokenID, g.Detail, g.IdPResponse}, g.Evidence...)
	for _, f := range fields {
		if strings.Contains(f, rawJWT) || strings.Contains(f, "eyJhbGci") {
			t.Errorf("a raw token was stored: %q", f)
		}
	}
	fp := schemas.Fingerprint(rawJWT)
	if g.TokenID != fp || !strings.Contains(g.Detail, fp) || !strings.Contains(g.IdPResponse, fp) {
		t.Errorf("token not replaced by its fingerprint %s: token_id %q detail %q", fp, g.TokenID, g.Detail)
	}
}

func testWriterConcurrent(t *testing.T, s audit.Store) {
	c := ctx(t)
	const chain = "writer-concurrent"
	counting := &countingStore{Store: s}
	w, err := audit.NewWriterWithConfig(c, counting, audit.WriterConfig{Chain: chain, MaxDelay: 5 * time.Millisecond, MaxBatchRows: 64}, zerolog.Nop())
	if err != nil {
		t.Fatalf("NewWriter: %v", err)
	}
	const writers, writes = 8, 12
	var wg sync.WaitGroup
	errs := make(chan error, writers*writes)
	for g := range writers {
		wg.Go(func() {
			for i := range writes {
				n := 1 + (g+i)%3
				batch := make([]schemas.AuditRow, n)
				for j := range batch {
					r := Row(0)
					r.CommandID = fmt.Sprintf("w%d-%d", g, i)
					r.Step = schemas.Steps[j]
					r.Time = base.Add(time.Duration(g*1000+i*10+j) * time.Millisecond)
					r.RowID = schemas.AuditRowID(r.CommandID, r.Step, "t", int32(g), int64(i))
					batch[j] = r
				}
				if err := w.Write(c, batch...); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Write: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	total := 0
	for g := range writers {
		for i := range writes {
			total += 1 + (g+i)%3
		}
	}
	rows, err := s.ChainRows(c, chain, 0, 0)
	if err != nil {
		t.Fatalf("ChainRows: %v", err)
	}
	if len(rows) != total {
		t.Fatalf("ChainRows: %d rows, want %d", len(rows), total)
	}
	if err := audit.VerifyChain(rows); err != nil {
		t.Fatalf("VerifyChain: %v", err)
	}
	if seq, _ := w.Head(); seq != uint64(total) {
		t.Errorf("Head seq = %d, want %d", seq, total)
	}
	// Each Write's rows are consecutive and in order; each writer's Writes
	// are in the order it made them.
	last := map[string]uint64{}
	for i, r := range rows {
		if i > 0 && rows[i-1].CommandID == r.CommandID && slices.Index(schemas.Steps, rows[i-1].Step) > slices.Index(schemas.Steps, r.Step) {
			t.Errorf("rows of Write %s out of order at seq %d", r.CommandID, r.Seq)
		}
		var g, k int
		if _, err := fmt.Sscanf(r.CommandID, "w%d-%d", &g, &k); err != nil {
			t.Fatalf("unexpected command id %q", r.CommandID)
		}
		key := fmt.Sprint(g)
		if r.Seq < last[key] {
			t.Errorf("writer %d's rows out of order at seq %d", g, r.Seq)
		}
		last[key] = r.Seq
	}
	t.Logf("%d rows in %d writes went to the store in %d appends", total, writers*writes, counting.appends.Load())
	if got := counting.appends.Load(); got >= writers*writes {
		t.Errorf("%d appends for %d concurrent writes: no group commit", got, writers*writes)
	}
}

// countingStore counts Appends.
type countingStore struct {
	audit.Store
	appends atomic.Int64
}

func (s *countingStore) Append(ctx context.Context, rows []schemas.AuditRow) error {
	s.appends.Add(1)
	return s.Store.Append(ctx, rows)
}

// faultyStore fails Appends on demand: before storing ("lost") or after
// storing ("stored but the acknowledgement was lost").
type faultyStore struct {
	audit.Store
	mu   sync.Mutex
	mode string // "", "lost", "stored"
}

var errInjected = errors.New("injected failure")

func (s *faultyStore) set(mode string) {
	s.mu.Lock()
	s.mode = mode
	s.mu.Unlock()
}

func (s *faultyStore) Append(ctx context.Context, rows []schemas.AuditRow) error {
	s.mu.Lock()
	mode := s.mode
	s.mu.Unlock()
	switch mode {
	case "lost":
		return errInjected
	case "stored":
		if err := s.Store.Append(ctx, rows); err != nil {
			return err
		}
		return errInjected
	}
	return s.Store.Append(ctx, rows)
}

func testWriterFailedBatch(t *testing.T, s audit.Store) {
	c := ctx(t)
	const chain = "writer-faults"
	fs := &faultyStore{Store: s}
	w, err := audit.NewWriter(c, fs, chain, zerolog.Nop())
	if err != nil {
		t.Fatalf("NewWriter: %v", err)
	}
	defer func() { _ = w.Close() }()
	write := func(i int) error { return w.Write(c, Row(i)) }

	if err := write(0); err != nil {
		t.Fatalf("Write: %v", err)
	}
	fs.set("lost")
	if err := write(1); !errors.Is(err, errInjected) {
		t.Fatalf("Write to a failing store: error = %v, want the store's error", err)
	}
	if seq, _ := w.Head(); seq != 1 {
		t.Errorf("after a failed batch Head seq = %d, want 1", seq)
	}
	fs.set("")
	if err := write(1); err != nil {
		t.Fatalf("Write after recovery: %v", err)
	}
	// The store commits but the acknowledgement is lost; the caller
	// retries the same row.
	fs.set("stored")
	if err := write(2); !errors.Is(err, errInjected) {
		t.Fatalf("Write: error = %v, want the injected error", err)
	}
	fs.set("")
	if err := write(2); err != nil {
		t.Fatalf("retried Write: %v", err)
	}
	if err := write(3); err != nil {
		t.Fatalf("Write: %v", err)
	}

	rows, err := s.ChainRows(c, chain, 0, 0)
	if err != nil {
		t.Fatalf("ChainRows: %v", err)
	}
	if err := audit.VerifyChain(rows); err != nil {
		t.Fatalf("VerifyChain after failures: %v", err)
	}
	// Row 2 was stored twice in the chain (once by the batch that seemed to
	// fail); readers see it once.
	if len(rows) != 5 {
		t.Errorf("chain has %d rows, want 5 (rows 0, 1, 2, 2 again, 3)", len(rows))
	}
	hist, err := s.History(c, audit.Query{Chain: chain})
	if err != nil {
		t.Fatalf("History: %v", err)
	}
	if len(hist) != 4 {
		t.Errorf("History: %d rows, want 4 distinct rows", len(hist))
	}
}

func testWriterRestart(t *testing.T, s audit.Store) {
	c := ctx(t)
	const chain = "writer-restart"
	for round := range 3 {
		w, err := audit.NewWriter(c, s, chain, zerolog.Nop())
		if err != nil {
			t.Fatalf("NewWriter: %v", err)
		}
		if seq, _ := w.Head(); seq != uint64(round*4) {
			t.Errorf("round %d: Head seq = %d, want %d", round, seq, round*4)
		}
		if err := w.Write(c, rowsN(round*4, 4)...); err != nil {
			t.Fatalf("Write: %v", err)
		}
		if err := w.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := w.Write(c, Row(99)); !errors.Is(err, audit.ErrClosed) {
			t.Errorf("Write after Close: error = %v, want ErrClosed", err)
		}
	}
	rows, err := s.ChainRows(c, chain, 0, 0)
	if err != nil || len(rows) != 12 {
		t.Fatalf("ChainRows: %d rows, %v; want 12", len(rows), err)
	}
	if err := audit.VerifyChain(rows); err != nil {
		t.Errorf("VerifyChain: %v", err)
	}
}

func testVerifyDetectsTampering(t *testing.T, s audit.Store) {
	c := ctx(t)
	const chain = "tamper"
	w, err := audit.NewWriter(c, s, chain, zerolog.Nop())
	if err != nil {
		t.Fatalf("NewWriter: %v", err)
	}
	if err := w.Write(c, rowsN(0, 8)...); err != nil {
		t.Fatalf("Write: %v", err)
	}
	_ = w.Close()
	rows, err := s.ChainRows(c, chain, 0, 0)
	if err != nil || len(rows) != 8 {
		t.Fatalf("ChainRows: %d rows, %v; want 8", len(rows), err)
	}
	if err := audit.VerifyChain(rows); err != nil {
		t.Fatalf("VerifyChain(intact): %v", err)
	}
	expectFault := func(name string, rows []schemas.AuditRow, fault audit.ChainFault, seq uint64) {
		t.Helper()
		err := audit.VerifyChain(rows)
		var ce *audit.ChainError
		if !errors.As(err, &ce) || !errors.Is(err, audit.ErrChainBroken) {
			t.Errorf("%s: VerifyChain = %v, want a *ChainError", name, err)
			return
		}
		if ce.Fault != fault || ce.Seq != seq {
			t.Errorf("%s: VerifyChain = %v, want fault %s at seq %d", name, err, fault, seq)
		}
	}
	edited := slices.Clone(rows)
	edited[3].Detail = "nothing happened"
	expectFault("edited", edited, audit.FaultEdited, 4)

	rehashed := slices.Clone(rows)
	rehashed[3].Detail = "nothing happened"
	rehashed[3].Hash = rehashed[3].ComputeHash()
	expectFault("edited and rehashed", rehashed, audit.FaultLink, 5)

	deleted := slices.Delete(slices.Clone(rows), 2, 3)
	expectFault("deleted", deleted, audit.FaultGap, 4)

	reordered := slices.Clone(rows)
	reordered[4], reordered[5] = reordered[5], reordered[4]
	expectFault("reordered", reordered, audit.FaultGap, 6)

	renumbered := slices.Clone(rows)
	renumbered[4].Seq, renumbered[5].Seq = renumbered[5].Seq, renumbered[4].Seq
	renumbered[4], renumbered[5] = renumbered[5], renumbered[4]
	expectFault("renumbered", renumbered, audit.FaultLink, 5)

	// A forged row appended to the store at an existing position is
	// visible to ChainRows and breaks verification.
	forged := rows[5]
	forged.Detail = "forged"
	forged.Hash = forged.ComputeHash()
	if err := s.Append(c, []schemas.AuditRow{forged}); err != nil {
		t.Fatalf("Append forged: %v", err)
	}
	stored, err := s.ChainRows(c, chain, 0, 0)
	if err != nil {
		t.Fatalf("ChainRows: %v", err)
	}
	if len(stored) != 9 {
		t.Fatalf("ChainRows after a forged append: %d rows, want 9", len(stored))
	}
	if err := audit.VerifyChain(stored); !errors.Is(err, audit.ErrChainBroken) {
		t.Errorf("VerifyChain with a forged row: %v, want ErrChainBroken", err)
	}
}

func testCanceledContext(t *testing.T, s audit.Store) {
	c, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Append(c, Link("cancel", 0, "", rowsN(0, 1))); err == nil {
		t.Errorf("Append with a canceled context succeeded")
	}
	if _, err := s.History(c, audit.Query{}); err == nil {
		t.Errorf("History with a canceled context succeeded")
	}
}

func testClosed(t *testing.T, s audit.Store) {
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	c := ctx(t)
	if err := s.Append(c, Link("closed", 0, "", rowsN(0, 1))); !errors.Is(err, audit.ErrClosed) {
		t.Errorf("Append after Close: %v, want ErrClosed", err)
	}
	if _, err := s.History(c, audit.Query{}); !errors.Is(err, audit.ErrClosed) {
		t.Errorf("History after Close: %v, want ErrClosed", err)
	}
	if err := s.Ping(c); !errors.Is(err, audit.ErrClosed) {
		t.Errorf("Ping after Close: %v, want ErrClosed", err)
	}
	if err := s.AppendCheckpoints(c, []schemas.Checkpoint{schemas.NewCheckpoint(Signer(), "closed", 1, "h", base)}); !errors.Is(err, audit.ErrClosed) {
		t.Errorf("AppendCheckpoints after Close: %v, want ErrClosed", err)
	}
	if _, err := s.Checkpoints(c, "closed", 0, 0); !errors.Is(err, audit.ErrClosed) {
		t.Errorf("Checkpoints after Close: %v, want ErrClosed", err)
	}
	if _, err := s.Chains(c); !errors.Is(err, audit.ErrClosed) {
		t.Errorf("Chains after Close: %v, want ErrClosed", err)
	}
}

// Signer returns a fixed test signing key's Signer.
func Signer() *schemas.Signer {
	return schemas.NewSigner(ed25519.NewKeyFromSeed([]byte("audittest-checkpoint-signing-key")))
}

func testCheckpoints(t *testing.T, s audit.Store) {
	c := ctx(t)
	sg := Signer()
	const chain = "cp-chain"
	var cps []schemas.Checkpoint
	for i := range 5 {
		seq := uint64(i*10 + 10)
		cps = append(cps, schemas.NewCheckpoint(sg, chain, seq, fmt.Sprintf("hash-%d", seq), base.Add(time.Duration(i)*time.Minute)))
	}
	other := schemas.NewCheckpoint(sg, "cp-other", 7, "h7", base)
	if err := s.AppendCheckpoints(c, append(slices.Clone(cps), other)); err != nil {
		t.Fatalf("AppendCheckpoints: %v", err)
	}
	// A retried insert is deduplicated; a different checkpoint of an
	// existing Seq (say, a forgery) is kept beside the original.
	forged := cps[2]
	forged.Hash = "forged"
	if err := s.AppendCheckpoints(c, []schemas.Checkpoint{cps[1], cps[2], forged}); err != nil {
		t.Fatalf("AppendCheckpoints again: %v", err)
	}
	got, err := s.Checkpoints(c, chain, 0, 0)
	if err != nil {
		t.Fatalf("Checkpoints: %v", err)
	}
	if len(got) != 6 {
		t.Fatalf("Checkpoints: %d, want 6 (5 and the forgery): %+v", len(got), got)
	}
	keyring := schemas.NewKeyring(sg.Public())
	n := 0
	for i, g := range got {
		if i > 0 && g.Seq < got[i-1].Seq {
			t.Errorf("Checkpoints out of Seq order: %d after %d", g.Seq, got[i-1].Seq)
		}
		if g.Time.Location() != time.UTC {
			t.Errorf("checkpoint time %v is not in UTC", g.Time)
		}
		if g.Hash == "forged" {
			if err := g.Verify(keyring); !errors.Is(err, schemas.ErrBadSignature) {
				t.Errorf("forged checkpoint verifies: %v", err)
			}
			continue
		}
		if want := cps[n]; g != want {
			t.Errorf("checkpoint %d: got %+v, want %+v", n, g, want)
		}
		if err := g.Verify(keyring); err != nil {
			t.Errorf("checkpoint at seq %d read back does not verify: %v", g.Seq, err)
		}
		n++
	}
	page, err := s.Checkpoints(c, chain, 20, 2)
	if err != nil || len(page) != 2 || page[0].Seq != 30 || page[1].Seq != 30 {
		t.Errorf("Checkpoints after 20, limit 2: %+v, %v; want both of seq 30", page, err)
	}
	if none, err := s.Checkpoints(c, "no-such-chain", 0, 0); err != nil || len(none) != 0 {
		t.Errorf("Checkpoints of an unknown chain: %d, %v", len(none), err)
	}

	bad := []schemas.Checkpoint{schemas.NewCheckpoint(sg, "cp-bad", 1, "h", base), {Chain: "cp-bad", Seq: 2, Hash: "h", Time: base, KeyID: sg.KeyID()}}
	if err := s.AppendCheckpoints(c, bad); !errors.Is(err, audit.ErrInvalidRow) {
		t.Errorf("AppendCheckpoints of an unsigned checkpoint: %v, want ErrInvalidRow", err)
	}
	if got, _ := s.Checkpoints(c, "cp-bad", 0, 0); len(got) != 0 {
		t.Errorf("an invalid batch stored %d checkpoints", len(got))
	}
}

func testChains(t *testing.T, s audit.Store) {
	c := ctx(t)
	if got, err := s.Chains(c); err != nil || len(got) != 0 {
		t.Fatalf("Chains of an empty store: %q, %v", got, err)
	}
	for _, chain := range []string{"b-chain", "a-chain", "b-chain"} {
		if err := s.Append(c, Link(chain, 0, "", rowsN(0, 2))); err != nil {
			t.Fatalf("Append: %v", err)
		}
	}
	// A chain known only from its checkpoints (its rows are gone) is
	// listed too.
	if err := s.AppendCheckpoints(c, []schemas.Checkpoint{schemas.NewCheckpoint(Signer(), "c-only-checkpoints", 3, "h", base)}); err != nil {
		t.Fatalf("AppendCheckpoints: %v", err)
	}
	got, err := s.Chains(c)
	if want := []string{"a-chain", "b-chain", "c-only-checkpoints"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("Chains = %q, %v; want %q", got, err, want)
	}
}

func testWriterCheckpoints(t *testing.T, s audit.Store) {
	c := ctx(t)
	const chain = "writer-checkpoints"
	sg := Signer()
	keyring := schemas.NewKeyring(sg.Public())
	cfg := audit.WriterConfig{Chain: chain, MaxDelay: -1, Signer: sg, CheckpointRows: 5, CheckpointInterval: time.Hour}
	w, err := audit.NewWriterWithConfig(c, s, cfg, zerolog.Nop())
	if err != nil {
		t.Fatalf("NewWriter: %v", err)
	}
	for i := range 12 {
		if err := w.Write(c, Row(i)); err != nil {
			t.Fatalf("Write: %v", err)
		}
	}
	if got := w.SignedSeq(); got != 10 {
		t.Errorf("SignedSeq before Close = %d, want 10", got)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := w.SignedSeq(); got != 12 {
		t.Errorf("SignedSeq after Close = %d, want 12", got)
	}
	rows, err := s.ChainRows(c, chain, 0, 0)
	if err != nil || len(rows) != 12 {
		t.Fatalf("ChainRows: %d, %v", len(rows), err)
	}
	check := func(want ...uint64) {
		t.Helper()
		cps, err := s.Checkpoints(c, chain, 0, 0)
		if err != nil {
			t.Fatalf("Checkpoints: %v", err)
		}
		var seqs []uint64
		for _, cp := range cps {
			seqs = append(seqs, cp.Seq)
			if err := cp.Verify(keyring); err != nil {
				t.Errorf("checkpoint at seq %d: %v", cp.Seq, err)
			}
			if cp.KeyID != sg.KeyID() || cp.Chain != chain || cp.Hash != rows[cp.Seq-1].Hash {
				t.Errorf("checkpoint %+v does not name row %d's hash %s", cp, cp.Seq, rows[cp.Seq-1].Hash)
			}
		}
		if !slices.Equal(seqs, want) {
			t.Errorf("checkpoints at seqs %v, want %v", seqs, want)
		}
	}
	check(5, 10, 12)

	// A restarted writer finds its head signed and signs nothing new
	// until it writes.
	w, err = audit.NewWriterWithConfig(c, s, cfg, zerolog.Nop())
	if err != nil {
		t.Fatalf("NewWriter: %v", err)
	}
	if got := w.SignedSeq(); got != 12 {
		t.Errorf("restarted SignedSeq = %d, want 12", got)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	check(5, 10, 12)

	// After a crash (rows written, no checkpoint), the next writer signs
	// the head it finds when it closes.
	if err := s.Append(c, Link(chain, 12, rows[11].Hash, rowsN(12, 2))); err != nil {
		t.Fatalf("Append: %v", err)
	}
	if rows, err = s.ChainRows(c, chain, 0, 0); err != nil || len(rows) != 14 {
		t.Fatalf("ChainRows: %d, %v", len(rows), err)
	}
	w, err = audit.NewWriterWithConfig(c, s, cfg, zerolog.Nop())
	if err != nil {
		t.Fatalf("NewWriter: %v", err)
	}
	if got := w.SignedSeq(); got != 12 {
		t.Errorf("SignedSeq over an unsigned head = %d, want 12 (the last checkpoint)", got)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	check(5, 10, 12, 14)

	// A tail tampered with while no writer ran is not signed over.
	const tampered = chain + "-tampered"
	tw, err := audit.NewWriterWithConfig(c, s, audit.WriterConfig{Chain: tampered, MaxDelay: -1, Signer: sg, CheckpointRows: 100}, zerolog.Nop())
	if err != nil {
		t.Fatalf("NewWriter: %v", err)
	}
	if err := tw.Write(c, rowsN(0, 4)...); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if err := tw.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	trows, err := s.ChainRows(c, tampered, 0, 0)
	if err != nil || len(trows) != 4 {
		t.Fatalf("ChainRows: %d, %v", len(trows), err)
	}
	tail := Link(tampered, 4, trows[3].Hash, rowsN(4, 2))
	forged := tail[0]
	forged.Detail = "forged while no writer ran"
	forged.Hash = forged.ComputeHash()
	if err := s.Append(c, append(tail, forged)); err != nil {
		t.Fatalf("Append: %v", err)
	}
	tw, err = audit.NewWriterWithConfig(c, s, audit.WriterConfig{Chain: tampered, MaxDelay: -1, Signer: sg, CheckpointRows: 1}, zerolog.Nop())
	if err != nil {
		t.Fatalf("NewWriter over a tampered tail: %v", err)
	}
	if err := tw.Write(c, Row(6)); err != nil {
		t.Fatalf("Write after a tampered tail: %v", err)
	}
	if err := tw.Close(); !errors.Is(err, audit.ErrChainBroken) {
		t.Errorf("Close of a writer over a tampered tail: %v, want ErrChainBroken", err)
	}
	if cps, err := s.Checkpoints(c, tampered, 4, 0); err != nil || len(cps) != 0 {
		t.Errorf("checkpoints signed over a tampered tail: %+v, %v", cps, err)
	}

	// The interval alone triggers a checkpoint.
	cfg.CheckpointRows, cfg.CheckpointInterval = 1000, 20*time.Millisecond
	w, err = audit.NewWriterWithConfig(c, s, cfg, zerolog.Nop())
	if err != nil {
		t.Fatalf("NewWriter: %v", err)
	}
	defer func() { _ = w.Close() }()
	if err := w.Write(c, Row(14)); err != nil {
		t.Fatalf("Write: %v", err)
	}
	testenv.Eventually(t, "the checkpoint of a 20 ms interval", func() bool { return w.SignedSeq() == 15 })
}

// Bench measures Append with batches of 1, 100 and 1000 rows: run it from
// a backend's BenchmarkAppend. Rows are fresh for every batch (no
// deduplication at work).
func Bench(b *testing.B, open Open) {
	for _, size := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			s := open(b)
			c := ctx(b)
			if err := s.Migrate(c); err != nil {
				b.Fatalf("Migrate: %v", err)
			}
			var seq uint64
			var prev string
			next := 0
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				b.StopTimer()
				batch := make([]schemas.AuditRow, size)
				for i := range batch {
					batch[i] = Row(next)
					batch[i].RowID = schemas.AuditRowID(batch[i].CommandID, batch[i].Step, "bench", 0, int64(next))
					next++
				}
				batch = Link("bench", seq, prev, batch)
				seq, prev = batch[size-1].Seq, batch[size-1].Hash
				b.StartTimer()
				if err := s.Append(c, batch); err != nil {
					b.Fatalf("Append: %v", err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(next)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
