package export

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/revoked-dev/revoked/schemas"
)

// ParquetRowGroupRows is the number of rows in each row group of a Parquet
// export (the last one holds the rest). The writer buffers one row group,
// compressed, before it goes to the file, so this bounds its memory; a
// reader holds at most one batch of rows at a time.
const ParquetRowGroupRows = 64 * 1024

// parquetBatch is the number of rows converted and handed to the Parquet
// writer or taken from the reader at a time.
const parquetBatch = 1024

// parquetRow is the Parquet schema of an export: one column per
// schemas.AuditRow field, named and ordered as its JSON encoding
// (schemas.AuditColumnNames). Timestamps are TIMESTAMP(MILLIS, UTC) and
// optional: a zero time.Time is null, so it reads back zero and the Unix
// epoch stays a value. They are converted here, not by parquet-go, whose
// time.Time conversion goes through int64 nanoseconds and so only holds
// the years 1678 to 2261. Evidence and EvidenceContext are LISTs of
// strings (an EvidenceContext entry is a JSON object:
// schemas.EncodeEventContext); the enums (step,
// target kind, action, mode, severity) are strings. Unsigned fields keep
// their width as INT(bits, unsigned). Low-cardinality columns are dictionary
// encoded, sequence numbers, offsets and timestamps delta encoded.
type parquetRow struct {
	RowID             string   `parquet:"row_id"`
	Chain             string   `parquet:"chain,dict"`
	Seq               uint64   `parquet:"seq,delta"`
	Time              *int64   `parquet:"time,optional,timestamp(millisecond:utc)"`
	CommandID         string   `parquet:"command_id"`
	Step              string   `parquet:"step,dict"`
	Detail            string   `parquet:"detail,dict"`
	Issuer            string   `parquet:"issuer,dict"`
	Actor             string   `parquet:"actor,dict"`
	Approver          string   `parquet:"approver,dict"`
	TargetKind        string   `parquet:"target_kind,dict"`
	UserID            string   `parquet:"user_id,dict"`
	TokenID           string   `parquet:"token_id"`
	SessionID         string   `parquet:"session_id"`
	ClientID          string   `parquet:"client_id,dict"`
	IncludeDownscoped bool     `parquet:"include_downscoped"`
	Action            string   `parquet:"action,dict"`
	Mode              string   `parquet:"mode,dict"`
	RuleID            string   `parquet:"rule_id,dict"`
	RuleVersion       uint32   `parquet:"rule_version"`
	Severity          string   `parquet:"severity,dict"`
	Summary           string   `parquet:"summary,dict"`
	Evidence          []string `parquet:"evidence,list"`
	EvidenceContext   []string `parquet:"evidence_context,list"`
	FirstEventTime    *int64   `parquet:"first_event_time,optional,timestamp(millisecond:utc)"`
	LastEventTime     *int64   `parquet:"last_event_time,optional,timestamp(millisecond:utc)"`
	DetectedAt        *int64   `parquet:"detected_at,optional,timestamp(millisecond:utc)"`
	IssuedAt          *int64   `parquet:"issued_at,optional,timestamp(millisecond:utc)"`
	ExpiresAt         *int64   `parquet:"expires_at,optional,timestamp(millisecond:utc)"`
	IdPStatus         uint16   `parquet:"idp_status"`
	IdPResponse       string   `parquet:"idp_response,dict"`
	TokensRevoked     uint32   `parquet:"tokens_revoked"`
	Proof             string   `parquet:"proof"`
	Attempts          uint32   `parquet:"attempts"`
	DetectLatencyMs   int64    `parquet:"detect_latency_ms"`
	RevokeLatencyMs   int64    `parquet:"revoke_latency_ms"`
	SourceTopic       string   `parquet:"source_topic,dict"`
	SourcePartition   int32    `parquet:"source_partition"`
	SourceOffset      int64    `parquet:"source_offset,delta"`
	PrevHash          string   `parquet:"prev_hash"`
	Hash              string   `parquet:"hash"`
}

// parquetSchema is the schema every Parquet export has; a file with another
// schema is refused rather than converted.
var parquetSchema = parquet.SchemaOf(parquetRow{})

// ParquetSchema returns the Parquet schema of an export's data file.
func ParquetSchema() *parquet.Schema { return parquetSchema }

// errNotMillis: TIMESTAMP(MILLIS) would drop the rest. The audit writer
// and every store truncate times to the millisecond, so only a row that
// did not come from a store can have it.
var errNotMillis = errors.New("is not a whole number of milliseconds since 1970 in int64, which TIMESTAMP(MILLIS) cannot hold")

// parquetTimes is where a batch's timestamp pointers point.
type parquetTimes [6]int64

