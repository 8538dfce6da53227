package ssf

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"

	jose "github.com/go-jose/go-jose/v4"
)

// MinRSABits is the smallest RSA key the CAEP interoperability profile
// allows for signing SETs (section 2.6: RS256 with at least 2048 bits).
const MinRSABits = 2048

// Signer signs SETs with one key: RS256 for an RSA key (the CAEP
// interoperability profile's algorithm), ES256 for a P-256 key. Its key
// id is the RFC 7638 thumbprint of the public key, so a receiver's JWKS
// cache finds it again after a restart and a new key gets a new id.
// RSASSA-PKCS1-v1_5 is deterministic: the same claims make the same SET,
// which keeps a redelivered SET byte-identical.
type Signer struct {
	signer jose.Signer
	public jose.JSONWebKey
	alg    jose.SignatureAlgorithm
}

// NewSigner returns a Signer for key, an *rsa.PrivateKey of at least
// MinRSABits or an *ecdsa.PrivateKey on P-256.
func NewSigner(key crypto.Signer) (*Signer, error) {
	var alg jose.SignatureAlgorithm
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() < MinRSABits {
			return nil, fmt.Errorf("RSA key of %d bits: SETs need at least %d", k.N.BitLen(), MinRSABits)
		}
		alg = jose.RS256
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, errors.New("an ECDSA signing key must be on P-256 (ES256)")
		}
		alg = jose.ES256
	default:
		return nil, fmt.Errorf("unsupported signing key %T: want RSA (RS256) or ECDSA P-256 (ES256)", key)
	}
	pub := jose.JSONWebKey{Key: key.Public(), Algorithm: string(alg), Use: "sig"}
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("key thumbprint: %w", err)
	}
	pub.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	js, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: pub.KeyID}},
		(&jose.SignerOptions{}).WithType(TypSecEvent))
	if err != nil {
		return nil, fmt.Errorf("SET signer: %w", err)
	}
	return &Signer{signer: js, public: pub, alg: alg}, nil
}

// KeyID is the key id in the header of every SET the Signer signs.
func (s *Signer) KeyID() string { return s.public.KeyID }

// Algorithm is the JWS algorithm, RS256 or ES256.
func (s *Signer) Algorithm() string { return string(s.alg) }

// PublicJWK is the public key as a JWK, with kid, alg and use.
func (s *Signer) PublicJWK() jose.JSONWebKey { return s.public }

// Sign returns the JWS compact serialization of claims, with the header
// {"alg", "kid", "typ": "secevent+jwt"}.
func (s *Signer) Sign(claims any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("encoding SET claims: %w", err)
	}
	obj, err := s.signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("signing SET: %w", err)
	}
	return obj.CompactSerialize()
}

// JWKS is the JSON Web Key Set of public keys: the signer's first, then
// others (a key being rotated out, whose SETs may still be in flight).
func JWKS(keys ...jose.JSONWebKey) jose.JSONWebKeySet {
	return jose.JSONWebKeySet{Keys: keys}
}

// ParsePrivateKeyPEM reads an RSA or ECDSA private key in PEM: PKCS #1
// ("RSA PRIVATE KEY"), SEC 1 ("EC PRIVATE KEY") or PKCS #8 ("PRIVATE
// KEY"), as openssl genpkey and openssl genrsa write them.
func ParsePrivateKeyPEM(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	var (
		key any
		err error
	)
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", block.Type, err)
	}
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported private key %T", key)
	}
	switch s.(type) {
	case *rsa.PrivateKey, *ecdsa.PrivateKey:
		return s, nil
	}
	return nil, fmt.Errorf("unsupported private key %T: want RSA or ECDSA", key)
}
