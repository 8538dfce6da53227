package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// DropClickHouseDatabase drops database db on the server at dsn, reporting
// a failure as a test error: the cleanup of tests that create a database
// of their own (UniqueName) on a shared server.
func DropClickHouseDatabase(tb testing.TB, dsn, db string) {
	tb.Helper()
	opts, err := clickhouse.ParseDSN(dsn)
	if err != nil {
		tb.Errorf("parsing dsn: %v", err)
		return
	}
	opts.Auth.Database = ""
	conn, err := clickhouse.Open(opts)
	if err != nil {
		tb.Errorf("connecting to drop %s: %v", db, err)
		return
	}
	defer func() { _ = conn.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS `"+db+"`"); err != nil {
		tb.Errorf("dropping %s: %v", db, err)
	}
}
