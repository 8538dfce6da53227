package idp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// ErrNotChecked is Readiness.Check's answer before the first check ended.
var ErrNotChecked = errors.New("not checked yet")

// checkTokenPrefix starts the token Check revokes and introspects: a
// random value that names no token, recognisable in the provider's logs.
const checkTokenPrefix = "revoked-readiness-check-"

type checkKey struct{}

// isCheck reports whether ctx is the context of a Check request, which
// passes no circuit breaker (see do).
func isCheck(ctx context.Context) bool { return ctx.Value(checkKey{}) != nil }

// CheckError is Check's answer when steps failed: each failure, in the
// order of the steps. errors.Is and errors.As see every one of them
// (ErrInvalidClient, *HTTPError ...).
type CheckError struct {
	Errs []error
}

func (e *CheckError) Error() string {
	s := make([]string, len(e.Errs))
	for i, err := range e.Errs {
		s[i] = err.Error()
	}
	return strings.Join(s, "; ")
}

// Unwrap returns the failures.
func (e *CheckError) Unwrap() []error { return e.Errs }

// Check proves that the client can do its work with the token API, with
// no real token, and answers why not: an *HTTPError carries the
// provider's "error" and "error_description" (a wrong private_key_jwt
// audience, an unknown client, a wrong secret), a transport error the
// failure to reach it. It returns nil, or a *CheckError. Its steps:
//
//  1. With an issuer, discovery (Discover): the metadata is fetched
//     again, its issuer must match, and the endpoint URLs are refreshed.
//     A failure here ends the check.
//  2. At the revocation endpoint, the RFC 7009 revocation of a random
//     token that names none (no token_type_hint): RFC 7009 §2.1 has the
//     server authenticate a confidential client before anything else, and
//     §2.2 answer 200 for a token it does not know, so 200 proves the
//     client's authentication and 401 invalid_client says why it fails.
//     This is the call that proves it on Ory Hydra, whose introspection
//     is on the admin API and authenticates no one.
//  3. At the introspection endpoint, the RFC 7662 introspection of the
//     same token: an authenticated client gets 200 {"active":false}
//     (RFC 7662 §2.2), one whose authentication fails 401 invalid_client.
//     Where the endpoint authenticates no one (Hydra's admin API) it
//     proves the endpoint answers, as the proof after a revocation needs.
//  4. For every distinct client_credentials admin auth (of the admin
//     calls and the step-up hook), an admin token: the cached one while
//     it has life left, else one from its token endpoint.
//
// When step 2 or 3 refused the client (401, or 400 invalid_client or
// invalid_request) and a token endpoint is known, the check asks it why
// (diagnose): Ory Hydra's revocation answers only that authentication
// failed, its token endpoint also why, e.g. "Claim 'audience' from
// 'client_assertion' must match the authorization server's token endpoint
// '…'". The refusal's error then ends in "(the token endpoint says: …)".
//
// Steps 2 to 4 all run, so the error names every failure. A configured
// issuer or endpoint URL with neither a revocation nor an introspection
// endpoint known is a failure (ErrNoEndpoint): token commands would fail
// the same way. Only answers of 200 pass steps 2 and 3.
//
// Check's requests pass the rate limit like any other (waiting honours
// ctx) but no circuit breaker: they do not wait for an open circuit, take
// no half-open probe's place and count for none, so the check reports the
// provider's present answer and cannot open a circuit for the commands.
// It blocks for every request of its steps, each bounded by
// Config.Timeout; ctx cancels them.
func (c *Client) Check(ctx context.Context) error {
	_, err := c.check(ctx)
	return err
}

// check runs Check and also returns the steps it made, for the log.
func (c *Client) check(ctx context.Context) (steps []string, err error) {
	ctx = context.WithValue(ctx, checkKey{}, true)
	if c.cfg.Issuer != "" {
		steps = append(steps, "discover")
		if err := c.Discover(ctx); err != nil {
			return steps, &CheckError{Errs: []error{err}}
		}
	}
	c.mu.Lock()
	eps := c.eps
	c.mu.Unlock()

	var errs []error
	token, err := checkToken()
	if err != nil {
		return steps, &CheckError{Errs: []error{err}}
	}
	if eps.revocation != "" {
		steps = append(steps, "revoke")
		if err := c.RevokeToken(ctx, token, ""); err != nil {
			errs = append(errs, err)
		}
	}
	if eps.introspection != "" {
		steps = append(steps, "introspect")
		if _, err := c.Introspect(ctx, token); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 && eps.token != "" {
		steps = append(steps, "diagnose")
		c.diagnose(ctx, eps, errs)
	}
	if eps.revocation == "" && eps.introspection == "" &&
		(c.cfg.Issuer != "" || c.cfg.RevocationURL != "" || c.cfg.IntrospectionURL != "") {
		errs = append(errs, fmt.Errorf("idp: check: neither a revocation nor an introspection endpoint: %w", ErrNoEndpoint))
	}
	for _, a := range c.credentialAuths() {
		steps = append(steps, "admin_token")
		if _, err := c.adminToken(ctx, a); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return steps, &CheckError{Errs: errs}
	}
	return steps, nil
}

// diagnose asks the token endpoint why the client's authentication
// failed, for providers whose revocation and introspection answers say
// only that it did: Ory Hydra (fosite) answers there with the bare
// invalid_client or invalid_request, and at the token endpoint adds the
// reason (the assertion audience it wants, an unknown kid, the
// authentication method the client is registered for). It replaces the
// first refusal of the client in errs (401, or 400 invalid_client or
// invalid_request) with that refusal and the token endpoint's reason,
// when the reason says more. The request is a client credentials grant
// for a random scope that no client has, authenticated as at the endpoint
// that refused (a private_key_jwt assertion for its audience), so a server
// that does authenticate the client refuses the scope (invalid_scope) and
// issues no token.
func (c *Client) diagnose(ctx context.Context, eps endpoints, errs []error) {
	const op = "diagnose"
	var failed *HTTPError
	i := slices.IndexFunc(errs, func(err error) bool {
		return errors.As(err, &failed) && (failed.Status == http.StatusUnauthorized ||
			(failed.Status == http.StatusBadRequest && (failed.OAuthError == "invalid_client" || failed.OAuthError == "invalid_request")))
	})
	if i < 0 {
		return
	}
	refusedAt := eps.revocation
	if failed.Op == "introspect" {
		refusedAt = eps.introspection
	}
	scope, err := checkToken()
	if err != nil {
		return
	}
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}
	resp, body, err := c.postFormAs(ctx, op, refusedAt, eps.token, form, maxBodyBytes)
	if err != nil || (resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusBadRequest) {
		return
	}
	var oe struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if json.Unmarshal(body, &oe) != nil || (oe.Error != "invalid_client" && oe.Error != "invalid_request") {
		return
	}
	redact := []string{c.cfg.ClientSecret.Reveal()}
	reason := sanitize(oe.Description, 1000, redact)
	// Hydra repeats the refusal's generic sentences and adds the reason.
	reason = sanitize(strings.TrimLeft(reason[repeated(reason, failed.Description):], ". "), 300, redact)
	if reason == "" {
		return
	}
	errs[i] = fmt.Errorf("%w (the token endpoint says: %s)", errs[i], reason)
}

