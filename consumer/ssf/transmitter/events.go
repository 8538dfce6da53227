package transmitter

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/internal/ssf"
	"github.com/revoked-dev/revoked/schemas"
)

// Events this transmitter emits about revocations, and the ones it
// supports on every stream (SSF's verification event is always allowed,
// SSF 1.0 section 8.1.4).
var (
	revocationEvents = []string{ssf.EventSessionRevoked, ssf.EventCredentialChange}
	supportedEvents  = append(append([]string(nil), revocationEvents...), ssf.EventVerification)
)

// Subject formats of SubjectConfig.Format.
const (
	SubjectAuto   = "auto"
	SubjectEmail  = "email"
	SubjectIssSub = "iss_sub"
)

// SubjectConfig says how a revoked user becomes the sub_id of a SET
// (RFC 9493).
type SubjectConfig struct {
	Format string `flag:"format" env:"FORMAT" yaml:"format" usage:"sub_id format of a revoked user: auto (email when the user id is an e-mail address, else iss_sub), email or iss_sub"`
	Issuer string `flag:"issuer" env:"ISSUER" yaml:"issuer" usage:"iss of iss_sub subjects: the issuer (IdP) whose sub the user ids are"`
}

// Validate reports every problem at once.
func (c SubjectConfig) Validate() error {
	var p config.Problems
	switch c.Format {
	case SubjectAuto, SubjectIssSub:
		p.Check(c.Issuer != "", "issuer", "required for sub_id format %s: the issuer whose sub the user ids are", c.Format)
	case SubjectEmail:
	default:
		p.Addf("format", "want auto, email or iss_sub, got %q", c.Format)
	}
	return p.Err()
}

// subject is the sub_id of a revocation row: the user (email or iss_sub),
// with the session as a complex subject when a session was the target.
// It reports false when the row names no user this format can express.
func (c SubjectConfig) subject(r schemas.AuditRow) (ssf.Subject, bool) {
	if r.UserID == "" {
		return ssf.Subject{}, false
	}
	var user ssf.Subject
	switch {
	case c.Format == SubjectEmail || (c.Format == SubjectAuto && ssf.IsEmail(r.UserID)):
		if !ssf.IsEmail(r.UserID) {
			return ssf.Subject{}, false
		}
		user = ssf.EmailSubject(r.UserID)
	default:
		user = ssf.IssSubSubject(c.Issuer, r.UserID)
	}
	if r.TargetKind == schemas.TargetSession && r.SessionID != "" {
		s := ssf.OpaqueSubject(r.SessionID)
		return ssf.ComplexSubject(map[string]*ssf.Subject{"user": &user, "session": &s}), true
	}
	return user, true
}

// Credential is what a credential-change event says changed.
type Credential struct {
	Type   string
	Change string
}

// CredentialRules maps a rule id to the credential change that caused
// its revocations.
type CredentialRules map[string]Credential

// DefaultCredentialRules are the detector's rules whose cause is a
// credential, in the setting's form rule=credential_type/change_type: a
// password changed or reset (update), and a password found guessed
// (revoke: it must not be trusted again).
func DefaultCredentialRules() []string {
	return []string{
		"token_after_password_change=password/update",
		"password_reset_takeover=password/update",
		"brute_force_success=password/revoke",
		"credential_stuffing=password/revoke",
		"slow_guessing_success=password/revoke",
	}
}

// ParseCredentialRules reads items of the form
// rule=credential_type/change_type.
func ParseCredentialRules(items []string) (CredentialRules, error) {
	out := CredentialRules{}
	for _, part := range items {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, rest, ok := strings.Cut(part, "=")
		typ, change, ok2 := strings.Cut(rest, "/")
		id, typ, change = strings.TrimSpace(id), strings.TrimSpace(typ), strings.TrimSpace(change)
		switch {
		case !ok || !ok2 || id == "" || typ == "":
			return nil, fmt.Errorf("%q: want rule=credential_type/change_type", part)
		case !contains(ssf.ChangeTypes, change):
			return nil, fmt.Errorf("%q: change_type must be one of %s", part, strings.Join(ssf.ChangeTypes, ", "))
		}
		out[id] = Credential{Type: typ, Change: change}
	}
	return out, nil
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// plannedSET is one SET to send about a revocation, before it is signed
// for a stream.
type plannedSET struct {
	eventType string
	payload   any
}

// txn links the SETs of one cause (SSF 1.0 section 4.1.9): a campaign's
// id for its commands (issuer campaign:<id>), else the command id, which
// the session-revoked and credential-change SETs of a revocation share.
func txn(r schemas.AuditRow) string {
	if strings.HasPrefix(r.Issuer, "campaign:") {
		return r.Issuer
	}
	return r.CommandID
}

// initiator is the CAEP initiating_entity of a revocation: an operator
// (manual commands and campaigns), another system (a signal received
// from an IdP, a global token revocation request) or the detector's
// policy.
func initiator(r schemas.AuditRow) string {
	switch {
	case r.RuleID == "manual" || strings.HasPrefix(r.Issuer, "manual:") || strings.HasPrefix(r.Issuer, "campaign:"):
		return ssf.InitiatedByAdmin
	case strings.HasPrefix(r.RuleID, "ssf_") || r.RuleID == "global_token_revocation":
		return ssf.InitiatedBySystem
	}
	return ssf.InitiatedByPolicy
}

// maxReason bounds reason_admin.
const maxReason = 512

// reasonAdmin says what was revoked and why, for the receiver's
// administrators; the CAEP interoperability profile requires it non-empty.
// It names no token.
func reasonAdmin(r schemas.AuditRow) string {
	what := "revoked the user's tokens"
	switch r.TargetKind {
	case schemas.TargetSession:
		what = "revoked a session's tokens"
	case schemas.TargetToken:
		what = "revoked a token of the user"
	}
	if r.IncludeDownscoped {
		what += " and their downscoped tokens"
	}
	s := fmt.Sprintf("%s (rule %s, command %s)", what, r.RuleID, r.CommandID)
	if sum := strings.TrimSpace(r.Summary); sum != "" {
		s += ": " + sum
	}
	return cut(s, maxReason)
}

// cut shortens s to at most n bytes on a rune boundary.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// plan is the SETs a revocation row makes: session-revoked always, and
// credential-change when its rule's cause was a credential.
func (t *Transmitter) plan(r schemas.AuditRow) []plannedSET {
	common := ssf.CAEPCommon{
		EventTimestamp:   r.Time.Unix(),
		InitiatingEntity: initiator(r),
		ReasonAdmin:      map[string]string{"en": reasonAdmin(r)},
	}
	out := []plannedSET{{eventType: ssf.EventSessionRevoked, payload: ssf.SessionRevoked{CAEPCommon: common}}}
	if c, ok := t.credentials[r.RuleID]; ok {
		out = append(out, plannedSET{eventType: ssf.EventCredentialChange, payload: ssf.CredentialChange{
			CredentialType: c.Type, ChangeType: c.Change, CAEPCommon: common,
		}})
	}
	return out
}

// setID is the jti of the SET of eventType about command on stream:
// deterministic, so a revocation delivered again makes the same SET,
// and unique per stream and event (RFC 8417 section 2.2).
func setID(stream, command, eventType string) string {
	h := sha256.New()
	for _, p := range []string{"ssf-set/v1", stream, command, eventType} {
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(p))))
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}
