package idp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"
)

// Errors of the client that are not answers of the server.
var (
	// ErrNotConfigured means the admin call or endpoint was not configured.
	ErrNotConfigured = errors.New("idp: not configured")
	// ErrNoEndpoint means no URL is known for the endpoint: neither
	// configured nor published in the issuer's metadata.
	ErrNoEndpoint = errors.New("idp: endpoint unknown")
	// ErrInvalidArgument means a call was made with an empty token or id.
	ErrInvalidArgument = errors.New("idp: invalid argument")
	// ErrTimeout means one request took longer than Config.Timeout.
	ErrTimeout = errors.New("idp: request timed out")
	// ErrMalformedResponse means a success answer could not be understood.
	ErrMalformedResponse = errors.New("idp: malformed response")
	// ErrIssuerMismatch means the discovered metadata names another issuer
	// than the configured one (RFC 8414 §3.3 forbids using it).
	ErrIssuerMismatch = errors.New("idp: issuer mismatch")
)

// Status classes of HTTPError; errors.Is(err, ErrRateLimited) matches an
// HTTPError with status 429, and so on.
var (
	ErrBadRequest       = errors.New("idp: bad request (400)")
	ErrUnauthorized     = errors.New("idp: unauthorized (401)")
	ErrForbidden        = errors.New("idp: forbidden (403)")
	ErrNotFound         = errors.New("idp: not found (404)")
	ErrRateLimited      = errors.New("idp: rate limited (429)")
	ErrUnavailable      = errors.New("idp: unavailable (503)")
	ErrServerError      = errors.New("idp: server error (5xx)")
	ErrUnexpectedStatus = errors.New("idp: unexpected status")
)

// OAuth error codes; errors.Is(err, ErrUnsupportedTokenType) matches an
// HTTPError whose OAuthError is "unsupported_token_type", and so on.
var (
	ErrInvalidRequest       = errors.New("idp: invalid_request")
	ErrInvalidClient        = errors.New("idp: invalid_client")
	ErrUnauthorizedClient   = errors.New("idp: unauthorized_client")
	ErrUnsupportedTokenType = errors.New("idp: unsupported_token_type")
	ErrInvalidToken         = errors.New("idp: invalid_token")
)

var oauthSentinels = map[string]error{
	"invalid_request":        ErrInvalidRequest,
	"invalid_client":         ErrInvalidClient,
	"unauthorized_client":    ErrUnauthorizedClient,
	"unsupported_token_type": ErrUnsupportedTokenType,
	"invalid_token":          ErrInvalidToken,
}

// HTTPError is an answer of the token API that is not a success. Its
// strings never contain the raw token of the request: the description is
// redacted and shortened.
type HTTPError struct {
	// Op names the call: "revoke", "introspect", "discover",
	// "revoke_subject", "revoke_subject_sessions", "revoke_token_id",
	// "revoke_session", "revoke_client", "list_subject_tokens",
	// "admin_token" (the client credentials grant of admin auth) or
	// "step_up".
	Op     string
	Status int
	// OAuthError and Description are the "error" and "error_description"
	// of an RFC 6749 §5.2 error body, when there is one.
	OAuthError  string
	Description string
	// RetryAfter is the server's Retry-After, zero if absent or unparsable.
	RetryAfter time.Duration
}

func (e *HTTPError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "idp: %s: HTTP %d", e.Op, e.Status)
	if e.OAuthError != "" {
		b.WriteString(": " + e.OAuthError)
	}
	if e.Description != "" {
		b.WriteString(": " + e.Description)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	return b.String()
}

// Unwrap returns the status class sentinel (ErrRateLimited, ErrNotFound ...).
func (e *HTTPError) Unwrap() error {
	switch s := e.Status; {
	case s == http.StatusBadRequest:
		return ErrBadRequest
	case s == http.StatusUnauthorized:
		return ErrUnauthorized
	case s == http.StatusForbidden:
		return ErrForbidden
	case s == http.StatusNotFound:
		return ErrNotFound
	case s == http.StatusTooManyRequests:
		return ErrRateLimited
	case s == http.StatusServiceUnavailable:
		return ErrUnavailable
	case s >= 500 && s <= 599:
		return ErrServerError
	}
	return ErrUnexpectedStatus
}

// Is matches the sentinel of the OAuth error code (ErrUnsupportedTokenType,
// ErrInvalidClient ...).
func (e *HTTPError) Is(target error) bool {
	s, ok := oauthSentinels[e.OAuthError]
	return ok && s == target
}

