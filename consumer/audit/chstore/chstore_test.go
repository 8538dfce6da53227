package chstore_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/consumer/audit/audittest"
	"github.com/revoked-dev/revoked/consumer/audit/chstore"
	"github.com/revoked-dev/revoked/internal/testenv"
)

// open returns a store over a database of its own on the test server and
// drops the database when the test ends.
func open(tb testing.TB) audit.Store {
	tb.Helper()
	dsn := testenv.ClickHouseDSN(tb)
	db := testenv.UniqueName(tb, "revoked_test")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := chstore.Open(ctx, chstore.Config{DSN: dsn, Database: db, Table: "audit"}, zerolog.Nop())
	if err != nil {
		tb.Fatalf("chstore.Open: %v", err)
	}
	tb.Cleanup(func() {
		_ = s.Close()
		testenv.DropClickHouseDatabase(tb, dsn, db)
	})
	return s
}

func TestContract(t *testing.T) {
	t.Parallel()
	audittest.Run(t, open)
}

func BenchmarkAppend(b *testing.B) { audittest.Bench(b, open) }

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	err := chstore.Config{Database: "bad-name", Table: "x;y", TTL: -time.Hour}.Validate()
	if !errors.Is(err, chstore.ErrInvalidConfig) {
		t.Fatalf("Validate = %v, want ErrInvalidConfig", err)
	}
	for _, want := range []string{"dsn is required", "database", "table", "ttl"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error %q does not mention %q", err, want)
		}
	}
	if err := (chstore.Config{DSN: "clickhouse://u:p@localhost:9000/db"}).Validate(); err != nil {
		t.Errorf("Validate(minimal) = %v", err)
	}
}

func TestConfigHidesPassword(t *testing.T) {
	t.Parallel()
	cfg := chstore.Config{DSN: "clickhouse://user:hunter2@localhost:9000/db"}
	for _, s := range []string{cfg.String(), cfg.GoString()} {
		if strings.Contains(s, "hunter2") {
			t.Errorf("config prints its password: %s", s)
		}
	}
}

// TestTTLNeedsModernServer: a retention TTL on a server without TTL
// support is refused rather than ignored.
func TestTTLOnServer(t *testing.T) {
	t.Parallel()
	dsn := testenv.ClickHouseDSN(t)
	db := testenv.UniqueName(t, "revoked_test")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := chstore.Open(ctx, chstore.Config{DSN: dsn, Database: db, TTL: 24 * time.Hour}, zerolog.Nop())
	if err != nil {
		if !strings.Contains(err.Error(), "ttl needs ClickHouse 20.3") {
			t.Fatalf("Open with TTL: %v", err)
		}
		return
	}
	t.Cleanup(func() {
		_ = s.Close()
		testenv.DropClickHouseDatabase(t, dsn, db)
	})
	if !s.ServerVersion().Modern() {
		t.Fatalf("Open with TTL on %s succeeded", s.ServerVersion())
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("Migrate with TTL: %v", err)
	}
}

func TestOpenUnreachable(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := chstore.Open(ctx, chstore.Config{DSN: "clickhouse://u:secret@127.0.0.1:1/db?dial_timeout=1s"}, zerolog.Nop())
	if err == nil {
		t.Fatal("Open of an unreachable server succeeded")
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("error leaks the password: %v", err)
	}
}

func TestRedactDSN(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"clickhouse://user:hunter2@h:9000/db?secure=true": "clickhouse://user:********@h:9000/db?secure=true",
		"clickhouse://user@h:9000/db":                     "clickhouse://user@h:9000/db",
		"clickhouse://h:9000":                             "clickhouse://h:9000",
	} {
		if got := chstore.RedactDSN(in); got != want {
			t.Errorf("RedactDSN(%q) = %q, want %q", in, got, want)
		}
	}
}

// BenchmarkHistory10M runs audittest.BenchHistory10M on the test server,
// in revoked_bench.audit_10m, which it keeps for the next run (drop the
// database to start over).
func BenchmarkHistory10M(b *testing.B) {
	dsn := testenv.ClickHouseDSN(b)
	const db, table = "revoked_bench", "audit_10m"
	ctx := context.Background()
	s, err := chstore.Open(ctx, chstore.Config{DSN: dsn, Database: db, Table: table}, zerolog.Nop())
	if err != nil {
		b.Fatalf("chstore.Open: %v", err)
	}
	defer func() { _ = s.Close() }()
	opts, err := clickhouse.ParseDSN(dsn)
	if err != nil {
		b.Fatal(err)
	}
	opts.Auth.Database = ""
	// The fill runs for minutes.
	opts.ReadTimeout = time.Hour
	conn, err := clickhouse.Open(opts)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	audittest.BenchHistory10M(b, audittest.BigTarget{
		Store: s, Database: db, Table: table,
		Exec: func(ctx context.Context, sql string) error { return conn.Exec(ctx, sql) },
		QueryUint64: func(ctx context.Context, sql string) (uint64, error) {
			var n uint64
			err := conn.QueryRow(ctx, sql).Scan(&n)
			return n, err
		},
	})
}
