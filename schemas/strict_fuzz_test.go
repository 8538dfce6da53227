package schemas

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// legacyDecode is how events and commands were decoded before
// decodeStrict: checkRaw, then encoding/json.
func legacyDecode[T any](data []byte, v *T) error {
	if err := checkRaw(data, reflect.TypeFor[T]()); err != nil {
		return err
	}
	return strictUnmarshal(data, v)
}

// tighter are the reasons decodeStrict refuses input that checkRaw with
// encoding/json accepted: a key given twice (encoding/json keeps the last
// value), an escaped unpaired surrogate (it turns it into U+FFFD), and a
// closing bracket after the value (its Decoder.More stops there).
var tighter = []string{"duplicate object member name", "surrogate", "after top-level value"}

// checkAgrees fails when decodeStrict accepts what the legacy decoder
// refuses, decodes it into another value, or refuses what the legacy
// decoder accepts for a reason other than those of tighter.
func checkAgrees[T any](t *testing.T, data []byte) {
	t.Helper()
	var got, want T
	err := decodeStrict(data, &got)
	legacyErr := legacyDecode(data, &want)
	switch {
	case err == nil && legacyErr != nil:
		t.Fatalf("decodeStrict accepts %q, which the legacy decoder refuses: %v", data, legacyErr)
	case err == nil && !reflect.DeepEqual(got, want):
		t.Fatalf("%q decodes to\n%+v\nnot, as before, to\n%+v", data, got, want)
	case err != nil && legacyErr == nil:
		fe, ok := err.(*FieldError)
		if !ok {
			t.Fatalf("%q: error %T %v is not a *FieldError", data, err, err)
		}
		for _, r := range tighter {
			if strings.Contains(fe.Reason, r) {
				return
			}
		}
		t.Fatalf("decodeStrict refuses %q, which the legacy decoder accepts: %v", data, err)
	}
}

// corpus returns the inputs of the fixtures under testdata/dir and of the
// fuzz corpus testdata/fuzz/fuzzName.
func corpus(t testing.TB, dir, fuzzName string) [][]byte {
	var out [][]byte
	paths, _ := filepath.Glob(filepath.Join("testdata", dir, "*", "*.json"))
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, data)
	}
	paths, _ = filepath.Glob(filepath.Join("testdata", "fuzz", fuzzName, "*"))
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		_, lit, ok := bytes.Cut(data, []byte("\n[]byte("))
		if !ok {
			t.Fatalf("%s: not a []byte corpus entry", p)
		}
		s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimSpace(string(lit)), ")"))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		out = append(out, []byte(s))
	}
	return out
}

// eventEdges are inputs on the edges where encoding/json and
// go-json-experiment/json differ.
var eventEdges = []string{
	`{"id":"e","time":"2026-01-01T00:00:00Z","type":"logout","user_id":"u","user_id":"v"}`,
	`{"id":"e","time":"2026-01-01T00:00:00Z","type":"logout","user_id":"u"}}`,
	`{"id":"e","time":"2026-01-01T00:00:00Z","type":"logout","user_id":"u"}]`,
	`{"id":"e","time":"2026-01-01T00:00:00Z","type":"logout","user_id":"u"} `,
	`{"id":"e","time":"2026-01-01T00:00:00\u005a","type":"logout","user_id":"u"}`,
	`{"id":"e","time":"2026-01-01T0:00:00Z","type":"logout","user_id":"u"}`,
	`{"id":"e","time":"2026-01-01T00:00:00,5Z","type":"logout","user_id":"u"}`,
	`{"id":"e","time":"2026-01-01T00:00:00+24:00","type":"logout","user_id":"u"}`,
	`{"id":"e","time":"2026-01-01t00:00:00z","type":"logout","user_id":"u"}`,
	`{"id":"e","time":"2026-01-01T00:00:00.123456789+05:30","type":"logout","user_id":"u"}`,
	`{"id":"e","time":null,"type":"logout","user_id":"u"}`,
	`{"id":"e","time":"2026-01-01T00:00:00Z","type":"logout","user_id":"u","user_agent":"\ud800"}`,
	`{"id":"e","time":"2026-01-01T00:00:00Z","type":"logout","user_id":"u","user_agent":"\ud83d\ude00"}`,
	`{"id":"e","time":"2026-01-01T00:00:00Z","type":"logout","User_id":"u"}`,
	`{"id":"e","time":"2026-01-01T00:00:00Z","type":"logout","us\u0065r_id":"u"}`,
	`{"id":"e","time":"2026-01-01T00:00:00Z","type":"logout","user_id":"u","attrs":{"K":"v","k":null}}`,
	`{"id":"e","time":"2026-01-01T00:00:00Z","type":"logout","user_id":"u","attrs":{"k":"v","k":"w"}}`,
	`{"id":"e","time":"2026-01-01T00:00:00Z","type":"logout","user_id":"u","bytes":1.0}`,
	`{"id":"e","time":"2026-01-01T00:00:00Z","type":"logout","user_id":"u","bytes":1e3}`,
	`{"id":"e","time":"2026-01-01T00:00:00Z","type":"logout","user_id":"u","bytes":-0}`,
	`{"id":"e","time":"2026-01-01T00:00:00Z","type":"logout","user_id":"u","bytes":9223372036854775808}`,
	`{"id":"e","time":"2026-01-01T00:00:00Z","type":"logout","user_id":"u","geo":{"asn":-0}}`,
	`{"id":"e","time":"2026-01-01T00:00:00Z","type":"logout","user_id":"u","geo":{"asn":4294967296}}`,
	`{"id":"e","time":"2026-01-01T00:00:00Z","type":"logout","user_id":"u","geo":{"lat":1e400,"lon":0}}`,
	`{"id":"e","time":"2026-01-01T00:00:00Z","type":"logout","user_id":"u","geo":{"lat":-0.0,"lon":1E-2}}`,
	`{"id":"e","time":"2026-01-01T00:00:00Z","type":"logout","user_id":"u","geo":null,"resource":null,"scopes":null,"attrs":null}`,
	`{"id":"e","time":"2026-01-01T00:00:00Z","type":"logout","user_id":"u","scopes":[null,"a"]}`,
	`{"id":"e","time":"2026-01-01T00:00:00Z","type":"logout","user_id":"u","geo":{"lat":"1"}}`,
	`{"id":"e","time":"2026-01-01T00:00:00Z","type":"logout","user_id":"u","geo":{"Lat":1}}`,
	`{"id":"e","time":"2026-01-01T00:00:00Z","type":"logout","user_id":"u","resource":{"type":"f","id":"1","x":2}}`,
	"\ufeff" + `{"id":"e","time":"2026-01-01T00:00:00Z","type":"logout","user_id":"u"}`,
	`{"id":"e","time":"2026-01-01T00:00:00Z","type":"logout","user_id":"u","source":"a\u0000b"}`,
	`{"id":"e","time":"2026-01-01T00:00:00Z","type":"logout","user_id":"u","source":"a` + "\xff" + `"}`,
	`null`, `[]`, `""`, `{}`, ` `, `{"id":`, `{"id":"e",}`,
}

