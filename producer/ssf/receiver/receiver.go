// Package receiver is the Shared Signals (SSF 1.0) receiver: it takes
// Security Event Tokens from a transmitter (an IdP such as Okta or
// Google) by push (RFC 8935, PushHandler) or by polling the transmitter
// (RFC 8936, Poller), verifies each (signature against the
// transmitter's JWKS, found through its ssf-configuration and cached;
// explicit type; iss; aud; iat freshness; jti replay) and turns CAEP
// session-revoked, credential-change and token-claims-change and RISC
// account-disabled, credential-compromise and sessions-revoked into
// AuditEvents on the events topic and, where configured, into signed
// revoke commands of the user. A SET is acknowledged (push: 202; poll:
// in the next request's ack) only once Kafka has what it became; one that
// is refused is answered with RFC 8935's error (push: 400; poll: setErrs).
package receiver

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/ssf"
	"github.com/revoked-dev/revoked/schemas"
)

// Source is the source of the AuditEvents a Receiver publishes.
const Source = "ssf"

// Issuer is the issuer of the revoke commands a Receiver publishes.
const Issuer = "ssf-receiver"

// Deps are the Receiver's collaborators.
type Deps struct {
	// Publisher writes the events and commands (messages name their
	// topics).
	Publisher kafkax.Publisher
	// Signer signs revoke commands; required with Config.Commands.
	Signer *schemas.Signer
	// Keys overrides the transmitter's key set (default: JWKSURL, else
	// discovered from the issuer).
	Keys ssf.KeySource
	// Client fetches the transmitter's configuration and keys (nil: a
	// client with a ten second timeout).
	Client   *http.Client
	Clock    clockwork.Clock
	Registry prometheus.Registerer
}

// Receiver verifies SETs and publishes what they say. It is safe for
// concurrent use.
type Receiver struct {
	cfg      Config
	keys     ssf.KeySource
	users    *ssf.Users
	commands map[string]schemas.Action
	replay   *ssf.Replay
	pub      kafkax.Publisher
	signer   *schemas.Signer
	clock    clockwork.Clock
	log      zerolog.Logger
	metrics  *metrics
}

// New checks the configuration and returns a Receiver. It fetches
// nothing until the first SET.
func New(cfg Config, deps Deps, log zerolog.Logger) (*Receiver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Publisher == nil {
		return nil, errors.New("receiver: a Kafka publisher is required")
	}
	commands, err := ParseCommands(cfg.Commands)
	if err != nil {
		return nil, err
	}
	if len(commands) > 0 && deps.Signer == nil {
		return nil, errors.New("receiver: revoke commands need a signing key")
	}
	users, err := ssf.LoadUsers(cfg.UsersFile)
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(deps.Registry)
	if err != nil {
		return nil, err
	}
	clock := deps.Clock
	if clock == nil {
		clock = clockwork.NewRealClock()
	}
	client := deps.Client
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	keys := deps.Keys
	switch {
	case keys != nil:
	case cfg.JWKSURL != "":
		keys = ssf.NewRemoteKeys(cfg.JWKSURL, client, clock)
	default:
		keys = ssf.NewDiscoveredKeys(cfg.Issuer, client, clock)
	}
	return &Receiver{
		cfg: cfg, keys: keys, users: users, commands: commands, replay: ssf.NewReplay(cfg.ReplayEntries),
		pub: deps.Publisher, signer: deps.Signer, clock: clock, metrics: m,
		log: log.With().Str("component", "ssf-receiver").Str("transmitter", cfg.Issuer).Logger(),
	}, nil
}

// Outcome is what a SET became.
type Outcome struct {
	// ID is the SET's jti.
	ID string
	// Events are the AuditEvents published; Commands the revoke commands.
	Events   []schemas.AuditEvent
	Commands []schemas.RevokeCommand
	// Duplicate: the same SET was accepted before, and nothing was
	// published again.
	Duplicate bool
	// Ignored are event types the SET carried that this receiver does
	// not turn into anything (a verification event, another profile's).
	Ignored []string
}

