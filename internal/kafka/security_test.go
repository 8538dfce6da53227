package kafka_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/revoked-dev/revoked/internal/config"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
)

// selfSignedCA writes a CA certificate to dir and returns its path and a
// server certificate for 127.0.0.1 signed by it.
func selfSignedCA(t *testing.T, dir string) (string, tls.Certificate) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test ca"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caPath := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return caPath, tls.Certificate{Certificate: [][]byte{srvDER}, PrivateKey: srvKey}
}

// TestTLSAndSASL runs EnsureTopics, a Writer and a Reader against a broker
// that demands TLS and SASL, once per mechanism.
func TestTLSAndSASL(t *testing.T) {
	caPath, srvCert := selfSignedCA(t, t.TempDir())
	for _, tc := range []struct{ mechanism, kfakeName string }{
		{kafkax.SASLPlain, "PLAIN"},
		{kafkax.SASLScramSHA256, "SCRAM-SHA-256"},
		{kafkax.SASLScramSHA512, "SCRAM-SHA-512"},
	} {
		t.Run(tc.mechanism, func(t *testing.T) {
			c, err := kfake.NewCluster(
				kfake.NumBrokers(1),
				kfake.TLS(&tls.Config{Certificates: []tls.Certificate{srvCert}, MinVersion: tls.VersionTLS12}),
				kfake.EnableSASL(),
				kfake.Superuser(tc.kfakeName, "revoker", "s3cret"),
				kfake.SeedTopics(1, "dlq"),
			)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)
			brokers := c.ListenAddrs()
			sec := kafkax.Security{
				TLS:  kafkax.TLSConfig{Enabled: true, CAFile: caPath},
				SASL: kafkax.SASLConfig{Mechanism: tc.mechanism, Username: "revoker", Password: config.NewSecret("s3cret")},
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := kafkax.EnsureTopics(ctx, brokers, sec, map[string]int{"secure": 1}); err != nil {
				t.Fatal(err)
			}

			wcfg := kafkax.DefaultWriterConfig()
			wcfg.Brokers, wcfg.Topic, wcfg.Security = brokers, "secure", sec
			w, err := kafkax.NewWriter(wcfg, zerolog.Nop())
			if err != nil {
				t.Fatal(err)
			}
			if err := w.WriteMessages(ctx, kafka.Message{Key: []byte("k"), Value: []byte("v")}); err != nil {
				t.Fatal(err)
			}
			_ = w.Close()

			rcfg := kafkax.DefaultReaderConfig()
			rcfg.Brokers, rcfg.Topic, rcfg.GroupID, rcfg.DLQTopic, rcfg.Component = brokers, "secure", "g", "dlq", "test"
			rcfg.MaxWait, rcfg.HeartbeatInterval, rcfg.SessionTimeout = 10*time.Millisecond, 200*time.Millisecond, 6*time.Second
			rcfg.Security = sec
			r, err := kafkax.NewReader(rcfg, zerolog.Nop(), nil)
			if err != nil {
				t.Fatal(err)
			}
			rctx, stop := context.WithCancel(ctx)
			defer stop()
			var got string
			if err := r.Run(rctx, func(_ context.Context, m kafka.Message) error {
				got = string(m.Value)
				stop()
				return nil
			}); err != nil {
				t.Fatalf("Run = %v", err)
			}
			if got != "v" {
				t.Fatalf("read %q", got)
			}

			// Wrong credentials fail rather than hang.
			bad := sec
			bad.SASL.Password = config.NewSecret("wrong")
			if err := kafkax.EnsureTopics(ctx, brokers, bad, map[string]int{"other": 1}); err == nil {
				t.Fatal("wrong password accepted")
			}
		})
	}
}

func TestSecurityValidate(t *testing.T) {
	err := kafkax.Security{
		TLS:  kafkax.TLSConfig{KeyFile: "/key.pem"},
		SASL: kafkax.SASLConfig{Username: "u"},
	}.Validate()
	if !errors.Is(err, config.ErrInvalid) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{"tls.enabled", "tls.cert-file", "sasl.mechanism"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q: %v", want, err)
		}
	}
	if err := (kafkax.Security{}).Validate(); err != nil {
		t.Fatalf("zero value: %v", err)
	}
}
