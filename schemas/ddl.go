package schemas

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ErrUnsupported wraps every request the ClickHouse version at hand cannot
// serve, such as a retention TTL on a server that predates TTL.
var ErrUnsupported = errors.New("not supported by this ClickHouse version")

// ErrInvalidDDLOptions wraps every problem RenderDDL finds in its options.
var ErrInvalidDDLOptions = errors.New("invalid DDL options")

// ServerVersion is a ClickHouse version as SELECT version() reports it:
// "18.16.1", "26.7.2.1".
type ServerVersion struct {
	Major, Minor, Patch int
}

// ParseServerVersion parses the leading numeric components of a ClickHouse
// version string. Anything after the third component ("26.7.3.1",
// "24.8.1.2684 (official build)", "18.16.1+ds") is ignored.
func ParseServerVersion(s string) (ServerVersion, error) {
	s = strings.TrimSpace(s)
	end := strings.IndexFunc(s, func(r rune) bool { return r != '.' && (r < '0' || r > '9') })
	if end >= 0 {
		s = s[:end]
	}
	parts := strings.Split(s, ".")
	if len(parts) < 2 {
		return ServerVersion{}, fmt.Errorf("ClickHouse version %q: want at least major.minor", s)
	}
	var nums [3]int
	for i := 0; i < len(parts) && i < 3; i++ {
		n, err := strconv.Atoi(parts[i])
		if err != nil || n < 0 {
			return ServerVersion{}, fmt.Errorf("ClickHouse version %q: component %d is not a number", s, i+1)
		}
		nums[i] = n
	}
	return ServerVersion{Major: nums[0], Minor: nums[1], Patch: nums[2]}, nil
}

func (v ServerVersion) String() string {
	return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
}

// AtLeast reports whether v is major.minor or later.
func (v ServerVersion) AtLeast(major, minor int) bool {
	return v.Major > major || (v.Major == major && v.Minor >= minor)
}

// Modern reports whether the server gets the modern audit DDL: DateTime64,
// LowCardinality, column codecs, data skipping indexes and TTL. 20.3 is the
// first long-term-support release in which all of them are stable; older
// servers (Debian ships 18.16) get plain types and the same logical schema.
func (v ServerVersion) Modern() bool { return v.AtLeast(20, 3) }

// DDLOptions says where the audit table lives and on what.
type DDLOptions struct {
	// Database and Table name the table the pipeline writes and reads.
	// Both are required; they must be plain identifiers.
	Database string
	Table    string
	// ServerVersion selects the column types (see ServerVersion.Modern).
	ServerVersion ServerVersion
	// Cluster, when set, renders the cluster variant: every statement runs
	// ON CLUSTER, the rows live in <Table>_local (ReplicatedReplacingMergeTree,
	// replicated under /clickhouse/tables/{shard}/<Database>/<Table>_local
	// with the {shard} and {replica} macros of each server), and Table is a
	// Distributed table over them sharded by row_id.
	Cluster string
	// TTL, when positive, drops rows older than TTL (by their time). With
	// ttl_only_drop_parts the server's TTL merges drop a part once all its
	// rows have expired and never rewrite one to remove some; a merge that
	// happens anyway (OPTIMIZE ... FINAL, more rows for an old month) also
	// removes the expired rows it reads. Either way what goes is the oldest
	// rows, so a chain keeps a contiguous newer segment. It needs a modern
	// server.
	TTL time.Duration
}

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)

// Validate reports every problem with the options at once.
func (o DDLOptions) Validate() error {
	var errs []error
	check := func(field, v string, required bool) {
		switch {
		case v == "" && required:
			errs = append(errs, fmt.Errorf("%w: %s is required", ErrInvalidDDLOptions, field))
		case v != "" && !identifier.MatchString(v):
			errs = append(errs, fmt.Errorf("%w: %s %q is not a plain identifier ([A-Za-z_][A-Za-z0-9_]*)", ErrInvalidDDLOptions, field, v))
		}
	}
	check("database", o.Database, true)
	check("table", o.Table, true)
	check("cluster", o.Cluster, false)
	if o.ServerVersion.Major == 0 {
		errs = append(errs, fmt.Errorf("%w: server version is required", ErrInvalidDDLOptions))
	}
	switch {
	case o.TTL < 0:
		errs = append(errs, fmt.Errorf("%w: ttl %s is negative", ErrInvalidDDLOptions, o.TTL))
	case o.TTL > 0 && o.TTL < time.Hour:
		errs = append(errs, fmt.Errorf("%w: ttl %s is shorter than an hour", ErrInvalidDDLOptions, o.TTL))
	case o.TTL > 0 && o.ServerVersion.Major > 0 && !o.ServerVersion.Modern():
		// Dropping the retention requirement silently would keep data an
		// operator asked to delete; refuse instead.
		errs = append(errs, fmt.Errorf("%w: ttl needs ClickHouse 20.3 or later, the server is %s", ErrUnsupported, o.ServerVersion))
	}
	return errors.Join(errs...)
}

