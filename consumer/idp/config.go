package idp

import (
	"fmt"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/revoked-dev/revoked/internal/config"
)

// AuthMethod names how the client authenticates to the OAuth endpoints
// (RFC 7591 §2 names, as in RFC 8414 metadata).
type AuthMethod string

// Client authentication methods.
const (
	// AuthClientSecretBasic sends the credentials in the Authorization
	// header (RFC 6749 §2.3.1). It is the default.
	AuthClientSecretBasic AuthMethod = "client_secret_basic"
	// AuthClientSecretPost sends them as client_id and client_secret form
	// parameters (RFC 6749 §2.3.1).
	AuthClientSecretPost AuthMethod = "client_secret_post"
	// AuthPrivateKeyJWT (RFC 7523 §2.2, OIDC Core §9) signs a client
	// assertion with the key of Config.PrivateKeyFile (PrivateKeyJWT), or
	// uses Config.Authenticator.
	AuthPrivateKeyJWT AuthMethod = "private_key_jwt"
)

// DefaultTimeout bounds one HTTP request when Config.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// DefaultCheckInterval is the consumer's default Config.CheckInterval.
const DefaultCheckInterval = time.Minute

// Admin authentication kinds.
const (
	AdminAuthNone   = "none"
	AdminAuthBearer = "bearer"
	AdminAuthBasic  = "basic"
	// AdminAuthClientCredentials gets a bearer token with the OAuth client
	// credentials grant (RFC 6749 §4.4) at AdminAuth.TokenURL and keeps it
	// until shortly before it expires (Keycloak service accounts, Box
	// Client Credentials Grant).
	AdminAuthClientCredentials = "client_credentials"
)

// Presets of AdminConfig.Preset.
const (
	PresetReference = "reference"
	PresetKeycloak  = "keycloak"
	PresetOkta      = "okta"
	PresetHydra     = "hydra"
	PresetBox       = "box"
)

var presets = []string{PresetReference, PresetKeycloak, PresetOkta, PresetHydra, PresetBox}

