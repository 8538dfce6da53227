package export_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/revoked-dev/revoked/consumer/export"
	"github.com/revoked-dev/revoked/schemas"
)

// TestParquetSchema checks the columns of a Parquet export: the JSON names
// of schemas.AuditRow in order, timestamps as optional TIMESTAMP(MILLIS,
// UTC), evidence and evidence context as LISTs of strings, enums and text
// as STRING.
func TestParquetSchema(t *testing.T) {
	s := export.ParquetSchema()
	var names []string
	for _, f := range s.Fields() {
		names = append(names, f.Name())
	}
	if want := schemas.AuditColumnNames(); !slices.Equal(names, want) {
		t.Fatalf("columns\n got %v\nwant %v", names, want)
	}
	timestamps := []string{"time", "first_event_time", "last_event_time", "detected_at", "issued_at", "expires_at"}
	for _, f := range s.Fields() {
		switch name := f.Name(); {
		case slices.Contains(timestamps, name):
			ts, ok := logical(f).(*format.TimestampType)
			if !ok || !ts.IsAdjustedToUTC || !isMillis(ts.Unit) || !f.Optional() || f.Type().Kind() != parquet.Int64 {
				t.Errorf("%s: %v optional=%v, want optional TIMESTAMP(MILLIS, UTC)", name, f.Type(), f.Optional())
			}
		case name == "evidence" || name == "evidence_context":
			if _, ok := logical(f).(*format.ListType); !ok || f.Optional() {
				t.Errorf("%s: %v, want a required LIST", name, f.Type())
			}
			elem := f.Fields()[0].Fields()[0]
			if _, ok := logical(elem).(*format.StringType); !ok {
				t.Errorf("%s elements: %v, want STRING", name, elem.Type())
			}
		case f.Type().Kind() == parquet.ByteArray:
			if _, ok := logical(f).(*format.StringType); !ok || f.Optional() {
				t.Errorf("%s: %v, want a required STRING", name, f.Type())
			}
		}
	}
	for _, name := range []string{"step", "target_kind", "action", "mode", "severity"} {
		f, _ := s.Lookup(name)
		if _, ok := logical(f.Node).(*format.StringType); !ok {
			t.Errorf("enum %s: %v, want STRING", name, f.Node.Type())
		}
	}
	for name, want := range map[string]format.IntType{
		"seq":            {BitWidth: 64, IsSigned: false},
		"idp_status":     {BitWidth: 16, IsSigned: false},
		"rule_version":   {BitWidth: 32, IsSigned: false},
		"tokens_revoked": {BitWidth: 32, IsSigned: false},
	} {
		f, _ := s.Lookup(name)
		if it, ok := logical(f.Node).(*format.IntType); !ok || *it != want {
			t.Errorf("%s: %v, want INT(%d, %v)", name, f.Node.Type(), want.BitWidth, want.IsSigned)
		}
	}
}

func logical(n parquet.Node) format.LogicalTypeValue {
	if lt := n.Type().LogicalType(); lt != nil {
		return lt.Value
	}
	return nil
}

func isMillis(u format.TimeUnit) bool {
	_, ok := u.Value.(*format.MilliSeconds)
	return ok
}

// edgeRows are rows at the limits of every field's type.
func edgeRows() []schemas.AuditRow {
	rows := makeRows(6, 1)
	r := &rows[0]
	r.Time = time.Unix(0, 0).UTC() // the epoch is a value, not null
	r.FirstEventTime = time.Time{}
	r.LastEventTime = time.Date(1900, 1, 1, 0, 0, 0, 1e6, time.UTC)
	r.DetectedAt = time.Date(9999, 12, 31, 23, 59, 59, 999e6, time.UTC)
	r.IssuedAt = time.Unix(-1, 999e6).UTC()
	r.ExpiresAt = time.Time{}
	r.Seq = math.MaxUint64
	r.IdPStatus = math.MaxUint16
	r.TokensRevoked, r.Attempts, r.RuleVersion = math.MaxUint32, math.MaxUint32, math.MaxUint32
	r.DetectLatencyMs, r.RevokeLatencyMs = math.MinInt64, math.MaxInt64
	r.SourcePartition, r.SourceOffset = math.MinInt32, math.MinInt64
	r.Evidence = []string{"", "two\nlines", "\x00nul", strings.Repeat("x", 300)}
	r.IncludeDownscoped = true
	// every time zero, every string empty
	rows[1] = schemas.AuditRow{}
	rows[2].Time = time.Date(2026, 3, 1, 12, 0, 0, 0, time.FixedZone("CET", 3600)) // read back in UTC
	rows[3].Evidence = []string{""}
	rows[3].FirstEventTime = time.Date(1, 1, 1, 0, 0, 0, 1e6, time.UTC) // a millisecond after the zero time
	rows[3].ExpiresAt = time.Date(100000, 1, 1, 0, 0, 0, 0, time.UTC)
	rows[4].Evidence = nil
	return rows
}

