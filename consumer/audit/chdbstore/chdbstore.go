// Package chdbstore is the audit.Store on chDB: the ClickHouse engine
// (26.7) running inside the process, its data in a directory on disk. It
// is the embedded default of the local deployment; it needs libchdb.so
// (deployments/local/install-libchdb.sh) at run time and no cgo.
//
// chDB runs one data directory per process: Stores opened on the same
// directory share one engine connection, Open on a second directory fails
// with ErrBusy until every Store on the first is closed, and a directory
// held by another process fails with ErrLocked. Statements run one at a
// time; a statement cannot be interrupted, so ctx is checked before each.
//
// Rows go in as one INSERT ... FORMAT TabSeparated statement per Append,
// the rows escaped by AppendTSVRow after the FORMAT clause, or, from 256
// KiB of rows on, in a file the statement reads (FROM INFILE); either way
// the engine reads them as data, never as SQL; the filters of History and
// Latest are bound as query parameters (chdb_query_with_params), others
// quoted by chsql.Quote. Checkpoints go in as JSONEachRow, and results come
// back as JSONEachRow.
package chdbstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/consumer/audit/internal/chsql"
	"github.com/revoked-dev/revoked/schemas"
)

// Defaults.
const (
	DefaultDatabase = "default"
	DefaultTable    = "audit_trail"
	// DefaultLibPath is used when neither Config.LibPath nor CHDB_LIB_PATH
	// names the library: the dynamic linker's search path.
	DefaultLibPath = "libchdb.so"
	// EnvLibPath names the library, as chdb-go reads it too.
	EnvLibPath = "CHDB_LIB_PATH"
)

// ErrInvalidConfig wraps every problem Config.Validate finds.
var ErrInvalidConfig = errors.New("invalid chdbstore config")

var _ audit.Store = (*Store)(nil)

// Config says where the embedded audit trail lives.
type Config struct {
	// Path is the data directory; created if missing. Required.
	Path string
	// Database and Table name the audit table (default "default" and
	// "audit_trail").
	Database string
	Table    string
	// LibPath is libchdb.so (default: $CHDB_LIB_PATH, else the dynamic
	// linker's search path). The first Open in a process loads it; later
	// ones must name the same file.
	LibPath string
	// TTL drops rows older than this.
	TTL time.Duration
	// Nice lowers the CPU priority of the engine's work below the
	// process's: every call into the engine runs on a thread of its own
	// whose nice value is raised by Nice (up to 19), and the engine's
	// threads inherit it. 0 means DefaultNice; a negative value runs the
	// engine at the process's priority. The first Open of a process sets
	// it for the process's engine.
	Nice int
}

func (c *Config) setDefaults() {
	if c.Database == "" {
		c.Database = DefaultDatabase
	}
	if c.Table == "" {
		c.Table = DefaultTable
	}
	if c.LibPath == "" {
		c.LibPath = os.Getenv(EnvLibPath)
	}
	if c.LibPath == "" {
		c.LibPath = DefaultLibPath
	}
}

// Validate reports every problem with the config at once (defaults
// applied).
func (c Config) Validate() error {
	c.setDefaults()
	var errs []error
	if c.Path == "" {
		errs = append(errs, fmt.Errorf("%w: path is required", ErrInvalidConfig))
	} else if strings.ContainsAny(c.Path, "\x00?") {
		// The engine takes the path as a command-line argument; keep it
		// plain.
		errs = append(errs, fmt.Errorf("%w: path %q contains NUL or '?'", ErrInvalidConfig, c.Path))
	}
	if c.Nice > MaxNice {
		errs = append(errs, fmt.Errorf("%w: nice %d is above %d", ErrInvalidConfig, c.Nice, MaxNice))
	}
	ddl := schemas.DDLOptions{Database: c.Database, Table: c.Table, TTL: c.TTL, ServerVersion: schemas.ServerVersion{Major: 99}}
	if err := ddl.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("%w: %w", ErrInvalidConfig, err))
	}
	return errors.Join(errs...)
}

