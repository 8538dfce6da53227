package ocsf

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/revoked-dev/revoked/producer/ingest"
	"github.com/revoked-dev/revoked/schemas"
)

// Format names OCSF in the unmapped topic's headers and -format.
const Format = "ocsf"

// Values of Decoder.UserKey: which attribute of the OCSF user object
// becomes user_id. The others stand in when it is empty.
const (
	UserKeyUID   = "uid"
	UserKeyName  = "name"
	UserKeyEmail = "email_addr"
)

// Decoder reads OCSF events (one JSON object per line) as AuditEvents.
// Its zero value keys events by user.uid.
//
// Read from any producer:
//
//   - Authentication (3002): Logon succeeded is login.success; failed is
//     login.failure, or mfa.failure when is_mfa; Logoff is logout;
//   - Account Change (3001): Password Change and Password Reset that
//     succeeded are password.changed and password.reset, Lock is
//     account.locked, Attach Policy is permission.changed;
//   - API Activity (6003): a call by a user is token.used (a use of the
//     user's credential), with api.operation and api.service.name in
//     attrs; an operation named after an AuditEvent token type is that
//     type;
//   - and the classes FromAuditEvent writes: User Access Management
//     (3005), File Hosting Activity (6006) Upload, Download, Preview,
//     Share, Entity Management (3004) Create of a device, Detection
//     Finding (2004) Create.
//
// Other classes and activities are unmapped (ingest.ErrUnmapped), and so
// are events without a user. An event this package wrote (metadata.product
// "revoked") reads back to the AuditEvent it was written from, its type
// (metadata.event_code) and unmapped fields included.
type Decoder struct {
	UserKey string
}

// Decode reads one OCSF event.
func (d Decoder) Decode(line []byte) (schemas.AuditEvent, error) {
	var e Event
	if err := json.Unmarshal(line, &e); err != nil {
		return schemas.AuditEvent{}, fmt.Errorf("decoding OCSF event: %w", err)
	}
	if e.ClassUID == 0 {
		return schemas.AuditEvent{}, errors.New("not an OCSF event: no class_uid")
	}
	ours := e.Metadata.Product.Name == Product
	typ := schemas.EventType(e.Metadata.EventCode)
	if !ours || !typ.Known() {
		var err error
		if typ, err = e.auditType(); err != nil {
			return schemas.AuditEvent{}, err
		}
	}
	user, actor, session, endpoint := e.parts()
	uid := d.userID(user)
	if uid == "" {
		return schemas.AuditEvent{}, ingest.Unmapped(e.typeName(), "OCSF %s event names no user", e.typeName())
	}
	at, err := e.time(ours)
	if err != nil {
		return schemas.AuditEvent{}, err
	}
	ev := schemas.AuditEvent{ID: e.Metadata.UID, Time: at, Type: typ, UserID: uid}
	if ev.ID == "" {
		sum := sha256.Sum256(line)
		ev.ID = "ocsf:" + hex.EncodeToString(sum[:16])
	}
	attrs := map[string]string{}
	if ours {
		ev.Source = e.Metadata.LogProvider
		if err := e.unmapped(&ev); err != nil {
			return schemas.AuditEvent{}, err
		}
		if ev.Attrs != nil {
			attrs = ev.Attrs
		}
	} else {
		ev.Source = schemas.CutUTF8(firstOf(e.Metadata.Product.Name, e.Metadata.Product.VendorName, Format), schemas.MaxIDLen)
		attrs["ocsf_class_uid"] = strconv.Itoa(e.ClassUID)
		attrs["ocsf_activity_id"] = strconv.Itoa(e.ActivityID)
		setAttr(attrs, "ocsf_status_detail", e.StatusDetail)
		if e.Metadata.Product.VendorName != "" && e.Metadata.Product.VendorName != ev.Source {
			setAttr(attrs, "ocsf_vendor", e.Metadata.Product.VendorName)
		}
		if e.API != nil {
			setAttr(attrs, "api_operation", e.API.Operation)
			if e.API.Service != nil {
				setAttr(attrs, "api_service", e.API.Service.Name)
			}
		}
		if user != nil && user.Name != "" && string(user.UID) != "" {
			setAttr(attrs, "user_name", user.Name)
		}
	}
	if session != nil {
		ev.SessionID = schemas.CutUTF8(string(session.UID), schemas.MaxIDLen)
		if ours {
			// Another producer's credential_uid is its own kind of id (an
			// AWS access key id, say), not a token id of this pipeline.
			ev.TokenID = session.CredentialUID
		}
	}
	if actor != nil {
		ev.ClientID = schemas.CutUTF8(actor.AppUID, schemas.MaxIDLen)
	}
	if endpoint != nil {
		if a, err := netip.ParseAddr(strings.TrimSpace(endpoint.IP)); err == nil {
			ev.IP = a.Unmap().String()
		} else if endpoint.IP != "" && !ours {
			setAttr(attrs, "ocsf_src_ip", endpoint.IP)
		}
		ev.Geo = geoOf(endpoint, ev.Geo)
	}
	if e.HTTPRequest != nil {
		ev.UserAgent = schemas.CutUTF8(e.HTTPRequest.UserAgent, 1024)
	}
	if e.Device != nil && e.Device.UID != "" {
		ev.DeviceID = schemas.CutUTF8(e.Device.UID, schemas.MaxIDLen)
	} else if e.Entity != nil && e.Entity.Type == "device" {
		ev.DeviceID = schemas.CutUTF8(e.Entity.UID, schemas.MaxIDLen)
	}
	e.resource(&ev, ours)
	if len(attrs) > 0 {
		ev.Attrs = attrs
	}
	return ev, nil
}

