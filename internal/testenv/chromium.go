package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Chromium is the service name of the headless browser the web UI's
// browser tests drive, for Required and REVOKED_TEST_REQUIRE.
const Chromium = "chromium"

// Environment variables of the browser tests.
const (
	// EnvChromium names the Chromium (or Chrome) binary; default
	// /usr/bin/chromium, Debian's package.
	EnvChromium = "CHROMIUM"
	// EnvArtifacts is a directory where tests keep what a person looks at
	// after the run (the browser tests' screenshots). CI sets it and keeps
	// the directory; unset, it is revoked-artifacts in the system's
	// temporary directory.
	EnvArtifacts = "REVOKED_TEST_ARTIFACTS"
)

// DefaultChromium is where Debian's chromium package installs the browser.
const DefaultChromium = "/usr/bin/chromium"

// ChromiumPath returns the Chromium binary from CHROMIUM, or
// /usr/bin/chromium, checking that it is an executable file. When it is
// missing the test is skipped, or fails when the run requires chromium.
func ChromiumPath(t testing.TB) string {
	t.Helper()
	const how = "install it with: apt-get install -y chromium (or set " + EnvChromium + ")"
	path := strings.TrimSpace(os.Getenv(EnvChromium))
	if path == "" {
		path = DefaultChromium
	}
	if !filepath.IsAbs(path) {
		found, err := exec.LookPath(path)
		if err != nil {
			missing(t, Chromium, path+" is not on PATH", how)
			return ""
		}
		path = found
	}
	st, err := os.Stat(path)
	if err != nil || st.IsDir() || st.Mode().Perm()&0o111 == 0 {
		missing(t, Chromium, path+" is not an executable file", how)
		return ""
	}
	return path
}

// ArtifactDir returns the directory sub of REVOKED_TEST_ARTIFACTS (or of
// os.TempDir()/revoked-artifacts), emptied of a previous run's files and
// kept after the test, never inside the repository.
func ArtifactDir(t testing.TB, sub string) string {
	t.Helper()
	root := strings.TrimSpace(os.Getenv(EnvArtifacts))
	if root == "" {
		root = filepath.Join(os.TempDir(), "revoked-artifacts")
	}
	dir := filepath.Join(root, sub)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatalf("clearing artifact directory: %v", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("creating artifact directory: %v", err)
	}
	return dir
}