// AuditColumn is one column of the audit table.
type AuditColumn struct {
	Name string
	// Legacy and Modern are the column's type on servers before and after
	// ServerVersion.Modern; Codec is the modern compression codec.
	Legacy, Modern, Codec string
}

// AuditColumns lists the audit table's columns in AuditRow's field order:
// the column list of every INSERT and SELECT of the audit trail. Column
// names are the JSON names of AuditRow's fields.
//
// The two type sets hold the same values: timestamps are UTC (DateTime at
// second precision before 20.3, DateTime64(3) after; the zero time.Time is
// stored as the Unix epoch), enum-like strings are LowCardinality only where
// that needs no setting, booleans are UInt8.
func AuditColumns() []AuditColumn {
	const (
		dt    = "DateTime('UTC')"
		dt64  = "DateTime64(3, 'UTC')"
		lc    = "LowCardinality(String)"
		zstd  = "ZSTD(1)"
		delta = "Delta, ZSTD(1)"
	)
	col := func(name, legacy, modern, codec string) AuditColumn {
		return AuditColumn{Name: name, Legacy: legacy, Modern: modern, Codec: codec}
	}
	str := func(name string) AuditColumn { return col(name, "String", "String", zstd) }
	enum := func(name string) AuditColumn { return col(name, "String", lc, "") }
	ts := func(name string) AuditColumn { return col(name, dt, dt64, delta) }
	return []AuditColumn{
		str("row_id"),
		enum("chain"),
		col("seq", "UInt64", "UInt64", delta),
		ts("time"),
		str("command_id"),
		enum("step"),
		str("detail"),
		enum("issuer"),
		enum("actor"),
		enum("approver"),
		enum("target_kind"),
		str("user_id"),
		str("token_id"),
		str("session_id"),
		str("client_id"),
		col("include_downscoped", "UInt8", "UInt8", ""),
		enum("action"),
		enum("mode"),
		enum("rule_id"),
		col("rule_version", "UInt32", "UInt32", ""),
		enum("severity"),
		str("summary"),
		col("evidence", "Array(String)", "Array(String)", zstd),
		col("evidence_context", "Array(String)", "Array(String)", zstd),
		ts("first_event_time"),
		ts("last_event_time"),
		ts("detected_at"),
		ts("issued_at"),
		ts("expires_at"),
		col("idp_status", "UInt16", "UInt16", ""),
		str("idp_response"),
		col("tokens_revoked", "UInt32", "UInt32", ""),
		str("proof"),
		col("attempts", "UInt32", "UInt32", ""),
		col("detect_latency_ms", "Int64", "Int64", zstd),
		col("revoke_latency_ms", "Int64", "Int64", zstd),
		enum("source_topic"),
		col("source_partition", "Int32", "Int32", ""),
		col("source_offset", "Int64", "Int64", delta),
		str("prev_hash"),
		str("hash"),
	}
}

// AuditColumnNames lists the names of AuditColumns in order.
func AuditColumnNames() []string { return columnNames(AuditColumns()) }

func columnNames(cols []AuditColumn) []string {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Name
	}
	return names
}

// writeColumns writes the parenthesised definitions of a CREATE TABLE: the
// columns with their types for the server (codecs on modern servers), then
// extra definitions such as skipping indexes, one per line.
func writeColumns(b *strings.Builder, cols []AuditColumn, modern bool, extra ...string) {
	defs := make([]string, 0, len(cols)+len(extra))
	for _, c := range cols {
		typ := c.Legacy
		if modern {
			typ = c.Modern
			if c.Codec != "" {
				typ += " CODEC(" + c.Codec + ")"
			}
		}
		defs = append(defs, quoteIdent(c.Name)+" "+typ)
	}
	defs = append(defs, extra...)
	b.WriteString("(\n    " + strings.Join(defs, ",\n    ") + "\n)\n")
}

