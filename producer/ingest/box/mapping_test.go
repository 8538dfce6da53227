package box_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/producer/ingest"
	"github.com/revoked-dev/revoked/producer/ingest/box"
	"github.com/revoked-dev/revoked/producer/ingest/source"
	"github.com/revoked-dev/revoked/schemas"
)

func mapEvent(t *testing.T, m box.Mapping, raw []byte) (schemas.AuditEvent, error) {
	t.Helper()
	ev, err := m.Event(source.Record{Raw: raw})
	if err == nil {
		if verr := ev.Validate(); verr != nil {
			t.Fatalf("mapped event does not validate: %v\n%+v", verr, ev)
		}
	}
	return ev, err
}

// The API reference's own example is an event type with no AuditEvent:
// it is unmapped, naming its type, not dropped and not an error.
func TestReferenceEventIsUnmapped(t *testing.T) {
	_, err := mapEvent(t, box.Mapping{}, mustJSON(t, referenceEntry(t)))
	u, ok := errors.AsType[*ingest.UnmappedType](err)
	if !ok || !errors.Is(err, ingest.ErrUnmapped) || u.Type != "FILE_MARKED_MALICIOUS" {
		t.Fatalf("err %v, want unmapped FILE_MARKED_MALICIOUS", err)
	}
}

func TestMapEnterpriseEvents(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 30, 0, 0, time.FixedZone("PST", -8*3600))
	for _, c := range []struct {
		boxType string
		want    schemas.EventType
		user    string
		res     *schemas.Resource
	}{
		// The user source object gives its id as a number.
		{"LOGIN", schemas.EventLoginSuccess, "11446498", nil},
		{"FAILED_LOGIN", schemas.EventLoginFailure, "11446498", nil},
		{"ADD_LOGIN_ACTIVITY_DEVICE", schemas.EventDeviceAdded, "11446498", nil},
		{"DOWNLOAD", schemas.EventFileDownload, "11446498", &schemas.Resource{Type: "file", ID: "8903212345"}},
		{"PREVIEW", schemas.EventFilePreview, "11446498", &schemas.Resource{Type: "file", ID: "8903212345"}},
		{"UPLOAD", schemas.EventFileUpload, "11446498", &schemas.Resource{Type: "file", ID: "8903212345"}},
		{"SHARE", schemas.EventShareCreated, "11446498", &schemas.Resource{Type: "file", ID: "8903212345"}},
		{"COLLABORATION_INVITE", schemas.EventShareCreated, "11446498", &schemas.Resource{Type: "file", ID: "8903212345"}},
		{"COLLABORATION_ROLE_CHANGE", schemas.EventPermissionChanged, "11446498", &schemas.Resource{Type: "file", ID: "8903212345"}},
		// A COLLABORATION_* type the table does not list.
		{"COLLABORATION_SOMETHING_NEW", schemas.EventPermissionChanged, "11446498", &schemas.Resource{Type: "file", ID: "8903212345"}},
		{"USER_AUTHENTICATE_OAUTH2_ACCESS_TOKEN_CREATE", schemas.EventTokenIssued, "11446498", &schemas.Resource{Type: "file", ID: "8903212345"}},
		{"OAUTH2_ACCESS_TOKEN_REVOKE", schemas.EventTokenRevoked, "11446498", &schemas.Resource{Type: "file", ID: "8903212345"}},
	} {
		t.Run(c.boxType, func(t *testing.T) {
			raw := enterpriseEvent(t, "ev-"+c.boxType, c.boxType, at, "198.51.100.7")
			ev, err := mapEvent(t, box.Mapping{}, mustJSON(t, raw))
			if err != nil {
				t.Fatal(err)
			}
			if ev.Type != c.want || ev.UserID != c.user || ev.ID != "box:ev-"+c.boxType || ev.Source != "box" {
				t.Errorf("event %+v", ev)
			}
			if !ev.Time.Equal(at) || ev.Time.Location() != time.UTC {
				t.Errorf("time %v, want %v in UTC", ev.Time, at)
			}
			if ev.IP != "198.51.100.7" || ev.Attrs["box_event_type"] != c.boxType || ev.Attrs["login"] != "ceo@example.com" {
				t.Errorf("ip %q attrs %v", ev.IP, ev.Attrs)
			}
			if (c.res == nil) != (ev.Resource == nil) || c.res != nil && *c.res != *ev.Resource {
				t.Errorf("resource %+v, want %+v", ev.Resource, c.res)
			}
		})
	}
}

