package ocsf

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/revoked-dev/revoked/schemas"
)

// class names and categories.
var classes = map[int]struct {
	name         string
	category     int
	categoryName string
}{
	ClassAccountChange:        {"Account Change", categoryIAM, "Identity & Access Management"},
	ClassAuthentication:       {"Authentication", categoryIAM, "Identity & Access Management"},
	ClassEntityManagement:     {"Entity Management", categoryIAM, "Identity & Access Management"},
	ClassUserAccessManagement: {"User Access Management", categoryIAM, "Identity & Access Management"},
	ClassAPIActivity:          {"API Activity", categoryApp, "Application Activity"},
	ClassFileHostingActivity:  {"File Hosting Activity", categoryApp, "Application Activity"},
	ClassDetectionFinding:     {"Detection Finding", categoryFindings, "Findings"},
}

// activities names each class's activities used here.
var activities = map[int]map[int]string{
	ClassAuthentication:       {1: "Logon", 2: "Logoff"},
	ClassAccountChange:        {3: "Password Change", 4: "Password Reset", 5: "Disable", 7: "Attach Policy", 9: "Lock", 99: "Other"},
	ClassUserAccessManagement: {1: "Assign Privileges", 2: "Revoke Privileges", 99: "Other"},
	ClassEntityManagement:     {1: "Create"},
	ClassAPIActivity:          {1: "Create", 2: "Read", 3: "Update", 4: "Delete", 99: "Other"},
	ClassFileHostingActivity:  {1: "Upload", 2: "Download", 9: "Preview", 12: "Share"},
	ClassDetectionFinding:     {1: "Create"},
}

// rendering is how an AuditEvent type is written: its class and
// activity, whether it failed, and whether a second factor was involved.
type rendering struct {
	class, activity int
	failed, mfa     bool
}

// renderings gives every AuditEvent type its OCSF class and activity.
var renderings = map[schemas.EventType]rendering{
	schemas.EventLoginSuccess:      {class: ClassAuthentication, activity: 1},
	schemas.EventLoginFailure:      {class: ClassAuthentication, activity: 1, failed: true},
	schemas.EventMFAFailure:        {class: ClassAuthentication, activity: 1, failed: true, mfa: true},
	schemas.EventLogout:            {class: ClassAuthentication, activity: 2},
	schemas.EventPasswordChanged:   {class: ClassAccountChange, activity: 3},
	schemas.EventPasswordReset:     {class: ClassAccountChange, activity: 4},
	schemas.EventAccountLocked:     {class: ClassAccountChange, activity: 9},
	schemas.EventPermissionChanged: {class: ClassUserAccessManagement, activity: 99},
	schemas.EventFileUpload:        {class: ClassFileHostingActivity, activity: 1},
	schemas.EventFileDownload:      {class: ClassFileHostingActivity, activity: 2},
	schemas.EventFilePreview:       {class: ClassFileHostingActivity, activity: 9},
	schemas.EventShareCreated:      {class: ClassFileHostingActivity, activity: 12},
	schemas.EventTokenIssued:       {class: ClassAPIActivity, activity: 1},
	schemas.EventTokenExchanged:    {class: ClassAPIActivity, activity: 1},
	schemas.EventTokenRefreshed:    {class: ClassAPIActivity, activity: 3},
	schemas.EventTokenUsed:         {class: ClassAPIActivity, activity: 2},
	schemas.EventTokenRevoked:      {class: ClassAPIActivity, activity: 4},
	schemas.EventDeviceAdded:       {class: ClassEntityManagement, activity: 1},
	schemas.EventAlertRaised:       {class: ClassDetectionFinding, activity: 1},
	// The Shared Signals types, by name: an IdP ended the user's
	// sessions, changed a credential or a token's claims, disabled the
	// account, or found a credential compromised.
	"session.revoked":        {class: ClassAuthentication, activity: 2},
	"credential.changed":     {class: ClassAccountChange, activity: 99},
	"token.claims_changed":   {class: ClassAPIActivity, activity: 3},
	"account.disabled":       {class: ClassAccountChange, activity: 5},
	"credential.compromised": {class: ClassDetectionFinding, activity: 1},
}

