// Package testenv finds the external services tests run against and
// decides what a test does when one is missing: skip, with a message
// saying how to provide it, or fail when the run requires it (CI).
//
// Environment:
//
//	REVOKED_TEST_CLICKHOUSE_DSN  a ClickHouse server for tests, e.g.
//	                             clickhouse://default:@127.0.0.1:9000/default
//	                             (.ci/clickhouse.sh starts one)
//	CHDB_LIB_PATH                libchdb.so for the chDB tests
//	                             (deployments/local/install-libchdb.sh installs it)
//	REVOKED_GEOIP_DIR            the address databases for the enrichment
//	                             tests (deployments/local/install-geoip.sh
//	                             installs them)
//	REVOKED_TEST_HYDRA_PUBLIC    the public and admin URLs of an Ory Hydra
//	REVOKED_TEST_HYDRA_ADMIN     server for the token API tests
//	                             (.ci/hydra.sh builds and starts one)
//	REVOKED_TEST_REQUIRE         services whose absence fails the tests:
//	                             a comma- or space-separated list of
//	                             "clickhouse", "chdb", "chromium", "geoip",
//	                             "hydra", or "all"
//	CI                           "true" requires every service
package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"unicode"
)

// Environment variables read by this package.
const (
	EnvClickHouseDSN = "REVOKED_TEST_CLICKHOUSE_DSN"
	EnvChDBLibPath   = "CHDB_LIB_PATH"
	EnvRequire       = "REVOKED_TEST_REQUIRE"
	EnvCI            = "CI"
)

// Service names for Required and REVOKED_TEST_REQUIRE.
const (
	ClickHouse = "clickhouse"
	ChDB       = "chdb"
)

// Required reports whether the run requires the named service: it is
// listed in REVOKED_TEST_REQUIRE (or that lists "all"), or CI is "true".
func Required(name string) bool {
	if strings.EqualFold(strings.TrimSpace(os.Getenv(EnvCI)), "true") {
		return true
	}
	for _, f := range strings.FieldsFunc(os.Getenv(EnvRequire), func(r rune) bool { return r == ',' || unicode.IsSpace(r) }) {
		if strings.EqualFold(f, name) || strings.EqualFold(f, "all") {
			return true
		}
	}
	return false
}

// missing fails the test if the service is required and skips it
// otherwise.
func missing(t testing.TB, name, why, how string) {
	t.Helper()
	if Required(name) {
		t.Fatalf("%s is required for this run (%s or %s=true) but %s; %s", name, EnvRequire, EnvCI, why, how)
	}
	t.Skipf("%s not available: %s; %s", name, why, how)
}

// ClickHouseDSN returns the DSN of the test ClickHouse server from
// REVOKED_TEST_CLICKHOUSE_DSN. Tests share the server: each should create
// its own database (UniqueName) and drop it when done.
func ClickHouseDSN(t testing.TB) string {
	t.Helper()
	dsn := strings.TrimSpace(os.Getenv(EnvClickHouseDSN))
	if dsn == "" {
		missing(t, ClickHouse, EnvClickHouseDSN+" is not set",
			`start a server with: eval "$(bash .ci/clickhouse.sh)"`)
	}
	return dsn
}

// ChDBLibPath returns the path of libchdb.so from CHDB_LIB_PATH, checking
// that the file is there.
func ChDBLibPath(t testing.TB) string {
	t.Helper()
	const how = `install it with: export CHDB_LIB_PATH="$(deployments/local/install-libchdb.sh)"`
	path := strings.TrimSpace(os.Getenv(EnvChDBLibPath))
	if path == "" {
		missing(t, ChDB, EnvChDBLibPath+" is not set", how)
		return ""
	}
	if st, err := os.Stat(path); err != nil || st.IsDir() {
		missing(t, ChDB, EnvChDBLibPath+"="+path+" is not a file", how)
	}
	return path
}

// UniqueName returns a name made of prefix, the test's name and a random
// suffix, usable as a ClickHouse database or table identifier, so tests
// running in parallel (also in other packages) never share one.
func UniqueName(t testing.TB, prefix string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString(prefix)
	b.WriteByte('_')
	n := 0
	for _, r := range t.Name() {
		if n >= 40 {
			break
		}
		switch {
		case r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)):
			b.WriteRune(unicode.ToLower(r))
		default:
			b.WriteByte('_')
		}
		n++
	}
	var suffix [4]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		t.Fatalf("random suffix: %v", err)
	}
	b.WriteByte('_')
	b.WriteString(hex.EncodeToString(suffix[:]))
	return b.String()
}
