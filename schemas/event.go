package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// EventType is the kind of an AuditEvent.
type EventType string

// The event types of AuditEvent v1.
const (
	EventLoginSuccess      EventType = "login.success"
	EventLoginFailure      EventType = "login.failure"
	EventMFAFailure        EventType = "mfa.failure"
	EventLogout            EventType = "logout"
	EventTokenIssued       EventType = "token.issued"
	EventTokenExchanged    EventType = "token.exchanged"
	EventTokenRefreshed    EventType = "token.refreshed"
	EventTokenUsed         EventType = "token.used"
	EventTokenRevoked      EventType = "token.revoked"
	EventFileDownload      EventType = "file.download"
	EventFilePreview       EventType = "file.preview"
	EventFileUpload        EventType = "file.upload"
	EventShareCreated      EventType = "share.created"
	EventPermissionChanged EventType = "permission.changed"
	EventPasswordChanged   EventType = "password.changed"
	EventPasswordReset     EventType = "password.reset"
)

// Event types that the vendor sources (producer/ingest/box, okta, ocsf)
// need and the types above cannot say. Each names what the source itself
// observed; the default rule pack does not read them yet.
const (
	// EventAccountLocked: the source locked the account, after repeated
	// failures or by an administrator (Okta user.account.lock, OCSF
	// Account Change "Lock").
	EventAccountLocked EventType = "account.locked"
	// EventDeviceAdded: the source saw the user sign in from a device it
	// had not seen for them before and added it to their devices (Box
	// ADD_LOGIN_ACTIVITY_DEVICE).
	EventDeviceAdded EventType = "device.added"
	// EventAlertRaised: the source's own threat detection raised an alert
	// about the user (Box SHIELD_ALERT); attrs carry its category, rule
	// and score.
	EventAlertRaised EventType = "alert.raised"
)

// Event types of Shared Signals (producer/ssf/receiver): what an IdP's
// CAEP 1.0 and RISC 1.0 events say about a user. A password update
// announced by CAEP credential-change arrives as password.changed, above,
// so the rules that read that type see it; every other signal is one of
// these, with the SET's details in attrs (ssf.*).
const (
	// EventSessionRevoked: CAEP session-revoked or RISC sessions-revoked;
	// the IdP ended the user's session (session_id, when the SET named
	// one) or all of them.
	EventSessionRevoked EventType = "session.revoked"
	// EventCredentialChanged: CAEP credential-change other than a
	// password update (attrs ssf.credential_type, ssf.change_type).
	EventCredentialChanged EventType = "credential.changed"
	// EventTokenClaimsChanged: CAEP token-claims-change (attrs
	// ssf.claim.<name>, each claim's new value as JSON).
	EventTokenClaimsChanged EventType = "token.claims_changed"
	// EventAccountDisabled: RISC account-disabled (attrs ssf.reason:
	// hijacking or bulk-account, when given).
	EventAccountDisabled EventType = "account.disabled"
	// EventCredentialCompromised: RISC credential-compromise (attrs
	// ssf.credential_type).
	EventCredentialCompromised EventType = "credential.compromised"
)

// EventTypes lists every known event type, in a stable order.
var EventTypes = []EventType{
	EventLoginSuccess, EventLoginFailure, EventMFAFailure, EventLogout,
	EventTokenIssued, EventTokenExchanged, EventTokenRefreshed, EventTokenUsed,
	EventTokenRevoked, EventFileDownload, EventFilePreview, EventFileUpload,
	EventShareCreated, EventPermissionChanged, EventPasswordChanged, EventPasswordReset,
	// The vendor sources' types.
	EventAccountLocked, EventDeviceAdded, EventAlertRaised,
	// Shared Signals.
	EventSessionRevoked, EventCredentialChanged, EventTokenClaimsChanged, EventAccountDisabled, EventCredentialCompromised,
}

// Known reports whether t is a type of AuditEvent v1.
func (t EventType) Known() bool {
	for _, k := range EventTypes {
		if t == k {
			return true
		}
	}
	return false
}

// Geo is where an event came from, as resolved by the source.
type Geo struct {
	Country string   `json:"country,omitempty"`
	City    string   `json:"city,omitempty"`
	Lat     *float64 `json:"lat,omitempty"`
	Lon     *float64 `json:"lon,omitempty"`
	ASN     uint32   `json:"asn,omitempty"`
	// Org is the organisation that holds the ASN ("Amazon.com, Inc.").
	Org string `json:"org,omitempty"`
	// Network is the kind of network the address belongs to: one of
	// the Network* constants, empty when unknown.
	Network string `json:"network,omitempty"`
}

// Kinds of network an address belongs to (Geo.Network).
const (
	// NetworkHosting: a cloud, VPS or hosting provider; people do not sit
	// there, their tools and attackers' infrastructure do.
	NetworkHosting = "hosting"
	// NetworkCellular: a mobile carrier, usually behind carrier-grade NAT.
	NetworkCellular = "cellular"
	// NetworkResidential: a consumer broadband provider.
	NetworkResidential = "residential"
	// NetworkBusiness: a business ISP, office or campus network.
	NetworkBusiness = "business"
	// NetworkVPN: a VPN or proxy provider's egress.
	NetworkVPN = "vpn"
)