// Config configures a Client. Tags let internal/config load it from flags,
// the environment and YAML; secrets come only from the environment (or a
// _FILE) and YAML, never from flags.
type Config struct {
	// Issuer is the authorization server's issuer identifier. When set,
	// Discover (called lazily on first use) fills the endpoint URLs that are
	// not given explicitly from its RFC 8414 metadata.
	Issuer string `flag:"issuer" env:"ISSUER" yaml:"issuer" usage:"OAuth issuer URL, for RFC 8414 discovery"`
	// TokenURL, RevocationURL and IntrospectionURL override discovery.
	TokenURL         string `flag:"token-url" env:"TOKEN_URL" yaml:"token_url" usage:"token endpoint URL (overrides discovery)"`
	RevocationURL    string `flag:"revocation-url" env:"REVOCATION_URL" yaml:"revocation_url" usage:"RFC 7009 revocation endpoint URL (overrides discovery)"`
	IntrospectionURL string `flag:"introspection-url" env:"INTROSPECTION_URL" yaml:"introspection_url" usage:"RFC 7662 introspection endpoint URL (overrides discovery)"`
	// ClientID and ClientSecret authenticate the client at the revocation
	// and introspection endpoints.
	ClientID     string        `flag:"client-id" env:"CLIENT_ID" yaml:"client_id" usage:"OAuth client id"`
	ClientSecret config.Secret `env:"CLIENT_SECRET" yaml:"client_secret"`
	// AuthMethod is client_secret_basic (default), client_secret_post or
	// private_key_jwt.
	AuthMethod AuthMethod `flag:"auth-method" env:"AUTH_METHOD" yaml:"auth_method" usage:"client authentication: client_secret_basic, client_secret_post or private_key_jwt"`
	// PrivateKeyFile is the PEM private key (PKCS #8, PKCS #1 or SEC 1;
	// RSA, P-256, P-384 or Ed25519) that signs private_key_jwt assertions.
	// It is read once, by New.
	PrivateKeyFile string `flag:"private-key-file" env:"PRIVATE_KEY_FILE" yaml:"private_key_file" usage:"PEM private key for private_key_jwt client authentication"`
	// KeyID is the "kid" header of the assertions: the key's id in the
	// client's registered JWK set (Okta and Keycloak pick the key by it
	// when the client has several).
	KeyID string `flag:"key-id" env:"KEY_ID" yaml:"key_id" usage:"kid header of private_key_jwt assertions"`
	// SigningAlg is the JWS alg of the assertions (RS256, PS256, ES256,
	// ES384, EdDSA); empty picks it from the key (RS256 for RSA).
	SigningAlg string `flag:"signing-alg" env:"SIGNING_ALG" yaml:"signing_alg" usage:"JWS alg of private_key_jwt assertions (default from the key)"`
	// AssertionAudience is the "aud" of the assertions: "endpoint" (the URL
	// called, default), "token_endpoint", "issuer", or a literal value.
	AssertionAudience string `flag:"assertion-audience" env:"ASSERTION_AUDIENCE" yaml:"assertion_audience" usage:"aud of private_key_jwt assertions: endpoint, token_endpoint, issuer or a literal"`
	// AssertionLifetime bounds each assertion (default
	// DefaultAssertionLifetime).
	AssertionLifetime time.Duration `flag:"assertion-lifetime" env:"ASSERTION_LIFETIME" yaml:"assertion_lifetime" usage:"lifetime of a private_key_jwt assertion"`
	// Timeout bounds each HTTP request (default DefaultTimeout).
	Timeout time.Duration `flag:"timeout" env:"TIMEOUT" yaml:"timeout" usage:"timeout of one request to the token API"`
	// RateLimit bounds the request rate of all calls of the client.
	RateLimit RateLimitConfig `flag:"rate-limit" env:"RATE_LIMIT" yaml:"rate_limit"`
	// Breaker configures the circuit breaker of each endpoint.
	Breaker BreakerConfig `flag:"breaker" env:"BREAKER" yaml:"breaker"`
	// Admin configures the subject-, token-id-, session- and client-wide
	// calls, which have no standard protocol.
	Admin AdminConfig `flag:"admin" env:"ADMIN" yaml:"admin"`
	// StepUp is the hook of revoke_and_reverify commands: an HTTP call
	// that makes the user prove themselves again (an IdP's "require MFA on
	// next sign-in", a ticket, a chat message). Its templates may use
	// {user_id}, {session_id}, {command_id} and {base}
	// (Admin.BaseURL); its Auth falls back to Admin.Auth. Empty URL: not
	// configured, and StepUp returns ErrNotConfigured, except with
	// Admin.Preset "reference", which fills in ReferenceStepUp (the
	// providers' calls are opt-in: KeycloakStepUp, OktaStepUp).
	StepUp AdminCall `flag:"-" env:"-" yaml:"step_up"`
	// CheckInterval is how often Readiness runs Check: once at start,
	// then every interval (DefaultCheckInterval in the consumer's
	// defaults). Zero disables the check. The Client itself does not use
	// it.
	CheckInterval time.Duration `flag:"check-interval" env:"CHECK_INTERVAL" yaml:"check_interval" usage:"how often the consumer checks that it can authenticate to the token API, for /readyz (0: never)"`
	// Authenticator, if set, replaces the built-in client authentication,
	// whatever AuthMethod says (for a key held in an HSM or KMS, say).
	Authenticator ClientAuthenticator `flag:"-" env:"-" yaml:"-"`
}

