package schemas

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"golang.org/x/crypto/blake2b"
	"golang.org/x/crypto/nacl/box"
	"golang.org/x/crypto/nacl/secretbox"
	"golang.org/x/crypto/salsa20/salsa" //nolint:staticcheck // HSalsa20 is what box.Precompute applies to the X25519 secret; done here so that a box costs one scalar multiplication (see Open)
)

// ErrUnseal means a sealed token could not be opened with the consumer's key.
var ErrUnseal = errors.New("sealed token does not open with this key")

// SealKey is an X25519 key pair of the consumer: commands that must carry a
// raw token (the logout case) seal it to the public half, so it is readable
// only by the consumer, not by Kafka, its operators or the DLQ.
type SealKey struct {
	Public  [32]byte
	private [32]byte
	// opener is the private half parsed once (see Open).
	opener *ecdh.PrivateKey
	// boxKeys holds the box key derived for each recent session's
	// ephemeral key (see openV2).
	boxKeys *boxKeyCache
}

// GenerateSealKey makes a new sealing key pair.
func GenerateSealKey() (*SealKey, error) {
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating sealing key: %w", err)
	}
	return newSealKey(k), nil
}

// ParseSealKey reads a sealing key pair from the base64 of its 32-byte
// private half.
func ParseSealKey(data []byte) (*SealKey, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data)))
	if err != nil || len(raw) != 32 {
		return nil, errors.New("sealing key is not base64 of 32 bytes")
	}
	k, err := ecdh.X25519().NewPrivateKey(raw)
	if err != nil {
		return nil, fmt.Errorf("parsing sealing key: %w", err)
	}
	return newSealKey(k), nil
}

// newSealKey is the pair of k, kept parsed for Open.
func newSealKey(k *ecdh.PrivateKey) *SealKey {
	s := &SealKey{opener: k, boxKeys: newBoxKeyCache(boxKeyCacheSize)}
	copy(s.private[:], k.Bytes())
	copy(s.Public[:], k.PublicKey().Bytes())
	return s
}

// MarshalPrivate is the base64 of the private half, for a key file.
func (k *SealKey) MarshalPrivate() string { return base64.StdEncoding.EncodeToString(k.private[:]) }

// PublicBase64 is the base64 of the public half, for producers' config.
func (k *SealKey) PublicBase64() string { return base64.StdEncoding.EncodeToString(k.Public[:]) }

// ParseSealPublicKey reads the base64 public half.
func ParseSealPublicKey(s string) ([32]byte, error) {
	var pub [32]byte
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(raw) != 32 {
		return pub, errors.New("sealing public key is not base64 of 32 bytes")
	}
	copy(pub[:], raw)
	return pub, nil
}

// SealToken seals a raw token to the consumer's public key (an anonymous
// NaCl box: X25519, XSalsa20-Poly1305) and returns it base64-encoded for
// Target.SealedToken. Each call makes a new ephemeral key, so the consumer
// pays one scalar multiplication per value; a producer sealing more than
// one token uses a Sealer.
func SealToken(rawToken string, consumerPublic [32]byte) (string, error) {
	out, err := box.SealAnonymous(nil, []byte(rawToken), &consumerPublic, rand.Reader)
	if err != nil {
		return "", fmt.Errorf("sealing token: %w", err)
	}
	return base64.StdEncoding.EncodeToString(out), nil
}

