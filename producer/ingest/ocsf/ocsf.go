// Package ocsf reads and writes the Open Cybersecurity Schema Framework
// (OCSF, schema.ocsf.io): Decoder turns OCSF Authentication (3002),
// Account Change (3001) and API Activity (6003) events, and the classes
// FromAuditEvent writes, into AuditEvents; FromAuditEvent renders any
// AuditEvent as an OCSF event, so that a SIEM reads what the pipeline
// saw, and what the pipeline rendered reads back to the same AuditEvent.
//
// Field names are the schema's (activity_id, status_id, time in
// milliseconds since the epoch, metadata.product, user, actor.user,
// src_endpoint.ip and .location, http_request.user_agent, ...). What an
// AuditEvent carries and no OCSF attribute holds goes to the event's
// unmapped object under the AuditEvent's own field names.
package ocsf

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/revoked-dev/revoked/schemas"
)

// Version is the OCSF schema version FromAuditEvent writes.
const Version = "1.3.0"

// Product is metadata.product.name of the events FromAuditEvent writes;
// Decoder reads their unmapped fields back.
const Product = "revoked"

// Classes and categories read or written.
const (
	ClassAccountChange        = 3001
	ClassAuthentication       = 3002
	ClassEntityManagement     = 3004
	ClassUserAccessManagement = 3005
	ClassAPIActivity          = 6003
	ClassFileHostingActivity  = 6006
	ClassDetectionFinding     = 2004

	categoryFindings = 2
	categoryIAM      = 3
	categoryApp      = 6
)

// Status ids (status_id).
const (
	StatusUnknown = 0
	StatusSuccess = 1
	StatusFailure = 2
)

// Event is an OCSF event: the base event's attributes and those of the
// classes this package reads and writes. Unknown attributes are ignored
// when reading.
type Event struct {
	ActivityID   int    `json:"activity_id"`
	ActivityName string `json:"activity_name,omitempty"`
	CategoryUID  int    `json:"category_uid"`
	CategoryName string `json:"category_name,omitempty"`
	ClassUID     int    `json:"class_uid"`
	ClassName    string `json:"class_name,omitempty"`
	TypeUID      int64  `json:"type_uid"`
	TypeName     string `json:"type_name,omitempty"`
	// Time is milliseconds since the Unix epoch.
	Time         Timestamp `json:"time"`
	SeverityID   int       `json:"severity_id"`
	Severity     string    `json:"severity,omitempty"`
	StatusID     *int      `json:"status_id,omitempty"`
	Status       string    `json:"status,omitempty"`
	StatusDetail string    `json:"status_detail,omitempty"`
	Message      string    `json:"message,omitempty"`
	Metadata     Metadata  `json:"metadata"`

	User        *User        `json:"user,omitempty"`
	Actor       *Actor       `json:"actor,omitempty"`
	SrcEndpoint *Endpoint    `json:"src_endpoint,omitempty"`
	Service     *Service     `json:"service,omitempty"`
	Session     *Session     `json:"session,omitempty"`
	Device      *Device      `json:"device,omitempty"`
	HTTPRequest *HTTPRequest `json:"http_request,omitempty"`
	IsMFA       *bool        `json:"is_mfa,omitempty"`
	// API Activity.
	API       *API       `json:"api,omitempty"`
	Resources []Resource `json:"resources,omitempty"`
	// File Hosting Activity.
	File *File `json:"file,omitempty"`
	// User Access Management.
	Privileges []string  `json:"privileges,omitempty"`
	Resource   *Resource `json:"resource,omitempty"`
	// Entity Management.
	Entity *Entity `json:"entity,omitempty"`
	// Detection Finding.
	FindingInfo *FindingInfo `json:"finding_info,omitempty"`
	Evidences   []Evidence   `json:"evidences,omitempty"`

	Unmapped map[string]json.RawMessage `json:"unmapped,omitempty"`
}

// Metadata is the event's metadata object.
type Metadata struct {
	Version string      `json:"version"`
	Product ProductInfo `json:"product"`
	UID     string      `json:"uid,omitempty"`
	// EventCode is the producer's own name of the event; FromAuditEvent
	// writes the AuditEvent type.
	EventCode    string `json:"event_code,omitempty"`
	LogProvider  string `json:"log_provider,omitempty"`
	OriginalTime string `json:"original_time,omitempty"`
}

// ProductInfo is metadata.product.
type ProductInfo struct {
	Name       string `json:"name,omitempty"`
	VendorName string `json:"vendor_name,omitempty"`
	Version    string `json:"version,omitempty"`
}

