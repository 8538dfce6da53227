package server

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/revoked-dev/revoked/internal/config"
)

// Grant types the token endpoint supports.
const (
	GrantClientCredentials = "client_credentials"
	GrantTokenExchange     = "urn:ietf:params:oauth:grant-type:token-exchange"
)

// TokenTypeAccessToken is the RFC 8693 §3 token type identifier of the access
// tokens this server issues and accepts as subject_token.
const TokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"

// Client authentication methods (RFC 7591 §2 names) the server accepts.
const (
	AuthClientSecretBasic = "client_secret_basic"
	AuthClientSecretPost  = "client_secret_post"
)

// Defaults applied to zero fields of Config.
const (
	DefaultTokenTTL          = time.Hour
	DefaultMaxTokenTTL       = 24 * time.Hour
	DefaultShutdownTimeout   = 10 * time.Second
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultIdleTimeout       = 60 * time.Second
)

// MinAdminTokenLength is the shortest admin token Validate accepts.
const MinAdminTokenLength = 16

// ClientConfig is one registered OAuth client.
type ClientConfig struct {
	// ID is the client_id.
	ID string `json:"id" yaml:"id"`
	// Secret is the client secret for client_secret_basic and
	// client_secret_post.
	Secret config.Secret `json:"secret" yaml:"-"`
	// Grants lists the grant types the client may use at the token endpoint:
	// GrantClientCredentials, GrantTokenExchange (also accepted as
	// "token-exchange" or "token_exchange"). Revocation and introspection
	// need no grant. Empty means no grant.
	Grants []string `json:"grants,omitempty" yaml:"grants,omitempty"`
	// Scopes are the scopes a client_credentials request may ask for. A
	// client without scopes gets tokens without scopes.
	Scopes []string `json:"scopes,omitempty" yaml:"scopes,omitempty"`
	// RevokeAny lets the client revoke tokens issued to other clients
	// (RFC 7009 §2.1 otherwise refuses them).
	RevokeAny bool `json:"revoke_any,omitempty" yaml:"revoke_any,omitempty"`
	// IntrospectAny lets the client introspect tokens issued to other
	// clients; for anyone else such tokens introspect as inactive.
	IntrospectAny bool `json:"introspect_any,omitempty" yaml:"introspect_any,omitempty"`
}

// Config configures a Server. Zero durations take the Default* values.
type Config struct {
	// Issuer is the authorization server's issuer identifier (RFC 8414 §2):
	// an absolute http(s) URL without query or fragment. Endpoints are served
	// under its path, the metadata at /.well-known/oauth-authorization-server
	// followed by that path (RFC 8414 §3.1).
	Issuer string `json:"issuer" yaml:"issuer"`
	// Clients are the registered clients.
	Clients []ClientConfig `json:"clients" yaml:"clients"`
	// TokenTTL is the lifetime of tokens issued without an explicit one.
	TokenTTL time.Duration `json:"token_ttl" yaml:"token_ttl"`
	// MaxTokenTTL bounds the ttl_seconds an admin may ask for.
	MaxTokenTTL time.Duration `json:"max_token_ttl" yaml:"max_token_ttl"`
	// AdminToken protects /admin/*. Empty disables the admin API.
	AdminToken config.Secret `json:"admin_token" yaml:"-"`
	// ShutdownTimeout bounds the graceful shutdown of Serve.
	ShutdownTimeout time.Duration `json:"shutdown_timeout" yaml:"shutdown_timeout"`
	// ReadHeaderTimeout and IdleTimeout configure the http.Server of Serve.
	ReadHeaderTimeout time.Duration `json:"read_header_timeout" yaml:"read_header_timeout"`
	IdleTimeout       time.Duration `json:"idle_timeout" yaml:"idle_timeout"`
	// Now is the clock; nil means time.Now. Tests set it to move time.
	Now func() time.Time `json:"-" yaml:"-"`
}

func (c Config) withDefaults() Config {
	if c.TokenTTL == 0 {
		c.TokenTTL = DefaultTokenTTL
	}
	if c.MaxTokenTTL == 0 {
		c.MaxTokenTTL = max(DefaultMaxTokenTTL, c.TokenTTL)
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.ReadHeaderTimeout == 0 {
		c.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports every problem of the config at once; each is a
// *config.FieldError matching config.ErrInvalid. Zero durations are valid:
// they take the defaults.
func (c Config) Validate() error {
	c = c.withDefaults()
	var p config.Problems
	if _, err := parseIssuer(c.Issuer); err != nil {
		p.Addf("issuer", "%v", err)
	}
	p.Check(len(c.Clients) > 0, "clients", "at least one client is required")
	seen := make(map[string]bool, len(c.Clients))
	for i, cl := range c.Clients {
		field := fmt.Sprintf("clients[%d]", i)
		switch {
		case cl.ID == "":
			p.Addf(field+".id", "required")
		case seen[cl.ID]:
			p.Addf(field+".id", "duplicate id %q", cl.ID)
		case strings.Contains(cl.ID, ":") || !printable(cl.ID):
			// RFC 6749 §2.3.1 form-encodes the id inside Basic credentials;
			// a colon or control character would be ambiguous for clients
			// that skip that step.
			p.Addf(field+".id", "%q must be printable and contain no ':'", cl.ID)
		}
		seen[cl.ID] = true
		p.Check(cl.Secret.IsSet(), field+".secret", "required")
		for _, g := range cl.Grants {
			_, ok := normalizeGrant(g)
			p.Check(ok, field+".grants", "unknown grant %q (want %s or %s)", g, GrantClientCredentials, GrantTokenExchange)
		}
		for _, s := range cl.Scopes {
			p.Check(validScopeToken(s), field+".scopes", "invalid scope %q", s)
		}
	}
	p.Check(c.TokenTTL >= time.Second, "token_ttl", "%s: must be at least 1s", c.TokenTTL)
	p.Check(c.MaxTokenTTL >= c.TokenTTL, "max_token_ttl", "%s: must not be below token_ttl %s", c.MaxTokenTTL, c.TokenTTL)
	p.Check(!c.AdminToken.IsSet() || len(c.AdminToken.Reveal()) >= MinAdminTokenLength,
		"admin_token", "must be at least %d characters", MinAdminTokenLength)
	p.Check(c.ShutdownTimeout >= 0, "shutdown_timeout", "%s: must not be negative", c.ShutdownTimeout)
	p.Check(c.ReadHeaderTimeout >= 0, "read_header_timeout", "%s: must not be negative", c.ReadHeaderTimeout)
	p.Check(c.IdleTimeout >= 0, "idle_timeout", "%s: must not be negative", c.IdleTimeout)
	return p.Err()
}

func parseIssuer(s string) (*url.URL, error) {
	if s == "" {
		return nil, errors.New("required")
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("parsing %q: %w", s, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("%q: scheme must be https (or http for local use)", s)
	case u.Host == "":
		return nil, fmt.Errorf("%q: host is required", s)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		// RFC 8414 §2: the issuer has no query or fragment components.
		return nil, fmt.Errorf("%q: must not have a query or fragment", s)
	case u.User != nil:
		return nil, fmt.Errorf("%q: must not carry user info", s)
	}
	return u, nil
}

func normalizeGrant(g string) (string, bool) {
	switch g {
	case GrantClientCredentials, "client-credentials":
		return GrantClientCredentials, true
	case GrantTokenExchange, "token-exchange", "token_exchange":
		return GrantTokenExchange, true
	}
	return "", false
}

// validScopeToken reports whether s is a scope-token of RFC 6749 §3.3:
// 1*( %x21 / %x23-5B / %x5D-7E ).
func validScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

func printable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}