// Store is the audit trail in an embedded chDB data directory.
type Store struct {
	conn    *sharedConn
	table   string
	cpTable string
	ddl     []string
	ddlOpts schemas.DDLOptions
	version schemas.ServerVersion
	log     zerolog.Logger
	closed  atomic.Bool
	// infileMin is infileMinBytes, but for the tests that take every
	// path through a file.
	infileMin int
}

// Open loads libchdb if needed, opens the data directory and renders the
// DDL for the engine's version. It does not create the table: call
// Migrate.
func Open(ctx context.Context, cfg Config, log zerolog.Logger) (*Store, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("chdbstore: opening: %w", err)
	}
	start := time.Now()
	conn, err := acquire(cfg.LibPath, cfg.Path, cfg.Nice)
	if err != nil {
		return nil, err
	}
	out, err := conn.exec("SELECT version()", "TabSeparated")
	if err != nil {
		conn.release()
		return nil, fmt.Errorf("chdbstore: reading the engine version: %w", err)
	}
	vs := strings.TrimSpace(string(out))
	version, err := schemas.ParseServerVersion(vs)
	if err != nil {
		conn.release()
		return nil, fmt.Errorf("chdbstore: %w", err)
	}
	ddlOpts := schemas.DDLOptions{Database: cfg.Database, Table: cfg.Table, ServerVersion: version, TTL: cfg.TTL}
	ddl, err := schemas.RenderDDL(ddlOpts)
	if err != nil {
		conn.release()
		return nil, fmt.Errorf("chdbstore: %w", err)
	}
	cpDDL, err := schemas.RenderCheckpointDDL(ddlOpts)
	if err != nil {
		conn.release()
		return nil, fmt.Errorf("chdbstore: %w", err)
	}
	ddl = append(ddl, cpDDL...)
	s := &Store{
		conn:      conn,
		table:     chsql.Table(cfg.Database, cfg.Table),
		cpTable:   chsql.Table(cfg.Database, schemas.CheckpointTable(cfg.Table)),
		ddl:       ddl,
		ddlOpts:   ddlOpts,
		version:   version,
		infileMin: infileMinBytes,
		log:       log.With().Str("component", "audit-chdbstore").Str("table", cfg.Database+"."+cfg.Table).Logger(),
	}
	s.log.Info().Str("engine_version", vs).Str("path", conn.path).Dur("took", time.Since(start)).Msg("chDB opened")
	return s, nil
}

// EngineVersion is the version of the embedded engine.
func (s *Store) EngineVersion() schemas.ServerVersion { return s.version }

// usable reports why no statement should start now: the Store is closed
// or ctx has ended (a statement cannot be interrupted once it runs).
func (s *Store) usable(ctx context.Context) error {
	if s.closed.Load() {
		return fmt.Errorf("chdbstore: %w", audit.ErrClosed)
	}
	return ctx.Err()
}

func (s *Store) exec(ctx context.Context, sql, format string) ([]byte, error) {
	if err := s.usable(ctx); err != nil {
		return nil, err
	}
	return s.conn.exec(sql, format)
}

