package idp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/revoked-dev/revoked/schemas"
)

// Response body limits: answers are small except token lists.
const (
	maxBodyBytes = 1 << 20
	maxListBytes = 32 << 20
)

// ClientAuthenticator authenticates the client on a request to an OAuth
// endpoint (RFC 6749 §2.3) by adding form parameters or headers. endpoint
// is the URL the request goes to (the audience of a private_key_jwt
// assertion, RFC 7523 §3). It must be safe for concurrent use.
type ClientAuthenticator interface {
	Authenticate(endpoint string, form url.Values, header http.Header) error
}

// secretBasic is client_secret_basic (RFC 6749 §2.3.1): id and secret are
// form-encoded, then sent as HTTP Basic credentials.
type secretBasic struct {
	id     string
	secret string
}

func (a secretBasic) Authenticate(_ string, _ url.Values, h http.Header) error {
	req := http.Request{Header: h}
	req.SetBasicAuth(url.QueryEscape(a.id), url.QueryEscape(a.secret))
	return nil
}

// secretPost is client_secret_post (RFC 6749 §2.3.1).
type secretPost struct {
	id     string
	secret string
}

func (a secretPost) Authenticate(_ string, form url.Values, _ http.Header) error {
	form.Set("client_id", a.id)
	form.Set("client_secret", a.secret)
	return nil
}

var (
	_ ClientAuthenticator = secretBasic{}
	_ ClientAuthenticator = secretPost{}
)

// Client talks to a token API: RFC 7009 revocation, RFC 7662
// introspection, RFC 8414 discovery and the configured admin calls. It is
// safe for concurrent use.
type Client struct {
	cfg   Config
	http  *http.Client
	log   zerolog.Logger
	auth  ClientAuthenticator
	admin AdminConfig
	clock clockwork.Clock
	now   func() time.Time // clock.Now

	limiter  *rate.Limiter
	breakers *breakers
	tokens   *tokenCache

	mu         sync.Mutex // guards eps and discovered
	eps        endpoints
	discovered bool
}

type endpoints struct {
	token, revocation, introspection string
}

