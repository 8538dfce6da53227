package box

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/revoked-dev/revoked/producer/ingest"
	"github.com/revoked-dev/revoked/producer/ingest/source"
	"github.com/revoked-dev/revoked/schemas"
)

// Values of Mapping.UserKey.
const (
	// UserKeyID uses Box's user id ("11446498").
	UserKeyID = "id"
	// UserKeyLogin uses the user's login, their email address, which is
	// what an IdP in front of Box knows them by.
	UserKeyLogin = "login"
)

// EventTypes maps Box enterprise event types to AuditEvent types. Any
// other COLLABORATION_* type is a permission change too; every type not
// here is kept on the unmapped topic.
var EventTypes = map[string]schemas.EventType{
	"LOGIN":                     schemas.EventLoginSuccess,
	"FAILED_LOGIN":              schemas.EventLoginFailure,
	"ADD_LOGIN_ACTIVITY_DEVICE": schemas.EventDeviceAdded,
	"DOWNLOAD":                  schemas.EventFileDownload,
	"FILE_WATERMARKED_DOWNLOAD": schemas.EventFileDownload,
	"PREVIEW":                   schemas.EventFilePreview,
	"UPLOAD":                    schemas.EventFileUpload,
	"SHARE":                     schemas.EventShareCreated,
	// An invitation shares the item with someone; accepting, changing,
	// expiring or removing it changes who may do what.
	"COLLABORATION_INVITE":            schemas.EventShareCreated,
	"COLLABORATION_ACCEPT":            schemas.EventPermissionChanged,
	"COLLABORATION_ROLE_CHANGE":       schemas.EventPermissionChanged,
	"COLLABORATION_REMOVE":            schemas.EventPermissionChanged,
	"COLLABORATION_EXPIRATION":        schemas.EventPermissionChanged,
	"UPDATE_COLLABORATION_EXPIRATION": schemas.EventPermissionChanged,
	"CHANGE_FOLDER_PERMISSION":        schemas.EventPermissionChanged,
	"ITEM_SHARED_UPDATE":              schemas.EventPermissionChanged,
	// The user whose admin role changed is the source, not the admin
	// who changed it.
	"CHANGE_ADMIN_ROLE":                            schemas.EventPermissionChanged,
	"USER_AUTHENTICATE_OAUTH2_ACCESS_TOKEN_CREATE": schemas.EventTokenIssued,
	"OAUTH2_ACCESS_TOKEN_REVOKE":                   schemas.EventTokenRevoked,
	// Box Shield's alerts (suspicious location or session, anomalous
	// download, malicious content) name their user in
	// additional_details.shield_alert.user.
	"SHIELD_ALERT": schemas.EventAlertRaised,
}

// Triggers maps webhook v2 triggers to AuditEvent types; every other
// trigger is kept on the unmapped topic.
var Triggers = map[string]schemas.EventType{
	"FILE.UPLOADED":          schemas.EventFileUpload,
	"FILE.DOWNLOADED":        schemas.EventFileDownload,
	"FILE.PREVIEWED":         schemas.EventFilePreview,
	"FOLDER.DOWNLOADED":      schemas.EventFileDownload,
	"SHARED_LINK.CREATED":    schemas.EventShareCreated,
	"SHARED_LINK.UPDATED":    schemas.EventPermissionChanged,
	"SHARED_LINK.DELETED":    schemas.EventPermissionChanged,
	"COLLABORATION.CREATED":  schemas.EventShareCreated,
	"COLLABORATION.ACCEPTED": schemas.EventPermissionChanged,
	"COLLABORATION.REMOVED":  schemas.EventPermissionChanged,
	"COLLABORATION.UPDATED":  schemas.EventPermissionChanged,
}

// eventType returns the AuditEvent type of a Box event type.
func eventType(boxType string) (schemas.EventType, bool) {
	if t, ok := EventTypes[boxType]; ok {
		return t, true
	}
	if strings.HasPrefix(boxType, "COLLABORATION_") {
		return schemas.EventPermissionChanged, true
	}
	return "", false
}

// Mapping turns Box enterprise events and webhook payloads into
// AuditEvents. The zero value keys events by Box user id.
type Mapping struct {
	// UserKey picks user_id: UserKeyID (default) or UserKeyLogin.
	UserKey string
}

// SourceName names Box in AuditEvent.Source.
const SourceName = "box"