// otherRendering writes a type without a rendering of its own: API
// Activity, Other, with the type as api.operation and metadata.event_code.
var otherRendering = rendering{class: ClassAPIActivity, activity: 99}

// Keys of the unmapped object for what no OCSF attribute holds.
const (
	unmappedAttrs         = "attrs"
	unmappedScopes        = "scopes"
	unmappedParentTokenID = "parent_token_id"
	unmappedResource      = "resource"
	unmappedBytes         = "bytes"
	unmappedNetwork       = "geo_network"
)

// FromAuditEvent renders ev as an OCSF event:
//
//   - login.success, login.failure, mfa.failure (is_mfa) and logout as
//     Authentication (3002) Logon or Logoff, status Success or Failure;
//   - password.changed, password.reset and account.locked as Account
//     Change (3001) Password Change, Password Reset, Lock;
//   - permission.changed as User Access Management (3005), Other;
//   - file.upload, file.download, file.preview and share.created as File
//     Hosting Activity (6006) Upload, Download, Preview, Share;
//   - token.* as API Activity (6003): issued and exchanged Create, used
//     Read, refreshed Update, revoked Delete, api.operation the type;
//   - device.added as Entity Management (3004) Create of a device;
//   - alert.raised as Detection Finding (2004) Create.
//
// The user is user (IAM classes), actor.user (application classes) or
// the evidence's actor.user (findings); the session and token id are the
// session's uid and credential_uid; client_id is actor.app_uid; the
// address is src_endpoint with its location and autonomous_system;
// source is metadata.log_provider; metadata.uid is the event id,
// metadata.event_code its type and metadata.original_time its time to the
// nanosecond. A type added to AuditEvent without a rendering here is
// written as API Activity, Other.
func FromAuditEvent(ev *schemas.AuditEvent) (Event, error) {
	if !ev.Type.Known() {
		return Event{}, fmt.Errorf("ocsf: unknown event type %q", ev.Type)
	}
	r, ok := renderings[ev.Type]
	if !ok {
		r = otherRendering
	}
	c := classes[r.class]
	status, statusName := StatusSuccess, "Success"
	if r.failed {
		status, statusName = StatusFailure, "Failure"
	}
	act := activities[r.class][r.activity]
	out := Event{
		ActivityID:   r.activity,
		ActivityName: act,
		CategoryUID:  c.category,
		CategoryName: c.categoryName,
		ClassUID:     r.class,
		ClassName:    c.name,
		TypeUID:      int64(r.class)*100 + int64(r.activity),
		TypeName:     c.name + ": " + act,
		Time:         At(ev.Time),
		SeverityID:   1,
		Severity:     "Informational",
		StatusID:     &status,
		Status:       statusName,
		Metadata: Metadata{
			Version:      Version,
			Product:      ProductInfo{Name: Product, VendorName: Product},
			UID:          ev.ID,
			EventCode:    string(ev.Type),
			LogProvider:  ev.Source,
			OriginalTime: ev.Time.UTC().Format(time.RFC3339Nano),
		},
	}
	if r.class == ClassDetectionFinding {
		out.SeverityID, out.Severity = 3, "Medium"
	}
	unmapped := map[string]any{}
	user := &User{UID: Text(ev.UserID)}
	session := (*Session)(nil)
	if ev.SessionID != "" || ev.TokenID != "" {
		session = &Session{UID: Text(ev.SessionID), CredentialUID: ev.TokenID}
	}
	endpoint := endpointOf(ev, unmapped)
	actor := &Actor{AppUID: ev.ClientID}

	switch r.class {
	case ClassAuthentication, ClassAccountChange, ClassUserAccessManagement:
		out.User = user
		if r.class == ClassAuthentication {
			out.Session = session
			svc := ev.Source
			if svc == "" {
				svc = Product
			}
			// Authentication needs a service or a destination.
			out.Service = &Service{Name: svc}
			if r.mfa {
				t := true
				out.IsMFA = &t
			}
		} else {
			actor.Session = session
		}
		if actor.AppUID != "" || actor.Session != nil {
			out.Actor = actor
		}
		out.SrcEndpoint = endpoint
	case ClassDetectionFinding:
		actor.User, actor.Session = user, session
		out.Evidences = []Evidence{{Actor: actor, SrcEndpoint: endpoint}}
		title := firstOf(ev.Attrs["shield_rule_name"], ev.Attrs["rule_name"], "alert raised by "+orDefault(ev.Source, "the source"))
		out.FindingInfo = &FindingInfo{UID: ev.ID, Title: title}
		if cat := firstOf(ev.Attrs["shield_rule_category"], ev.Attrs["rule_category"]); cat != "" {
			out.FindingInfo.Types = []string{cat}
		}
	default:
		actor.User, actor.Session = user, session
		out.Actor = actor
		out.SrcEndpoint = endpoint
	}

	if ev.UserAgent != "" {
		out.HTTPRequest = &HTTPRequest{UserAgent: ev.UserAgent}
	}
	if ev.DeviceID != "" {
		out.Device = &Device{UID: ev.DeviceID}
	}
	resourceUsed := false
	switch r.class {
	case ClassAPIActivity:
		out.API = &API{Operation: string(ev.Type), Service: &Service{Name: orDefault(ev.Source, Product)}}
		if ev.Resource != nil {
			out.Resources = []Resource{{UID: Text(ev.Resource.ID), Type: ev.Resource.Type}}
			resourceUsed = true
		}
	case ClassUserAccessManagement:
		if p := firstOf(ev.Attrs["role"], ev.Attrs["permission"]); p != "" {
			out.Privileges = []string{p}
		}
		if ev.Resource != nil {
			out.Resource = &Resource{UID: Text(ev.Resource.ID), Type: ev.Resource.Type}
			resourceUsed = true
		}
	case ClassFileHostingActivity:
		if ev.Resource != nil && (ev.Resource.Type == "file" || ev.Resource.Type == "folder") {
			typeID := 1
			if ev.Resource.Type == "folder" {
				typeID = 2
			}
			out.File = &File{Name: ev.Resource.ID, TypeID: typeID, UID: ev.Resource.ID, Size: ev.Bytes}
			resourceUsed = true
		}
	case ClassEntityManagement:
		out.Entity = &Entity{UID: ev.DeviceID, Type: "device"}
	}
	if ev.Resource != nil && !resourceUsed {
		unmapped[unmappedResource] = ev.Resource
	}
	if ev.Bytes != 0 && (out.File == nil || out.File.Size != ev.Bytes) {
		unmapped[unmappedBytes] = ev.Bytes
	}
	if len(ev.Scopes) > 0 {
		unmapped[unmappedScopes] = ev.Scopes
	}
	if ev.ParentTokenID != "" {
		unmapped[unmappedParentTokenID] = ev.ParentTokenID
	}
	if len(ev.Attrs) > 0 {
		unmapped[unmappedAttrs] = ev.Attrs
	}
	if len(unmapped) > 0 {
		out.Unmapped = make(map[string]json.RawMessage, len(unmapped))
		for k, v := range unmapped {
			b, err := json.Marshal(v)
			if err != nil {
				return Event{}, fmt.Errorf("ocsf: encoding %s: %w", k, err)
			}
			out.Unmapped[k] = b
		}
	}
	return out, nil
}

// endpointOf is the event's source endpoint: its address, location and
// autonomous system; the kind of network goes to unmapped.
func endpointOf(ev *schemas.AuditEvent, unmapped map[string]any) *Endpoint {
	if ev.IP == "" && ev.Geo == nil {
		return nil
	}
	e := &Endpoint{IP: ev.IP}
	if g := ev.Geo; g != nil {
		if g.City != "" || g.Country != "" || g.Lat != nil {
			e.Location = &Location{City: g.City, Country: g.Country, Lat: g.Lat, Long: g.Lon}
		}
		if g.ASN != 0 || g.Org != "" {
			e.AutonomousSystem = &AutonomousSystem{Number: int64(g.ASN), Name: g.Org}
		}
		if g.Network != "" {
			unmapped[unmappedNetwork] = g.Network
		}
	}
	return e
}

func firstOf(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