func TestMapByLogin(t *testing.T) {
	raw := enterpriseEvent(t, "e1", "LOGIN", time.Now(), "198.51.100.7")
	ev, err := mapEvent(t, box.Mapping{UserKey: box.UserKeyLogin}, mustJSON(t, raw))
	if err != nil || ev.UserID != "ceo@example.com" {
		t.Fatalf("%+v %v", ev, err)
	}
}

// A download by Box's anonymous user (an open shared link) is of nobody:
// it must not become one user's activity, and is unmapped.
func TestAnonymousUserIsUnmapped(t *testing.T) {
	raw := enterpriseEvent(t, "e1", "DOWNLOAD", time.Now(), "198.51.100.7")
	raw["created_by"] = map[string]any{"type": "user", "id": "2", "name": "Unknown User", "login": ""}
	_, err := mapEvent(t, box.Mapping{}, mustJSON(t, raw))
	if !errors.Is(err, ingest.ErrUnmapped) {
		t.Fatalf("err %v, want unmapped", err)
	}
}

// Box writes "Unknown IP" where it has no address; the event keeps it in
// attrs and carries no ip.
func TestUnknownIPKeptInAttrs(t *testing.T) {
	raw := enterpriseEvent(t, "e1", "LOGIN", time.Now(), "Unknown IP")
	ev, err := mapEvent(t, box.Mapping{}, mustJSON(t, raw))
	if err != nil || ev.IP != "" || ev.Attrs["box_ip_address"] != "Unknown IP" {
		t.Fatalf("%+v %v", ev, err)
	}
}

// The Shield guide's alert comes from Box's anonymous user and names its
// user, by a numeric id, inside additional_details.
func TestMapShieldAlert(t *testing.T) {
	ev, err := mapEvent(t, box.Mapping{}, fixture(t, "shield_alert.json"))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Type != schemas.EventAlertRaised || ev.UserID != "50500" || ev.IP != "10.1.2.3" || ev.Attrs["login"] != "a@b.c" {
		t.Errorf("event %+v", ev)
	}
	for k, v := range map[string]string{"shield_rule_category": "Suspicious Sessions", "shield_risk_score": "77", "shield_alert_id": "500", "shield_priority": "medium"} {
		if ev.Attrs[k] != v {
			t.Errorf("attrs[%s] = %q, want %q", k, ev.Attrs[k], v)
		}
	}
	if !ev.Time.Equal(time.Date(2019, 12, 20, 19, 38, 56, 0, time.UTC)) {
		t.Errorf("time %v", ev.Time)
	}
}

func TestMalformedEventIsAnError(t *testing.T) {
	raw := enterpriseEvent(t, "e1", "LOGIN", time.Now(), "198.51.100.7")
	raw["created_at"] = "yesterday"
	if _, err := mapEvent(t, box.Mapping{}, mustJSON(t, raw)); err == nil || errors.Is(err, ingest.ErrUnmapped) {
		t.Fatalf("err %v, want a mapping error", err)
	}
}

func TestNextStreamPosition(t *testing.T) {
	var ev box.Events
	if err := json.Unmarshal(fixture(t, "events_reference.json"), &ev); err != nil {
		t.Fatal(err)
	}
	// The reference gives the position as a JSON number; every digit is
	// kept, none rounded through a float.
	if p, err := ev.NextPosition(); err != nil || p != "1152922976252290800" {
		t.Fatalf("position %q %v", p, err)
	}
	ev.NextStreamPosition = json.RawMessage(`"1152922976252290886"`)
	if p, err := ev.NextPosition(); err != nil || p != "1152922976252290886" {
		t.Fatalf("position %q %v", p, err)
	}
	ev.NextStreamPosition = json.RawMessage(`1.5e3`)
	if _, err := ev.NextPosition(); err == nil {
		t.Fatal("a fractional position was accepted")
	}
}

func TestMapWebhookPayload(t *testing.T) {
	ev, err := box.Mapping{}.Webhook(source.Record{Raw: fixture(t, "webhook_file_uploaded.json")})
	if err != nil {
		t.Fatal(err)
	}
	if err := ev.Validate(); err != nil {
		t.Fatal(err)
	}
	want := schemas.Resource{Type: "file", ID: "73835521473"}
	if ev.Type != schemas.EventFileUpload || ev.UserID != "226067247" || ev.ID != "box-webhook:eb0c4e06-751f-442c-86f8-fd5bb404dbec" ||
		ev.Resource == nil || *ev.Resource != want || ev.Attrs["box_webhook_id"] != "53" || ev.Attrs["login"] != "johnq@dev.name" {
		t.Errorf("event %+v", ev)
	}
	if !ev.Time.Equal(time.Date(2016, 7, 11, 17, 10, 32, 0, time.UTC)) {
		t.Errorf("time %v", ev.Time)
	}
}

