package export

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/revoked-dev/revoked/schemas"
)

// Columns are the CSV header, in order. Timestamps are RFC 3339 in UTC with
// fractional seconds (empty for none), evidence and evidence_context are
// JSON arrays of strings (an evidence_context entry is itself a JSON
// object: schemas.EncodeEventContext).
var Columns = []string{
	"time", "row_id", "chain", "seq",
	"command_id", "step", "detail",
	"issuer", "actor", "approver",
	"action", "mode",
	"target_kind", "user_id", "token_id", "session_id", "client_id", "include_downscoped",
	"idp_status", "idp_response", "tokens_revoked", "proof", "attempts",
	"rule_id", "rule_version", "severity", "summary", "evidence", "evidence_context",
	"first_event_time", "last_event_time", "detected_at", "issued_at", "expires_at",
	"detect_latency_ms", "revoke_latency_ms",
	"source_topic", "source_partition", "source_offset",
	"prev_hash", "hash",
}

// previousColumns is the CSV header of exports written before the
// evidence_context column existed; ReadRows reads them too.
var previousColumns = slices.DeleteFunc(slices.Clone(Columns), func(c string) bool { return c == "evidence_context" })

// EscapeCell guards a CSV cell against formula injection: a cell starting
// with '=', '+', '-', '@', a tab or a carriage return gets a single quote
// in front so spreadsheets show it as text. A cell that already starts with
// a single quote gets one more, so UnescapeCell restores every cell exactly.
func EscapeCell(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r', '\'':
		return "'" + s
	}
	return s
}

// UnescapeCell undoes EscapeCell.
func UnescapeCell(s string) string {
	if strings.HasPrefix(s, "'") {
		return s[1:]
	}
	return s
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return time.Parse(time.RFC3339Nano, s)
}

// CSVWriter writes audit rows as CSV with a header line.
type CSVWriter struct {
	w   *csv.Writer
	rec []string
}

// NewCSVWriter writes the header to w and returns the writer.
func NewCSVWriter(w io.Writer) (*CSVWriter, error) {
	cw := &CSVWriter{w: csv.NewWriter(w), rec: make([]string, len(Columns))}
	if err := cw.w.Write(Columns); err != nil {
		return nil, err
	}
	return cw, nil
}

// Write writes one row.
func (c *CSVWriter) Write(r *schemas.AuditRow) error {
	ev, err := jsonArray(r.Evidence)
	if err != nil {
		return err
	}
	evCtx, err := jsonArray(r.EvidenceContext)
	if err != nil {
		return err
	}
	rec := c.rec[:0]
	rec = append(rec,
		formatTime(r.Time), r.RowID, r.Chain, strconv.FormatUint(r.Seq, 10),
		r.CommandID, string(r.Step), r.Detail,
		r.Issuer, r.Actor, r.Approver,
		string(r.Action), string(r.Mode),
		string(r.TargetKind), r.UserID, r.TokenID, r.SessionID, r.ClientID, strconv.FormatBool(r.IncludeDownscoped),
		strconv.FormatUint(uint64(r.IdPStatus), 10), r.IdPResponse, strconv.FormatUint(uint64(r.TokensRevoked), 10), r.Proof, strconv.FormatUint(uint64(r.Attempts), 10),
		r.RuleID, strconv.FormatUint(uint64(r.RuleVersion), 10), string(r.Severity), r.Summary, ev, evCtx,
		formatTime(r.FirstEventTime), formatTime(r.LastEventTime), formatTime(r.DetectedAt), formatTime(r.IssuedAt), formatTime(r.ExpiresAt),
		strconv.FormatInt(r.DetectLatencyMs, 10), strconv.FormatInt(r.RevokeLatencyMs, 10),
		r.SourceTopic, strconv.FormatInt(int64(r.SourcePartition), 10), strconv.FormatInt(r.SourceOffset, 10),
		r.PrevHash, r.Hash,
	)
	for i := range rec {
		rec[i] = EscapeCell(rec[i])
	}
	return c.w.Write(rec)
}

