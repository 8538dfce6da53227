package box_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// fixture reads testdata/name.
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// object decodes testdata/name into a generic JSON object.
func object(t testing.TB, name string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(fixture(t, name), &m); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return m
}

// referenceEntry is the one entry of the API reference's events response.
func referenceEntry(t testing.TB) map[string]any {
	t.Helper()
	return object(t, "events_reference.json")["entries"].([]any)[0].(map[string]any)
}

// enterpriseEvent builds an enterprise event of type typ in the shape the
// API reference documents: the reference entry's envelope, with the
// source object of the event source guide that suits the type (a user
// for logins, an item for the rest), and its own id, time and address.
func enterpriseEvent(t testing.TB, id, typ string, at time.Time, ip string) map[string]any {
	t.Helper()
	e := referenceEntry(t)
	e["event_id"] = id
	e["event_type"] = typ
	e["created_at"] = at.Format(time.RFC3339)
	e["recorded_at"] = at.Add(time.Second).Format(time.RFC3339)
	e["ip_address"] = ip
	e["session_id"] = nil
	e["additional_details"] = nil
	switch typ {
	case "LOGIN", "FAILED_LOGIN", "ADD_LOGIN_ACTIVITY_DEVICE", "CHANGE_ADMIN_ROLE":
		e["source"] = object(t, "source_user.json")["source"]
	default:
		e["source"] = object(t, "source_item.json")["source"]
	}
	return e
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