// Networks lists the kinds of network, for validation.
var Networks = []string{NetworkHosting, NetworkCellular, NetworkResidential, NetworkBusiness, NetworkVPN}

// Resource is what an event acted on.
type Resource struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// AuditEvent is a normalised identity or activity event (AuditEvent v1).
// TokenID and ParentTokenID are token fingerprints (see Fingerprint), never
// raw tokens.
type AuditEvent struct {
	ID            string            `json:"id"`
	Time          time.Time         `json:"time"`
	Type          EventType         `json:"type"`
	UserID        string            `json:"user_id"`
	SessionID     string            `json:"session_id,omitempty"`
	TokenID       string            `json:"token_id,omitempty"`
	ParentTokenID string            `json:"parent_token_id,omitempty"`
	ClientID      string            `json:"client_id,omitempty"`
	Scopes        []string          `json:"scopes,omitempty"`
	IP            string            `json:"ip,omitempty"`
	UserAgent     string            `json:"user_agent,omitempty"`
	DeviceID      string            `json:"device_id,omitempty"`
	Geo           *Geo              `json:"geo,omitempty"`
	Resource      *Resource         `json:"resource,omitempty"`
	Bytes         int64             `json:"bytes,omitempty"`
	Source        string            `json:"source,omitempty"`
	Attrs         map[string]string `json:"attrs,omitempty"`
}

// Limits on event fields. They keep one event small and bound what a
// malicious source can make a reader hold.
const (
	MaxIDLen       = 256
	MaxEventBytes  = 64 << 10
	MaxScopes      = 64
	MaxAttrs       = 64
	MaxAttrLen     = 1024
	maxFreeTextLen = 1024
)

// DecodeEvent strictly decodes one AuditEvent v1 from JSON and validates it.
// Unknown fields, keys given twice, unknown types, missing required
// fields, wrong types and trailing data are rejected; the error wraps
// ErrInvalidEvent and one *FieldError per problem naming the field.
func DecodeEvent(data []byte) (AuditEvent, error) {
	var ev AuditEvent
	if err := checkEventSize(data); err != nil {
		return ev, err
	}
	if !decodeEventFast(data, &ev) {
		ev = AuditEvent{}
		if err := decodeStrict(data, &ev); err != nil {
			return ev, fmt.Errorf("%w: %w", ErrInvalidEvent, err)
		}
	}
	if err := ev.Validate(); err != nil {
		return ev, err
	}
	return ev, nil
}

// strictUnmarshal decodes exactly one JSON value, rejecting unknown fields
// and anything after the value.
func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return &FieldError{Reason: "trailing data after the JSON value"}
	}
	return nil
}

// Validate reports every problem of the event at once, wrapped in
// ErrInvalidEvent.
func (e *AuditEvent) Validate() error {
	var errs fieldErrors
	checkID(&errs, "id", e.ID, true)
	if e.Time.IsZero() {
		errs.add("time", "required (RFC 3339)")
	}
	switch {
	case e.Type == "":
		errs.add("type", "required")
	case !e.Type.Known():
		errs.add("type", "unknown event type %q", truncate(string(e.Type), 64))
	}
	checkID(&errs, "user_id", e.UserID, true)
	checkID(&errs, "session_id", e.SessionID, false)
	checkTokenID(&errs, "token_id", e.TokenID)
	checkTokenID(&errs, "parent_token_id", e.ParentTokenID)
	if e.ParentTokenID != "" && e.TokenID == "" {
		errs.add("token_id", "required when parent_token_id is set")
	}
	if e.Type == EventTokenExchanged && (e.TokenID == "" || e.ParentTokenID == "") {
		errs.add("parent_token_id", "token.exchanged needs token_id and parent_token_id")
	}
	checkID(&errs, "client_id", e.ClientID, false)
	checkID(&errs, "device_id", e.DeviceID, false)
	if len(e.Scopes) > MaxScopes {
		errs.add("scopes", "%d scopes, limit %d", len(e.Scopes), MaxScopes)
	}
	for i, s := range e.Scopes {
		if s == "" || len(s) > MaxIDLen || strings.ContainsAny(s, " \t\r\n") {
			errs.add(fmt.Sprintf("scopes[%d]", i), "must be a non-empty scope token without spaces")
		}
	}
	if e.IP != "" {
		if _, err := netip.ParseAddr(e.IP); err != nil {
			errs.add("ip", "not an IP address")
		}
	}
	if len(e.UserAgent) > maxFreeTextLen {
		errs.add("user_agent", "longer than %d bytes", maxFreeTextLen)
	}
	if g := e.Geo; g != nil {
		if g.Country != "" && !isCountryCode(g.Country) {
			errs.add("geo.country", "must be an ISO 3166-1 alpha-2 code")
		}
		if (g.Lat == nil) != (g.Lon == nil) {
			errs.add("geo.lat", "lat and lon come together")
		}
		if g.Lat != nil && (math.IsNaN(*g.Lat) || *g.Lat < -90 || *g.Lat > 90) {
			errs.add("geo.lat", "out of range [-90, 90]")
		}
		if g.Lon != nil && (math.IsNaN(*g.Lon) || *g.Lon < -180 || *g.Lon > 180) {
			errs.add("geo.lon", "out of range [-180, 180]")
		}
		if len(g.City) > MaxIDLen {
			errs.add("geo.city", "longer than %d bytes", MaxIDLen)
		}
		if len(g.Org) > MaxIDLen {
			errs.add("geo.org", "longer than %d bytes", MaxIDLen)
		}
		if g.Network != "" && !slices.Contains(Networks, g.Network) {
			errs.add("geo.network", "want one of %s", strings.Join(Networks, ", "))
		}
	}
	if r := e.Resource; r != nil {
		checkID(&errs, "resource.type", r.Type, true)
		checkID(&errs, "resource.id", r.ID, true)
	}
	if e.Bytes < 0 {
		errs.add("bytes", "must not be negative")
	}
	checkID(&errs, "source", e.Source, false)
	if len(e.Attrs) > MaxAttrs {
		errs.add("attrs", "%d attributes, limit %d", len(e.Attrs), MaxAttrs)
	}
	for k, v := range e.Attrs {
		if k == "" || len(k) > MaxIDLen || len(v) > MaxAttrLen {
			errs.add("attrs."+truncate(k, 64), "key must be 1-%d bytes and value at most %d", MaxIDLen, MaxAttrLen)
		}
		if strings.ContainsRune(v, utf8.RuneError) {
			// U+FFFD is what lossy decoding upstream left of bytes that
			// were not text.
			errs.add("attrs."+truncate(k, 64), "contains U+FFFD (bytes that were not UTF-8)")
		}
	}
	return errs.join(ErrInvalidEvent)
}

