package schemas

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

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
	s := &SealKey{opener: k}
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
// Target.SealedToken.
func SealToken(rawToken string, consumerPublic [32]byte) (string, error) {
	out, err := box.SealAnonymous(nil, []byte(rawToken), &consumerPublic, rand.Reader)
	if err != nil {
		return "", fmt.Errorf("sealing token: %w", err)
	}
	return base64.StdEncoding.EncodeToString(out), nil
}

// Open returns the raw token inside a sealed value.
func (k *SealKey) Open(sealed string) (string, error) {
	data, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil {
		return "", fmt.Errorf("%w: not base64", ErrUnseal)
	}
	if len(data) < box.AnonymousOverhead {
		return "", ErrUnseal
	}
	eph, err := ecdh.X25519().NewPublicKey(data[:32])
	if err != nil {
		return "", ErrUnseal
	}
	// One scalar multiplication with the key parsed once: box.OpenAnonymous
	// parses the private key for every box, and crypto/ecdh derives the
	// public half as it parses, which doubled the cost of a command's
	// unsealing (66.7 against 41.8 µs, BenchmarkSealKeyOpen). An ephemeral
	// key of low order (shared secret all zero) is refused here, where
	// box.OpenAnonymous goes on with an all-zero key anyone can seal to.
	shared, err := k.opener.ECDH(eph)
	if err != nil {
		return "", ErrUnseal
	}
	var key [32]byte
	salsa.HSalsa20(&key, &zeros16, (*[32]byte)(shared), &salsa.Sigma) // as box.Precompute
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

// zeros16 is HSalsa20's input when it derives a box's key from the shared
// secret (as box.Precompute does).
var zeros16 [16]byte