// Migrate implements audit.Store: it creates the table where missing,
// then adds to a table an earlier release created the columns added since
// (schemas.AddedAuditColumns), so the trail of a local deployment
// survives an upgrade. Old rows read back with the new columns empty, and
// hash as they did.
func (s *Store) Migrate(ctx context.Context) error {
	for _, stmt := range s.ddl {
		if _, err := s.exec(ctx, stmt, "TabSeparated"); err != nil {
			return fmt.Errorf("chdbstore: migrating: %w", err)
		}
	}
	out, err := s.exec(ctx, chsql.TableColumns(s.ddlOpts.Database, s.ddlOpts.Table), "TabSeparatedRaw")
	if err != nil {
		return fmt.Errorf("chdbstore: migrating: reading the table's columns: %w", err)
	}
	have := map[string]bool{}
	for _, name := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		have[name] = true
	}
	missing := chsql.Missing(have)
	if len(missing) == 0 {
		return nil
	}
	stmt, err := schemas.RenderAddColumns(s.ddlOpts, false, missing)
	if err != nil {
		return fmt.Errorf("chdbstore: migrating: %w", err)
	}
	if _, err := s.exec(ctx, stmt, "TabSeparated"); err != nil {
		return fmt.Errorf("chdbstore: migrating: adding %s: %w", strings.Join(missing, ", "), err)
	}
	s.log.Info().Strs("columns", missing).Msg("added columns to an audit table of an earlier release")
	return nil
}

// wireRow is a row as JSONEachRow carries it out of the engine, in
// column order. 64-bit
// integers are read both bare and quoted (ClickHouse quotes them in JSON
// output by default).
type wireRow struct {
	RowID             string   `json:"row_id"`
	Chain             string   `json:"chain"`
	Seq               jsonU64  `json:"seq"`
	Time              jsonTime `json:"time"`
	CommandID         string   `json:"command_id"`
	Step              string   `json:"step"`
	Detail            string   `json:"detail"`
	Issuer            string   `json:"issuer"`
	Actor             string   `json:"actor"`
	Approver          string   `json:"approver"`
	TargetKind        string   `json:"target_kind"`
	UserID            string   `json:"user_id"`
	TokenID           string   `json:"token_id"`
	SessionID         string   `json:"session_id"`
	ClientID          string   `json:"client_id"`
	IncludeDownscoped uint8    `json:"include_downscoped"`
	Action            string   `json:"action"`
	Mode              string   `json:"mode"`
	RuleID            string   `json:"rule_id"`
	RuleVersion       uint32   `json:"rule_version"`
	Severity          string   `json:"severity"`
	Summary           string   `json:"summary"`
	Evidence          []string `json:"evidence"`
	EvidenceContext   []string `json:"evidence_context"`
	FirstEventTime    jsonTime `json:"first_event_time"`
	LastEventTime     jsonTime `json:"last_event_time"`
	DetectedAt        jsonTime `json:"detected_at"`
	IssuedAt          jsonTime `json:"issued_at"`
	ExpiresAt         jsonTime `json:"expires_at"`
	IdPStatus         uint16   `json:"idp_status"`
	IdPResponse       string   `json:"idp_response"`
	TokensRevoked     uint32   `json:"tokens_revoked"`
	Proof             string   `json:"proof"`
	Attempts          uint32   `json:"attempts"`
	DetectLatencyMs   jsonI64  `json:"detect_latency_ms"`
	RevokeLatencyMs   jsonI64  `json:"revoke_latency_ms"`
	SourceTopic       string   `json:"source_topic"`
	SourcePartition   int32    `json:"source_partition"`
	SourceOffset      jsonI64  `json:"source_offset"`
	PrevHash          string   `json:"prev_hash"`
	Hash              string   `json:"hash"`
}

