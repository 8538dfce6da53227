package chstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/consumer/audit/audittest"
	"github.com/revoked-dev/revoked/consumer/audit/backends"
	"github.com/revoked-dev/revoked/consumer/audit/chstore"
	"github.com/revoked-dev/revoked/internal/testenv"
	"github.com/revoked-dev/revoked/schemas"
)

// The read-only users of the test server (.ci/clickhouse.sh).
const (
	envReadDSN      = "REVOKED_TEST_CLICKHOUSE_READ_DSN"      // readonly=2
	envReadOnly1DSN = "REVOKED_TEST_CLICKHOUSE_READONLY1_DSN" // readonly=1
)

// envOf returns the variable .ci/clickhouse.sh exports beside the test
// server's DSN, failing the test when it is missing and ClickHouse is
// required, and skipping it otherwise.
func envOf(t *testing.T, name string) string {
	t.Helper()
	testenv.ClickHouseDSN(t)
	v := strings.TrimSpace(os.Getenv(name))
	if v == "" {
		const how = `start the test server with: eval "$(bash .ci/clickhouse.sh)"`
		if testenv.Required(testenv.ClickHouse) {
			t.Fatalf("%s is not set but ClickHouse is required for this run; %s", name, how)
		}
		t.Skipf("%s is not set; %s", name, how)
	}
	return v
}

// statser is the Stats read of the Store interface, asserted rather than
// called directly so this test builds on either side of its arrival.
type statser interface {
	Stats(ctx context.Context, q audit.StatsQuery) (audit.Stats, error)
}

// TestReadOnlyUser writes a trail as the default user and reads it back
// through every read method as each read-only user of the test server,
// under a context with a deadline, so clickhouse-go sends
// max_execution_time with every query; the writes of a store connected as
// such a user fail on the server and store nothing.
//
// On ClickHouse 18.16 both levels serve every read, but they treat the
// settings a native-protocol query carries differently: readonly=2
// applies them, readonly=1 silently drops them (SET and SETTINGS it
// refuses). Later servers refuse them under readonly=1 ("Cannot modify
// 'max_execution_time' setting in readonly mode"), which is why the
// documented profile of the read DSN is readonly=2.
func TestReadOnlyUser(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, env       string
		appliesSettings bool
	}{
		{"readonly=2", envReadDSN, true},
		{"readonly=1", envReadOnly1DSN, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			testReadOnly(t, envOf(t, tc.env), tc.appliesSettings)
		})
	}
}

// written is what testReadOnly writes and expects to read back.
type written struct {
	rows  []schemas.AuditRow
	cps   []schemas.Checkpoint
	chain string
}

func testReadOnly(t *testing.T, readDSN string, appliesSettings bool) {
	dsn := testenv.ClickHouseDSN(t)
	db := testenv.UniqueName(t, "revoked_test")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	writer, err := chstore.Open(ctx, chstore.Config{DSN: dsn, Database: db, Table: "audit"}, zerolog.Nop())
	if err != nil {
		t.Fatalf("opening the writer: %v", err)
	}
	t.Cleanup(func() {
		_ = writer.Close()
		testenv.DropClickHouseDatabase(t, dsn, db)
	})
	if err := writer.Migrate(ctx); err != nil {
		t.Fatalf("migrating: %v", err)
	}
	var w written
	w.chain = "readonly-chain"
	for i := range 6 {
		w.rows = append(w.rows, audittest.Row(i))
	}
	w.rows = audittest.Link(w.chain, 0, "", w.rows)
	if err := writer.Append(ctx, w.rows); err != nil {
		t.Fatalf("Append: %v", err)
	}
	w.cps = []schemas.Checkpoint{schemas.NewCheckpoint(audittest.Signer(), w.chain, 6, w.rows[5].Hash, w.rows[5].Time)}
	if err := writer.AppendCheckpoints(ctx, w.cps); err != nil {
		t.Fatalf("AppendCheckpoints: %v", err)
	}

	// A query under a deadline carries max_execution_time: readonly=2
	// applies it, 18.16's readonly=1 drops it.
	var met []string
	if err := queryStrings(ctx, readDSN, "SELECT value FROM system.settings WHERE name = 'max_execution_time'", &met); err != nil {
		t.Fatalf("reading max_execution_time as the read-only user: %v", err)
	}
	if applied := len(met) == 1 && met[0] != "0"; applied != appliesSettings {
		t.Errorf("max_execution_time of a query under a deadline = %q, applied %t, want %t: revisit the readonly level in backends.Config.ReadDSN's doc", met, applied, appliesSettings)
	}

	// The store as chstore opens it over the read DSN: the server itself
	// refuses the writes.
	raw, err := chstore.Open(ctx, chstore.Config{DSN: readDSN, Database: db, Table: "audit"}, zerolog.Nop())
	if err != nil {
		t.Fatalf("opening as the read-only user: %v", err)
	}
	defer func() { _ = raw.Close() }()
	readAll(ctx, t, "read-only user", raw, w)
	more := audittest.Link(w.chain, 6, w.rows[5].Hash, []schemas.AuditRow{audittest.Row(40)})
	moreCP := []schemas.Checkpoint{schemas.NewCheckpoint(audittest.Signer(), w.chain, 7, more[0].Hash, more[0].Time)}
	for what, err := range map[string]error{
		"Append":            raw.Append(ctx, more),
		"AppendCheckpoints": raw.AppendCheckpoints(ctx, moreCP),
		"Migrate":           raw.Migrate(ctx),
	} {
		if err == nil || !strings.Contains(err.Error(), "readonly mode") {
			t.Errorf("%s as the read-only user: %v, want the server's readonly refusal", what, err)
		}
	}
	// Migrate of a table that does not exist yet: the server refuses the
	// CREATE, not just finds the table there.
	other, err := chstore.Open(ctx, chstore.Config{DSN: readDSN, Database: db, Table: "other"}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = other.Close() }()
	if err := other.Migrate(ctx); err == nil || !strings.Contains(err.Error(), "readonly mode") {
		t.Errorf("Migrate of a new table as the read-only user: %v", err)
	}
	var tables []string
	if err := queryStrings(ctx, dsn, fmt.Sprintf("SELECT name FROM system.tables WHERE database = '%s' ORDER BY name", db), &tables); err != nil {
		t.Fatal(err)
	}
	if want := []string{"audit", "audit_checkpoints"}; !slices.Equal(tables, want) {
		t.Errorf("tables after the read-only user's writes: %q, want %q", tables, want)
	}

	// The store backends.OpenReader opens for the read path: the same
	// reads, and writes refused before they reach the server.
	cfg := backends.Config{Backend: backends.ClickHouse, DSN: dsn, ReadDSN: readDSN, Database: db, Table: "audit"}
	reader, err := backends.OpenReader(ctx, cfg, zerolog.Nop())
	if err != nil {
		t.Fatalf("backends.OpenReader: %v", err)
	}
	defer func() { _ = reader.Close() }()
	readAll(ctx, t, "OpenReader's store", reader, w)
	for what, err := range map[string]error{
		"Append":            reader.Append(ctx, more),
		"AppendCheckpoints": reader.AppendCheckpoints(ctx, moreCP),
		"Migrate":           reader.Migrate(ctx),
	} {
		if !errors.Is(err, backends.ErrReadOnly) {
			t.Errorf("%s through OpenReader's store: %v, want ErrReadOnly", what, err)
		}
	}

	// Nothing was written by either.
	readAll(ctx, t, "the writer, after the refused writes", writer, w)
}

