package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/revoked-dev/revoked/deployments/tokenapi/server"
	"github.com/revoked-dev/revoked/internal/testenv"
)

func lookup(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestDevDefaultsOnlyOnLoopback(t *testing.T) {
	cc := defaultCmdConfig()
	cfg, dev, err := serverConfig(cc, lookup(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(dev) != 3 || cfg.Issuer != "http://127.0.0.1:8090" || len(cfg.Clients) != 2 {
		t.Errorf("cfg %+v dev %v", cfg, dev)
	}
	if err := cfg.Validate(); err != nil {
		t.Error(err)
	}

	cc.Addr = "0.0.0.0:8090"
	if _, _, err := serverConfig(cc, lookup(nil)); err == nil || !strings.Contains(err.Error(), "--dev") {
		t.Errorf("dev defaults on 0.0.0.0: %v", err)
	}
	cc.Dev = true
	cfg, _, err = serverConfig(cc, lookup(nil))
	if err != nil || cfg.Issuer != "http://localhost:8090" {
		t.Errorf("with --dev: %v %q", err, cfg.Issuer)
	}
}

func TestSecretsFromEnvironmentAndFiles(t *testing.T) {
	dir := t.TempDir()
	adminFile := filepath.Join(dir, "admin")
	if err := os.WriteFile(adminFile, []byte("admin-token-from-a-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	clients := filepath.Join(dir, "clients.yaml")
	if err := os.WriteFile(filepath.Join(dir, "app.secret"), []byte("app-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(clients, []byte(`
clients:
  - id: consumer
    secret_env: CONSUMER_SECRET
    revoke_any: true
    introspect_any: true
  - id: app
    secret_file: app.secret
    grants: [client_credentials, token-exchange]
    scopes: [files.read]
`), 0o600); err != nil {
		t.Fatal(err)
	}

	var stderr testenv.LogBuffer
	ctx, cancel := context.WithCancel(t.Context())
	env := lookup(map[string]string{
		"TOKENAPI_ADMIN_TOKEN_FILE": adminFile,
		"CONSUMER_SECRET":           "consumer-secret",
		"TOKENAPI_ADDR":             "0.0.0.0:0",
	})
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--addr", "127.0.0.1:0", "--clients", clients, "--issuer", "https://tokens.example"}, env, &stderr)
	}()
	stderr.WaitFor(t, "token API serving")
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	if strings.Contains(stderr.String(), "dev-only") {
		t.Errorf("dev defaults used:\n%s", stderr.String())
	}

	// The same loading without the server, to inspect the result.
	cc := defaultCmdConfig()
	cc.Clients = clients
	cfg, dev, err := serverConfig(cc, env)
	if err != nil || len(dev) != 1 {
		t.Fatalf("%v %v", err, dev)
	}
	if got := cfg.Clients[1].Secret.Reveal(); got != "app-from-file" {
		t.Errorf("secret_file: %q", got)
	}
	if got := cfg.Clients[0].Secret.Reveal(); got != "consumer-secret" {
		t.Errorf("secret_env: %q", got)
	}
}

func TestBadClientsFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(p, []byte("clients:\n  - id: a\n  - id: b\n    secret: x\n    secret_env: Y\n  - id: c\n    secrett: typo\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := server.LoadClients(p, func(string) string { return "" })
	if err == nil || !strings.Contains(err.Error(), "secrett") {
		t.Fatalf("unknown field not reported: %v", err)
	}
	if err := os.WriteFile(p, []byte("clients:\n  - id: a\n  - id: b\n    secret: x\n    secret_env: Y\n  - id: c\n    secret_env: MISSING\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = server.LoadClients(p, func(string) string { return "" })
	for _, want := range []string{"clients[0] (a)", "clients[1] (b)", "MISSING"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
}
