package simulate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/revoked-dev/revoked/internal/config"
)

// HTTPIssuerConfig configures an HTTPIssuer.
type HTTPIssuerConfig struct {
	// URL is the token API's base URL (its issuer).
	URL string `flag:"tokenapi" env:"TOKENAPI_URL" yaml:"tokenapi" usage:"base URL of the token API to issue real tokens from (empty: made-up tokens)"`
	// AdminToken authorises POST /admin/tokens.
	AdminToken config.Secret `flag:"-" env:"TOKENAPI_ADMIN_TOKEN" yaml:"-" usage:"admin bearer token of the token API"`
	// TTL is the lifetime of issued tokens.
	TTL time.Duration `flag:"tokenapi-ttl" env:"TOKENAPI_TTL" yaml:"tokenapi_ttl" usage:"lifetime of issued tokens"`
	// ExchangeClientID and ExchangeClientSecret, when set, are the
	// credentials of a client allowed the token-exchange grant; tokens of
	// that client are then downscoped through RFC 8693 token exchange, so
	// the token API records the lineage.
	ExchangeClientID     string        `flag:"tokenapi-client" env:"TOKENAPI_CLIENT_ID" yaml:"tokenapi_client" usage:"client id allowed the token-exchange grant (its tokens are downscoped by exchange)"`
	ExchangeClientSecret config.Secret `flag:"-" env:"TOKENAPI_CLIENT_SECRET" yaml:"-" usage:"secret of that client"`
	// Timeout bounds one request.
	Timeout time.Duration `flag:"tokenapi-timeout" env:"TOKENAPI_TIMEOUT" yaml:"tokenapi_timeout" usage:"timeout of one token API request"`
}

// DefaultHTTPIssuerConfig issues one-hour tokens with a ten-second timeout.
func DefaultHTTPIssuerConfig() HTTPIssuerConfig {
	return HTTPIssuerConfig{TTL: time.Hour, Timeout: 10 * time.Second}
}

// Validate reports every problem with c at once. An empty URL is valid: it
// means no issuer.
func (c HTTPIssuerConfig) Validate() error {
	var p config.Problems
	if c.URL == "" {
		return nil
	}
	u, err := url.Parse(c.URL)
	p.Check(err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "", "tokenapi", "want an http(s) URL, got %q", c.URL)
	p.Check(c.AdminToken.IsSet(), "tokenapi-admin-token", "required with a token API URL")
	p.Check(c.TTL >= time.Second, "tokenapi-ttl", "must be at least one second")
	p.Check(c.Timeout > 0, "tokenapi-timeout", "must be positive")
	p.Check(c.ExchangeClientSecret.IsSet() == (c.ExchangeClientID != ""), "tokenapi-client", "client id and secret come together")
	return p.Err()
}

// HTTPIssuer issues tokens through the admin API of the reference token API
// (POST /admin/tokens) and exchanges them through its RFC 8693 token
// endpoint. It is safe for concurrent use.
type HTTPIssuer struct {
	cfg    HTTPIssuerConfig
	base   string
	client *http.Client
}

var (
	_ TokenIssuer    = (*HTTPIssuer)(nil)
	_ TokenExchanger = (*HTTPIssuer)(nil)
	_ Reverifier     = (*HTTPIssuer)(nil)
)

// NewHTTPIssuer returns an issuer for the token API at cfg.URL. client may
// be nil for a default one.
func NewHTTPIssuer(cfg HTTPIssuerConfig, client *http.Client) (*HTTPIssuer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.URL == "" {
		return nil, errors.New("simulate: token API URL required")
	}
	if client == nil {
		client = &http.Client{}
	}
	return &HTTPIssuer{cfg: cfg, base: strings.TrimSuffix(cfg.URL, "/"), client: client}, nil
}

// tokenResponse is the part of the token API's answers the issuer reads.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenID     string `json:"token_id"`
	ExpiresIn   int64  `json:"expires_in"`
}

