package schemas

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	mathrand "math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestSignVerify(t *testing.T) {
	priv, err := GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	s := NewSigner(priv)
	other, _ := GenerateSigningKey()
	ring := NewKeyring(s.Public())
	value := []byte(`{"command_id":"c"}`)
	sig := s.Sign(value)

	if err := ring.Verify(s.KeyID(), sig, value); err != nil {
		t.Fatalf("valid signature rejected: %v", err)
	}
	cases := []struct {
		name       string
		keyID, sig string
		value      []byte
		want       error
	}{
		{"unsigned", "", "", value, ErrUnsigned},
		{"no signature", s.KeyID(), "", value, ErrUnsigned},
		{"unknown key", NewSigner(other).KeyID(), NewSigner(other).Sign(value), value, ErrUnknownKey},
		{"tampered value", s.KeyID(), sig, []byte(`{"command_id":"d"}`), ErrBadSignature},
		{"forged with other key under our id", s.KeyID(), NewSigner(other).Sign(value), value, ErrBadSignature},
		{"garbage signature", s.KeyID(), "!!!", value, ErrBadSignature},
	}
	for _, c := range cases {
		if err := ring.Verify(c.keyID, c.sig, c.value); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
}

func TestKeyFilesRoundTrip(t *testing.T) {
	priv, _ := GenerateSigningKey()
	privPEM, err := MarshalPrivateKeyPEM(priv)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM, _ := MarshalPublicKeyPEM(priv.Public().(ed25519Pub))
	got, err := ParsePrivateKey(privPEM)
	if err != nil || !got.Equal(priv) {
		t.Fatalf("private key round trip: %v", err)
	}
	pub, err := ParsePublicKey(pubPEM)
	if err != nil || !bytes.Equal(pub, priv.Public().(ed25519Pub)) {
		t.Fatalf("public key round trip: %v", err)
	}
	if _, err := ParsePrivateKey([]byte("not a key")); err == nil {
		t.Fatal("garbage parsed as a key")
	}
}

func TestSealOpen(t *testing.T) {
	k, err := GenerateSealKey()
	if err != nil {
		t.Fatal(err)
	}
	raw := "opaque-raw-token-value-1234567890"
	sealed, err := SealToken(raw, k.Public)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, raw) {
		t.Fatal("sealed value contains the raw token")
	}
	got, err := k.Open(sealed)
	if err != nil || got != raw {
		t.Fatalf("open: %q %v", got, err)
	}
	k2, _ := ParseSealKey([]byte(k.MarshalPrivate()))
	if k2.Public != k.Public {
		t.Fatal("public half not rederived from the private half")
	}
	other, _ := GenerateSealKey()
	if _, err := other.Open(sealed); !errors.Is(err, ErrUnseal) {
		t.Fatalf("opened with the wrong key: %v", err)
	}
}

func TestDetectionCommandIDDeterministic(t *testing.T) {
	tg := Target{Kind: TargetUser, UserID: "u", IncludeDownscoped: true}
	a := DetectionCommandID("r", 1, tg, []string{"e1", "e2"})
	if b := DetectionCommandID("r", 1, tg, []string{"e2", "e1"}); a != b {
		t.Fatal("evidence order changed the id")
	}
	for _, other := range []string{
		DetectionCommandID("r", 2, tg, []string{"e1", "e2"}),
		DetectionCommandID("r2", 1, tg, []string{"e1", "e2"}),
		DetectionCommandID("r", 1, Target{Kind: TargetUser, UserID: "v", IncludeDownscoped: true}, []string{"e1", "e2"}),
		DetectionCommandID("r", 1, tg, []string{"e1"}),
		DetectionCommandID("r", 1, tg, []string{"e1\x00e2"}),
	} {
		if other == a {
			t.Fatal("different input, same id")
		}
	}
}

func TestAuditRowHash(t *testing.T) {
	r := AuditRow{RowID: "r1", CommandID: "c", Step: StepRevoked, Time: time.Unix(1700000000, 123456789), UserID: "u", Evidence: []string{"a", "b"}}
	h := r.ComputeHash()
	r2 := r
	r2.Time = time.Unix(1700000000, 0)
	if r2.ComputeHash() != h {
		t.Fatal("sub-second time changed the hash")
	}
	for _, mutate := range []func(*AuditRow){
		func(r *AuditRow) { r.UserID = "v" },
		func(r *AuditRow) { r.PrevHash = "x" },
		func(r *AuditRow) { r.Evidence = []string{"ab"} },
		func(r *AuditRow) { r.Step = StepFailed },
		func(r *AuditRow) { r.Seq++ },
		func(r *AuditRow) { r.Time = r.Time.Add(time.Second) },
	} {
		m := r
		m.Evidence = append([]string(nil), r.Evidence...)
		mutate(&m)
		if m.ComputeHash() == h {
			t.Fatalf("mutation not reflected in the hash: %+v", m)
		}
	}
}

type ed25519Pub = ed25519.PublicKey

