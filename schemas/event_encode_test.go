package schemas

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// appendMatchesMarshal fails t unless AppendJSON gives json.Marshal's
// bytes for ev, or both refuse it.
func appendMatchesMarshal(t *testing.T, ev *AuditEvent) {
	t.Helper()
	want, werr := json.Marshal(ev)
	got, gerr := ev.AppendJSON(nil)
	if (werr != nil) != (gerr != nil) {
		t.Fatalf("json.Marshal error %v, AppendJSON error %v", werr, gerr)
	}
	if werr == nil && !bytes.Equal(got, want) {
		t.Fatalf("AppendJSON differs from json.Marshal:\n got %s\nwant %s", got, want)
	}
}

func TestAppendJSONMatchesMarshal(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	full := AuditEvent{
		ID: "evt_1", Time: time.Date(2026, 12, 7, 13, 0, 0, 123456789, time.FixedZone("", 5*3600+1800)),
		Type: EventTokenExchanged, UserID: "alice<admin>&co", SessionID: "s\"1\\", TokenID: "tok\n\r\t\b\f\x01\x1f",
		ParentTokenID: "parent", ClientID: "web-app", Scopes: []string{"files.read", "item_preview"},
		IP: "2001:db8::1", UserAgent: "Mozilla/5.0 \u2028 \u2029 é 日本 \xff\xfe bad", DeviceID: "dev",
		Geo:      &Geo{Country: "DE", City: "Köln", Lat: f(50.9375), Lon: f(-6.96e-7), ASN: 3320, Org: "Deutsche Telekom AG", Network: NetworkResidential},
		Resource: &Resource{Type: "file", ID: "f/1"},
		Bytes:    -42, Source: "box", Attrs: map[string]string{"z": "last", "a": "first", "m<": "\x00"},
	}
	cases := map[string]AuditEvent{
		"full":         full,
		"minimal":      {ID: "e", Time: time.Unix(0, 0).UTC(), Type: EventLogout, UserID: "u"},
		"empty":        {},
		"empty parts":  {Scopes: []string{}, Attrs: map[string]string{}, Geo: &Geo{}, Resource: &Resource{}},
		"zero floats":  {Geo: &Geo{Lat: f(0), Lon: f(math.Copysign(0, -1))}},
		"large floats": {Geo: &Geo{Lat: f(1e21), Lon: f(123456789.125)}},
		"tiny floats":  {Geo: &Geo{Lat: f(1e-7), Lon: f(-2.5e-300)}},
		"nan":          {Geo: &Geo{Lat: f(math.NaN()), Lon: f(1)}},
		"inf":          {Geo: &Geo{Lat: f(1), Lon: f(math.Inf(-1))}},
	}
	for name, ev := range cases {
		t.Run(name, func(t *testing.T) { appendMatchesMarshal(t, &ev) })
	}
	// Every event of the test data that decodes.
	paths, _ := filepath.Glob(filepath.Join("testdata", "events", "*", "*.json"))
	if len(paths) == 0 {
		t.Fatal("no event test data")
	}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var ev AuditEvent
		if json.Unmarshal(data, &ev) != nil {
			continue
		}
		t.Run(filepath.Base(p), func(t *testing.T) { appendMatchesMarshal(t, &ev) })
	}
}

// AppendJSON gives json.Marshal's bytes whatever the strings hold.
func FuzzAppendJSON(f *testing.F) {
	f.Add("alice", "Mozilla/5.0", "k", "v", 48.85, int64(0))
	f.Add("<&>", "\u2028\u2029\xff", "\x00", "\"\\", -1e-9, int64(-1))
	f.Add("", "", "", "", 0.0, int64(1<<40))
	f.Fuzz(func(t *testing.T, user, agent, key, val string, coord float64, n int64) {
		ev := AuditEvent{
			ID: user + "1", Time: time.Unix(n%(1<<33), n%1e9).UTC(), Type: EventType(agent), UserID: user,
			UserAgent: agent, Scopes: []string{key, val}, Geo: &Geo{City: val, Lat: &coord, Lon: &coord, Org: key},
			Resource: &Resource{Type: key, ID: val}, Bytes: n, Attrs: map[string]string{key: val, val: key},
		}
		appendMatchesMarshal(t, &ev)
	})
}

func BenchmarkAppendJSON(b *testing.B) {
	lat, lon := 50.9375, 6.9603
	ev := AuditEvent{
		ID: "evt_0123456789abcdef01234567", Time: time.Date(2026, 12, 7, 13, 0, 0, 123456789, time.UTC),
		Type: EventTokenUsed, UserID: "user-004211", SessionID: "sess-8f2a", TokenID: "tokfp_0123456789abcdef0123456789abcdef",
		ClientID: "web-app", IP: "198.51.100.23", UserAgent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
		DeviceID: "dev-7731", Geo: &Geo{Country: "DE", City: "Cologne", Lat: &lat, Lon: &lon, ASN: 3320}, Source: "simulator",
	}
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(&ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("AppendJSON", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			var err error
			if buf, err = ev.AppendJSON(buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
	})
}