// Process verifies one SET and publishes what it says, returning once
// Kafka acknowledged it. An error is a *ssf.SETError when the SET is
// refused (tell the transmitter: push 400, poll setErrs; do not retry);
// any other error means it could not be judged or published now (its
// keys could not be fetched, Kafka did not answer): leave it
// unacknowledged, the transmitter delivers it again.
func (r *Receiver) Process(ctx context.Context, set string) (Outcome, error) {
	out, err := r.process(ctx, set)
	var se *ssf.SETError
	switch {
	case err == nil && out.Duplicate:
		r.metrics.sets.WithLabelValues("duplicate", "").Inc()
	case err == nil:
		r.metrics.sets.WithLabelValues("accepted", "").Inc()
		r.log.Debug().Str("jti", out.ID).Int("events", len(out.Events)).Int("commands", len(out.Commands)).
			Strs("ignored", out.Ignored).Msg("SET accepted")
	case errors.As(err, &se):
		r.metrics.sets.WithLabelValues("refused", se.Code).Inc()
		r.log.Warn().Str("jti", out.ID).Str("err", se.Code).Str("description", se.Description).Msg("SET refused")
	default:
		r.metrics.sets.WithLabelValues("failed", "").Inc()
		r.log.Warn().Err(err).Str("jti", out.ID).Msg("SET not processed; the transmitter will deliver it again")
	}
	return out, err
}

func (r *Receiver) process(ctx context.Context, set string) (Outcome, error) {
	c, err := ssf.VerifySET(ctx, set, r.keys)
	if err != nil {
		return Outcome{}, err
	}
	out := Outcome{ID: c.ID}
	now := r.clock.Now()
	if err := c.Check(ssf.Expect{Issuer: r.cfg.Issuer, Audience: r.cfg.Audience, MaxAge: r.cfg.MaxAge, Skew: r.cfg.ClockSkew, Now: now}); err != nil {
		return out, err
	}
	key := c.Issuer + "\x00" + c.ID
	digest := ssf.Digest(set)
	if seen, same := r.replay.Seen(key, digest, now); seen {
		if !same {
			return out, ssf.Errorf(ssf.ErrCodeInvalidRequest, "jti %q was already used by another SET", schemas.CutUTF8(c.ID, 64))
		}
		out.Duplicate = true
		return out, nil
	}
	msgs, err := r.messages(&c, now, &out)
	if err != nil {
		return out, err
	}
	if len(msgs) > 0 {
		if err := r.pub.WriteMessages(ctx, msgs...); err != nil {
			return out, fmt.Errorf("publishing SET %s: %w", c.ID, err)
		}
	}
	for _, ev := range out.Events {
		r.metrics.events.WithLabelValues(string(ev.Type)).Inc()
	}
	for _, cmd := range out.Commands {
		r.metrics.commands.WithLabelValues(cmd.Reason.RuleID).Inc()
	}
	// Remembered once published: a failure before leaves the SET to be
	// delivered again and processed then.
	if err := r.replay.Add(key, digest, c.IssuedAt.Time().Add(r.cfg.MaxAge+r.cfg.ClockSkew), now); err != nil {
		r.log.Warn().Err(err).Str("jti", c.ID).Msg("SET published but not remembered for replay detection")
	}
	return out, nil
}

// messages turns the SET's events into AuditEvents and commands, and
// their Kafka messages.
func (r *Receiver) messages(c *ssf.Claims, now time.Time, out *Outcome) ([]kafkax.Message, error) {
	types := make([]string, 0, len(c.Events))
	for t := range c.Events {
		types = append(types, t)
	}
	sort.Strings(types)
	var msgs []kafkax.Message
	for _, typ := range types {
		ev, ok, err := r.event(c, typ)
		if err != nil {
			return nil, err
		}
		if !ok {
			out.Ignored = append(out.Ignored, typ)
			if typ == ssf.EventVerification {
				var v ssf.Verification
				_, _ = c.Event(typ, &v)
				r.log.Info().Str("jti", c.ID).Str("state", schemas.CutUTF8(v.State, 128)).Msg("verification event received")
			}
			continue
		}
		if err := ev.Validate(); err != nil {
			return nil, ssf.Errorf(ssf.ErrCodeInvalidRequest, "the %s event makes no valid AuditEvent: %v", eventName(typ), err)
		}
		value, err := ev.AppendJSON(nil)
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, kafkax.Message{
			Topic: r.cfg.EventsTopic, Key: ev.Key(), Value: value,
			Headers: []kafkax.Header{{Key: schemas.HeaderSchema, Value: []byte(schemas.SchemaAuditEventV1)}},
		})
		out.Events = append(out.Events, ev)
		if action, ok := r.commands[typ]; ok {
			cmd := r.command(ev, typ, action, now)
			if err := cmd.Validate(); err != nil {
				return nil, ssf.Errorf(ssf.ErrCodeInvalidRequest, "the %s event makes no valid command: %v", eventName(typ), err)
			}
			m, err := r.commandMessage(cmd)
			if err != nil {
				return nil, err
			}
			msgs = append(msgs, m)
			out.Commands = append(out.Commands, cmd)
		}
	}
	return msgs, nil
}

