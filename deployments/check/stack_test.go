package check

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/idp"
	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/internal/testenv"
	"github.com/revoked-dev/revoked/producer/simulate"
	"github.com/revoked-dev/revoked/schemas"
)

// stack runs the compose file's services of ours as separate processes
// on this machine, with the compose file's configuration rewritten only
// where a container differs from a process: each service's address
// (service:port) becomes 127.0.0.1 and a free port, each volume a
// directory, Kafka the embedded broker (deployments/local broker, with
// the topics the kafka-topics service creates), ClickHouse the test
// server (its database one of the test's own, its users the server's
// writer and readonly=2 reader).
type stack struct {
	t       *testing.T
	project *types.Project
	bin     string
	dir     string
	ports   map[string]string // "service:port" -> "127.0.0.1:port"
	ch      struct{ write, read string }
	procs   map[string]*proc
	order   []string // started, in order
}

type proc struct {
	cmd  *exec.Cmd
	logs *testenv.LogBuffer
	done chan error
}

func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// replacer rewrites the values of service s: volume paths to
// directories, services' addresses to local ones, its own listen address
// to its local port.
func (st *stack) replacer(name string, s types.ServiceConfig) *strings.Replacer {
	var pairs []string
	vols := append([]types.ServiceVolumeConfig(nil), s.Volumes...)
	sort.Slice(vols, func(i, j int) bool { return len(vols[i].Target) > len(vols[j].Target) })
	for _, v := range vols {
		host := v.Source
		if v.Type == types.VolumeTypeVolume {
			host = filepath.Join(st.dir, "volumes", v.Source)
		}
		pairs = append(pairs, v.Target, host)
	}
	for addr, local := range st.ports {
		pairs = append(pairs, addr, local)
		if svc, port, _ := strings.Cut(addr, ":"); svc == name {
			pairs = append(pairs, "0.0.0.0:"+port, local, "127.0.0.1:"+port, local)
		}
	}
	return strings.NewReplacer(pairs...)
}

// env is the service's environment as the process gets it.
func (st *stack) env(name string, s types.ServiceConfig) []string {
	r := st.replacer(name, s)
	writer := ""
	if u := st.project.Services["clickhouse"].Environment["CLICKHOUSE_USER"]; u != nil {
		writer = *u
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + st.dir}
	for k, v := range s.Environment {
		if v == nil {
			continue
		}
		val := *v
		if rest, ok := strings.CutPrefix(val, "clickhouse://"); ok {
			if user, _, _ := strings.Cut(rest, ":"); user == writer {
				val = st.ch.write
			} else {
				val = st.ch.read
			}
		} else {
			val = r.Replace(val)
		}
		env = append(env, k+"="+val)
	}
	return env
}