// Issue implements TokenIssuer with POST /admin/tokens.
func (h *HTTPIssuer) Issue(ctx context.Context, userID, clientID, sessionID string, scopes []string) (string, string, error) {
	body, err := json.Marshal(map[string]any{
		"user_id":     userID,
		"client_id":   clientID,
		"session_id":  sessionID,
		"scopes":      scopes,
		"ttl_seconds": int64(h.cfg.TTL / time.Second),
	})
	if err != nil {
		return "", "", fmt.Errorf("encoding issue request: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.base+"/admin/tokens", bytes.NewReader(body))
	if err != nil {
		return "", "", fmt.Errorf("building issue request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+h.cfg.AdminToken.Reveal())
	return h.do(req, "issuing token")
}

// CanExchange implements TokenExchanger: only tokens of the configured
// exchange client can be exchanged.
func (h *HTTPIssuer) CanExchange(clientID string) bool {
	return h.cfg.ExchangeClientID != "" && clientID == h.cfg.ExchangeClientID
}

// Exchange implements TokenExchanger with the RFC 8693 token-exchange grant,
// authenticating as the exchange client (client_secret_basic).
func (h *HTTPIssuer) Exchange(ctx context.Context, clientID, parentRaw string, scopes []string) (string, string, error) {
	if !h.CanExchange(clientID) {
		return "", "", fmt.Errorf("no credentials to exchange tokens of client %q", clientID)
	}
	form := url.Values{
		"grant_type":         {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token":      {parentRaw},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"},
		"scope":              {strings.Join(scopes, " ")},
	}
	ctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.base+"/oauth2/token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", "", fmt.Errorf("building exchange request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(h.cfg.ExchangeClientID), url.QueryEscape(h.cfg.ExchangeClientSecret.Reveal()))
	return h.do(req, "exchanging token")
}

// ErrRefused means the token API refused the request with a 4xx answer,
// e.g. an exchange of a token that was revoked meanwhile.
var ErrRefused = errors.New("token API refused the request")

// ErrReverificationRequired means the token API refused a token because
// the user must verify again first (after a revoke_and_reverify). The
// reference token API says so with invalid_grant, which it answers for
// nothing else. It also matches ErrRefused.
var ErrReverificationRequired = errors.New("the user must verify again")

// Reverify implements Reverifier with POST
// /admin/subjects/{user_id}/reverified: the user passed the extra
// verification, and the token API issues their tokens again.
func (h *HTTPIssuer) Reverify(ctx context.Context, userID string) error {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.base+"/admin/subjects/"+url.PathEscape(userID)+"/reverified", nil)
	if err != nil {
		return fmt.Errorf("building re-verification request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+h.cfg.AdminToken.Reveal())
	resp, err := h.client.Do(req)
	if err != nil {
		return fmt.Errorf("re-verifying %s: %w", userID, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("re-verifying %s: token API answered %s", userID, resp.Status)
	}
	return nil
}

// do sends req and reads a token answer. Errors name the status and the
// API's error fields, never the token or the credentials.
func (h *HTTPIssuer) do(req *http.Request, what string) (string, string, error) {
	resp, err := h.client.Do(req)
	if err != nil {
		return "", "", fmt.Errorf("%s: %w", what, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", "", fmt.Errorf("%s: reading answer: %w", what, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		_ = json.Unmarshal(data, &e)
		err := fmt.Errorf("%s: token API answered %s: %s %s", what, resp.Status, e.Error, e.Description)
		switch {
		case resp.StatusCode == http.StatusBadRequest && e.Error == "invalid_grant":
			err = fmt.Errorf("%w: %w: %w", ErrRefused, ErrReverificationRequired, err)
		case resp.StatusCode >= 400 && resp.StatusCode < 500:
			err = fmt.Errorf("%w: %w", ErrRefused, err)
		}
		return "", "", err
	}
	var tr tokenResponse
	if err := json.Unmarshal(data, &tr); err != nil {
		return "", "", fmt.Errorf("%s: decoding answer: %w", what, err)
	}
	if tr.AccessToken == "" {
		return "", "", fmt.Errorf("%s: answer has no access_token", what)
	}
	return tr.AccessToken, tr.TokenID, nil
}