// Limits on what a SET's event puts in attrs.
const (
	maxClaims     = 32
	maxClaimBytes = 512
	maxReason     = 512
)

// event is the AuditEvent of one event of the SET, or false for an
// event type this receiver does not map.
func (r *Receiver) event(c *ssf.Claims, typ string) (schemas.AuditEvent, bool, error) {
	ev := schemas.AuditEvent{Source: Source, Attrs: map[string]string{
		"ssf.event_type": typ, "ssf.iss": c.Issuer, "ssf.jti": schemas.CutUTF8(c.ID, 256),
	}}
	if c.Txn != "" {
		ev.Attrs["ssf.txn"] = schemas.CutUTF8(c.Txn, 256)
	}
	var subject *ssf.Subject
	var ts int64
	common := func(cm ssf.CAEPCommon) {
		ts = cm.EventTimestamp
		if cm.InitiatingEntity != "" {
			ev.Attrs["ssf.initiating_entity"] = schemas.CutUTF8(cm.InitiatingEntity, 32)
		}
		if reason := pickReason(cm.ReasonAdmin); reason != "" {
			ev.Attrs["ssf.reason_admin"] = schemas.CutUTF8(reason, maxReason)
		}
	}
	invalid := func(err error) (schemas.AuditEvent, bool, error) { return ev, false, err }
	switch typ {
	case ssf.EventSessionRevoked:
		var p ssf.SessionRevoked
		if _, err := c.Event(typ, &p); err != nil {
			return invalid(err)
		}
		common(p.CAEPCommon)
		ev.Type = schemas.EventSessionRevoked
	case ssf.EventSessionsRevoked:
		var p ssf.SessionsRevoked
		if _, err := c.Event(typ, &p); err != nil {
			return invalid(err)
		}
		subject = p.Subject
		ev.Type = schemas.EventSessionRevoked
	case ssf.EventCredentialChange:
		var p ssf.CredentialChange
		if _, err := c.Event(typ, &p); err != nil {
			return invalid(err)
		}
		if p.CredentialType == "" || !slices.Contains(ssf.ChangeTypes, p.ChangeType) {
			return invalid(ssf.Errorf(ssf.ErrCodeInvalidRequest, "credential-change needs credential_type and a change_type of %s", strings.Join(ssf.ChangeTypes, ", ")))
		}
		common(p.CAEPCommon)
		ev.Attrs["ssf.credential_type"] = schemas.CutUTF8(p.CredentialType, 64)
		ev.Attrs["ssf.change_type"] = p.ChangeType
		if p.FriendlyName != "" {
			ev.Attrs["ssf.friendly_name"] = schemas.CutUTF8(p.FriendlyName, 256)
		}
		ev.Type = schemas.EventCredentialChanged
		if p.CredentialType == "password" && p.ChangeType == "update" {
			// The type the detector's password rules read.
			ev.Type = schemas.EventPasswordChanged
		}
	case ssf.EventTokenClaimsChange:
		var p ssf.TokenClaimsChange
		if _, err := c.Event(typ, &p); err != nil {
			return invalid(err)
		}
		if len(p.Claims) == 0 || len(p.Claims) > maxClaims {
			return invalid(ssf.Errorf(ssf.ErrCodeInvalidRequest, "token-claims-change needs 1 to %d claims", maxClaims))
		}
		common(p.CAEPCommon)
		for name, v := range p.Claims {
			b, err := json.Marshal(v)
			if err != nil || len(b) > maxClaimBytes {
				return invalid(ssf.Errorf(ssf.ErrCodeInvalidRequest, "claim %q: value larger than %d bytes", schemas.CutUTF8(name, 64), maxClaimBytes))
			}
			ev.Attrs["ssf.claim."+schemas.CutUTF8(name, 128)] = string(b)
		}
		ev.Type = schemas.EventTokenClaimsChanged
	case ssf.EventAccountDisabled:
		var p ssf.AccountDisabled
		if _, err := c.Event(typ, &p); err != nil {
			return invalid(err)
		}
		subject = p.Subject
		if p.Reason != "" {
			ev.Attrs["ssf.reason"] = schemas.CutUTF8(p.Reason, 64)
		}
		ev.Type = schemas.EventAccountDisabled
	case ssf.EventCredentialCompromise:
		var p ssf.CredentialCompromise
		if _, err := c.Event(typ, &p); err != nil {
			return invalid(err)
		}
		if p.CredentialType == "" {
			return invalid(ssf.Errorf(ssf.ErrCodeInvalidRequest, "credential-compromise needs credential_type"))
		}
		subject, ts = p.Subject, p.EventTimestamp
		ev.Attrs["ssf.credential_type"] = schemas.CutUTF8(p.CredentialType, 64)
		if reason := pickReason(p.ReasonAdmin); reason != "" {
			ev.Attrs["ssf.reason_admin"] = schemas.CutUTF8(reason, maxReason)
		}
		ev.Type = schemas.EventCredentialCompromised
	default:
		return ev, false, nil
	}
	// SSF 1.0 puts the subject in sub_id; RISC transmitters that predate
	// it, in the event.
	if c.SubID != nil {
		subject = c.SubID
	}
	if subject == nil {
		return invalid(ssf.Errorf(ssf.ErrCodeInvalidRequest, "the SET names no subject (sub_id)"))
	}
	user, session, err := r.users.UserID(*subject, r.cfg.userIssuers())
	switch {
	case errors.Is(err, ssf.ErrForeignIssuer):
		return invalid(ssf.Errorf(ssf.ErrCodeAccessDenied, "%v", err))
	case err != nil:
		return invalid(ssf.Errorf(ssf.ErrCodeInvalidRequest, "%v", err))
	}
	ev.UserID, ev.SessionID = user, session
	ev.Attrs["ssf.subject_format"] = subject.Format
	ev.Time = c.IssuedAt.Time()
	if ts > 0 {
		ev.Time = time.Unix(ts, 0).UTC()
	}
	ev.ID = eventID(c.Issuer, c.ID, typ)
	return ev, true, nil
}