// User is the user object.
type User struct {
	UID       Text   `json:"uid,omitempty"`
	Name      string `json:"name,omitempty"`
	EmailAddr string `json:"email_addr,omitempty"`
}

// Actor is the actor object.
type Actor struct {
	User    *User    `json:"user,omitempty"`
	Session *Session `json:"session,omitempty"`
	AppUID  string   `json:"app_uid,omitempty"`
	AppName string   `json:"app_name,omitempty"`
}

// Endpoint is a network endpoint.
type Endpoint struct {
	IP               string            `json:"ip,omitempty"`
	Location         *Location         `json:"location,omitempty"`
	AutonomousSystem *AutonomousSystem `json:"autonomous_system,omitempty"`
}

// Location is the location object; note "long", not "lon".
type Location struct {
	City    string   `json:"city,omitempty"`
	Country string   `json:"country,omitempty"`
	Lat     *float64 `json:"lat,omitempty"`
	Long    *float64 `json:"long,omitempty"`
}

// AutonomousSystem is the autonomous_system object.
type AutonomousSystem struct {
	Number int64  `json:"number,omitempty"`
	Name   string `json:"name,omitempty"`
}

// Service is the service object.
type Service struct {
	Name string `json:"name,omitempty"`
	UID  string `json:"uid,omitempty"`
}

// Session is the session object.
type Session struct {
	UID           Text   `json:"uid,omitempty"`
	CredentialUID string `json:"credential_uid,omitempty"`
}

// Device is the device object.
type Device struct {
	UID  string `json:"uid,omitempty"`
	Name string `json:"name,omitempty"`
}

// HTTPRequest is the http_request object.
type HTTPRequest struct {
	UserAgent string `json:"user_agent,omitempty"`
}

// API is the api object.
type API struct {
	Operation string   `json:"operation,omitempty"`
	Service   *Service `json:"service,omitempty"`
}

// Resource is the resource_details object.
type Resource struct {
	UID  Text   `json:"uid,omitempty"`
	Type string `json:"type,omitempty"`
	Name string `json:"name,omitempty"`
}

// File is the file object.
type File struct {
	Name   string `json:"name"`
	TypeID int    `json:"type_id"`
	UID    string `json:"uid,omitempty"`
	Size   int64  `json:"size,omitempty"`
}

// Entity is the managed entity of Entity Management.
type Entity struct {
	UID  string `json:"uid,omitempty"`
	Type string `json:"type,omitempty"`
	Name string `json:"name,omitempty"`
}

// FindingInfo is the finding_info object.
type FindingInfo struct {
	UID   string   `json:"uid"`
	Title string   `json:"title,omitempty"`
	Types []string `json:"types,omitempty"`
}

// Evidence is an evidence artifact of a finding.
type Evidence struct {
	Actor       *Actor    `json:"actor,omitempty"`
	SrcEndpoint *Endpoint `json:"src_endpoint,omitempty"`
}

// Text reads an identifier given as a JSON string or number (OCSF types
// uids as strings; producers do not all agree).
type Text string

// UnmarshalJSON reads a string, a number or null.
func (t *Text) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*t = ""
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*t = Text(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("want a string or a number, got %s", b)
	}
	*t = Text(n.String())
	return nil
}

// Timestamp is OCSF's timestamp_t: milliseconds since the Unix epoch.
// Reading keeps a value that is not a number as an error for Millis to
// report, so that an event of a class that is not read is set aside as
// unmapped whatever its time looks like.
type Timestamp struct {
	ms  int64
	err error
}

// Millis returns milliseconds since the epoch, or why the value read was
// not a timestamp.
func (ts Timestamp) Millis() (int64, error) { return ts.ms, ts.err }

// At returns the timestamp of t.
func At(t time.Time) Timestamp { return Timestamp{ms: t.UnixMilli()} }

// MarshalJSON writes milliseconds as a JSON integer.
func (ts Timestamp) MarshalJSON() ([]byte, error) { return strconv.AppendInt(nil, ts.ms, 10), nil }

// UnmarshalJSON reads a JSON number (a fraction of a millisecond is cut).
func (ts *Timestamp) UnmarshalJSON(b []byte) error {
	*ts = Timestamp{}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		ts.err = fmt.Errorf("time: want milliseconds since the epoch, got %s", schemas.CutUTF8(string(b), 64))
		return nil
	}
	if i, err := strconv.ParseInt(n.String(), 10, 64); err == nil {
		ts.ms = i
		return nil
	}
	f, err := strconv.ParseFloat(n.String(), 64)
	if err != nil {
		ts.err = fmt.Errorf("time: %w", err)
		return nil
	}
	ts.ms = int64(f)
	return nil
}
