// Package ingest reads AuditEvents from newline-delimited JSON (files,
// standard input, an HTTP endpoint), validates each line strictly with
// schemas.DecodeEvent, optionally enriches it (WithEnrich) and publishes
// it: a valid event to the events topic,
// keyed by user_id; an invalid line, exactly as received, to the
// dead-letter topic with headers saying why and where it came from. No line
// is dropped without a trace: every rejected line is both dead-lettered and
// reported to the caller.
package ingest

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/internal/config"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/schemas"
)

// Publisher writes messages to Kafka; *kafkax.Writer satisfies it.
//
// WriteMessages blocks until every message is acknowledged (as the writer's
// RequiredAcks say) or returns an error; ctx cancels the wait. A message
// counts as published only when WriteMessages returned nil for its batch.
// Every message names its Topic, so a *kafkax.Writer used here must be
// created without one. It must be safe for concurrent use when one
// Ingester serves several HTTP requests at once.
type Publisher = kafkax.Publisher

// Header names that ingestion adds to dead-lettered lines besides the
// schemas.HeaderDLQ* ones. For a line from a file, schemas.HeaderDLQOffset
// holds its 1-based line number and HeaderDLQSource the file name, so an
// operator can find the line where it came from.
const (
	// HeaderDLQSource names where a rejected line came from: a file path,
	// "stdin", or "http:" and the client address.
	HeaderDLQSource = "dlq-source"
	// HeaderDLQTruncated is "true" when the line was longer than
	// Config.MaxLineBytes and only its first MaxLineBytes bytes travel.
	HeaderDLQTruncated = "dlq-truncated"
)

// Component is the value of schemas.HeaderDLQComponent on dead-lettered lines.
const Component = "producer"

// Config configures an Ingester.
type Config struct {
	// Topic receives valid events.
	Topic string `flag:"topic" env:"TOPIC" yaml:"topic" usage:"topic for valid audit events"`
	// DLQTopic receives rejected lines.
	DLQTopic string `flag:"dlq-topic" env:"DLQ_TOPIC" yaml:"dlq_topic" usage:"dead-letter topic for rejected lines"`
	// UnmappedTopic receives the records a decoder other than the
	// AuditEvent one (WithDecoder) read whole but has no AuditEvent for,
	// as received (see ErrUnmapped).
	UnmappedTopic string `flag:"unmapped-topic" env:"UNMAPPED_TOPIC" yaml:"unmapped_topic" usage:"topic for records read whole that have no AuditEvent (an OCSF class or vendor event type not mapped)"`
	// BatchSize is the number of lines published per WriteMessages call.
	BatchSize int `flag:"batch-size" env:"BATCH_SIZE" yaml:"batch_size" usage:"lines published per batch"`
	// MaxLineBytes bounds one line. A longer line is rejected and its first
	// MaxLineBytes bytes are dead-lettered, with HeaderDLQTruncated set; the
	// rest is skipped, so a line without an end cannot exhaust memory.
	MaxLineBytes int `flag:"max-line-bytes" env:"MAX_LINE_BYTES" yaml:"max_line_bytes" usage:"longest line kept whole; longer lines are dead-lettered truncated"`
	// MaxReportedRejections bounds the rejections listed in a Result; all
	// of them are counted and dead-lettered regardless.
	MaxReportedRejections int `flag:"max-reported-rejections" env:"MAX_REPORTED_REJECTIONS" yaml:"max_reported_rejections" usage:"rejected lines listed in a report (all are dead-lettered)"`
}

// DefaultConfig publishes to the default topics in batches of 500 lines.
func DefaultConfig() Config {
	return Config{
		Topic:                 schemas.TopicAuditEvents,
		DLQTopic:              schemas.TopicDLQ,
		UnmappedTopic:         schemas.TopicUnmapped,
		BatchSize:             500,
		MaxLineBytes:          256 << 10,
		MaxReportedRejections: 1000,
	}
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var p config.Problems
	p.Check(c.Topic != "", "topic", "required")
	p.Check(c.DLQTopic != "", "dlq-topic", "required")
	p.Check(c.Topic != c.DLQTopic, "dlq-topic", "must differ from topic %q", c.Topic)
	p.Check(c.UnmappedTopic != "", "unmapped-topic", "required")
	p.Check(c.UnmappedTopic == "" || c.UnmappedTopic != c.Topic && c.UnmappedTopic != c.DLQTopic,
		"unmapped-topic", "must differ from topic %q and dlq-topic %q", c.Topic, c.DLQTopic)
	p.Check(c.BatchSize > 0, "batch-size", "must be positive")
	p.Check(c.MaxLineBytes >= schemas.MaxEventBytes, "max-line-bytes", "must be at least %d (the largest valid event)", schemas.MaxEventBytes)
	p.Check(c.MaxReportedRejections >= 0, "max-reported-rejections", "must not be negative")
	return p.Err()
}

