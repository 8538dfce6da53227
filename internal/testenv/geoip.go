package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// GeoIP is the service name of the address databases that enrichment
// reads, for Required and REVOKED_TEST_REQUIRE.
const GeoIP = "geoip"

// EnvGeoIPDir names the directory of the address databases; tests and the
// components (-geoip.dir) read the same variable.
const EnvGeoIPDir = "REVOKED_GEOIP_DIR"

// GeoIPDir returns the directory of the address databases from
// REVOKED_GEOIP_DIR, checking that it holds each of files. When it does
// not, the test is skipped, or fails when the run requires geoip.
func GeoIPDir(t testing.TB, files ...string) string {
	t.Helper()
	const how = `install them with: export REVOKED_GEOIP_DIR="$(bash deployments/local/install-geoip.sh)"`
	dir := strings.TrimSpace(os.Getenv(EnvGeoIPDir))
	if dir == "" {
		missing(t, GeoIP, EnvGeoIPDir+" is not set", how)
		return ""
	}
	for _, f := range files {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.IsDir() || st.Size() == 0 {
			missing(t, GeoIP, EnvGeoIPDir+"="+dir+" has no "+f, how)
			return ""
		}
	}
	return dir
}
