package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/revoked-dev/revoked/internal/kafka/kafkatest"
	"github.com/revoked-dev/revoked/internal/testenv"
	"github.com/revoked-dev/revoked/schemas"
)

// waitServing waits until the listener at base answers /livez.
func waitServing(t *testing.T, base string, done <-chan error) {
	t.Helper()
	testenv.Eventually(t, "the command serving /livez", func() bool {
		select {
		case err := <-done:
			t.Fatalf("the command stopped: %v", err)
		default:
		}
		resp, err := http.Get(base + "/livez")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// "producer ssf gtr" as an operator runs it: a clients file, the signing
// key from a file, flags; an Okta-style request becomes a signed command.
func TestSSFGTRCommand(t *testing.T) {
	c := kafkatest.New(t, schemas.TopicRevokeCommands)
	dir := t.TempDir()
	if _, err := runCLI(t, "", "keygen", "--out", filepath.Join(dir, "keys")); err != nil {
		t.Fatal(err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	if err := os.WriteFile(filepath.Join(dir, "okta-jwks.json"), jwks, 0o600); err != nil {
		t.Fatal(err)
	}
	clients := "clients:\n  - name: okta\n    issuer: https://example.okta.com\n    jwks_file: okta-jwks.json\n"
	if err := os.WriteFile(filepath.Join(dir, "clients.yaml"), []byte(clients), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	endpoint := "http://" + addr + "/global-token-revocation"
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		var out, errOut bytes.Buffer
		done <- run(ctx, []string{"ssf", "gtr", "--kafka.brokers=" + c.Addr(), "--http.addr=" + addr, "--endpoint=" + endpoint, "--allow-http",
			"--clients-file=" + filepath.Join(dir, "clients.yaml"), "--signing-key-file=" + filepath.Join(dir, "keys", signingKeyFile)}, nil, &out, &errOut)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ssf gtr: %v", err)
		}
	})
	waitServing(t, "http://"+addr, done)

	js, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	claims, _ := json.Marshal(map[string]any{"iss": "https://example.okta.com", "sub": "0oa1", "aud": endpoint, "jti": "j-1", "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()})
	obj, _ := js.Sign(claims)
	jwt, _ := obj.CompactSerialize()
	req, _ := http.NewRequest(http.MethodPost, endpoint, bytes.NewReader([]byte(`{"sub_id":{"format":"email","email":"user@example.com"}}`)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+jwt)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("HTTP %d", resp.StatusCode)
	}
	recs := c.WaitRecords(t, schemas.TopicRevokeCommands, 1)
	cmd, err := schemas.DecodeCommand(recs[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	if cmd.Target.UserID != "user@example.com" || cmd.Action != schemas.ActionRevokeAndReverify || header(recs[0], schemas.HeaderSignature) == "" {
		t.Errorf("command %+v", cmd)
	}
}
