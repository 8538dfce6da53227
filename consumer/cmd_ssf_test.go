package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/revoked-dev/revoked/consumer/ssf/transmitter"
	"github.com/revoked-dev/revoked/internal/kafka/kafkatest"
	"github.com/revoked-dev/revoked/internal/ssf"
	"github.com/revoked-dev/revoked/internal/testenv"
	"github.com/revoked-dev/revoked/schemas"
)

// "consumer ssf-transmitter" as an operator runs it: the signing key and
// the receiver's token from files named in the environment, settings from
// flags; it serves its configuration and takes a stream.
func TestSSFTransmitterCommand(t *testing.T) {
	c := kafkatest.New(t, transmitter.DefaultTopic, schemas.TopicDLQ)
	dir := t.TempDir()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Setenv("REVOKED_SSF_SIGNING_KEY_FILE", write("ssf.key", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))))
	t.Setenv("REVOKED_SSF_RECEIVER_TOKEN_FILE", write("receiver.token", "receiver-token-0123456789\n"))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	base := "http://" + addr
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		// The command logs from several goroutines at once.
		var out, errOut testenv.LogBuffer
		done <- run(ctx, []string{"ssf-transmitter", "-issuer=" + base, "-allow-http", "-http.addr=" + addr,
			"-kafka.brokers=" + c.Addr(), "-state-file=" + filepath.Join(dir, "streams.json"),
			"-receiver-audience=https://app.example.com", "-subject.issuer=https://idp.example.com"}, &out, &errOut)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ssf-transmitter: %v", err)
		}
	})
	var md ssf.TransmitterMetadata
	testenv.Eventually(t, "the transmitter's configuration", func() bool {
		select {
		case err := <-done:
			t.Fatalf("the transmitter stopped: %v", err)
		default:
		}
		var err error
		md, err = ssf.Discover(t.Context(), http.DefaultClient, base)
		return err == nil
	})
	if md.JWKSURI != base+transmitter.PathJWKS {
		t.Errorf("metadata %+v", md)
	}
	req, _ := http.NewRequest(http.MethodPost, md.ConfigurationEndpoint, strings.NewReader(`{"description":"poll me"}`))
	req.Header.Set("Authorization", "Bearer receiver-token-0123456789")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sc transmitter.StreamConfig
	if err := json.NewDecoder(resp.Body).Decode(&sc); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("create stream: HTTP %d %v", resp.StatusCode, err)
	}
	if sc.Aud[0] != "https://app.example.com" || sc.Delivery.Method != ssf.DeliveryPoll {
		t.Errorf("stream %+v", sc)
	}
}
