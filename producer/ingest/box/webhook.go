package box

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/internal/config"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/ops"
	"github.com/revoked-dev/revoked/producer/ingest/source"
)

// Headers of a webhook v2 delivery.
const (
	HeaderDeliveryID         = "Box-Delivery-Id"
	HeaderDeliveryTimestamp  = "Box-Delivery-Timestamp"
	HeaderSignaturePrimary   = "Box-Signature-Primary"
	HeaderSignatureSecondary = "Box-Signature-Secondary"
	HeaderSignatureVersion   = "Box-Signature-Version"
	HeaderSignatureAlgorithm = "Box-Signature-Algorithm"
)

// Reasons a delivery is refused.
var (
	// ErrSignature: no configured key produced a signature the delivery
	// carries.
	ErrSignature = errors.New("box webhook: signature does not verify")
	// ErrStale: the delivery's timestamp is further from now than the
	// allowed age (Box documents ten minutes), so it may be a replay.
	ErrStale = errors.New("box webhook: delivery timestamp too old or too far ahead")
	// ErrTimestamp: BOX-DELIVERY-TIMESTAMP is missing or not RFC 3339.
	ErrTimestamp = errors.New("box webhook: missing or malformed delivery timestamp")
	// ErrSignatureScheme: a signature version or algorithm other than
	// Box's "1" and "HmacSHA256".
	ErrSignatureScheme = errors.New("box webhook: unknown signature version or algorithm")
)

// Verifier checks webhook v2 deliveries as Box documents: the signature
// is the base64 of HMAC-SHA256, keyed with the app's primary (or
// secondary) signature key, over the body's bytes followed by the
// BOX-DELIVERY-TIMESTAMP header's bytes; BOX-SIGNATURE-PRIMARY is checked
// with the primary key and BOX-SIGNATURE-SECONDARY with the secondary, and
// either verifying is enough, so keys can be rotated one at a time. A
// timestamp more than MaxAge old (or ahead of the clock) is refused.
type Verifier struct {
	Primary, Secondary config.Secret
	MaxAge             time.Duration
}

// Verify checks a delivery of body with headers h at now.
func (v Verifier) Verify(h http.Header, body []byte, now time.Time) error {
	if ver := h.Get(HeaderSignatureVersion); ver != "" && ver != "1" {
		return fmt.Errorf("%w: version %q", ErrSignatureScheme, ver)
	}
	if alg := h.Get(HeaderSignatureAlgorithm); alg != "" && alg != "HmacSHA256" {
		return fmt.Errorf("%w: algorithm %q", ErrSignatureScheme, alg)
	}
	ts := h.Get(HeaderDeliveryTimestamp)
	if ts == "" {
		return ErrTimestamp
	}
	// Checking the signature first means a forged timestamp is refused
	// as a bad signature, not as stale.
	ok := v.Primary.IsSet() && matches(v.Primary.Reveal(), h.Get(HeaderSignaturePrimary), body, ts) ||
		v.Secondary.IsSet() && matches(v.Secondary.Reveal(), h.Get(HeaderSignatureSecondary), body, ts)
	if !ok {
		return ErrSignature
	}
	at, err := time.Parse(time.RFC3339, ts)
	if err != nil {
		return fmt.Errorf("%w: %q", ErrTimestamp, ts)
	}
	if age := now.Sub(at); age > v.MaxAge || age < -v.MaxAge {
		return fmt.Errorf("%w: sent at %s, %s from now (allowed %s)", ErrStale, ts, age.Round(time.Second), v.MaxAge)
	}
	return nil
}

