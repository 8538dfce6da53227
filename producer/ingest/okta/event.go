// Package okta reads the Okta System Log (GET /api/v1/logs) into the
// pipeline: a polling request from `since`, then the `next` links Okta
// gives (the documented way to follow the log without skipping or
// repeating events), deduplicated on `uuid`, within Okta's rate limits
// (X-Rate-Limit-Limit, -Remaining, -Reset), authenticated with an SSWS
// API token or an OAuth 2.0 access token. A mapping turns sign-in, MFA,
// password, session and lock events into AuditEvents; other event types
// are kept on the unmapped topic.
package okta

import (
	"encoding/json"
)

// Format names Okta's LogEvent in the unmapped topic's headers.
const Format = "okta-log-event"

// LogEvent is an Okta System Log event, the parts the mapping reads.
type LogEvent struct {
	UUID                  string                 `json:"uuid"`
	Published             string                 `json:"published"`
	EventType             string                 `json:"eventType"`
	Version               string                 `json:"version"`
	Severity              string                 `json:"severity"`
	LegacyEventType       string                 `json:"legacyEventType"`
	DisplayMessage        string                 `json:"displayMessage"`
	Actor                 *Actor                 `json:"actor"`
	Client                *LogClient             `json:"client"`
	Device                *Device                `json:"device"`
	Outcome               *Outcome               `json:"outcome"`
	Target                []Actor                `json:"target"`
	Transaction           *Transaction           `json:"transaction"`
	DebugContext          *DebugContext          `json:"debugContext"`
	AuthenticationContext *AuthenticationContext `json:"authenticationContext"`
	SecurityContext       *SecurityContext       `json:"securityContext"`
}

// Actor is an event's actor, or one of its targets.
type Actor struct {
	ID          string `json:"id"`
	Type        string `json:"type"`
	AlternateID string `json:"alternateId"`
	DisplayName string `json:"displayName"`
}

// LogClient is the HTTP client that made the request.
type LogClient struct {
	UserAgent *struct {
		RawUserAgent string `json:"rawUserAgent"`
		OS           string `json:"os"`
		Browser      string `json:"browser"`
	} `json:"userAgent"`
	GeographicalContext *GeographicalContext `json:"geographicalContext"`
	Zone                string               `json:"zone"`
	IPAddress           string               `json:"ipAddress"`
	Device              string               `json:"device"`
	ID                  string               `json:"id"`
}

// GeographicalContext is where Okta places the client.
type GeographicalContext struct {
	City        string `json:"city"`
	State       string `json:"state"`
	Country     string `json:"country"`
	PostalCode  string `json:"postalCode"`
	Geolocation *struct {
		Lat *float64 `json:"lat"`
		Lon *float64 `json:"lon"`
	} `json:"geolocation"`
}

// Device is the device of the event (Okta Identity Engine).
type Device struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	OSPlatform string `json:"os_platform"`
}

// Outcome is the result of the action.
type Outcome struct {
	Result string `json:"result"`
	Reason string `json:"reason"`
}

// Transaction groups events of one request.
type Transaction struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// DebugContext carries the debug data.
type DebugContext struct {
	DebugData map[string]json.RawMessage `json:"debugData"`
}

// AuthenticationContext says how the actor authenticated.
type AuthenticationContext struct {
	AuthenticationProvider string `json:"authenticationProvider"`
	CredentialProvider     string `json:"credentialProvider"`
	CredentialType         string `json:"credentialType"`
	ExternalSessionID      string `json:"externalSessionId"`
	Interface              string `json:"interface"`
}

// SecurityContext is Okta's view of the request's address.
type SecurityContext struct {
	ASNumber *int64 `json:"asNumber"`
	ASOrg    string `json:"asOrg"`
	ISP      string `json:"isp"`
	Domain   string `json:"domain"`
	IsProxy  *bool  `json:"isProxy"`
}