// Retryable says whether the call that returned err may succeed if made
// again, and after how long the server asked to wait (zero: use your own
// backoff). Every call of this package is idempotent (revoking twice is
// harmless), so a retry never does damage; the question is only whether it
// can help.
func Retryable(err error) (retry bool, after time.Duration) {
	if err == nil {
		return false, 0
	}
	var he *HTTPError
	if errors.As(err, &he) {
		return he.retryable()
	}
	var ce *CircuitOpenError
	if errors.As(err, &ce) {
		// The endpoint failed repeatedly and is being left alone for a
		// cool-down; after it, a probe may find it healed.
		return true, ce.Remaining
	}
	switch {
	case errors.Is(err, ErrTimeout):
		// One attempt ran out of time: the server may be slow or the
		// request lost; the next attempt may well get through.
		return true, 0
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		// The caller's context ended: the caller gave up on this call.
		// Retrying under the same context fails the same way; whether to
		// try again with a new one is the caller's decision.
		return false, 0
	case errors.Is(err, ErrNotConfigured), errors.Is(err, ErrNoEndpoint),
		errors.Is(err, ErrInvalidArgument), errors.Is(err, ErrIssuerMismatch):
		// Configuration or caller mistakes: nothing changes by waiting.
		return false, 0
	case errors.Is(err, ErrMalformedResponse):
		// A success status with a body we cannot read means a wrong URL or
		// an incompatible server: repeating gets the same answer.
		return false, 0
	case isCertificateError(err):
		// TLS verification failed: a trust or naming problem to fix in
		// configuration, not a transient fault.
		return false, 0
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		// The server is restarting or a connection broke mid-request.
		return true, 0
	}
	var netErr net.Error
	var urlErr *url.Error
	if errors.As(err, &netErr) || errors.As(err, &urlErr) {
		// Other transport failures (DNS, unreachable network, timeouts of
		// the transport): usually transient.
		return true, 0
	}
	// Unknown errors are not retried: retrying what we cannot explain
	// risks a hot loop.
	return false, 0
}

func (e *HTTPError) retryable() (bool, time.Duration) {
	switch {
	case e.OAuthError == "unsupported_token_type":
		// RFC 7009 §2.2.1: the server cannot revoke this type of token at
		// all; asking again changes nothing.
		return false, 0
	case e.OAuthError == "temporarily_unavailable" || e.OAuthError == "slow_down":
		// OAuth's own words for "come back later", whatever the status.
		return true, e.RetryAfter
	case e.Status == http.StatusTooManyRequests:
		// RFC 6585 §4: rate limited; the server says when to come back.
		return true, e.RetryAfter
	case e.Status == http.StatusServiceUnavailable:
		// RFC 7009 §2.2.1 names 503 for a temporarily unavailable
		// revocation service; RFC 9110 §15.6.4 lets Retry-After say when.
		return true, e.RetryAfter
	case e.Status == http.StatusRequestTimeout:
		// The server gave up waiting for our request; it was not processed.
		return true, 0
	case e.Status >= 500 && e.Status <= 599:
		// 500, 502, 504 and friends: a fault on the server or a gateway,
		// typically transient; back off and try again.
		return true, 0
	case e.Status == http.StatusBadRequest, e.Status == http.StatusUnauthorized,
		e.Status == http.StatusForbidden, e.Status == http.StatusNotFound:
		// The request itself, our credentials, our permissions or the URL
		// are wrong: the same request gets the same answer. Dead-letter it
		// with the reason.
		return false, 0
	default:
		// Other 4xx, and redirects or informational statuses where an
		// answer was expected, point at configuration, not at time.
		return false, 0
	}
}

func isCertificateError(err error) bool {
	var (
		cv *tls.CertificateVerificationError
		ua x509.UnknownAuthorityError
		he x509.HostnameError
		ci x509.CertificateInvalidError
	)
	return errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci)
}

// ParseRetryAfter parses a Retry-After value (RFC 9110 §10.2.3): a number
// of seconds or an HTTP-date, relative to now. A date in the past gives 0.
// ok is false for an empty or malformed value.
func ParseRetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseUint(v, 10, 64); err == nil {
		if secs > math.MaxInt64/uint64(time.Second) {
			return 0, false
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	if d = t.Sub(now); d < 0 {
		d = 0
	}
	return d, true
}

// newHTTPError builds the error for a non-success answer. redact lists
// values (raw tokens) that must not appear in it.
func newHTTPError(op string, resp *http.Response, body []byte, now time.Time, redact ...string) *HTTPError {
	e := &HTTPError{Op: op, Status: resp.StatusCode}
	if d, ok := ParseRetryAfter(resp.Header.Get("Retry-After"), now); ok {
		e.RetryAfter = d
	} else if resp.StatusCode == http.StatusTooManyRequests {
		// Okta answers 429 without Retry-After but with the epoch second
		// at which its rate limit window resets.
		if reset, err := strconv.ParseInt(strings.TrimSpace(resp.Header.Get("X-Rate-Limit-Reset")), 10, 64); err == nil && reset > 0 {
			e.RetryAfter = max(0, time.Unix(reset, 0).Sub(now))
		}
	}
	var oe struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if json.Unmarshal(body, &oe) == nil {
		e.OAuthError = sanitize(oe.Error, 64, redact)
		e.Description = sanitize(oe.Description, 200, redact)
	}
	if e.OAuthError == "" && e.Description == "" {
		e.Description = sanitize(string(body), 200, redact)
	}
	return e
}

// secretFieldRE finds JSON members that carry credentials.
var secretFieldRE = regexp.MustCompile(`"(access_token|refresh_token|id_token|token|subject_token|actor_token|client_secret|password)"\s*:\s*"(?:[^"\\]|\\.)*"`)

// sanitize makes s safe for logs and the audit trail: redact values and
// credential members are replaced, control characters become spaces, and
// the result is cut to at most limit bytes of valid UTF-8.
func sanitize(s string, limit int, redact []string) string {
	for _, r := range redact {
		if r != "" {
			s = strings.ReplaceAll(s, r, "[redacted]")
		}
	}
	s = secretFieldRE.ReplaceAllString(s, `"$1":"[redacted]"`)
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > limit {
		cut := limit
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}
