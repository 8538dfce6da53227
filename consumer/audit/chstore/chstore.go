// Package chstore is the audit.Store on a ClickHouse server (or cluster),
// over clickhouse-go's native protocol.
//
// It asks the server for its version when it opens and renders the DDL
// for it (schemas.RenderDDL): ClickHouse 18.16, which Debian ships, gets
// plain types; 20.3 and later get DateTime64, LowCardinality, codecs and
// skipping indexes. The queries are the same on every version.
package chstore

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/consumer/audit/internal/chsql"
	"github.com/revoked-dev/revoked/schemas"
)

// DefaultTable is the audit table's name unless configured.
const DefaultTable = "audit_trail"

// ErrInvalidConfig wraps every problem Config.Validate finds.
var ErrInvalidConfig = errors.New("invalid chstore config")

var _ audit.Store = (*Store)(nil)

// Config says where the audit trail lives.
type Config struct {
	// DSN is clickhouse://user:password@host:port/database?settings, as
	// clickhouse-go parses it (several hosts: host1:9000,host2:9000;
	// TLS: ?secure=true; ClickHouse settings as further parameters).
	// Required.
	DSN string
	// Database holds the table; default: the DSN's database, else
	// "default". Migrate creates it if missing.
	Database string
	// Table names the audit table (default "audit_trail"); with Cluster it
	// names the Distributed table, and the rows live in <Table>_local.
	Table string
	// Cluster, when set, makes Migrate create the cluster variant (ON
	// CLUSTER, ReplicatedReplacingMergeTree, Distributed) and inserts wait
	// until every shard has the rows (insert_distributed_sync).
	Cluster string
	// TTL drops rows older than this (needs ClickHouse 20.3 or later).
	TTL time.Duration
}

// String prints the config with the DSN's password masked, so the config
// can be logged.
func (c Config) String() string {
	return fmt.Sprintf("{DSN:%s Database:%s Table:%s Cluster:%s TTL:%s}", RedactDSN(c.DSN), c.Database, c.Table, c.Cluster, c.TTL)
}

// GoString masks the password under %#v too.
func (c Config) GoString() string { return "chstore.Config" + c.String() }

// RedactDSN returns dsn with its password replaced by ********.
func RedactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable DSN)"
	}
	// url.URL.Redacted writes "xxxxx"; keep the project's ********.
	return strings.Replace(u.Redacted(), ":xxxxx@", ":********@", 1)
}

func (c *Config) setDefaults() {
	if c.Table == "" {
		c.Table = DefaultTable
	}
}

// Validate reports every problem with the config at once (defaults
// applied; the server's version is checked by Open).
func (c Config) Validate() error {
	c.setDefaults()
	var errs []error
	if c.DSN == "" {
		errs = append(errs, fmt.Errorf("%w: dsn is required", ErrInvalidConfig))
	} else if _, err := clickhouse.ParseDSN(c.DSN); err != nil {
		errs = append(errs, fmt.Errorf("%w: dsn %s: %w", ErrInvalidConfig, RedactDSN(c.DSN), err))
	}
	// The DDL rules on names and TTL, checked with a stand-in modern
	// version; the real version is checked again by Open.
	ddl := schemas.DDLOptions{Database: c.Database, Table: c.Table, Cluster: c.Cluster, TTL: c.TTL, ServerVersion: schemas.ServerVersion{Major: 99}}
	if ddl.Database == "" {
		ddl.Database = "default"
	}
	if err := ddl.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("%w: %w", ErrInvalidConfig, err))
	}
	return errors.Join(errs...)
}

// Store is the audit trail in a ClickHouse server.
type Store struct {
	conn    driver.Conn
	table   string // qualified, quoted
	cpTable string // the checkpoint table, qualified, quoted
	ddl     []string
	ddlOpts schemas.DDLOptions
	// chOpts are the connection's options, for Migrate's connections to
	// each server of a cluster on ClickHouse before 20.3.
	chOpts  *clickhouse.Options
	version schemas.ServerVersion
	log     zerolog.Logger
	closed  atomic.Bool
}

