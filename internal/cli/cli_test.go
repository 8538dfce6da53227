package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/internal/ops"
	"github.com/revoked-dev/revoked/schemas"
)

func TestReport(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
		out  string
	}{
		{nil, 0, ""},
		{flag.ErrHelp, 0, ""},
		{fmt.Errorf("parsing flags: %w", flag.ErrHelp), 0, ""},
		{errors.New("no brokers"), 1, "tool: no brokers\n"},
	} {
		var out bytes.Buffer
		if code := report(&out, "tool", tc.err); code != tc.code || out.String() != tc.out {
			t.Errorf("report(%v) = %d %q, want %d %q", tc.err, code, out.String(), tc.code, tc.out)
		}
	}
}

func TestSubcommand(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		cmd      string
		wantArgs []string
	}{
		{nil, "run", nil},
		{[]string{"history", "-user", "u"}, "history", []string{"-user", "u"}},
		{[]string{"-log.level", "warn"}, "run", []string{"-log.level", "warn"}},
		{[]string{"--help"}, "run", []string{"--help"}},
		{[]string{"", "x"}, "run", []string{"", "x"}},
	} {
		cmd, args := Subcommand(tc.args, "run")
		if cmd != tc.cmd || !slices.Equal(args, tc.wantArgs) {
			t.Errorf("Subcommand(%q) = %q %q, want %q %q", tc.args, cmd, args, tc.cmd, tc.wantArgs)
		}
	}
}

type testConfig struct {
	Name string        `flag:"name" yaml:"name" usage:"a name"`
	Log  ops.LogConfig `flag:"log" yaml:"log"`
}

func (c testConfig) Validate() error {
	var p config.Problems
	p.Check(c.Name != "", "name", "is required")
	p.Check(c.Name != "bad", "name", "must not be bad")
	p.Nest("log", c.Log.Validate())
	return p.Err()
}

func TestLoadRefusesLeftoverArguments(t *testing.T) {
	var cfg testConfig
	err := Load(NewFlagSet("t", &bytes.Buffer{}), []string{"-name", "a", "extra"}, &cfg)
	if err == nil || !strings.Contains(err.Error(), `unexpected arguments ["extra"]`) {
		t.Fatalf("Load = %v", err)
	}
	if cfg.Name != "a" {
		t.Errorf("name %q", cfg.Name)
	}
}

func TestLoadReadsConfigFileFromEnvironment(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte("name: from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("REVOKED_CONFIG", path)
	var cfg testConfig
	if err := Load(NewFlagSet("t", &bytes.Buffer{}), nil, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Name != "from-file" {
		t.Errorf("name %q", cfg.Name)
	}
}

func TestFlagSetReturnsHelp(t *testing.T) {
	var out bytes.Buffer
	var cfg testConfig
	err := Load(NewFlagSet("tool run", &out), []string{"-h"}, &cfg)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("Load(-h) = %v", err)
	}
	if !strings.Contains(out.String(), "Usage of tool run") || !strings.Contains(out.String(), "-name") {
		t.Errorf("usage: %q", out.String())
	}
}

func TestConfigure(t *testing.T) {
	cfg := testConfig{Log: ops.DefaultLogConfig()}
	var logs bytes.Buffer
	log, err := Configure(NewFlagSet("t", &bytes.Buffer{}), []string{"-name", "a", "-log.level", "warn"}, &cfg, &cfg.Log, &logs)
	if err != nil {
		t.Fatal(err)
	}
	log.Info().Msg("hidden")
	log.Warn().Msg("shown")
	if strings.Contains(logs.String(), "hidden") || !strings.Contains(logs.String(), "shown") {
		t.Errorf("the logger does not follow the loaded level: %q", logs.String())
	}

	cfg = testConfig{Log: ops.DefaultLogConfig()}
	_, err = Configure(NewFlagSet("t", &bytes.Buffer{}), []string{"-name", "bad", "-log.format", "xml"}, &cfg, &cfg.Log, &logs)
	if err == nil || !strings.Contains(err.Error(), "name: must not be bad") || !strings.Contains(err.Error(), "log.format") {
		t.Errorf("Configure reports %v, want every problem", err)
	}
}

func newOpsServer(t *testing.T) *ops.Server {
	t.Helper()
	cfg := ops.DefaultServerConfig()
	cfg.Addr = "127.0.0.1:0"
	srv, err := ops.NewServer(cfg, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// A service that stops on its own takes the ops server down with it, and
// its error comes back.
func TestRunWithOpsStopsTheServerWithTheService(t *testing.T) {
	srv := newOpsServer(t)
	addr, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	fatal := errors.New("fetch failed")
	err = RunWithOps(ctx, stop, srv, func(context.Context) error {
		resp, err := http.Get("http://" + addr.String() + "/livez")
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("livez %d", resp.StatusCode)
		}
		return fatal
	})
	if !errors.Is(err, fatal) {
		t.Fatalf("RunWithOps = %v", err)
	}
	if ctx.Err() == nil {
		t.Error("stop was not called")
	}
}

// The ops server's error is joined to the service's.
func TestRunWithOpsJoinsTheServerError(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg := ops.DefaultServerConfig()
	cfg.Addr = taken.Addr().String()
	srv, err := ops.NewServer(cfg, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	err = RunWithOps(ctx, stop, srv, func(context.Context) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "listening on "+cfg.Addr) {
		t.Fatalf("RunWithOps = %v", err)
	}
}

func TestSigningKey(t *testing.T) {
	priv, err := schemas.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	want := schemas.NewSigner(priv).KeyID()
	seed := base64.StdEncoding.EncodeToString(priv.Seed())
	pemBytes, err := schemas.MarshalPrivateKeyPEM(priv)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "signing.key")
	if err := os.WriteFile(file, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}

	for _, k := range []SigningKey{{Key: config.NewSecret(seed)}, {File: file}} {
		if err := k.Validate(); err != nil {
			t.Errorf("%+v: %v", k, err)
		}
		s, err := k.Signer()
		if err != nil || s.KeyID() != want {
			t.Errorf("%+v: signer %v, %v", k, s, err)
		}
	}
	if err := (SigningKey{}).Validate(); err == nil || !strings.Contains(err.Error(), "signing-key-file: a signing key is required") {
		t.Errorf("no key: %v", err)
	}
	if err := (SigningKey{Key: config.NewSecret(seed), File: file}).Validate(); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Errorf("two keys: %v", err)
	}
	if _, err := (SigningKey{File: file + ".missing"}).Signer(); err == nil || !strings.Contains(err.Error(), "signing key "+file+".missing") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := (SigningKey{Key: config.NewSecret("not a key")}).Signer(); err == nil || !strings.Contains(err.Error(), "REVOKED_SIGNING_KEY(_FILE)") {
		t.Errorf("bad key: %v", err)
	}
}

// The settings sit at the top level of the struct that holds the key.
func TestSigningKeySettingNames(t *testing.T) {
	var cfg struct{ Signing SigningKey }
	t.Setenv("REVOKED_SIGNING_KEY", "from-env")
	if err := Load(NewFlagSet("t", &bytes.Buffer{}), []string{"-signing-key-file", "k.pem"}, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Signing.Key.Reveal() != "from-env" || cfg.Signing.File != "k.pem" {
		t.Errorf("loaded %q %q", cfg.Signing.Key.Reveal(), cfg.Signing.File)
	}
}