// auditType decides the AuditEvent type, or why there is none.
func (e *Event) auditType() (schemas.EventType, error) {
	status := StatusUnknown
	if e.StatusID != nil {
		status = *e.StatusID
	}
	mfa := e.IsMFA != nil && *e.IsMFA
	if v := e.Metadata.Version; preRelease(v) && e.ClassUID != ClassAuthentication && e.ClassUID != ClassAccountChange {
		// Before 1.0 the numbers differed: 1.0.0-rc.2 numbered API
		// Activity 3005, which 1.0 gave to User Access Management.
		return "", ingest.Unmapped(e.typeName(), "OCSF %s predates 1.0, whose class numbers differ; only Authentication and Account Change are read from it", v)
	}
	switch e.ClassUID {
	case ClassAuthentication:
		switch {
		case e.ActivityID == 1 && status == StatusSuccess:
			return schemas.EventLoginSuccess, nil
		case e.ActivityID == 1 && status == StatusFailure && mfa:
			return schemas.EventMFAFailure, nil
		case e.ActivityID == 1 && status == StatusFailure:
			return schemas.EventLoginFailure, nil
		case e.ActivityID == 2 && status != StatusFailure:
			return schemas.EventLogout, nil
		}
	case ClassAccountChange:
		switch {
		case e.ActivityID == 3 && status == StatusSuccess:
			return schemas.EventPasswordChanged, nil
		case e.ActivityID == 4 && status == StatusSuccess:
			return schemas.EventPasswordReset, nil
		case e.ActivityID == 7 && status != StatusFailure:
			return schemas.EventPermissionChanged, nil
		case e.ActivityID == 9:
			return schemas.EventAccountLocked, nil
		}
	case ClassUserAccessManagement:
		if status != StatusFailure {
			return schemas.EventPermissionChanged, nil
		}
	case ClassAPIActivity:
		if e.API != nil {
			switch t := schemas.EventType(e.API.Operation); t {
			case schemas.EventTokenIssued, schemas.EventTokenExchanged, schemas.EventTokenRefreshed,
				schemas.EventTokenUsed, schemas.EventTokenRevoked:
				return t, nil
			}
		}
		return schemas.EventTokenUsed, nil
	case ClassFileHostingActivity:
		switch e.ActivityID {
		case 1:
			return schemas.EventFileUpload, nil
		case 2:
			return schemas.EventFileDownload, nil
		case 9:
			return schemas.EventFilePreview, nil
		case 12:
			return schemas.EventShareCreated, nil
		}
	case ClassEntityManagement:
		if e.ActivityID == 1 && e.Entity != nil && e.Entity.Type == "device" {
			return schemas.EventDeviceAdded, nil
		}
	case ClassDetectionFinding:
		if e.ActivityID == 1 {
			return schemas.EventAlertRaised, nil
		}
	default:
		return "", ingest.Unmapped(e.typeName(), "OCSF class_uid %d is not read (Authentication 3002, Account Change 3001 and API Activity 6003 are, with the classes this pipeline writes)", e.ClassUID)
	}
	return "", ingest.Unmapped(e.typeName(), "OCSF %s with status_id %d has no AuditEvent", e.typeName(), status)
}

// preRelease reports whether an OCSF version is from before 1.0.0.
func preRelease(v string) bool {
	return strings.HasPrefix(v, "0.") || strings.HasPrefix(v, "1.0.0-")
}

// typeName names the event's class and activity for the unmapped topic.
func (e *Event) typeName() string {
	return fmt.Sprintf("class_uid %d activity_id %d", e.ClassUID, e.ActivityID)
}

// parts finds the user, the actor, the session and the source endpoint
// where the event's class keeps them.
func (e *Event) parts() (*User, *Actor, *Session, *Endpoint) {
	actor, endpoint := e.Actor, e.SrcEndpoint
	if e.ClassUID == ClassDetectionFinding && len(e.Evidences) > 0 {
		actor, endpoint = e.Evidences[0].Actor, e.Evidences[0].SrcEndpoint
	}
	var user *User
	switch e.ClassUID {
	case ClassAuthentication, ClassAccountChange, ClassUserAccessManagement:
		user = e.User
	}
	if user == nil && actor != nil {
		user = actor.User
	}
	session := e.Session
	if session == nil && actor != nil {
		session = actor.Session
	}
	return user, actor, session, endpoint
}