// Open returns the raw token inside a sealed value of either format: a
// session box ("v2.", see Sealer) or an anonymous box (SealToken). It is
// safe for concurrent use.
func (k *SealKey) Open(sealed string) (string, error) {
	if rest, ok := strings.CutPrefix(sealed, sealV2Prefix); ok {
		return k.openV2(rest)
	}
	data, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil {
		return "", fmt.Errorf("%w: not base64", ErrUnseal)
	}
	if len(data) < box.AnonymousOverhead {
		return "", ErrUnseal
	}
	// One scalar multiplication with the key parsed once: box.OpenAnonymous
	// parses the private key for every box, and crypto/ecdh derives the
	// public half as it parses, which doubled the cost of a command's
	// unsealing (66.7 against 41.8 µs, BenchmarkSealKeyOpen). An ephemeral
	// key of low order (shared secret all zero) is refused here, where
	// box.OpenAnonymous goes on with an all-zero key anyone can seal to.
	key, err := k.boxKeyWith(data[:32])
	if err != nil {
		return "", ErrUnseal
	}
	// The nonce is blake2b-192 of the ephemeral and the recipient's public
	// keys (box.SealAnonymous).
	h, err := blake2b.New(24, nil)
	if err != nil {
		return "", ErrUnseal
	}
	h.Write(data[:32])
	h.Write(k.Public[:])
	var nonce [24]byte
	h.Sum(nonce[:0])
	out, ok := secretbox.Open(nil, data[32:], &nonce, &key)
	if !ok {
		return "", ErrUnseal
	}
	return string(out), nil
}

// sealV2Prefix starts a session box (Sealer.Seal). Standard base64 has no
// '.', so no anonymous box (SealToken) starts with it.
const sealV2Prefix = "v2."

// sealV2Header is the ephemeral public key and the nonce before a session
// box's ciphertext.
const sealV2Header = 32 + 24

// Sealer seals raw tokens to the consumer's public key with one ephemeral
// X25519 key for all of them. Their box key (X25519, then HSalsa20, as
// box.Precompute) is derived once by NewSealer and once by the consumer,
// whose SealKey.Open keeps it for the Sealer's later values; a SealToken
// value costs the consumer a scalar multiplication each. A value is "v2."
// and the standard base64 of ephemeral public key (32 bytes) || nonce (24,
// random) || XSalsa20-Poly1305 box (box.SealAfterPrecomputation).
//
// The ephemeral private key lives as long as the Sealer: whoever learns it
// can open every token the Sealer sealed, which the process holding it had
// in the clear anyway. Use one per producer run, not one per deployment.
// A Sealer is safe for concurrent use.
type Sealer struct {
	ephPublic [32]byte
	key       [32]byte
	rand      io.Reader
}

// NewSealer makes a Sealer with a new ephemeral key for the consumer's
// public key. A public key of low order (one that makes the shared secret
// all zero) is refused.
func NewSealer(consumerPublic [32]byte) (*Sealer, error) {
	eph, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating ephemeral sealing key: %w", err)
	}
	return newSealer(consumerPublic, eph, rand.Reader)
}

// newSealer is a Sealer with ephemeral key eph, drawing nonces from r.
func newSealer(consumerPublic [32]byte, eph *ecdh.PrivateKey, r io.Reader) (*Sealer, error) {
	pub, err := ecdh.X25519().NewPublicKey(consumerPublic[:])
	if err != nil {
		return nil, fmt.Errorf("sealing public key: %w", err)
	}
	key, err := boxKey(eph, pub)
	if err != nil {
		return nil, errors.New("sealing public key is of low order")
	}
	s := &Sealer{key: key, rand: r}
	copy(s.ephPublic[:], eph.PublicKey().Bytes())
	return s, nil
}

// Seal seals a raw token with a fresh random nonce and returns the value
// for Target.SealedToken.
func (s *Sealer) Seal(rawToken string) (string, error) {
	out := make([]byte, sealV2Header, sealV2Header+len(rawToken)+box.Overhead)
	copy(out, s.ephPublic[:])
	if _, err := io.ReadFull(s.rand, out[32:sealV2Header]); err != nil {
		return "", fmt.Errorf("sealing token: nonce: %w", err)
	}
	out = box.SealAfterPrecomputation(out, []byte(rawToken), (*[24]byte)(out[32:sealV2Header]), &s.key)
	return sealV2Prefix + base64.StdEncoding.EncodeToString(out), nil
}