// repeated returns how many bytes at the start of reason, in whole
// sentences, repeat desc (which sanitize may have cut, ending in "…").
func repeated(reason, desc string) int {
	cut := strings.HasSuffix(desc, "…")
	desc = strings.TrimSuffix(desc, "…")
	n := 0
	for n < len(reason) && n < len(desc) && reason[n] == desc[n] {
		n++
	}
	if n == len(reason) || (n == len(desc) && !cut) {
		return n
	}
	if j := strings.LastIndex(reason[:n], ". "); j >= 0 {
		return j + 2
	}
	return 0
}

// checkToken returns a random token that names none.
func checkToken() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("idp: check: %w", err)
	}
	return checkTokenPrefix + hex.EncodeToString(b[:]), nil
}

// credentialAuths returns the distinct client_credentials auths of the
// configured admin calls and step-up hook.
func (c *Client) credentialAuths() []AdminAuth {
	var out []AdminAuth
	seen := map[string]bool{}
	for _, call := range append(c.admin.calls(), namedCall{call: c.cfg.StepUp}) {
		if call.call.URL == "" {
			continue
		}
		auth := call.call.Auth
		if auth.Kind == "" {
			auth = c.admin.Auth
		}
		if auth.Kind != AdminAuthClientCredentials || seen[tokenKey(auth)] {
			continue
		}
		seen[tokenKey(auth)] = true
		out = append(out, auth)
	}
	return out
}

// Readiness runs a Client's Check at start and every interval, keeps the
// last result and answers readiness checks with it. Its Check suits
// ops.Server.AddCheck. It is safe for concurrent use.
type Readiness struct {
	client   *Client
	interval time.Duration
	timeout  time.Duration
	log      zerolog.Logger

	mu      sync.Mutex
	checked bool      // a check has ended
	err     error     // its result
	since   time.Time // when its state (passing, failing) began
}

// NewReadiness returns the readiness of client, checked every interval
// (positive) once Run runs.
func NewReadiness(client *Client, interval time.Duration, log zerolog.Logger) *Readiness {
	return &Readiness{
		client:   client,
		interval: interval,
		// Enough for discovery's two requests, the revocation, the
		// introspection and two admin tokens at their own timeout.
		timeout: 6 * client.cfg.Timeout,
		log:     log.With().Str("component", "idp").Logger(),
	}
}

// Run checks at once, then every interval after the previous check ended,
// until ctx ends; then it returns nil. A check is bounded by six times
// Config.Timeout. The first result is logged (info when it passes, error
// when it fails), then every change from passing to failing and back,
// once.
func (r *Readiness) Run(ctx context.Context) error {
	t := r.client.clock.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.Chan():
		}
		r.runOnce(ctx)
		t.Reset(r.interval)
	}
}

func (r *Readiness) runOnce(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	start := r.client.now()
	steps, err := r.client.check(cctx)
	if ctx.Err() != nil {
		// Shutting down: the check was cut short, it found nothing.
		return
	}
	r.mu.Lock()
	first := !r.checked
	changed := first || (err == nil) != (r.err == nil)
	r.checked, r.err = true, err
	if changed {
		r.since = r.client.now()
	}
	r.mu.Unlock()
	if !changed {
		return
	}
	took := r.client.clock.Since(start)
	switch {
	case err != nil:
		r.log.Error().Err(err).Strs("steps", steps).Dur("took", took).
			Msg("token API check failed: /readyz fails until it passes")
	case first:
		r.log.Info().Strs("steps", steps).Dur("took", took).Msg("token API check passed")
	default:
		r.log.Info().Strs("steps", steps).Dur("took", took).Msg("token API check passes again")
	}
}

// Check returns nil when the last check passed, ErrNotChecked before the
// first one ended, and else the last check's error with the time it began
// failing. It does not call the token API.
func (r *Readiness) Check(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case !r.checked:
		return ErrNotChecked
	case r.err == nil:
		return nil
	}
	return fmt.Errorf("%w (failing since %s)", r.err, r.since.UTC().Format(time.RFC3339))
}
