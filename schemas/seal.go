package schemas

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/nacl/box"
)

// ErrUnseal means a sealed token could not be opened with the consumer's key.
var ErrUnseal = errors.New("sealed token does not open with this key")

// SealKey is an X25519 key pair of the consumer: commands that must carry a
// raw token (the logout case) seal it to the public half, so it is readable
// only by the consumer, not by Kafka, its operators or the DLQ.
type SealKey struct {
	Public  [32]byte
	private [32]byte
}

// GenerateSealKey makes a new sealing key pair.
func GenerateSealKey() (*SealKey, error) {
	pub, priv, err := box.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating sealing key: %w", err)
	}
	return &SealKey{Public: *pub, private: *priv}, nil
}

// ParseSealKey reads a sealing key pair from the base64 of its 32-byte
// private half.
func ParseSealKey(data []byte) (*SealKey, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data)))
	if err != nil || len(raw) != 32 {
		return nil, errors.New("sealing key is not base64 of 32 bytes")
	}
	k := &SealKey{}
	copy(k.private[:], raw)
	pub, err := publicFromPrivate(k.private)
	if err != nil {
		return nil, err
	}
	k.Public = pub
	return k, nil
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
	raw, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil {
		return "", fmt.Errorf("%w: not base64", ErrUnseal)
	}
	out, ok := box.OpenAnonymous(nil, raw, &k.Public, &k.private)
	if !ok {
		return "", ErrUnseal
	}
	return string(out), nil
}
