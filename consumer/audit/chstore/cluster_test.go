package chstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/consumer/audit/audittest"
	"github.com/revoked-dev/revoked/consumer/audit/backends"
	"github.com/revoked-dev/revoked/consumer/audit/chstore"
	"github.com/revoked-dev/revoked/internal/testenv"
	"github.com/revoked-dev/revoked/schemas"
)

// envCluster names the test server's one-shard, one-replica cluster, with
// ZooKeeper behind it (.ci/clickhouse.sh).
const envCluster = "REVOKED_TEST_CLICKHOUSE_CLUSTER"

// openCluster returns a store of the cluster variant over a database of
// its own: ON CLUSTER DDL, ReplicatedReplacingMergeTree local tables and
// Distributed tables over them.
func openCluster(tb testing.TB, cluster string) (s *chstore.Store, database string) {
	tb.Helper()
	dsn := testenv.ClickHouseDSN(tb)
	db := testenv.UniqueName(tb, "revoked_test")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := chstore.Open(ctx, chstore.Config{DSN: dsn, Database: db, Table: "audit", Cluster: cluster}, zerolog.Nop())
	if err != nil {
		tb.Fatalf("chstore.Open on cluster %s: %v", cluster, err)
	}
	tb.Cleanup(func() {
		_ = s.Close()
		testenv.DropClickHouseDatabase(tb, dsn, db)
	})
	return s, db
}

// TestCluster runs the cluster variant on a real server: the statements
// RenderDDL writes for it create the replicated local tables and the
// Distributed tables through ZooKeeper's DDL queue, and the whole store
// contract holds through the Distributed tables. It exercises one shard of
// one replica: replication to a second replica and sharding across
// several shards are not exercised.
func TestCluster(t *testing.T) {
	t.Parallel()
	cluster := envOf(t, envCluster)
	t.Run("Tables", func(t *testing.T) {
		s, db := openCluster(t, cluster)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		for range 2 { // ON CLUSTER ... IF NOT EXISTS: idempotent too
			if err := s.Migrate(ctx); err != nil {
				t.Fatalf("Migrate: %v", err)
			}
		}
		var tables []string
		q := fmt.Sprintf("SELECT concat(name, ' ', engine) FROM system.tables WHERE database = '%s' ORDER BY name", db)
		if err := queryStrings(ctx, testenv.ClickHouseDSN(t), q, &tables); err != nil {
			t.Fatal(err)
		}
		want := []string{
			"audit Distributed",
			"audit_checkpoints Distributed",
			"audit_checkpoints_local ReplicatedReplacingMergeTree",
			"audit_local ReplicatedReplacingMergeTree",
		}
		if !slices.Equal(tables, want) {
			t.Errorf("tables: %q, want %q", tables, want)
		}
		// The replicas registered under the rendered ZooKeeper path, with
		// the server's macros filled in.
		var paths []string
		q = fmt.Sprintf("SELECT zookeeper_path FROM system.replicas WHERE database = '%s' ORDER BY table", db)
		if err := queryStrings(ctx, testenv.ClickHouseDSN(t), q, &paths); err != nil {
			t.Fatal(err)
		}
		wantPaths := []string{
			"/clickhouse/tables/01/" + db + "/audit_checkpoints_local",
			"/clickhouse/tables/01/" + db + "/audit_local",
		}
		if !slices.Equal(paths, wantPaths) {
			t.Errorf("replica paths: %q, want %q", paths, wantPaths)
		}
	})
	t.Run("Contract", func(t *testing.T) {
		audittest.Run(t, func(tb testing.TB) audit.Store {
			s, _ := openCluster(tb, cluster)
			return s
		})
	})
	t.Run("ReadOnlyUser", func(t *testing.T) {
		// The read path on a cluster: the read-only user reads the
		// Distributed tables.
		readDSN := envOf(t, envReadDSN)
		s, db := openCluster(t, cluster)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		var w written
		w.chain = "cluster-chain"
		for i := range 6 {
			w.rows = append(w.rows, audittest.Row(i))
		}
		w.rows = audittest.Link(w.chain, 0, "", w.rows)
		if err := s.Append(ctx, w.rows); err != nil {
			t.Fatal(err)
		}
		w.cps = []schemas.Checkpoint{schemas.NewCheckpoint(audittest.Signer(), w.chain, 6, w.rows[5].Hash, w.rows[5].Time)}
		if err := s.AppendCheckpoints(ctx, w.cps); err != nil {
			t.Fatal(err)
		}
		cfg := backends.Config{Backend: backends.ClickHouse, DSN: testenv.ClickHouseDSN(t), ReadDSN: readDSN,
			Database: db, Table: "audit", Cluster: cluster}
		reader, err := backends.OpenReader(ctx, cfg, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = reader.Close() }()
		readAll(ctx, t, "read-only user on the cluster", reader, w)
	})
}

// TestTTLRefusedByLegacyServer: a retention TTL on a server that predates
// TTL (18.16) is refused with ErrUnsupported when the store opens, through
// chstore and through backends, and nothing is created.
func TestTTLRefusedByLegacyServer(t *testing.T) {
	t.Parallel()
	dsn := testenv.ClickHouseDSN(t)
	db := testenv.UniqueName(t, "revoked_test")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	probe, err := chstore.Open(ctx, chstore.Config{DSN: dsn, Database: db}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	version := probe.ServerVersion()
	_ = probe.Close()
	if version.Modern() {
		t.Skipf("the test server is %s, which supports TTL", version)
	}
	s, err := chstore.Open(ctx, chstore.Config{DSN: dsn, Database: db, TTL: 24 * time.Hour}, zerolog.Nop())
	if !errors.Is(err, schemas.ErrUnsupported) {
		if s != nil {
			_ = s.Close()
		}
		t.Errorf("chstore.Open with a TTL on %s: %v, want ErrUnsupported", version, err)
	}
	_, err = backends.Open(ctx, backends.Config{Backend: backends.ClickHouse, DSN: dsn, Database: db, TTL: 24 * time.Hour}, zerolog.Nop())
	if !errors.Is(err, schemas.ErrUnsupported) {
		t.Errorf("backends.Open with a TTL on %s: %v, want ErrUnsupported", version, err)
	}
	var dbs []string
	if err := queryStrings(ctx, dsn, "SELECT name FROM system.databases WHERE name = '"+db+"'", &dbs); err != nil {
		t.Fatal(err)
	}
	if len(dbs) != 0 {
		testenv.DropClickHouseDatabase(t, dsn, db)
		t.Errorf("the refused TTL created database %s", db)
	}
}
