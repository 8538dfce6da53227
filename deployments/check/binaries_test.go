package check

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// repoRoot is the repository, two levels up from this module.
var repoRoot = func() string {
	dir, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		panic(err)
	}
	return dir
}()

// The commands the deployment files run, by the package that builds them
// (the Dockerfile's targets hold one each).
var commands = map[string]string{
	"detector":    "./detector",
	"consumer":    "./consumer",
	"producer":    "./producer",
	"tokenapi":    "./deployments/tokenapi",
	"healthcheck": "./deployments/healthcheck",
	"local":       "./deployments/local",
}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds the commands once per test run, as deployments/Dockerfile
// builds them, and returns the directory that holds them.
func binaries(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "revoked-deploy-bin-")
		if buildErr != nil {
			return
		}
		args := []string{"build", "-trimpath", "-o", binDir + string(filepath.Separator)}
		for _, pkg := range commands {
			args = append(args, pkg)
		}
		cmd := exec.Command("go", args...)
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// settings is what a command accepts, read from its -h.
type settings struct {
	env      map[string]bool   // variable -> read
	flags    map[string]bool   // flag name, without dashes
	defaults map[string]string // variable -> the default the usage shows
}

var (
	envRE      = regexp.MustCompile(`\(env ([A-Z0-9_]+)(?: or ([A-Z0-9_]+_FILE))?\)`)
	envOnlyRE  = regexp.MustCompile(`^  ([A-Z0-9_]+)(?: or ([A-Z0-9_]+_FILE))?$`)
	flagLineRE = regexp.MustCompile(`^  -([a-z0-9.-]+)`)
	// cli.SigningKey names REVOKED_SIGNING_KEY_FILE in its flag's usage.
	setVarRE  = regexp.MustCompile(`\bset ([A-Z0-9_]+_FILE)\b`)
	defaultRE = regexp.MustCompile(`\(env ([A-Z0-9_]+)[^)]*\) \(default ([^)]*)\)`)
)

var (
	helpMu    sync.Mutex
	helpCache = map[string]settings{}
)

// accepts returns the variables and flags of a command (and subcommand,
// e.g. "detector run", "producer keygen"), from its -h output.
func accepts(t testing.TB, command ...string) settings {
	t.Helper()
	key := strings.Join(command, " ")
	helpMu.Lock()
	defer helpMu.Unlock()
	if s, ok := helpCache[key]; ok {
		return s
	}
	bin := filepath.Join(binaries(t), command[0])
	cmd := exec.Command(bin, append(command[1:], "-h")...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	// -h exits 0 or 2 (the token API); the usage is on stderr.
	out, _ := cmd.CombinedOutput()
	s := settings{env: map[string]bool{}, flags: map[string]bool{}, defaults: map[string]string{}}
	envOnly := false
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "Environment only:") {
			envOnly = true
			continue
		}
		if m := flagLineRE.FindStringSubmatch(line); m != nil && !envOnly {
			s.flags[m[1]] = true
		}
		if m := envOnlyRE.FindStringSubmatch(line); m != nil && envOnly {
			s.env[m[1]] = true
			if m[2] != "" {
				s.env[m[2]] = true
			}
		}
		for _, m := range envRE.FindAllStringSubmatch(line, -1) {
			s.env[m[1]] = true
			if m[2] != "" {
				s.env[m[2]] = true
			}
		}
		for _, m := range defaultRE.FindAllStringSubmatch(line, -1) {
			s.defaults[m[1]] = m[2]
		}
		for _, m := range setVarRE.FindAllStringSubmatch(line, -1) {
			s.env[m[1]] = true
		}
	}
	if len(s.flags) == 0 && len(s.env) == 0 {
		t.Fatalf("%s -h printed no settings:\n%s", key, out)
	}
	helpCache[key] = s
	return s
}

// TestAcceptsReadsHelp checks the reading of -h on what it must find: a
// flag's variable, a secret's _FILE variable, a variable read from the
// environment only.
func TestAcceptsReadsHelp(t *testing.T) {
	c := accepts(t, "consumer", "run")
	for _, v := range []string{"REVOKED_KAFKA_BROKERS", "REVOKED_AUDIT_SPOOL_DIR", "REVOKED_SEAL_KEY", "REVOKED_SEAL_KEY_FILE",
		"REVOKED_IDP_CLIENT_SECRET_FILE", "REVOKED_KAFKA_SASL_PASSWORD_FILE", "REVOKED_CONFIG"} {
		if !c.env[v] {
			t.Errorf("consumer run: %s not found", v)
		}
	}
	for _, v := range []string{"REVOKED_AUDIT_DSN_FILE", "REVOKED_KAFKA_BROKERS_FILE"} {
		if c.env[v] {
			t.Errorf("consumer run: %s found, but it is not a secret", v)
		}
	}
	if !c.flags["audit.spool-dir"] || !c.flags["http.addr"] {
		t.Errorf("consumer run flags: %v", c.flags)
	}
	if d := accepts(t, "detector", "run"); !d.env["REVOKED_SIGNING_KEY_FILE"] || !d.env["REVOKED_GUARD_ADMIN_TOKEN_FILE"] {
		t.Errorf("detector run: %v", d.env)
	}
	if k := accepts(t, "producer", "keygen"); !k.flags["if-missing"] || !k.flags["secrets"] {
		t.Errorf("producer keygen flags: %v", k.flags)
	}
}