func (w *wireRow) row() schemas.AuditRow {
	r := schemas.AuditRow{
		RowID: w.RowID, Chain: w.Chain, Seq: uint64(w.Seq), Time: time.Time(w.Time),
		CommandID: w.CommandID, Step: schemas.Step(w.Step), Detail: w.Detail,
		Issuer: w.Issuer, Actor: w.Actor, Approver: w.Approver,
		TargetKind: schemas.TargetKind(w.TargetKind), UserID: w.UserID, TokenID: w.TokenID, SessionID: w.SessionID, ClientID: w.ClientID,
		IncludeDownscoped: w.IncludeDownscoped != 0, Action: schemas.Action(w.Action), Mode: schemas.Mode(w.Mode),
		RuleID: w.RuleID, RuleVersion: w.RuleVersion, Severity: schemas.Severity(w.Severity), Summary: w.Summary, Evidence: w.Evidence, EvidenceContext: w.EvidenceContext,
		FirstEventTime: time.Time(w.FirstEventTime), LastEventTime: time.Time(w.LastEventTime), DetectedAt: time.Time(w.DetectedAt),
		IssuedAt: time.Time(w.IssuedAt), ExpiresAt: time.Time(w.ExpiresAt),
		IdPStatus: w.IdPStatus, IdPResponse: w.IdPResponse, TokensRevoked: w.TokensRevoked, Proof: w.Proof, Attempts: w.Attempts,
		DetectLatencyMs: int64(w.DetectLatencyMs), RevokeLatencyMs: int64(w.RevokeLatencyMs),
		SourceTopic: w.SourceTopic, SourcePartition: w.SourcePartition, SourceOffset: int64(w.SourceOffset),
		PrevHash: w.PrevHash, Hash: w.Hash,
	}
	chsql.LoadRow(&r)
	return r
}

// jsonTime is a DateTime64(3, 'UTC') value in JSON: "2006-01-02
// 15:04:05.000" in UTC. The mapping of the zero time to the epoch and back
// is chsql.StoredRow's and chsql.LoadRow's.
type jsonTime time.Time

const timeLayout = "2006-01-02 15:04:05.999999999"

func (t jsonTime) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Time(t).UTC().Format("2006-01-02 15:04:05.000") + `"`), nil
}

func (t *jsonTime) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	tt, err := time.ParseInLocation(timeLayout, s, time.UTC)
	if err != nil {
		return err
	}
	*t = jsonTime(tt)
	return nil
}

type jsonU64 uint64

func (n *jsonU64) UnmarshalJSON(b []byte) error {
	return json.Unmarshal(bytes.Trim(b, `"`), (*uint64)(n))
}

type jsonI64 int64

func (n *jsonI64) UnmarshalJSON(b []byte) error {
	return json.Unmarshal(bytes.Trim(b, `"`), (*int64)(n))
}

// maxStatementBytes caps the rows of one INSERT; larger Appends are
// split. The engine reads the rows after FORMAT as data (max_query_size
// does not apply to them), but an inline statement is copied into the
// engine whole first.
const maxStatementBytes = 8 << 20

// infileMinBytes is the size of TabSeparated rows from which an INSERT
// reads them from a file (INSERT ... FROM INFILE) instead of from the
// statement's text. The engine spends CPU on every byte of a statement
// that it does not spend reading a file, while a file costs a few
// milliseconds more per statement: measured on this engine over 48,000
// rows of the audit table (process CPU per row, background merges
// included), a file took 20 µs against 37 at 2,500 rows a statement,
// 16 against 23 at 8,000, 36 against 44 at 1,000, and about 3 ms more
// per statement at 10 rows or fewer; the two met between 200 and 400
// rows (150 to 300 KiB).
const infileMinBytes = 256 << 10

// insertDir is the subdirectory of the data directory that holds the
// files of INSERT ... FROM INFILE while their statement runs. What a
// crash leaves there is removed when the directory is next opened.
const insertDir = "revoked-inserts"

