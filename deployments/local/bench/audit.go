package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/consumer/audit/backends"
	"github.com/revoked-dev/revoked/consumer/audit/chdbstore"
	"github.com/revoked-dev/revoked/consumer/audit/chstore"
	consumer "github.com/revoked-dev/revoked/consumer/service"
	"github.com/revoked-dev/revoked/internal/progress"
	"github.com/revoked-dev/revoked/schemas"
)

// Tables of the audit part: the store's, and the raw inserts' (the same
// schema, schemas.RenderDDL).
const (
	storeTable = "audit_store"
	rawTable   = "audit_raw"
)

// audit writes the same rows through the audit Writer into each store and
// as one raw batch insert beside it.
func (r *runner) audit(ctx context.Context) ([]Row, error) {
	rows := auditRows(r.cfg.Rows, r.cfg.Seed)
	// The raw inserts write the rows as the Writer stores them: normalized
	// and linked into one chain.
	linked := link("bench-raw", rows)
	ccfg := consumer.DefaultConfig()
	writers := ccfg.Reader.Concurrency
	// The consumer's reader lets MaxLater messages be handled and not yet
	// durable, each waiting on rows it enqueued on the Writer: that bounds
	// what it has outstanding on the Writer.
	modes := []writeMode{{enqueue: ccfg.Reader.MaxLater()}, {writers: writers}}

	chdbRow, err := r.auditChDB(ctx, rows, linked, modes)
	if err != nil {
		return nil, fmt.Errorf("chDB: %w", err)
	}
	out := chdbRow
	if r.cfg.ClickHouseDSN != "" {
		rows, err := r.auditClickHouse(ctx, rows, linked, modes)
		if err != nil {
			return nil, fmt.Errorf("ClickHouse %s: %w", chstore.RedactDSN(r.cfg.ClickHouseDSN), err)
		}
		out = append(out, rows...)
	}
	return out, nil
}

func (r *runner) chdbLibPath() string {
	for _, p := range []string{r.cfg.Audit.ChDBLibPath, os.Getenv(chdbstore.EnvLibPath)} {
		if p != "" {
			return p
		}
	}
	return chdbstore.DefaultLibPath
}

// auditChDB inserts the rows raw through libchdb, then writes them
// through the Writer into chdbstore, both in one data directory (chDB
// holds one per process): the raw connection is closed before the store
// opens the directory.
func (r *runner) auditChDB(ctx context.Context, rows, linked []schemas.AuditRow, modes []writeMode) ([]Row, error) {
	dir := filepath.Join(r.root, PartAudit, "chdb")
	raw, err := r.rawChDBInsert(dir, linked)
	if err != nil {
		return nil, fmt.Errorf("raw insert: %w", err)
	}
	store, err := backends.Open(ctx, backends.Config{
		Backend: backends.ChDB, ChDBPath: dir, ChDBLibPath: r.cfg.Audit.ChDBLibPath, Table: storeTable,
	}, r.logger("audit"))
	if err != nil {
		return nil, err
	}
	var out []Row
	for _, m := range modes {
		var project float64
		err := measured(ctx, PartAudit+"/chdb", sideProject, func(ctx context.Context) (err error) {
			project, err = r.writeThroughWriter(ctx, store, rows, m, "  chDB store, "+m.String())
			return err
		})
		if err != nil {
			return nil, errors.Join(fmt.Errorf("store: %w", err), store.Close())
		}
		out = append(out, Row{
			Part: "audit chDB (" + m.String() + ")", Unit: "rows/s", Project: project, Baseline: raw,
			Against: "one raw libchdb INSERT from a TabSeparated file", Target: TargetAudit,
		})
	}
	if err := store.Close(); err != nil {
		return nil, err
	}
	return out, nil
}

