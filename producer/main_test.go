package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/kafka/kafkatest"
	"github.com/revoked-dev/revoked/schemas"
)

func runCLI(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(t.Context(), args, strings.NewReader(stdin), &out, &errOut)
	if err != nil {
		t.Logf("stderr: %s", errOut.String())
	}
	return out.String(), err
}

func header(m kafkax.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func TestKeygen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	if _, err := runCLI(t, "", "keygen", "--out", dir); err != nil {
		t.Fatal(err)
	}
	for name, mode := range map[string]os.FileMode{signingKeyFile: 0o600, signingPubFile: 0o644, sealKeyFile: 0o600, sealPubFile: 0o644} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != mode {
			t.Errorf("%s has mode %v, want %v", name, st.Mode().Perm(), mode)
		}
	}
	priv, err := schemas.LoadPrivateKeyFile(filepath.Join(dir, signingKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	ring, err := schemas.LoadPublicKeyFiles(filepath.Join(dir, signingPubFile))
	if err != nil {
		t.Fatal(err)
	}
	signer := schemas.NewSigner(priv)
	if err := ring.Verify(signer.KeyID(), signer.Sign([]byte("x")), []byte("x")); err != nil {
		t.Fatalf("the key pair does not match: %v", err)
	}
	sealData, _ := os.ReadFile(filepath.Join(dir, sealKeyFile))
	seal, err := schemas.ParseSealKey(sealData)
	if err != nil {
		t.Fatal(err)
	}
	pubData, _ := os.ReadFile(filepath.Join(dir, sealPubFile))
	if strings.TrimSpace(string(pubData)) != seal.PublicBase64() {
		t.Fatal("seal.pub does not match seal.key")
	}
	if _, err := runCLI(t, "", "keygen", "--out", dir); err == nil {
		t.Fatal("keygen must not overwrite keys")
	}
}

// TestKeygenIfMissing checks what a deployment's start relies on: with
// -if-missing keygen writes the checkpoint key pair and the secrets once,
// keeps them on the next run, and refuses half a key pair.
func TestKeygenIfMissing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	args := []string{"keygen", "--out", dir, "--checkpoint", "--secrets", "api-token,idp-client-secret", "--if-missing"}
	if _, err := runCLI(t, "", args...); err != nil {
		t.Fatal(err)
	}
	read := func(name string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	token := read("api-token")
	if n := len(strings.TrimSpace(token)); n != 43 {
		t.Errorf("api-token has %d characters, want 43 (32 bytes base64url)", n)
	}
	if st, err := os.Stat(filepath.Join(dir, "idp-client-secret")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("idp-client-secret: %v, mode %v", err, st.Mode().Perm())
	}
	priv, err := schemas.ParsePrivateKey([]byte(read(checkpointKeyFile)))
	if err != nil {
		t.Fatal(err)
	}
	ring, err := schemas.LoadPublicKeyFiles(filepath.Join(dir, checkpointPubFile))
	if err != nil {
		t.Fatal(err)
	}
	cp := schemas.NewSigner(priv)
	if err := ring.Verify(cp.KeyID(), cp.Sign([]byte("x")), []byte("x")); err != nil {
		t.Fatalf("the checkpoint key pair does not match: %v", err)
	}
	signing := read(signingKeyFile)

	// Again: nothing changes.
	out, err := runCLI(t, "", args...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "nothing written") || read("api-token") != token || read(signingKeyFile) != signing {
		t.Fatalf("a second run changed files or said %q", out)
	}

	// A secret removed is written anew; half a key pair is refused.
	if err := os.Remove(filepath.Join(dir, "api-token")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, sealPubFile)); err != nil {
		t.Fatal(err)
	}
	_, err = runCLI(t, "", args...)
	if err == nil || !strings.Contains(err.Error(), sealKeyFile) {
		t.Fatalf("half a seal key pair: err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "api-token")); err == nil {
		t.Fatal("a refused run wrote a file")
	}
	if _, err := runCLI(t, "", "keygen", "--out", dir, "--secrets", "../x"); err == nil {
		t.Fatal("a secret name with a directory was accepted")
	}
}

func TestCommandsAgainstBroker(t *testing.T) {
	c := kafkatest.New(t, schemas.TopicAuditEvents, schemas.TopicDLQ, schemas.TopicRevokeCommands)
	brokers := "--kafka.brokers=" + c.Addr()
	dir := t.TempDir()

	// ingest --file, twice.
	f1, f2 := filepath.Join(dir, "a.jsonl"), filepath.Join(dir, "b.jsonl")
	_ = os.WriteFile(f1, []byte(`{"id":"e1","time":"2026-03-01T10:00:00Z","type":"logout","user_id":"alice"}`+"\n"+`{"id":"e2"}`+"\n"), 0o600)
	_ = os.WriteFile(f2, []byte(`{"id":"e3","time":"2026-03-01T10:00:00Z","type":"logout","user_id":"bob"}`+"\n"), 0o600)
	out, err := runCLI(t, "", "ingest", brokers, "--file", f1, "--file", f2)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "line 2: ") || !strings.Contains(out, "total: 3 lines, 2 accepted, 1 rejected") {
		t.Errorf("report:\n%s", out)
	}
	// ingest --stdin.
	if _, err := runCLI(t, `{"id":"e4","time":"2026-03-01T10:00:00Z","type":"logout","user_id":"carol"}`+"\n", "ingest", brokers, "--stdin"); err != nil {
		t.Fatal(err)
	}
	c.WaitRecords(t, schemas.TopicAuditEvents, 3)
	c.WaitRecords(t, schemas.TopicDLQ, 1)
	if _, err := runCLI(t, "", "ingest", brokers); err == nil {
		t.Error("ingest without a source must fail")
	}

	// simulate with the fast clock. The run is kept small: kafkatest
	// reads a topic back with a 10 ms fetch deadline, which a large
	// partition misses under the race detector.
	gt := filepath.Join(dir, "truth.jsonl")
	out, err = runCLI(t, "", "simulate", brokers, "--clock", "fast", "--users", "5", "--events", "400",
		"--seed", "7", "--brute-force-prob", "0.3", "--replay-prob", "0.3", "--ground-truth", gt)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "published 400 events") {
		t.Errorf("simulate said %q", out)
	}
	c.WaitRecords(t, schemas.TopicAuditEvents, 3+400)
	truth, err := os.ReadFile(gt)
	if err != nil || len(bytes.TrimSpace(truth)) == 0 {
		t.Fatalf("ground truth %q, %v", truth, err)
	}
	for line := range strings.SplitSeq(strings.TrimSpace(string(truth)), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil || m["attack"] == nil || m["user_id"] == nil {
			t.Fatalf("ground truth line %q: %v", line, err)
		}
	}

	// keygen then revoke a raw token read from stdin.
	keys := filepath.Join(dir, "keys")
	if _, err := runCLI(t, "", "keygen", "--out", keys); err != nil {
		t.Fatal(err)
	}
	t.Setenv("REVOKED_SIGNING_KEY_FILE", filepath.Join(keys, signingKeyFile))
	const raw = "raw-token-value-that-must-not-leak"
	out, err = runCLI(t, raw+"\n", "revoke", brokers, "--operator", "oncall", "--seal-public-key-file", filepath.Join(keys, sealPubFile),
		"--token-file", "-", "--user", "alice", "--include-downscoped", "--reason", "stolen laptop", "--print")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, raw) {
		t.Fatal("revoke printed the raw token")
	}
	msgs := c.WaitRecords(t, schemas.TopicRevokeCommands, 1)
	ring, err := schemas.LoadPublicKeyFiles(filepath.Join(keys, signingPubFile))
	if err != nil {
		t.Fatal(err)
	}
	m := msgs[0]
	if err := ring.Verify(header(m, schemas.HeaderKeyID), header(m, schemas.HeaderSignature), m.Value); err != nil {
		t.Fatal(err)
	}
	cmd, err := schemas.DecodeCommand(m.Value)
	if err != nil {
		t.Fatal(err)
	}
	if cmd.Target.Kind != schemas.TargetToken || cmd.Target.TokenID != schemas.Fingerprint(raw) || string(m.Key) != "alice" ||
		cmd.Issuer != "manual:oncall" || cmd.Reason.Summary != "stolen laptop" || !cmd.Target.IncludeDownscoped {
		t.Fatalf("command %+v key %q", cmd, m.Key)
	}
	sealData, _ := os.ReadFile(filepath.Join(keys, sealKeyFile))
	seal, _ := schemas.ParseSealKey(sealData)
	if got, err := seal.Open(cmd.Target.SealedToken); err != nil || got != raw {
		t.Fatalf("sealed token opens to %q, %v", got, err)
	}

	// Secrets never come from the command line.
	if _, err := runCLI(t, "", "revoke", brokers, "--operator", "oncall", "--user", "bob", "--signing-key", "x"); err == nil {
		t.Error("a --signing-key flag must not exist")
	}
}