// jsonArray is a as a JSON array of strings, "[]" for none.
func jsonArray(a []string) (string, error) {
	if len(a) == 0 {
		return "[]", nil
	}
	b, err := json.Marshal(a)
	return string(b), err
}

// Flush flushes the CSV writer.
func (c *CSVWriter) Flush() error {
	c.w.Flush()
	return c.w.Error()
}

// Close flushes the CSV writer; it does not close the underlying writer.
func (c *CSVWriter) Close() error { return c.Flush() }

// JSONLWriter writes audit rows as JSON Lines, one schemas.AuditRow per
// line in its JSON encoding.
type JSONLWriter struct {
	enc *json.Encoder
}

// NewJSONLWriter returns a writer to w.
func NewJSONLWriter(w io.Writer) *JSONLWriter {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return &JSONLWriter{enc: enc}
}

// Write writes one row.
func (j *JSONLWriter) Write(r *schemas.AuditRow) error { return j.enc.Encode(r) }

// Flush does nothing: every line goes straight to the underlying writer.
func (j *JSONLWriter) Flush() error { return nil }

// Close does nothing, like Flush.
func (j *JSONLWriter) Close() error { return nil }

// ReadRows reads a data file of the given format and calls fn for every
// row, in file order; fn's error stops the read and is returned. Parquet
// keeps its metadata at the end of the file, so for it r should be an
// io.ReaderAt and io.Seeker (an *os.File, a *bytes.Reader), which is read
// from its current offset; any other reader is copied to a temporary file
// first.
func ReadRows(r io.Reader, format Format, fn func(schemas.AuditRow) error) error {
	switch format {
	case CSV:
		return readCSV(r, fn)
	case JSONL:
		return readJSONL(r, fn)
	case Parquet:
		return readParquet(r, fn)
	}
	return fmt.Errorf("unknown export format %q", format)
}

func readJSONL(r io.Reader, fn func(schemas.AuditRow) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	line := 0
	for sc.Scan() {
		line++
		var row schemas.AuditRow
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&row); err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		if err := fn(row); err != nil {
			return err
		}
	}
	return sc.Err()
}

// csvReader parses RFC 4180 CSV as encoding/csv.Writer writes it. Unlike
// encoding/csv.Reader it keeps a carriage return inside a quoted field
// (encoding/csv.Reader turns "\r\n" into "\n"), so every value reads back
// byte for byte.
type csvReader struct {
	r    *bufio.Reader
	line int
	rec  []string
	buf  []byte
}

// read returns the next record, or io.EOF.
func (c *csvReader) read() ([]string, error) {
	c.rec = c.rec[:0]
	b, err := c.r.ReadByte()
	if err != nil {
		return nil, err
	}
	c.line++
	start := c.line
	for {
		c.buf = c.buf[:0]
		if b == '"' {
			for {
				b, err = c.r.ReadByte()
				if err != nil {
					return nil, fmt.Errorf("line %d: unterminated quoted field", start)
				}
				if b == '"' {
					b, err = c.r.ReadByte()
					if err == nil && b == '"' {
						c.buf = append(c.buf, '"')
						continue
					}
					break
				}
				if b == '\n' {
					c.line++
				}
				c.buf = append(c.buf, b)
			}
		} else {
			for err == nil && b != ',' && b != '\n' {
				if b == '"' {
					return nil, fmt.Errorf("line %d: bare quote in an unquoted field", start)
				}
				c.buf = append(c.buf, b)
				b, err = c.r.ReadByte()
			}
			if b == '\n' || err != nil {
				c.buf = bytes.TrimSuffix(c.buf, []byte{'\r'})
			}
		}
		c.rec = append(c.rec, string(c.buf))
		if err != nil {
			if errors.Is(err, io.EOF) {
				return c.rec, nil
			}
			return nil, err
		}
		switch b {
		case ',':
			b, err = c.r.ReadByte()
			if err != nil && !errors.Is(err, io.EOF) {
				return nil, err
			}
			if err != nil {
				c.rec = append(c.rec, "")
				return c.rec, nil
			}
		case '\n':
			return c.rec, nil
		case '\r':
			if nb, err := c.r.ReadByte(); err == nil && nb == '\n' {
				return c.rec, nil
			}
			return nil, fmt.Errorf("line %d: stray carriage return after a quoted field", start)
		default:
			return nil, fmt.Errorf("line %d: extraneous character after a quoted field", start)
		}
	}
}

