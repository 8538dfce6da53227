// Package backends opens the audit.Store a configuration names: a
// ClickHouse server (chstore) or embedded chDB (chdbstore).
package backends

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/consumer/audit/chdbstore"
	"github.com/revoked-dev/revoked/consumer/audit/chstore"
	"github.com/revoked-dev/revoked/schemas"
)

// Backend names.
const (
	// ChDB is the ClickHouse engine in-process, data in ChDBPath: the
	// embedded default of a local run.
	ChDB = "chdb"
	// ClickHouse is a ClickHouse server or cluster at DSN.
	ClickHouse = "clickhouse"
)

// ErrInvalidConfig wraps every problem Config.Validate finds.
var ErrInvalidConfig = errors.New("invalid audit backend config")

// ErrReadOnly is the error of every write (Migrate, Append,
// AppendCheckpoints) through a store opened for the read path.
var ErrReadOnly = errors.New("the audit store is open for reading only")

// Config selects and configures the audit store. Its tags name it for
// internal/config: nested under a prefix such as -audit / REVOKED_AUDIT,
// Backend is -audit.backend and REVOKED_AUDIT_BACKEND.
type Config struct {
	// Backend is "chdb" or "clickhouse". Required.
	Backend string `flag:"backend" env:"BACKEND" yaml:"backend" usage:"audit store: chdb (embedded, data in chdb-path) or clickhouse (a server at dsn)"`
	// DSN of the ClickHouse server (clickhouse backend):
	// clickhouse://user:password@host:9000/database. It holds a password:
	// Config prints it masked.
	DSN string `flag:"dsn" env:"DSN" yaml:"dsn" usage:"ClickHouse DSN, clickhouse://user:password@host:9000/database (clickhouse backend)"`
	// ReadDSN, when set, is the DSN of a read-only ClickHouse user that the
	// read path (the analysts' API, history, verify, export) connects as,
	// so a leaked analyst credential or a bug there cannot alter the trail.
	// Give the user a profile with readonly=2: it refuses INSERT, ALTER,
	// CREATE and DROP like readonly=1, but accepts the settings a query
	// carries, and clickhouse-go sends max_execution_time with every query
	// whose context has a deadline. Under readonly=1, ClickHouse 18.16
	// silently drops those settings and later servers refuse the query
	// ("Cannot modify 'max_execution_time' setting in readonly mode").
	// Nothing is ever migrated through it. Clickhouse backend only: chDB
	// has no users. Config prints it masked, like DSN.
	ReadDSN string `flag:"read-dsn" env:"READ_DSN" yaml:"read_dsn" usage:"DSN of a read-only ClickHouse user (profile readonly=2) for the analysts' API, history, verify and export (clickhouse backend; default: dsn)"`
	// ChDBPath is chDB's data directory (chdb backend).
	ChDBPath string `flag:"chdb-path" env:"CHDB_PATH" yaml:"chdb_path" usage:"chDB data directory, one process at a time (chdb backend)"`
	// ChDBLibPath is libchdb.so (chdb backend; default $CHDB_LIB_PATH).
	ChDBLibPath string `flag:"chdb-lib-path" env:"CHDB_LIB_PATH" yaml:"chdb_lib_path" usage:"libchdb.so (chdb backend; default $CHDB_LIB_PATH)"`
	// ChDBNice lowers the CPU priority of the embedded engine's work below
	// the process's, by this nice increment (chdb backend; see
	// chdbstore.Config.Nice).
	ChDBNice int `flag:"chdb-nice" env:"CHDB_NICE" yaml:"chdb_nice" usage:"lower the embedded engine's CPU priority below the pipeline's by this nice increment, 1-19 (chdb backend; 0: 19; -1: the process's own priority)"`
	// Database and Table name the audit table (defaults: the DSN's
	// database or "default", and "audit_trail").
	Database string `flag:"database" env:"DATABASE" yaml:"database" usage:"database of the audit table (default: the DSN's, else default)"`
	Table    string `flag:"table" env:"TABLE" yaml:"table" usage:"audit table (default audit_trail)"`
	// Cluster renders the cluster variant of the table (clickhouse
	// backend only).
	Cluster string `flag:"cluster" env:"CLUSTER" yaml:"cluster" usage:"ClickHouse cluster: replicated local tables under a Distributed table (clickhouse backend)"`
	// TTL drops rows older than this (ClickHouse 20.3 or later, or chDB).
	TTL time.Duration `flag:"ttl" env:"TTL" yaml:"ttl" usage:"drop audit rows older than this, whole months at a time (0: keep forever; ClickHouse 20.3+ or chdb)"`
	// SkipMigrate leaves the database objects alone at Open, for
	// deployments where they are created by an administrator.
	SkipMigrate bool `flag:"skip-migrate" env:"SKIP_MIGRATE" yaml:"skip_migrate" usage:"do not create the audit database and table at start"`
	// SpoolDir, when set, is a local directory where the consumer spools
	// audit rows durably while the store is down, and drains them into
	// the store when it is back (package spool), so revocation does not
	// wait on the store. Empty: no spool; while the store is down the
	// consumer retries each command and commits nothing. One process at a
	// time may use a directory; keep it on a disk that survives restarts.
	SpoolDir string `flag:"spool-dir" env:"SPOOL_DIR" yaml:"spool_dir" usage:"directory where the consumer spools audit rows while the audit store is down (empty: no spool; revocation waits for the store)"`
}

