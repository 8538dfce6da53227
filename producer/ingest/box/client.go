package box

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

	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/producer/ingest/source"
)

// Config is how the event stream is read: Box's API, the app's
// client-credentials grant (a Box Platform app with "Client Credentials
// Grant" auth, authorized in the enterprise, with the "Manage enterprise
// properties" scope so its service account may read the admin logs), and
// where to start.
type Config struct {
	// APIURL is Box's API (https://api.box.com); tests point it elsewhere.
	APIURL string `flag:"api-url" env:"API_URL" yaml:"api_url" usage:"Box API base URL"`
	// TokenURL is the token endpoint of the client-credentials grant.
	TokenURL string `flag:"token-url" env:"TOKEN_URL" yaml:"token_url" usage:"Box OAuth 2.0 token endpoint"`
	// ClientID is the Box app's client id.
	ClientID string `flag:"client-id" env:"CLIENT_ID" yaml:"client_id" usage:"client id of the Box app (client-credentials grant)"`
	// ClientSecret is the app's client secret, from
	// REVOKED_BOX_CLIENT_SECRET or the file named by
	// REVOKED_BOX_CLIENT_SECRET_FILE, never from a flag.
	ClientSecret config.Secret `flag:"-" env:"CLIENT_SECRET" yaml:"-" usage:"client secret of the Box app"`
	// EnterpriseID is the enterprise whose service account the app acts
	// as (box_subject_type=enterprise, box_subject_id).
	EnterpriseID string `flag:"enterprise-id" env:"ENTERPRISE_ID" yaml:"enterprise_id" usage:"Box enterprise id the app acts for"`
	// StreamType is admin_logs_streaming (near real time, two weeks of
	// history, at least once and unordered) or admin_logs.
	StreamType string `flag:"stream-type" env:"STREAM_TYPE" yaml:"stream_type" usage:"enterprise stream type: admin_logs_streaming or admin_logs"`
	// EventTypes, when set, asks Box for these event types only.
	EventTypes []string `flag:"event-types" env:"EVENT_TYPES" yaml:"event_types" usage:"Box event types to read (comma-separated; empty: all)"`
	// Limit is the events asked for per page (Box allows up to 500).
	Limit int `flag:"limit" env:"LIMIT" yaml:"limit" usage:"events per page (at most 500)"`
	// Start is where a first run, without a checkpoint, begins: "now"
	// (only new events), "0" (the stream's whole retention: two weeks of
	// admin_logs_streaming) or a stream position.
	Start string `flag:"start" env:"START" yaml:"start" usage:"where a first run without checkpoint begins: now, 0 (all the stream keeps) or a stream position"`
	// From, when set, is read from instead of the checkpoint: a backfill
	// or replay from a stream position ("0" for all Box keeps).
	From string `flag:"from-position" env:"FROM_POSITION" yaml:"from_position" usage:"read from this stream position instead of the checkpoint (backfill or replay)"`
	// UserKey picks AuditEvent.user_id: "id" (Box user id) or "login".
	UserKey string `flag:"user-key" env:"USER_KEY" yaml:"user_key" usage:"what user_id holds: id (Box user id) or login (email)"`
	// RequestTimeout bounds one request to Box.
	RequestTimeout time.Duration `flag:"request-timeout" env:"REQUEST_TIMEOUT" yaml:"request_timeout" usage:"how long one request to Box may take"`
}

// DefaultConfig reads admin_logs_streaming from api.box.com, 500 events a
// page, starting now, keyed by Box user id.
func DefaultConfig() Config {
	return Config{
		APIURL:         "https://api.box.com",
		TokenURL:       "https://api.box.com/oauth2/token",
		StreamType:     "admin_logs_streaming",
		Limit:          500,
		Start:          "now",
		UserKey:        UserKeyID,
		RequestTimeout: 30 * time.Second,
	}
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var p config.Problems
	checkURL(&p, "api-url", c.APIURL)
	checkURL(&p, "token-url", c.TokenURL)
	p.Check(c.ClientID != "", "client-id", "required")
	p.Check(c.ClientSecret.IsSet(), "client-secret", "required: set REVOKED_BOX_CLIENT_SECRET_FILE (or REVOKED_BOX_CLIENT_SECRET)")
	p.Check(c.EnterpriseID != "", "enterprise-id", "required")
	p.Check(c.StreamType == "admin_logs_streaming" || c.StreamType == "admin_logs", "stream-type", "want admin_logs_streaming or admin_logs, got %q", c.StreamType)
	p.Check(c.Limit > 0 && c.Limit <= 500, "limit", "must be 1-500")
	p.Check(validPosition(c.Start), "start", "want now, 0 or a stream position, got %q", c.Start)
	p.Check(c.From == "" || validPosition(c.From), "from-position", "want now, 0 or a stream position, got %q", c.From)
	p.Check(c.UserKey == UserKeyID || c.UserKey == UserKeyLogin, "user-key", "want id or login, got %q", c.UserKey)
	p.Check(c.RequestTimeout > 0, "request-timeout", "must be positive")
	return p.Err()
}

func validPosition(s string) bool {
	if s == "now" {
		return true
	}
	_, err := strconv.ParseUint(s, 10, 64)
	return err == nil
}

func checkURL(p *config.Problems, field, s string) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		p.Addf(field, "want an http(s) URL, got %q", s)
	}
}

// Client reads the enterprise event stream. It is safe for concurrent
// use.
type Client struct {
	cfg  Config
	http *http.Client
	clk  clockwork.Clock

	mu      sync.Mutex
	token   string
	expires time.Time
}

