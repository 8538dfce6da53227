package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/deployments/tokenapi/server"
	"github.com/revoked-dev/revoked/deployments/tokenapi/server/servertest"
	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/internal/testenv"
)

func TestConfigValidateReportsEverything(t *testing.T) {
	err := server.Config{
		Issuer: "https://issuer.example/?q=1",
		Clients: []server.ClientConfig{
			{ID: "", Secret: config.NewSecret("x")},
			{ID: "a:b"},
			{ID: "dup", Secret: config.NewSecret("x"), Grants: []string{"password"}, Scopes: []string{"bad scope"}},
			{ID: "dup", Secret: config.NewSecret("x")},
		},
		TokenTTL:    time.Millisecond,
		AdminToken:  config.NewSecret("short"),
		IdleTimeout: -time.Second,
	}.Validate()
	if !errors.Is(err, config.ErrInvalid) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{
		"issuer", "clients[0].id", "clients[1].id", "clients[1].secret", "clients[2].grants",
		"clients[2].scopes", "clients[3].id: duplicate", "token_ttl", "admin_token", "idle_timeout",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	if _, err := server.New(server.Config{}, zerolog.Nop()); err == nil {
		t.Error("New accepted an empty config")
	}
	ok := server.Config{Issuer: "http://127.0.0.1:1", Clients: servertest.Clients()}
	if err := ok.Validate(); err != nil {
		t.Errorf("valid config: %v", err)
	}
}

func TestSecretsDoNotPrint(t *testing.T) {
	cfg := server.Config{
		Issuer:     "http://127.0.0.1:1",
		Clients:    []server.ClientConfig{{ID: "c", Secret: config.NewSecret("client-secret-value")}},
		AdminToken: config.NewSecret("admin-token-value-123"),
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{fmt.Sprintf("%v %+v %#v", cfg, cfg, cfg), string(b)} {
		if strings.Contains(s, "client-secret-value") || strings.Contains(s, "admin-token-value") {
			t.Fatalf("secret printed: %s", s)
		}
	}
}

// No log line, at any level, carries a raw token or a client secret.
func TestLogsCarryNoSecrets(t *testing.T) {
	var logs testenv.LogBuffer
	env := servertest.Start(t, servertest.WithLogger(zerolog.New(&logs).Level(zerolog.TraceLevel)))
	raw, id := issue(t, env, "u1", servertest.AppID, "s1", "files.read")
	child := mustExchange(t, env, asApp, raw, nil)
	introspect(t, env, asApp, child)
	postForm(t, env, server.PathRevoke, &asOther, url.Values{"token": {raw}})
	postForm(t, env, server.PathRevoke, &asApp, url.Values{"token": {raw}})
	postForm(t, env, server.PathRevoke, &auth{id: servertest.AppID, secret: "wrong-secret"}, url.Values{"token": {raw}})
	cc := postForm(t, env, server.PathToken, &asApp, url.Values{"grant_type": {"client_credentials"}}).json(t)["access_token"].(string)
	env.Admin(t, http.MethodPost, "/admin/subjects/u1/revoke", nil, nil)

	out := logs.String()
	for _, secret := range []string{raw, child, cc, servertest.AppSecret, servertest.OtherSecret, servertest.AdminToken, "wrong-secret"} {
		if strings.Contains(out, secret) {
			t.Fatalf("log contains a secret:\n%s", out)
		}
	}
	if !strings.Contains(out, id) {
		t.Error("log does not name tokens by fingerprint")
	}
}

// Serve stops on ctx cancellation, within the shutdown timeout, and
// returns nil.
func TestServeGracefulShutdown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + l.Addr().String()
	srv, err := server.New(server.Config{
		Issuer: base, Clients: servertest.Clients(), ShutdownTimeout: 2 * time.Second,
	}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()

	resp, err := http.Get(base + server.PathReadyz)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("readyz %d", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
	if _, err := http.Get(base + server.PathLivez); err == nil {
		t.Error("still serving after shutdown")
	}
}

// Expired tokens are inactive at once and forgotten on later writes.
func TestExpiryAndPruning(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	env := servertest.Start(t, servertest.WithConfig(func(c *server.Config) { c.Now = clock }))

	var raws []string
	for i := range 600 {
		raw, _ := env.Issue(t, server.IssueRequest{UserID: fmt.Sprintf("u%d", i%7), ClientID: servertest.AppID, TTLSeconds: 60})
		raws = append(raws, raw)
	}
	child := mustExchange(t, env, asApp, raws[0], nil)
	if st := env.Server.Stats(); st.Stored != 601 {
		t.Fatalf("stored %d", st.Stored)
	}
	advance(61 * time.Second)
	if active(t, env, raws[0]) || active(t, env, child) {
		t.Fatal("expired token active")
	}
	// Expired tokens are not listed and not counted as revoked.
	var list []server.TokenInfo
	env.Admin(t, http.MethodGet, "/admin/subjects/u0/tokens", nil, &list)
	var rr server.RevokeResponse
	env.Admin(t, http.MethodPost, "/admin/subjects/u1/revoke", nil, &rr)
	if len(list) != 0 || rr.Revoked != 0 {
		t.Fatalf("expired tokens listed %d or revoked %d", len(list), rr.Revoked)
	}
	for range 3 {
		issue(t, env, "fresh", servertest.AppID, "")
	}
	if st := env.Server.Stats(); st.Stored != 3 {
		t.Fatalf("stored %d after pruning, want 3", st.Stored)
	}
}