// Rejection is one rejected line.
type Rejection struct {
	// Line is the 1-based line number in the source.
	Line int64 `json:"line"`
	// Error names the offending fields, e.g. `field "geo.lat": out of range`.
	Error string `json:"error"`
}

// Result reports one ingestion.
type Result struct {
	// Source names what was read (a file, "stdin", "http:<addr>").
	Source string
	// Lines is the number of lines read, blank ones included.
	Lines int64
	// Bytes is the number of bytes read.
	Bytes int64
	// Accepted is the number of valid events published.
	Accepted int64
	// RejectedTotal is the number of lines rejected and dead-lettered.
	RejectedTotal int64
	// Unmapped is the number of records a decoder read whole but had no
	// AuditEvent for (ErrUnmapped), published to Config.UnmappedTopic.
	Unmapped int64
	// Rejected lists the first Config.MaxReportedRejections rejections.
	Rejected []Rejection
	// Blank is the number of empty or white-space lines, skipped.
	Blank int64
	// PublishedThrough is the last line number up to which every line is
	// published (to the events topic or the dead-letter topic). After a
	// failure, resuming after this line loses nothing.
	PublishedThrough int64
}

// Ingester validates and publishes lines. It is safe for concurrent use if
// its Publisher is.
type Ingester struct {
	cfg    Config
	pub    Publisher
	log    zerolog.Logger
	now    func() time.Time
	enrich func(*schemas.AuditEvent)
	decode Decoder
	format string
}

// Decoder turns one line into an AuditEvent. An error wrapping
// ErrUnmapped means the line is a well-formed record of its format that
// has no AuditEvent (an OCSF class that is not accepted, say): the line
// goes to Config.UnmappedTopic. Any other error rejects the line, which is
// dead-lettered. The event a Decoder returns is validated again before it
// is published.
type Decoder func(line []byte) (schemas.AuditEvent, error)

// ErrUnmapped is what a Decoder or a source's mapping wraps for a
// well-formed record that has no AuditEvent; the error's text says why.
var ErrUnmapped = errors.New("no AuditEvent for this record")

// UnmappedType is an error wrapping ErrUnmapped that also names the
// record's type in its format, for schemas.HeaderUnmappedType.
type UnmappedType struct {
	// Type is the vendor's type of the record.
	Type string
	// Reason says why it has no AuditEvent.
	Reason string
}

func (e *UnmappedType) Error() string { return e.Reason }

// Unwrap makes the error match ErrUnmapped.
func (e *UnmappedType) Unwrap() error { return ErrUnmapped }

// Unmapped returns an error wrapping ErrUnmapped for a record of type typ.
func Unmapped(typ, format string, args ...any) error {
	return &UnmappedType{Type: typ, Reason: fmt.Sprintf(format, args...)}
}

// Option adjusts New.
type Option func(*Ingester)

// WithEnrich calls fn on every valid event before it is published, to add
// context to it (internal/enrich's Enricher.Enrich adds the address's
// ASN, location and kind of network). fn must leave the event valid and
// be safe for concurrent use: the HTTP endpoint ingests several requests
// at once.
func WithEnrich(fn func(*schemas.AuditEvent)) Option {
	return func(in *Ingester) { in.enrich = fn }
}

// WithDecoder reads lines of another format than AuditEvent JSON with
// fn; format names it in schemas.HeaderUnmappedFormat ("ocsf", say). fn
// must be safe for concurrent use.
func WithDecoder(format string, fn Decoder) Option {
	return func(in *Ingester) { in.decode, in.format = fn, format }
}

// New returns an Ingester publishing through pub.
func New(cfg Config, pub Publisher, log zerolog.Logger, opts ...Option) (*Ingester, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if pub == nil {
		return nil, errors.New("ingest: nil publisher")
	}
	in := &Ingester{cfg: cfg, pub: pub, log: log.With().Str("component", "ingest").Logger(), now: time.Now,
		decode: schemas.DecodeEvent, format: "audit-event"}
	for _, opt := range opts {
		opt(in)
	}
	if in.decode == nil {
		return nil, errors.New("ingest: nil decoder")
	}
	return in, nil
}

// Progress is called after each published batch with the bytes and lines
// read so far. It runs on the ingesting goroutine and must be quick.
type Progress func(bytes, lines int64)