var _ source.Fetcher = (*Client)(nil)

// NewClient returns a client for cfg. hc nil uses a client with
// cfg.RequestTimeout; clk decides when the access token expires.
func NewClient(cfg Config, hc *http.Client, clk clockwork.Clock) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if hc == nil {
		hc = &http.Client{Timeout: cfg.RequestTimeout}
	}
	if clk == nil {
		clk = clockwork.NewRealClock()
	}
	return &Client{cfg: cfg, http: hc, clk: clk}, nil
}

// tokenSkew renews the access token this long before Box says it expires.
const tokenSkew = time.Minute

// accessToken returns a valid access token, asking Box for one when the
// cached one is missing or about to expire.
func (c *Client) accessToken(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && c.clk.Now().Before(c.expires.Add(-tokenSkew)) {
		return c.token, nil
	}
	form := url.Values{
		"grant_type":       {"client_credentials"},
		"client_id":        {c.cfg.ClientID},
		"client_secret":    {c.cfg.ClientSecret.Reveal()},
		"box_subject_type": {"enterprise"},
		"box_subject_id":   {c.cfg.EnterpriseID},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", source.Permanent(fmt.Errorf("token request: %w", err))
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("requesting a Box access token: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("reading Box's token answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", classify(resp, body, c.clk.Now(), "token endpoint")
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
		TokenType   string `json:"token_type"`
	}
	if err := json.Unmarshal(body, &tok); err != nil || tok.AccessToken == "" {
		return "", errors.New("box token endpoint answered 200 without an access token")
	}
	if !strings.EqualFold(tok.TokenType, "bearer") {
		return "", source.Permanent(fmt.Errorf("box token endpoint gave a %q token, want bearer", tok.TokenType))
	}
	c.token = tok.AccessToken
	c.expires = c.clk.Now().Add(time.Duration(max(tok.ExpiresIn, 0)) * time.Second)
	return c.token, nil
}

// dropToken forgets token, so the next request asks for a new one.
func (c *Client) dropToken(token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token == token {
		c.token = ""
	}
}

// Fetch returns the page of the stream at cursor (Config.Start when
// empty). A 401 renews the access token once; a 429 is a
// *source.RateLimitedError for Retry-After; 400, 403 and a second 401 are
// permanent.
func (c *Client) Fetch(ctx context.Context, cursor string) (source.Page, error) {
	if cursor == "" {
		cursor = c.cfg.Start
	}
	q := url.Values{
		"stream_type":     {c.cfg.StreamType},
		"stream_position": {cursor},
		"limit":           {strconv.Itoa(c.cfg.Limit)},
	}
	if len(c.cfg.EventTypes) > 0 {
		q.Set("event_type", strings.Join(c.cfg.EventTypes, ","))
	}
	u := strings.TrimRight(c.cfg.APIURL, "/") + "/2.0/events?" + q.Encode()
	for attempt := 0; ; attempt++ {
		token, err := c.accessToken(ctx)
		if err != nil {
			return source.Page{}, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return source.Page{}, source.Permanent(fmt.Errorf("events request: %w", err))
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Accept", "application/json")
		resp, err := c.http.Do(req)
		if err != nil {
			return source.Page{}, fmt.Errorf("fetching Box events: %w", err)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		resp.Body.Close()
		if err != nil {
			return source.Page{}, fmt.Errorf("reading Box events: %w", err)
		}
		if resp.StatusCode == http.StatusUnauthorized && attempt == 0 {
			// The token was revoked or expired early: renew it once.
			c.dropToken(token)
			continue
		}
		if resp.StatusCode != http.StatusOK {
			return source.Page{}, classify(resp, body, c.clk.Now(), "events")
		}
		return page(body)
	}
}

// page reads an events response.
func page(body []byte) (source.Page, error) {
	var ev Events
	if err := json.Unmarshal(body, &ev); err != nil {
		return source.Page{}, fmt.Errorf("decoding box events: %w", err)
	}
	next, err := ev.NextPosition()
	if err != nil {
		return source.Page{}, err
	}
	p := source.Page{Next: next, More: len(ev.Entries) > 0, Records: make([]source.Record, 0, len(ev.Entries))}
	for _, raw := range ev.Entries {
		p.Records = append(p.Records, boxRecord(raw))
	}
	return p, nil
}

// boxError is Box's error body.
type boxError struct {
	Code             string `json:"code"`
	Message          string `json:"message"`
	RequestID        string `json:"request_id"`
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

// classify turns a failed answer into an error: a 429 into a
// *source.RateLimitedError for its Retry-After; 400, 401, 403 and 404
// into permanent errors (the request or the credentials are wrong and
// will stay wrong); others (5xx, 408) into errors worth retrying.
func classify(resp *http.Response, body []byte, now time.Time, what string) error {
	var be boxError
	_ = json.Unmarshal(body, &be)
	detail := strings.TrimSpace(strings.Join(nonEmpty(be.Code, be.Error, be.Message, be.ErrorDescription), ": "))
	if be.RequestID != "" {
		detail += " (request_id " + be.RequestID + ")"
	}
	err := fmt.Errorf("box %s answered %d %s", what, resp.StatusCode, detail)
	switch resp.StatusCode {
	case http.StatusTooManyRequests:
		if d, ok := RetryAfter(resp.Header.Get("Retry-After"), now); ok {
			return &source.RateLimitedError{Wait: d, Reason: err.Error()}
		}
		return err
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
		return source.Permanent(err)
	}
	return err
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// RetryAfter reads a Retry-After header: seconds, or an HTTP date.
func RetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}
