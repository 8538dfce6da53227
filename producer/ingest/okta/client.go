package okta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/producer/ingest/source"
)

// StreamSourceName names the System Log poller: the checkpoint's source
// and the metrics' label.
const StreamSourceName = "okta-logs"

// logsPath is the System Log endpoint.
const logsPath = "/api/v1/logs"

// Config is how the System Log is read.
type Config struct {
	// OrgURL is the Okta org, https://{yourOktaDomain}.
	OrgURL string `flag:"org-url" env:"ORG_URL" yaml:"org_url" usage:"Okta org URL, https://{yourOktaDomain}"`
	// APIToken is an SSWS API token (Authorization: SSWS ...), from
	// REVOKED_OKTA_API_TOKEN or the file named by
	// REVOKED_OKTA_API_TOKEN_FILE.
	APIToken config.Secret `flag:"-" env:"API_TOKEN" yaml:"-" usage:"Okta API token (SSWS)"`
	// AccessToken is an OAuth 2.0 access token with the okta.logs.read
	// scope (Authorization: Bearer ...), from REVOKED_OKTA_ACCESS_TOKEN
	// or REVOKED_OKTA_ACCESS_TOKEN_FILE; the file is read again when Okta
	// refuses the token, so a sidecar can renew it in place.
	AccessToken config.Secret `flag:"-" env:"ACCESS_TOKEN" yaml:"-" usage:"OAuth 2.0 access token with okta.logs.read"`
	// Since is where a first run, without a checkpoint, begins: "now",
	// an RFC 3339 time, or a duration before now ("24h"). Okta keeps 90
	// days.
	Since string `flag:"since" env:"SINCE" yaml:"since" usage:"where a first run without checkpoint begins: now, an RFC 3339 time or a duration back (24h)"`
	// From, when set, is read from instead of the checkpoint (a backfill
	// or replay), in Since's forms.
	From string `flag:"from" env:"FROM" yaml:"from" usage:"read from this time instead of the checkpoint (backfill or replay): an RFC 3339 time or a duration back"`
	// Filter is an optional SCIM filter expression (filter=).
	Filter string `flag:"filter" env:"FILTER" yaml:"filter" usage:"SCIM filter expression of the events to read (empty: all)"`
	// Limit is the events asked for per page (Okta allows up to 1000).
	Limit int `flag:"limit" env:"LIMIT" yaml:"limit" usage:"events per page (at most 1000)"`
	// UserKey picks AuditEvent.user_id: "id" (Okta user id) or "login".
	UserKey string `flag:"user-key" env:"USER_KEY" yaml:"user_key" usage:"what user_id holds: id (Okta user id) or login"`
	// RequestTimeout bounds one request (Okta times queries out at 30 s).
	RequestTimeout time.Duration `flag:"request-timeout" env:"REQUEST_TIMEOUT" yaml:"request_timeout" usage:"how long one request to Okta may take"`
}

// DefaultConfig reads from now, 1000 events a page, keyed by Okta user id.
func DefaultConfig() Config {
	return Config{Since: "now", Limit: 1000, UserKey: UserKeyID, RequestTimeout: 40 * time.Second}
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var p config.Problems
	u, err := url.Parse(c.OrgURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		p.Addf("org-url", "want https://{yourOktaDomain}, got %q", c.OrgURL)
	}
	p.Check(c.APIToken.IsSet() != c.AccessToken.IsSet(), "api-token",
		"set exactly one of REVOKED_OKTA_API_TOKEN_FILE (SSWS) and REVOKED_OKTA_ACCESS_TOKEN_FILE (OAuth bearer)")
	if _, err := sinceTime(c.Since, time.Now()); err != nil {
		p.Addf("since", "%v", err)
	}
	if c.From != "" {
		if _, err := sinceTime(c.From, time.Now()); err != nil {
			p.Addf("from", "%v", err)
		}
	}
	p.Check(c.Limit > 0 && c.Limit <= 1000, "limit", "must be 1-1000")
	p.Check(c.UserKey == UserKeyID || c.UserKey == UserKeyLogin, "user-key", "want id or login, got %q", c.UserKey)
	p.Check(c.RequestTimeout > 0, "request-timeout", "must be positive")
	return p.Err()
}

// sinceTime reads "now", an RFC 3339 time or a duration back from now.
func sinceTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "now" {
		return now, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("want now, an RFC 3339 time or a duration back (24h), got %q", s)
}

// Client reads the System Log. It is safe for concurrent use.
type Client struct {
	cfg   Config
	org   *url.URL
	http  *http.Client
	clk   clockwork.Clock
	log   zerolog.Logger
	renew func() (config.Secret, error)

	mu sync.Mutex
	// blockedUntil is when the current rate limit window resets, after
	// an answer said none of it is left.
	blockedUntil time.Time
	bearer       config.Secret
}

var _ source.Fetcher = (*Client)(nil)

// ClientOption adjusts NewClient.
type ClientOption func(*Client)