// openV2 opens a session box (Sealer.Seal) without its prefix. The box key
// of an ephemeral key is derived on its first value and kept in k.boxKeys,
// only once a box has opened with it, so forged values cannot push out the
// keys of the producers that sealed real ones.
func (k *SealKey) openV2(b64 string) (string, error) {
	data, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return "", fmt.Errorf("%w: not base64", ErrUnseal)
	}
	if len(data) < sealV2Header+box.Overhead {
		return "", ErrUnseal
	}
	ephPublic := [32]byte(data[:32])
	nonce := (*[24]byte)(data[32:sealV2Header])
	if key, ok := k.boxKeys.get(ephPublic); ok {
		out, ok := box.OpenAfterPrecomputation(nil, data[sealV2Header:], nonce, &key)
		if !ok {
			return "", ErrUnseal
		}
		return string(out), nil
	}
	// X25519 ignores the top bit of a public key and reduces it modulo
	// 2^255-19, so other spellings of the same point would derive the same
	// key; the ephemeral key is outside the box, so only its canonical
	// spelling is taken, and one sealed value has one form.
	if !canonicalX25519(data[:32]) {
		return "", ErrUnseal
	}
	// A low-order ephemeral key (shared secret all zero) is refused, as in
	// Open.
	key, err := k.boxKeyWith(data[:32])
	if err != nil {
		return "", ErrUnseal
	}
	out, ok := box.OpenAfterPrecomputation(nil, data[sealV2Header:], nonce, &key)
	if !ok {
		return "", ErrUnseal
	}
	k.boxKeys.put(ephPublic, key)
	return string(out), nil
}

// boxKeyWith is the box key between k and the ephemeral public key eph
// (32 bytes): an error for a key that does not parse or is of low order.
func (k *SealKey) boxKeyWith(eph []byte) ([32]byte, error) {
	pub, err := ecdh.X25519().NewPublicKey(eph)
	if err != nil {
		return [32]byte{}, err
	}
	return boxKey(k.opener, pub)
}

// boxKey is the NaCl box key of priv and peer: HSalsa20 with a zero nonce
// over their X25519 shared secret, as box.Precompute. It fails where the
// shared secret is all zero (peer of low order), which box.Precompute
// accepts.
func boxKey(priv *ecdh.PrivateKey, peer *ecdh.PublicKey) ([32]byte, error) {
	var key [32]byte
	shared, err := priv.ECDH(peer)
	if err != nil {
		return key, err
	}
	salsa.HSalsa20(&key, &zeros16, (*[32]byte)(shared), &salsa.Sigma)
	return key, nil
}

// canonicalX25519 reports whether u is the canonical encoding of an
// X25519 u-coordinate: top bit clear and less than 2^255-19.
func canonicalX25519(u []byte) bool {
	if u[31]&0x80 != 0 {
		return false
	}
	if u[31] != 0x7f || u[0] < 0xed {
		return true
	}
	for _, b := range u[1:31] {
		if b != 0xff {
			return true
		}
	}
	return false
}

// boxKeyCacheSize bounds the box keys a SealKey keeps: one per producer
// run sealing tokens recently.
const boxKeyCacheSize = 256

// boxKeyCache is a bounded map of box keys by ephemeral public key; when
// full, the oldest entry makes room. It is safe for concurrent use.
type boxKeyCache struct {
	mu    sync.Mutex
	keys  map[[32]byte][32]byte
	order [][32]byte // ring of the keys in keys, oldest at next
	next  int
}

func newBoxKeyCache(size int) *boxKeyCache {
	return &boxKeyCache{keys: make(map[[32]byte][32]byte, size), order: make([][32]byte, 0, size)}
}

func (c *boxKeyCache) get(eph [32]byte) ([32]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	key, ok := c.keys[eph]
	return key, ok
}

func (c *boxKeyCache) put(eph, key [32]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.keys[eph]; ok {
		return
	}
	switch {
	case cap(c.order) == 0:
		return
	case len(c.order) < cap(c.order):
		c.order = append(c.order, eph)
	default:
		delete(c.keys, c.order[c.next])
		c.order[c.next] = eph
		c.next = (c.next + 1) % len(c.order)
	}
	c.keys[eph] = key
}

// len is the number of keys kept.
func (c *boxKeyCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.keys)
}

// zeros16 is HSalsa20's input when it derives a box's key from the shared
// secret (as box.Precompute does).
var zeros16 [16]byte
