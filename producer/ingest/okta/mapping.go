package okta

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/revoked-dev/revoked/producer/ingest"
	"github.com/revoked-dev/revoked/producer/ingest/source"
	"github.com/revoked-dev/revoked/schemas"
)

// Values of Mapping.UserKey.
const (
	// UserKeyID uses Okta's user id ("00u1qw1mqitPHM8AJ0g7").
	UserKeyID = "id"
	// UserKeyLogin uses the user's login (actor.alternateId).
	UserKeyLogin = "login"
)

// SourceName names Okta in AuditEvent.Source.
const SourceName = "okta"

// Outcome results of a LogEvent.
const (
	resultSuccess = "SUCCESS"
	resultFailure = "FAILURE"
	resultDeny    = "DENY"
)

// Mapping turns Okta LogEvents into AuditEvents. The zero value keys
// events by Okta user id.
type Mapping struct {
	// UserKey picks user_id: UserKeyID (default) or UserKeyLogin.
	UserKey string
}

// eventType decides the AuditEvent type of e, or why it has none.
//
//   - user.session.start: login.success, or login.failure (Okta Classic
//     writes a failed sign-in as a failed session start);
//   - user.authentication.auth_via_mfa failing: mfa.failure;
//   - user.authentication.verify failing (Identity Engine): login.failure
//     for a password, mfa.failure for any other authenticator;
//   - user.authentication.auth_via_* (AD agent, LDAP agent, IdP, social,
//     RADIUS, ...) failing: login.failure;
//   - user.authentication.sso succeeding: token.issued, for the app;
//   - user.mfa.okta_verify.deny_push(_upgrade_needed), user.mfa.okta_verify
//     failing, user.mfa.attempt_bypass: mfa.failure;
//   - user.account.update_password: password.changed;
//     user.account.reset_password: password.reset;
//   - user.session.end: logout;
//   - user.account.lock, user.account.lock.limit: account.locked.
//
// A successful authentication step is not a login of its own (its session
// start is), and a failed SSO is the app's refusal, not a guessed
// password: both are unmapped, like every other type.
func eventType(e *LogEvent) (schemas.EventType, error) {
	result := ""
	if e.Outcome != nil {
		result = strings.ToUpper(e.Outcome.Result)
	}
	failed := result == resultFailure || result == resultDeny
	et := e.EventType
	switch {
	case et == "user.session.start" && result == resultSuccess:
		return schemas.EventLoginSuccess, nil
	case et == "user.session.start" && failed:
		return schemas.EventLoginFailure, nil
	case et == "user.session.end":
		return schemas.EventLogout, nil
	case et == "user.authentication.sso" && (result == resultSuccess || result == "ALLOW"):
		return schemas.EventTokenIssued, nil
	case et == "user.authentication.auth_via_mfa" && failed:
		return schemas.EventMFAFailure, nil
	case et == "user.authentication.verify" && failed:
		if passwordStep(e) {
			return schemas.EventLoginFailure, nil
		}
		return schemas.EventMFAFailure, nil
	case strings.HasPrefix(et, "user.authentication.auth_via_") && failed:
		return schemas.EventLoginFailure, nil
	case et == "user.mfa.okta_verify.deny_push", et == "user.mfa.okta_verify.deny_push_upgrade_needed",
		et == "user.mfa.attempt_bypass":
		return schemas.EventMFAFailure, nil
	case et == "user.mfa.okta_verify" && failed:
		return schemas.EventMFAFailure, nil
	case et == "user.account.update_password" && result == resultSuccess:
		return schemas.EventPasswordChanged, nil
	case et == "user.account.reset_password" && result == resultSuccess:
		return schemas.EventPasswordReset, nil
	case et == "user.account.lock", et == "user.account.lock.limit":
		return schemas.EventAccountLocked, nil
	}
	if mappedType(et) {
		return "", ingest.Unmapped(et, "Okta %s with outcome %q has no AuditEvent", et, result)
	}
	return "", ingest.Unmapped(et, "Okta event type %q has no AuditEvent type", et)
}

// mappedType reports whether some outcome of event type et is mapped.
func mappedType(et string) bool {
	switch et {
	case "user.session.start", "user.session.end", "user.authentication.sso", "user.authentication.verify",
		"user.mfa.okta_verify", "user.account.update_password", "user.account.reset_password":
		return true
	}
	return strings.HasPrefix(et, "user.authentication.auth_via_")
}

// passwordStep reports whether a verification was of the password.
func passwordStep(e *LogEvent) bool {
	if e.AuthenticationContext != nil && strings.EqualFold(e.AuthenticationContext.CredentialType, "PASSWORD") {
		return true
	}
	if e.DebugContext != nil {
		var factor string
		if raw, ok := e.DebugContext.DebugData["factor"]; ok && json.Unmarshal(raw, &factor) == nil {
			return strings.Contains(strings.ToUpper(factor), "PASSWORD")
		}
	}
	return false
}