// Sign returns the signature Box puts in BOX-SIGNATURE-PRIMARY (or
// -SECONDARY) for body sent at timestamp with key.
func Sign(key string, body []byte, timestamp string) string {
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write(body)
	mac.Write([]byte(timestamp))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// matches reports, in constant time, whether sig is the signature of body
// and ts under key.
func matches(key, sig string, body []byte, ts string) bool {
	got, err := base64.StdEncoding.DecodeString(strings.TrimSpace(sig))
	if err != nil || len(got) != sha256.Size {
		return false
	}
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write(body)
	mac.Write([]byte(ts))
	return hmac.Equal(got, mac.Sum(nil))
}

// WebhookConfig configures the webhook receiver. Keys come from
// REVOKED_BOX_WEBHOOK_PRIMARY_KEY(_FILE) and
// REVOKED_BOX_WEBHOOK_SECONDARY_KEY(_FILE), never from flags.
type WebhookConfig struct {
	// Addr is where the receiver listens; it serves /livez, /readyz and
	// /metrics there too.
	Addr string `flag:"listen" env:"LISTEN" yaml:"listen" usage:"address the webhook receiver listens on (with /livez, /readyz, /metrics)"`
	// Path is the webhook's address path, as given to Box.
	Path         string        `flag:"path" env:"URL_PATH" yaml:"path" usage:"URL path Box delivers to"`
	PrimaryKey   config.Secret `flag:"-" env:"PRIMARY_KEY" yaml:"-" usage:"primary signature key of the Box app"`
	SecondaryKey config.Secret `flag:"-" env:"SECONDARY_KEY" yaml:"-" usage:"secondary signature key of the Box app"`
	// MaxAge is how old a delivery may be; Box documents ten minutes.
	MaxAge time.Duration `flag:"max-age" env:"MAX_AGE" yaml:"max_age" usage:"oldest BOX-DELIVERY-TIMESTAMP accepted"`
	// MaxBodyBytes bounds a delivery.
	MaxBodyBytes int64 `flag:"max-body-bytes" env:"MAX_BODY_BYTES" yaml:"max_body_bytes" usage:"largest delivery accepted"`
	// Window is how many payload ids are remembered to drop Box's
	// redeliveries of a payload already published.
	Window int `flag:"dedupe-window" env:"DEDUPE_WINDOW" yaml:"dedupe_window" usage:"payload ids remembered to drop redeliveries"`
	// UserKey picks AuditEvent.user_id: "id" or "login".
	UserKey string `flag:"user-key" env:"USER_KEY" yaml:"user_key" usage:"what user_id holds: id (Box user id) or login (email)"`
}

// DefaultWebhookConfig listens on :8089 at /box/webhook, refuses
// deliveries older than ten minutes and bodies over 1 MiB, and remembers
// 10,000 payload ids.
func DefaultWebhookConfig() WebhookConfig {
	return WebhookConfig{Addr: ":8089", Path: "/box/webhook", MaxAge: 10 * time.Minute, MaxBodyBytes: 1 << 20, Window: 10000, UserKey: UserKeyID}
}

// Validate reports every problem with c at once.
func (c WebhookConfig) Validate() error {
	var p config.Problems
	p.Check(c.Addr != "", "listen", "required")
	p.Check(strings.HasPrefix(c.Path, "/"), "path", "must start with /")
	p.Check(c.PrimaryKey.IsSet() || c.SecondaryKey.IsSet(), "primary-key",
		"required: set REVOKED_BOX_WEBHOOK_PRIMARY_KEY_FILE (or _SECONDARY_KEY_FILE); unsigned deliveries are never accepted")
	p.Check(c.MaxAge > 0, "max-age", "must be positive")
	p.Check(c.MaxBodyBytes > 0, "max-body-bytes", "must be positive")
	p.Check(c.Window > 0, "dedupe-window", "must be positive")
	p.Check(c.UserKey == UserKeyID || c.UserKey == UserKeyLogin, "user-key", "want id or login, got %q", c.UserKey)
	return p.Err()
}

// Receiver is the webhook v2 endpoint. Each delivery is verified, its
// payload id checked against the ids already published, mapped and
// published (an AuditEvent, or the payload on the unmapped topic, or a
// dead letter) before Box is answered:
//
//   - 200 once published, or when the payload id was published before
//     (a redelivery);
//   - 401 for a signature that does not verify, 400 for a stale or
//     missing timestamp or an unknown signature scheme (nothing is
//     published; Box retries, and a genuine delivery keeps failing only
//     if the keys or the clock are wrong);
//   - 405, 413 for other methods and oversized bodies;
//   - 503 when Kafka did not take it, so that Box delivers it again.
type Receiver struct {
	verifier Verifier
	window   *source.Window
	sink     *source.Sink
	mapping  Mapping
	clk      clockwork.Clock
	log      zerolog.Logger
	max      int64
	requests *prometheus.CounterVec
	m        *source.Metrics
}

// WebhookSourceName names the receiver in metrics and headers.
const WebhookSourceName = "box-webhook"

// NewReceiver returns the receiver; reg receives its metrics.
func NewReceiver(cfg WebhookConfig, sink *source.Sink, log zerolog.Logger, reg prometheus.Registerer, clk clockwork.Clock) (*Receiver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if sink == nil {
		return nil, errors.New("box: nil sink")
	}
	if clk == nil {
		clk = clockwork.NewRealClock()
	}
	m, err := source.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "revoked", Subsystem: "box_webhook", Name: "deliveries_total",
		Help: "Box webhook deliveries by answer: published, duplicate, bad_signature, stale, bad_request, publish_failed.",
	}, []string{"outcome"})
	var errs []error
	if requests = ops.Register(reg, requests, &errs); len(errs) > 0 {
		return nil, errs[0]
	}
	return &Receiver{
		verifier: Verifier{Primary: cfg.PrimaryKey, Secondary: cfg.SecondaryKey, MaxAge: cfg.MaxAge},
		window:   source.NewWindow(cfg.Window, nil),
		sink:     sink,
		mapping:  Mapping{UserKey: cfg.UserKey},
		clk:      clk,
		log:      log.With().Str("component", "box-webhook").Logger(),
		max:      cfg.MaxBodyBytes,
		requests: requests,
		m:        m,
	}, nil
}