// Open connects to the server, reads its version and renders the DDL for
// it. It does not create anything: call Migrate.
func Open(ctx context.Context, cfg Config, log zerolog.Logger) (*Store, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	opts, err := clickhouse.ParseDSN(cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("%w: dsn %s: %w", ErrInvalidConfig, RedactDSN(cfg.DSN), err)
	}
	database := cfg.Database
	if database == "" {
		database = opts.Auth.Database
	}
	if database == "" {
		database = "default"
	}
	// Connect without selecting a database: it may not exist before
	// Migrate. Every statement names the table in full.
	opts.Auth.Database = ""
	if cfg.Cluster != "" {
		if opts.Settings == nil {
			opts.Settings = clickhouse.Settings{}
		}
		opts.Settings["insert_distributed_sync"] = 1
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("chstore: connecting to %s: %w", RedactDSN(cfg.DSN), err)
	}
	var vs string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&vs); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("chstore: reading the server version at %s: %w", RedactDSN(cfg.DSN), err)
	}
	version, err := schemas.ParseServerVersion(vs)
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("chstore: %w", err)
	}
	ddlOpts := schemas.DDLOptions{
		Database: database, Table: cfg.Table, ServerVersion: version, Cluster: cfg.Cluster, TTL: cfg.TTL,
	}
	ddl, err := schemas.RenderDDL(ddlOpts)
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("chstore: %w", err)
	}
	cpDDL, err := schemas.RenderCheckpointDDL(ddlOpts)
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("chstore: %w", err)
	}
	ddl = append(ddl, cpDDL...)
	s := &Store{
		conn:    conn,
		table:   chsql.Table(database, cfg.Table),
		cpTable: chsql.Table(database, schemas.CheckpointTable(cfg.Table)),
		ddl:     ddl,
		ddlOpts: ddlOpts,
		chOpts:  opts,
		version: version,
		log:     log.With().Str("component", "audit-chstore").Str("table", database+"."+cfg.Table).Logger(),
	}
	s.log.Info().Str("server_version", vs).Bool("modern_schema", version.Modern()).Msg("connected to ClickHouse")
	return s, nil
}

// ServerVersion is the version the server reported.
func (s *Store) ServerVersion() schemas.ServerVersion { return s.version }

func (s *Store) check() error {
	if s.closed.Load() {
		return fmt.Errorf("chstore: %w", audit.ErrClosed)
	}
	return nil
}

// Migrate implements audit.Store: it creates the database and tables
// where missing, then adds to an audit table an earlier release created
// the columns added since (schemas.AddedAuditColumns), so that a consumer
// upgraded in place keeps the trail it has. Old rows read back with the
// new columns empty, and hash as they did.
//
// On a cluster the columns go to the local tables (ON CLUSTER) and to the
// Distributed table: ON CLUSTER on 20.3 and later; before that the server
// refuses ALTER ON CLUSTER of a Distributed table over replicated shards
// (see schemas.RenderAddColumns), so Migrate alters the Distributed table
// on every server the DSN names, one connection each. A server outside
// the DSN with its own Distributed table needs the same ALTER by hand.
func (s *Store) Migrate(ctx context.Context) error {
	if err := s.check(); err != nil {
		return err
	}
	for _, stmt := range s.ddl {
		if err := s.conn.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("chstore: migrating: %w", err)
		}
	}
	if err := s.addColumns(ctx); err != nil {
		return fmt.Errorf("chstore: migrating: %w", err)
	}
	return nil
}

// addColumns adds the columns an existing audit table lacks (Migrate).
func (s *Store) addColumns(ctx context.Context) error {
	local := s.ddlOpts.Table
	if s.ddlOpts.Cluster != "" {
		local += "_local"
	}
	if err := s.addMissing(ctx, s.conn, local, false); err != nil {
		return err
	}
	if s.ddlOpts.Cluster == "" {
		return nil
	}
	if s.version.Modern() {
		return s.addMissing(ctx, s.conn, s.ddlOpts.Table, true)
	}
	for _, addr := range s.chOpts.Addr {
		opts := *s.chOpts
		opts.Addr = []string{addr}
		conn, err := clickhouse.Open(&opts)
		if err != nil {
			return fmt.Errorf("connecting to %s: %w", addr, err)
		}
		err = s.addMissing(ctx, conn, s.ddlOpts.Table, true)
		if cerr := conn.Close(); err == nil && cerr != nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("server %s: %w", addr, err)
		}
	}
	return nil
}

