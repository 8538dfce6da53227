package backends_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/consumer/audit/backends"
	"github.com/revoked-dev/revoked/internal/testenv"
	"github.com/revoked-dev/revoked/schemas"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		cfg  backends.Config
		want []string
	}{
		"no backend":      {backends.Config{}, []string{"backend is required"}},
		"unknown backend": {backends.Config{Backend: "postgres"}, []string{`unknown backend "postgres"`}},
		"clickhouse without dsn": {backends.Config{Backend: backends.ClickHouse, ChDBPath: "/x", Table: "a-b"},
			[]string{"dsn is required", "chdb path is set", "table"}},
		"chdb without path": {backends.Config{Backend: backends.ChDB, DSN: "clickhouse://h:9000", Cluster: "c"},
			[]string{"path is required", "dsn is set", "cluster needs"}},
		"chdb with a read dsn": {backends.Config{Backend: backends.ChDB, ChDBPath: "/x", ReadDSN: "clickhouse://r:p@h:9000"},
			[]string{"read dsn is set but the backend is \"chdb\", which has no users"}},
		"clickhouse with a bad read dsn": {backends.Config{Backend: backends.ClickHouse, DSN: "clickhouse://u:p@h:9000", ReadDSN: "clickhouse://r:p@h:9000?dial_timeout=soon"},
			[]string{"read dsn"}},
	} {
		err := tc.cfg.Validate()
		if !errors.Is(err, backends.ErrInvalidConfig) {
			t.Errorf("%s: Validate = %v, want ErrInvalidConfig", name, err)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not mention %q", name, err, w)
			}
		}
	}
	for _, ok := range []backends.Config{
		{Backend: backends.ClickHouse, DSN: "clickhouse://u:p@h:9000/db", TTL: 24 * time.Hour},
		{Backend: backends.ChDB, ChDBPath: "/var/lib/revoked/chdb"},
		{Backend: backends.ClickHouse, DSN: "clickhouse://u:p@h:9000/db", ReadDSN: "clickhouse://r:p@h:9000/db", Cluster: "prod"},
		{Backend: backends.ClickHouse, DSN: "clickhouse://u:p@h:9000/db", SpoolDir: "/var/lib/revoked/spool"},
	} {
		if err := ok.Validate(); err != nil {
			t.Errorf("Validate(%v) = %v", ok, err)
		}
	}
}

func TestConfigHidesPassword(t *testing.T) {
	t.Parallel()
	cfg := backends.Config{Backend: backends.ClickHouse, DSN: "clickhouse://u:hunter2@h:9000/db", ReadDSN: "clickhouse://reader:swordfish@h:9000/db", SpoolDir: "/var/spool/revoked"}
	for _, s := range []string{fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg)} {
		if strings.Contains(s, "hunter2") || strings.Contains(s, "swordfish") {
			t.Errorf("config prints a password: %s", s)
		}
		if !strings.Contains(s, "reader:********@h:9000") {
			t.Errorf("config does not show the read dsn masked: %s", s)
		}
		if !strings.Contains(s, "SpoolDir:/var/spool/revoked") {
			t.Errorf("config does not show the spool dir: %s", s)
		}
	}
}

// TestOpenClickHouse opens and migrates through the package and does one
// round trip; the full contract runs in chstore and chdbstore.
func TestOpenClickHouse(t *testing.T) {
	t.Parallel()
	dsn := testenv.ClickHouseDSN(t)
	db := testenv.UniqueName(t, "revoked_test")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := backends.Open(ctx, backends.Config{Backend: backends.ClickHouse, DSN: dsn, Database: db}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.Close()
		testenv.DropClickHouseDatabase(t, dsn, db)
	})
	roundTrip(ctx, t, s)
}

func TestOpenChDB(t *testing.T) {
	lib := testenv.ChDBLibPath(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := backends.Open(ctx, backends.Config{Backend: backends.ChDB, ChDBPath: t.TempDir(), ChDBLibPath: lib}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	roundTrip(ctx, t, s)
}

func roundTrip(ctx context.Context, t *testing.T, s audit.Store) {
	t.Helper()
	w, err := audit.NewWriter(ctx, s, "backends-test", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Close() }()
	if err := w.Write(ctx, row()); err != nil {
		t.Fatal(err)
	}
	rows, err := s.ChainRows(ctx, "backends-test", 0, 0)
	if err != nil || len(rows) != 1 {
		t.Fatalf("ChainRows: %d rows, %v", len(rows), err)
	}
	if err := audit.VerifyChain(rows); err != nil {
		t.Error(err)
	}
}

// TestOpenReaderChDB: without a read DSN the reader is the store Open
// opens, with its writes refused.
func TestOpenReaderChDB(t *testing.T) {
	lib := testenv.ChDBLibPath(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := backends.OpenReader(ctx, backends.Config{Backend: backends.ChDB, ChDBPath: t.TempDir(), ChDBLibPath: lib}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if rows, err := s.History(ctx, audit.Query{UserID: "nobody"}); err != nil || len(rows) != 0 {
		t.Errorf("History of an empty store: %d rows, %v", len(rows), err)
	}
	for what, err := range map[string]error{
		"Append":            s.Append(ctx, []schemas.AuditRow{row()}),
		"AppendCheckpoints": s.AppendCheckpoints(ctx, nil),
		"Migrate":           s.Migrate(ctx),
	} {
		if !errors.Is(err, backends.ErrReadOnly) {
			t.Errorf("%s through the reader: %v, want ErrReadOnly", what, err)
		}
	}
	if backends.ReadOnly(s) != s {
		t.Error("ReadOnly wraps a read-only store again")
	}
}
