package transmitter

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/revoked-dev/revoked/internal/config"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/ops"
)

// Config configures the transmitter.
type Config struct {
	// Issuer is the iss of every SET and the issuer of the transmitter
	// configuration; receivers fetch /.well-known/ssf-configuration
	// under it (SSF 1.0 section 7.2).
	Issuer string `flag:"issuer" env:"ISSUER" yaml:"issuer" usage:"issuer of the SETs (https URL); receivers read its /.well-known/ssf-configuration"`
	// PublicURL is where receivers reach the endpoints (default: the
	// issuer's scheme and host).
	PublicURL string `flag:"public-url" env:"PUBLIC_URL" yaml:"public_url" usage:"base URL receivers reach the endpoints at (default: the issuer's scheme and host)"`
	// HTTP is the listener of the SSF endpoints, with /livez, /readyz
	// and /metrics.
	HTTP ops.ServerConfig `flag:"http" env:"HTTP" yaml:"http"`
	// Kafka reads the revocations topic: one consumer group per stream,
	// named GroupID "." stream id.
	Kafka kafkax.ReaderConfig `flag:"kafka" env:"KAFKA" yaml:"kafka"`
	// StateFile keeps the streams receivers created (their
	// configuration, status and removed subjects) across restarts.
	StateFile string `flag:"state-file" env:"STATE_FILE" yaml:"state_file" usage:"file that keeps the streams across restarts (written 0600: a push stream's authorization header is in it)"`
	// ReceiversFile lists the receivers and their bearer tokens' files.
	ReceiversFile string `flag:"receivers-file" env:"RECEIVERS_FILE" yaml:"receivers_file" usage:"YAML list of receivers: name, audience, token_file"`
	// ReceiverAudience is the audience of the one receiver whose token
	// comes from REVOKED_SSF_RECEIVER_TOKEN(_FILE), when no receivers
	// file is given.
	ReceiverAudience string `flag:"receiver-audience" env:"RECEIVER_AUDIENCE" yaml:"receiver_audience" usage:"aud of the receiver whose bearer token is REVOKED_SSF_RECEIVER_TOKEN(_FILE) (without a receivers file)"`
	// Subject says how a user becomes a sub_id.
	Subject SubjectConfig `flag:"subject" env:"SUBJECT" yaml:"subject"`
	// CredentialRules name the rules whose revocations also make a
	// credential-change SET.
	CredentialRules []string   `flag:"credential-rules" env:"CREDENTIAL_RULES" yaml:"credential_rules" usage:"rules whose cause is a credential, rule=credential_type/change_type, comma-separated: their revocations also send credential-change"`
	Push            PushConfig `flag:"push" env:"PUSH" yaml:"push"`
	Poll            PollConfig `flag:"poll" env:"POLL" yaml:"poll"`
	// MinVerificationInterval is the least time between two verification
	// requests of a stream; sooner ones get 429.
	MinVerificationInterval time.Duration `flag:"min-verification-interval" env:"MIN_VERIFICATION_INTERVAL" yaml:"min_verification_interval" usage:"least time between verification requests of a stream (sooner: 429)"`
	// Actor names the transmitter in the audit trail and is its chain.
	Actor string `flag:"actor" env:"ACTOR" yaml:"actor" usage:"name of the transmitter in the audit trail (its own hash chain)"`
	// AllowHTTP lets the issuer and push endpoints use plain http, for
	// local runs; SSF 1.0 requires https.
	AllowHTTP bool `flag:"allow-http" env:"ALLOW_HTTP" yaml:"allow_http" usage:"allow http:// issuer and push endpoints (local runs only; SSF requires https)"`
}

// PushConfig tunes push delivery (RFC 8935).
type PushConfig struct {
	Timeout     time.Duration `flag:"timeout" env:"TIMEOUT" yaml:"timeout" usage:"how long one push may take"`
	RetryMin    time.Duration `flag:"retry-min" env:"RETRY_MIN" yaml:"retry_min" usage:"first wait after a failed push"`
	RetryMax    time.Duration `flag:"retry-max" env:"RETRY_MAX" yaml:"retry_max" usage:"longest wait between pushes of one SET"`
	MaxAttempts int           `flag:"max-attempts" env:"MAX_ATTEMPTS" yaml:"max_attempts" usage:"pushes of one SET before it is recorded as failed (0: until the receiver takes it)"`
}

// PollConfig tunes poll delivery (RFC 8936).
type PollConfig struct {
	// RedeliverAfter is how long a SET served by a poll waits for its
	// acknowledgement before a poll serves it again.
	RedeliverAfter time.Duration `flag:"redeliver-after" env:"REDELIVER_AFTER" yaml:"redeliver_after" usage:"how long a SET a poll returned waits for its ack before a later poll returns it again"`
	// Wait is the longest a long poll (returnImmediately false) is held.
	Wait time.Duration `flag:"wait" env:"WAIT" yaml:"wait" usage:"longest a long poll is held open when no SET is available"`
	// MaxEvents bounds one poll's answer when the request names no
	// maxEvents.
	MaxEvents int `flag:"max-events" env:"MAX_EVENTS" yaml:"max_events" usage:"most SETs in one poll answer"`
}