// toParquet converts r into p, its timestamps stored in ts.
func toParquet(r *schemas.AuditRow, p *parquetRow, ts *parquetTimes) error {
	times := [6]struct {
		name string
		t    time.Time
		p    **int64
	}{
		{"time", r.Time, &p.Time}, {"first_event_time", r.FirstEventTime, &p.FirstEventTime}, {"last_event_time", r.LastEventTime, &p.LastEventTime},
		{"detected_at", r.DetectedAt, &p.DetectedAt}, {"issued_at", r.IssuedAt, &p.IssuedAt}, {"expires_at", r.ExpiresAt, &p.ExpiresAt},
	}
	*p = parquetRow{
		RowID: r.RowID, Chain: r.Chain, Seq: r.Seq,
		CommandID: r.CommandID, Step: string(r.Step), Detail: r.Detail,
		Issuer: r.Issuer, Actor: r.Actor, Approver: r.Approver,
		TargetKind: string(r.TargetKind), UserID: r.UserID, TokenID: r.TokenID, SessionID: r.SessionID, ClientID: r.ClientID,
		IncludeDownscoped: r.IncludeDownscoped, Action: string(r.Action), Mode: string(r.Mode),
		RuleID: r.RuleID, RuleVersion: r.RuleVersion, Severity: string(r.Severity), Summary: r.Summary, Evidence: r.Evidence,
		EvidenceContext: r.EvidenceContext,
		IdPStatus:       r.IdPStatus, IdPResponse: r.IdPResponse, TokensRevoked: r.TokensRevoked, Proof: r.Proof, Attempts: r.Attempts,
		DetectLatencyMs: r.DetectLatencyMs, RevokeLatencyMs: r.RevokeLatencyMs,
		SourceTopic: r.SourceTopic, SourcePartition: r.SourcePartition, SourceOffset: r.SourceOffset,
		PrevHash: r.PrevHash, Hash: r.Hash,
	}
	for i, f := range times {
		if f.t.IsZero() {
			continue
		}
		ms := f.t.UnixMilli()
		if !time.UnixMilli(ms).Equal(f.t) {
			return fmt.Errorf("row %s: %s %v %w", r.RowID, f.name, f.t, errNotMillis)
		}
		ts[i] = ms
		*f.p = &ts[i]
	}
	return nil
}

// fromMillis is the time of an optional TIMESTAMP(MILLIS, UTC): zero for
// null.
func fromMillis(ms *int64) time.Time {
	if ms == nil {
		return time.Time{}
	}
	return time.UnixMilli(*ms).UTC()
}

func fromParquet(p *parquetRow) schemas.AuditRow {
	r := schemas.AuditRow{
		RowID: p.RowID, Chain: p.Chain, Seq: p.Seq, Time: fromMillis(p.Time),
		CommandID: p.CommandID, Step: schemas.Step(p.Step), Detail: p.Detail,
		Issuer: p.Issuer, Actor: p.Actor, Approver: p.Approver,
		TargetKind: schemas.TargetKind(p.TargetKind), UserID: p.UserID, TokenID: p.TokenID, SessionID: p.SessionID, ClientID: p.ClientID,
		IncludeDownscoped: p.IncludeDownscoped, Action: schemas.Action(p.Action), Mode: schemas.Mode(p.Mode),
		RuleID: p.RuleID, RuleVersion: p.RuleVersion, Severity: schemas.Severity(p.Severity), Summary: p.Summary,
		FirstEventTime: fromMillis(p.FirstEventTime), LastEventTime: fromMillis(p.LastEventTime), DetectedAt: fromMillis(p.DetectedAt),
		IssuedAt: fromMillis(p.IssuedAt), ExpiresAt: fromMillis(p.ExpiresAt),
		IdPStatus: p.IdPStatus, IdPResponse: p.IdPResponse, TokensRevoked: p.TokensRevoked, Proof: p.Proof, Attempts: p.Attempts,
		DetectLatencyMs: p.DetectLatencyMs, RevokeLatencyMs: p.RevokeLatencyMs,
		SourceTopic: p.SourceTopic, SourcePartition: p.SourcePartition, SourceOffset: p.SourceOffset,
		PrevHash: p.PrevHash, Hash: p.Hash,
	}
	// Like the CSV reader: no evidence reads back as nil.
	if len(p.Evidence) > 0 {
		r.Evidence = p.Evidence
	}
	if len(p.EvidenceContext) > 0 {
		r.EvidenceContext = p.EvidenceContext
	}
	return r
}

// ParquetWriter writes audit rows as a Parquet file (see ParquetSchema):
// zstd-compressed, in row groups of ParquetRowGroupRows rows, each written
// to the underlying writer once full, so the whole file is never held in
// memory. Close writes the rest and the footer; the file is incomplete
// without it.
type ParquetWriter struct {
	w     *parquet.GenericWriter[parquetRow]
	batch []parquetRow
	times []parquetTimes // batch[i]'s timestamps point into times[i]
}

// NewParquetWriter returns a writer to w.
func NewParquetWriter(w io.Writer) *ParquetWriter {
	return &ParquetWriter{
		w: parquet.NewGenericWriter[parquetRow](w,
			parquet.Compression(&parquet.Zstd),
			parquet.MaxRowsPerRowGroup(ParquetRowGroupRows),
		),
		batch: make([]parquetRow, 0, parquetBatch),
		times: make([]parquetTimes, parquetBatch),
	}
}

