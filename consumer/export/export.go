// Package export writes compliance exports of the audit trail: the rows of a
// time range as CSV, JSON Lines or Parquet, a manifest describing them, a
// SHA256SUMS file that "sha256sum -c" accepts, and a detached Ed25519
// signature over SHA256SUMS. Verify checks such a directory.
//
// Every row carries what PCI DSS 10.2/10.3 asks an audit record to hold:
// who (actor, approver, issuer), what (step, action, target), when (time),
// the outcome (step, IdP status), the origin (source topic, partition,
// offset and issuer) and the affected resource (target kind and ids).
package export

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/internal/progress"
	"github.com/revoked-dev/revoked/schemas"
)

// Format is the data file's format.
type Format string

// Supported formats.
const (
	CSV     Format = "csv"
	JSONL   Format = "jsonl"
	Parquet Format = "parquet"
)

// File names in an export directory.
const (
	ManifestFile  = "manifest.json"
	SumsFile      = "SHA256SUMS"
	SignatureFile = "SHA256SUMS.sig"
)

// DefaultPageRows is the number of rows read from the store per query.
const DefaultPageRows = 10000

// ParseFormat parses "csv", "jsonl" or "parquet".
func ParseFormat(s string) (Format, error) {
	switch Format(s) {
	case CSV, JSONL, Parquet:
		return Format(s), nil
	}
	return "", fmt.Errorf("unknown export format %q (want csv, jsonl or parquet)", s)
}

// DataFile is the name of the data file of a format.
func (f Format) DataFile() string { return "rows." + string(f) }