// Append implements audit.Store: one INSERT statement (one per 8 MiB of
// rows), committed when it returns. The rows go as TabSeparated text (see
// AppendTSVRow), in the statement below infileMinBytes and from a file
// under the data directory, removed after the statement, from there on.
func (s *Store) Append(ctx context.Context, rows []schemas.AuditRow) error {
	if len(rows) == 0 {
		if s.closed.Load() {
			return fmt.Errorf("chdbstore: %w", audit.ErrClosed)
		}
		return nil
	}
	if err := audit.ValidateRows(rows); err != nil {
		return err
	}
	head := chsql.Insert(s.table) + " FORMAT TabSeparated\n"
	b := make([]byte, 0, min(len(rows)*1024, maxStatementBytes)+len(head))
	b = append(b, head...)
	pending, done := 0, 0
	flush := func() error {
		if pending == 0 {
			return nil
		}
		var err error
		if data := b[len(head):]; len(data) >= s.infileMin {
			err = s.insertFile(ctx, data)
		} else {
			_, err = s.exec(ctx, string(b), "TabSeparated")
		}
		if err != nil {
			return fmt.Errorf("chdbstore: inserting %d rows (%d of %d stored before): %w", pending, done, len(rows), err)
		}
		done += pending
		pending = 0
		b = b[:len(head)]
		return nil
	}
	for i := range rows {
		b = AppendTSVRow(b, &rows[i])
		pending++
		if len(b) >= maxStatementBytes {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// insertFile inserts TabSeparated rows through a file of their own in
// insertDir, removed when the statement returns.
func (s *Store) insertFile(ctx context.Context, data []byte) error {
	if err := s.usable(ctx); err != nil {
		return err // before writing a file for nothing
	}
	f, err := os.CreateTemp(filepath.Join(s.conn.path, insertDir), "append-*.tsv")
	if err != nil {
		return fmt.Errorf("creating the file of the insert: %w", err)
	}
	defer func() { _ = os.Remove(f.Name()) }()
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing the file of the insert: %w", err)
	}
	_, err = s.exec(ctx, chsql.Insert(s.table)+" FROM INFILE "+chsql.Quote(f.Name())+" FORMAT TabSeparated", "TabSeparated")
	return err
}

// execStmt runs a statement with bound values: each ? of st.SQL becomes
// the query parameter {pN:String}, which the engine binds to st.Args[N].
// chsql guarantees ? appears nowhere else in the statement.
func (s *Store) execStmt(ctx context.Context, st chsql.Stmt, format string) ([]byte, error) {
	if err := s.usable(ctx); err != nil {
		return nil, err
	}
	if len(st.Args) == 0 {
		return s.conn.exec(st.SQL, format)
	}
	names := make([]string, len(st.Args))
	var b strings.Builder
	rest := st.SQL
	for i := range st.Args {
		at := strings.IndexByte(rest, '?')
		if at < 0 {
			return nil, fmt.Errorf("chdbstore: %d values for %d placeholders", len(st.Args), i)
		}
		names[i] = "p" + strconv.Itoa(i)
		b.WriteString(rest[:at])
		b.WriteString("{" + names[i] + ":String}")
		rest = rest[at+1:]
	}
	if strings.IndexByte(rest, '?') >= 0 {
		return nil, fmt.Errorf("chdbstore: more placeholders than the %d values", len(st.Args))
	}
	b.WriteString(rest)
	return s.conn.execParams(b.String(), format, names, st.Args)
}

func (s *Store) query(ctx context.Context, what, sql string) ([]schemas.AuditRow, error) {
	return s.queryStmt(ctx, what, chsql.Stmt{SQL: sql})
}

func (s *Store) queryStmt(ctx context.Context, what string, st chsql.Stmt) ([]schemas.AuditRow, error) {
	out, err := s.execStmt(ctx, st, "JSONEachRow")
	if err != nil {
		return nil, fmt.Errorf("chdbstore: %s: %w", what, err)
	}
	var rows []schemas.AuditRow
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var w wireRow
		if err := dec.Decode(&w); err != nil {
			return nil, fmt.Errorf("chdbstore: %s: decoding a row: %w", what, err)
		}
		rows = append(rows, w.row())
	}
	return rows, nil
}

// CommandRows implements audit.Store.
func (s *Store) CommandRows(ctx context.Context, commandID string) ([]schemas.AuditRow, error) {
	return s.query(ctx, "reading a command's rows", chsql.CommandRows(s.table, commandID))
}

// ChainHead implements audit.Store.
func (s *Store) ChainHead(ctx context.Context, chain string) (uint64, string, error) {
	out, err := s.exec(ctx, chsql.ChainHead(s.table, chain), "JSONEachRow")
	if err != nil {
		return 0, "", fmt.Errorf("chdbstore: reading the head of chain %q: %w", chain, err)
	}
	if len(bytes.TrimSpace(out)) == 0 {
		return 0, "", nil
	}
	var head struct {
		Seq  jsonU64 `json:"seq"`
		Hash string  `json:"hash"`
	}
	if err := json.Unmarshal(out, &head); err != nil {
		return 0, "", fmt.Errorf("chdbstore: reading the head of chain %q: %w", chain, err)
	}
	return uint64(head.Seq), head.Hash, nil
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
	rows, err := s.queryStmt(ctx, "reading history", st)
	if err == nil && fallback != nil && len(rows) < q.Limit {
		rows, err = s.queryStmt(ctx, "reading history", *fallback)
	}
	return rows, err
}

// Latest implements audit.Store.
func (s *Store) Latest(ctx context.Context, q audit.Query) (time.Time, error) {
	if err := q.Validate(); err != nil {
		return time.Time{}, err
	}
	out, err := s.execStmt(ctx, chsql.Latest(s.table, s.version.Modern(), q), "TabSeparated")
	if err != nil {
		return time.Time{}, fmt.Errorf("chdbstore: latest: %w", err)
	}
	secs, err := strconv.ParseUint(strings.TrimSpace(string(out)), 10, 32)
	if err != nil {
		return time.Time{}, fmt.Errorf("chdbstore: latest: reading %q: %w", out, err)
	}
	if secs == 0 {
		return time.Time{}, nil
	}
	return time.Unix(int64(secs), 0).UTC(), nil
}

// TimePrecision implements audit.Store: DateTime64(3) (the engine is
// modern; schemas.AuditColumns).
func (s *Store) TimePrecision() time.Duration {
	if s.version.Modern() {
		return time.Millisecond
	}
	return time.Second
}

// Stats implements audit.Store: one aggregating statement (chsql.Stats),
// computed by the engine.
func (s *Store) Stats(ctx context.Context, q audit.StatsQuery) (audit.Stats, error) {
	if err := q.Validate(); err != nil {
		return audit.Stats{}, err
	}
	q = q.Normalized()
	st := audit.Stats{From: q.From, To: q.To, Bucket: q.Bucket, Outcomes: []audit.OutcomePoint{}, Latency: []audit.LatencyPoint{}}
	var rows []struct {
		Kind   uint8     `json:"kind"`
		Bucket jsonU64   `json:"b"`
		Rule   string    `json:"r"`
		Step   string    `json:"s"`
		N      jsonU64   `json:"n"`
		RQ     []jsonI64 `json:"r_q"`
		RMax   jsonI64   `json:"r_max"`
		DQ     []jsonI64 `json:"d_q"`
		DMax   jsonI64   `json:"d_max"`
	}
	if err := s.decodeAll(ctx, chsql.Stats(s.table, s.version.Modern(), q), &rows); err != nil {
		return audit.Stats{}, fmt.Errorf("chdbstore: stats: %w", err)
	}
	for _, r := range rows {
		chsql.AddStats(&st, r.Kind, uint64(r.Bucket), r.Rule, r.Step, uint64(r.N), ints(r.RQ), int64(r.RMax), ints(r.DQ), int64(r.DMax))
	}
	audit.SortOutcomes(st.Outcomes)
	return st, nil
}

// decodeAll runs a query and decodes its JSONEachRow result into *out, a
// pointer to a slice.
func (s *Store) decodeAll(ctx context.Context, sql string, out any) error {
	b, err := s.exec(ctx, sql, "JSONEachRow")
	if err != nil {
		return err
	}
	// JSONEachRow is one object a line: make it an array.
	var arr bytes.Buffer
	arr.WriteByte('[')
	for i, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		if i > 0 {
			arr.WriteByte(',')
		}
		arr.Write(line)
	}
	arr.WriteByte(']')
	return json.Unmarshal(arr.Bytes(), out)
}