// pickReason is the English reason, else any.
func pickReason(m map[string]string) string {
	if v, ok := m["en"]; ok {
		return v
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) > 0 {
		return m[keys[0]]
	}
	return ""
}

// eventID is the AuditEvent id of an event of a SET: the same SET makes
// the same id, so a SET delivered twice is one event downstream.
func eventID(iss, jti, typ string) string {
	h := sha256.New()
	for _, p := range []string{"ssf-event/v1", iss, jti, typ} {
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(p))))
		h.Write([]byte(p))
	}
	return "set_" + hex.EncodeToString(h.Sum(nil)[:16])
}

// ruleID is the rule id of the commands an event type makes:
// ssf_session_revoked, ssf_account_disabled and so on.
func ruleID(typ string) string {
	return "ssf_" + strings.ReplaceAll(eventName(typ), "-", "_")
}

func eventName(uri string) string {
	if i := strings.LastIndexByte(uri, '/'); i >= 0 {
		return uri[i+1:]
	}
	return uri
}

// command is the revoke command of an event: every token of the user,
// downscoped ones included, with a deterministic id (a SET delivered
// again makes the same command, which the consumer runs once).
func (r *Receiver) command(ev schemas.AuditEvent, typ string, action schemas.Action, now time.Time) schemas.RevokeCommand {
	rule := ruleID(typ)
	target := schemas.Target{Kind: schemas.TargetUser, UserID: ev.UserID, IncludeDownscoped: true}
	severity := schemas.SeverityHigh
	if typ == ssf.EventAccountDisabled || typ == ssf.EventCredentialCompromise {
		severity = schemas.SeverityCritical
	}
	mode := schemas.ModeEnforce
	if r.cfg.DryRun {
		mode = schemas.ModeDryRun
	}
	summary := fmt.Sprintf("%s from %s", eventName(typ), r.cfg.Issuer)
	if reason := ev.Attrs["ssf.reason_admin"]; reason != "" {
		summary += ": " + reason
	}
	now = now.UTC()
	return schemas.RevokeCommand{
		CommandID: schemas.DetectionCommandID(rule, 1, target, []string{ev.ID}),
		IssuedAt:  now, ExpiresAt: now.Add(r.cfg.CommandTTL), Issuer: Issuer,
		Target: target, Action: action, Mode: mode,
		Reason: schemas.Reason{
			RuleID: rule, RuleVersion: 1, Severity: severity, Summary: schemas.CutUTF8(summary, 1024),
			Evidence: []string{ev.ID}, FirstEventTime: ev.Time, LastEventTime: ev.Time, DetectedAt: now,
		},
	}
}

// commandMessage is the signed message of a command, as producer/revoke
// publishes one: the JSON value, its Ed25519 signature and key id in
// headers, keyed by the target.
func (r *Receiver) commandMessage(cmd schemas.RevokeCommand) (kafkax.Message, error) {
	return kafkax.SignedCommand(r.signer, r.cfg.CommandsTopic, &cmd)
}