// Write adds one row. It fails for a timestamp finer than a millisecond,
// which the file could not hold exactly.
func (p *ParquetWriter) Write(r *schemas.AuditRow) error {
	p.batch = p.batch[:len(p.batch)+1]
	if err := toParquet(r, &p.batch[len(p.batch)-1], &p.times[len(p.batch)-1]); err != nil {
		p.batch = p.batch[:len(p.batch)-1]
		return err
	}
	if len(p.batch) == cap(p.batch) {
		return p.flushBatch()
	}
	return nil
}

func (p *ParquetWriter) flushBatch() error {
	if len(p.batch) == 0 {
		return nil
	}
	_, err := p.w.Write(p.batch)
	clear(p.batch) // drop the references to the rows' strings
	p.batch = p.batch[:0]
	return err
}

// Close writes the buffered rows and the Parquet footer. It does not close
// the underlying writer.
func (p *ParquetWriter) Close() error {
	if err := p.flushBatch(); err != nil {
		return err
	}
	return p.w.Close()
}

// readParquet reads a Parquet export one batch of rows at a time. Parquet
// keeps its metadata at the end of the file, so r is read in place from its
// current offset when it is an io.ReaderAt and io.Seeker (an *os.File, a
// *bytes.Reader), and copied to a temporary file otherwise.
func readParquet(r io.Reader, fn func(schemas.AuditRow) error) error {
	ra, size, cleanup, err := readerAt(r)
	if err != nil {
		return err
	}
	defer cleanup()
	f, err := guard(func() (*parquet.File, error) {
		return parquet.OpenFile(ra, size, parquet.SkipBloomFilters(true), parquet.ReadBufferSize(256<<10))
	})
	if err != nil {
		return fmt.Errorf("not a Parquet file: %w", err)
	}
	if !exportSchema(f.Schema()) {
		return errors.New("the Parquet schema is not the export's (see export.ParquetSchema)")
	}
	var read int64
	batch := make([]parquetRow, parquetBatch)
	for i, rg := range f.RowGroups() {
		rr, err := guard(func() (*parquet.GenericReader[parquetRow], error) {
			return parquet.NewGenericRowGroupReader[parquetRow](rg), nil
		})
		if err != nil {
			return fmt.Errorf("row group %d: %w", i, err)
		}
		for {
			clear(batch) // the reader may reuse slices it finds in batch
			n, err := guard(func() (int, error) { return rr.Read(batch) })
			for j := range n {
				if err := fn(fromParquet(&batch[j])); err != nil {
					rr.Close()
					return err
				}
			}
			read += int64(n)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				rr.Close()
				return fmt.Errorf("row group %d: %w", i, err)
			}
		}
		if err := rr.Close(); err != nil {
			return fmt.Errorf("row group %d: %w", i, err)
		}
	}
	if read != f.NumRows() {
		return fmt.Errorf("read %d rows, the Parquet footer says %d", read, f.NumRows())
	}
	return nil
}

// exportSchema reports whether s is the schema of an export: today's
// (ParquetSchema), or an earlier one, without some of the columns added to
// the audit row since (schemas.AddedAuditColumns), whose rows read back
// with those fields empty. Every column it has must be today's, in today's
// order.
func exportSchema(s *parquet.Schema) bool {
	if parquet.EqualNodes(s, parquetSchema) {
		return true
	}
	if s.Name() != parquetSchema.Name() || s.Optional() || s.Repeated() {
		return false
	}
	have, want := s.Fields(), parquetSchema.Fields()
	added := schemas.AddedAuditColumns()
	i := 0
	for _, w := range want {
		if i < len(have) && have[i].Name() == w.Name() {
			if !parquet.EqualNodes(have[i], w) {
				return false
			}
			i++
			continue
		}
		if !slices.Contains(added, w.Name()) {
			return false
		}
	}
	return i == len(have)
}

// guard runs fn and turns a panic into an error: parquet-go panics on some
// malformed input, and a tampered file must fail verification, not crash
// the verifier.
func guard[T any](fn func() (T, error)) (v T, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("malformed Parquet data: %v", p)
		}
	}()
	return fn()
}

// readerAt returns r as an io.ReaderAt of the given size, from r's current
// offset on, and a function that releases what it took.
func readerAt(r io.Reader) (io.ReaderAt, int64, func(), error) {
	if rs, ok := r.(interface {
		io.ReaderAt
		io.Seeker
	}); ok {
		cur, err := rs.Seek(0, io.SeekCurrent)
		if err != nil {
			return nil, 0, nil, err
		}
		end, err := rs.Seek(0, io.SeekEnd)
		if err != nil {
			return nil, 0, nil, err
		}
		if _, err := rs.Seek(cur, io.SeekStart); err != nil {
			return nil, 0, nil, err
		}
		return io.NewSectionReader(rs, cur, end-cur), end - cur, func() {}, nil
	}
	tmp, err := os.CreateTemp("", "revoked-export-*.parquet")
	if err != nil {
		return nil, 0, nil, fmt.Errorf("spooling Parquet data: %w", err)
	}
	cleanup := func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}
	n, err := io.Copy(tmp, r)
	if err != nil {
		cleanup()
		return nil, 0, nil, fmt.Errorf("spooling Parquet data: %w", err)
	}
	return tmp, n, cleanup, nil
}
