package main

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/revoked-dev/revoked/consumer/audit/audittest"
	"github.com/revoked-dev/revoked/consumer/audit/backends"
	"github.com/revoked-dev/revoked/internal/testenv"
	"github.com/revoked-dev/revoked/schemas"
)

// TestHistoryReadsThroughReadDSN seeds a trail on the test ClickHouse
// server, then runs `consumer history` and `consumer verify` with
// REVOKED_AUDIT_READ_DSN naming the server's read-only user and
// REVOKED_AUDIT_DSN naming a server that does not exist: they can only
// succeed by reading as the read-only user, and never touching the writer's
// DSN (no migration).
func TestHistoryReadsThroughReadDSN(t *testing.T) {
	dsn := testenv.ClickHouseDSN(t)
	readDSN := strings.TrimSpace(os.Getenv("REVOKED_TEST_CLICKHOUSE_READ_DSN"))
	if readDSN == "" {
		if testenv.Required(testenv.ClickHouse) {
			t.Fatal(`REVOKED_TEST_CLICKHOUSE_READ_DSN is not set but ClickHouse is required; start the server with: eval "$(bash .ci/clickhouse.sh)"`)
		}
		t.Skip(`REVOKED_TEST_CLICKHOUSE_READ_DSN is not set; start the server with: eval "$(bash .ci/clickhouse.sh)"`)
	}
	db := testenv.UniqueName(t, "revoked_test")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	t.Cleanup(func() { testenv.DropClickHouseDatabase(t, dsn, db) })
	const rows = 3
	seeded := make([]schemas.AuditRow, rows)
	for i := range seeded {
		seeded[i] = audittest.Row(i)
		seeded[i].UserID = "alice"
	}
	seedTrail(t, backends.Config{Backend: backends.ClickHouse, DSN: dsn, Database: db}, seeded...)

	t.Setenv("REVOKED_AUDIT_BACKEND", "clickhouse")
	t.Setenv("REVOKED_AUDIT_DSN", "clickhouse://default:@127.0.0.1:1/default?dial_timeout=1s")
	t.Setenv("REVOKED_AUDIT_READ_DSN", readDSN)
	t.Setenv("REVOKED_AUDIT_DATABASE", db)

	var out, errb bytes.Buffer
	if err := run(ctx, []string{"history", "-user", "alice", "-json"}, &out, &errb); err != nil {
		t.Fatalf("history: %v\n%s", err, errb.String())
	}
	if n := strings.Count(out.String(), `"row_id"`); n != rows {
		t.Errorf("history printed %d rows, want %d:\n%s", n, rows, out.String())
	}

	out.Reset()
	errb.Reset()
	if err := run(ctx, []string{"verify", "-allow-unsigned", "-allow-unanchored", "-no-progress"}, &out, &errb); err != nil {
		t.Fatalf("verify: %v\n%s%s", err, out.String(), errb.String())
	}

	// A wrong password in the read DSN fails: the read DSN, and only it,
	// is what the command connects with.
	u, err := url.Parse(readDSN)
	if err != nil {
		t.Fatal(err)
	}
	password, _ := u.User.Password()
	u.User = url.UserPassword(u.User.Username(), password+"x")
	t.Setenv("REVOKED_AUDIT_READ_DSN", u.String())
	if err := run(ctx, []string{"history", "-user", "alice"}, &out, &errb); err == nil {
		t.Error("history with a wrong read-dsn password succeeded")
	} else if password != "" && strings.Contains(err.Error()+errb.String(), password) {
		t.Errorf("the error shows the read dsn's password: %v", err)
	}
}