// Event maps an enterprise event (rec.Raw). An event type without an
// AuditEvent, and an event of nobody (Box's anonymous user), are
// unmapped (ingest.ErrUnmapped); a malformed event is an error.
func (m Mapping) Event(rec source.Record) (schemas.AuditEvent, error) {
	var e Event
	if err := json.Unmarshal(rec.Raw, &e); err != nil {
		return schemas.AuditEvent{}, fmt.Errorf("decoding box event: %w", err)
	}
	typ, ok := eventType(e.EventType)
	if !ok {
		return schemas.AuditEvent{}, ingest.Unmapped(e.EventType, "Box event type %q has no AuditEvent type", e.EventType)
	}
	if e.EventID == "" {
		return schemas.AuditEvent{}, errors.New("box event without event_id")
	}
	at, err := parseTime(e.CreatedAt)
	if err != nil {
		return schemas.AuditEvent{}, fmt.Errorf("created_at: %w", err)
	}
	src, err := decodeSource(e.Source)
	if err != nil {
		return schemas.AuditEvent{}, err
	}
	attrs := map[string]string{"box_event_type": e.EventType}
	details := additional(e.AdditionalDetails)

	var user *User
	switch {
	case e.EventType == "CHANGE_ADMIN_ROLE":
		user = src.user()
	case typ == schemas.EventAlertRaised:
		user = shieldUser(e.AdditionalDetails)
		shieldAttrs(e.AdditionalDetails, attrs)
	default:
		user = e.CreatedBy
		if user.anonymous() {
			// A failed login of a user Box does not know comes from
			// nobody; the login's source may still name the account.
			user = src.user()
		}
	}
	if user.anonymous() {
		return schemas.AuditEvent{}, ingest.Unmapped(e.EventType, "Box event %s is of no known user (anonymous or absent)", e.EventID)
	}
	uid, err := m.userID(user)
	if err != nil {
		return schemas.AuditEvent{}, ingest.Unmapped(e.EventType, "Box event %s: %v", e.EventID, err)
	}
	if user.Login != "" {
		attrs["login"] = user.Login
	}
	if e.CreatedBy != nil && !e.CreatedBy.anonymous() && e.CreatedBy.ID != user.ID {
		attrs["box_actor_id"] = string(e.CreatedBy.ID)
	}
	for k, v := range details {
		if _, taken := attrs[k]; !taken && len(attrs) < schemas.MaxAttrs {
			attrs[k] = v
		}
	}
	ev := schemas.AuditEvent{
		ID:     "box:" + e.EventID,
		Time:   at.UTC(),
		Type:   typ,
		UserID: uid,
		Source: SourceName,
		Attrs:  attrs,
	}
	if e.SessionID != nil {
		ev.SessionID = *e.SessionID
	}
	setIP(&ev, e.IPAddress)
	if t, id := src.item(); id != "" && t != "" {
		ev.Resource = &schemas.Resource{Type: t, ID: id}
	}
	return ev, nil
}

// WebhookPayload is the body of a webhook v2 delivery.
type WebhookPayload struct {
	Type      string `json:"type"`
	ID        string `json:"id"`
	CreatedAt string `json:"created_at"`
	Trigger   string `json:"trigger"`
	Webhook   *struct {
		ID   string `json:"id"`
		Type string `json:"type"`
	} `json:"webhook"`
	CreatedBy      *User           `json:"created_by"`
	Source         json.RawMessage `json:"source"`
	AdditionalInfo json.RawMessage `json:"additional_info"`
}

// Webhook maps a webhook v2 payload (rec.Raw). A trigger without an
// AuditEvent, and a payload of Box's anonymous user, are unmapped.
func (m Mapping) Webhook(rec source.Record) (schemas.AuditEvent, error) {
	var p WebhookPayload
	if err := json.Unmarshal(rec.Raw, &p); err != nil {
		return schemas.AuditEvent{}, fmt.Errorf("decoding box webhook payload: %w", err)
	}
	if p.Type != "webhook_event" {
		return schemas.AuditEvent{}, fmt.Errorf("box webhook payload of type %q, want webhook_event", p.Type)
	}
	if p.ID == "" {
		return schemas.AuditEvent{}, errors.New("box webhook payload without id")
	}
	typ, ok := Triggers[p.Trigger]
	if !ok {
		return schemas.AuditEvent{}, ingest.Unmapped(p.Trigger, "Box webhook trigger %q has no AuditEvent type", p.Trigger)
	}
	at, err := parseTime(p.CreatedAt)
	if err != nil {
		return schemas.AuditEvent{}, fmt.Errorf("created_at: %w", err)
	}
	if p.CreatedBy.anonymous() {
		return schemas.AuditEvent{}, ingest.Unmapped(p.Trigger, "Box webhook %s is of no known user (anonymous or absent)", p.ID)
	}
	uid, err := m.userID(p.CreatedBy)
	if err != nil {
		return schemas.AuditEvent{}, ingest.Unmapped(p.Trigger, "Box webhook %s: %v", p.ID, err)
	}
	src, err := decodeSource(p.Source)
	if err != nil {
		return schemas.AuditEvent{}, err
	}
	attrs := map[string]string{"box_trigger": p.Trigger}
	if p.CreatedBy.Login != "" {
		attrs["login"] = p.CreatedBy.Login
	}
	if p.Webhook != nil && p.Webhook.ID != "" {
		attrs["box_webhook_id"] = p.Webhook.ID
	}
	ev := schemas.AuditEvent{
		ID:     "box-webhook:" + p.ID,
		Time:   at.UTC(),
		Type:   typ,
		UserID: uid,
		Source: SourceName,
		Attrs:  attrs,
	}
	if t, id := src.item(); id != "" && t != "" {
		ev.Resource = &schemas.Resource{Type: t, ID: id}
		if typ == schemas.EventFileDownload && t == "file" && src.Size > 0 {
			// A file's download moves the whole file.
			ev.Bytes = src.Size
		}
	}
	return ev, nil
}