// String prints the config with the DSN's password masked.
func (c Config) String() string {
	readDSN := ""
	if c.ReadDSN != "" {
		readDSN = chstore.RedactDSN(c.ReadDSN)
	}
	return fmt.Sprintf("{Backend:%s DSN:%s ReadDSN:%s ChDBPath:%s ChDBLibPath:%s ChDBNice:%d Database:%s Table:%s Cluster:%s TTL:%s SkipMigrate:%t SpoolDir:%s}",
		c.Backend, chstore.RedactDSN(c.DSN), readDSN, c.ChDBPath, c.ChDBLibPath, c.ChDBNice, c.Database, c.Table, c.Cluster, c.TTL, c.SkipMigrate, c.SpoolDir)
}

// GoString masks the password under %#v too.
func (c Config) GoString() string { return "backends.Config" + c.String() }

func (c Config) clickhouse() chstore.Config {
	return chstore.Config{DSN: c.DSN, Database: c.Database, Table: c.Table, Cluster: c.Cluster, TTL: c.TTL}
}

// reader is the chstore config of the read-only connection: ReadDSN, the
// same table, and neither Cluster nor TTL, which only shape the DDL and
// inserts (Cluster also makes chstore send insert_distributed_sync with
// every query) and so would be a setting or a version check the reader
// does not need. Reads name the Distributed table on a cluster too.
func (c Config) reader() chstore.Config {
	return chstore.Config{DSN: c.ReadDSN, Database: c.Database, Table: c.Table}
}

func (c Config) chdb() chdbstore.Config {
	return chdbstore.Config{Path: c.ChDBPath, Database: c.Database, Table: c.Table, LibPath: c.ChDBLibPath, TTL: c.TTL, Nice: c.ChDBNice}
}