// Options configures Export.
type Options struct {
	// Dir receives the files; it is created if missing and must not hold
	// an export already.
	Dir    string
	Format Format
	// From and To select From <= time < To at whole seconds, like
	// audit.Query; a zero bound leaves that side open.
	From, To time.Time
	// UserID and RuleID filter the rows when set.
	UserID, RuleID string
	// Signer signs SHA256SUMS. Required.
	Signer *schemas.Signer
	// ToolVersion goes into the manifest.
	ToolVersion string
	// PageRows is the number of rows read per store query (DefaultPageRows
	// when <= 0).
	PageRows int
	// Progress, when set, counts exported rows.
	Progress *progress.Bar
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// ChainHead is the last exported row of one chain.
type ChainHead struct {
	Chain   string `json:"chain"`
	LastSeq uint64 `json:"last_seq"`
	Hash    string `json:"hash"`
	Rows    int64  `json:"rows"`
}

// Filters are the row filters of an export.
type Filters struct {
	UserID string `json:"user_id,omitempty"`
	RuleID string `json:"rule_id,omitempty"`
}

// Manifest describes an export.
type Manifest struct {
	Version     int         `json:"version"`
	Tool        string      `json:"tool"`
	ToolVersion string      `json:"tool_version"`
	CreatedAt   time.Time   `json:"created_at"`
	From        *time.Time  `json:"from,omitempty"`
	To          *time.Time  `json:"to,omitempty"`
	Filters     Filters     `json:"filters"`
	Format      Format      `json:"format"`
	DataFile    string      `json:"data_file"`
	Rows        int64       `json:"rows"`
	DataBytes   int64       `json:"data_bytes"`
	Chains      []ChainHead `json:"chains"`
	// KeyID names the Ed25519 key whose signature is in SHA256SUMS.sig.
	KeyID string `json:"key_id"`
	// SignatureAlgorithm says how SHA256SUMS.sig is made.
	SignatureAlgorithm string `json:"signature_algorithm"`
}

// rowWriter writes rows in one format. Close writes what is buffered and
// any trailer (Parquet's footer), not closing the underlying writer.
type rowWriter interface {
	Write(r *schemas.AuditRow) error
	Close() error
}

func (o Options) validate() error {
	var errs []error
	if o.Dir == "" {
		errs = append(errs, errors.New("no output directory"))
	}
	if _, err := ParseFormat(string(o.Format)); err != nil {
		errs = append(errs, err)
	}
	if o.Signer == nil {
		errs = append(errs, errors.New("no signing key"))
	}
	if !o.From.IsZero() && !o.To.IsZero() && !o.From.Before(o.To) {
		errs = append(errs, errors.New("from must be before to"))
	}
	return errors.Join(errs...)
}

// match applies the time range and filters as audit.Query does.
func (o Options) match(r *schemas.AuditRow) bool {
	t := r.Time.Truncate(time.Second)
	if !o.From.IsZero() && t.Before(o.From.Truncate(time.Second)) {
		return false
	}
	if !o.To.IsZero() && !t.Before(o.To.Truncate(time.Second)) {
		return false
	}
	if o.UserID != "" && r.UserID != o.UserID {
		return false
	}
	if o.RuleID != "" && r.RuleID != o.RuleID {
		return false
	}
	return true
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Export writes the rows of store that opts selects, in chain and Seq order
// (Store.Chains, then Store.ChainRows paged by Seq: an order that rows
// appended during the export cannot shift), with the manifest, SHA256SUMS
// and its signature.
func Export(ctx context.Context, store audit.Store, opts Options) (*Manifest, error) {
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if opts.PageRows <= 0 {
		opts.PageRows = DefaultPageRows
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	for _, name := range []string{ManifestFile, SumsFile, SignatureFile, opts.Format.DataFile()} {
		if _, err := os.Lstat(filepath.Join(opts.Dir, name)); err == nil {
			return nil, fmt.Errorf("export: %s already exists in %s", name, opts.Dir)
		}
	}
	m := &Manifest{
		Version:            1,
		Tool:               "revoked consumer export",
		ToolVersion:        opts.ToolVersion,
		CreatedAt:          now().UTC().Truncate(time.Millisecond),
		Filters:            Filters{UserID: opts.UserID, RuleID: opts.RuleID},
		Format:             opts.Format,
		DataFile:           opts.Format.DataFile(),
		Chains:             []ChainHead{},
		KeyID:              opts.Signer.KeyID(),
		SignatureAlgorithm: "ed25519 over the bytes of SHA256SUMS, raw 64-byte signature",
	}
	if !opts.From.IsZero() {
		t := opts.From.UTC().Truncate(time.Second)
		m.From = &t
	}
	if !opts.To.IsZero() {
		t := opts.To.UTC().Truncate(time.Second)
		m.To = &t
	}

	dataPath := filepath.Join(opts.Dir, m.DataFile)
	f, err := os.OpenFile(dataPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	cw := &countingWriter{w: io.MultiWriter(f, h)}
	bw := bufio.NewWriterSize(cw, 1<<20)
	var rw rowWriter
	switch opts.Format {
	case CSV:
		rw, err = NewCSVWriter(bw)
		if err != nil {
			return nil, fmt.Errorf("export: %w", err)
		}
	case JSONL:
		rw = NewJSONLWriter(bw)
	case Parquet:
		rw = NewParquetWriter(bw)
	}

	chains, err := store.Chains(ctx)
	if err != nil {
		return nil, fmt.Errorf("export: listing chains: %w", err)
	}
	for _, chain := range chains {
		var head *ChainHead
		var after uint64
		// Rows sharing a page's last Seq (conflicting copies) may continue
		// on the next page, so the next page starts just before that Seq
		// and skips the copies already written, by hash.
		var lastSeq uint64
		seen := map[string]bool{}
		for {
			rows, err := store.ChainRows(ctx, chain, after, opts.PageRows)
			if err != nil {
				return nil, fmt.Errorf("export: reading chain %q after seq %d: %w", chain, after, err)
			}
			fresh := 0
			for i := range rows {
				r := &rows[i]
				if r.Seq == lastSeq && seen[r.Hash] {
					continue
				}
				if r.Seq != lastSeq {
					lastSeq = r.Seq
					clear(seen)
				}
				seen[r.Hash] = true
				fresh++
				if !opts.match(r) {
					continue
				}
				if err := rw.Write(r); err != nil {
					return nil, fmt.Errorf("export: writing %s: %w", m.DataFile, err)
				}
				m.Rows++
				if head == nil {
					head = &ChainHead{Chain: chain}
				}
				head.LastSeq, head.Hash = r.Seq, r.Hash
				head.Rows++
				opts.Progress.Add(1)
			}
			if len(rows) < opts.PageRows {
				break
			}
			if fresh == 0 {
				return nil, fmt.Errorf("export: chain %q holds at least %d copies of seq %d; raise the page size", chain, opts.PageRows, lastSeq)
			}
			after = lastSeq - 1
		}
		if head != nil {
			m.Chains = append(m.Chains, *head)
		}
	}
	if err := rw.Close(); err != nil {
		return nil, fmt.Errorf("export: writing %s: %w", m.DataFile, err)
	}
	if err := bw.Flush(); err != nil {
		return nil, fmt.Errorf("export: writing %s: %w", m.DataFile, err)
	}
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	m.DataBytes = cw.n
	dataSum := hex.EncodeToString(h.Sum(nil))

	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	mb = append(mb, '\n')
	if err := writeFile(filepath.Join(opts.Dir, ManifestFile), mb); err != nil {
		return nil, err
	}
	ms := sha256.Sum256(mb)
	sums := []byte(FormatSums([]Sum{{Hex: dataSum, File: m.DataFile}, {Hex: hex.EncodeToString(ms[:]), File: ManifestFile}}))
	if err := writeFile(filepath.Join(opts.Dir, SumsFile), sums); err != nil {
		return nil, err
	}
	sig, err := signRaw(opts.Signer, sums)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if err := writeFile(filepath.Join(opts.Dir, SignatureFile), sig); err != nil {
		return nil, err
	}
	opts.Progress.Finish()
	return m, nil
}

func writeFile(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("export: writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("export: %w", err)
	}
	return f.Close()
}

// Sum is one line of SHA256SUMS.
type Sum struct {
	Hex  string
	File string
}

// FormatSums renders sums the way sha256sum prints them (text mode: two
// spaces between the hash and the name).
func FormatSums(sums []Sum) string {
	var b strings.Builder
	for _, s := range sums {
		b.WriteString(s.Hex)
		b.WriteString("  ")
		b.WriteString(s.File)
		b.WriteByte('\n')
	}
	return b.String()
}

// ParseSums parses SHA256SUMS as FormatSums writes it (a '*' binary-mode
// marker is accepted too).
func ParseSums(b []byte) ([]Sum, error) {
	var out []Sum
	for i, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		hexs, file, ok := strings.Cut(line, " ")
		if !ok || len(hexs) != 64 || len(file) < 2 || (file[0] != ' ' && file[0] != '*') {
			return nil, fmt.Errorf("SHA256SUMS line %d is malformed", i+1)
		}
		if _, err := hex.DecodeString(hexs); err != nil {
			return nil, fmt.Errorf("SHA256SUMS line %d: %w", i+1, err)
		}
		out = append(out, Sum{Hex: strings.ToLower(hexs), File: file[1:]})
	}
	return out, nil
}
