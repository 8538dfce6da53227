package stack

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/revoked-dev/revoked/schemas"
)

// The checkpoint key is made once in the key directory and read back on
// the next start, with its public half beside it for consumer verify, so
// a trail written over several runs stays anchored to one key.
func TestCheckpointKeyIsKept(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	first, err := checkpointKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	again, err := checkpointKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !first.Equal(again) {
		t.Fatal("the second start made another key")
	}
	keyring, err := schemas.LoadPublicKeyFiles(filepath.Join(dir, CheckpointPublicKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	cp := schemas.NewCheckpoint(schemas.NewSigner(again), "consumer-local", 1, "00", time.Now())
	if err := cp.Verify(keyring); err != nil {
		t.Errorf("a checkpoint of the kept key does not verify with the written public key: %v", err)
	}
	if st, err := os.Stat(filepath.Join(dir, CheckpointKeyFile)); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("private key file: %v %v", st, err)
	}
	if _, err := checkpointKey(""); err != nil {
		t.Errorf("in-memory key: %v", err)
	}
}
