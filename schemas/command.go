package schemas

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
)

// TargetKind is what a command revokes.
type TargetKind string

// Target kinds.
const (
	TargetToken   TargetKind = "token"
	TargetUser    TargetKind = "user"
	TargetSession TargetKind = "session"
	TargetClient  TargetKind = "client"
)

// Action is what the consumer does to the target.
type Action string

// Actions.
const (
	ActionRevoke            Action = "revoke"
	ActionRevokeAndReverify Action = "revoke_and_reverify"
	ActionNotify            Action = "notify"
)

// Mode says whether a command takes effect.
type Mode string

// Modes.
const (
	ModeEnforce Mode = "enforce"
	ModeDryRun  Mode = "dry_run"
)

// Severity of a detection.
type Severity string

// Severities.
const (
	SeverityLow      Severity = "low"
	SeverityMedium   Severity = "medium"
	SeverityHigh     Severity = "high"
	SeverityCritical Severity = "critical"
)

// Target names what to revoke. Exactly the id matching Kind is required;
// the others may add context (a session's user, say). A token target names
// the token by fingerprint (TokenID); where the raw token must travel (the
// logout case, RFC 7009 needs it), it travels only in SealedToken, sealed to
// the consumer's public key: a session box ("v2." and base64, see Sealer)
// or an anonymous box (base64, see SealToken); SealKey.Open opens both.
type Target struct {
	Kind              TargetKind `json:"kind"`
	UserID            string     `json:"user_id,omitempty"`
	TokenID           string     `json:"token_id,omitempty"`
	SessionID         string     `json:"session_id,omitempty"`
	ClientID          string     `json:"client_id,omitempty"`
	SealedToken       string     `json:"sealed_token,omitempty"`
	IncludeDownscoped bool       `json:"include_downscoped"`
}

// Key is the Kafka key of a command with this target: the user id where
// known, else the token, session or client id, so that all commands about
// one user stay in order on one partition.
func (t Target) Key() string {
	switch {
	case t.UserID != "":
		return t.UserID
	case t.TokenID != "":
		return t.TokenID
	case t.SessionID != "":
		return t.SessionID
	default:
		return t.ClientID
	}
}

// ID is the id the target kind names.
func (t Target) ID() string {
	switch t.Kind {
	case TargetUser:
		return t.UserID
	case TargetToken:
		return t.TokenID
	case TargetSession:
		return t.SessionID
	case TargetClient:
		return t.ClientID
	}
	return ""
}

// Reason says why a command was issued.
type Reason struct {
	RuleID         string    `json:"rule_id"`
	RuleVersion    int       `json:"rule_version"`
	Severity       Severity  `json:"severity"`
	Summary        string    `json:"summary"`
	Evidence       []string  `json:"evidence,omitempty"`
	FirstEventTime time.Time `json:"first_event_time,omitzero"`
	// LastEventTime is the time of the event that completed the detection;
	// latencies (event → detection → revocation) are measured from it.
	LastEventTime time.Time `json:"last_event_time,omitzero"`
	// DetectedAt is the wall-clock time the detector issued the command.
	DetectedAt time.Time `json:"detected_at,omitzero"`
	// Risk is the accumulated risk that crossed the threshold of the
	// command's action, for detections of the risk model; zero otherwise.
	Risk float64 `json:"risk,omitempty"`
	// Signals are the pieces of evidence that added up to Risk, each with
	// the weight it contributed after decay, largest first.
	Signals []Signal `json:"signals,omitempty"`
	// Context says where evidence events came from (address, country,
	// autonomous system): at most one entry per event of Evidence, for
	// the events whose address the issuer knew. It is not part of the
	// command id (DetectionCommandID): the same detection is the same
	// command whatever context it carries.
	Context []EventContext `json:"context,omitempty"`
}

// Signal is one contribution to a detection's risk: a rule that matched,
// what it saw, and its weight when the command was issued.
type Signal struct {
	RuleID string    `json:"rule_id"`
	Weight float64   `json:"weight"`
	Time   time.Time `json:"time"`
	// Detail says what the rule saw ("token used from AS16509 (hosting)
	// on another device").
	Detail  string `json:"detail,omitempty"`
	EventID string `json:"event_id,omitempty"`
}

// MaxSignals bounds the signals of one command.
const MaxSignals = 32

// RevokeCommand is an instruction to revoke (RevokeCommand v1). It travels
// signed (see Signer); the consumer rejects unsigned, forged, expired and
// replayed commands.
type RevokeCommand struct {
	CommandID string    `json:"command_id"`
	IssuedAt  time.Time `json:"issued_at"`
	ExpiresAt time.Time `json:"expires_at"`
	Issuer    string    `json:"issuer"`
	Target    Target    `json:"target"`
	Action    Action    `json:"action"`
	Mode      Mode      `json:"mode"`
	Reason    Reason    `json:"reason"`
}

// Limits on commands.
const (
	MaxCommandBytes = 64 << 10
	MaxEvidence     = 256
	MaxCommandTTL   = 7 * 24 * time.Hour
)

// DecodeCommand strictly decodes one RevokeCommand v1 and validates it. It
// does not check signature or expiry: see Verifier and Expired.
func DecodeCommand(data []byte) (RevokeCommand, error) {
	var c RevokeCommand
	if len(data) > MaxCommandBytes {
		return c, fmt.Errorf("%w: %w", ErrInvalidCommand, &FieldError{Reason: fmt.Sprintf("command is %d bytes, limit %d", len(data), MaxCommandBytes)})
	}
	if err := decodeStrict(data, &c); err != nil {
		return c, fmt.Errorf("%w: %w", ErrInvalidCommand, err)
	}
	if err := c.Validate(); err != nil {
		return c, err
	}
	return c, nil
}

