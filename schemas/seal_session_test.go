package schemas

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/nacl/box"
)

// genSealKey is a new SealKey, failing t on error.
func genSealKey(t testing.TB) *SealKey {
	t.Helper()
	k, err := GenerateSealKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// genSealer is a new Sealer for k, failing t on error.
func genSealer(t testing.TB, k *SealKey) *Sealer {
	t.Helper()
	s, err := NewSealer(k.Public)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sealWith seals raw with s, failing t on error.
func sealWith(t testing.TB, s *Sealer, raw string) string {
	t.Helper()
	v, err := s.Seal(raw)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// decodeV2 is the bytes of a session box.
func decodeV2(t testing.TB, v string) []byte {
	t.Helper()
	rest, ok := strings.CutPrefix(v, "v2.")
	if !ok {
		t.Fatalf("session box %q lacks the v2. prefix", v)
	}
	data, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// encodeV2 is a session box of data.
func encodeV2(data []byte) string { return "v2." + base64.StdEncoding.EncodeToString(data) }

// refused fails t unless err is ErrUnseal and says nothing of raw.
func refused(t testing.TB, what, got string, err error, raw string) {
	t.Helper()
	if !errors.Is(err, ErrUnseal) {
		t.Errorf("%s: opened as %q, %v; want ErrUnseal", what, got, err)
		return
	}
	if raw != "" && strings.Contains(err.Error(), raw) {
		t.Errorf("%s: error %q contains the token", what, err)
	}
}

func TestSealerRoundTrip(t *testing.T) {
	k := genSealKey(t)
	s := genSealer(t, k)
	var eph []byte
	for _, raw := range []string{"at_" + strings.Repeat("x", 40), "", "ünïcode token", strings.Repeat("z", 2000)} {
		v := sealWith(t, s, raw)
		if strings.Contains(v, raw) && raw != "" {
			t.Fatal("sealed value contains the raw token")
		}
		data := decodeV2(t, v)
		if len(data) != 32+24+len(raw)+box.Overhead {
			t.Errorf("%d bytes for a %d-byte token", len(data), len(raw))
		}
		if eph == nil {
			eph = data[:32]
		} else if string(data[:32]) != string(eph) {
			t.Error("one Sealer used two ephemeral keys")
		}
		got, err := k.Open(v)
		if err != nil || got != raw {
			t.Errorf("open: %q, %v; want %q", got, err, raw)
		}
	}
	a, b := sealWith(t, s, "same"), sealWith(t, s, "same")
	if a == b {
		t.Error("two seals of one token are equal: the nonce repeats")
	}
	if other := sealWith(t, genSealer(t, k), "same"); string(decodeV2(t, other)[:32]) == string(eph) {
		t.Error("two Sealers share an ephemeral key")
	}

	// The anonymous box still opens with the same key, as before.
	v1, err := SealToken("at_v1", k.Public)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(v1, "v2.") {
		t.Fatal("an anonymous box starts with the session prefix")
	}
	if got, err := k.Open(v1); err != nil || got != "at_v1" {
		t.Errorf("anonymous box: %q, %v", got, err)
	}
	// A key parsed from the key file opens both (its cache starts empty).
	k2, err := ParseSealKey([]byte(k.MarshalPrivate()))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{a, v1} {
		if _, err := k2.Open(v); err != nil {
			t.Errorf("parsed key: %v", err)
		}
	}
}

// Any change to a session box (ephemeral key, nonce, ciphertext or tag,
// one bit at a time) is refused, whether the consumer already holds the
// Sealer's box key or not, and no refused value adds a key to the cache.
func TestSealerTamperedRefused(t *testing.T) {
	const raw = "at_tampered-token-value"
	k := genSealKey(t)
	v := sealWith(t, genSealer(t, k), raw)
	if got, err := k.Open(v); err != nil || got != raw {
		t.Fatalf("open: %q, %v", got, err)
	}
	cold, err := ParseSealKey([]byte(k.MarshalPrivate()))
	if err != nil {
		t.Fatal(err)
	}
	data := decodeV2(t, v)
	for i := range data {
		for bit := range 8 {
			bad := append([]byte(nil), data...)
			bad[i] ^= 1 << bit
			for name, key := range map[string]*SealKey{"warm": k, "cold": cold} {
				got, err := key.Open(encodeV2(bad))
				refused(t, fmt.Sprintf("%s, byte %d bit %d", name, i, bit), got, err, raw)
			}
		}
	}
	for name, in := range map[string]string{
		"truncated":      encodeV2(data[:32+24+box.Overhead-1]),
		"header only":    encodeV2(data[:32+24]),
		"tag cut":        encodeV2(data[:len(data)-1]),
		"extra byte":     encodeV2(append(append([]byte(nil), data...), 0)),
		"prefix only":    "v2.",
		"not base64":     "v2.%%%",
		"upper-case V2":  "V2." + strings.TrimPrefix(v, "v2."),
		"without prefix": strings.TrimPrefix(v, "v2."),
		"other version":  "v3." + strings.TrimPrefix(v, "v2."),
	} {
		got, err := k.Open(in)
		refused(t, name, got, err, raw)
	}
	if n := k.boxKeys.len(); n != 1 {
		t.Errorf("warm key caches %d box keys, want the 1 of the real Sealer", n)
	}
	if n := cold.boxKeys.len(); n != 0 {
		t.Errorf("cold key caches %d box keys after refusing everything", n)
	}
}

func TestSealerWrongKeyRefused(t *testing.T) {
	k, other := genSealKey(t), genSealKey(t)
	const raw = "at_for-another-consumer"
	v := sealWith(t, genSealer(t, k), raw)
	got, err := other.Open(v)
	refused(t, "other consumer's key", got, err, raw)
	if n := other.boxKeys.len(); n != 0 {
		t.Errorf("%d box keys cached by the wrong consumer", n)
	}
}

// lowOrder are X25519 public keys of low order, which make the shared
// secret all zero with any private key, and non-canonical spellings of
// them.
var lowOrder = []string{
	"0000000000000000000000000000000000000000000000000000000000000000",
	"0100000000000000000000000000000000000000000000000000000000000000",
	"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
	"5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
	"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // p, that is 0
	"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // p+1, that is 1
	"0000000000000000000000000000000000000000000000000000000000000080", // 0 with the top bit
}

// A session box whose ephemeral key is of low order is refused, though
// its box key (all-zero shared secret) is one anyone can compute and
// box.OpenAfterPrecomputation opens it; so is a Sealer for a consumer key
// of low order.
func TestSealerLowOrderRefused(t *testing.T) {
	k := genSealKey(t)
	priv := [32]byte(k.private[:])
	const raw = "at_forged"
	for _, h := range lowOrder {
		var l [32]byte
		if _, err := hex.Decode(l[:], []byte(h)); err != nil {
			t.Fatal(err)
		}
		// The forger's key: HSalsa20 of the all-zero shared secret.
		var anyone [32]byte
		if _, err := rand.Read(anyone[:]); err != nil {
			t.Fatal(err)
		}
		var forged, boxWould [32]byte
		box.Precompute(&forged, &l, &anyone)
		box.Precompute(&boxWould, &l, &priv)
		if forged != boxWould {
			t.Fatalf("%s: not of low order", h)
		}
		var nonce [24]byte
		data := append(append(l[:], nonce[:]...), box.SealAfterPrecomputation(nil, []byte(raw), &nonce, &forged)...)
		if _, ok := box.OpenAfterPrecomputation(nil, data[32+24:], &nonce, &boxWould); !ok {
			t.Fatalf("%s: box does not open the forged value", h)
		}
		got, err := k.Open(encodeV2(data))
		refused(t, "ephemeral "+h, got, err, raw)
		if _, err := NewSealer(l); err == nil {
			t.Errorf("NewSealer took consumer key %s of low order", h)
		}
	}
	if n := k.boxKeys.len(); n != 0 {
		t.Errorf("%d box keys cached from low-order ephemerals", n)
	}
}

// The box key derived with crypto/ecdh and HSalsa20 is box.Precompute's,
// on both sides: a Sealer's values open with box.OpenAfterPrecomputation
// and a key from box.Precompute, and values sealed with
// box.SealAfterPrecomputation open with SealKey.Open.
func TestSealerInteropWithBox(t *testing.T) {
	for range 8 {
		k := genSealKey(t)
		consumerPriv := [32]byte(k.private[:])
		eph, err := ecdh.X25519().GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		ephPriv, ephPub := [32]byte(eph.Bytes()), [32]byte(eph.PublicKey().Bytes())
		s, err := newSealer(k.Public, eph, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		var sealerSide, consumerSide [32]byte
		box.Precompute(&sealerSide, &k.Public, &ephPriv)
		box.Precompute(&consumerSide, &ephPub, &consumerPriv)
		if s.key != sealerSide || s.key != consumerSide {
			t.Fatal("box key differs from box.Precompute's")
		}

		data := decodeV2(t, sealWith(t, s, "at_ours"))
		out, ok := box.OpenAfterPrecomputation(nil, data[32+24:], (*[24]byte)(data[32:56]), &consumerSide)
		if !ok || string(out) != "at_ours" {
			t.Fatalf("box.OpenAfterPrecomputation: %q, %v", out, ok)
		}

		// A reference sealer: box's own key and seal, fresh key pair.
		refPub, refPriv, err := box.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		var refKey [32]byte
		box.Precompute(&refKey, &k.Public, refPriv)
		var nonce [24]byte
		if _, err := rand.Read(nonce[:]); err != nil {
			t.Fatal(err)
		}
		ref := append(append(refPub[:], nonce[:]...), box.SealAfterPrecomputation(nil, []byte("at_theirs"), &nonce, &refKey)...)
		if got, err := k.Open(encodeV2(ref)); err != nil || got != "at_theirs" {
			t.Fatalf("SealKey.Open of box.SealAfterPrecomputation: %q, %v", got, err)
		}
	}
}

// However many Sealers a consumer sees, it keeps at most boxKeyCacheSize
// box keys, the newest; an evicted Sealer's values still open.
func TestSealKeyCacheBounded(t *testing.T) {
	k := genSealKey(t)
	var first, last string
	for i := range 2*boxKeyCacheSize + 10 {
		v := sealWith(t, genSealer(t, k), fmt.Sprintf("at_%d", i))
		if got, err := k.Open(v); err != nil || got != fmt.Sprintf("at_%d", i) {
			t.Fatalf("sealer %d: %q, %v", i, got, err)
		}
		if n := k.boxKeys.len(); n > boxKeyCacheSize {
			t.Fatalf("after %d Sealers the cache holds %d keys, bound %d", i+1, n, boxKeyCacheSize)
		}
		if i == 0 {
			first = v
		}
		last = v
	}
	if n := k.boxKeys.len(); n != boxKeyCacheSize {
		t.Errorf("cache holds %d keys, want %d", n, boxKeyCacheSize)
	}
	if _, ok := k.boxKeys.get([32]byte(decodeV2(t, last)[:32])); !ok {
		t.Error("the newest Sealer's key was evicted")
	}
	if _, ok := k.boxKeys.get([32]byte(decodeV2(t, first)[:32])); ok {
		t.Error("the oldest Sealer's key is still cached")
	}
	if got, err := k.Open(first); err != nil || got != "at_0" {
		t.Errorf("evicted Sealer's value: %q, %v", got, err)
	}
	if n := k.boxKeys.len(); n != boxKeyCacheSize {
		t.Errorf("cache holds %d keys after a re-derivation, want %d", n, boxKeyCacheSize)
	}
}

// Several goroutines open values of several Sealers at once, with a cache
// that holds them all and with one that keeps evicting (run with -race).
func TestSealKeyOpenConcurrent(t *testing.T) {
	for _, size := range []int{boxKeyCacheSize, 2} {
		t.Run(fmt.Sprintf("cache %d", size), func(t *testing.T) {
			k := genSealKey(t)
			k.boxKeys = newBoxKeyCache(size)
			type sealed struct{ raw, v string }
			var all []sealed
			for s := range 5 {
				sealer := genSealer(t, k)
				for i := range 40 {
					raw := fmt.Sprintf("at_%d_%d", s, i)
					all = append(all, sealed{raw, sealWith(t, sealer, raw)})
				}
			}
			v1, err := SealToken("at_v1", k.Public)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, sealed{"at_v1", v1})
			var wg sync.WaitGroup
			errs := make(chan error, 8)
			for g := range 8 {
				wg.Go(func() {
					for j := range all {
						c := all[(j*(g+1)+g)%len(all)]
						if got, err := k.Open(c.v); err != nil || got != c.raw {
							errs <- fmt.Errorf("goroutine %d: %q opened as %q, %v", g, c.raw, got, err)
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if n := k.boxKeys.len(); n > size || n == 0 {
				t.Errorf("cache holds %d keys, bound %d", n, size)
			}
		})
	}
}
