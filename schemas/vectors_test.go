package schemas

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"
	"time"

	"golang.org/x/crypto/nacl/box"
)

// vectors are frozen inputs and outputs of everything the project derives
// and stores: command ids, audit row ids and chain hashes, checkpoint
// encodings and signatures, token fingerprints. A change to any of these
// functions breaks chains and deduplication already written to ClickHouse
// and Kafka, so it must fail here first (and come with a migration and a
// new version, not a new vectors file).
type vectors struct {
	CommandIDs []struct {
		RuleID      string   `json:"rule_id"`
		RuleVersion int      `json:"rule_version"`
		Target      Target   `json:"target"`
		Evidence    []string `json:"evidence"`
		Want        string   `json:"want"`
	} `json:"command_ids"`
	RowIDs []struct {
		CommandID string `json:"command_id"`
		Step      Step   `json:"step"`
		Topic     string `json:"topic"`
		Partition int32  `json:"partition"`
		Offset    int64  `json:"offset"`
		Want      string `json:"want"`
	} `json:"row_ids"`
	RowHashes []struct {
		Row  AuditRow `json:"row"`
		Want string   `json:"want"`
	} `json:"row_hashes"`
	Checkpoints []struct {
		Seed        string    `json:"ed25519_seed_hex"`
		Chain       string    `json:"chain"`
		Seq         uint64    `json:"seq"`
		Hash        string    `json:"hash"`
		Time        time.Time `json:"time"`
		WantKeyID   string    `json:"want_key_id"`
		WantSigned  string    `json:"want_signed_bytes_hex"`
		WantSigBase string    `json:"want_signature"`
	} `json:"checkpoints"`
	Fingerprints []struct {
		Raw  string `json:"raw"`
		Want string `json:"want"`
	} `json:"fingerprints"`
	// SealedTokens are sealed values from fixed keys (and nonce): an
	// anonymous box (v1, SealToken) and a session box (v2, Sealer).
	// Sealed values wait in Kafka and the DLQ, so the consumer must keep
	// opening what was sealed before.
	SealedTokens []struct {
		Format           string `json:"format"`
		ConsumerPrivate  string `json:"consumer_private_hex"`
		EphemeralPrivate string `json:"ephemeral_private_hex"`
		Nonce            string `json:"nonce_hex,omitempty"`
		Raw              string `json:"raw"`
		Want             string `json:"want"`
	} `json:"sealed_tokens"`
}

func TestFrozenVectors(t *testing.T) {
	data, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.CommandIDs) == 0 || len(v.RowIDs) == 0 || len(v.RowHashes) == 0 || len(v.Checkpoints) == 0 || len(v.Fingerprints) == 0 || len(v.SealedTokens) == 0 {
		t.Fatal("testdata/vectors.json lacks a kind of vector")
	}
	for i, c := range v.CommandIDs {
		if got := DetectionCommandID(c.RuleID, c.RuleVersion, c.Target, c.Evidence); got != c.Want {
			t.Errorf("command_ids[%d]: %s, frozen %s", i, got, c.Want)
		}
	}
	for i, c := range v.RowIDs {
		if got := AuditRowID(c.CommandID, c.Step, c.Topic, c.Partition, c.Offset); got != c.Want {
			t.Errorf("row_ids[%d]: %s, frozen %s", i, got, c.Want)
		}
	}
	for i, c := range v.RowHashes {
		if got := c.Row.ComputeHash(); got != c.Want {
			t.Errorf("row_hashes[%d]: %s, frozen %s", i, got, c.Want)
		}
	}
	for i, c := range v.Checkpoints {
		seed, err := hex.DecodeString(c.Seed)
		if err != nil || len(seed) != ed25519.SeedSize {
			t.Fatalf("checkpoints[%d]: seed %q", i, c.Seed)
		}
		s := NewSigner(ed25519.NewKeyFromSeed(seed))
		cp := NewCheckpoint(s, c.Chain, c.Seq, c.Hash, c.Time)
		if cp.KeyID != c.WantKeyID || hex.EncodeToString(cp.SignedBytes()) != c.WantSigned || cp.Signature != c.WantSigBase {
			t.Errorf("checkpoints[%d]: key %s signed %x signature %s, frozen %s %s %s", i,
				cp.KeyID, cp.SignedBytes(), cp.Signature, c.WantKeyID, c.WantSigned, c.WantSigBase)
		}
		if err := cp.Verify(NewKeyring(s.Public())); err != nil {
			t.Errorf("checkpoints[%d]: %v", i, err)
		}
	}
	for i, c := range v.Fingerprints {
		if got := Fingerprint(c.Raw); got != c.Want {
			t.Errorf("fingerprints[%d]: %s, frozen %s", i, got, c.Want)
		}
	}
	formats := map[string]bool{}
	for i, c := range v.SealedTokens {
		formats[c.Format] = true
		priv, err1 := hex.DecodeString(c.ConsumerPrivate)
		eph, err2 := hex.DecodeString(c.EphemeralPrivate)
		nonce, err3 := hex.DecodeString(c.Nonce)
		if err := errors.Join(err1, err2, err3); err != nil || len(priv) != 32 || len(eph) != 32 {
			t.Fatalf("sealed_tokens[%d]: keys: %v", i, err)
		}
		key, err := ParseSealKey([]byte(base64.StdEncoding.EncodeToString(priv)))
		if err != nil {
			t.Fatalf("sealed_tokens[%d]: %v", i, err)
		}
		var got string
		switch c.Format {
		case "v1":
			out, err := box.SealAnonymous(nil, []byte(c.Raw), &key.Public, bytes.NewReader(eph))
			if err != nil {
				t.Fatalf("sealed_tokens[%d]: %v", i, err)
			}
			got = base64.StdEncoding.EncodeToString(out)
		case "v2":
			e, err := ecdh.X25519().NewPrivateKey(eph)
			if err != nil {
				t.Fatalf("sealed_tokens[%d]: %v", i, err)
			}
			s, err := newSealer(key.Public, e, bytes.NewReader(nonce))
			if err != nil {
				t.Fatalf("sealed_tokens[%d]: %v", i, err)
			}
			if got, err = s.Seal(c.Raw); err != nil {
				t.Fatalf("sealed_tokens[%d]: %v", i, err)
			}
		default:
			t.Fatalf("sealed_tokens[%d]: format %q", i, c.Format)
		}
		if got != c.Want {
			t.Errorf("sealed_tokens[%d] (%s): %s, frozen %s", i, c.Format, got, c.Want)
		}
		if opened, err := key.Open(c.Want); err != nil || opened != c.Raw {
			t.Errorf("sealed_tokens[%d] (%s): frozen value opens as %q, %v", i, c.Format, opened, err)
		}
	}
	if !formats["v1"] || !formats["v2"] {
		t.Errorf("sealed_tokens lacks a format: %v", formats)
	}
}