// AdminConfig describes the admin calls of an identity provider as data:
// each call is an HTTP method, a URL template, an optional body template,
// the statuses that mean success and how to authenticate. A call with an
// empty URL is not configured; using it returns ErrNotConfigured.
type AdminConfig struct {
	// Preset, if set, fills every call whose URL is empty from a known
	// provider: "reference" (ReferencePreset), "keycloak", "okta",
	// "hydra" or "box" (see KeycloakPreset, OktaPreset, HydraPreset,
	// BoxPreset for what each expects in BaseURL and Auth).
	Preset string `flag:"preset" env:"PRESET" yaml:"preset" usage:"admin API preset: reference, keycloak, okta, hydra, box, or empty for explicit calls"`
	// BaseURL replaces {base} in templates.
	BaseURL string `flag:"base-url" env:"BASE_URL" yaml:"base_url" usage:"base URL of the admin API ({base} in templates)"`
	// Auth authenticates every call that has no Auth of its own.
	Auth AdminAuth `flag:"auth" env:"AUTH" yaml:"auth"`

	// Subject revokes everything of a user ({user_id}).
	Subject AdminCall `flag:"-" env:"-" yaml:"subject"`
	// SubjectSessions, if configured, is a second subject-wide call made
	// after Subject succeeds, for providers that keep login sessions apart
	// from grants (Ory Hydra: consent sessions, then login sessions).
	SubjectSessions AdminCall `flag:"-" env:"-" yaml:"subject_sessions"`
	// TokenID revokes one token by id or fingerprint ({token_id}).
	TokenID AdminCall `flag:"-" env:"-" yaml:"token_id"`
	// Session revokes a session's tokens ({session_id}).
	Session AdminCall `flag:"-" env:"-" yaml:"session"`
	// Client revokes every token of a client ({client_id}).
	Client AdminCall `flag:"-" env:"-" yaml:"client"`
	// ListSubjectTokens lists a user's live tokens ({user_id}); the answer
	// must be a JSON array of TokenInfo.
	ListSubjectTokens AdminCall `flag:"-" env:"-" yaml:"list_subject_tokens"`
	// SubjectClient revokes a user's tokens of one client ({user_id} and
	// {client_id}): the narrowest wider call after a token revocation that
	// did not take (Ory Hydra: the consent of that user for that client).
	SubjectClient AdminCall `flag:"-" env:"-" yaml:"subject_client"`
	// ClientLookup answers success when {client_id} names a registered
	// client, with its RFC 7591 metadata (grant_types), and 404 when it
	// does not. With it, a user target whose id
	// names a client (a client-credentials grant's subject is its client
	// id on Ory Hydra, where the subject-wide call leaves such tokens
	// alone) also gets the Client call.
	ClientLookup AdminCall `flag:"-" env:"-" yaml:"client_lookup"`

	// Escalate lists, per target kind (user, token, session, client), the
	// wider calls a revocation that did not take falls back to, in order:
	// subject_client, subject or client. A revocation did not take when
	// the proof shows a targeted token still active, or at once when its
	// call is LoginOnly. Each fallback is followed by the proof again.
	Escalate Escalation `flag:"-" env:"-" yaml:"escalate"`
	// NotEffectiveRetries is how many times a revocation whose proof shows
	// a targeted token still active is repeated (call and proof, after
	// NotEffectiveDelay) before it escalates; for providers whose
	// revocation takes a moment to reach introspection.
	NotEffectiveRetries int           `flag:"not-effective-retries" env:"NOT_EFFECTIVE_RETRIES" yaml:"not_effective_retries" usage:"repeats of a revocation the proof shows did not take, before escalating"`
	NotEffectiveDelay   time.Duration `flag:"not-effective-delay" env:"NOT_EFFECTIVE_DELAY" yaml:"not_effective_delay" usage:"wait before repeating a revocation the proof shows did not take"`
}

// Escalation lists, per target kind, the fallbacks of a revocation that
// did not take.
type Escalation struct {
	User    []string `yaml:"user"`
	Token   []string `yaml:"token"`
	Session []string `yaml:"session"`
	Client  []string `yaml:"client"`
}

// For returns the fallbacks of a target kind.
func (e Escalation) For(kind string) []string {
	switch kind {
	case "user":
		return e.User
	case "token":
		return e.Token
	case "session":
		return e.Session
	case "client":
		return e.Client
	}
	return nil
}

// Fallbacks the Escalate lists may name.
const (
	EscalateSubjectClient = "subject_client"
	EscalateSubject       = "subject"
	EscalateClient        = "client"
)

