package receiver

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/internal/ssf"
	"github.com/revoked-dev/revoked/schemas"
)

// Config configures a Receiver.
type Config struct {
	// Issuer is the transmitter's issuer: the iss of its SETs, whose
	// /.well-known/ssf-configuration names its jwks_uri.
	Issuer string `flag:"issuer" env:"ISSUER" yaml:"issuer" usage:"the transmitter's issuer (iss of its SETs); its /.well-known/ssf-configuration names the jwks_uri"`
	// JWKSURL, when set, is used instead of discovering the jwks_uri.
	JWKSURL string `flag:"jwks-url" env:"JWKS_URL" yaml:"jwks_url" usage:"the transmitter's JWKS (default: the jwks_uri of its configuration)"`
	// Audience is this receiver as the transmitter's stream names it: SETs
	// must carry it in aud.
	Audience string `flag:"audience" env:"AUDIENCE" yaml:"audience" usage:"aud the SETs must carry (this receiver, as the stream names it)"`
	// UserIssuers are the issuers whose iss_sub subjects name users here
	// (default: the transmitter's issuer).
	UserIssuers []string `flag:"user-issuers" env:"USER_ISSUERS" yaml:"user_issuers" usage:"issuers whose iss_sub subjects name users here, comma-separated (default: the transmitter's issuer)"`
	// UsersFile maps subjects to user ids (default: a subject's
	// identifier is the user id).
	UsersFile string `flag:"users-file" env:"USERS_FILE" yaml:"users_file" usage:"YAML mapping subject identifiers to user ids (default: the identifier is the user id)"`
	// MaxAge is the oldest iat accepted; ClockSkew how far in the future.
	MaxAge    time.Duration `flag:"max-age" env:"MAX_AGE" yaml:"max_age" usage:"oldest iat accepted (and how long a jti is remembered)"`
	ClockSkew time.Duration `flag:"clock-skew" env:"CLOCK_SKEW" yaml:"clock_skew" usage:"how far in the future an iat may be"`
	// ReplayEntries bounds the jti values remembered.
	ReplayEntries int `flag:"replay-entries" env:"REPLAY_ENTRIES" yaml:"replay_entries" usage:"most SET ids remembered for replay detection"`
	// EventsTopic gets the AuditEvents, CommandsTopic the commands.
	EventsTopic   string `flag:"events-topic" env:"EVENTS_TOPIC" yaml:"events_topic" usage:"topic for the AuditEvents the SETs become"`
	CommandsTopic string `flag:"commands-topic" env:"COMMANDS_TOPIC" yaml:"commands_topic" usage:"topic for the revoke commands the SETs become (with -commands)"`
	// Commands name the events that also become revoke commands, and
	// their action: event=action, comma-separated.
	Commands []string `flag:"commands" env:"COMMANDS" yaml:"commands" usage:"events that also become signed revoke commands of their user: event=action,... (events: session-revoked, sessions-revoked, credential-change, token-claims-change, account-disabled, credential-compromise; actions: revoke, revoke_and_reverify, notify)"`
	// CommandTTL is how long such a command stays valid.
	CommandTTL time.Duration `flag:"command-ttl" env:"COMMAND_TTL" yaml:"command_ttl" usage:"validity of the revoke commands"`
	// DryRun makes the commands dry runs: audited, not carried out.
	DryRun bool `flag:"dry-run" env:"DRY_RUN" yaml:"dry_run" usage:"publish the revoke commands as dry runs"`
	// AllowHTTP lets the issuer and JWKS use plain http (local runs).
	AllowHTTP bool `flag:"allow-http" env:"ALLOW_HTTP" yaml:"allow_http" usage:"allow http:// issuer, JWKS and poll URLs (local runs only)"`
}

// DefaultConfig keeps SETs for a day, publishes to the default topics and
// makes no commands.
func DefaultConfig() Config {
	return Config{
		MaxAge: 24 * time.Hour, ClockSkew: 5 * time.Minute, ReplayEntries: 1_000_000,
		EventsTopic: schemas.TopicAuditEvents, CommandsTopic: schemas.TopicRevokeCommands, CommandTTL: time.Hour,
	}
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var p config.Problems
	p.Nest("issuer", CheckURL(c.Issuer, c.AllowHTTP))
	if c.JWKSURL != "" {
		p.Nest("jwks-url", CheckURL(c.JWKSURL, c.AllowHTTP))
	}
	p.Check(c.Audience != "", "audience", "required: the aud this receiver's SETs carry")
	p.Check(c.MaxAge > 0, "max-age", "must be positive")
	p.Check(c.ClockSkew >= 0, "clock-skew", "must not be negative")
	p.Check(c.ReplayEntries > 0, "replay-entries", "must be positive")
	p.Check(c.EventsTopic != "", "events-topic", "required")
	if _, err := ParseCommands(c.Commands); err != nil {
		p.Addf("commands", "%v", err)
	}
	p.Check(len(c.Commands) == 0 || c.CommandsTopic != "", "commands-topic", "required with -commands")
	p.Check(c.CommandTTL > 0 && c.CommandTTL <= schemas.MaxCommandTTL, "command-ttl", "must be positive and at most %s", schemas.MaxCommandTTL)
	return p.Err()
}

// userIssuers are the issuers whose iss_sub subjects are accepted.
func (c Config) userIssuers() []string {
	if len(c.UserIssuers) > 0 {
		return c.UserIssuers
	}
	return []string{c.Issuer}
}

// CheckURL checks an absolute https URL (http with allowHTTP).
func CheckURL(s string, allowHTTP bool) error {
	var p config.Problems
	u, err := url.Parse(s)
	switch {
	case s == "":
		p.Addf("", "required")
	case err != nil || u.Host == "":
		p.Addf("", "%q is not an absolute URL", s)
	case u.Scheme != "https" && !(allowHTTP && u.Scheme == "http"):
		p.Addf("", "%q must use https (http only with allow-http)", s)
	}
	return p.Err()
}

// eventNames are the short names of the events -commands takes.
var eventNames = map[string]string{
	"session-revoked":       ssf.EventSessionRevoked,
	"sessions-revoked":      ssf.EventSessionsRevoked,
	"credential-change":     ssf.EventCredentialChange,
	"token-claims-change":   ssf.EventTokenClaimsChange,
	"account-disabled":      ssf.EventAccountDisabled,
	"credential-compromise": ssf.EventCredentialCompromise,
}

// ParseCommands reads event=action items into event type URI → action.
func ParseCommands(items []string) (map[string]schemas.Action, error) {
	out := map[string]schemas.Action{}
	for _, item := range items {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, action, ok := strings.Cut(item, "=")
		uri, known := eventNames[strings.TrimSpace(name)]
		switch a := schemas.Action(strings.TrimSpace(action)); {
		case !ok || !known:
			return nil, fmt.Errorf("%q: want event=action with event one of session-revoked, sessions-revoked, credential-change, token-claims-change, account-disabled, credential-compromise", item)
		case a != schemas.ActionRevoke && a != schemas.ActionRevokeAndReverify && a != schemas.ActionNotify:
			return nil, fmt.Errorf("%q: action must be revoke, revoke_and_reverify or notify", item)
		default:
			out[uri] = a
		}
	}
	return out, nil
}