func ints(v []jsonI64) []int64 {
	out := make([]int64, len(v))
	for i, n := range v {
		out[i] = int64(n)
	}
	return out
}

// wireCheckpoint is a checkpoint as JSONEachRow carries it.
type wireCheckpoint struct {
	Chain     string   `json:"chain"`
	Seq       jsonU64  `json:"seq"`
	Hash      string   `json:"hash"`
	Time      jsonTime `json:"time"`
	KeyID     string   `json:"key_id"`
	Signature string   `json:"signature"`
}

// AppendCheckpoints implements audit.Store: one INSERT statement.
func (s *Store) AppendCheckpoints(ctx context.Context, cps []schemas.Checkpoint) error {
	if len(cps) == 0 {
		if s.closed.Load() {
			return fmt.Errorf("chdbstore: %w", audit.ErrClosed)
		}
		return nil
	}
	if err := audit.ValidateCheckpoints(cps); err != nil {
		return err
	}
	var b bytes.Buffer
	b.WriteString(chsql.CheckpointInsert(s.cpTable) + " FORMAT JSONEachRow\n")
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	for i, c := range cps {
		w := wireCheckpoint{Chain: c.Chain, Seq: jsonU64(c.Seq), Hash: c.Hash, Time: jsonTime(c.Time), KeyID: c.KeyID, Signature: c.Signature}
		if err := enc.Encode(w); err != nil {
			return fmt.Errorf("chdbstore: encoding checkpoint %d (chain %q seq %d): %w", i, c.Chain, c.Seq, err)
		}
	}
	if _, err := s.exec(ctx, b.String(), "TabSeparated"); err != nil {
		return fmt.Errorf("chdbstore: inserting %d checkpoints: %w", len(cps), err)
	}
	return nil
}