// DefaultConfig reads DefaultTopic from the first offset (a new stream
// skips revocations older than itself) with groups revoked-ssf.<stream>.
func DefaultConfig() Config {
	r := kafkax.DefaultReaderConfig()
	r.Topic = DefaultTopic
	r.GroupID = "revoked-ssf"
	r.Component = "ssf-transmitter"
	r.StartOffset = kafkax.StartFirst
	// A receiver that is down holds its own stream, by design (its SETs
	// wait in Kafka); it must not make the transmitter unready for the
	// others. Alert on revoked_ssf_transmitter_pushes_total by code and
	// revoked_ssf_transmitter_poll_outstanding instead.
	r.StallTimeout = 0
	h := ops.DefaultServerConfig()
	h.Addr = ":8085"
	return Config{
		HTTP: h, Kafka: r,
		Subject:                 SubjectConfig{Format: SubjectAuto},
		CredentialRules:         DefaultCredentialRules(),
		Push:                    PushConfig{Timeout: 10 * time.Second, RetryMin: time.Second, RetryMax: 5 * time.Minute},
		Poll:                    PollConfig{RedeliverAfter: 30 * time.Second, Wait: 25 * time.Second, MaxEvents: 100},
		MinVerificationInterval: 10 * time.Second,
		Actor:                   "ssf-transmitter",
	}
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var p config.Problems
	p.Nest("issuer", checkURL(c.Issuer, c.AllowHTTP, true))
	if c.PublicURL != "" {
		p.Nest("public-url", checkURL(c.PublicURL, c.AllowHTTP, true))
	}
	p.Nest("http", c.HTTP.Validate())
	p.Nest("kafka", c.Kafka.Validate())
	p.Check(c.StateFile != "", "state-file", "required: the streams receivers create must survive a restart")
	p.Check(c.ReceiversFile != "" || c.ReceiverAudience != "", "receivers-file", "name the receivers: a receivers file, or -receiver-audience with REVOKED_SSF_RECEIVER_TOKEN(_FILE)")
	p.Nest("subject", c.Subject.Validate())
	if _, err := ParseCredentialRules(c.CredentialRules); err != nil {
		p.Addf("credential-rules", "%v", err)
	}
	p.Check(c.Push.Timeout > 0, "push.timeout", "must be positive")
	p.Check(c.Push.RetryMin > 0 && c.Push.RetryMax >= c.Push.RetryMin, "push.retry-min", "need 0 < retry-min <= retry-max")
	p.Check(c.Push.MaxAttempts >= 0, "push.max-attempts", "must not be negative")
	p.Check(c.Poll.RedeliverAfter > 0, "poll.redeliver-after", "must be positive")
	p.Check(c.Poll.Wait >= 0, "poll.wait", "must not be negative")
	p.Check(c.Poll.MaxEvents > 0, "poll.max-events", "must be positive")
	p.Check(c.MinVerificationInterval >= 0, "min-verification-interval", "must not be negative")
	p.Check(c.Actor != "", "actor", "must not be empty")
	return p.Err()
}

// checkURL checks an absolute https URL (http with allowHTTP) without
// query or fragment.
func checkURL(s string, allowHTTP, required bool) error {
	var p config.Problems
	if s == "" {
		p.Check(!required, "", "required")
		return p.Err()
	}
	u, err := url.Parse(s)
	switch {
	case err != nil || u.Host == "":
		p.Addf("", "%q is not an absolute URL", s)
	case u.Scheme != "https" && !(allowHTTP && u.Scheme == "http"):
		p.Addf("", "%q must use https (http only with allow-http)", s)
	case u.RawQuery != "" || u.Fragment != "":
		p.Addf("", "%q must have no query or fragment", s)
	}
	return p.Err()
}

// publicBase is the base of the endpoint URLs.
func (c Config) publicBase() string {
	if c.PublicURL != "" {
		return strings.TrimSuffix(c.PublicURL, "/")
	}
	u, err := url.Parse(c.Issuer)
	if err != nil {
		return c.Issuer
	}
	return u.Scheme + "://" + u.Host
}

// wellKnownPath is the path the transmitter configuration is served at.
func (c Config) wellKnownPath() string {
	u, err := url.Parse(c.Issuer)
	if err != nil {
		return "/.well-known/ssf-configuration"
	}
	return "/.well-known/ssf-configuration" + strings.TrimSuffix(u.Path, "/")
}

// groupOf is the consumer group of a stream.
func (c Config) groupOf(streamID string) string {
	return fmt.Sprintf("%s.%s", c.Kafka.GroupID, streamID)
}