func readCSV(r io.Reader, fn func(schemas.AuditRow) error) error {
	cr := &csvReader{r: bufio.NewReaderSize(r, 1<<20)}
	head, err := cr.read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("empty CSV: no header")
		}
		return err
	}
	current := slices.Equal(head, Columns)
	if !current && !slices.Equal(head, previousColumns) {
		return errors.New("CSV header does not name the expected columns")
	}
	for {
		line := cr.line + 1
		rec, err := cr.read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if len(rec) != len(head) {
			return fmt.Errorf("line %d: %d fields, want %d", line, len(rec), len(head))
		}
		if !current {
			// An export without evidence_context: its rows have none.
			i := slices.Index(Columns, "evidence_context")
			rec = slices.Insert(rec, i, "[]")
		}
		row, err := parseRecord(rec)
		if err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		if err := fn(row); err != nil {
			return err
		}
	}
}

// fieldParser collects the first parse error of a record.
type fieldParser struct {
	rec []string
	i   int
	err error
}

func (p *fieldParser) str() string {
	s := UnescapeCell(p.rec[p.i])
	p.i++
	return s
}

func (p *fieldParser) fail(err error) {
	if p.err == nil && err != nil {
		p.err = fmt.Errorf("column %s: %w", Columns[p.i-1], err)
	}
}

func (p *fieldParser) uint(bits int) uint64 {
	v, err := strconv.ParseUint(p.str(), 10, bits)
	p.fail(err)
	return v
}

func (p *fieldParser) int(bits int) int64 {
	v, err := strconv.ParseInt(p.str(), 10, bits)
	p.fail(err)
	return v
}

func (p *fieldParser) time() time.Time {
	t, err := parseTime(p.str())
	p.fail(err)
	return t
}

func (p *fieldParser) bool() bool {
	v, err := strconv.ParseBool(p.str())
	p.fail(err)
	return v
}

func (p *fieldParser) strings() []string {
	var ev []string
	p.fail(json.Unmarshal([]byte(p.str()), &ev))
	if len(ev) == 0 {
		return nil
	}
	return ev
}

func parseRecord(rec []string) (schemas.AuditRow, error) {
	p := &fieldParser{rec: rec}
	var r schemas.AuditRow
	r.Time = p.time()
	r.RowID = p.str()
	r.Chain = p.str()
	r.Seq = p.uint(64)
	r.CommandID = p.str()
	r.Step = schemas.Step(p.str())
	r.Detail = p.str()
	r.Issuer = p.str()
	r.Actor = p.str()
	r.Approver = p.str()
	r.Action = schemas.Action(p.str())
	r.Mode = schemas.Mode(p.str())
	r.TargetKind = schemas.TargetKind(p.str())
	r.UserID = p.str()
	r.TokenID = p.str()
	r.SessionID = p.str()
	r.ClientID = p.str()
	r.IncludeDownscoped = p.bool()
	r.IdPStatus = uint16(p.uint(16))
	r.IdPResponse = p.str()
	r.TokensRevoked = uint32(p.uint(32))
	r.Proof = p.str()
	r.Attempts = uint32(p.uint(32))
	r.RuleID = p.str()
	r.RuleVersion = uint32(p.uint(32))
	r.Severity = schemas.Severity(p.str())
	r.Summary = p.str()
	r.Evidence = p.strings()
	r.EvidenceContext = p.strings()
	r.FirstEventTime = p.time()
	r.LastEventTime = p.time()
	r.DetectedAt = p.time()
	r.IssuedAt = p.time()
	r.ExpiresAt = p.time()
	r.DetectLatencyMs = p.int(64)
	r.RevokeLatencyMs = p.int(64)
	r.SourceTopic = p.str()
	r.SourcePartition = int32(p.int(32))
	r.SourceOffset = p.int(64)
	r.PrevHash = p.str()
	r.Hash = p.str()
	return r, p.err
}