// RenderDDL returns the statements that create the audit trail's database
// and table(s) for the given server version, each idempotent (IF NOT
// EXISTS), to run in order.
//
// The layout, and why:
//
//   - ReplacingMergeTree with a sorting key that ends in (row_id, hash):
//     rows are deterministic, so a retried insert of the same row is
//     byte-identical, sorts to the same key and is collapsed by background
//     merges. Rows that share a row_id but differ (a command reprocessed by
//     another writer after a crash) have different hashes and are both kept,
//     because each is a link of some hash chain and dropping one would break
//     that chain's verification; reads deduplicate by row_id with
//     LIMIT 1 BY row_id, which also hides identical copies not merged yet
//     (FINAL would not merge rows with different keys, and is slower).
//   - PARTITION BY toYYYYMM(time): analysts' queries carry a time range, so
//     whole months are pruned; retention (TTL, or dropping a partition by
//     hand) removes the oldest rows, in practice whole months (TTL with
//     ttl_only_drop_parts drops a part when all its rows have expired; see
//     DDLOptions.TTL), which keeps the surviving chain segments contiguous.
//     Monthly partitions keep the part count low for an append-only trail
//     of modest volume.
//   - ORDER BY (user_id, time, row_id, hash) with PRIMARY KEY (user_id,
//     time): the dominant query is one user's history over a time range,
//     newest first, which becomes a range scan of the primary index; time
//     second makes the global by-time queries read each user's rows in
//     order. By-command, by-token, by-rule and by-chain lookups scan the
//     narrow columns they filter on; modern servers add bloom-filter
//     skipping indexes on them so most granules are skipped.
//   - index_granularity = 1024 instead of the default 8192: one user's rows
//     lie in one granule of every part of every month, and each granule
//     read is that many rows of 40 columns. On 10 million rows
//     (BenchmarkHistory10M) one user's newest 100 rows took 137 ms on
//     ClickHouse 18.16 and 106 ms on chDB with 8192 before background
//     merges (36 and 26 parts), 60 and 80 ms with 1024; once merged, 14 and
//     36 ms. The primary index grows to one mark per 1,024 rows, about
//     10,000 marks for 10 million rows.
//   - Modern servers get DateTime64(3) for millisecond timestamps,
//     LowCardinality for enum-like strings and codecs (Delta for sequences
//     and timestamps, ZSTD for text). ClickHouse 18.16 gets DateTime,
//     String and the default LZ4: the same columns, values and queries.
func RenderDDL(opts DDLOptions) ([]string, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	modern := opts.ServerVersion.Modern()
	onCluster := ""
	if opts.Cluster != "" {
		onCluster = " ON CLUSTER " + quoteIdent(opts.Cluster)
	}
	db := quoteIdent(opts.Database)

	var b strings.Builder
	local := opts.Table
	if opts.Cluster != "" {
		local = opts.Table + "_local"
	}
	fmt.Fprintf(&b, "CREATE TABLE IF NOT EXISTS %s.%s%s\n", db, quoteIdent(local), onCluster)
	var indexes []string
	if modern {
		indexes = []string{
			"INDEX idx_command_id command_id TYPE bloom_filter(0.01) GRANULARITY 1",
			"INDEX idx_token_id token_id TYPE bloom_filter(0.01) GRANULARITY 1",
			"INDEX idx_rule_id rule_id TYPE bloom_filter(0.01) GRANULARITY 1",
			"INDEX idx_chain chain TYPE bloom_filter(0.01) GRANULARITY 1",
		}
	}
	writeColumns(&b, AuditColumns(), modern, indexes...)
	if opts.Cluster != "" {
		fmt.Fprintf(&b, "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/%s/%s', '{replica}')\n", opts.Database, local)
	} else {
		b.WriteString("ENGINE = ReplacingMergeTree\n")
	}
	b.WriteString("PARTITION BY toYYYYMM(time)\n")
	b.WriteString("PRIMARY KEY (user_id, time)\n")
	b.WriteString("ORDER BY (user_id, time, row_id, hash)\n")
	settings := "index_granularity = 1024"
	if opts.TTL > 0 {
		fmt.Fprintf(&b, "TTL toDateTime(time) + INTERVAL %d SECOND\n", int64(opts.TTL/time.Second))
		settings += ", ttl_only_drop_parts = 1"
	}
	b.WriteString("SETTINGS " + settings)

	stmts := []string{
		fmt.Sprintf("CREATE DATABASE IF NOT EXISTS %s%s", db, onCluster),
		b.String(),
	}
	if opts.Cluster != "" {
		stmts = append(stmts, fmt.Sprintf(
			"CREATE TABLE IF NOT EXISTS %s.%s%s AS %s.%s\nENGINE = Distributed('%s', '%s', '%s', cityHash64(row_id))",
			db, quoteIdent(opts.Table), onCluster, db, quoteIdent(local),
			opts.Cluster, opts.Database, local))
	}
	return stmts, nil
}