func checkID(errs *fieldErrors, field, v string, required bool) {
	switch {
	case v == "" && required:
		errs.add(field, "required")
	case len(v) > MaxIDLen:
		errs.add(field, "longer than %d bytes", MaxIDLen)
	case hasBadIDRune(v):
		errs.add(field, "contains control, zero-width, bidirectional or invalid characters")
	}
}

// checkTokenID rejects values that are not token ids but tokens (see
// TokenIDProblem), so a misconfigured source cannot leak tokens downstream.
func checkTokenID(errs *fieldErrors, field, v string) {
	if v == "" {
		return
	}
	n := len(*errs)
	checkID(errs, field, v, false)
	if len(*errs) > n {
		return
	}
	if reason := TokenIDProblem(v); reason != "" {
		errs.add(field, "%s", reason)
	}
}

func isCountryCode(s string) bool {
	return len(s) == 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z'
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Key is the Kafka key of the event: its user id.
func (e *AuditEvent) Key() []byte { return []byte(e.UserID) }

// checkEventSize refuses data longer than MaxEventBytes.
func checkEventSize(data []byte) error {
	if len(data) > MaxEventBytes {
		return fmt.Errorf("%w: %w", ErrInvalidEvent, &FieldError{Reason: fmt.Sprintf("event is %d bytes, limit %d", len(data), MaxEventBytes)})
	}
	return nil
}

// PeekEventType returns the type of the AuditEvent in data without
// decoding the rest: a reader that wants one type (the consumer's lineage
// follower wants token exchanges) skips every other event at a fraction of
// DecodeEvent's cost, and decodes what it keeps with DecodeEvent, which
// checks everything this does not. It reads the top-level members up to
// the first named exactly "type" and stops there; "" when there is none.
// Data that does not start as a JSON object, or a "type" that is not a
// string, is an error wrapping ErrInvalidEvent. The type is not checked
// against the known types.
func PeekEventType(data []byte) (EventType, error) {
	if err := checkEventSize(data); err != nil {
		return "", err
	}
	p := peekers.Get().(*peeker)
	defer peekers.Put(p)
	p.r.Reset(data)
	p.dec.Reset(&p.r)
	t, err := p.peekType()
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidEvent, err)
	}
	return t, nil
}

// peeker is a reusable reader of an event's top-level members.
type peeker struct {
	r   bytes.Reader
	dec jsontext.Decoder
}

var peekers = sync.Pool{New: func() any { return new(peeker) }}

func (p *peeker) peekType() (EventType, error) {
	tok, err := p.dec.ReadToken()
	if err != nil {
		return "", err
	}
	if tok.Kind() != '{' {
		return "", errors.New("an event is a JSON object")
	}
	for {
		tok, err := p.dec.ReadToken()
		if err != nil {
			return "", err
		}
		if tok.Kind() == '}' {
			return "", nil
		}
		if tok.String() != "type" {
			if err := p.dec.SkipValue(); err != nil {
				return "", err
			}
			continue
		}
		val, err := p.dec.ReadToken()
		if err != nil {
			return "", err
		}
		if val.Kind() != '"' {
			return "", &FieldError{Field: "type", Reason: "must be a string"}
		}
		return EventType(val.String()), nil
	}
}