// rawChDBInsert creates the raw table in dir and inserts rows into it
// with one INSERT ... FROM INFILE of TabSeparated rows, encoding and
// writing the file included in the time.
func (r *runner) rawChDBInsert(dir string, rows []schemas.AuditRow) (float64, error) {
	c, err := chdbstore.OpenConn(r.chdbLibPath(), dir, r.cfg.Audit.ChDBNice)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	out, err := c.Exec("SELECT version()", "TabSeparated")
	if err != nil {
		return 0, err
	}
	version, err := schemas.ParseServerVersion(string(out))
	if err != nil {
		return 0, err
	}
	ddl, err := schemas.RenderDDL(schemas.DDLOptions{Database: "default", Table: rawTable, ServerVersion: version})
	if err != nil {
		return 0, err
	}
	for _, stmt := range ddl {
		if _, err := c.Exec(stmt, "TabSeparated"); err != nil {
			return 0, err
		}
	}
	bar := progress.New(r.progress, progress.Config{Label: "  chDB raw INSERT", Total: int64(len(rows)), Unit: "rows"})
	start := time.Now()
	// The bytes the store sends (chdbstore.AppendTSVRow), in one file
	// that one statement reads: TabSeparated parses in about half the
	// time of JSONEachRow, and the engine reads a file with less CPU than
	// the same rows in a statement's text, so either other way would
	// flatter the store.
	var b []byte
	for i := range rows {
		b = chdbstore.AppendTSVRow(b, &rows[i])
	}
	file := filepath.Join(dir, "raw-insert.tsv")
	if strings.ContainsAny(file, `'\`) {
		return 0, fmt.Errorf("the raw insert's file %q would need quoting", file)
	}
	if err := os.WriteFile(file, b, 0o600); err != nil {
		return 0, err
	}
	defer os.Remove(file)
	if _, err := c.Exec("INSERT INTO `default`.`"+rawTable+"` ("+strings.Join(schemas.AuditColumnNames(), ", ")+") FROM INFILE '"+file+"' FORMAT TabSeparated", "TabSeparated"); err != nil {
		return 0, err
	}
	elapsed := time.Since(start)
	bar.Set(int64(len(rows)))
	bar.Finish()
	out, err = c.Exec("SELECT count() FROM `default`.`"+rawTable+"`", "TabSeparated")
	if err != nil {
		return 0, err
	}
	if n, err := strconv.Atoi(strings.TrimSpace(string(out))); err != nil || n != len(rows) {
		return 0, fmt.Errorf("the raw table holds %q rows, want %d", strings.TrimSpace(string(out)), len(rows))
	}
	return rate(int64(len(rows)), elapsed), nil
}

// auditClickHouse inserts the rows raw with one clickhouse-go batch, then
// writes them through the Writer into chstore, in a database of their own
// that is dropped afterwards.
func (r *runner) auditClickHouse(ctx context.Context, rows, linked []schemas.AuditRow, modes []writeMode) ([]Row, error) {
	opts, err := clickhouse.ParseDSN(r.cfg.ClickHouseDSN)
	if err != nil {
		return nil, err
	}
	opts.Auth.Database = ""
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	db := fmt.Sprintf("revoked_bench_%d", time.Now().UnixNano())
	defer func() {
		if err := conn.Exec(context.WithoutCancel(ctx), "DROP DATABASE IF EXISTS `"+db+"`"); err != nil {
			r.log.Warn().Err(err).Str("database", db).Msg("dropping the benchmark database")
		}
	}()
	var vs string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&vs); err != nil {
		return nil, err
	}
	version, err := schemas.ParseServerVersion(vs)
	if err != nil {
		return nil, err
	}
	ddl, err := schemas.RenderDDL(schemas.DDLOptions{Database: db, Table: rawTable, ServerVersion: version})
	if err != nil {
		return nil, err
	}
	for _, stmt := range ddl {
		if err := conn.Exec(ctx, stmt); err != nil {
			return nil, err
		}
	}

	bar := progress.New(r.progress, progress.Config{Label: "  ClickHouse raw batch", Total: int64(len(linked)), Unit: "rows"})
	start := time.Now()
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO `"+db+"`.`"+rawTable+"` ("+strings.Join(schemas.AuditColumnNames(), ", ")+")")
	if err != nil {
		bar.Finish()
		return nil, err
	}
	for i := range linked {
		if err := batch.Append(values(&linked[i])...); err != nil {
			bar.Finish()
			return nil, errors.Join(err, batch.Abort())
		}
	}
	if err := batch.Send(); err != nil {
		bar.Finish()
		return nil, err
	}
	raw := rate(int64(len(linked)), time.Since(start))
	bar.Set(int64(len(linked)))
	bar.Finish()
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM `"+db+"`.`"+rawTable+"`").Scan(&n); err != nil {
		return nil, err
	}
	if n != uint64(len(linked)) {
		return nil, fmt.Errorf("the raw table holds %d rows, want %d", n, len(linked))
	}

	store, err := backends.Open(ctx, backends.Config{
		Backend: backends.ClickHouse, DSN: r.cfg.ClickHouseDSN, Database: db, Table: storeTable,
	}, r.logger("audit"))
	if err != nil {
		return nil, err
	}
	var out []Row
	for _, m := range modes {
		var project float64
		err := measured(ctx, PartAudit+"/clickhouse", sideProject, func(ctx context.Context) (err error) {
			project, err = r.writeThroughWriter(ctx, store, rows, m, "  ClickHouse store, "+m.String())
			return err
		})
		if err != nil {
			return nil, errors.Join(fmt.Errorf("store: %w", err), store.Close())
		}
		out = append(out, Row{
			Part: "audit ClickHouse (" + m.String() + ")", Unit: "rows/s", Project: project, Baseline: raw,
			Against: "one raw clickhouse-go batch", Target: TargetAudit,
		})
	}
	if err := store.Close(); err != nil {
		return nil, err
	}
	return out, nil
}

// writeMode says how writeThroughWriter hands rows to the Writer: with
// enqueue, as the consumer does, a command's rows (rowsPerCommand) per
// Enqueue with at most enqueue Enqueues not yet durable (the consumer's
// reader lets that many messages wait, each on its own Enqueue);
// otherwise one row per Write from writers goroutines at once, which caps
// a group commit at writers rows.
type writeMode struct {
	enqueue, writers int
}

// rowsPerCommand is how many rows the consumer enqueues for one command
// it carries out (its received row and its outcome, in one Enqueue) and
// how many the Enqueue mode hands the Writer at a time.
const rowsPerCommand = 2

func (m writeMode) String() string {
	if m.enqueue > 0 {
		return fmt.Sprintf("Writer.Enqueue, %d rows each, %d outstanding", rowsPerCommand, m.enqueue)
	}
	return fmt.Sprintf("Writer.Write, %d writers", m.writers)
}

// writeThroughWriter migrates store and writes rows through an audit
// Writer that signs checkpoints, as the consumer does, as mode says. It
// returns rows per second until every row was durable and the Writer
// closed (its last checkpoint stored), and checks that the store holds
// every row.
func (r *runner) writeThroughWriter(ctx context.Context, store audit.Store, rows []schemas.AuditRow, mode writeMode, label string) (float64, error) {
	if err := store.Migrate(ctx); err != nil {
		return 0, err
	}
	signer, err := newSigner()
	if err != nil {
		return 0, err
	}
	chain := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	// The Writer as the consumer configures it (group commit delay and
	// size).
	wcfg := consumer.AuditWriterConfig(consumer.DefaultConfig(), chain, signer)
	if mode.enqueue == 0 {
		// One row per Write from as many goroutines as the consumer runs
		// handlers: each waits for its row, so a batch never fills and
		// would wait out the consumer's delay every time; this mode
		// measures the Writer's own default.
		wcfg = audit.WriterConfig{Chain: chain, Signer: signer}
	}
	w, err := audit.NewWriterWithConfig(ctx, store, wcfg, r.logger("audit-writer"))
	if err != nil {
		return 0, err
	}
	bar := progress.New(r.progress, progress.Config{Label: label, Total: int64(len(rows)), Unit: "rows"})
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	start := time.Now()
	if mode.enqueue > 0 {
		// Rows become durable in the order they were enqueued: one
		// goroutine waits for them in that order, freeing a slot each.
		type pending struct {
			wait func(context.Context) error
			rows int
		}
		waits := make(chan pending, mode.enqueue-1)
		wg.Go(func() {
			for p := range waits {
				if err := p.wait(ctx); err != nil {
					report(errs, err)
					continue
				}
				bar.Add(int64(p.rows))
			}
		})
		for i := 0; i < len(rows); i += rowsPerCommand {
			command := rows[i:min(i+rowsPerCommand, len(rows))]
			wait, err := w.Enqueue(command...)
			if err != nil {
				report(errs, err)
				break
			}
			waits <- pending{wait, len(command)}
		}
		close(waits)
		// The last rows go at once, as when the consumer stops, rather
		// than after the group-commit delay: that delay bounds how long
		// a row may wait for company, and an idle wait of it at the end
		// of the run would count against the rate (200 ms of a run of
		// well under a second at the default size).
		err = w.Close()
		wg.Wait()
	} else {
		jobs := make(chan int)
		for range mode.writers {
			wg.Go(func() {
				for i := range jobs {
					if err := w.Write(ctx, rows[i]); err != nil {
						report(errs, err)
						continue
					}
					bar.Add(1)
				}
			})
		}
		for i := range rows {
			jobs <- i
		}
		close(jobs)
		// Each Write returns once its row is durable: close after them.
		wg.Wait()
		err = w.Close()
	}
	elapsed := time.Since(start)
	bar.Finish()
	select {
	case werr := <-errs:
		err = errors.Join(werr, err)
	default:
	}
	if err != nil {
		return 0, err
	}
	stored, err := store.ChainRows(ctx, chain, 0, 0)
	if err != nil {
		return 0, fmt.Errorf("reading the rows back: %w", err)
	}
	if len(stored) != len(rows) {
		return 0, fmt.Errorf("the store holds %d rows of chain %s, want %d", len(stored), chain, len(rows))
	}
	return rate(int64(len(rows)), elapsed), nil
}

// auditRows returns n rows as the consumer writes them for commands the
// detector sends: a received and a confirmed row per command, for a mix
// of rules and targets, deterministic for a seed.
func auditRows(n int, seed int64) []schemas.AuditRow {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6175646974))
	rules := []struct {
		id, summary string
		kind        schemas.TargetKind
		action      schemas.Action
	}{
		{"brute_force_success", "login succeeded after 14 failures from 3 addresses in 6 minutes", schemas.TargetUser, schemas.ActionRevokeAndReverify},
		{"token_moved", "token used from two networks 900 km apart within 4 minutes", schemas.TargetToken, schemas.ActionRevoke},
		{"impossible_travel", "logins from Amsterdam and Singapore 40 minutes apart", schemas.TargetUser, schemas.ActionRevoke},
		{"session_hijack", "session continued from a new device and network", schemas.TargetSession, schemas.ActionRevoke},
		{"mass_download", "1,240 file downloads in 10 minutes, 30x the user's usual", schemas.TargetToken, schemas.ActionRevoke},
		{"logout", "user logged out", schemas.TargetSession, schemas.ActionRevoke},
	}
	start := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	out := make([]schemas.AuditRow, 0, n)
	for i := 0; len(out) < n; i++ {
		rule := rules[rng.IntN(len(rules))]
		user := simulateUserID(rng.IntN(5000))
		last := start.Add(time.Duration(i) * 37 * time.Millisecond)
		target := schemas.Target{Kind: rule.kind, UserID: user}
		switch rule.kind {
		case schemas.TargetToken:
			target.TokenID = schemas.Fingerprint(fmt.Sprintf("raw-%d-%d", seed, i))
		case schemas.TargetSession:
			target.SessionID = fmt.Sprintf("s-%016x", rng.Uint64())
		case schemas.TargetUser:
			target.IncludeDownscoped = true
		}
		evidence := make([]string, 2+rng.IntN(6))
		for j := range evidence {
			evidence[j] = fmt.Sprintf("%016x%016x", rng.Uint64(), rng.Uint64())
		}
		detected := last.Add(time.Duration(1+rng.IntN(5)) * time.Millisecond)
		cmd := schemas.RevokeCommand{
			IssuedAt: detected, ExpiresAt: detected.Add(time.Hour), Issuer: "detector",
			Target: target, Action: rule.action, Mode: schemas.ModeEnforce,
			Reason: schemas.Reason{
				RuleID: rule.id, RuleVersion: 1, Severity: schemas.SeverityHigh, Summary: rule.summary,
				Evidence: evidence, FirstEventTime: last.Add(-time.Duration(rng.IntN(600)) * time.Second), LastEventTime: last, DetectedAt: detected,
			},
		}
		cmd.CommandID = schemas.DetectionCommandID(rule.id, 1, target, evidence)
		partition, offset := int32(rng.IntN(8)), int64(i)
		received := detected.Add(time.Duration(1+rng.IntN(3)) * time.Millisecond)
		for _, step := range []schemas.Step{schemas.StepReceived, schemas.StepConfirmed} {
			row := schemas.RowFromCommand(&cmd)
			row.RowID = schemas.AuditRowID(cmd.CommandID, step, schemas.TopicRevokeCommands, partition, offset)
			row.Step = step
			row.Time = received
			row.Actor = "consumer"
			row.SourceTopic, row.SourcePartition, row.SourceOffset = schemas.TopicRevokeCommands, partition, offset
			row.DetectLatencyMs = detected.Sub(last).Milliseconds()
			if step == schemas.StepConfirmed {
				row.Time = received.Add(time.Duration(3+rng.IntN(20)) * time.Millisecond)
				row.RevokeLatencyMs = row.Time.Sub(last).Milliseconds()
				row.IdPStatus, row.IdPResponse = 200, `{"revoked":1}`
				row.TokensRevoked, row.Attempts = uint32(1+rng.IntN(3)), 1
				row.Proof = "introspection: every targeted token inactive"
			}
			out = append(out, row)
			if len(out) == n {
				break
			}
		}
	}
	return out
}

func simulateUserID(i int) string { return fmt.Sprintf("user-%06d", i+1) }

// link normalizes rows and links them into one chain, as the Writer
// stores them.
func link(chain string, rows []schemas.AuditRow) []schemas.AuditRow {
	out := make([]schemas.AuditRow, len(rows))
	prev := ""
	for i, r := range rows {
		audit.Normalize(&r)
		r.Chain, r.Seq, r.PrevHash = chain, uint64(i+1), prev
		r.Hash = r.ComputeHash()
		prev = r.Hash
		out[i] = r
	}
	return out
}

// values are a row's columns in schemas.AuditColumns order, as a
// clickhouse-go batch takes them.
func values(r *schemas.AuditRow) []any {
	return []any{
		r.RowID, r.Chain, r.Seq, r.Time,
		r.CommandID, string(r.Step), r.Detail,
		r.Issuer, r.Actor, r.Approver,
		string(r.TargetKind), r.UserID, r.TokenID, r.SessionID, r.ClientID, boolByte(r.IncludeDownscoped),
		string(r.Action), string(r.Mode),
		r.RuleID, r.RuleVersion, string(r.Severity), r.Summary, nonNil(r.Evidence), nonNil(r.EvidenceContext),
		epoch(r.FirstEventTime), epoch(r.LastEventTime), epoch(r.DetectedAt), epoch(r.IssuedAt), epoch(r.ExpiresAt),
		r.IdPStatus, r.IdPResponse, r.TokensRevoked, r.Proof, r.Attempts,
		r.DetectLatencyMs, r.RevokeLatencyMs,
		r.SourceTopic, r.SourcePartition, r.SourceOffset,
		r.PrevHash, r.Hash,
	}
}

func epoch(t time.Time) time.Time {
	if t.IsZero() {
		return time.Unix(0, 0).UTC()
	}
	return t
}

func boolByte(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
