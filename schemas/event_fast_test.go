package schemas

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// agreesWithStrict checks decodeEventFast against decodeStrict on data:
// what the fast path accepts, decodeStrict accepts too and decodes to the
// same event. It reports whether the fast path accepted data.
func agreesWithStrict(t *testing.T, data []byte) bool {
	t.Helper()
	var fast AuditEvent
	if !decodeEventFast(data, &fast) {
		return false
	}
	var strict AuditEvent
	if err := decodeStrict(data, &strict); err != nil {
		t.Fatalf("the fast path accepted %q, which decodeStrict rejects: %v", data, err)
	}
	if !reflect.DeepEqual(fast, strict) {
		t.Fatalf("the fast path and decodeStrict disagree on %q:\nfast   %#v\nstrict %#v", data, fast, strict)
	}
	return true
}

// TestDecodeEventFastAgrees runs the fixtures, valid and invalid, and
// hand-written variants of a full event through both decoders. The fast
// path must take the plain valid events (or it is of no use) and, when it
// takes anything, decode it as decodeStrict does.
func TestDecodeEventFastAgrees(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("testdata", "events", "*", "*.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	took := 0
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if agreesWithStrict(t, data) {
			took++
		}
	}
	if took == 0 {
		t.Fatal("the fast path took none of the fixtures")
	}

	full := `{"id":"evt-1","time":"2026-03-02T09:00:00.123Z","type":"file.download","user_id":"user-000001",` +
		`"session_id":"s-1","token_id":"tok-1","parent_token_id":"tok-0","client_id":"app","scopes":["files.read","files.write"],` +
		`"ip":"203.0.113.7","user_agent":"Mozilla/5.0 (X11; Linux x86_64) ünïcode","device_id":"dev-1",` +
		`"geo":{"country":"NL","city":"Amsterdam","lat":52.37,"lon":-4.9e0,"asn":64500,"org":"Example B.V.","network":"business"},` +
		`"resource":{"type":"file","id":"f-1"},"bytes":1048576,"source":"idp","attrs":{"a":"1","b":""}}`
	if !agreesWithStrict(t, []byte(full)) {
		t.Fatal("the fast path refused a full, plain event")
	}
	// Each variant either takes the fast path and agrees, or is left to
	// decodeStrict; the ones marked fast must take it.
	variants := []struct {
		data string
		fast bool
	}{
		{` ` + full + "\n\t", true},
		{strings.Replace(full, `"scopes":["files.read","files.write"]`, `"scopes":[]`, 1), true},
		{strings.Replace(full, `"attrs":{"a":"1","b":""}`, `"attrs":{}`, 1), true},
		{strings.Replace(full, `"geo":{`, `"geo" : { `, 1), true},
		{strings.Replace(full, `"lat":52.37`, `"lat":0`, 1), true},
		{strings.Replace(full, `"lat":52.37`, `"lat":-0.0`, 1), true},
		{strings.Replace(full, `"bytes":1048576`, `"bytes":-3`, 1), true},
		{strings.Replace(full, `"bytes":1048576`, `"bytes":0`, 1), true},
		// Left to decodeStrict.
		{strings.Replace(full, `"id":"evt-1"`, `"id":"evt-1","id":"evt-2"`, 1), false},
		{strings.Replace(full, `"attrs":{"a":"1","b":""}`, `"attrs":{"a":"1","a":"2"}`, 1), false},
		{strings.Replace(full, `"city":"Amsterdam"`, `"city":"Amsterdam","city":"Delft"`, 1), false},
		{strings.Replace(full, `"id":"evt-1"`, `"id":"evt\u002d1"`, 1), false},
		{strings.Replace(full, `"id":"evt-1"`, `"Id":"evt-1"`, 1), false},
		{strings.Replace(full, `"id":"evt-1"`, `"id":"evt-1","extra":1`, 1), false},
		{strings.Replace(full, `"geo":{`, `"geo":null,"x":{`, 1), false},
		{strings.Replace(full, `"session_id":"s-1"`, `"session_id":null`, 1), false},
		{strings.Replace(full, `"bytes":1048576`, `"bytes":1.5`, 1), false},
		{strings.Replace(full, `"bytes":1048576`, `"bytes":1e3`, 1), false},
		{strings.Replace(full, `"bytes":1048576`, `"bytes":01`, 1), false},
		{strings.Replace(full, `"bytes":1048576`, `"bytes":-0`, 1), false},
		{strings.Replace(full, `"bytes":1048576`, `"bytes":99999999999999999999`, 1), false},
		{strings.Replace(full, `"asn":64500`, `"asn":4294967296`, 1), false},
		{strings.Replace(full, `"asn":64500`, `"asn":-1`, 1), false},
		{strings.Replace(full, `"lat":52.37`, `"lat":1e400`, 1), false},
		{strings.Replace(full, `"lat":52.37`, `"lat":01.5`, 1), false},
		{strings.Replace(full, `"lat":52.37`, `"lat":1.`, 1), false},
		{strings.Replace(full, `"lat":52.37`, `"lat":"52.37"`, 1), false},
		{strings.Replace(full, `"time":"2026-03-02T09:00:00.123Z"`, `"time":"2026-03-02 09:00:00"`, 1), false},
		{strings.Replace(full, `"source":"idp"`, "\"source\":\"i\x01dp\"", 1), false},
		{strings.Replace(full, `"source":"idp"`, "\"source\":\"i\xffdp\"", 1), false},
		{full + `{}`, false},
		{full[:len(full)-1], false},
		{strings.Replace(full, `,"bytes"`, `,,"bytes"`, 1), false},
		{strings.Replace(full, `"scopes":["files.read","files.write"]`, `"scopes":["files.read",]`, 1), false},
	}
	for i, v := range variants {
		got := agreesWithStrict(t, []byte(v.data))
		if v.fast && !got {
			t.Errorf("variant %d: the fast path refused %q", i, v.data)
		}
		if !v.fast && got {
			t.Errorf("variant %d: the fast path took %q, which it should leave to decodeStrict", i, v.data)
		}
	}
}

// FuzzDecodeEventFast checks the fast path against decodeStrict on any
// input: whatever it accepts, decodeStrict accepts and decodes the same.
func FuzzDecodeEventFast(f *testing.F) {
	addFixtures(f, "events")
	ev := AuditEvent{ID: "e", Type: EventLoginSuccess, UserID: "u", Scopes: []string{"a"}, Attrs: map[string]string{"k": "v"},
		Geo: &Geo{Country: "NL", ASN: 1}, Resource: &Resource{Type: "file", ID: "f"}, Bytes: 7}
	if data, err := json.Marshal(ev); err == nil {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		agreesWithStrict(t, data)
	})
}

// BenchmarkDecodeEventPaths compares the fast path with decodeStrict on a
// fixture.
func BenchmarkDecodeEventPaths(b *testing.B) {
	data, err := os.ReadFile(filepath.Join("testdata", "events", "valid", "login_failure.json"))
	if err != nil {
		b.Fatal(err)
	}
	for _, path := range []struct {
		name   string
		decode func([]byte, *AuditEvent) bool
	}{
		{"fast", decodeEventFast},
		{"strict", func(d []byte, ev *AuditEvent) bool { return decodeStrict(d, ev) == nil }},
	} {
		b.Run(path.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var ev AuditEvent
				if !path.decode(data, &ev) {
					b.Fatalf("%s refused the fixture", path.name)
				}
			}
		})
	}
}