func (d Decoder) userID(u *User) string {
	if u == nil {
		return ""
	}
	var order []string
	switch d.UserKey {
	case UserKeyName:
		order = []string{u.Name, string(u.UID), u.EmailAddr}
	case UserKeyEmail:
		order = []string{u.EmailAddr, string(u.UID), u.Name}
	default:
		order = []string{string(u.UID), u.Name, u.EmailAddr}
	}
	return schemas.CutUTF8(strings.TrimSpace(firstOf(order...)), schemas.MaxIDLen)
}

// time is the event's time: metadata.original_time for an event this
// package wrote (it keeps nanoseconds), else time in milliseconds.
func (e *Event) time(ours bool) (time.Time, error) {
	if ours && e.Metadata.OriginalTime != "" {
		if t, err := time.Parse(time.RFC3339Nano, e.Metadata.OriginalTime); err == nil {
			return t.UTC(), nil
		}
	}
	ms, err := e.Time.Millis()
	if err != nil {
		return time.Time{}, err
	}
	if ms <= 0 {
		return time.Time{}, errors.New("OCSF event without time")
	}
	t := time.UnixMilli(ms).UTC()
	if t.Year() > 9999 {
		return time.Time{}, fmt.Errorf("OCSF time %d is not milliseconds since the epoch (year %d)", ms, t.Year())
	}
	return t, nil
}

// geoOf reads the endpoint's location and autonomous system into g.
func geoOf(ep *Endpoint, g *schemas.Geo) *schemas.Geo {
	if ep.Location == nil && ep.AutonomousSystem == nil {
		return g
	}
	if g == nil {
		g = &schemas.Geo{}
	}
	if l := ep.Location; l != nil {
		if c := strings.ToUpper(l.Country); len(c) == 2 && c[0] >= 'A' && c[0] <= 'Z' && c[1] >= 'A' && c[1] <= 'Z' {
			g.Country = c
		}
		g.City = schemas.CutUTF8(l.City, schemas.MaxIDLen)
		if l.Lat != nil && l.Long != nil && *l.Lat >= -90 && *l.Lat <= 90 && *l.Long >= -180 && *l.Long <= 180 {
			g.Lat, g.Lon = l.Lat, l.Long
		}
	}
	if as := ep.AutonomousSystem; as != nil {
		if as.Number > 0 && as.Number <= 1<<32-1 {
			g.ASN = uint32(as.Number)
		}
		g.Org = schemas.CutUTF8(as.Name, schemas.MaxIDLen)
	}
	if *g == (schemas.Geo{}) {
		return nil
	}
	return g
}

// resource reads the resource the event acted on, and the bytes moved.
func (e *Event) resource(ev *schemas.AuditEvent, ours bool) {
	switch {
	case e.File != nil:
		typ := "file"
		if e.File.TypeID == 2 {
			typ = "folder"
		}
		if id := firstOf(e.File.UID, e.File.Name); id != "" {
			ev.Resource = &schemas.Resource{Type: typ, ID: schemas.CutUTF8(id, schemas.MaxIDLen)}
		}
		if ours || ev.Type == schemas.EventFileDownload {
			ev.Bytes = max(e.File.Size, ev.Bytes)
		}
	case len(e.Resources) > 0:
		ev.Resource = resourceOf(&e.Resources[0])
	case e.Resource != nil:
		ev.Resource = resourceOf(e.Resource)
	}
}

func resourceOf(r *Resource) *schemas.Resource {
	id := firstOf(string(r.UID), r.Name)
	if id == "" {
		return nil
	}
	return &schemas.Resource{Type: schemas.CutUTF8(firstOf(r.Type, "resource"), schemas.MaxIDLen), ID: schemas.CutUTF8(id, schemas.MaxIDLen)}
}

// unmapped reads back what FromAuditEvent put in the unmapped object.
func (e *Event) unmapped(ev *schemas.AuditEvent) error {
	var geoNetwork string
	for k, dst := range map[string]any{
		unmappedAttrs:         &ev.Attrs,
		unmappedScopes:        &ev.Scopes,
		unmappedParentTokenID: &ev.ParentTokenID,
		unmappedResource:      &ev.Resource,
		unmappedBytes:         &ev.Bytes,
		unmappedNetwork:       &geoNetwork,
	} {
		raw, ok := e.Unmapped[k]
		if !ok {
			continue
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			return fmt.Errorf("OCSF unmapped.%s: %w", k, err)
		}
	}
	if geoNetwork != "" {
		if ev.Geo == nil {
			ev.Geo = &schemas.Geo{}
		}
		ev.Geo.Network = geoNetwork
	}
	return nil
}

func setAttr(attrs map[string]string, k, v string) {
	if v != "" {
		attrs[k] = schemas.CutUTF8(v, schemas.MaxAttrLen)
	}
}