// quoteIdent quotes a ClickHouse identifier. Names reaching it are plain
// identifiers (Validate), so quoting only guards against keywords.
func quoteIdent(s string) string {
	return "`" + strings.NewReplacer("\\", "\\\\", "`", "\\`").Replace(s) + "`"
}

// addedAuditColumns are the columns of AuditColumns that the audit table
// did not have when it first shipped, oldest first. A table created before
// one was added lacks it until migrated (RenderAddColumns).
var addedAuditColumns = []string{"evidence_context"}

// AddedAuditColumns returns the names of the columns added to the audit
// table since it first shipped, oldest first: what a migration adds to a
// table that lacks them.
func AddedAuditColumns() []string { return slices.Clone(addedAuditColumns) }

// RenderAddColumns returns the ALTER statement that adds the named columns
// (each one of AddedAuditColumns) to an existing audit table, each with its
// type for the server and placed after the column that precedes it in
// AuditColumns, so a migrated table has the layout of a new one.
//
// Without a cluster it alters the table. With one, distributed false
// alters the local tables (<Table>_local, ON CLUSTER: replicated, each
// shard's replicas apply it through ZooKeeper) and distributed true the
// Distributed table. Which servers run the second depends on the version:
// a modern server runs it ON CLUSTER; ClickHouse before 20.3 refuses ALTER
// ON CLUSTER of a table that is not replicated when the cluster's shards
// are (internal_replication: "Table ... isn't replicated, but shard #1 is
// replicated according to its cluster definition"), so there the
// statement has no ON CLUSTER and must run on every server that has the
// Distributed table.
//
// Modern servers get ADD COLUMN IF NOT EXISTS, idempotent even when two
// migrations race; ClickHouse 18.16 does not parse IF NOT EXISTS there, so
// its statement must only run for columns the table lacks (see
// system.columns), and fails for one it has. The Distributed table's
// columns get no codec: it stores nothing.
func RenderAddColumns(opts DDLOptions, distributed bool, columns []string) (string, error) {
	if err := opts.Validate(); err != nil {
		return "", err
	}
	if len(columns) == 0 {
		return "", fmt.Errorf("%w: no columns to add", ErrInvalidDDLOptions)
	}
	if distributed && opts.Cluster == "" {
		return "", fmt.Errorf("%w: a Distributed table needs a cluster", ErrInvalidDDLOptions)
	}
	modern := opts.ServerVersion.Modern()
	table := opts.Table
	onCluster := ""
	switch {
	case opts.Cluster != "" && !distributed:
		table += "_local"
		onCluster = " ON CLUSTER " + quoteIdent(opts.Cluster)
	case distributed && modern:
		onCluster = " ON CLUSTER " + quoteIdent(opts.Cluster)
	}
	all := AuditColumns()
	index := func(name string) int {
		return slices.IndexFunc(all, func(c AuditColumn) bool { return c.Name == name })
	}
	for _, name := range columns {
		if !slices.Contains(addedAuditColumns, name) {
			return "", fmt.Errorf("%w: %q is not a column added since the audit table first shipped", ErrInvalidDDLOptions, name)
		}
	}
	// In table order, so a column goes after one added before it in the
	// same statement.
	columns = slices.Clone(columns)
	slices.SortFunc(columns, func(a, b string) int { return index(a) - index(b) })
	columns = slices.Compact(columns)
	adds := make([]string, 0, len(columns))
	for _, name := range columns {
		i := index(name)
		c := all[i]
		typ := c.Legacy
		if modern {
			typ = c.Modern
			if c.Codec != "" && !distributed {
				typ += " CODEC(" + c.Codec + ")"
			}
		}
		ifNotExists := ""
		if modern {
			ifNotExists = "IF NOT EXISTS "
		}
		adds = append(adds, fmt.Sprintf("ADD COLUMN %s%s %s AFTER %s", ifNotExists, quoteIdent(c.Name), typ, quoteIdent(all[i-1].Name)))
	}
	return fmt.Sprintf("ALTER TABLE %s.%s%s %s", quoteIdent(opts.Database), quoteIdent(table), onCluster, strings.Join(adds, ", ")), nil
}