func (st *stack) start(name string, argv ...string) *proc {
	st.t.Helper()
	s := st.project.Services[name]
	p := &proc{logs: &testenv.LogBuffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Env = st.env(name, s)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		st.t.Fatalf("starting %s: %v", name, err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	st.procs[name] = p
	st.order = append(st.order, name)
	return p
}

// run starts service name as its image would run it: the Dockerfile
// target's command with the compose command, rewritten.
func (st *stack) run(name string) *proc {
	s := st.project.Services[name]
	r := st.replacer(name, s)
	argv := []string{filepath.Join(st.bin, s.Build.Target)}
	cmd := command(s)
	if len(s.Command) == 0 && len(cmd) > 1 {
		argv = append(argv, cmd[1]) // the image's CMD
	}
	for _, a := range s.Command {
		argv = append(argv, r.Replace(a))
	}
	return st.start(name, argv...)
}

// waitHealthy runs the service's compose healthcheck, rewritten, until it
// passes, as docker compose up --wait does.
func (st *stack) waitHealthy(name string) {
	st.t.Helper()
	s := st.project.Services[name]
	r := st.replacer(name, s)
	test := s.HealthCheck.Test[1:] // CMD ...
	argv := []string{filepath.Join(st.bin, filepath.Base(test[0]))}
	for _, a := range test[1:] {
		argv = append(argv, r.Replace(a))
	}
	deadline := time.Now().Add(90 * time.Second)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var last []byte
	for time.Now().Before(deadline) {
		select {
		case err := <-st.procs[name].done:
			st.t.Fatalf("%s exited before it was healthy: %v\n%s", name, err, st.procs[name].logs.String())
		case <-tick.C:
		}
		out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		if err == nil {
			return
		}
		last = out
	}
	st.t.Fatalf("%s: healthcheck %q never passed: %s\n%s", name, argv, last, st.procs[name].logs.String())
}

// stop sends SIGTERM to every process, dependents first, as docker
// compose stop does, and reports a process that does not exit cleanly.
func (st *stack) stop() {
	for i := len(st.order) - 1; i >= 0; i-- {
		name := st.order[i]
		p := st.procs[name]
		if p.cmd.ProcessState != nil {
			continue
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-p.done:
			if err != nil {
				st.t.Errorf("%s exited with %v on SIGTERM\n%s", name, err, p.logs.String())
			}
		case <-time.After(45 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
			st.t.Errorf("%s did not exit within 45s of SIGTERM\n%s", name, p.logs.String())
		}
	}
}

func (st *stack) dumpLogs() {
	for name, p := range st.procs {
		st.t.Logf("=== %s\n%s", name, p.logs.String())
	}
}

func withDatabase(t testing.TB, dsn, db string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + db
	return u.String()
}

func readSecret(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestComposeStack runs the compose file's services as separate processes
// with its configuration and follows one event through them: a logout
// posted to the ingest endpoint becomes the detector's signed command,
// which the consumer verifies and carries out at the reference token API
// (the session's token ends inactive) and records in the ClickHouse
// audit trail, read back through the analysts' API as the read-only user.
func TestComposeStack(t *testing.T) {
	dsn := testenv.ClickHouseDSN(t)
	readDSN := strings.TrimSpace(os.Getenv("REVOKED_TEST_CLICKHOUSE_READ_DSN"))
	if readDSN == "" {
		t.Fatal("REVOKED_TEST_CLICKHOUSE_READ_DSN is not set (.ci/clickhouse.sh sets it beside REVOKED_TEST_CLICKHOUSE_DSN)")
	}
	st := &stack{t: t, project: loadCompose(t), bin: binaries(t), dir: t.TempDir(), ports: map[string]string{}, procs: map[string]*proc{}}
	db := testenv.UniqueName(t, "compose")
	t.Cleanup(func() { testenv.DropClickHouseDatabase(t, dsn, db) })
	st.ch.write, st.ch.read = withDatabase(t, dsn, db), withDatabase(t, readDSN, db)
	for name, s := range st.project.Services {
		if p := listenPort(s); p != "" && s.Build != nil && !oneShot(s) {
			st.ports[name+":"+p] = freePort(t)
		}
		for _, v := range s.Volumes {
			if v.Type == types.VolumeTypeVolume {
				if err := os.MkdirAll(filepath.Join(st.dir, "volumes", v.Source), 0o700); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	defer st.stop()
	defer func() {
		if t.Failed() {
			st.dumpLogs()
		}
	}()

	// Kafka: the embedded broker, with the topics of kafka-topics.
	var topics []string
	for f := range strings.FieldsSeq(*st.project.Services["kafka-topics"].Environment["TOPICS"]) {
		topics = append(topics, strings.Replace(f, ":", "=", 1))
	}
	broker := st.start("kafka", filepath.Join(st.bin, "local"), "broker", "-broker.addr", "127.0.0.1:0", "-broker.topics", strings.Join(topics, ","))
	st.ports["kafka:9092"] = waitBrokerAddr(t, broker)

	// The rest in the order depends_on gives.
	started := map[string]bool{"kafka": true, "kafka-topics": true, "clickhouse": true, "prometheus": true, "grafana": true}
	for len(started) < len(st.project.Services) {
		progress := false
		for _, name := range sortedServices(st.project) {
			s := st.project.Services[name]
			if started[name] || !depsMet(s, started) {
				continue
			}
			p := st.run(name)
			if oneShot(s) {
				select {
				case err := <-p.done:
					if err != nil {
						t.Fatalf("%s: %v\n%s", name, err, p.logs.String())
					}
				case <-time.After(60 * time.Second):
					t.Fatalf("%s did not finish", name)
				}
			} else {
				st.waitHealthy(name)
			}
			started[name], progress = true, true
		}
		if !progress {
			t.Fatalf("services whose dependencies never start: started %v", started)
		}
	}

	// A user with a live token in a session at the token API.
	keys := filepath.Join(st.dir, "volumes", "keys")
	tokenAPI := "http://" + st.ports["tokenapi:8090"]
	icfg := simulate.DefaultHTTPIssuerConfig()
	icfg.URL = tokenAPI
	icfg.AdminToken = config.NewSecret(readSecret(t, filepath.Join(keys, "tokenapi-admin-token")))
	iss, err := simulate.NewHTTPIssuer(icfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	user, session := "u-compose", "s-compose"
	raw, tokenID, err := iss.Issue(ctx, user, "web-app", session, []string{"files.read"})
	if err != nil {
		t.Fatalf("issuing a token: %v", err)
	}
	client, err := idp.New(idp.Config{Issuer: tokenAPI, ClientID: "revoker", AuthMethod: idp.AuthClientSecretBasic,
		ClientSecret: config.NewSecret(readSecret(t, filepath.Join(keys, "tokenapi-revoker-secret")))}, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if in, err := client.Introspect(ctx, raw); err != nil || !in.Active {
		t.Fatalf("the new token is not active: %+v, %v", in, err)
	}

	// One event: the user logs out of the session.
	event := fmt.Sprintf(`{"id":"e-compose-logout","time":%q,"type":"logout","user_id":%q,"session_id":%q,"token_id":%q}`+"\n",
		time.Now().UTC().Format(time.RFC3339Nano), user, session, tokenID)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+st.ports["ingest:8081"]+"/v1/events", strings.NewReader(event))
	req.Header.Set("Authorization", "Bearer "+readSecret(t, filepath.Join(keys, "ingest-token")))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("posting the event: %s: %s", resp.Status, body)
	}

	// Its audit rows, through the analysts' API (the read-only user).
	api := "http://" + st.ports["consumer:8080"] + "/api/v1/revocations?user_id=" + user
	apiToken := readSecret(t, filepath.Join(keys, "api-token"))
	var rows []schemas.AuditRow
	waitUntil(t, "the logout's audit rows", 60*time.Second, func() (bool, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, api, nil)
		req.Header.Set("Authorization", "Bearer "+apiToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		var page struct {
			Rows []schemas.AuditRow `json:"rows"`
		}
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			return false, fmt.Errorf("%s: %s", resp.Status, b)
		}
		if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
			return false, err
		}
		rows = page.Rows
		for _, r := range rows {
			if r.Step == schemas.StepConfirmed {
				return true, nil
			}
		}
		return false, nil
	})
	steps := map[schemas.Step]bool{}
	for _, r := range rows {
		steps[r.Step] = true
		if r.RuleID != "logout" || r.SessionID != session {
			t.Errorf("audit row %+v, want the logout rule's, for session %s", r, session)
		}
	}
	if !steps[schemas.StepReceived] {
		t.Errorf("audit steps %v, want received and confirmed", steps)
	}
	if in, err := client.Introspect(ctx, raw); err != nil || in.Active {
		t.Fatalf("the session's token is still active after the logout: %+v, %v", in, err)
	}
	t.Logf("one logout event: token revoked, audit steps %v", steps)
}

// waitBrokerAddr reads the address the broker prints when it listens.
func waitBrokerAddr(t *testing.T, broker *proc) string {
	t.Helper()
	var addr string
	waitUntil(t, "the embedded broker", 30*time.Second, func() (bool, error) {
		select {
		case err := <-broker.done:
			return false, fmt.Errorf("the broker exited: %w", errors.Join(err, errors.New(broker.logs.String())))
		default:
		}
		for line := range strings.SplitSeq(broker.logs.String(), "\n") {
			if h, p, err := net.SplitHostPort(strings.TrimSpace(line)); err == nil && h == "127.0.0.1" && p != "" {
				addr = strings.TrimSpace(line)
				return true, nil
			}
		}
		return false, nil
	})
	return addr
}

func sortedServices(p *types.Project) []string {
	names := make([]string, 0, len(p.Services))
	for n := range p.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func depsMet(s types.ServiceConfig, started map[string]bool) bool {
	for dep := range s.DependsOn {
		if !started[dep] {
			return false
		}
	}
	return true
}

// waitUntil polls cond until it holds, failing the test after timeout
// with cond's last error.
func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		ok, err := cond()
		if ok {
			return
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: gave up after %s (last error: %v)", what, timeout, last)
		}
		<-tick.C
	}
}
