package idp

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"time"
)

// ClientAssertionType is the client_assertion_type of a JWT client
// assertion (RFC 7523 §2.2).
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// DefaultAssertionLifetime is how long a client assertion is valid when
// JWTOptions.Lifetime is zero. Short: the assertion is made for one request.
const DefaultAssertionLifetime = 60 * time.Second

// JWS algorithms of client assertions.
const (
	AlgRS256 = "RS256"
	AlgPS256 = "PS256"
	AlgES256 = "ES256"
	AlgES384 = "ES384"
	AlgEdDSA = "EdDSA"
)

// Audience choices of a client assertion (Config.AssertionAudience). Any
// other value is used as the audience as is.
const (
	// AudienceEndpoint uses the URL of the endpoint the request goes to.
	// Okta wants this. It is the default.
	AudienceEndpoint = "endpoint"
	// AudienceTokenEndpoint uses the token endpoint's URL whatever endpoint
	// is called (OIDC Core §9's SHOULD; Ory Hydra checks for it).
	AudienceTokenEndpoint = "token_endpoint"
	// AudienceIssuer uses Config.Issuer (Keycloak accepts it for every
	// endpoint).
	AudienceIssuer = "issuer"
)

// JWTOptions configures a PrivateKeyJWT.
type JWTOptions struct {
	// Algorithm is the JWS alg. Empty picks from the key: RS256 for RSA,
	// ES256 for P-256, ES384 for P-384, EdDSA for Ed25519.
	Algorithm string
	// KeyID is the "kid" header, naming the key in the client's
	// registered JWK set. Empty leaves it out.
	KeyID string
	// Audience returns the "aud" claim for a request to endpoint. Nil
	// means the endpoint itself.
	Audience func(endpoint string) string
	// Lifetime of an assertion (default DefaultAssertionLifetime).
	Lifetime time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// PrivateKeyJWT is the private_key_jwt client authentication of RFC 7523
// §2.2 and OpenID Connect Core §9: each request carries a fresh JWT signed
// with the client's private key, with iss and sub the client id, aud the
// authorization server, a random jti and a short exp. It is safe for
// concurrent use.
type PrivateKeyJWT struct {
	clientID string
	key      crypto.Signer
	alg      string
	opts     JWTOptions
}

var _ ClientAuthenticator = (*PrivateKeyJWT)(nil)

// NewPrivateKeyJWT returns the authenticator of clientID signing with key,
// which must be an *rsa.PrivateKey (at least 2048 bits), an
// *ecdsa.PrivateKey on P-256 or P-384, or an ed25519.PrivateKey matching
// opts.Algorithm.
func NewPrivateKeyJWT(clientID string, key crypto.Signer, opts JWTOptions) (*PrivateKeyJWT, error) {
	if clientID == "" {
		return nil, fmt.Errorf("private_key_jwt: empty client id: %w", ErrInvalidArgument)
	}
	alg, err := algorithmFor(key, opts.Algorithm)
	if err != nil {
		return nil, fmt.Errorf("private_key_jwt: %w", err)
	}
	if opts.Lifetime <= 0 {
		opts.Lifetime = DefaultAssertionLifetime
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &PrivateKeyJWT{clientID: clientID, key: key, alg: alg, opts: opts}, nil
}

// Algorithm is the JWS alg the assertions are signed with.
func (p *PrivateKeyJWT) Algorithm() string { return p.alg }

// Authenticate adds client_assertion_type, client_assertion and client_id
// to form; header is left alone.
func (p *PrivateKeyJWT) Authenticate(endpoint string, form url.Values, _ http.Header) error {
	aud := endpoint
	if p.opts.Audience != nil {
		aud = p.opts.Audience(endpoint)
	}
	if aud == "" {
		return errors.New("private_key_jwt: no audience for the assertion")
	}
	a, err := p.Assertion(aud)
	if err != nil {
		return err
	}
	form.Set("client_assertion_type", ClientAssertionType)
	form.Set("client_assertion", a)
	// RFC 7523 §3 lets the client_id parameter be left out; servers that
	// look the client up before parsing the assertion (Okta, Hydra) accept
	// it, and it must match sub.
	form.Set("client_id", p.clientID)
	return nil
}

// Assertion returns a signed client assertion for audience aud.
func (p *PrivateKeyJWT) Assertion(aud string) (string, error) {
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", fmt.Errorf("private_key_jwt: jti: %w", err)
	}
	now := p.opts.Now()
	header := map[string]string{"alg": p.alg, "typ": "JWT"}
	if p.opts.KeyID != "" {
		header["kid"] = p.opts.KeyID
	}
	claims := map[string]any{
		"iss": p.clientID,
		"sub": p.clientID,
		"aud": aud,
		"jti": base64.RawURLEncoding.EncodeToString(jti[:]),
		"iat": now.Unix(),
		"exp": now.Add(p.opts.Lifetime).Unix(),
	}
	h, err := json.Marshal(header)
	if err != nil {
		return "", fmt.Errorf("private_key_jwt: header: %w", err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("private_key_jwt: claims: %w", err)
	}
	signingInput := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	sig, err := p.sign([]byte(signingInput))
	if err != nil {
		return "", fmt.Errorf("private_key_jwt: signing: %w", err)
	}
	return signingInput + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

func (p *PrivateKeyJWT) sign(input []byte) ([]byte, error) {
	switch p.alg {
	case AlgRS256:
		d := sha256.Sum256(input)
		return p.key.Sign(rand.Reader, d[:], crypto.SHA256)
	case AlgPS256:
		d := sha256.Sum256(input)
		// RFC 7518 §3.5: the salt is as long as the hash.
		return p.key.Sign(rand.Reader, d[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256})
	case AlgES256, AlgES384:
		var d []byte
		size := 32
		if p.alg == AlgES256 {
			s := sha256.Sum256(input)
			d = s[:]
		} else {
			s := sha512.Sum384(input)
			d, size = s[:], 48
		}
		der, err := p.key.Sign(rand.Reader, d, nil)
		if err != nil {
			return nil, err
		}
		// RFC 7518 §3.4: JWS wants R and S as fixed-size big-endian
		// integers, not the ASN.1 DER of crypto.Signer.
		return derToJOSE(der, size)
	case AlgEdDSA:
		return p.key.Sign(rand.Reader, input, crypto.Hash(0))
	}
	return nil, fmt.Errorf("unsupported alg %q", p.alg)
}

// algorithmFor checks that alg suits key, or picks the algorithm of the key.
func algorithmFor(key crypto.Signer, alg string) (string, error) {
	if key == nil {
		return "", errors.New("no private key")
	}
	switch k := key.Public().(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			// RFC 7518 §3.3: 2048 bits or larger MUST be used.
			return "", fmt.Errorf("RSA key of %d bits, want at least 2048", k.N.BitLen())
		}
		switch alg {
		case "":
			return AlgRS256, nil
		case AlgRS256, AlgPS256:
			return alg, nil
		}
	case *ecdsa.PublicKey:
		want := ""
		switch k.Curve {
		case elliptic.P256():
			want = AlgES256
		case elliptic.P384():
			want = AlgES384
		default:
			return "", fmt.Errorf("unsupported curve %s (want P-256 or P-384)", k.Curve.Params().Name)
		}
		if alg == "" || alg == want {
			return want, nil
		}
	case ed25519.PublicKey:
		if alg == "" || alg == AlgEdDSA {
			return AlgEdDSA, nil
		}
	default:
		return "", fmt.Errorf("unsupported key type %T", k)
	}
	return "", fmt.Errorf("algorithm %q does not suit a %T key", alg, key.Public())
}

// derToJOSE converts an ASN.1 ECDSA signature into R||S of size bytes each.
func derToJOSE(der []byte, size int) ([]byte, error) {
	r, s, err := parseECDSASignature(der)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 2*size)
	if len(r) > size || len(s) > size {
		return nil, errors.New("ECDSA signature too long")
	}
	copy(out[size-len(r):size], r)
	copy(out[2*size-len(s):], s)
	return out, nil
}

// parseECDSASignature reads SEQUENCE { INTEGER r, INTEGER s } and returns
// the integers without leading zeros.
func parseECDSASignature(der []byte) (r, s []byte, err error) {
	bad := errors.New("malformed ECDSA signature")
	if len(der) < 2 || der[0] != 0x30 {
		return nil, nil, bad
	}
	body, ok := derContent(der)
	if !ok {
		return nil, nil, bad
	}
	readInt := func(b []byte) (v, rest []byte, ok bool) {
		if len(b) < 2 || b[0] != 0x02 {
			return nil, nil, false
		}
		n := int(b[1])
		if n >= 0x80 || len(b) < 2+n {
			return nil, nil, false
		}
		v = b[2 : 2+n]
		for len(v) > 0 && v[0] == 0 {
			v = v[1:]
		}
		return v, b[2+n:], true
	}
	r, rest, ok := readInt(body)
	if !ok {
		return nil, nil, bad
	}
	s, rest, ok = readInt(rest)
	if !ok || len(rest) != 0 {
		return nil, nil, bad
	}
	return r, s, nil
}

// derContent returns the content of a DER TLV with a short or one-byte
// long length.
func derContent(b []byte) ([]byte, bool) {
	n := int(b[1])
	off := 2
	if n == 0x81 {
		if len(b) < 3 {
			return nil, false
		}
		n, off = int(b[2]), 3
	} else if n >= 0x80 {
		return nil, false
	}
	if len(b) != off+n {
		return nil, false
	}
	return b[off:], true
}

// ParsePrivateKeyPEM parses the first private key in a PEM document:
// PKCS #8 ("PRIVATE KEY": RSA, ECDSA or Ed25519), PKCS #1 ("RSA PRIVATE
// KEY") or SEC 1 ("EC PRIVATE KEY"). Encrypted PEM is not supported.
func ParsePrivateKeyPEM(data []byte) (crypto.Signer, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, errors.New("no private key PEM block found")
		}
		var (
			key any
			err error
		)
		switch block.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, errors.New("encrypted private keys are not supported")
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("parsing %s: %w", block.Type, err)
		}
		s, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("unsupported key type %T", key)
		}
		return s, nil
	}
}

// LoadPrivateKeyFile reads a PEM private key from path (ParsePrivateKeyPEM).
func LoadPrivateKeyFile(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading private key: %w", err)
	}
	k, err := ParsePrivateKeyPEM(b)
	if err != nil {
		return nil, fmt.Errorf("private key %s: %w", path, err)
	}
	return k, nil
}
