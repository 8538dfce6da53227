package ssf

// Event type URIs this package knows (CAEP 1.0 section 3, RISC 1.0
// section 2, SSF 1.0 sections 8.1.4 and 8.1.5).
const (
	// CAEP: https://openid.net/specs/openid-caep-1_0-final.html
	EventSessionRevoked    = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
	EventTokenClaimsChange = "https://schemas.openid.net/secevent/caep/event-type/token-claims-change"
	EventCredentialChange  = "https://schemas.openid.net/secevent/caep/event-type/credential-change"

	// RISC: https://openid.net/specs/openid-risc-1_0-final.html
	EventAccountDisabled      = "https://schemas.openid.net/secevent/risc/event-type/account-disabled"
	EventCredentialCompromise = "https://schemas.openid.net/secevent/risc/event-type/credential-compromise"
	// EventSessionsRevoked is deprecated by RISC 1.0 in favour of CAEP's
	// session-revoked; transmitters still send it.
	EventSessionsRevoked = "https://schemas.openid.net/secevent/risc/event-type/sessions-revoked"

	// SSF: https://openid.net/specs/openid-sharedsignals-framework-1_0-final.html
	EventVerification  = "https://schemas.openid.net/secevent/ssf/event-type/verification"
	EventStreamUpdated = "https://schemas.openid.net/secevent/ssf/event-type/stream-updated"
)

// Delivery method URIs of a stream's delivery object (SSF 1.0 section 6).
const (
	DeliveryPush = "urn:ietf:rfc:8935"
	DeliveryPoll = "urn:ietf:rfc:8936"
)

// Media types and the explicit type of a SET (RFC 8417 section 2.3,
// RFC 8935 section 2).
const (
	// TypSecEvent is the "typ" header of every SSF SET.
	TypSecEvent = "secevent+jwt"
	// ContentTypeSET is the Content-Type of a pushed SET.
	ContentTypeSET = "application/secevent+jwt"
)

// Initiating entities of CAEP's optional initiating_entity claim.
const (
	InitiatedByAdmin  = "admin"
	InitiatedByUser   = "user"
	InitiatedByPolicy = "policy"
	InitiatedBySystem = "system"
)

// Credential types of CAEP's credential-change (and RISC's
// credential-compromise, which takes the same values).
var CredentialTypes = []string{
	"password", "pin", "x509", "fido2-platform", "fido2-roaming", "fido-u2f",
	"verifiable-credential", "phone-voice", "phone-sms", "app",
}

// Change types of CAEP's credential-change.
var ChangeTypes = []string{"create", "revoke", "update", "delete"}

// CAEPCommon are the optional claims every CAEP event may carry (CAEP 1.0
// section 2). Embed it in an event's payload.
type CAEPCommon struct {
	// EventTimestamp is when the event happened, in seconds since the
	// epoch.
	EventTimestamp int64 `json:"event_timestamp,omitempty"`
	// InitiatingEntity is one of the InitiatedBy* values.
	InitiatingEntity string `json:"initiating_entity,omitempty"`
	// ReasonAdmin and ReasonUser map BCP 47 language tags to messages.
	ReasonAdmin map[string]string `json:"reason_admin,omitempty"`
	ReasonUser  map[string]string `json:"reason_user,omitempty"`
}

// SessionRevoked is the payload of CAEP session-revoked: no claims of its
// own. The CAEP interoperability profile requires reason_admin.
type SessionRevoked struct {
	CAEPCommon
}

// CredentialChange is the payload of CAEP credential-change.
type CredentialChange struct {
	// CredentialType is one of CredentialTypes (or one both ends agree on).
	CredentialType string `json:"credential_type"`
	// ChangeType is one of ChangeTypes.
	ChangeType   string `json:"change_type"`
	FriendlyName string `json:"friendly_name,omitempty"`
	X509Issuer   string `json:"x509_issuer,omitempty"`
	X509Serial   string `json:"x509_serial,omitempty"`
	FIDO2AAGUID  string `json:"fido2_aaguid,omitempty"`
	CAEPCommon
}

// TokenClaimsChange is the payload of CAEP token-claims-change.
type TokenClaimsChange struct {
	// Claims are the changed claims with their new values (required).
	Claims map[string]any `json:"claims"`
	CAEPCommon
}

// AccountDisabled is the payload of RISC account-disabled.
type AccountDisabled struct {
	// Reason is "hijacking" or "bulk-account", or empty.
	Reason string `json:"reason,omitempty"`
	// Subject is where RISC transmitters that predate SSF's top-level
	// sub_id put the subject.
	Subject *Subject `json:"subject,omitempty"`
}

// CredentialCompromise is the payload of RISC credential-compromise.
type CredentialCompromise struct {
	// CredentialType takes the values of CAEP's credential_type
	// (required).
	CredentialType string            `json:"credential_type"`
	EventTimestamp int64             `json:"event_timestamp,omitempty"`
	ReasonAdmin    map[string]string `json:"reason_admin,omitempty"`
	ReasonUser     map[string]string `json:"reason_user,omitempty"`
	Subject        *Subject          `json:"subject,omitempty"`
}

// SessionsRevoked is the payload of RISC sessions-revoked: no claims of
// its own (Subject as AccountDisabled's).
type SessionsRevoked struct {
	Subject *Subject `json:"subject,omitempty"`
}

// Verification is the payload of SSF's verification event.
type Verification struct {
	State string `json:"state,omitempty"`
}

// StreamUpdated is the payload of SSF's stream-updated event.
type StreamUpdated struct {
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}