// WithTokenRenewal makes the client call renew for a new access token
// when Okta refuses the current one (401), once per refusal.
func WithTokenRenewal(renew func() (config.Secret, error)) ClientOption {
	return func(c *Client) { c.renew = renew }
}

// NewClient returns a client for cfg; hc nil uses a client with
// cfg.RequestTimeout, clk nil the real clock.
func NewClient(cfg Config, hc *http.Client, clk clockwork.Clock, log zerolog.Logger, opts ...ClientOption) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	org, _ := url.Parse(strings.TrimRight(cfg.OrgURL, "/"))
	if hc == nil {
		hc = &http.Client{Timeout: cfg.RequestTimeout}
	}
	// A next link is followed only to the org itself: the token must
	// never go to another host, whatever a response or a checkpoint says.
	hc2 := *hc
	hc2.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if clk == nil {
		clk = clockwork.NewRealClock()
	}
	c := &Client{cfg: cfg, org: org, http: &hc2, clk: clk, log: log, bearer: cfg.AccessToken}
	for _, opt := range opts {
		opt(c)
	}
	return c, nil
}

// Fetch returns the page at cursor: a next link from an earlier page, or
// a start time ("now", RFC 3339, a duration back; empty: Config.Since)
// for a polling request from then. Before a request it returns a
// *source.RateLimitedError while the last answer said the rate limit
// window is spent (X-Rate-Limit-Remaining: 0) until its X-Rate-Limit-Reset,
// and after a 429 likewise; 400, 403 and 401 (after one renewal of an
// OAuth token, when configured) are permanent.
func (c *Client) Fetch(ctx context.Context, cursor string) (source.Page, error) {
	if wait := c.blocked(); wait > 0 {
		return source.Page{}, &source.RateLimitedError{Wait: wait, Reason: "X-Rate-Limit-Remaining was 0"}
	}
	u, err := c.pageURL(cursor)
	if err != nil {
		return source.Page{}, source.Permanent(err)
	}
	for attempt := 0; ; attempt++ {
		resp, body, err := c.get(ctx, u)
		if err != nil {
			return source.Page{}, err
		}
		c.noteRateLimit(resp)
		if resp.StatusCode == http.StatusUnauthorized && attempt == 0 && c.renew != nil {
			tok, rerr := c.renew()
			if rerr != nil {
				return source.Page{}, source.Permanent(fmt.Errorf("renewing the Okta access token: %w", rerr))
			}
			c.mu.Lock()
			c.bearer = tok
			c.mu.Unlock()
			continue
		}
		if resp.StatusCode != http.StatusOK {
			return source.Page{}, c.classify(resp, body)
		}
		return c.page(resp, body, u)
	}
}

func (c *Client) get(ctx context.Context, u string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, source.Permanent(fmt.Errorf("logs request: %w", err))
	}
	req.Header.Set("Accept", "application/json")
	c.mu.Lock()
	if c.cfg.APIToken.IsSet() {
		req.Header.Set("Authorization", "SSWS "+c.cfg.APIToken.Reveal())
	} else {
		req.Header.Set("Authorization", "Bearer "+c.bearer.Reveal())
	}
	c.mu.Unlock()
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("fetching the Okta System Log: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, nil, fmt.Errorf("reading the Okta System Log: %w", err)
	}
	return resp, body, nil
}

// pageURL is the URL to fetch for cursor.
func (c *Client) pageURL(cursor string) (string, error) {
	if strings.HasPrefix(cursor, "https://") || strings.HasPrefix(cursor, "http://") {
		if err := c.checkLink(cursor); err != nil {
			return "", err
		}
		return cursor, nil
	}
	if cursor == "" {
		cursor = c.cfg.Since
	}
	since, err := sinceTime(cursor, c.clk.Now())
	if err != nil {
		return "", err
	}
	q := url.Values{
		"since":     {since.UTC().Format("2006-01-02T15:04:05.000Z")},
		"sortOrder": {"ASCENDING"},
		"limit":     {strconv.Itoa(c.cfg.Limit)},
	}
	if c.cfg.Filter != "" {
		q.Set("filter", c.cfg.Filter)
	}
	return c.org.String() + logsPath + "?" + q.Encode(), nil
}

// checkLink refuses a link that is not the org's System Log.
func (c *Client) checkLink(link string) error {
	u, err := url.Parse(link)
	if err != nil {
		return fmt.Errorf("next link %q: %w", link, err)
	}
	if u.Scheme != c.org.Scheme || !strings.EqualFold(u.Host, c.org.Host) || u.Path != logsPath {
		return fmt.Errorf("next link %s is not this org's System Log (%s%s); not following it", link, c.org, logsPath)
	}
	return nil
}

func (c *Client) page(resp *http.Response, body []byte, fetched string) (source.Page, error) {
	var raws []json.RawMessage
	if err := json.Unmarshal(body, &raws); err != nil {
		return source.Page{}, fmt.Errorf("decoding the Okta System Log: %w", err)
	}
	next := NextLink(resp.Header)
	if next == "" {
		// A polling request always has a next link; without one, ask
		// the same page again next time rather than starting over.
		next = fetched
	} else if err := c.checkLink(next); err != nil {
		return source.Page{}, source.Permanent(err)
	}
	p := source.Page{Next: next, More: len(raws) > 0, Records: make([]source.Record, 0, len(raws))}
	for _, raw := range raws {
		p.Records = append(p.Records, record(raw))
	}
	return p, nil
}

