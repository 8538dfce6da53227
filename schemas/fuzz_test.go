package schemas

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func addFixtures(f *testing.F, dir string) {
	paths, _ := filepath.Glob(filepath.Join("testdata", dir, "*", "*.json"))
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}

// FuzzDecodeEvent checks that the decoder never panics, that every error
// wraps ErrInvalidEvent, and that whatever it accepts survives a round trip.
func FuzzDecodeEvent(f *testing.F) {
	addFixtures(f, "events")
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := DecodeEvent(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidEvent) {
				t.Fatalf("error does not wrap ErrInvalidEvent: %v", err)
			}
			return
		}
		out, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeEvent(out); err != nil {
			t.Fatalf("accepted %q but rejected its re-encoding %q: %v", data, out, err)
		}
	})
}

// FuzzDecodeCommand is FuzzDecodeEvent for commands.
func FuzzDecodeCommand(f *testing.F) {
	addFixtures(f, "commands")
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := DecodeCommand(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidCommand) {
				t.Fatalf("error does not wrap ErrInvalidCommand: %v", err)
			}
			return
		}
		out, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeCommand(out); err != nil {
			t.Fatalf("accepted %q but rejected its re-encoding %q: %v", data, out, err)
		}
	})
}

func BenchmarkDecodeEvent(b *testing.B) {
	data, err := os.ReadFile("testdata/events/valid/login_failure.json")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := DecodeEvent(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeEventTokenIDs decodes an event that carries a token id and
// a parent token id, the path the token id checks run on.
func BenchmarkDecodeEventTokenIDs(b *testing.B) {
	data, err := os.ReadFile("testdata/events/valid/token_exchanged.json")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := DecodeEvent(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeCommand(b *testing.B) {
	data, err := os.ReadFile("testdata/commands/valid/logout_sealed.json")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := DecodeCommand(data); err != nil {
			b.Fatal(err)
		}
	}
}
