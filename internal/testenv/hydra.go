package testenv

import (
	"net/url"
	"os"
	"strings"
	"testing"
)

// Hydra is the service name of the Ory Hydra server (a real OAuth 2.0
// identity provider) the token API integration tests run against, for
// Required and REVOKED_TEST_REQUIRE.
const Hydra = "hydra"

// Environment variables naming the test Hydra server's two listeners;
// .ci/hydra.sh starts a server and prints both.
const (
	// EnvHydraPublic is the public URL: /oauth2/auth, /oauth2/token,
	// /oauth2/revoke. It is also the issuer (with a trailing slash).
	EnvHydraPublic = "REVOKED_TEST_HYDRA_PUBLIC"
	// EnvHydraAdmin is the admin URL: /admin/clients,
	// /admin/oauth2/introspect, login and consent requests, sessions.
	EnvHydraAdmin = "REVOKED_TEST_HYDRA_ADMIN"
)

// HydraURLs returns the public and admin URLs of the test Hydra server
// from REVOKED_TEST_HYDRA_PUBLIC and REVOKED_TEST_HYDRA_ADMIN, without a
// trailing slash. When either is unset or not an absolute http(s) URL the
// test is skipped, or fails when the run requires hydra.
func HydraURLs(t testing.TB) (public, admin string) {
	t.Helper()
	const how = `start a server with: eval "$(bash .ci/hydra.sh)"`
	urls := [2]string{}
	for i, env := range [2]string{EnvHydraPublic, EnvHydraAdmin} {
		v := strings.TrimRight(strings.TrimSpace(os.Getenv(env)), "/")
		if v == "" {
			missing(t, Hydra, env+" is not set", how)
			return "", ""
		}
		if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			missing(t, Hydra, env+"="+v+" is not an http(s) URL", how)
			return "", ""
		}
		urls[i] = v
	}
	return urls[0], urls[1]
}