// Ingest reads newline-delimited events from r until EOF, publishing in
// batches of Config.BatchSize lines. source names r in dead-letter headers
// and logs. It returns the counts so far and the first error: reading r or
// publishing (in which case Result.PublishedThrough says where to resume),
// or ctx's error when it is cancelled. progress may be nil.
func (in *Ingester) Ingest(ctx context.Context, r io.Reader, source string, progress Progress) (Result, error) {
	res := Result{Source: source}
	log := in.log.With().Str("source", source).Logger()
	lr := newLineReader(r, in.cfg.MaxLineBytes)
	batch := make([]kafkax.Message, 0, in.cfg.BatchSize)
	var batchLast int64

	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := in.pub.WriteMessages(ctx, batch...); err != nil {
			return fmt.Errorf("publishing lines %d-%d of %s: %w", res.PublishedThrough+1, batchLast, source, err)
		}
		res.PublishedThrough = batchLast
		clear(batch)
		batch = batch[:0]
		if progress != nil {
			progress(res.Bytes, res.Lines)
		}
		return nil
	}

	for {
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("ingesting %s: %w", source, err)
		}
		line, n, truncated, err := lr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if ferr := flush(); ferr != nil {
				return res, errors.Join(fmt.Errorf("reading %s: %w", source, err), ferr)
			}
			return res, fmt.Errorf("reading %s after line %d: %w", source, res.Lines, err)
		}
		res.Lines++
		res.Bytes += n
		batchLast = res.Lines
		content := trimLine(line)
		if len(strings.TrimSpace(string(content))) == 0 && !truncated {
			res.Blank++
			if len(batch) == 0 {
				// Nothing pending: a blank line is published as far as it
				// ever will be.
				res.PublishedThrough = res.Lines
			}
			continue
		}
		msg, rej := in.message(content, truncated, n, source, res.Lines)
		if isUnmapped(msg, in.cfg.UnmappedTopic) {
			res.Unmapped++
		} else if rej != nil {
			res.RejectedTotal++
			if len(res.Rejected) < in.cfg.MaxReportedRejections {
				res.Rejected = append(res.Rejected, *rej)
			}
			log.Debug().Int64("line", rej.Line).Str("error", rej.Error).Msg("line rejected, dead-lettered")
		} else {
			res.Accepted++
		}
		batch = append(batch, msg)
		if len(batch) >= in.cfg.BatchSize {
			if err := flush(); err != nil {
				return res, err
			}
		}
	}
	if err := flush(); err != nil {
		return res, err
	}
	res.PublishedThrough = res.Lines
	return res, nil
}

// message turns one line into the message to publish: the normalised event
// for the events topic, or the line as received for the dead-letter topic
// together with the Rejection.
func (in *Ingester) message(line []byte, truncated bool, size int64, source string, lineNo int64) (kafkax.Message, *Rejection) {
	var reason string
	if truncated {
		reason = fmt.Sprintf("line is %d bytes, longer than the limit of %d (only the first %d bytes are kept)", size, in.cfg.MaxLineBytes, in.cfg.MaxLineBytes)
	} else {
		ev, err := in.decode(line)
		if errors.Is(err, ErrUnmapped) {
			return UnmappedMessage(in.cfg.UnmappedTopic, in.format, source, "", line, err, in.now()), nil
		}
		if err == nil && in.enrich != nil {
			in.enrich(&ev)
		}
		if err == nil {
			// A decoder other than DecodeEvent built the event: hold it
			// to the same rules as one read from JSON.
			err = ev.Validate()
		}
		if err == nil {
			// Valid events travel re-encoded: compact, with fields in
			// schema order, whatever spacing the source used.
			value, merr := ev.AppendJSON(nil)
			if merr == nil {
				return kafkax.Message{
					Topic:   in.cfg.Topic,
					Key:     ev.Key(),
					Value:   value,
					Headers: []kafkax.Header{{Key: schemas.HeaderSchema, Value: []byte(schemas.SchemaAuditEventV1)}},
				}, nil
			}
			err = fmt.Errorf("re-encoding event: %w", merr)
		}
		reason = Describe(err)
	}
	headers := []kafkax.Header{
		{Key: schemas.HeaderDLQReason, Value: []byte(reason)},
		{Key: schemas.HeaderDLQTopic, Value: []byte(in.cfg.Topic)},
		{Key: schemas.HeaderDLQComponent, Value: []byte(Component)},
		{Key: schemas.HeaderDLQOffset, Value: []byte(strconv.FormatInt(lineNo, 10))},
		{Key: schemas.HeaderDLQTime, Value: []byte(in.now().UTC().Format(time.RFC3339Nano))},
		{Key: HeaderDLQSource, Value: []byte(source)},
	}
	if truncated {
		headers = append(headers, kafkax.Header{Key: HeaderDLQTruncated, Value: []byte("true")})
	}
	value := append([]byte(nil), line...)
	if redacted, paths := schemas.RedactTokenIDs(line); len(paths) > 0 {
		// A raw token where a token id belongs must not live on in the
		// dead-letter topic: store its fingerprint instead.
		sum := sha256.Sum256(line)
		value = redacted
		headers = append(headers,
			kafkax.Header{Key: schemas.HeaderDLQRedacted, Value: []byte(strings.Join(paths, ","))},
			kafkax.Header{Key: schemas.HeaderDLQOriginalSize, Value: []byte(strconv.Itoa(len(line)))},
			kafkax.Header{Key: schemas.HeaderDLQOriginalSHA256, Value: []byte(hex.EncodeToString(sum[:]))},
		)
	}
	return kafkax.Message{
		Topic:   in.cfg.DLQTopic,
		Value:   value,
		Headers: headers,
	}, &Rejection{Line: lineNo, Error: reason}
}