func (m Mapping) userID(u *User) (string, error) {
	if m.UserKey == UserKeyLogin {
		if u.Login == "" {
			return "", fmt.Errorf("user %s has no login", u.ID)
		}
		return u.Login, nil
	}
	return string(u.ID), nil
}

// setIP sets ev's address from Box's ip_address; a value that is not an
// address ("Unknown IP") is kept in attrs instead.
func setIP(ev *schemas.AuditEvent, ip string) {
	ip = strings.TrimSpace(ip)
	if ip == "" {
		return
	}
	if a, err := netip.ParseAddr(ip); err == nil {
		ev.IP = a.Unmap().String()
		return
	}
	ev.Attrs["box_ip_address"] = schemas.CutUTF8(ip, schemas.MaxAttrLen)
}

// additional returns additional_details' scalar values as attrs, prefixed
// "box_", in a stable order and within the attrs' limits; objects and
// arrays are left out.
func additional(raw json.RawMessage) map[string]string {
	var m map[string]json.RawMessage
	if len(raw) == 0 || json.Unmarshal(raw, &m) != nil {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := map[string]string{}
	for _, k := range keys {
		if len(out) >= schemas.MaxAttrs/2 || k == "" || len(k) > 64 {
			continue
		}
		if v, ok := scalar(m[k]); ok && v != "" {
			out["box_"+k] = schemas.CutUTF8(v, schemas.MaxAttrLen)
		}
	}
	return out
}

// scalar renders a JSON string, number or boolean as a string.
func scalar(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "", false
	}
	switch raw[0] {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return "", false
		}
		return s, true
	case 't', 'f':
		return string(raw), string(raw) == "true" || string(raw) == "false"
	case '{', '[', 'n':
		return "", false
	}
	var n json.Number
	if json.Unmarshal(raw, &n) != nil {
		return "", false
	}
	return n.String(), true
}

// shieldAlert is the part of a SHIELD_ALERT's additional_details read.
type shieldAlert struct {
	ShieldAlert *struct {
		RuleCategory string          `json:"rule_category"`
		RuleID       json.RawMessage `json:"rule_id"`
		RuleName     string          `json:"rule_name"`
		RiskScore    json.RawMessage `json:"risk_score"`
		AlertID      json.RawMessage `json:"alert_id"`
		Priority     string          `json:"priority"`
		Link         string          `json:"link"`
		User         *struct {
			ID    json.RawMessage `json:"id"`
			Name  string          `json:"name"`
			Email string          `json:"email"`
		} `json:"user"`
	} `json:"shield_alert"`
}

func decodeShield(raw json.RawMessage) *shieldAlert {
	var s shieldAlert
	if len(raw) == 0 || json.Unmarshal(raw, &s) != nil || s.ShieldAlert == nil {
		return nil
	}
	return &s
}

// shieldUser is the user a Shield alert is about; the event's created_by
// is Box's anonymous user.
func shieldUser(raw json.RawMessage) *User {
	s := decodeShield(raw)
	if s == nil || s.ShieldAlert.User == nil {
		return nil
	}
	u := s.ShieldAlert.User
	return &User{Type: "user", ID: ID(idString(u.ID)), Name: u.Name, Login: u.Email}
}

// shieldAttrs copies what says which alert it was into attrs.
func shieldAttrs(raw json.RawMessage, attrs map[string]string) {
	s := decodeShield(raw)
	if s == nil {
		return
	}
	a := s.ShieldAlert
	for k, v := range map[string]string{
		"shield_rule_category": a.RuleCategory,
		"shield_rule_id":       idString(a.RuleID),
		"shield_rule_name":     a.RuleName,
		"shield_risk_score":    idString(a.RiskScore),
		"shield_alert_id":      idString(a.AlertID),
		"shield_priority":      a.Priority,
		"shield_link":          a.Link,
	} {
		if v != "" {
			attrs[k] = schemas.CutUTF8(v, schemas.MaxAttrLen)
		}
	}
}

// boxRecord reads the fields of an enterprise event a poller needs
// before mapping: its id, type and time.
func boxRecord(raw json.RawMessage) source.Record {
	var head struct {
		EventID   string `json:"event_id"`
		EventType string `json:"event_type"`
		CreatedAt string `json:"created_at"`
	}
	_ = json.Unmarshal(raw, &head)
	rec := source.Record{ID: head.EventID, Type: head.EventType, Raw: raw}
	if t, err := parseTime(head.CreatedAt); err == nil {
		rec.Time = t
	}
	return rec
}
