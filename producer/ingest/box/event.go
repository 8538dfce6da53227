// Package box reads Box into the pipeline: the enterprise event stream
// (GET /2.0/events?stream_type=admin_logs_streaming, paged by
// stream_position, with client-credentials auth) through a source.Poller,
// and webhooks v2 through a receiver that verifies Box's signatures. A
// mapping turns Box's event types and webhook triggers into AuditEvents;
// what it has no AuditEvent for is kept on the unmapped topic.
package box

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// AnonymousUserID is Box's id for a user who is not logged in (a download
// through an open shared link, say).
const AnonymousUserID = "2"

// Formats of the records this package reads, for the unmapped topic's
// headers.
const (
	FormatEvent   = "box-event"
	FormatWebhook = "box-webhook-v2"
)

// ID is a Box id. Box's documents give ids as strings ("11446498") in
// most places and as numbers in others (the user source object of the
// event source guide, Shield alerts' users); both read the same.
type ID string

// UnmarshalJSON reads a string, a number or null.
func (id *ID) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*id = ""
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*id = ID(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("id: want a string or a number, got %s", b)
	}
	if _, err := strconv.ParseUint(n.String(), 10, 64); err != nil {
		return fmt.Errorf("id: %s is not a whole number", n)
	}
	*id = ID(n.String())
	return nil
}

// User is a Box user as events carry it (a mini user).
type User struct {
	Type  string `json:"type"`
	ID    ID     `json:"id"`
	Name  string `json:"name"`
	Login string `json:"login"`
}

// anonymous reports whether u names nobody: absent, or Box's anonymous
// user.
func (u *User) anonymous() bool {
	return u == nil || u.ID == "" || u.ID == AnonymousUserID
}

// Event is an enterprise event of the admin_logs and admin_logs_streaming
// streams. Source is kept raw: it is a user, an item or null depending on
// the event type.
type Event struct {
	Type              string          `json:"type"`
	EventID           string          `json:"event_id"`
	EventType         string          `json:"event_type"`
	CreatedAt         string          `json:"created_at"`
	RecordedAt        string          `json:"recorded_at,omitempty"`
	CreatedBy         *User           `json:"created_by"`
	ActionBy          *User           `json:"action_by"`
	Source            json.RawMessage `json:"source"`
	IPAddress         string          `json:"ip_address"`
	SessionID         *string         `json:"session_id"`
	AdditionalDetails json.RawMessage `json:"additional_details"`
}

// Source is what an event's source can be: a user, an enterprise event's
// item (item_type, item_id, item_name), or a full file or folder (type,
// id, name, size), as user events and webhooks carry it.
type Source struct {
	Type     string `json:"type"`
	ID       ID     `json:"id"`
	Name     string `json:"name"`
	Login    string `json:"login"`
	ItemType string `json:"item_type"`
	ItemID   ID     `json:"item_id"`
	ItemName string `json:"item_name"`
	Size     int64  `json:"size"`
	OwnedBy  *User  `json:"owned_by"`
}

// decodeSource reads raw into a Source; null and absent give nil.
func decodeSource(raw json.RawMessage) (*Source, error) {
	if len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil, nil
	}
	var s Source
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	return &s, nil
}

// user returns the source as a user, or nil when it is something else.
func (s *Source) user() *User {
	if s == nil || s.Type != "user" {
		return nil
	}
	return &User{Type: s.Type, ID: s.ID, Name: s.Name, Login: s.Login}
}

// item returns the type and id of the item the source names, empty for a
// user or nothing.
func (s *Source) item() (typ, id string) {
	switch {
	case s == nil:
		return "", ""
	case s.ItemID != "":
		return s.ItemType, string(s.ItemID)
	case s.Type != "" && s.Type != "user" && s.ID != "":
		return s.Type, string(s.ID)
	}
	return "", ""
}

// Events is the response of GET /2.0/events.
type Events struct {
	ChunkSize int `json:"chunk_size"`
	// NextStreamPosition is a string or a number (Box documents both); it
	// is kept raw so that no digit of a 19-digit position is lost to a
	// float.
	NextStreamPosition json.RawMessage   `json:"next_stream_position"`
	Entries            []json.RawMessage `json:"entries"`
}

// NextPosition returns next_stream_position as a string.
func (e *Events) NextPosition() (string, error) {
	raw := bytes.TrimSpace(e.NextStreamPosition)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "", nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", fmt.Errorf("next_stream_position: %w", err)
		}
		return s, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return "", fmt.Errorf("next_stream_position: %w", err)
	}
	if _, err := strconv.ParseUint(n.String(), 10, 64); err != nil {
		return "", fmt.Errorf("next_stream_position %s is not a whole number", n)
	}
	return n.String(), nil
}

// parseTime reads Box's RFC 3339 times ("2022-12-12T10:53:43-08:00").
func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, strings.TrimSpace(s))
	if err != nil {
		return time.Time{}, fmt.Errorf("time %q: %w", s, err)
	}
	return t, nil
}

// idString reads a JSON id Box gives as a string or a number (Shield
// alerts give user ids as numbers).
func idString(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}