// AdminCall is one admin call.
//
// URL and Body are templates. {base} is replaced by AdminConfig.BaseURL as
// is; the call's own placeholder ({user_id}, {token_id}, {session_id} or
// {client_id}) is replaced by the value escaped for where it stands: as a
// path segment before '?', as a query value after it, as JSON string content
// in a JSON body, as a form value in a form body. So a user id like
// "a/b&c" cannot change the shape of the request.
type AdminCall struct {
	Method string `yaml:"method"`
	URL    string `yaml:"url"`
	Body   string `yaml:"body"`
	// ContentType of Body: application/json (default) or
	// application/x-www-form-urlencoded.
	ContentType string `yaml:"content_type"`
	// AcceptStatus lists the statuses that mean success: codes ("204") or
	// classes ("2xx"). Default: 2xx.
	AcceptStatus []string `yaml:"accept_status"`
	// CountField names the number in a JSON object answer that says how
	// many tokens were revoked (default "revoked").
	CountField string `yaml:"count_field"`
	// Auth overrides AdminConfig.Auth when its Kind is set.
	Auth AdminAuth `yaml:"auth"`
	// LoginOnly marks a call that ends login sessions and leaves tokens
	// already issued active (Ory Hydra's session call): a revocation made
	// with it alone is not effective, and escalates.
	LoginOnly bool `yaml:"login_only"`
	// AccessOnly marks a client call that revokes access tokens and leaves
	// refresh tokens active (Ory Hydra's): a client revocation made with
	// it is not effective when the client lookup says the client may hold
	// refresh tokens (its grant_types, RFC 7591, name refresh_token).
	AccessOnly bool `yaml:"access_only"`
}

// AdminAuth authenticates admin calls.
type AdminAuth struct {
	// Kind is "bearer", "basic", "client_credentials" or "none".
	Kind string `flag:"kind" env:"KIND" yaml:"kind" usage:"admin API authentication: bearer, basic, client_credentials or none"`
	// Token is sent as "Authorization: <Scheme> <Token>" for bearer.
	Token config.Secret `env:"TOKEN" yaml:"token"`
	// Scheme of the Authorization header for bearer (default "Bearer";
	// Okta's API tokens use "SSWS").
	Scheme string `flag:"scheme" env:"SCHEME" yaml:"scheme" usage:"authorization scheme for bearer admin auth (default Bearer)"`
	// Username and Password for basic.
	Username string        `flag:"username" env:"USERNAME" yaml:"username" usage:"user for basic admin auth"`
	Password config.Secret `env:"PASSWORD" yaml:"password"`

	// TokenURL, ClientID, ClientSecret, Scope and Params are for
	// client_credentials: the token endpoint, the client (default
	// Config.ClientID and Config.ClientSecret, sent as form parameters,
	// client_secret_post), the optional scope and extra "name=value" form
	// parameters (Box: box_subject_type=enterprise, box_subject_id=<id>).
	TokenURL     string        `flag:"token-url" env:"TOKEN_URL" yaml:"token_url" usage:"token endpoint for client_credentials admin auth"`
	ClientID     string        `flag:"client-id" env:"CLIENT_ID" yaml:"client_id" usage:"client id for client_credentials admin auth (default: the OAuth client id)"`
	ClientSecret config.Secret `env:"CLIENT_SECRET" yaml:"client_secret"`
	Scope        string        `flag:"scope" env:"SCOPE" yaml:"scope" usage:"scope for client_credentials admin auth"`
	Params       []string      `flag:"params" env:"PARAMS" yaml:"params" usage:"extra name=value form parameters of the client_credentials request"`
	// UseClientAuth authenticates the client_credentials request as the
	// OAuth client does at its other endpoints (Config.AuthMethod,
	// private_key_jwt included, with TokenURL as the endpoint) instead of
	// with ClientID and ClientSecret; the client must be the OAuth client.
	UseClientAuth bool `flag:"use-client-auth" env:"USE_CLIENT_AUTH" yaml:"use_client_auth" usage:"authenticate the admin token request like the OAuth client (private_key_jwt too)"`
}

// ReferencePreset returns the admin calls of the reference token API
// (deployments/tokenapi) at baseURL, authenticated with its admin token.
func ReferencePreset(baseURL string, adminToken config.Secret) AdminConfig {
	a := AdminConfig{
		Preset:  PresetReference,
		BaseURL: baseURL,
		Auth:    AdminAuth{Kind: AdminAuthBearer, Token: adminToken},
	}
	return a.withPreset()
}

