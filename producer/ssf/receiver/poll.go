package receiver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"time"

	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/internal/retry"
	"github.com/revoked-dev/revoked/internal/ssf"
	"github.com/revoked-dev/revoked/schemas"
)

// PollConfig configures a Poller.
type PollConfig struct {
	// URL is the stream's poll endpoint (its delivery.endpoint_url).
	URL string `flag:"url" env:"URL" yaml:"url" usage:"the stream's poll endpoint (its delivery endpoint_url at the transmitter)"`
	// MaxEvents bounds the SETs one poll asks for.
	MaxEvents int `flag:"max-events" env:"MAX_EVENTS" yaml:"max_events" usage:"most SETs one poll asks for"`
	// LongPoll asks the transmitter to hold a poll until SETs are there
	// (returnImmediately false); otherwise an empty answer waits
	// Interval before the next poll.
	LongPoll bool          `flag:"long-poll" env:"LONG_POLL" yaml:"long_poll" usage:"ask the transmitter to hold each poll until SETs are there"`
	Interval time.Duration `flag:"interval" env:"INTERVAL" yaml:"interval" usage:"wait after an empty poll (without long-poll)"`
	// Timeout bounds one poll request (above the transmitter's hold
	// with LongPoll).
	Timeout time.Duration `flag:"timeout" env:"TIMEOUT" yaml:"timeout" usage:"longest one poll request may take"`
	// RetryMin and RetryMax bound the backoff after a failed poll.
	RetryMin time.Duration `flag:"retry-min" env:"RETRY_MIN" yaml:"retry_min" usage:"first wait after a failed poll"`
	RetryMax time.Duration `flag:"retry-max" env:"RETRY_MAX" yaml:"retry_max" usage:"longest wait after failed polls"`
}

// DefaultPollConfig polls for up to 100 SETs every 5 seconds.
func DefaultPollConfig() PollConfig {
	return PollConfig{MaxEvents: 100, Interval: 5 * time.Second, Timeout: time.Minute, RetryMin: time.Second, RetryMax: 2 * time.Minute}
}

// Validate reports every problem at once.
func (c PollConfig) Validate(allowHTTP bool) error {
	var p config.Problems
	p.Nest("url", CheckURL(c.URL, allowHTTP))
	p.Check(c.MaxEvents > 0, "max-events", "must be positive")
	p.Check(c.Interval > 0, "interval", "must be positive")
	p.Check(c.Timeout > 0, "timeout", "must be positive")
	p.Check(c.RetryMin > 0 && c.RetryMax >= c.RetryMin, "retry-min", "need 0 < retry-min <= retry-max")
	return p.Err()
}

// pollRequest and pollResponse are RFC 8936's bodies.
type pollRequest struct {
	MaxEvents         int                      `json:"maxEvents"`
	ReturnImmediately bool                     `json:"returnImmediately"`
	Ack               []string                 `json:"ack,omitempty"`
	SetErrs           map[string]ssf.ErrorBody `json:"setErrs,omitempty"`
}

type pollResponse struct {
	Sets          map[string]string `json:"sets"`
	MoreAvailable bool              `json:"moreAvailable"`
}

// Poller polls a transmitter's stream (RFC 8936) and hands each SET to
// the Receiver. A SET is acknowledged in the next request once Process
// published it (or found it a redelivery); one Process refuses is
// reported in setErrs; one it could not process now is left
// unacknowledged, for the transmitter to serve again. Acknowledgements
// that a failed request may not have delivered are sent again (an
// acknowledgement is idempotent).
type Poller struct {
	r     *Receiver
	cfg   PollConfig
	token config.Secret
	http  *http.Client
}

// NewPoller returns a Poller of the stream at cfg.URL, sending token as
// its bearer credential.
func (r *Receiver) NewPoller(cfg PollConfig, token config.Secret, client *http.Client) (*Poller, error) {
	if err := cfg.Validate(r.cfg.AllowHTTP); err != nil {
		return nil, err
	}
	if client == nil {
		client = &http.Client{}
	}
	return &Poller{r: r, cfg: cfg, token: token, http: client}, nil
}