// Validate reports every problem with the config at once, including the
// chosen backend's.
func (c Config) Validate() error {
	var errs []error
	switch c.Backend {
	case ClickHouse:
		if c.ChDBPath != "" {
			errs = append(errs, fmt.Errorf("%w: chdb path is set but the backend is %q", ErrInvalidConfig, c.Backend))
		}
		if err := c.clickhouse().Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%w: %w", ErrInvalidConfig, err))
		}
		if c.ReadDSN != "" {
			if err := c.reader().Validate(); err != nil {
				errs = append(errs, fmt.Errorf("%w: read dsn: %w", ErrInvalidConfig, err))
			}
		}
	case ChDB:
		if c.DSN != "" {
			errs = append(errs, fmt.Errorf("%w: dsn is set but the backend is %q", ErrInvalidConfig, c.Backend))
		}
		if c.ReadDSN != "" {
			errs = append(errs, fmt.Errorf("%w: read dsn is set but the backend is %q, which has no users: the read path shares the store", ErrInvalidConfig, c.Backend))
		}
		if c.Cluster != "" {
			errs = append(errs, fmt.Errorf("%w: cluster needs the %q backend", ErrInvalidConfig, ClickHouse))
		}
		if err := c.chdb().Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%w: %w", ErrInvalidConfig, err))
		}
	case "":
		errs = append(errs, fmt.Errorf("%w: backend is required (%q or %q)", ErrInvalidConfig, ChDB, ClickHouse))
	default:
		errs = append(errs, fmt.Errorf("%w: unknown backend %q (want %q or %q)", ErrInvalidConfig, c.Backend, ChDB, ClickHouse))
	}
	return errors.Join(errs...)
}

// Open opens the configured store and, unless SkipMigrate, creates its
// database objects if missing. The caller closes the store.
func Open(ctx context.Context, cfg Config, log zerolog.Logger) (audit.Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var (
		s   audit.Store
		err error
	)
	switch cfg.Backend {
	case ClickHouse:
		s, err = chstore.Open(ctx, cfg.clickhouse(), log)
	case ChDB:
		s, err = chdbstore.Open(ctx, cfg.chdb(), log)
	}
	if err != nil {
		return nil, fmt.Errorf("opening the %s audit store: %w", cfg.Backend, err)
	}
	if !cfg.SkipMigrate {
		if err := s.Migrate(ctx); err != nil {
			_ = s.Close()
			return nil, fmt.Errorf("migrating the %s audit store: %w", cfg.Backend, err)
		}
	}
	return s, nil
}

// OpenReader opens the store the read path uses: the analysts' API and
// the history, verify and export commands. With ReadDSN (clickhouse
// backend) it connects as that read-only user and never migrates: the
// writer, or an administrator, creates the tables. Without ReadDSN it is
// Open's store (migrated unless SkipMigrate, as before). Either way the
// store it returns refuses writes with ErrReadOnly before they reach the
// server; the read-only user is the second line, enforced by ClickHouse.
// The caller closes the store.
func OpenReader(ctx context.Context, cfg Config, log zerolog.Logger) (audit.Store, error) {
	if cfg.ReadDSN == "" {
		s, err := Open(ctx, cfg, log)
		if err != nil {
			return nil, err
		}
		return ReadOnly(s), nil
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s, err := chstore.Open(ctx, cfg.reader(), log.With().Str("audit_role", "reader").Logger())
	if err != nil {
		return nil, fmt.Errorf("opening the %s audit store with the read dsn: %w", cfg.Backend, err)
	}
	return ReadOnly(s), nil
}

// ReadOnly returns s with its writes refused: Migrate, Append and
// AppendCheckpoints fail with ErrReadOnly and touch nothing. Every other
// method, Close included, is s's.
func ReadOnly(s audit.Store) audit.Store {
	if r, ok := s.(readOnly); ok {
		return r
	}
	return readOnly{s}
}

// readOnly embeds the store, so the read methods the Store interface
// gains pass through without a change here.
type readOnly struct{ audit.Store }

var _ audit.Store = readOnly{}

func (readOnly) Migrate(context.Context) error {
	return fmt.Errorf("migrating: %w", ErrReadOnly)
}

func (readOnly) Append(_ context.Context, rows []schemas.AuditRow) error {
	return fmt.Errorf("appending %d rows: %w", len(rows), ErrReadOnly)
}

func (readOnly) AppendCheckpoints(_ context.Context, cps []schemas.Checkpoint) error {
	return fmt.Errorf("appending %d checkpoints: %w", len(cps), ErrReadOnly)
}