// addMissing adds to table, over conn, the added columns it lacks. On a
// server that cannot say ADD COLUMN IF NOT EXISTS, a migration running at
// the same time may add them first: the ALTER then fails, and succeeds in
// effect once the table has them all.
func (s *Store) addMissing(ctx context.Context, conn driver.Conn, table string, distributed bool) error {
	missing, err := missingColumns(ctx, conn, s.ddlOpts.Database, table)
	if err != nil || len(missing) == 0 {
		return err
	}
	stmt, err := schemas.RenderAddColumns(s.ddlOpts, distributed, missing)
	if err != nil {
		return err
	}
	if err := conn.Exec(ctx, stmt); err != nil {
		if again, cerr := missingColumns(ctx, conn, s.ddlOpts.Database, table); cerr == nil && len(again) == 0 {
			return nil
		}
		return fmt.Errorf("adding %s to %s: %w", strings.Join(missing, ", "), table, err)
	}
	s.log.Info().Str("table", s.ddlOpts.Database+"."+table).Strs("columns", missing).Msg("added columns to an audit table of an earlier release")
	return nil
}

// missingColumns lists the columns of schemas.AddedAuditColumns that table
// lacks.
func missingColumns(ctx context.Context, conn driver.Conn, database, table string) ([]string, error) {
	rows, err := conn.Query(ctx, chsql.TableColumns(database, table))
	if err != nil {
		return nil, fmt.Errorf("reading the columns of %s.%s: %w", database, table, err)
	}
	defer func() { _ = rows.Close() }()
	have := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, fmt.Errorf("reading the columns of %s.%s: %w", database, table, err)
		}
		have[name] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the columns of %s.%s: %w", database, table, err)
	}
	return chsql.Missing(have), nil
}

// batchContext is the context of one batch insert (PrepareBatch, Append,
// Send): it ends when ctx ends while the insert is under way, and never
// after done. clickhouse-go's batch.Send closes the connection's socket
// from a goroutine that watches the batch's context (contextWatchdog)
// until Send returns; a goroutine that has not run yet when Send returns
// and the context ends (the audit Writer cancels its flush timeout right
// then) sees both at once, may take the end, and closes the socket of a
// connection already back in the pool without marking it closed: the
// next insert on it fails with "use of closed network connection". That
// needs the goroutine starved for a whole insert, which CI's parallel
// -race packages managed (TestContract/WriterConcurrentChain) and the
// audit bench did twice. The context, derived from none, is garbage once
// done; there is nothing to release.
func batchContext(ctx context.Context) (context.Context, func()) {
	bctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, cancel)
	return bctx, func() { stop() }
}

