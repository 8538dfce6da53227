package kafka

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/revoked-dev/revoked/internal/config"
)

// SASL mechanisms.
const (
	SASLPlain       = "plain"
	SASLScramSHA256 = "scram-sha-256"
	SASLScramSHA512 = "scram-sha-512"
)

// dialTimeout bounds establishing one broker connection.
const dialTimeout = 10 * time.Second

// TLSConfig secures connections to the brokers with TLS.
type TLSConfig struct {
	Enabled            bool   `flag:"enabled" env:"ENABLED" yaml:"enabled" usage:"connect to the brokers over TLS"`
	CAFile             string `flag:"ca-file" env:"CA_FILE" yaml:"ca_file" usage:"PEM file of the CAs that sign the brokers' certificates (empty: system roots)"`
	CertFile           string `flag:"cert-file" env:"CERT_FILE" yaml:"cert_file" usage:"PEM client certificate for mutual TLS"`
	KeyFile            string `flag:"key-file" env:"KEY_FILE" yaml:"key_file" usage:"PEM private key of the client certificate"`
	InsecureSkipVerify bool   `flag:"insecure-skip-verify" env:"INSECURE_SKIP_VERIFY" yaml:"insecure_skip_verify" usage:"accept any broker certificate (never in production)"`
}

// SASLConfig authenticates to the brokers with SASL.
type SASLConfig struct {
	Mechanism string        `flag:"mechanism" env:"MECHANISM" yaml:"mechanism" usage:"SASL mechanism: plain, scram-sha-256 or scram-sha-512 (empty: no SASL)"`
	Username  string        `flag:"username" env:"USERNAME" yaml:"username" usage:"SASL user name"`
	Password  config.Secret `flag:"password" env:"PASSWORD" yaml:"password" usage:"SASL password (or the _FILE variable naming a file that holds it)"`
}

// Security is how readers, writers and admin calls reach the brokers. The
// zero value is plaintext without authentication, which suits the embedded
// broker and nothing else.
type Security struct {
	TLS  TLSConfig  `flag:"tls" env:"TLS" yaml:"tls"`
	SASL SASLConfig `flag:"sasl" env:"SASL" yaml:"sasl"`
}

// Validate reports every problem with s at once. It does not read the
// certificate files; NewDialer and NewTransport do.
func (s Security) Validate() error {
	var p config.Problems
	t := s.TLS
	if !t.Enabled {
		p.Check(t.CAFile == "" && t.CertFile == "" && t.KeyFile == "" && !t.InsecureSkipVerify,
			"tls.enabled", "TLS files or options are set but TLS is not enabled")
	}
	p.Check((t.CertFile == "") == (t.KeyFile == ""), "tls.cert-file", "a client certificate needs both cert-file and key-file")
	switch s.SASL.Mechanism {
	case "":
		p.Check(s.SASL.Username == "" && !s.SASL.Password.IsSet(), "sasl.mechanism", "SASL credentials are set but no mechanism is chosen")
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
		p.Check(s.SASL.Username != "", "sasl.username", "required with SASL mechanism %s", s.SASL.Mechanism)
		p.Check(s.SASL.Password.IsSet(), "sasl.password", "required with SASL mechanism %s", s.SASL.Mechanism)
	default:
		p.Addf("sasl.mechanism", "unknown mechanism %q (want plain, scram-sha-256 or scram-sha-512)", s.SASL.Mechanism)
	}
	return p.Err()
}

// NewDialer returns a kafka-go dialer (what a kafka.Reader connects with)
// that applies s.
func (s Security) NewDialer(clientID string) (*kafka.Dialer, error) {
	t, m, err := s.build()
	if err != nil {
		return nil, err
	}
	return &kafka.Dialer{ClientID: clientID, Timeout: dialTimeout, DualStack: true, TLS: t, SASLMechanism: m}, nil
}

// NewTransport returns a kafka-go transport (what a kafka.Writer and a
// kafka.Client use) that applies s. Close its idle connections when done.
func (s Security) NewTransport(clientID string) (*kafka.Transport, error) {
	t, m, err := s.build()
	if err != nil {
		return nil, err
	}
	return &kafka.Transport{ClientID: clientID, DialTimeout: dialTimeout, TLS: t, SASL: m}, nil
}

func (s Security) build() (*tls.Config, sasl.Mechanism, error) {
	if err := s.Validate(); err != nil {
		return nil, nil, err
	}
	t, err := s.tlsConfig()
	if err != nil {
		return nil, nil, err
	}
	m, err := s.mechanism()
	if err != nil {
		return nil, nil, err
	}
	return t, m, nil
}

func (s Security) tlsConfig() (*tls.Config, error) {
	if !s.TLS.Enabled {
		return nil, nil
	}
	c := &tls.Config{
		MinVersion: tls.VersionTLS12,
		// Operators turn this on explicitly, for test clusters with
		// self-signed certificates; Validate refuses it without TLS.
		InsecureSkipVerify: s.TLS.InsecureSkipVerify, //nolint:gosec // opt-in, documented as never for production
	}
	if s.TLS.CAFile != "" {
		pem, err := os.ReadFile(s.TLS.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading kafka CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka CA file %s: %w", s.TLS.CAFile, errors.New("no PEM certificates found"))
		}
		c.RootCAs = pool
	}
	if s.TLS.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(s.TLS.CertFile, s.TLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("loading kafka client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

func (s Security) mechanism() (sasl.Mechanism, error) {
	user, pass := s.SASL.Username, s.SASL.Password.Reveal()
	switch s.SASL.Mechanism {
	case SASLPlain:
		return plain.Mechanism{Username: user, Password: pass}, nil
	case SASLScramSHA256, SASLScramSHA512:
		algo := scram.SHA256
		if s.SASL.Mechanism == SASLScramSHA512 {
			algo = scram.SHA512
		}
		m, err := scram.Mechanism(algo, user, pass)
		if err != nil {
			return nil, fmt.Errorf("preparing SASL %s: %w", s.SASL.Mechanism, err)
		}
		return m, nil
	}
	return nil, nil
}