func writeParquet(t *testing.T, rows []schemas.AuditRow) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := export.NewParquetWriter(&buf)
	for i := range rows {
		if err := w.Write(&rows[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestParquetRoundTripExact writes rows at the limits of every field and
// reads them back field for field, from an io.ReaderAt and from a plain
// io.Reader (spooled to a temporary file).
func TestParquetRoundTripExact(t *testing.T) {
	rows := edgeRows()
	b := writeParquet(t, rows)
	want := slices.Clone(rows)
	want[2].Time = want[2].Time.UTC()
	for name, r := range map[string]io.Reader{
		"ReaderAt": bytes.NewReader(b),
		"Reader":   io.MultiReader(bytes.NewReader(b)),
	} {
		t.Run(name, func(t *testing.T) {
			var got []schemas.AuditRow
			if err := export.ReadRows(r, export.Parquet, func(r schemas.AuditRow) error {
				got = append(got, r)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("read %d rows, want %d", len(got), len(want))
			}
			for i := range want {
				if !reflect.DeepEqual(got[i], want[i]) {
					t.Errorf("row %d differs: %s", i, fieldDiff(got[i], want[i]))
				}
			}
			if !got[0].Time.Equal(time.Unix(0, 0)) || got[0].Time.IsZero() || !got[1].Time.IsZero() || !got[0].ExpiresAt.IsZero() {
				t.Errorf("epoch and zero time: %v %v %v", got[0].Time, got[1].Time, got[0].ExpiresAt)
			}
		})
	}
}

// TestParquetRowGroups checks that rows are written in row groups of at
// most export.ParquetRowGroupRows rows, so neither writer nor reader holds
// the whole file.
func TestParquetRowGroups(t *testing.T) {
	n := 2*export.ParquetRowGroupRows + 100
	rows := makeRows(n, 2)
	b := writeParquet(t, rows)
	f, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	var sizes []int64
	for _, rg := range f.RowGroups() {
		sizes = append(sizes, rg.NumRows())
	}
	want := []int64{export.ParquetRowGroupRows, export.ParquetRowGroupRows, 100}
	if !slices.Equal(sizes, want) {
		t.Fatalf("row groups of %v rows, want %v", sizes, want)
	}
	for _, c := range f.Metadata().RowGroups[0].Columns {
		if c.MetaData.Codec != format.Zstd {
			t.Fatalf("column %v compressed with %v, want ZSTD", c.MetaData.PathInSchema, c.MetaData.Codec)
		}
	}
	i := 0
	if err := export.ReadRows(bytes.NewReader(b), export.Parquet, func(r schemas.AuditRow) error {
		if !sameRow(&r, &rows[i]) {
			t.Fatalf("row %d differs", i)
		}
		i++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if i != n {
		t.Fatalf("read %d rows, want %d", i, n)
	}
}

func TestParquetRefusesSubMillisecondTimes(t *testing.T) {
	rows := makeRows(1, 1)
	rows[0].DetectedAt = rows[0].DetectedAt.Add(time.Microsecond)
	w := export.NewParquetWriter(io.Discard)
	if err := w.Write(&rows[0]); err == nil || !strings.Contains(err.Error(), "detected_at") {
		t.Fatalf("Write = %v, want an error naming detected_at", err)
	}
}

// TestParquetForeignFileIsRefused: a Parquet file with other columns is
// not read as an export (parquet-go would convert it, filling in zeros).
func TestParquetForeignFileIsRefused(t *testing.T) {
	type other struct {
		RowID string `parquet:"row_id"`
		Chain string `parquet:"chain"`
	}
	var buf bytes.Buffer
	if err := parquet.Write(&buf, []other{{"a", "b"}}); err != nil {
		t.Fatal(err)
	}
	err := export.ReadRows(bytes.NewReader(buf.Bytes()), export.Parquet, func(schemas.AuditRow) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "schema") {
		t.Fatalf("ReadRows = %v, want a schema error", err)
	}

	// The same inside an export whose sums are recomputed.
	store := newStore(t, makeRows(20, 1))
	signer, _ := newSigner(t)
	dir, _ := doExport(t, store, export.Parquet, signer, nil)
	data := filepath.Join(dir, export.Parquet.DataFile())
	if err := os.WriteFile(data, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	rewriteSums(t, dir, export.Parquet.DataFile())
	if _, err := export.Verify(dir, nil); !errors.Is(err, export.ErrManifest) {
		t.Fatalf("Verify = %v, want %v", err, export.ErrManifest)
	}
}

// TestParquetCorruptPagesFail flips bytes across a Parquet file: reading it
// must fail or return rows, never panic.
func TestParquetCorruptPagesFail(t *testing.T) {
	b := writeParquet(t, makeRows(500, 2))
	for i := 4; i < len(b)-8; i += max(1, len(b)/97) {
		c := slices.Clone(b)
		c[i] ^= 0xff
		_ = export.ReadRows(bytes.NewReader(c), export.Parquet, func(schemas.AuditRow) error { return nil })
	}
	if err := export.ReadRows(bytes.NewReader(b[:len(b)-1]), export.Parquet, func(schemas.AuditRow) error { return nil }); err == nil {
		t.Fatal("a file without its last byte reads")
	}
}

// fieldDiff names the fields in which a and b differ.
func fieldDiff(a, b schemas.AuditRow) string {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	var out []string
	for i := range va.NumField() {
		if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			out = append(out, fmt.Sprintf("%s: got %#v, want %#v", va.Type().Field(i).Name, va.Field(i).Interface(), vb.Field(i).Interface()))
		}
	}
	return strings.Join(out, "; ")
}