// Append implements audit.Store: one INSERT, committed by the server
// before Append returns. The rows go column by column (one slice per
// column, see columns), which costs clickhouse-go a fraction of appending
// them row by row through 40 interface values each.
func (s *Store) Append(ctx context.Context, rows []schemas.AuditRow) error {
	if err := s.check(); err != nil {
		return err
	}
	if len(rows) == 0 {
		return nil
	}
	if err := audit.ValidateRows(rows); err != nil {
		return err
	}
	bctx, done := batchContext(ctx)
	defer done()
	batch, err := s.conn.PrepareBatch(bctx, chsql.Insert(s.table))
	if err != nil {
		return fmt.Errorf("chstore: preparing insert: %w", err)
	}
	defer func() { _ = batch.Close() }()
	for i, col := range columns(rows) {
		if err := batch.Column(i).Append(col); err != nil {
			_ = batch.Abort()
			return fmt.Errorf("chstore: encoding column %s: %w", schemas.AuditColumnNames()[i], err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("chstore: inserting %d rows: %w", len(rows), err)
	}
	return nil
}

// columns returns the rows' stored values (chsql.StoredRow) as one slice
// per column, in column order (schemas.AuditColumns).
func columns(rows []schemas.AuditRow) []any {
	n := len(rows)
	str := func() []string { return make([]string, n) }
	ts := func() []time.Time { return make([]time.Time, n) }
	var (
		rowID, chain, commandID, step, detail, issuer, actor, approver = str(), str(), str(), str(), str(), str(), str(), str()
		kind, user, tokenID, session, client, action, mode, rule       = str(), str(), str(), str(), str(), str(), str(), str()
		severity, summary, idpResponse, proof, topic, prevHash, hash   = str(), str(), str(), str(), str(), str(), str()
		at, first, last, detected, issued, expires                     = ts(), ts(), ts(), ts(), ts(), ts()
		seq                                                            = make([]uint64, n)
		incl                                                           = make([]uint8, n)
		ruleVersion, tokensRevoked, attempts                           = make([]uint32, n), make([]uint32, n), make([]uint32, n)
		evidence, evidenceContext                                      = make([][]string, n), make([][]string, n)
		idpStatus                                                      = make([]uint16, n)
		detectLatency, revokeLatency, offset                           = make([]int64, n), make([]int64, n), make([]int64, n)
		partition                                                      = make([]int32, n)
	)
	for i := range rows {
		r := chsql.StoredRow(rows[i])
		rowID[i], chain[i], seq[i], at[i] = r.RowID, r.Chain, r.Seq, r.Time
		commandID[i], step[i], detail[i] = r.CommandID, string(r.Step), r.Detail
		issuer[i], actor[i], approver[i] = r.Issuer, r.Actor, r.Approver
		kind[i], user[i], tokenID[i], session[i], client[i], incl[i] = string(r.TargetKind), r.UserID, r.TokenID, r.SessionID, r.ClientID, chsql.Bool(r.IncludeDownscoped)
		action[i], mode[i] = string(r.Action), string(r.Mode)
		rule[i], ruleVersion[i], severity[i], summary[i], evidence[i] = r.RuleID, r.RuleVersion, string(r.Severity), r.Summary, r.Evidence
		evidenceContext[i] = r.EvidenceContext
		first[i], last[i], detected[i], issued[i], expires[i] = r.FirstEventTime, r.LastEventTime, r.DetectedAt, r.IssuedAt, r.ExpiresAt
		idpStatus[i], idpResponse[i], tokensRevoked[i], proof[i], attempts[i] = r.IdPStatus, r.IdPResponse, r.TokensRevoked, r.Proof, r.Attempts
		detectLatency[i], revokeLatency[i] = r.DetectLatencyMs, r.RevokeLatencyMs
		topic[i], partition[i], offset[i] = r.SourceTopic, r.SourcePartition, r.SourceOffset
		prevHash[i], hash[i] = r.PrevHash, r.Hash
	}
	return []any{
		rowID, chain, seq, at,
		commandID, step, detail,
		issuer, actor, approver,
		kind, user, tokenID, session, client, incl,
		action, mode,
		rule, ruleVersion, severity, summary, evidence, evidenceContext,
		first, last, detected, issued, expires,
		idpStatus, idpResponse, tokensRevoked, proof, attempts,
		detectLatency, revokeLatency,
		topic, partition, offset,
		prevHash, hash,
	}
}

func (s *Store) query(ctx context.Context, what, sql string, args ...any) ([]schemas.AuditRow, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	rows, err := s.conn.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("chstore: %s: %w", what, err)
	}
	defer func() { _ = rows.Close() }()
	var out []schemas.AuditRow
	for rows.Next() {
		var (
			r                                  schemas.AuditRow
			step, kind, action, mode, severity string
			incl                               uint8
		)
		err := rows.Scan(
			&r.RowID, &r.Chain, &r.Seq, &r.Time,
			&r.CommandID, &step, &r.Detail,
			&r.Issuer, &r.Actor, &r.Approver,
			&kind, &r.UserID, &r.TokenID, &r.SessionID, &r.ClientID, &incl,
			&action, &mode,
			&r.RuleID, &r.RuleVersion, &severity, &r.Summary, &r.Evidence, &r.EvidenceContext,
			&r.FirstEventTime, &r.LastEventTime, &r.DetectedAt, &r.IssuedAt, &r.ExpiresAt,
			&r.IdPStatus, &r.IdPResponse, &r.TokensRevoked, &r.Proof, &r.Attempts,
			&r.DetectLatencyMs, &r.RevokeLatencyMs,
			&r.SourceTopic, &r.SourcePartition, &r.SourceOffset,
			&r.PrevHash, &r.Hash,
		)
		if err != nil {
			return nil, fmt.Errorf("chstore: %s: reading a row: %w", what, err)
		}
		r.Step, r.TargetKind, r.Action, r.Mode, r.Severity = schemas.Step(step), schemas.TargetKind(kind), schemas.Action(action), schemas.Mode(mode), schemas.Severity(severity)
		r.IncludeDownscoped = incl != 0
		chsql.LoadRow(&r)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("chstore: %s: %w", what, err)
	}
	return out, nil
}

// CommandRows implements audit.Store.
func (s *Store) CommandRows(ctx context.Context, commandID string) ([]schemas.AuditRow, error) {
	return s.query(ctx, "reading a command's rows", chsql.CommandRows(s.table, commandID))
}

// ChainHead implements audit.Store.
func (s *Store) ChainHead(ctx context.Context, chain string) (uint64, string, error) {
	if err := s.check(); err != nil {
		return 0, "", err
	}
	rows, err := s.conn.Query(ctx, chsql.ChainHead(s.table, chain))
	if err != nil {
		return 0, "", fmt.Errorf("chstore: reading the head of chain %q: %w", chain, err)
	}
	defer func() { _ = rows.Close() }()
	var (
		seq  uint64
		hash string
	)
	if rows.Next() {
		if err := rows.Scan(&seq, &hash); err != nil {
			return 0, "", fmt.Errorf("chstore: reading the head of chain %q: %w", chain, err)
		}
	}
	if err := rows.Err(); err != nil {
		return 0, "", fmt.Errorf("chstore: reading the head of chain %q: %w", chain, err)
	}
	return seq, hash, nil
}

// ChainRows implements audit.Store.
func (s *Store) ChainRows(ctx context.Context, chain string, afterSeq uint64, limit int) ([]schemas.AuditRow, error) {
	return s.query(ctx, "reading a chain", chsql.ChainRows(s.table, chain, afterSeq, limit))
}

// History implements audit.Store.
func (s *Store) History(ctx context.Context, q audit.Query) ([]schemas.AuditRow, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	st, fallback := chsql.History(s.table, s.version.Modern(), q)
	rows, err := s.query(ctx, "reading history", st.SQL, args(st)...)
	if err == nil && fallback != nil && len(rows) < q.Limit {
		rows, err = s.query(ctx, "reading history", fallback.SQL, args(*fallback)...)
	}
	return rows, err
}

// Latest implements audit.Store.
func (s *Store) Latest(ctx context.Context, q audit.Query) (time.Time, error) {
	if err := q.Validate(); err != nil {
		return time.Time{}, err
	}
	if err := s.check(); err != nil {
		return time.Time{}, err
	}
	st := chsql.Latest(s.table, s.version.Modern(), q)
	var secs uint32
	if err := s.conn.QueryRow(ctx, st.SQL, args(st)...).Scan(&secs); err != nil {
		return time.Time{}, fmt.Errorf("chstore: latest: %w", err)
	}
	if secs == 0 {
		return time.Time{}, nil
	}
	return time.Unix(int64(secs), 0).UTC(), nil
}

// TimePrecision implements audit.Store: DateTime64(3) on modern servers,
// DateTime before (schemas.AuditColumns).
func (s *Store) TimePrecision() time.Duration {
	if s.version.Modern() {
		return time.Millisecond
	}
	return time.Second
}

// args are a statement's bound values, for clickhouse-go to bind to its ?
// placeholders.
func args(st chsql.Stmt) []any {
	out := make([]any, len(st.Args))
	for i, a := range st.Args {
		out[i] = a
	}
	return out
}

// Stats implements audit.Store: one aggregating query (chsql.Stats),
// computed by the server.
func (s *Store) Stats(ctx context.Context, q audit.StatsQuery) (audit.Stats, error) {
	if err := q.Validate(); err != nil {
		return audit.Stats{}, err
	}
	if err := s.check(); err != nil {
		return audit.Stats{}, err
	}
	q = q.Normalized()
	st := audit.Stats{From: q.From, To: q.To, Bucket: q.Bucket, Outcomes: []audit.OutcomePoint{}, Latency: []audit.LatencyPoint{}}
	err := s.scan(ctx, chsql.Stats(s.table, s.version.Modern(), q), func(rows driver.Rows) error {
		var (
			kind       uint8
			bucket, n  uint64
			rule, step string
			rq, dq     []int64
			rmax, dmax int64
		)
		if err := rows.Scan(&kind, &bucket, &rule, &step, &n, &rq, &rmax, &dq, &dmax); err != nil {
			return err
		}
		chsql.AddStats(&st, kind, bucket, rule, step, n, rq, rmax, dq, dmax)
		return nil
	})
	if err != nil {
		return audit.Stats{}, fmt.Errorf("chstore: stats: %w", err)
	}
	audit.SortOutcomes(st.Outcomes)
	return st, nil
}

// scan runs a query and calls fn for each row of its result.
func (s *Store) scan(ctx context.Context, sql string, fn func(driver.Rows) error) error {
	rows, err := s.conn.Query(ctx, sql)
	if err != nil {
		return err
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// AppendCheckpoints implements audit.Store: one INSERT into the
// checkpoint table.
func (s *Store) AppendCheckpoints(ctx context.Context, cps []schemas.Checkpoint) error {
	if err := s.check(); err != nil {
		return err
	}
	if len(cps) == 0 {
		return nil
	}
	if err := audit.ValidateCheckpoints(cps); err != nil {
		return err
	}
	bctx, done := batchContext(ctx)
	defer done()
	batch, err := s.conn.PrepareBatch(bctx, chsql.CheckpointInsert(s.cpTable))
	if err != nil {
		return fmt.Errorf("chstore: preparing checkpoint insert: %w", err)
	}
	defer func() { _ = batch.Close() }()
	for i, c := range cps {
		if err := batch.Append(c.Chain, c.Seq, c.Hash, c.Time.UTC(), c.KeyID, c.Signature); err != nil {
			_ = batch.Abort()
			return fmt.Errorf("chstore: encoding checkpoint %d (chain %q seq %d): %w", i, c.Chain, c.Seq, err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("chstore: inserting %d checkpoints: %w", len(cps), err)
	}
	return nil
}

// Checkpoints implements audit.Store.
func (s *Store) Checkpoints(ctx context.Context, chain string, afterSeq uint64, limit int) ([]schemas.Checkpoint, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	rows, err := s.conn.Query(ctx, chsql.Checkpoints(s.cpTable, chain, afterSeq, limit))
	if err != nil {
		return nil, fmt.Errorf("chstore: reading the checkpoints of chain %q: %w", chain, err)
	}
	defer func() { _ = rows.Close() }()
	var out []schemas.Checkpoint
	for rows.Next() {
		var c schemas.Checkpoint
		if err := rows.Scan(&c.Chain, &c.Seq, &c.Hash, &c.Time, &c.KeyID, &c.Signature); err != nil {
			return nil, fmt.Errorf("chstore: reading the checkpoints of chain %q: %w", chain, err)
		}
		c.Time = c.Time.UTC()
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("chstore: reading the checkpoints of chain %q: %w", chain, err)
	}
	return out, nil
}

// Chains implements audit.Store.
func (s *Store) Chains(ctx context.Context) ([]string, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	rows, err := s.conn.Query(ctx, chsql.Chains(s.table, s.cpTable))
	if err != nil {
		return nil, fmt.Errorf("chstore: listing chains: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var out []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, fmt.Errorf("chstore: listing chains: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("chstore: listing chains: %w", err)
	}
	return out, nil
}

// Ping implements audit.Store.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.check(); err != nil {
		return err
	}
	if err := s.conn.Ping(ctx); err != nil {
		return fmt.Errorf("chstore: ping: %w", err)
	}
	return nil
}

// Close implements audit.Store.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if err := s.conn.Close(); err != nil {
		return fmt.Errorf("chstore: closing: %w", err)
	}
	return nil
}
