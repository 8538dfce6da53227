package schemas

import (
	"bytes"
	"crypto/ed25519"
	"errors"
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
