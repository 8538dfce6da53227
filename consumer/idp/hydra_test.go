package idp_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/idp"
	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/internal/testenv/hydratest"
)

// TestCheckHydra runs Check against a real Ory Hydra (internal/testenv:
// skipped without one, failed when the run requires hydra) through the
// hydra preset: the right private_key_jwt and client_secret_basic
// configurations pass; a wrong assertion audience, a wrong secret, an
// authentication method the client is not registered for and a wrong
// issuer fail with Hydra's reason.
func TestCheckHydra(t *testing.T) {
	h := hydratest.New(t)
	keyClient := h.NewClient(t, hydratest.ClientConfig{PrivateKeyJWT: true})
	keyFile := writeKey(t, keyClient.Key, false)
	secretClient := h.NewClient(t, hydratest.ClientConfig{})

	withKey := func(c *idp.Config) {
		c.ClientID, c.PrivateKeyFile, c.KeyID = keyClient.ID, keyFile, keyClient.KeyID
	}
	withSecret := func(secret string, m idp.AuthMethod) func(*idp.Config) {
		return func(c *idp.Config) {
			c.ClientID, c.ClientSecret, c.AuthMethod = secretClient.ID, config.NewSecret(secret), m
		}
	}
	check := func(t *testing.T, mutate ...func(*idp.Config)) error {
		t.Helper()
		cfg := idp.HydraPreset(h.Public+"/", h.Admin)
		cfg.Timeout = 10 * time.Second
		for _, m := range mutate {
			m(&cfg)
		}
		c, err := idp.New(cfg, nil, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		return c.Check(t.Context())
	}

	t.Run("private_key_jwt", func(t *testing.T) {
		if err := check(t, withKey); err != nil {
			t.Fatalf("Check: %v", err)
		}
	})
	t.Run("client_secret_basic", func(t *testing.T) {
		if err := check(t, withSecret(secretClient.Secret, idp.AuthClientSecretBasic)); err != nil {
			t.Fatalf("Check: %v", err)
		}
	})

	for _, tc := range []struct {
		name   string
		mutate []func(*idp.Config)
		// wantErr is the OAuth error (default ErrInvalidClient, with 401).
		wantErr error
		// want is in the error: Hydra's reason.
		want []string
		// secret must not be.
		secret string
	}{{
		name: "private_key_jwt audience issuer",
		mutate: []func(*idp.Config){withKey, func(c *idp.Config) {
			c.AssertionAudience = idp.AudienceIssuer
		}},
		want: []string{"idp: revoke: HTTP 401: invalid_client: ", "(the token endpoint says: Claim 'audience' from 'client_assertion' must match the authorization server's token endpoint '" + h.Public + "/oauth2/token'.)"},
	}, {
		name: "private_key_jwt audience endpoint",
		mutate: []func(*idp.Config){withKey, func(c *idp.Config) {
			c.AssertionAudience = idp.AudienceEndpoint
		}},
		want: []string{"idp: revoke: HTTP 401: invalid_client: ", "(the token endpoint says: Claim 'audience' from 'client_assertion' must match the authorization server's token endpoint '" + h.Public + "/oauth2/token'.)"},
	}, {
		// Hydra answers 400 invalid_request here, not invalid_client.
		name: "private_key_jwt unregistered key id",
		mutate: []func(*idp.Config){withKey, func(c *idp.Config) {
			c.KeyID = "not-" + keyClient.KeyID
		}},
		wantErr: idp.ErrInvalidRequest,
		want:    []string{"idp: revoke: HTTP 400: invalid_request: ", "(the token endpoint says: The JSON Web Token uses signing key with kid 'not-" + keyClient.KeyID + "', which could not be found.)"},
	}, {
		name:   "client_secret_basic wrong secret",
		mutate: []func(*idp.Config){withSecret("wrong-"+secretClient.Secret, idp.AuthClientSecretBasic)},
		// Hydra says no more about a wrong secret, at either endpoint.
		want:   []string{"idp: revoke: HTTP 401: invalid_client: Client authentication failed (e.g., unknown client, no client authentication included, or unsupported authentication method)."},
		secret: "wrong-" + secretClient.Secret,
	}, {
		name:   "client_secret_post for a client_secret_basic client",
		mutate: []func(*idp.Config){withSecret(secretClient.Secret, idp.AuthClientSecretPost)},
		want:   []string{"idp: revoke: HTTP 401: invalid_client: ", "(the token endpoint says: The OAuth 2.0 Client supports client authentication method 'client_secret_basic', but method 'client_secret_post' was requested."},
		secret: secretClient.Secret,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			err := check(t, tc.mutate...)
			if tc.wantErr == nil && (!errors.Is(err, idp.ErrInvalidClient) || !errors.Is(err, idp.ErrUnauthorized)) {
				t.Fatalf("err = %v, want 401 invalid_client", err)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v, want it to say %q", err, w)
				}
			}
			if tc.secret != "" && strings.Contains(err.Error(), tc.secret) {
				t.Errorf("the secret is in the error: %v", err)
			}
			// Hydra's admin introspection authenticates no one: only the
			// revocation refuses the client.
			var ce *idp.CheckError
			if !errors.As(err, &ce) || len(ce.Errs) != 1 {
				t.Errorf("err = %v, want the revocation's failure only", err)
			}
			t.Logf("Hydra says: %v", err)
		})
	}

	t.Run("issuer without trailing slash", func(t *testing.T) {
		err := check(t, withKey, func(c *idp.Config) { c.Issuer = h.Public })
		if !errors.Is(err, idp.ErrIssuerMismatch) {
			t.Fatalf("err = %v, want ErrIssuerMismatch", err)
		}
		t.Logf("%v", err)
	})
}
