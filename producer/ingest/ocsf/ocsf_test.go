package ocsf_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/revoked-dev/revoked/producer/ingest"
	"github.com/revoked-dev/revoked/producer/ingest/ocsf"
	"github.com/revoked-dev/revoked/schemas"
)

// line reads testdata/name and compacts it to one JSONL line.
func line(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return out.Bytes()
}

func decode(t *testing.T, d ocsf.Decoder, b []byte) (schemas.AuditEvent, error) {
	t.Helper()
	ev, err := d.Decode(b)
	if err == nil {
		if verr := ev.Validate(); verr != nil {
			t.Fatalf("decoded event does not validate: %v\n%+v", verr, ev)
		}
	}
	return ev, err
}

func TestDecodeOCSFExamples(t *testing.T) {
	t.Run("CloudTrail console sign-in", func(t *testing.T) {
		ev, err := decode(t, ocsf.Decoder{}, line(t, "cloudtrail_authentication.json"))
		if err != nil {
			t.Fatal(err)
		}
		if ev.Type != schemas.EventLoginSuccess || ev.UserID != "arn:aws:iam::111122223333:user/anaya" || ev.IP != "192.0.2.0" ||
			ev.ID != "fed06f42-cb12-4764-8c69-example" || ev.Source != "CloudTrail" || !ev.Time.Equal(time.UnixMilli(1699633474000)) ||
			!strings.HasPrefix(ev.UserAgent, "Mozilla/5.0 (Macintosh") {
			t.Errorf("event %+v", ev)
		}
		if ev.Attrs["ocsf_class_uid"] != "3002" || ev.Attrs["ocsf_vendor"] != "AWS" {
			t.Errorf("attrs %v", ev.Attrs)
		}
	})
	t.Run("Windows 4625 failed logon", func(t *testing.T) {
		ev, err := decode(t, ocsf.Decoder{}, line(t, "windows_4625_authentication.json"))
		if err != nil {
			t.Fatal(err)
		}
		// The uid the example gives is "NULL SID"; its "-" is no address.
		if ev.Type != schemas.EventLoginFailure || ev.UserID != "NULL SID" || ev.IP != "" || ev.Attrs["ocsf_src_ip"] != "-" ||
			ev.Attrs["ocsf_status_detail"] != "Unknown user name or bad password." || ev.Attrs["user_name"] != "Administrator" {
			t.Errorf("event %+v", ev)
		}
		ev, err = decode(t, ocsf.Decoder{UserKey: ocsf.UserKeyName}, line(t, "windows_4625_authentication.json"))
		if err != nil || ev.UserID != "Administrator" {
			t.Errorf("keyed by name: %+v %v", ev, err)
		}
	})
	t.Run("Windows 4624 logon", func(t *testing.T) {
		ev, err := decode(t, ocsf.Decoder{}, line(t, "windows_4624_authentication.json"))
		if err != nil || ev.Type != schemas.EventLoginSuccess || ev.UserID != `NT AUTHORITY\SYSTEM` {
			t.Errorf("%+v %v", ev, err)
		}
	})
	t.Run("CloudTrail API call", func(t *testing.T) {
		ev, err := decode(t, ocsf.Decoder{}, line(t, "cloudtrail_api_activity.json"))
		if err != nil {
			t.Fatal(err)
		}
		// Its actor's credential_uid is an AWS access key id, which is
		// not this pipeline's kind of token id and is left out.
		if ev.Type != schemas.EventTokenUsed || ev.UserID != "arn:aws:iam::1111111111111:user/Level6" || ev.TokenID != "" ||
			ev.IP != "205.8.181.128" || ev.Attrs["api_operation"] != "DescribeDirectConnectGateways" || ev.Attrs["api_service"] != "directconnect.amazonaws.com" {
			t.Errorf("event %+v", ev)
		}
	})
	t.Run("Account Change Create is unmapped", func(t *testing.T) {
		_, err := decode(t, ocsf.Decoder{}, line(t, "cloudtrail_account_change.json"))
		u, ok := errors.AsType[*ingest.UnmappedType](err)
		if !ok || u.Type != "class_uid 3001 activity_id 1" {
			t.Errorf("err %v", err)
		}
	})
	t.Run("DNS Activity is unmapped", func(t *testing.T) {
		_, err := decode(t, ocsf.Decoder{}, line(t, "route53_dns_activity.json"))
		if !errors.Is(err, ingest.ErrUnmapped) || !strings.Contains(err.Error(), "4003") {
			t.Errorf("err %v", err)
		}
	})
	t.Run("EKS time in microseconds is refused", func(t *testing.T) {
		_, err := decode(t, ocsf.Decoder{}, line(t, "eks_api_activity.json"))
		if err == nil || errors.Is(err, ingest.ErrUnmapped) || !strings.Contains(err.Error(), "milliseconds") {
			t.Errorf("err %v", err)
		}
	})
}

