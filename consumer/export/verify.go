package export

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/revoked-dev/revoked/schemas"
)

// signRaw signs b with s and returns the raw 64-byte Ed25519 signature, so
// that standard tools (openssl pkeyutl -verify -rawin) check it too.
func signRaw(s *schemas.Signer, b []byte) ([]byte, error) {
	raw, err := base64.StdEncoding.DecodeString(s.Sign(b))
	if err != nil || len(raw) != ed25519.SignatureSize {
		return nil, errors.New("signing SHA256SUMS: malformed signature")
	}
	return raw, nil
}

// Errors Verify returns (wrapped), one per kind of failure.
var (
	ErrSums      = errors.New("checksum mismatch")
	ErrSignature = errors.New("signature does not verify")
	ErrManifest  = errors.New("manifest does not match the data")
)

// Result is what Verify checked.
type Result struct {
	Manifest *Manifest
	// Signed: the signature was checked against a trusted key.
	Signed bool
	Rows   int64
}

// Verify checks an export directory: every file SHA256SUMS names has its
// hash and both the data file and the manifest are named; SHA256SUMS.sig is
// a valid signature of SHA256SUMS by a key of keyring (skipped when keyring
// is nil); the data file parses and holds the manifest's row count and
// chain heads. The error names the first thing that failed.
func Verify(dir string, keyring *schemas.Keyring) (*Result, error) {
	sums, err := os.ReadFile(filepath.Join(dir, SumsFile))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSums, err)
	}
	list, err := ParseSums(sums)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSums, err)
	}
	named := map[string]bool{}
	for _, s := range list {
		if s.File != filepath.Base(s.File) || s.File == "." || s.File == ".." {
			return nil, fmt.Errorf("%w: SHA256SUMS names %q outside the export", ErrSums, s.File)
		}
		got, err := hashFile(filepath.Join(dir, s.File))
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrSums, s.File, err)
		}
		if got != s.Hex {
			return nil, fmt.Errorf("%w: %s: SHA-256 is %s, SHA256SUMS says %s", ErrSums, s.File, got, s.Hex)
		}
		named[s.File] = true
	}
	if !named[ManifestFile] {
		return nil, fmt.Errorf("%w: SHA256SUMS does not cover %s", ErrSums, ManifestFile)
	}
	mb, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrManifest, err)
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(mb))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrManifest, ManifestFile, err)
	}
	format, err := ParseFormat(string(m.Format))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrManifest, err)
	}
	if m.DataFile != format.DataFile() {
		return nil, fmt.Errorf("%w: data file %q does not fit format %s", ErrManifest, m.DataFile, format)
	}
	if !named[m.DataFile] {
		return nil, fmt.Errorf("%w: SHA256SUMS does not cover %s", ErrSums, m.DataFile)
	}
	res := &Result{Manifest: &m}
	if keyring != nil {
		sig, err := os.ReadFile(filepath.Join(dir, SignatureFile))
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrSignature, err)
		}
		if err := keyring.Verify(m.KeyID, base64.StdEncoding.EncodeToString(sig), sums); err != nil {
			return nil, fmt.Errorf("%w: %s over %s (key %s): %w", ErrSignature, SignatureFile, SumsFile, m.KeyID, err)
		}
		res.Signed = true
	}

	f, err := os.Open(filepath.Join(dir, m.DataFile))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrManifest, err)
	}
	defer f.Close()
	heads := map[string]*ChainHead{}
	var order []string
	err = ReadRows(f, format, func(r schemas.AuditRow) error {
		res.Rows++
		h := heads[r.Chain]
		if h == nil {
			h = &ChainHead{Chain: r.Chain}
			heads[r.Chain] = h
			order = append(order, r.Chain)
		}
		h.LastSeq, h.Hash = r.Seq, r.Hash
		h.Rows++
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s: %w", ErrManifest, m.DataFile, err)
	}
	if res.Rows != m.Rows {
		return nil, fmt.Errorf("%w: %s holds %d rows, the manifest says %d", ErrManifest, m.DataFile, res.Rows, m.Rows)
	}
	if len(order) != len(m.Chains) {
		return nil, fmt.Errorf("%w: %s holds %d chains, the manifest names %d", ErrManifest, m.DataFile, len(order), len(m.Chains))
	}
	for i, want := range m.Chains {
		got := heads[want.Chain]
		if got == nil || order[i] != want.Chain || *got != want {
			return nil, fmt.Errorf("%w: chain head %q differs from the manifest", ErrManifest, want.Chain)
		}
	}
	return res, nil
}

func hashFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ReadDir reads the rows of an export directory (without verifying it).
func ReadDir(dir string, fn func(schemas.AuditRow) error) (*Manifest, error) {
	mb, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(mb, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", ManifestFile, err)
	}
	if strings.ContainsAny(m.DataFile, `/\`) {
		return nil, fmt.Errorf("%s: bad data file %q", ManifestFile, m.DataFile)
	}
	f, err := os.Open(filepath.Join(dir, m.DataFile))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return &m, ReadRows(f, m.Format, fn)
}