// Event maps a LogEvent (rec.Raw). A type without an AuditEvent, and an
// event of no user, are unmapped (ingest.ErrUnmapped); a malformed event
// is an error.
func (m Mapping) Event(rec source.Record) (schemas.AuditEvent, error) {
	var e LogEvent
	if err := json.Unmarshal(rec.Raw, &e); err != nil {
		return schemas.AuditEvent{}, fmt.Errorf("decoding Okta LogEvent: %w", err)
	}
	if e.UUID == "" {
		return schemas.AuditEvent{}, errors.New("okta LogEvent without uuid")
	}
	typ, err := eventType(&e)
	if err != nil {
		return schemas.AuditEvent{}, err
	}
	at, err := time.Parse(time.RFC3339Nano, e.Published)
	if err != nil {
		return schemas.AuditEvent{}, fmt.Errorf("published: %w", err)
	}
	user := e.user()
	if user == nil {
		return schemas.AuditEvent{}, ingest.Unmapped(e.EventType, "Okta event %s names no user in actor or target", e.UUID)
	}
	attrs := map[string]string{"okta_event_type": e.EventType}
	uid := user.ID
	switch {
	case m.UserKey == UserKeyLogin && user.AlternateID != "":
		uid = user.AlternateID
	case m.UserKey == UserKeyLogin:
		return schemas.AuditEvent{}, ingest.Unmapped(e.EventType, "Okta event %s: user %s has no login", e.UUID, user.ID)
	case strings.EqualFold(user.ID, "unknown") && user.AlternateID != "":
		// A sign-in attempt for a login Okta does not know: keep the
		// attempts on different logins apart.
		uid = user.AlternateID
		attrs["okta_unknown_user"] = "true"
	}
	if user.AlternateID != "" {
		attrs["login"] = user.AlternateID
	}
	if e.Outcome != nil {
		set(attrs, "outcome", e.Outcome.Result)
		set(attrs, "outcome_reason", e.Outcome.Reason)
	}
	if e.Transaction != nil {
		set(attrs, "okta_transaction_id", e.Transaction.ID)
	}
	ev := schemas.AuditEvent{
		ID:     "okta:" + e.UUID,
		Time:   at.UTC(),
		Type:   typ,
		UserID: uid,
		Source: SourceName,
		Attrs:  attrs,
	}
	if a := e.AuthenticationContext; a != nil && a.ExternalSessionID != "" && !strings.EqualFold(a.ExternalSessionID, "unknown") {
		ev.SessionID = a.ExternalSessionID
	}
	if e.Device != nil {
		ev.DeviceID = e.Device.ID
	}
	if c := e.Client; c != nil {
		if a, err := netip.ParseAddr(strings.TrimSpace(c.IPAddress)); err == nil {
			ev.IP = a.Unmap().String()
		}
		if c.UserAgent != nil {
			ev.UserAgent = schemas.CutUTF8(c.UserAgent.RawUserAgent, 1024)
		}
		set(attrs, "okta_zone", c.Zone)
		if g := c.GeographicalContext; g != nil && g.Geolocation != nil && g.Geolocation.Lat != nil && g.Geolocation.Lon != nil &&
			validCoord(*g.Geolocation.Lat, 90) && validCoord(*g.Geolocation.Lon, 180) {
			ev.Geo = &schemas.Geo{Lat: g.Geolocation.Lat, Lon: g.Geolocation.Lon, City: schemas.CutUTF8(g.City, schemas.MaxIDLen)}
		}
	}
	if s := e.SecurityContext; s != nil {
		if s.ASNumber != nil && *s.ASNumber > 0 && *s.ASNumber <= math.MaxUint32 {
			if ev.Geo == nil {
				ev.Geo = &schemas.Geo{}
			}
			ev.Geo.ASN = uint32(*s.ASNumber)
			ev.Geo.Org = schemas.CutUTF8(s.ASOrg, schemas.MaxIDLen)
		}
		if s.IsProxy != nil {
			attrs["okta_is_proxy"] = strconv.FormatBool(*s.IsProxy)
		}
	}
	if typ == schemas.EventTokenIssued {
		for _, t := range e.Target {
			if t.Type == "AppInstance" && t.ID != "" {
				ev.ClientID = t.ID
				set(attrs, "okta_app", t.DisplayName)
				break
			}
		}
	}
	return ev, nil
}

// user is the user the event is about: the actor when it is a user, else
// the first user among the targets.
func (e *LogEvent) user() *Actor {
	if e.Actor != nil && strings.EqualFold(e.Actor.Type, "User") && e.Actor.ID != "" {
		return e.Actor
	}
	for i := range e.Target {
		if strings.EqualFold(e.Target[i].Type, "User") && e.Target[i].ID != "" {
			return &e.Target[i]
		}
	}
	return nil
}

func set(attrs map[string]string, k, v string) {
	if v != "" {
		attrs[k] = schemas.CutUTF8(v, schemas.MaxAttrLen)
	}
}

func validCoord(v, limit float64) bool { return !math.IsNaN(v) && v >= -limit && v <= limit }

// record reads the fields of a LogEvent a poller needs before mapping.
func record(raw json.RawMessage) source.Record {
	var head struct {
		UUID      string `json:"uuid"`
		EventType string `json:"eventType"`
		Published string `json:"published"`
	}
	_ = json.Unmarshal(raw, &head)
	rec := source.Record{ID: head.UUID, Type: head.EventType, Raw: raw}
	if t, err := time.Parse(time.RFC3339Nano, head.Published); err == nil {
		rec.Time = t
	}
	return rec
}