// isUnmapped reports whether msg goes to the unmapped topic.
func isUnmapped(msg kafkax.Message, topic string) bool { return msg.Topic == topic }

// UnmappedMessage is the message that keeps a record without an
// AuditEvent on topic: the record as received, keyed by its id (when
// known), with headers naming its format, its type, why it has no event,
// where it was read and when.
func UnmappedMessage(topic, format, source, id string, record []byte, why error, now time.Time) kafkax.Message {
	typ := ""
	if u, ok := errors.AsType[*UnmappedType](why); ok {
		typ = u.Type
	}
	m := kafkax.Message{
		Topic: topic,
		Value: append([]byte(nil), record...),
		Headers: []kafkax.Header{
			{Key: schemas.HeaderUnmappedFormat, Value: []byte(format)},
			{Key: schemas.HeaderUnmappedType, Value: []byte(typ)},
			{Key: schemas.HeaderUnmappedReason, Value: []byte(why.Error())},
			{Key: schemas.HeaderUnmappedSource, Value: []byte(source)},
			{Key: schemas.HeaderUnmappedTime, Value: []byte(now.UTC().Format(time.RFC3339Nano))},
		},
	}
	if id != "" {
		m.Key = []byte(id)
	}
	return m
}

// Describe renders a decoding error as the list of its field problems,
// `field "geo.lat": out of range [-90, 90]; field "type": required`,
// without the sentinel prefix. Errors without field problems render as is.
func Describe(err error) string {
	var parts []string
	var walk func(error)
	walk = func(e error) {
		if fe, ok := e.(*schemas.FieldError); ok {
			parts = append(parts, fe.Error())
			return
		}
		switch u := e.(type) {
		case interface{ Unwrap() []error }:
			for _, c := range u.Unwrap() {
				walk(c)
			}
		case interface{ Unwrap() error }:
			if c := u.Unwrap(); c != nil {
				walk(c)
			}
		}
	}
	walk(err)
	if len(parts) == 0 {
		return err.Error()
	}
	return strings.Join(parts, "; ")
}

// trimLine drops the line terminator (LF or CRLF).
func trimLine(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	return b
}

// lineReader reads lines of at most max bytes (terminator excluded) without
// holding more than that in memory.
type lineReader struct {
	r   *bufio.Reader
	max int
	buf []byte
}

func newLineReader(r io.Reader, limit int) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, 64<<10), max: limit}
}

// next returns the next line with its terminator, the number of bytes it
// took in the input, and whether it was cut at max bytes. The slice is valid
// until the next call. It returns io.EOF only when no bytes are left.
func (lr *lineReader) next() ([]byte, int64, bool, error) {
	lr.buf = lr.buf[:0]
	var n int64
	truncated := false
	for {
		chunk, err := lr.r.ReadSlice('\n')
		n += int64(len(chunk))
		if !truncated {
			room := lr.max + 2 - len(lr.buf) // the limit plus a CRLF
			if len(chunk) > room {
				lr.buf = append(lr.buf, chunk[:room]...)
				truncated = true
			} else {
				lr.buf = append(lr.buf, chunk...)
			}
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if n == 0 {
				return nil, 0, false, io.EOF
			}
			return lr.finish(truncated), n, lr.cut(truncated), nil
		case err != nil:
			return nil, n, false, err
		}
		return lr.finish(truncated), n, lr.cut(truncated), nil
	}
}

// cut reports whether the line content (terminator excluded) exceeds max.
func (lr *lineReader) cut(truncated bool) bool {
	return truncated || len(trimLine(lr.buf)) > lr.max
}

func (lr *lineReader) finish(truncated bool) []byte {
	if lr.cut(truncated) {
		content := trimLine(lr.buf)
		if len(content) > lr.max {
			content = content[:lr.max]
		}
		return content
	}
	return lr.buf
}