// Before 1.0, class 3005 was API Activity; it is not read as 1.0's User
// Access Management.
func TestPreReleaseClassNumbersAreNotRead(t *testing.T) {
	b := []byte(`{"class_uid":3005,"class_name":"API Activity","category_uid":3,"activity_id":1,"time":1459524708000,"severity_id":1,` +
		`"metadata":{"version":"1.0.0-rc.2","product":{"name":"CloudTrail","vendor_name":"AWS"}},"actor":{"user":{"uid":"123456789012","name":"Alice"}}}`)
	if _, err := decode(t, ocsf.Decoder{}, b); !errors.Is(err, ingest.ErrUnmapped) || !strings.Contains(err.Error(), "predates 1.0") {
		t.Errorf("err %v", err)
	}
}

func f64(v float64) *float64 { return &v }

// Every AuditEvent type renders as OCSF and reads back to the same event.
func TestRoundTrip(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 30, 1, 123456789, time.UTC)
	base := schemas.AuditEvent{
		Time: at, UserID: "u-alice", SessionID: "s-1", ClientID: "c-app", IP: "198.51.100.7",
		UserAgent: "Mozilla/5.0", DeviceID: "d-1", Source: "box",
		Geo:   &schemas.Geo{Country: "DE", City: "Berlin", Lat: f64(52.52), Lon: f64(13.405), ASN: 3320, Org: "Deutsche Telekom AG", Network: schemas.NetworkResidential},
		Attrs: map[string]string{"login": "alice@example.com"},
	}
	for _, typ := range schemas.EventTypes {
		t.Run(string(typ), func(t *testing.T) {
			ev := base
			ev.ID, ev.Type = "ev-"+string(typ), typ
			switch {
			case strings.HasPrefix(string(typ), "token."):
				ev.TokenID, ev.Scopes = "tfp_AAAAAAAAAAAAAAAAAAAAAA", []string{"files.read"}
				ev.Resource = &schemas.Resource{Type: "folder", ID: "f-9"}
				if typ == schemas.EventTokenExchanged {
					ev.ParentTokenID = "tfp_BBBBBBBBBBBBBBBBBBBBBB"
				}
			case strings.HasPrefix(string(typ), "file.") || typ == schemas.EventShareCreated:
				ev.Resource, ev.Bytes = &schemas.Resource{Type: "file", ID: "8903212345"}, 4096
			case typ == schemas.EventPermissionChanged:
				ev.Resource = &schemas.Resource{Type: "folder", ID: "f-9"}
				ev.Attrs = map[string]string{"role": "co-owner"}
			case typ == schemas.EventAlertRaised:
				ev.Attrs = map[string]string{"shield_rule_name": "Suspicious Session", "shield_rule_category": "Suspicious Sessions"}
			}
			if err := ev.Validate(); err != nil {
				t.Fatal(err)
			}
			o, err := ocsf.FromAuditEvent(&ev)
			if err != nil {
				t.Fatal(err)
			}
			b, err := json.Marshal(o)
			if err != nil {
				t.Fatal(err)
			}
			back, err := decode(t, ocsf.Decoder{}, b)
			if err != nil {
				t.Fatalf("%v\n%s", err, b)
			}
			if !reflect.DeepEqual(back, ev) {
				t.Errorf("read back\n%+v\nwant\n%+v\nfrom %s", back, ev, b)
			}
		})
	}
}

// The rendering uses the schema's attribute names and units.
func TestRenderedAttributes(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 30, 1, 0, time.UTC)
	ev := schemas.AuditEvent{ID: "e1", Time: at, Type: schemas.EventMFAFailure, UserID: "u1", IP: "198.51.100.7", Source: "okta",
		Geo: &schemas.Geo{Country: "DE", Lat: f64(52.52), Lon: f64(13.405), ASN: 3320}}
	o, err := ocsf.FromAuditEvent(&ev)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(o)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	get := func(path string) any {
		var v any = m
		for _, k := range strings.Split(path, ".") {
			obj, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = obj[k]
		}
		return v
	}
	for path, want := range map[string]any{
		"class_uid": 3002.0, "category_uid": 3.0, "activity_id": 1.0, "type_uid": 300201.0, "status_id": 2.0, "status": "Failure",
		"time": float64(at.UnixMilli()), "severity_id": 1.0, "is_mfa": true, "user.uid": "u1", "service.name": "okta",
		"src_endpoint.ip": "198.51.100.7", "src_endpoint.location.country": "DE", "src_endpoint.location.long": 13.405,
		"src_endpoint.autonomous_system.number": 3320.0, "metadata.product.name": "revoked", "metadata.version": ocsf.Version,
		"metadata.uid": "e1", "metadata.log_provider": "okta",
	} {
		if got := get(path); got != want {
			t.Errorf("%s = %v, want %v", path, got, want)
		}
	}
}