func webhookVector(t *testing.T) (http.Header, []byte) {
	t.Helper()
	var hs map[string]string
	if err := json.Unmarshal(fixture(t, "webhook_signed_headers.json"), &hs); err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	for k, v := range hs {
		h.Set(k, v)
	}
	return h, fixture(t, "webhook_signed_body.json")
}

// Box's documented delivery verifies with either of its keys, and only
// within ten minutes of its timestamp.
func TestVerifyDocumentedSignature(t *testing.T) {
	h, body := webhookVector(t)
	sent := time.Date(2020, 1, 1, 7, 0, 0, 0, time.UTC)
	primary, secondary := config.NewSecret("SamplePrimaryKey"), config.NewSecret("SampleSecondaryKey")
	for _, c := range []struct {
		name string
		v    box.Verifier
		h    func(http.Header)
		body []byte
		now  time.Time
		want error
	}{
		{"both keys", box.Verifier{Primary: primary, Secondary: secondary, MaxAge: 10 * time.Minute}, nil, body, sent.Add(time.Minute), nil},
		{"primary only", box.Verifier{Primary: primary, MaxAge: 10 * time.Minute}, nil, body, sent.Add(time.Minute), nil},
		{"secondary only (rotation)", box.Verifier{Secondary: secondary, MaxAge: 10 * time.Minute}, nil, body, sent.Add(time.Minute), nil},
		{"wrong keys", box.Verifier{Primary: config.NewSecret("Fd28OJrZ8oNxkgmS7TbjXNgrG8v"), MaxAge: 10 * time.Minute}, nil, body, sent.Add(time.Minute), box.ErrSignature},
		{"keys swapped", box.Verifier{Primary: secondary, Secondary: primary, MaxAge: 10 * time.Minute}, nil, body, sent.Add(time.Minute), box.ErrSignature},
		{"body changed", box.Verifier{Primary: primary, MaxAge: 10 * time.Minute}, nil, append(append([]byte(nil), body...), ' '), sent.Add(time.Minute), box.ErrSignature},
		{"timestamp changed", box.Verifier{Primary: primary, MaxAge: 10 * time.Minute},
			func(h http.Header) { h.Set(box.HeaderDeliveryTimestamp, "2020-01-01T00:09:00-07:00") }, body, sent.Add(10 * time.Minute), box.ErrSignature},
		{"eleven minutes late", box.Verifier{Primary: primary, MaxAge: 10 * time.Minute}, nil, body, sent.Add(11 * time.Minute), box.ErrStale},
		{"from the future", box.Verifier{Primary: primary, MaxAge: 10 * time.Minute}, nil, body, sent.Add(-11 * time.Minute), box.ErrStale},
		{"no timestamp", box.Verifier{Primary: primary, MaxAge: 10 * time.Minute}, func(h http.Header) { h.Del(box.HeaderDeliveryTimestamp) }, body, sent, box.ErrTimestamp},
		{"other version", box.Verifier{Primary: primary, MaxAge: 10 * time.Minute}, func(h http.Header) { h.Set(box.HeaderSignatureVersion, "2") }, body, sent, box.ErrSignatureScheme},
		{"no signature", box.Verifier{Primary: primary, MaxAge: 10 * time.Minute},
			func(h http.Header) { h.Del(box.HeaderSignaturePrimary); h.Del(box.HeaderSignatureSecondary) }, body, sent, box.ErrSignature},
	} {
		t.Run(c.name, func(t *testing.T) {
			hh := h.Clone()
			if c.h != nil {
				c.h(hh)
			}
			err := c.v.Verify(hh, c.body, c.now)
			if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("err %v, want %v", err, c.want)
			}
		})
	}
	// Sign reproduces the documented signatures.
	if got := box.Sign("SamplePrimaryKey", body, h.Get(box.HeaderDeliveryTimestamp)); got != h.Get(box.HeaderSignaturePrimary) {
		t.Errorf("Sign = %s", got)
	}
}
