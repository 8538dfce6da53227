package schemas

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// PeekEventType reads the type DecodeEvent would decode, from every valid
// fixture, and only the top-level "type" member, by its exact name.
func TestPeekEventTypeAgreesWithDecodeEvent(t *testing.T) {
	files, err := filepath.Glob("testdata/events/valid/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("fixtures: %v (%d files)", err, len(files))
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := DecodeEvent(data)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		got, err := PeekEventType(data)
		if err != nil || got != ev.Type {
			t.Errorf("%s: PeekEventType = %q, %v; DecodeEvent's type %q", f, got, err, ev.Type)
		}
	}

	for _, c := range []struct {
		name, data string
		want       EventType
		invalid    bool
	}{
		{name: "nested type is not the event's", data: `{"attrs":{"type":"token.exchanged"},"type":"login.success"}`, want: EventLoginSuccess},
		{name: "a key in another case is not type", data: `{"Type":"token.exchanged"}`, want: ""},
		{name: "no type", data: `{"id":"e1"}`, want: ""},
		{name: "not an object", data: `["token.exchanged"]`, invalid: true},
		{name: "type not a string", data: `{"type":7}`, invalid: true},
		{name: "the first type is read", data: `{"type":"login.success","type":"token.exchanged"}`, want: EventLoginSuccess},
		{name: "truncated", data: `{"type":"token.exch`, invalid: true},
	} {
		got, err := PeekEventType([]byte(c.data))
		if c.invalid {
			if !errors.Is(err, ErrInvalidEvent) {
				t.Errorf("%s: PeekEventType = %q, %v; want ErrInvalidEvent", c.name, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s: PeekEventType = %q, %v; want %q", c.name, got, err, c.want)
		}
	}
}

func BenchmarkPeekEventType(b *testing.B) {
	data, err := os.ReadFile("testdata/events/valid/login_failure.json")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := PeekEventType(data); err != nil {
			b.Fatal(err)
		}
	}
}
