package idp_test

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
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/idp"
)

// Keys are generated once per test binary: RSA generation is slow under
// the race detector.
var testKeys = sync.OnceValue(func() map[string]crypto.Signer {
	r, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	e256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	e384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	return map[string]crypto.Signer{"rsa": r, "p256": e256, "p384": e384, "ed25519": ed}
})

func writeKey(t *testing.T, key crypto.Signer, pkcs8 bool) string {
	t.Helper()
	var block *pem.Block
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if !pkcs8 {
			block = &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}
		}
	case *ecdsa.PrivateKey:
		if !pkcs8 {
			der, err := x509.MarshalECPrivateKey(k)
			if err != nil {
				t.Fatal(err)
			}
			block = &pem.Block{Type: "EC PRIVATE KEY", Bytes: der}
		}
	}
	if block == nil {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		block = &pem.Block{Type: "PRIVATE KEY", Bytes: der}
	}
	path := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

type assertion struct {
	Header map[string]any
	Claims struct {
		Iss, Sub, Aud, Jti string
		Exp, Iat           int64
	}
}

// verifyAssertion checks the JWS signature of a client assertion with pub
// and returns its header and claims.
func verifyAssertion(t *testing.T, jws string, pub crypto.PublicKey) assertion {
	t.Helper()
	parts := strings.Split(jws, ".")
	if len(parts) != 3 {
		t.Fatalf("assertion has %d parts", len(parts))
	}
	var a assertion
	for i, dst := range []any{&a.Header, &a.Claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, dst); err != nil {
			t.Fatal(err)
		}
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	input := []byte(parts[0] + "." + parts[1])
	h256 := sha256.Sum256(input)
	ok := false
	switch alg := a.Header["alg"]; alg {
	case "RS256":
		ok = rsa.VerifyPKCS1v15(pub.(*rsa.PublicKey), crypto.SHA256, h256[:], sig) == nil
	case "PS256":
		ok = rsa.VerifyPSS(pub.(*rsa.PublicKey), crypto.SHA256, h256[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
	case "ES256", "ES384":
		d := h256[:]
		if alg == "ES384" {
			h := sha512.Sum384(input)
			d = h[:]
		}
		n := len(sig) / 2
		r, s := new(big.Int).SetBytes(sig[:n]), new(big.Int).SetBytes(sig[n:])
		ok = ecdsa.Verify(pub.(*ecdsa.PublicKey), d, r, s)
	case "EdDSA":
		ok = ed25519.Verify(pub.(ed25519.PublicKey), input, sig)
	default:
		t.Fatalf("alg %v", alg)
	}
	if !ok {
		t.Fatalf("signature of %v assertion does not verify", a.Header["alg"])
	}
	return a
}

func TestPrivateKeyJWT(t *testing.T) {
	keys := testKeys()
	cases := []struct {
		key, alg, wantAlg string
		pkcs8             bool
	}{
		{"rsa", "", "RS256", false},
		{"rsa", "PS256", "PS256", true},
		{"p256", "", "ES256", false},
		{"p384", "ES384", "ES384", true},
		{"ed25519", "", "EdDSA", true},
	}
	for _, tc := range cases {
		t.Run(tc.wantAlg+"/"+tc.key, func(t *testing.T) {
			key := keys[tc.key]
			s, ts := startScripted(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/introspect" {
					fmt.Fprint(w, `{"active":false}`)
				}
			})
			c := scriptedClient(t, ts, func(c *idp.Config) {
				c.AuthMethod = idp.AuthPrivateKeyJWT
				c.PrivateKeyFile, c.KeyID, c.SigningAlg = writeKey(t, key, tc.pkcs8), "key-1", tc.alg
			})
			start := time.Now()
			if err := c.RevokeToken(t.Context(), "tok", "refresh_token"); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Introspect(t.Context(), "tok"); err != nil {
				t.Fatal(err)
			}
			jtis := map[string]bool{}
			for i, body := range s.bodies {
				r := s.requests[i]
				form, _ := url.ParseQuery(body)
				if r.Header.Get("Authorization") != "" || form.Has("client_secret") {
					t.Error("secret sent along with the assertion")
				}
				if got := form.Get("client_assertion_type"); got != idp.ClientAssertionType {
					t.Errorf("client_assertion_type %q", got)
				}
				if form.Get("client_id") != "c" || form.Get("token") != "tok" {
					t.Errorf("form %v", form)
				}
				a := verifyAssertion(t, form.Get("client_assertion"), key.Public())
				if a.Header["alg"] != tc.wantAlg || a.Header["kid"] != "key-1" || a.Header["typ"] != "JWT" {
					t.Errorf("header %v", a.Header)
				}
				cl := a.Claims
				if cl.Iss != "c" || cl.Sub != "c" || cl.Aud != ts.URL+r.URL.Path {
					t.Errorf("claims %+v (aud want %s)", cl, ts.URL+r.URL.Path)
				}
				if exp := time.Unix(cl.Exp, 0); exp.Before(start) || exp.After(time.Now().Add(61*time.Second)) {
					t.Errorf("exp %s not short", exp)
				}
				if cl.Iat > time.Now().Unix() || cl.Iat < start.Unix()-1 {
					t.Errorf("iat %d", cl.Iat)
				}
				if len(cl.Jti) < 16 || jtis[cl.Jti] {
					t.Errorf("jti %q not random", cl.Jti)
				}
				jtis[cl.Jti] = true
			}
		})
	}
}

