package schemas

import (
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"
	"time"
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
	if len(v.CommandIDs) == 0 || len(v.RowIDs) == 0 || len(v.RowHashes) == 0 || len(v.Checkpoints) == 0 || len(v.Fingerprints) == 0 {
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
}