// New validates cfg and returns a client. It makes no request; discovery
// happens on Discover or on the first call that needs a discovered URL.
// httpClient nil means a client of its own that does not follow redirects
// (a redirected POST would arrive as a GET without its body); Config.Timeout
// bounds each request either way.
//
// Every request first passes the circuit breaker of its endpoint (an open
// circuit fails fast with *CircuitOpenError) and then the client's rate
// limit (waiting for it honours ctx). opts add what is not configuration,
// such as WithRegisterer.
func New(cfg Config, httpClient *http.Client, log zerolog.Logger, opts ...Option) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("idp config: %w", err)
	}
	cfg = cfg.withDefaults()
	o := options{clock: clockwork.NewRealClock()}
	for _, opt := range opts {
		opt(&o)
	}
	gauge, err := newCircuitGauge(o.reg)
	if err != nil {
		return nil, fmt.Errorf("idp: %w", err)
	}
	if httpClient == nil {
		httpClient = &http.Client{
			Transport: http.DefaultTransport.(*http.Transport).Clone(),
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	c := &Client{
		cfg:   cfg,
		http:  httpClient,
		log:   log.With().Str("component", "idp").Logger(),
		auth:  cfg.Authenticator,
		admin: cfg.Admin,
		clock: o.clock,
		now:   o.clock.Now,

		limiter:  newLimiter(cfg.RateLimit),
		breakers: &breakers{cfg: cfg.Breaker, gauge: gauge, now: o.clock.Now, m: map[string]*breaker{}},
		tokens:   &tokenCache{m: map[string]cachedToken{}},
		eps: endpoints{
			token:         cfg.TokenURL,
			revocation:    cfg.RevocationURL,
			introspection: cfg.IntrospectionURL,
		},
	}
	if c.auth == nil {
		secret := cfg.ClientSecret.Reveal()
		switch cfg.AuthMethod {
		case AuthClientSecretPost:
			c.auth = secretPost{cfg.ClientID, secret}
		case AuthPrivateKeyJWT:
			a, err := c.privateKeyJWT()
			if err != nil {
				return nil, fmt.Errorf("idp config: %w", err)
			}
			c.auth = a
		default:
			c.auth = secretBasic{cfg.ClientID, secret}
		}
	}
	return c, nil
}

// privateKeyJWT builds the private_key_jwt authenticator from the config.
func (c *Client) privateKeyJWT() (*PrivateKeyJWT, error) {
	key, err := LoadPrivateKeyFile(c.cfg.PrivateKeyFile)
	if err != nil {
		return nil, err
	}
	opts := JWTOptions{Algorithm: c.cfg.SigningAlg, KeyID: c.cfg.KeyID, Lifetime: c.cfg.AssertionLifetime}
	switch aud := c.cfg.AssertionAudience; aud {
	case "", AudienceEndpoint:
	case AudienceIssuer:
		opts.Audience = func(string) string { return c.cfg.Issuer }
	case AudienceTokenEndpoint:
		opts.Audience = func(string) string {
			c.mu.Lock()
			defer c.mu.Unlock()
			return c.eps.token
		}
	default:
		opts.Audience = func(string) string { return aud }
	}
	return NewPrivateKeyJWT(c.cfg.ClientID, key, opts)
}

// metadata is the part of RFC 8414 §2 metadata the client uses.
type metadata struct {
	Issuer                          string   `json:"issuer"`
	TokenEndpoint                   string   `json:"token_endpoint"`
	RevocationEndpoint              string   `json:"revocation_endpoint"`
	IntrospectionEndpoint           string   `json:"introspection_endpoint"`
	RevocationAuthMethods           []string `json:"revocation_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuthMethod []string `json:"introspection_endpoint_auth_methods_supported"`
}

// Discover fetches the issuer's RFC 8414 metadata and fills the endpoint
// URLs that were not configured explicitly. It falls back to OpenID Connect
// discovery when the RFC 8414 document does not exist. It blocks for one or
// two requests, each bounded by Config.Timeout; ctx cancels them. Calling it
// again refreshes the URLs.
func (c *Client) Discover(ctx context.Context) error {
	if c.cfg.Issuer == "" {
		return fmt.Errorf("idp: discover: no issuer: %w", ErrNotConfigured)
	}
	md, err := c.fetchMetadata(ctx, wellKnownURL(c.cfg.Issuer))
	if errors.Is(err, ErrNotFound) {
		md, err = c.fetchMetadata(ctx, strings.TrimSuffix(c.cfg.Issuer, "/")+"/.well-known/openid-configuration")
	}
	if err != nil {
		return err
	}
	// RFC 8414 §3.3: the issuer in the metadata MUST be identical to the
	// one the metadata was requested for, or the metadata MUST NOT be used.
	if md.Issuer != c.cfg.Issuer {
		return fmt.Errorf("%w: metadata names %q, configured %q", ErrIssuerMismatch, md.Issuer, c.cfg.Issuer)
	}
	for _, u := range []string{md.TokenEndpoint, md.RevocationEndpoint, md.IntrospectionEndpoint} {
		if u == "" {
			continue
		}
		if _, err := absURL(u); err != nil {
			return fmt.Errorf("idp: discover: %w: %w", ErrMalformedResponse, err)
		}
	}
	for name, methods := range map[string][]string{"revocation": md.RevocationAuthMethods, "introspection": md.IntrospectionEndpointAuthMethod} {
		// RFC 8414 §2: an absent list means client_secret_basic only.
		if c.cfg.Authenticator == nil && len(methods) > 0 && !slices.Contains(methods, string(c.cfg.AuthMethod)) {
			c.log.Warn().Str("endpoint", name).Strs("supported", methods).Str("auth_method", string(c.cfg.AuthMethod)).
				Msg("the issuer does not advertise the configured client authentication method")
		}
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	set := func(dst *string, configured, discovered string) {
		if configured == "" {
			*dst = discovered
		}
	}
	set(&c.eps.token, c.cfg.TokenURL, md.TokenEndpoint)
	set(&c.eps.revocation, c.cfg.RevocationURL, md.RevocationEndpoint)
	set(&c.eps.introspection, c.cfg.IntrospectionURL, md.IntrospectionEndpoint)
	c.discovered = true
	c.log.Debug().Str("issuer", md.Issuer).Str("revocation_endpoint", c.eps.revocation).
		Str("introspection_endpoint", c.eps.introspection).Msg("metadata discovered")
	return nil
}

func (c *Client) fetchMetadata(ctx context.Context, u string) (metadata, error) {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return metadata{}, fmt.Errorf("idp: discover: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, body, err := c.do(ctx, "discover", req, maxBodyBytes)
	if err != nil {
		return metadata{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return metadata{}, newHTTPError("discover", resp, body, c.now())
	}
	var md metadata
	if err := json.Unmarshal(body, &md); err != nil {
		return metadata{}, fmt.Errorf("idp: discover: %w: %w", ErrMalformedResponse, err)
	}
	return md, nil
}

// wellKnownURL inserts the RFC 8414 well-known segment between host and
// path of the issuer (RFC 8414 §3.1).
func wellKnownURL(issuer string) string {
	u, err := url.Parse(issuer)
	if err != nil {
		return issuer
	}
	u.Path = "/.well-known/oauth-authorization-server" + strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	return u.String()
}

// endpoint returns the URL of an OAuth endpoint, discovering it first if
// needed.
func (c *Client) endpoint(ctx context.Context, op string, pick func(endpoints) string) (string, error) {
	c.mu.Lock()
	u, discovered, token := pick(c.eps), c.discovered, c.eps.token
	c.mu.Unlock()
	if u != "" && token == "" && !discovered && c.cfg.Issuer != "" && c.cfg.Authenticator == nil &&
		c.cfg.AuthMethod == AuthPrivateKeyJWT && c.cfg.AssertionAudience == AudienceTokenEndpoint {
		// The assertion's audience is the token endpoint, known only from
		// the metadata.
		if err := c.Discover(ctx); err != nil {
			return "", err
		}
	}
	if u != "" {
		return u, nil
	}
	if !discovered && c.cfg.Issuer != "" {
		if err := c.Discover(ctx); err != nil {
			return "", err
		}
		c.mu.Lock()
		u = pick(c.eps)
		c.mu.Unlock()
		if u != "" {
			return u, nil
		}
	}
	return "", fmt.Errorf("idp: %s: %w", op, ErrNoEndpoint)
}

// RevokeToken revokes rawToken at the RFC 7009 revocation endpoint; hint is
// the optional token_type_hint ("access_token", "refresh_token"). A 200
// means done, also when the server did not know the token (RFC 7009 §2.2).
// Other answers are *HTTPError; classify them with Retryable. It blocks for
// one request bounded by Config.Timeout (plus discovery on first use); ctx
// cancels it. The raw token appears in no error and no log line, only its
// fingerprint.
func (c *Client) RevokeToken(ctx context.Context, rawToken, hint string) error {
	const op = "revoke"
	if rawToken == "" {
		return fmt.Errorf("idp: %s: empty token: %w", op, ErrInvalidArgument)
	}
	u, err := c.endpoint(ctx, op, func(e endpoints) string { return e.revocation })
	if err != nil {
		return err
	}
	form := url.Values{"token": {rawToken}}
	if hint != "" {
		form.Set("token_type_hint", hint)
	}
	start := time.Now()
	resp, body, err := c.postForm(ctx, op, u, form, maxBodyBytes)
	if err != nil {
		return err
	}
	c.log.Debug().Str("op", op).Str("token_id", schemas.Fingerprint(rawToken)).Int("status", resp.StatusCode).
		Dur("took", time.Since(start)).Msg("token API call")
	if resp.StatusCode != http.StatusOK {
		return newHTTPError(op, resp, body, c.now(), rawToken)
	}
	return nil
}

// Introspection is an RFC 7662 §2.2 answer. When Active is false the other
// fields are empty: the server says nothing more about inactive tokens.
type Introspection struct {
	Active    bool
	Scopes    []string
	ClientID  string
	Subject   string
	Username  string
	TokenType string
	Audience  []string
	Issuer    string
	// TokenID is "jti"; for the reference token API the fingerprint.
	TokenID string
	// SessionID ("sid") and ParentTokenID ("parent_jti") are extensions of
	// the reference token API.
	SessionID     string
	ParentTokenID string
	ExpiresAt     time.Time
	IssuedAt      time.Time
	NotBefore     time.Time
}

type introspectionWire struct {
	Active    *bool           `json:"active"`
	Scope     string          `json:"scope"`
	ClientID  string          `json:"client_id"`
	Subject   string          `json:"sub"`
	Username  string          `json:"username"`
	TokenType string          `json:"token_type"`
	Aud       json.RawMessage `json:"aud"`
	Issuer    string          `json:"iss"`
	Jti       string          `json:"jti"`
	Sid       string          `json:"sid"`
	ParentJti string          `json:"parent_jti"`
	Exp       json.Number     `json:"exp"`
	Iat       json.Number     `json:"iat"`
	Nbf       json.Number     `json:"nbf"`
}

// Introspect asks the RFC 7662 introspection endpoint about rawToken, for
// example to prove that a revocation took. It blocks for one request
// bounded by Config.Timeout (plus discovery on first use); ctx cancels it.
// A non-200 answer is *HTTPError; a 200 without "active" is
// ErrMalformedResponse.
func (c *Client) Introspect(ctx context.Context, rawToken string) (Introspection, error) {
	const op = "introspect"
	if rawToken == "" {
		return Introspection{}, fmt.Errorf("idp: %s: empty token: %w", op, ErrInvalidArgument)
	}
	u, err := c.endpoint(ctx, op, func(e endpoints) string { return e.introspection })
	if err != nil {
		return Introspection{}, err
	}
	start := time.Now()
	resp, body, err := c.postForm(ctx, op, u, url.Values{"token": {rawToken}}, maxBodyBytes)
	if err != nil {
		return Introspection{}, err
	}
	c.log.Debug().Str("op", op).Str("token_id", schemas.Fingerprint(rawToken)).Int("status", resp.StatusCode).
		Dur("took", time.Since(start)).Msg("token API call")
	if resp.StatusCode != http.StatusOK {
		return Introspection{}, newHTTPError(op, resp, body, c.now(), rawToken)
	}
	var w introspectionWire
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&w); err != nil || w.Active == nil {
		return Introspection{}, fmt.Errorf("idp: %s: %w: no \"active\" member", op, ErrMalformedResponse)
	}
	in := Introspection{Active: *w.Active}
	if !in.Active {
		return in, nil
	}
	in.Scopes = strings.Fields(w.Scope)
	in.ClientID, in.Subject, in.Username = w.ClientID, w.Subject, w.Username
	in.TokenType, in.Issuer, in.TokenID = w.TokenType, w.Issuer, w.Jti
	in.SessionID, in.ParentTokenID = w.Sid, w.ParentJti
	var errs []error
	if in.Audience, err = parseAudience(w.Aud); err != nil {
		errs = append(errs, err)
	}
	for _, f := range []struct {
		n   json.Number
		dst *time.Time
	}{{w.Exp, &in.ExpiresAt}, {w.Iat, &in.IssuedAt}, {w.Nbf, &in.NotBefore}} {
		if *f.dst, err = numericDate(f.n); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Introspection{}, fmt.Errorf("idp: %s: %w: %w", op, ErrMalformedResponse, err)
	}
	return in, nil
}

// parseAudience accepts a string or an array of strings (RFC 7662 §2.2).
func parseAudience(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, errors.New("aud is neither a string nor an array of strings")
	}
	return many, nil
}

// numericDate converts seconds since the epoch (RFC 7519 §2, fractions
// allowed) into a time; empty gives the zero time.
func numericDate(n json.Number) (time.Time, error) {
	if n == "" {
		return time.Time{}, nil
	}
	if i, err := n.Int64(); err == nil {
		return time.Unix(i, 0).UTC(), nil
	}
	f, err := n.Float64()
	if err != nil {
		return time.Time{}, fmt.Errorf("bad NumericDate %q", n)
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)).UTC(), nil
}

// postForm sends an authenticated form POST to an OAuth endpoint.
func (c *Client) postForm(ctx context.Context, op, endpoint string, form url.Values, limit int64) (*http.Response, []byte, error) {
	return c.postFormAs(ctx, op, endpoint, endpoint, form, limit)
}

// postFormAs sends a form POST to endpoint, authenticated as the client
// authenticates at authEndpoint (the audience of a private_key_jwt
// assertion).
func (c *Client) postFormAs(ctx context.Context, op, authEndpoint, endpoint string, form url.Values, limit int64) (*http.Response, []byte, error) {
	header := http.Header{}
	if err := c.auth.Authenticate(authEndpoint, form, header); err != nil {
		return nil, nil, fmt.Errorf("idp: %s: authenticating client: %w", op, err)
	}
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, nil, fmt.Errorf("idp: %s: %w", op, err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	return c.do(ctx, op, req, limit)
}

// do sends req with the per-request timeout and reads at most limit bytes
// of the answer. Transport failures come back wrapped: ErrTimeout when the
// request's own timeout ran out, ctx's error when ctx ended, else the
// transport's error.
//
// Before the request, the endpoint's circuit breaker must allow it (else
// *CircuitOpenError, no request) and the rate limit must grant it (waiting
// ends with ctx's error if ctx ends first). The outcome is recorded with
// the breaker: 5xx, 408, timeouts and transient transport failures count
// against the endpoint, any other answer resets it. A request of Check
// (a ctx from checking) passes no breaker: it neither waits for an open
// circuit nor takes the half-open probe's place nor counts, so a check
// neither hides the IdP's answer behind a circuit nor opens one for the
// commands.
func (c *Client) do(ctx context.Context, op string, req *http.Request, limit int64) (*http.Response, []byte, error) {
	var br *breaker
	if !isCheck(ctx) {
		br = c.breakers.get(op)
	}
	if err := br.allow(); err != nil {
		return nil, nil, err
	}
	if err := c.waitLimit(ctx); err != nil {
		br.record(outcomeAbandoned)
		return nil, nil, fmt.Errorf("idp: %s: waiting for the rate limit: %w", op, err)
	}
	resp, body, err := c.send(ctx, op, req, limit)
	switch {
	case err == nil:
		br.record(statusOutcome(resp.StatusCode))
	case ctx.Err() != nil:
		br.record(outcomeAbandoned)
	default:
		// A failure that is not transient (a certificate the client does
		// not trust) is a configuration problem: counting it would turn
		// it into a retryable open circuit.
		if retry, _ := Retryable(err); retry {
			br.record(outcomeTransient)
		} else {
			br.record(outcomeAbandoned)
		}
	}
	return resp, body, err
}

func (c *Client) send(ctx context.Context, op string, req *http.Request, limit int64) (*http.Response, []byte, error) {
	rctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req = req.WithContext(rctx)
	resp, err := c.http.Do(req)
	if err == nil {
		defer resp.Body.Close()
		var body []byte
		body, err = io.ReadAll(io.LimitReader(resp.Body, limit))
		if err == nil {
			return resp, body, nil
		}
	}
	switch {
	case ctx.Err() != nil:
		return nil, nil, fmt.Errorf("idp: %s: %w", op, ctx.Err())
	case rctx.Err() != nil:
		return nil, nil, fmt.Errorf("idp: %s: %w after %s", op, ErrTimeout, c.cfg.Timeout)
	}
	return nil, nil, fmt.Errorf("idp: %s: %w", op, err)
}