// commandEdges are eventEdges for commands.
var commandEdges = []string{
	`{"command_id":"c","issued_at":"2026-01-01T00:00:00Z","expires_at":"2026-01-01T00:10:00Z","issuer":"i","target":{"kind":"user","user_id":"u","include_downscoped":true,"include_downscoped":false},"action":"revoke","mode":"enforce","reason":{"rule_id":"r","rule_version":1,"severity":"high","summary":"s"}}`,
	`{"command_id":"c","issued_at":"2026-01-01T00:00:00Z","expires_at":"2026-01-01T00:10:00Z","issuer":"i","target":{"kind":"user","user_id":"u","include_downscoped":null},"action":"revoke","mode":"enforce","reason":{"rule_id":"r","rule_version":1.5,"severity":"high","summary":"s"}}`,
	`{"command_id":"c","issued_at":"2026-01-01T00:00:00Z","expires_at":"2026-01-01T00:10:00Z","issuer":"i","target":{"kind":"user","user_id":"u"},"action":"revoke","mode":"enforce","reason":{"rule_id":"r","rule_version":1,"severity":"high","summary":"s","signals":[{"rule_id":"x","weight":1e1,"time":"2026-01-01T00:00:00Z"}]}}`,
	`{"command_id":"c","issued_at":"2026-01-01T00:00:00Z","expires_at":"2026-01-01T00:10:00Z","issuer":"i","target":{"kind":"user","user_id":"u"},"action":"revoke","mode":"enforce","reason":{"rule_id":"r","rule_version":1,"severity":"high","summary":"s","Signals":[]}}`,
}

// decodeStrict agrees with the legacy decoder on the fixtures, the fuzz
// corpora and the edges where the two JSON packages differ.
func TestDecodeStrictAgreesWithLegacy(t *testing.T) {
	for _, data := range corpus(t, "events", "FuzzDecodeEvent") {
		checkAgrees[AuditEvent](t, data)
	}
	for _, s := range eventEdges {
		checkAgrees[AuditEvent](t, []byte(s))
	}
	for _, data := range corpus(t, "commands", "FuzzDecodeCommand") {
		checkAgrees[RevokeCommand](t, data)
	}
	for _, s := range commandEdges {
		checkAgrees[RevokeCommand](t, []byte(s))
	}
}

// FuzzDecodeStrictEvent checks decodeStrict against the legacy decoder on
// any input (see checkAgrees).
func FuzzDecodeStrictEvent(f *testing.F) {
	for _, data := range corpus(f, "events", "FuzzDecodeEvent") {
		f.Add(data)
	}
	for _, s := range eventEdges {
		f.Add([]byte(s))
	}
	f.Fuzz(checkAgrees[AuditEvent])
}

// FuzzDecodeStrictCommand is FuzzDecodeStrictEvent for commands.
func FuzzDecodeStrictCommand(f *testing.F) {
	for _, data := range corpus(f, "commands", "FuzzDecodeCommand") {
		f.Add(data)
	}
	for _, s := range commandEdges {
		f.Add([]byte(s))
	}
	f.Fuzz(checkAgrees[RevokeCommand])
}