func TestSimulateToFileIsReproducible(t *testing.T) {
	dir := t.TempDir()
	var files [2]string
	for i := range files {
		files[i] = filepath.Join(dir, "events"+string(rune('a'+i))+".jsonl")
		if _, err := runCLI(t, "", "simulate", "--clock", "fast", "--users", "10", "--events", "500", "--seed", "3", "--out", files[i]); err != nil {
			t.Fatal(err)
		}
	}
	a, _ := os.ReadFile(files[0])
	b, _ := os.ReadFile(files[1])
	if !bytes.Equal(a, b) {
		t.Fatal("two fast runs with one seed differ")
	}
	lines := strings.Split(strings.TrimSpace(string(a)), "\n")
	if len(lines) != 500 {
		t.Fatalf("%d lines, want 500", len(lines))
	}
	for _, l := range lines {
		if _, err := schemas.DecodeEvent([]byte(l)); err != nil {
			t.Fatal(err)
		}
	}
}

// producer revoke refuses a raw token given as a token id, naming the
// field and never repeating the value, and refuses a token id pattern that
// does not compile at start.
func TestRevokeRefusesRawTokenAsTokenID(t *testing.T) {
	t.Cleanup(func() { _ = schemas.SetTokenIDPattern("") })
	c := kafkatest.New(t, schemas.TopicRevokeCommands)
	brokers := "--kafka.brokers=" + c.Addr()
	keys := filepath.Join(t.TempDir(), "keys")
	if _, err := runCLI(t, "", "keygen", "--out", keys); err != nil {
		t.Fatal(err)
	}
	t.Setenv("REVOKED_SIGNING_KEY_FILE", filepath.Join(keys, signingKeyFile))
	for _, raw := range []string{
		"ory_at_bzzHIqUZJ1XoVzvdcLnW8a-Bwc6bBn3OI6xGf3X8S5E.MLgyrXqbLL4QHGhyTcDDzlJ5qFQUI-YgGIzCo0Nl-XE",
		"q0B3pVbS9nIc7tYx_1kEwRf2LmZ8uJg4HdA6oTsXyN5",
	} {
		_, err := runCLI(t, "", "revoke", brokers, "--operator", "oncall", "--user", "alice", "--token-id", raw)
		if err == nil {
			t.Fatalf("revoke --token-id %.10s… was accepted", raw)
		}
		t.Logf("revoke --token-id %.10s…: %v", raw, err)
		if msg := err.Error(); !strings.Contains(msg, `"target.token_id"`) || !strings.Contains(msg, "fingerprint") || strings.Contains(msg, raw) {
			t.Errorf("error %q should name target.token_id, suggest a fingerprint and not quote the value", msg)
		}
	}
	// With a pattern, ids of that format go through; a bad pattern stops
	// the command before it does anything.
	const ksuid = "0ujtsYcgvSTl8PAuAdqWYSMnLOv"
	if _, err := runCLI(t, "", "revoke", brokers, "--operator", "oncall", "--user", "alice", "--token-id", ksuid); err == nil {
		t.Error("a KSUID was accepted without a pattern")
	}
	if _, err := runCLI(t, "", "revoke", brokers, "--operator", "oncall", "--user", "alice", "--token-id", ksuid, "--token-id-pattern", "[0-9A-Za-z]{27}"); err != nil {
		t.Errorf("a KSUID matching the pattern was refused: %v", err)
	}
	t.Setenv("REVOKED_TOKEN_ID_PATTERN", "[a-z")
	_, err := runCLI(t, "", "revoke", brokers, "--operator", "oncall", "--user", "alice")
	t.Logf("with a bad pattern: %v", err)
	if err == nil || !strings.Contains(err.Error(), "token-id-pattern: invalid token id pattern") || !strings.Contains(err.Error(), "`[a-z`") {
		t.Errorf("bad pattern: %v", err)
	}
	if got := len(c.Records(t, schemas.TopicRevokeCommands)); got != 1 {
		t.Errorf("%d commands published, want the one with the KSUID", got)
	}
}
