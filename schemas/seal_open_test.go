package service

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/revoked-dev/revoked/schemas"
)

// The opener opens what schemas.SealToken seals and refuses what
// schemas.SealKey.Open refuses, with the same errors.
func TestOpenerAgreesWithSealKeyOpen(t *testing.T) {
	key, err := schemas.GenerateSealKey()
	if err != nil {
		t.Fatal(err)
	}
	other, err := schemas.GenerateSealKey()
	if err != nil {
		t.Fatal(err)
	}
	o, err := newOpener(key)
	if err != nil {
		t.Fatal(err)
	}
	sealed := func(raw string, to [32]byte) string {
		s, err := schemas.SealToken(raw, to)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := sealed("at_"+strings.Repeat("x", 40), key.Public)
	data, _ := base64.StdEncoding.DecodeString(good)
	flipped := append([]byte(nil), data...)
	flipped[len(flipped)-1] ^= 1
	for name, in := range map[string]string{
		"sealed":             good,
		"empty token":        sealed("", key.Public),
		"to another key":     sealed("at_1", other.Public),
		"not base64":         "%%%",
		"too short":          base64.StdEncoding.EncodeToString(data[:40]),
		"tampered":           base64.StdEncoding.EncodeToString(flipped),
		"low-order ephemera": base64.StdEncoding.EncodeToString(append(make([]byte, 32), data[32:]...)),
		"empty":              "",
	} {
		want, wantErr := key.Open(in)
		got, gotErr := o.open(in)
		if got != want || (gotErr == nil) != (wantErr == nil) {
			t.Errorf("%s: open = %q, %v; SealKey.Open = %q, %v", name, got, gotErr, want, wantErr)
		}
		if gotErr != nil && (!errors.Is(gotErr, schemas.ErrUnseal) || gotErr.Error() != wantErr.Error()) {
			t.Errorf("%s: error %q, want %q", name, gotErr, wantErr)
		}
	}
}

func BenchmarkUnseal(b *testing.B) {
	key, err := schemas.GenerateSealKey()
	if err != nil {
		b.Fatal(err)
	}
	o, err := newOpener(key)
	if err != nil {
		b.Fatal(err)
	}
	s, err := schemas.SealToken("at_"+strings.Repeat("x", 40), key.Public)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("SealKey.Open", func(b *testing.B) {
		for b.Loop() {
			if _, err := key.Open(s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("opener", func(b *testing.B) {
		for b.Loop() {
			if _, err := o.open(s); err != nil {
				b.Fatal(err)
			}
		}
	})
}