// Checkpoints implements audit.Store.
func (s *Store) Checkpoints(ctx context.Context, chain string, afterSeq uint64, limit int) ([]schemas.Checkpoint, error) {
	out, err := s.exec(ctx, chsql.Checkpoints(s.cpTable, chain, afterSeq, limit), "JSONEachRow")
	if err != nil {
		return nil, fmt.Errorf("chdbstore: reading the checkpoints of chain %q: %w", chain, err)
	}
	var cps []schemas.Checkpoint
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var w wireCheckpoint
		if err := dec.Decode(&w); err != nil {
			return nil, fmt.Errorf("chdbstore: reading the checkpoints of chain %q: %w", chain, err)
		}
		cps = append(cps, schemas.Checkpoint{Chain: w.Chain, Seq: uint64(w.Seq), Hash: w.Hash, Time: time.Time(w.Time).UTC(), KeyID: w.KeyID, Signature: w.Signature})
	}
	return cps, nil
}

// Chains implements audit.Store.
func (s *Store) Chains(ctx context.Context) ([]string, error) {
	out, err := s.exec(ctx, chsql.Chains(s.table, s.cpTable), "JSONEachRow")
	if err != nil {
		return nil, fmt.Errorf("chdbstore: listing chains: %w", err)
	}
	var chains []string
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var r struct {
			Chain string `json:"chain"`
		}
		if err := dec.Decode(&r); err != nil {
			return nil, fmt.Errorf("chdbstore: listing chains: %w", err)
		}
		chains = append(chains, r.Chain)
	}
	return chains, nil
}

// Ping implements audit.Store.
func (s *Store) Ping(ctx context.Context) error {
	if _, err := s.exec(ctx, "SELECT 1", "TabSeparated"); err != nil {
		return fmt.Errorf("chdbstore: ping: %w", err)
	}
	return nil
}

// Close implements audit.Store. The engine closes the data directory with
// the last Store open on it.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.conn.release()
	return nil
}