// readAll calls every read method of s and checks it returns what w
// wrote.
func readAll(ctx context.Context, t *testing.T, who string, s audit.Store, w written) {
	t.Helper()
	if err := s.Ping(ctx); err != nil {
		t.Errorf("%s: Ping: %v", who, err)
	}
	ids := func(rows []schemas.AuditRow) []string {
		out := make([]string, len(rows))
		for i, r := range rows {
			out[i] = r.RowID
		}
		return out
	}
	wantIDs := ids(w.rows)
	if rows, err := s.ChainRows(ctx, w.chain, 0, 0); err != nil || !slices.Equal(ids(rows), wantIDs) {
		t.Errorf("%s: ChainRows: %d rows, %v; want %d", who, len(rows), err, len(w.rows))
	} else if err := audit.VerifyChain(rows); err != nil {
		t.Errorf("%s: the chain read back does not verify: %v", who, err)
	}
	last := w.rows[len(w.rows)-1]
	if seq, hash, err := s.ChainHead(ctx, w.chain); err != nil || seq != last.Seq || hash != last.Hash {
		t.Errorf("%s: ChainHead = %d %q, %v; want %d %q", who, seq, hash, err, last.Seq, last.Hash)
	}
	if rows, err := s.CommandRows(ctx, w.rows[0].CommandID); err != nil || len(rows) != 3 {
		t.Errorf("%s: CommandRows: %d rows, %v; want 3", who, len(rows), err)
	}
	hist, err := s.History(ctx, audit.Query{From: w.rows[0].Time, To: last.Time.Add(time.Second), Limit: 100})
	if err != nil || len(hist) != len(w.rows) || hist[0].RowID != last.RowID {
		t.Errorf("%s: History: %d rows, %v; want %d, newest first", who, len(hist), err, len(w.rows))
	}
	if cps, err := s.Checkpoints(ctx, w.chain, 0, 0); err != nil || !slices.Equal(cps, w.cps) {
		t.Errorf("%s: Checkpoints = %+v, %v; want %+v", who, cps, err, w.cps)
	}
	if chains, err := s.Chains(ctx); err != nil || !slices.Equal(chains, []string{w.chain}) {
		t.Errorf("%s: Chains = %q, %v", who, chains, err)
	}
	if st, ok := s.(statser); ok {
		q := audit.StatsQuery{From: w.rows[0].Time.Add(-time.Hour), To: last.Time.Add(time.Hour)}
		if _, err := st.Stats(ctx, q); err != nil {
			t.Errorf("%s: Stats: %v", who, err)
		}
	} else {
		t.Logf("%s: the store has no Stats yet: not checked", who)
	}
}

// queryStrings runs a one-column query as the DSN's user.
func queryStrings(ctx context.Context, dsn, query string, out *[]string) error {
	opts, err := clickhouse.ParseDSN(dsn)
	if err != nil {
		return err
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	rows, err := conn.Query(ctx, query)
	if err != nil {
		return fmt.Errorf("%s: %w", query, err)
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return err
		}
		*out = append(*out, s)
	}
	return rows.Err()
}
