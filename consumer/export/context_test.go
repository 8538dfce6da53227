package export_test

import (
	"crypto/ed25519"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/consumer/export"
	"github.com/revoked-dev/revoked/schemas"
)

// Exports made before the audit row had evidence_context
// (testdata/earlier-*: 24 rows on 2 chains, signed with the key of seed
// 1..32, written by that release) still verify and read back, their rows
// without context and hashing as they did.
func TestEarlierExportsVerify(t *testing.T) {
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = byte(i + 1)
	}
	keyring := schemas.NewKeyring(schemas.NewSigner(ed25519.NewKeyFromSeed(seed)).Public())
	for _, f := range formats {
		t.Run(string(f), func(t *testing.T) {
			dir := filepath.Join("testdata", "earlier-"+string(f))
			res, err := export.Verify(dir, keyring)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !res.Signed || res.Rows != 24 {
				t.Errorf("Verify: signed %t, %d rows; want signed, 24", res.Signed, res.Rows)
			}
			chains := map[string][]schemas.AuditRow{}
			if _, err := export.ReadDir(dir, func(r schemas.AuditRow) error {
				if r.EvidenceContext != nil {
					t.Errorf("row %s has evidence context %q", r.RowID, r.EvidenceContext)
				}
				chains[r.Chain] = append(chains[r.Chain], r)
				return nil
			}); err != nil {
				t.Fatalf("ReadDir: %v", err)
			}
			for name, rows := range chains {
				if err := audit.VerifyChain(rows); err != nil {
					t.Errorf("chain %s: %v", name, err)
				}
			}
		})
	}
}

// Rows with evidence context go through every format and back exactly,
// hashes included; the CSV cell is a JSON array of the entries.
func TestEvidenceContextRoundTrip(t *testing.T) {
	rows := makeRows(30, 2)
	prev := map[string]string{}
	for i := range rows {
		r := &rows[i]
		switch i % 3 {
		case 0:
			r.EvidenceContext = nil
		case 1:
			r.EvidenceContext = schemas.EncodeEventContexts([]schemas.EventContext{
				{EventID: "ev-" + tricky[i%len(tricky)], IP: "2001:db8::1", Country: "NL", ASN: 1136, ASOrg: "KPN B.V.", Network: schemas.NetworkResidential},
				{EventID: "@ev2", IP: "192.0.2.9"},
			})
		case 2:
			r.EvidenceContext = []string{"=" + tricky[i%len(tricky)], ""}
		}
		r.PrevHash = prev[r.Chain]
		r.Hash = r.ComputeHash()
		prev[r.Chain] = r.Hash
	}
	signer, keyring := newSigner(t)
	store := newStore(t, rows)
	for _, f := range formats {
		t.Run(string(f), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "export")
			if _, err := export.Export(t.Context(), store, export.Options{Dir: dir, Format: f, Signer: signer}); err != nil {
				t.Fatal(err)
			}
			if _, err := export.Verify(dir, keyring); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			got := map[string]schemas.AuditRow{}
			if _, err := export.ReadDir(dir, func(r schemas.AuditRow) error {
				got[r.RowID] = r
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			for _, want := range rows {
				g, ok := got[want.RowID]
				if !ok {
					t.Fatalf("row %s missing", want.RowID)
				}
				if !slices.Equal(g.EvidenceContext, want.EvidenceContext) || (want.EvidenceContext == nil) != (g.EvidenceContext == nil) {
					t.Errorf("row %s: evidence context %q, want %q", want.RowID, g.EvidenceContext, want.EvidenceContext)
				}
				if h := g.ComputeHash(); h != want.Hash {
					t.Errorf("row %s: hash after the round trip %s, want %s", want.RowID, h, want.Hash)
				}
			}
		})
	}
	if i := slices.Index(export.Columns, "evidence_context"); i != slices.Index(export.Columns, "evidence")+1 {
		t.Errorf("CSV columns %v: evidence_context is not after evidence", export.Columns)
	}
	var entries []string
	if err := json.Unmarshal([]byte(`["{\"event_id\":\"a\",\"ip\":\"192.0.2.1\"}"]`), &entries); err != nil || !strings.Contains(entries[0], "192.0.2.1") {
		t.Fatal("the CSV cell's shape is a JSON array of strings")
	}
}
