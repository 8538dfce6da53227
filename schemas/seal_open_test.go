package schemas_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/crypto/nacl/box"

	"github.com/revoked-dev/revoked/schemas"
)

// boxOpen is SealKey.Open as box.OpenAnonymous does it, the reference.
func boxOpen(k *schemas.SealKey, priv [32]byte, sealed string) (string, error) {
	data, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil {
		return "", fmt.Errorf("%w: not base64", schemas.ErrUnseal)
	}
	out, ok := box.OpenAnonymous(nil, data, &k.Public, &priv)
	if !ok {
		return "", schemas.ErrUnseal
	}
	return string(out), nil
}

// privateOf is k's private half, from its key-file form.
func privateOf(t testing.TB, k *schemas.SealKey) [32]byte {
	var priv [32]byte
	raw, err := base64.StdEncoding.DecodeString(k.MarshalPrivate())
	if err != nil || len(raw) != 32 {
		t.Fatalf("private half: %v", err)
	}
	copy(priv[:], raw)
	return priv
}

// SealKey.Open, one scalar multiplication with the key parsed once, opens
// what box.OpenAnonymous opens and refuses what it refuses, with the same
// errors.
func TestSealKeyOpenAgreesWithBox(t *testing.T) {
	key, err := schemas.GenerateSealKey()
	if err != nil {
		t.Fatal(err)
	}
	other, err := schemas.GenerateSealKey()
	if err != nil {
		t.Fatal(err)
	}
	priv := privateOf(t, key)
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
		want, wantErr := boxOpen(key, priv, in)
		got, gotErr := key.Open(in)
		if got != want || (gotErr == nil) != (wantErr == nil) {
			t.Errorf("%s: SealKey.Open = %q, %v; box.OpenAnonymous = %q, %v", name, got, gotErr, want, wantErr)
		}
		if gotErr != nil && (!errors.Is(gotErr, schemas.ErrUnseal) || gotErr.Error() != wantErr.Error()) {
			t.Errorf("%s: error %q, want %q", name, gotErr, wantErr)
		}
	}
}

func BenchmarkSealKeyOpen(b *testing.B) {
	key, err := schemas.GenerateSealKey()
	if err != nil {
		b.Fatal(err)
	}
	priv := privateOf(b, key)
	s, err := schemas.SealToken("at_"+strings.Repeat("x", 40), key.Public)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("box.OpenAnonymous", func(b *testing.B) {
		for b.Loop() {
			if _, err := boxOpen(key, priv, s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("SealKey.Open", func(b *testing.B) {
		for b.Loop() {
			if _, err := key.Open(s); err != nil {
				b.Fatal(err)
			}
		}
	})
	// Values of one Sealer, as one producer run sends them: the box key is
	// derived for the first and taken from the cache for the rest.
	sealer, err := schemas.NewSealer(key.Public)
	if err != nil {
		b.Fatal(err)
	}
	session := make([]string, 64)
	for i := range session {
		if session[i], err = sealer.Seal(fmt.Sprintf("at_%039d", i)); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("SealKey.Open v2", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, err := key.Open(session[i%len(session)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

func BenchmarkSeal(b *testing.B) {
	key, err := schemas.GenerateSealKey()
	if err != nil {
		b.Fatal(err)
	}
	raw := "at_" + strings.Repeat("x", 40)
	b.Run("SealToken", func(b *testing.B) {
		for b.Loop() {
			if _, err := schemas.SealToken(raw, key.Public); err != nil {
				b.Fatal(err)
			}
		}
	})
	sealer, err := schemas.NewSealer(key.Public)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("Sealer.Seal", func(b *testing.B) {
		for b.Loop() {
			if _, err := sealer.Seal(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("NewSealer", func(b *testing.B) {
		for b.Loop() {
			if _, err := schemas.NewSealer(key.Public); err != nil {
				b.Fatal(err)
			}
		}
	})
}