// The audience follows Config.AssertionAudience: the token endpoint (from
// the metadata when not configured), the issuer or a literal.
func TestPrivateKeyJWTAudience(t *testing.T) {
	key := testKeys()["p256"]
	var issuer string
	s, ts := startScripted(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/.well-known/") {
			fmt.Fprintf(w, `{"issuer":%q,"token_endpoint":%q,"revocation_endpoint":%q}`, issuer, issuer+"/token", issuer+"/revoke")
		}
	})
	issuer = ts.URL
	for _, tc := range []struct{ mode, want string }{
		{idp.AudienceTokenEndpoint, ts.URL + "/token"},
		{idp.AudienceIssuer, ts.URL},
		{"https://login.example/aud", "https://login.example/aud"},
		{"", ts.URL + "/revoke"},
	} {
		c, err := idp.New(idp.Config{
			Issuer: ts.URL, RevocationURL: ts.URL + "/revoke", ClientID: "c",
			AuthMethod: idp.AuthPrivateKeyJWT, PrivateKeyFile: writeKey(t, key, true), AssertionAudience: tc.mode,
		}, nil, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		if err := c.RevokeToken(t.Context(), "tok", ""); err != nil {
			t.Fatal(err)
		}
		form, _ := url.ParseQuery(s.bodies[len(s.bodies)-1])
		if a := verifyAssertion(t, form.Get("client_assertion"), key.Public()); a.Claims.Aud != tc.want {
			t.Errorf("%q: aud %q, want %q", tc.mode, a.Claims.Aud, tc.want)
		}
	}
}

func TestPrivateKeyJWTRejectsBadKeys(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := idp.NewPrivateKeyJWT("c", small, idp.JWTOptions{}); err == nil {
		t.Error("1024-bit RSA key accepted")
	}
	if _, err := idp.NewPrivateKeyJWT("c", testKeys()["p256"], idp.JWTOptions{Algorithm: "RS256"}); err == nil {
		t.Error("RS256 with an EC key accepted")
	}
	if _, err := idp.ParsePrivateKeyPEM([]byte("-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n")); err == nil {
		t.Error("certificate accepted as key")
	}
	// A missing key file fails New, not the first request.
	_, err = idp.New(idp.Config{RevocationURL: "https://idp.example/revoke", ClientID: "c",
		AuthMethod: idp.AuthPrivateKeyJWT, PrivateKeyFile: filepath.Join(t.TempDir(), "missing.pem")}, nil, zerolog.Nop())
	if err == nil {
		t.Error("missing key file accepted")
	}
	err = idp.Config{RevocationURL: "https://idp.example/revoke", ClientID: "c", AuthMethod: idp.AuthPrivateKeyJWT,
		PrivateKeyFile: "k.pem", SigningAlg: "HS256", AssertionAudience: idp.AudienceIssuer}.Validate()
	for _, want := range []string{"signing_alg", "assertion_audience"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing problem %q in %v", want, err)
		}
	}
}