// TestKeyringAgreesWithCryptoEd25519 checks the Keyring's verification
// (curve25519-voi with crypto/ed25519's rules) against crypto/ed25519 on
// valid signatures, tampered ones and the encodings the two libraries
// could read differently: a non-canonical S (S + ℓ), a non-canonical R, the
// identity as key and as R, a key encoding no curve point and one whose y
// is not reduced. The Keyring must accept exactly what crypto/ed25519
// accepts.
func TestKeyringAgreesWithCryptoEd25519(t *testing.T) {
	type tc struct {
		name     string
		pub      ed25519.PublicKey
		msg, sig []byte
	}
	var cases []tc
	for i := range 8 {
		seed := bytes.Repeat([]byte{byte(i + 1)}, ed25519.SeedSize)
		priv := ed25519.NewKeyFromSeed(seed)
		pub := priv.Public().(ed25519.PublicKey)
		msg := []byte(strings.Repeat("command ", i+1))
		sig := ed25519.Sign(priv, msg)
		cases = append(cases, tc{"valid", pub, msg, sig})
		flipped := bytes.Clone(sig)
		flipped[i*7%64] ^= 1 << (i % 8)
		cases = append(cases, tc{"flipped signature bit", pub, msg, flipped})
		cases = append(cases, tc{"other message", pub, append(bytes.Clone(msg), '!'), sig})
		cases = append(cases, tc{"S + ℓ", pub, msg, addOrder(sig)})
		badR := bytes.Clone(sig)
		badR[31] |= 0x80 // sign bit of x set on R's encoding
		cases = append(cases, tc{"R's sign bit flipped", pub, msg, badR})
	}
	identity := make([]byte, 32)
	identity[0] = 1
	zeroS := append(bytes.Clone(identity), make([]byte, 32)...)
	cases = append(cases,
		tc{"identity key, identity R, S = 0", ed25519.PublicKey(identity), []byte("m"), zeroS},
		tc{"key not on the curve", ed25519.PublicKey(append(bytes.Repeat([]byte{0x02}, 31), 0x00)), []byte("m"), zeroS},
	)
	// y = p + 1 (not reduced), which reads as y = 1, the identity.
	unreduced := bytes.Repeat([]byte{0xff}, 32)
	unreduced[0], unreduced[31] = 0xee, 0x7f
	cases = append(cases, tc{"unreduced identity key", ed25519.PublicKey(unreduced), []byte("m"), zeroS})

	accepted := 0
	for _, c := range cases {
		want := ed25519.Verify(c.pub, c.msg, c.sig)
		ring := NewKeyring(c.pub)
		err := ring.Verify(KeyID(c.pub), base64.StdEncoding.EncodeToString(c.sig), c.msg)
		if got := err == nil; got != want {
			t.Errorf("%s: Keyring accepted=%v (%v), crypto/ed25519 accepted=%v", c.name, got, err, want)
		}
		if want {
			accepted++
		}
	}
	if accepted < 8 {
		t.Fatalf("only %d of the cases are valid signatures; the comparison needs both kinds", accepted)
	}
}

// addOrder returns sig with ℓ, the order of the base point, added to its
// S (little-endian), which leaves S's value mod ℓ the same.
func addOrder(sig []byte) []byte {
	l := [32]byte{0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10}
	out := bytes.Clone(sig)
	carry := 0
	for i := range 32 {
		v := int(out[32+i]) + int(l[i]) + carry
		out[32+i], carry = byte(v), v>>8
	}
	return out
}

// BenchmarkVerify compares the Keyring's verification of one command's
// signature with crypto/ed25519's on the same key, value and signature.
func BenchmarkVerify(b *testing.B) {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	s := NewSigner(priv)
	value := bytes.Repeat([]byte(`{"command_id":"c"}`), 35) // about a command's size
	sig := s.Sign(value)
	raw, _ := base64.StdEncoding.DecodeString(sig)
	b.Run("keyring", func(b *testing.B) {
		ring := NewKeyring(s.Public())
		for b.Loop() {
			if err := ring.Verify(s.KeyID(), sig, value); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("crypto-ed25519", func(b *testing.B) {
		pub := s.Public()
		for b.Loop() {
			if !ed25519.Verify(pub, value, raw) {
				b.Fatal("rejected")
			}
		}
	})
}

// Signer.Sign gives crypto/ed25519.Sign's signature for every key and
// message: Ed25519 is deterministic, whichever implementation signs.
func TestSignMatchesStdlib(t *testing.T) {
	rng := mathrand.New(mathrand.NewPCG(7, 8))
	for i := range 200 {
		seed := make([]byte, ed25519.SeedSize)
		for j := range seed {
			seed[j] = byte(rng.Uint32())
		}
		priv := ed25519.NewKeyFromSeed(seed)
		msg := make([]byte, rng.IntN(2048))
		for j := range msg {
			msg[j] = byte(rng.Uint32())
		}
		want := base64.StdEncoding.EncodeToString(ed25519.Sign(priv, msg))
		if got := NewSigner(priv).Sign(msg); got != want {
			t.Fatalf("key %d, %d-byte message: signature %s, crypto/ed25519 gives %s", i, len(msg), got, want)
		}
	}
}
