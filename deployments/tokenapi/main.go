// Command tokenapi runs the reference token API standalone.
//
//	go run ./deployments/tokenapi --addr 127.0.0.1:8090
//
// Besides the OAuth endpoints it serves /livez, /readyz and Prometheus
// metrics at /metrics on the same address, under the issuer's path.
//
// Without --clients it registers two built-in clients: "revoker", which may
// revoke and introspect every token (the consumer's client), and "app", an
// ordinary client with the client_credentials and token-exchange grants.
// Their secrets and the admin token come from TOKENAPI_REVOKER_SECRET,
// TOKENAPI_APP_SECRET and TOKENAPI_ADMIN_TOKEN (or the same names with
// _FILE, naming a file that holds the value). Unset, they take documented
// dev-only defaults (devRevokerSecret, devAppSecret, devAdminToken), which
// are refused on a non-loopback address unless --dev is given.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/revoked-dev/revoked/deployments/tokenapi/server"
	"github.com/revoked-dev/revoked/internal/cli"
	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/internal/ops"
)

// Dev-only defaults, public by design: they let a local run and the
// all-in-one deployment work without setup. Never use them elsewhere.
const (
	devAdminToken    = "dev-admin-token-not-for-production"
	devRevokerSecret = "dev-revoker-secret"
	devAppSecret     = "dev-app-secret"
)

// cmdConfig is what the command reads from flags and the environment.
type cmdConfig struct {
	Addr            string        `flag:"addr" env:"TOKENAPI_ADDR" usage:"listen address"`
	Issuer          string        `flag:"issuer" env:"TOKENAPI_ISSUER" usage:"issuer URL (default http://<addr>)"`
	Clients         string        `flag:"clients" env:"TOKENAPI_CLIENTS" usage:"YAML or JSON file of clients (default: built-in dev-only clients revoker and app)"`
	AdminToken      config.Secret `env:"TOKENAPI_ADMIN_TOKEN"`
	RevokerSecret   config.Secret `env:"TOKENAPI_REVOKER_SECRET"`
	AppSecret       config.Secret `env:"TOKENAPI_APP_SECRET"`
	TokenTTL        time.Duration `flag:"token-ttl" env:"TOKENAPI_TOKEN_TTL" usage:"lifetime of issued tokens"`
	MaxTokenTTL     time.Duration `flag:"max-token-ttl" env:"TOKENAPI_MAX_TOKEN_TTL" usage:"longest lifetime the admin API may ask for"`
	ShutdownTimeout time.Duration `flag:"shutdown-timeout" env:"TOKENAPI_SHUTDOWN_TIMEOUT" usage:"how long in-flight requests may run on shutdown"`
	Dev             bool          `flag:"dev" env:"TOKENAPI_DEV" usage:"allow the dev-only default secrets on a non-loopback address"`
	Log             ops.LogConfig `flag:"log" env:"TOKENAPI_LOG"`
}

func defaultCmdConfig() cmdConfig {
	return cmdConfig{
		Addr:            "127.0.0.1:8090",
		TokenTTL:        server.DefaultTokenTTL,
		MaxTokenTTL:     server.DefaultMaxTokenTTL,
		ShutdownTimeout: server.DefaultShutdownTimeout,
		Log:             ops.DefaultLogConfig(),
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.LookupEnv, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	cli.Exit("tokenapi", err)
}

// run loads the configuration and serves until ctx is cancelled.
func run(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stderr io.Writer) error {
	cc := defaultCmdConfig()
	if err := config.Load(cli.NewFlagSet("tokenapi", stderr), args, &cc, config.WithLookupEnv(lookupEnv)); err != nil {
		return err
	}
	log, err := ops.NewLogger(cc.Log, stderr)
	if err != nil {
		return err
	}
	cfg, devDefaults, err := serverConfig(cc, lookupEnv)
	if err != nil {
		return err
	}
	for _, d := range devDefaults {
		log.Warn().Str("setting", d).Msg("using the dev-only default; set the environment variable for any shared use")
	}
	srv, err := server.New(cfg, log)
	if err != nil {
		return err
	}
	reg := ops.NewRegistry()
	if err := srv.RegisterMetrics(reg); err != nil {
		return err
	}
	if err := srv.ServeMetrics(reg); err != nil {
		return err
	}
	return srv.ListenAndServe(ctx, cc.Addr)
}

// serverConfig turns the command's settings into a server config. It
// returns which settings fell back to dev-only defaults, and refuses them
// on a non-loopback address without --dev.
func serverConfig(cc cmdConfig, lookupEnv func(string) (string, bool)) (server.Config, []string, error) {
	host, port, err := net.SplitHostPort(cc.Addr)
	if err != nil {
		return server.Config{}, nil, fmt.Errorf("--addr %q: %w", cc.Addr, err)
	}
	issuer := cc.Issuer
	if issuer == "" {
		h := host
		if ip := net.ParseIP(h); h == "" || (ip != nil && ip.IsUnspecified()) {
			h = "localhost"
		}
		issuer = "http://" + net.JoinHostPort(h, port)
	}

	var devDefaults []string
	orDev := func(s config.Secret, env, dev string) config.Secret {
		if s.IsSet() {
			return s
		}
		devDefaults = append(devDefaults, env)
		return config.NewSecret(dev)
	}
	cfg := server.Config{
		Issuer:          issuer,
		TokenTTL:        cc.TokenTTL,
		MaxTokenTTL:     cc.MaxTokenTTL,
		ShutdownTimeout: cc.ShutdownTimeout,
		AdminToken:      orDev(cc.AdminToken, "TOKENAPI_ADMIN_TOKEN", devAdminToken),
	}
	if cc.Clients != "" {
		getenv := func(k string) string { v, _ := lookupEnv(k); return v }
		if cfg.Clients, err = server.LoadClients(cc.Clients, getenv); err != nil {
			return server.Config{}, nil, err
		}
	} else {
		cfg.Clients = []server.ClientConfig{
			{
				ID:            "revoker",
				Secret:        orDev(cc.RevokerSecret, "TOKENAPI_REVOKER_SECRET", devRevokerSecret),
				Grants:        []string{server.GrantClientCredentials},
				RevokeAny:     true,
				IntrospectAny: true,
			},
			{
				ID:     "app",
				Secret: orDev(cc.AppSecret, "TOKENAPI_APP_SECRET", devAppSecret),
				Grants: []string{server.GrantClientCredentials, server.GrantTokenExchange},
				Scopes: []string{"files.read", "files.write", "profile"},
			},
		}
	}
	ip := net.ParseIP(host)
	loopback := host == "localhost" || (ip != nil && ip.IsLoopback())
	if len(devDefaults) > 0 && !loopback && !cc.Dev {
		return server.Config{}, nil, fmt.Errorf("refusing dev-only default secrets on non-loopback address %s: set %v or pass --dev", cc.Addr, devDefaults)
	}
	return cfg, devDefaults, nil
}