// Validate reports every problem of the command at once, wrapped in
// ErrInvalidCommand.
func (c *RevokeCommand) Validate() error {
	var errs fieldErrors
	checkID(&errs, "command_id", c.CommandID, true)
	if c.IssuedAt.IsZero() {
		errs.add("issued_at", "required")
	}
	switch {
	case c.ExpiresAt.IsZero():
		errs.add("expires_at", "required")
	case !c.IssuedAt.IsZero() && !c.ExpiresAt.After(c.IssuedAt):
		errs.add("expires_at", "must be after issued_at")
	case !c.IssuedAt.IsZero() && c.ExpiresAt.Sub(c.IssuedAt) > MaxCommandTTL:
		errs.add("expires_at", "more than %s after issued_at", MaxCommandTTL)
	}
	checkID(&errs, "issuer", c.Issuer, true)
	t := c.Target
	switch t.Kind {
	case TargetUser:
		checkID(&errs, "target.user_id", t.UserID, true)
	case TargetToken:
		if t.TokenID == "" && t.SealedToken == "" {
			errs.add("target.token_id", "a token target needs token_id or sealed_token")
		}
	case TargetSession:
		checkID(&errs, "target.session_id", t.SessionID, true)
	case TargetClient:
		checkID(&errs, "target.client_id", t.ClientID, true)
	case "":
		errs.add("target.kind", "required")
	default:
		errs.add("target.kind", "unknown target kind %q", truncate(string(t.Kind), 32))
	}
	checkID(&errs, "target.user_id", t.UserID, false)
	checkTokenID(&errs, "target.token_id", t.TokenID)
	checkID(&errs, "target.session_id", t.SessionID, false)
	checkID(&errs, "target.client_id", t.ClientID, false)
	if len(t.SealedToken) > 4096 {
		errs.add("target.sealed_token", "longer than 4096 bytes")
	}
	switch c.Action {
	case ActionRevoke, ActionRevokeAndReverify, ActionNotify:
	case "":
		errs.add("action", "required")
	default:
		errs.add("action", "unknown action %q", truncate(string(c.Action), 32))
	}
	switch c.Mode {
	case ModeEnforce, ModeDryRun:
	case "":
		errs.add("mode", "required")
	default:
		errs.add("mode", "unknown mode %q", truncate(string(c.Mode), 32))
	}
	r := c.Reason
	checkID(&errs, "reason.rule_id", r.RuleID, true)
	if r.RuleVersion < 0 {
		errs.add("reason.rule_version", "must not be negative")
	}
	switch r.Severity {
	case SeverityLow, SeverityMedium, SeverityHigh, SeverityCritical:
	case "":
		errs.add("reason.severity", "required")
	default:
		errs.add("reason.severity", "unknown severity %q", truncate(string(r.Severity), 32))
	}
	if len(r.Summary) > maxFreeTextLen {
		errs.add("reason.summary", "longer than %d bytes", maxFreeTextLen)
	}
	if len(r.Evidence) > MaxEvidence {
		errs.add("reason.evidence", "%d event ids, limit %d", len(r.Evidence), MaxEvidence)
	}
	for i, id := range r.Evidence {
		checkID(&errs, fmt.Sprintf("reason.evidence[%d]", i), id, true)
	}
	if r.Risk < 0 || math.IsNaN(r.Risk) || math.IsInf(r.Risk, 0) {
		errs.add("reason.risk", "must be a non-negative number")
	}
	if len(r.Signals) > MaxSignals {
		errs.add("reason.signals", "%d signals, limit %d", len(r.Signals), MaxSignals)
	}
	for i, sg := range r.Signals {
		checkID(&errs, fmt.Sprintf("reason.signals[%d].rule_id", i), sg.RuleID, true)
		if math.IsNaN(sg.Weight) || math.IsInf(sg.Weight, 0) {
			errs.add(fmt.Sprintf("reason.signals[%d].weight", i), "must be a number")
		}
		if sg.Time.IsZero() {
			errs.add(fmt.Sprintf("reason.signals[%d].time", i), "required")
		}
		if len(sg.Detail) > maxFreeTextLen {
			errs.add(fmt.Sprintf("reason.signals[%d].detail", i), "longer than %d bytes", maxFreeTextLen)
		}
		checkID(&errs, fmt.Sprintf("reason.signals[%d].event_id", i), sg.EventID, false)
	}
	validateContext(&errs, r.Context, r.Evidence)
	return errs.join(ErrInvalidCommand)
}

// Expired reports whether the command is past its expiry at now.
func (c *RevokeCommand) Expired(now time.Time) bool { return !now.Before(c.ExpiresAt) }

// Key is the Kafka key of the command (see Target.Key).
func (c *RevokeCommand) Key() []byte { return []byte(c.Target.Key()) }

// DetectionCommandID is the deterministic id of a detection's command: a
// hash of the rule id, rule version, target and the triggering event ids
// (order-insensitive), so a redelivered or replayed detection yields the
// same command and the consumer executes it once.
func DetectionCommandID(ruleID string, ruleVersion int, target Target, evidence []string) string {
	ev := slices.Clone(evidence)
	slices.Sort(ev)
	h := sha256.New()
	for _, part := range append([]string{
		"revoke-command/v1", ruleID, strconv.Itoa(ruleVersion),
		string(target.Kind), target.UserID, target.TokenID, target.SessionID, target.ClientID,
		strconv.FormatBool(target.IncludeDownscoped),
	}, ev...) {
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(part))))
		h.Write([]byte(part))
	}
	return "cmd_" + hex.EncodeToString(h.Sum(nil)[:16])
}