// Run polls until ctx ends. It returns nil then; it never gives up
// otherwise (a failed poll is retried with backoff).
func (p *Poller) Run(ctx context.Context) error {
	log := p.r.log.With().Str("poll_url", p.cfg.URL).Logger()
	var ack []string
	errs := map[string]ssf.ErrorBody{}
	sched := retry.New(p.cfg.RetryMin, p.cfg.RetryMax)
	defer func() {
		// Acknowledge what was done before stopping, so the transmitter
		// does not serve it again.
		if len(ack) == 0 && len(errs) == 0 {
			return
		}
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := p.poll(actx, pollRequest{MaxEvents: 0, ReturnImmediately: true, Ack: ack, SetErrs: errs}); err != nil {
			log.Warn().Err(err).Int("acks", len(ack)).Msg("last acknowledgements not delivered; the transmitter will serve those SETs again")
		}
	}()
	for ctx.Err() == nil {
		resp, err := p.poll(ctx, pollRequest{MaxEvents: p.cfg.MaxEvents, ReturnImmediately: !p.cfg.LongPoll, Ack: ack, SetErrs: errs})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			p.r.metrics.polls.WithLabelValues("failed").Inc()
			wait := sched.Next()
			log.Warn().Err(err).Dur("retry_in", wait).Msg("poll failed")
			if !p.sleep(ctx, wait) {
				return nil
			}
			continue
		}
		p.r.metrics.polls.WithLabelValues("ok").Inc()
		ack, errs = nil, map[string]ssf.ErrorBody{}
		jtis := make([]string, 0, len(resp.Sets))
		for jti := range resp.Sets {
			jtis = append(jtis, jti)
		}
		sort.Strings(jtis)
		transient := false
		for _, jti := range jtis {
			out, err := p.r.Process(ctx, resp.Sets[jti])
			var se *ssf.SETError
			switch {
			case err == nil && out.ID != jti:
				errs[jti] = ssf.ErrorBody{Err: ssf.ErrCodeInvalidRequest, Description: "the SET's jti is not the key it was served under"}
			case err == nil:
				ack = append(ack, jti)
			case errors.As(err, &se):
				errs[jti] = se.Body()
			default:
				transient = true
			}
		}
		switch {
		case transient:
			// Kafka or the keys are unavailable: acknowledge what was
			// done, after a backoff, and let the rest be served again.
			wait := sched.Next()
			if !p.sleep(ctx, wait) {
				return nil
			}
		case len(resp.Sets) > 0 || resp.MoreAvailable || len(ack) > 0 || len(errs) > 0:
			sched.Reset()
		case !p.cfg.LongPoll:
			sched.Reset()
			if !p.sleep(ctx, p.cfg.Interval) {
				return nil
			}
		}
	}
	return nil
}

func (p *Poller) poll(ctx context.Context, body pollRequest) (pollResponse, error) {
	var out pollResponse
	b, err := json.Marshal(body)
	if err != nil {
		return out, err
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.cfg.URL, bytes.NewReader(b))
	if err != nil {
		return out, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if p.token.IsSet() {
		req.Header.Set("Authorization", "Bearer "+p.token.Reveal())
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return out, err
	}
	if resp.StatusCode != http.StatusOK {
		var e ssf.ErrorBody
		_ = json.Unmarshal(data, &e)
		return out, fmt.Errorf("poll answered HTTP %d %s %s", resp.StatusCode, e.Err, schemas.CutUTF8(e.Description, 200))
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return out, fmt.Errorf("decoding the poll answer: %w", err)
	}
	return out, nil
}

func (p *Poller) sleep(ctx context.Context, d time.Duration) bool {
	t := p.r.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.Chan():
		return true
	case <-ctx.Done():
		return false
	}
}
