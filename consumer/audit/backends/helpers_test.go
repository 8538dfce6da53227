package backends_test

import (
	"context"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/revoked-dev/revoked/consumer/audit/audittest"
	"github.com/revoked-dev/revoked/schemas"
)

func row() schemas.AuditRow { return audittest.Row(1) }

func dropDatabase(tb testing.TB, dsn, db string) {
	opts, err := clickhouse.ParseDSN(dsn)
	if err != nil {
		tb.Errorf("parsing dsn: %v", err)
		return
	}
	opts.Auth.Database = ""
	conn, err := clickhouse.Open(opts)
	if err != nil {
		tb.Errorf("connecting: %v", err)
		return
	}
	defer func() { _ = conn.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS `"+db+"`"); err != nil {
		tb.Errorf("dropping %s: %v", db, err)
	}
}