// withPreset fills the calls with an empty URL from the preset.
func (a AdminConfig) withPreset() AdminConfig {
	switch a.Preset {
	case PresetKeycloak, PresetOkta, PresetHydra, PresetBox:
		return a.withProviderPreset()
	case PresetReference:
	default:
		return a
	}
	post := func(path string) AdminCall {
		return AdminCall{Method: http.MethodPost, URL: "{base}" + path, AcceptStatus: []string{"200"}, CountField: "revoked"}
	}
	fill := func(c *AdminCall, def AdminCall) {
		if c.URL == "" {
			auth := c.Auth
			*c = def
			c.Auth = auth
		}
	}
	fill(&a.Subject, post("/admin/subjects/{user_id}/revoke"))
	fill(&a.TokenID, post("/admin/tokens/{token_id}/revoke"))
	fill(&a.Session, post("/admin/sessions/{session_id}/revoke"))
	fill(&a.Client, post("/admin/clients/{client_id}/revoke"))
	fill(&a.ListSubjectTokens, AdminCall{Method: http.MethodGet, URL: "{base}/admin/subjects/{user_id}/tokens", AcceptStatus: []string{"200"}})
	return a
}

func (c Config) withDefaults() Config {
	if c.AuthMethod == "" {
		c.AuthMethod = AuthClientSecretBasic
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Breaker.Failures == 0 {
		c.Breaker.Failures = DefaultBreakerFailures
	}
	if c.Breaker.Cooldown == 0 {
		c.Breaker.Cooldown = DefaultBreakerCooldown
	}
	c.Admin = c.Admin.withPreset()
	c.StepUp = c.withStepUpPreset()
	c.Admin.Auth = c.Admin.Auth.withClient(c.ClientID, c.ClientSecret)
	for _, call := range append(c.Admin.callPtrs(), &c.StepUp) {
		call.Auth = call.Auth.withClient(c.ClientID, c.ClientSecret)
	}
	return c
}

func (a *AdminConfig) callPtrs() []*AdminCall {
	return []*AdminCall{&a.Subject, &a.SubjectSessions, &a.TokenID, &a.Session, &a.Client, &a.ListSubjectTokens, &a.SubjectClient, &a.ClientLookup}
}

// withClient makes client_credentials default to the OAuth client.
func (a AdminAuth) withClient(id string, secret config.Secret) AdminAuth {
	if a.Kind == AdminAuthClientCredentials {
		if a.ClientID == "" {
			a.ClientID = id
		}
		if !a.ClientSecret.IsSet() {
			a.ClientSecret = secret
		}
	}
	return a
}

// Validate reports every problem of the config at once; each is a
// *config.FieldError matching config.ErrInvalid.
func (c Config) Validate() error {
	c = c.withDefaults()
	var p config.Problems

	if c.Issuer != "" {
		if u, err := absURL(c.Issuer); err != nil {
			p.Addf("issuer", "%v", err)
		} else if u.RawQuery != "" || u.Fragment != "" {
			// RFC 8414 §2: no query or fragment.
			p.Addf("issuer", "%q must not have a query or fragment", c.Issuer)
		}
	}
	for field, v := range map[string]string{"token_url": c.TokenURL, "revocation_url": c.RevocationURL, "introspection_url": c.IntrospectionURL} {
		if v == "" {
			continue
		}
		if _, err := absURL(v); err != nil {
			p.Addf(field, "%v", err)
		}
	}
	oauth := c.Issuer != "" || c.TokenURL != "" || c.RevocationURL != "" || c.IntrospectionURL != ""
	if oauth {
		p.Check(c.ClientID != "", "client_id", "required with an issuer or endpoint URL")
		switch c.AuthMethod {
		case AuthClientSecretBasic, AuthClientSecretPost:
			p.Check(c.Authenticator != nil || c.ClientSecret.IsSet(), "client_secret", "required for %s", c.AuthMethod)
		case AuthPrivateKeyJWT:
			p.Check(c.Authenticator != nil || c.PrivateKeyFile != "", "private_key_file", "private_key_jwt needs a private key file or an Authenticator")
			switch c.AssertionAudience {
			case "", AudienceEndpoint:
			case AudienceTokenEndpoint:
				p.Check(c.TokenURL != "" || c.Issuer != "", "assertion_audience", "token_endpoint needs token_url or an issuer to discover it from")
			case AudienceIssuer:
				p.Check(c.Issuer != "", "assertion_audience", "issuer needs issuer")
			}
			switch c.SigningAlg {
			case "", AlgRS256, AlgPS256, AlgES256, AlgES384, AlgEdDSA:
			default:
				p.Addf("signing_alg", "unsupported %q (want RS256, PS256, ES256, ES384 or EdDSA)", c.SigningAlg)
			}
			p.Check(c.AssertionLifetime >= 0, "assertion_lifetime", "%s: must not be negative", c.AssertionLifetime)
		default:
			p.Addf("auth_method", "unknown method %q (want client_secret_basic, client_secret_post or private_key_jwt)", c.AuthMethod)
		}
	}
	p.Check(c.Timeout > 0, "timeout", "%s: must be positive", c.Timeout)
	p.Check(c.RateLimit.PerSecond >= 0 && !math.IsInf(c.RateLimit.PerSecond, 0) && !math.IsNaN(c.RateLimit.PerSecond),
		"rate_limit.per_second", "%v: must be a non-negative number", c.RateLimit.PerSecond)
	p.Check(c.RateLimit.Burst >= 0, "rate_limit.burst", "%d: must not be negative", c.RateLimit.Burst)
	p.Check(c.Breaker.Cooldown > 0, "breaker.cooldown", "%s: must be positive", c.Breaker.Cooldown)
	p.Check(c.CheckInterval >= 0, "check_interval", "%s: must not be negative", c.CheckInterval)
	p.Nest("admin", c.Admin.validate())
	if c.StepUp.URL != "" {
		validateCall(&p, "step_up", c.StepUp, stepUpParams, c.Admin.BaseURL, "admin.base_url", c.Admin.Auth)
	}
	p.Check(oauth || c.Admin.configured() || c.StepUp.URL != "", "", "nothing to call: set issuer, an endpoint URL, admin calls or step_up")
	return p.Err()
}

func (a AdminConfig) configured() bool {
	for _, c := range a.calls() {
		if c.call.URL != "" {
			return true
		}
	}
	return false
}

type namedCall struct {
	name   string
	params []string
	call   AdminCall
}

func (a AdminConfig) calls() []namedCall {
	return []namedCall{
		{"subject", []string{"user_id"}, a.Subject},
		{"subject_sessions", []string{"user_id"}, a.SubjectSessions},
		{"token_id", []string{"token_id"}, a.TokenID},
		{"session", []string{"session_id"}, a.Session},
		{"client", []string{"client_id"}, a.Client},
		{"list_subject_tokens", []string{"user_id"}, a.ListSubjectTokens},
		{"subject_client", []string{"user_id", "client_id"}, a.SubjectClient},
		{"client_lookup", []string{"client_id"}, a.ClientLookup},
	}
}

// placeholderRE matches a placeholder: a name in braces. A JSON object in
// a body ({"a":false}) is not one.
var placeholderRE = regexp.MustCompile(`\{[A-Za-z0-9_.-]*\}`)

func (a AdminConfig) validate() error {
	var p config.Problems
	p.Check(a.Preset == "" || slices.Contains(presets, a.Preset), "preset", "unknown preset %q (want one of %s, or empty)", a.Preset, strings.Join(presets, ", "))
	if a.BaseURL != "" {
		if _, err := absURL(a.BaseURL); err != nil {
			p.Addf("base_url", "%v", err)
		}
	}
	p.Nest("auth", a.Auth.validate(false))
	for _, nc := range a.calls() {
		if nc.call.URL == "" {
			continue
		}
		for _, param := range nc.params {
			want := "{" + param + "}"
			if !strings.Contains(nc.call.URL, want) && !strings.Contains(nc.call.Body, want) {
				p.Addf(nc.name+".url", "template uses neither in url nor in body the placeholder %s", want)
			}
		}
		validateCall(&p, nc.name, nc.call, nc.params, a.BaseURL, "base_url", a.Auth)
	}
	for _, kind := range []string{"user", "token", "session", "client"} {
		for _, step := range a.Escalate.For(kind) {
			switch step {
			case EscalateSubjectClient:
				p.Check(a.SubjectClient.URL != "", "escalate."+kind, "%s needs the subject_client call", step)
			case EscalateSubject:
				p.Check(a.Subject.URL != "", "escalate."+kind, "%s needs the subject call", step)
			case EscalateClient:
				p.Check(a.Client.URL != "", "escalate."+kind, "%s needs the client call", step)
			default:
				p.Addf("escalate."+kind, "unknown fallback %q (want subject_client, subject or client)", step)
			}
		}
	}
	p.Check(a.NotEffectiveRetries >= 0, "not_effective_retries", "%d: must not be negative", a.NotEffectiveRetries)
	p.Check(a.NotEffectiveDelay >= 0, "not_effective_delay", "%s: must not be negative", a.NotEffectiveDelay)
	return p.Err()
}

// validateCall checks a configured call whose templates may use the
// placeholders named by params and {base}; baseField names the setting of
// baseURL in the problems.
func validateCall(p *config.Problems, f string, c AdminCall, params []string, baseURL, baseField string, defAuth AdminAuth) {
	switch c.Method {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
	default:
		p.Addf(f+".method", "%q is not GET, POST, PUT, PATCH or DELETE", c.Method)
	}
	allowed := make([]string, 0, len(params)+1)
	for _, prm := range params {
		allowed = append(allowed, "{"+prm+"}")
	}
	allowed = append(allowed, "{base}")
	for _, tmpl := range []string{c.URL, c.Body} {
		for _, ph := range placeholderRE.FindAllString(tmpl, -1) {
			p.Check(slices.Contains(allowed, ph), f, "unknown placeholder %s (want %s)", ph, strings.Join(allowed, " or "))
		}
	}
	if strings.Contains(c.URL, "{base}") {
		p.Check(baseURL != "", baseField, "required by %s.url", f)
		p.Check(strings.HasPrefix(c.URL, "{base}"), f+".url", "{base} must start the template")
	} else if _, err := absURL(c.URL); err != nil {
		p.Addf(f+".url", "%v", err)
	}
	switch c.ContentType {
	case "", "application/json", "application/x-www-form-urlencoded":
	default:
		p.Addf(f+".content_type", "unsupported %q (want application/json or application/x-www-form-urlencoded)", c.ContentType)
	}
	for _, s := range c.AcceptStatus {
		_, _, ok := parseStatusPattern(s)
		p.Check(ok, f+".accept_status", "%q is neither a status code nor a class like 2xx", s)
	}
	auth := c.Auth
	if auth.Kind == "" {
		auth = defAuth
	}
	p.Nest(f+".auth", auth.validate(true))
}

func (a AdminAuth) validate(inUse bool) error {
	var p config.Problems
	switch a.Kind {
	case "":
		p.Check(!inUse, "kind", "required (bearer, basic, client_credentials or none)")
	case AdminAuthNone:
	case AdminAuthBearer:
		p.Check(a.Token.IsSet(), "token", "required for bearer")
		p.Check(!strings.ContainsAny(a.Scheme, " \t\r\n"), "scheme", "must be one word")
	case AdminAuthBasic:
		p.Check(a.Username != "", "username", "required for basic")
		p.Check(a.Password.IsSet(), "password", "required for basic")
	case AdminAuthClientCredentials:
		if _, err := absURL(a.TokenURL); err != nil {
			p.Addf("token_url", "required for client_credentials: %v", err)
		}
		p.Check(a.ClientID != "", "client_id", "required for client_credentials")
		p.Check(a.UseClientAuth || a.ClientSecret.IsSet(), "client_secret", "required for client_credentials without use_client_auth")
		for _, kv := range a.Params {
			k, _, ok := strings.Cut(kv, "=")
			p.Check(ok && k != "", "params", "%q is not name=value", kv)
		}
	default:
		p.Addf("kind", "unknown %q (want bearer, basic, client_credentials or none)", a.Kind)
	}
	return p.Err()
}

// parseStatusPattern parses "204" or "2xx" into an inclusive range.
func parseStatusPattern(s string) (lo, hi int, ok bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	if len(s) == 3 && s[1:] == "xx" && s[0] >= '1' && s[0] <= '5' {
		lo = int(s[0]-'0') * 100
		return lo, lo + 99, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 100 || n > 599 {
		return 0, 0, false
	}
	return n, n, true
}

func (c AdminCall) accepts(status int) bool {
	pats := c.AcceptStatus
	if len(pats) == 0 {
		pats = []string{"2xx"}
	}
	return slices.ContainsFunc(pats, func(s string) bool {
		lo, hi, ok := parseStatusPattern(s)
		return ok && status >= lo && status <= hi
	})
}

func absURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("parsing %q: %w", s, err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("%q is not an absolute http(s) URL", s)
	}
	return u, nil
}