// blocked returns how long until the spent rate limit window resets.
func (c *Client) blocked() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.blockedUntil.Sub(c.clk.Now())
}

// noteRateLimit reads Okta's rate limit headers: when none of the window
// is left (or the answer is a 429), no request is made until its reset.
// The reset is an instant by Okta's clock; the wait is taken from the
// answer's Date, so a skewed local clock neither shortens nor stretches
// it.
func (c *Client) noteRateLimit(resp *http.Response) {
	remaining, rerr := strconv.ParseInt(resp.Header.Get("X-Rate-Limit-Remaining"), 10, 64)
	if resp.StatusCode != http.StatusTooManyRequests && (rerr != nil || remaining > 0) {
		return
	}
	wait, ok := resetWait(resp.Header)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.blockedUntil = c.clk.Now().Add(wait)
	c.log.Info().Str("limit", resp.Header.Get("X-Rate-Limit-Limit")).Dur("wait", wait).Int("status", resp.StatusCode).Msg("Okta rate limit window spent; waiting for its reset")
}

// resetWait is how long from the answer until X-Rate-Limit-Reset, at
// least a second.
func resetWait(h http.Header) (time.Duration, bool) {
	reset, err := strconv.ParseInt(h.Get("X-Rate-Limit-Reset"), 10, 64)
	if err != nil {
		return 0, false
	}
	date, err := http.ParseTime(h.Get("Date"))
	if err != nil {
		return 0, false
	}
	return max(time.Unix(reset, 0).Sub(date), time.Second), true
}

// oktaError is Okta's error body.
type oktaError struct {
	ErrorCode    string `json:"errorCode"`
	ErrorSummary string `json:"errorSummary"`
	ErrorID      string `json:"errorId"`
}

// classify turns a failed answer into an error: a 429 into a
// *source.RateLimitedError until the window's reset; 400, 401, 403 and
// 404 into permanent errors (a request or credentials Okta refuses);
// others into errors worth retrying.
func (c *Client) classify(resp *http.Response, body []byte) error {
	var oe oktaError
	_ = json.Unmarshal(body, &oe)
	err := fmt.Errorf("okta answered %d %s %s (errorId %s)", resp.StatusCode, oe.ErrorCode, oe.ErrorSummary, oe.ErrorID)
	switch resp.StatusCode {
	case http.StatusTooManyRequests:
		if wait := c.blocked(); wait > 0 {
			return &source.RateLimitedError{Wait: wait, Reason: err.Error()}
		}
		return err
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
		return source.Permanent(err)
	}
	return err
}

// NextLink returns the URL of the Link header's rel="next", or "".
func NextLink(h http.Header) string {
	for _, v := range h.Values("Link") {
		for _, part := range splitLinks(v) {
			start, end := strings.Index(part, "<"), strings.Index(part, ">")
			if start < 0 || end < start {
				continue
			}
			for _, param := range strings.Split(part[end+1:], ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(param), "=")
				if ok && strings.EqualFold(strings.TrimSpace(k), "rel") {
					for _, rel := range strings.Fields(strings.Trim(strings.TrimSpace(val), `"`)) {
						if strings.EqualFold(rel, "next") {
							return strings.TrimSpace(part[start+1 : end])
						}
					}
				}
			}
		}
	}
	return ""
}

// splitLinks splits a Link header value into its links at the commas
// outside <...>.
func splitLinks(v string) []string {
	var out []string
	depth, from := 0, 0
	for i, r := range v {
		switch r {
		case '<':
			depth++
		case '>':
			depth = max(depth-1, 0)
		case ',':
			if depth == 0 {
				out = append(out, v[from:i])
				from = i + 1
			}
		}
	}
	return append(out, v[from:])
}

// NewPoller assembles the System Log poller: a Client for cfg, the
// Mapping, and sink (whose format should be Format). clk (nil: the real
// clock) times the rate limit waits and the poller's; hc nil uses a client
// with cfg.RequestTimeout. Run it with cfg.From.
func NewPoller(cfg Config, poll source.PollConfig, sink *source.Sink, log zerolog.Logger, clk clockwork.Clock, hc *http.Client, copts []ClientOption, opts ...source.PollerOption) (*source.Poller, error) {
	if clk == nil {
		clk = clockwork.NewRealClock()
	}
	c, err := NewClient(cfg, hc, clk, log, copts...)
	if err != nil {
		return nil, err
	}
	m := Mapping{UserKey: cfg.UserKey}
	opts = append([]source.PollerOption{source.WithClock(clk)}, opts...)
	return source.NewPoller(StreamSourceName, poll, c, m.Event, sink, log, opts...)
}

// ErrNoToken is returned by a renewal that found no token.
var ErrNoToken = errors.New("okta: no access token")