// ServeHTTP handles one delivery.
func (rc *Receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		rc.answer(w, http.StatusMethodNotAllowed, "method", "use POST")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, rc.max))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			rc.answer(w, http.StatusRequestEntityTooLarge, "bad_request", fmt.Sprintf("body exceeds %d bytes", rc.max))
			return
		}
		rc.answer(w, http.StatusBadRequest, "bad_request", "reading body failed")
		return
	}
	if err := rc.verifier.Verify(r.Header, body, rc.clk.Now()); err != nil {
		switch {
		case errors.Is(err, ErrSignature):
			rc.log.Warn().Str("delivery_id", r.Header.Get(HeaderDeliveryID)).Str("remote", r.RemoteAddr).Msg("webhook delivery refused: bad signature")
			rc.answer(w, http.StatusUnauthorized, "bad_signature", "signature does not verify")
		case errors.Is(err, ErrStale):
			rc.log.Warn().Err(err).Str("delivery_id", r.Header.Get(HeaderDeliveryID)).Msg("webhook delivery refused: stale")
			rc.answer(w, http.StatusBadRequest, "stale", err.Error())
		default:
			rc.answer(w, http.StatusBadRequest, "bad_request", err.Error())
		}
		return
	}
	var head struct {
		ID      string `json:"id"`
		Trigger string `json:"trigger"`
	}
	_ = json.Unmarshal(body, &head)
	rec := source.Record{ID: head.ID, Type: head.Trigger, Raw: body}
	if head.ID != "" && rc.window.Contains(head.ID) {
		rc.m.Records.WithLabelValues(WebhookSourceName, "duplicate").Inc()
		rc.answer(w, http.StatusOK, "duplicate", "already published")
		return
	}
	msg, outcome, reason := rc.sink.Route(rec, rc.mapping.Webhook)
	if err := rc.sink.Publish(r.Context(), []kafkax.Message{msg}); err != nil {
		rc.log.Error().Err(err).Str("id", head.ID).Msg("publishing a webhook delivery failed; Box will deliver it again")
		w.Header().Set("Retry-After", "60")
		rc.answer(w, http.StatusServiceUnavailable, "publish_failed", "not published; deliver again")
		return
	}
	if head.ID != "" {
		rc.window.Add(head.ID)
	}
	rc.m.Records.WithLabelValues(WebhookSourceName, outcome.String()).Inc()
	if outcome != source.Published {
		rc.log.Debug().Str("id", head.ID).Str("trigger", head.Trigger).Str("outcome", outcome.String()).Str("reason", reason).Msg("webhook payload not published as an event")
	}
	rc.answer(w, http.StatusOK, "published", outcome.String())
}

func (rc *Receiver) answer(w http.ResponseWriter, status int, outcome, msg string) {
	rc.requests.WithLabelValues(outcome).Inc()
	ops.WriteJSON(w, status, map[string]string{"status": outcome, "detail": msg})
}
