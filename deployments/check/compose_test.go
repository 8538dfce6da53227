package check

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v3"
)

var composeDir = filepath.Join(repoRoot, "deployments", "compose")

// loadCompose loads compose.yaml as docker compose would, with no
// variables set (the defaults of ${VAR:-default} apply).
func loadCompose(t testing.TB) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{filepath.Join(composeDir, "compose.yaml")},
		cli.WithWorkingDirectory(composeDir), cli.WithEnv(nil), cli.WithName("revoked"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("loading compose.yaml: %v", err)
	}
	return p
}

// dockerfileTargets are the stages of deployments/Dockerfile.
func dockerfileTargets(t testing.TB) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "deployments", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	targets := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?mi)^FROM\s+\S+\s+AS\s+(\S+)`).FindAllStringSubmatch(string(b), -1) {
		targets[m[1]] = true
	}
	return targets
}

// command is the command a service of ours runs, and its subcommand: the
// Dockerfile target names the binary, the compose command (or the
// image's CMD) the subcommand.
func command(s types.ServiceConfig) []string {
	bin := s.Build.Target
	switch bin {
	case "detector", "consumer":
		if len(s.Command) == 0 {
			return []string{bin, "run"} // the image's CMD
		}
		return []string{bin, s.Command[0]}
	case "producer":
		return []string{bin, s.Command[0]}
	}
	return []string{bin}
}

// oneShot reports whether the service runs once and exits.
func oneShot(s types.ServiceConfig) bool { return s.Restart == types.RestartPolicyNo }

func TestComposeFile(t *testing.T) {
	p := loadCompose(t)
	targets := dockerfileTargets(t)
	pinned := regexp.MustCompile(`^[a-z0-9./-]+:v?[0-9][0-9A-Za-z.+-]*$|@sha256:[0-9a-f]{64}$`)

	for _, name := range []string{"kafka", "clickhouse", "tokenapi", "detector", "consumer", "prometheus", "grafana"} {
		if _, ok := p.Services[name]; !ok {
			t.Errorf("no service %s", name)
		}
	}
	adopted := map[string]bool{}
	for _, s := range p.Services {
		for dep, d := range s.DependsOn {
			if d.Condition == types.ServiceConditionCompletedSuccessfully {
				adopted[dep] = true
			}
		}
	}

	for name, s := range p.Services {
		t.Run(name, func(t *testing.T) {
			// Built by us, or a pinned image.
			if s.Build != nil {
				if !targets[s.Build.Target] {
					t.Errorf("builds target %q, which deployments/Dockerfile lacks", s.Build.Target)
				}
				if df := filepath.Join(s.Build.Context, s.Build.Dockerfile); df != filepath.Join(repoRoot, "deployments", "Dockerfile") {
					t.Errorf("builds from %s, want deployments/Dockerfile with the repository as context", df)
				}
			} else if !pinned.MatchString(s.Image) {
				t.Errorf("image %q is not pinned to a version (or a digest)", s.Image)
			}

			// Healthy or adopted: docker compose up --wait waits for every
			// long-running service to be healthy, and fails on a one-shot
			// service that nothing waits for with service_completed_successfully.
			switch {
			case oneShot(s):
				if !adopted[name] {
					t.Errorf("runs once, but no service waits for it with condition service_completed_successfully")
				}
			case s.HealthCheck == nil || s.HealthCheck.Disable || len(s.HealthCheck.Test) == 0:
				t.Errorf("has no healthcheck")
			case s.Restart != types.RestartPolicyUnlessStopped:
				t.Errorf("restart %q, want unless-stopped", s.Restart)
			}
			for dep, d := range s.DependsOn {
				other, ok := p.Services[dep]
				switch {
				case !ok:
					t.Errorf("depends on %s, which is no service", dep)
				case oneShot(other) && d.Condition != types.ServiceConditionCompletedSuccessfully:
					t.Errorf("depends on %s (one-shot) with %q, want service_completed_successfully", dep, d.Condition)
				case !oneShot(other) && d.Condition != types.ServiceConditionHealthy:
					t.Errorf("depends on %s with %q, want service_healthy", dep, d.Condition)
				}
			}

			// Published ports only on loopback.
			for _, port := range s.Ports {
				if port.HostIP != "127.0.0.1" {
					t.Errorf("publishes %d on %q, want 127.0.0.1", port.Target, port.HostIP)
				}
			}

			if s.Build == nil {
				return
			}
			// Ours run unprivileged on a read-only root.
			if s.User != "65532:65532" || !s.ReadOnly || !slices.Contains(s.CapDrop, "ALL") {
				t.Errorf("user %q, read_only %v, cap_drop %v: want 65532:65532, read-only, ALL dropped", s.User, s.ReadOnly, s.CapDrop)
			}
			// Every variable is one the command reads; secrets only as
			// files.
			cmd := command(s)
			acc := accepts(t, cmd...)
			for k, v := range s.Environment {
				if !acc.env[k] {
					t.Errorf("%s: %s -h names no such variable", k, strings.Join(cmd, " "))
				}
				if v != nil && looksSecret(k) {
					t.Errorf("%s holds a secret in the compose file; use %s_FILE", k, k)
				}
			}
			// Flags in the command are the command's.
			for _, arg := range s.Command {
				if !strings.HasPrefix(arg, "-") {
					continue
				}
				flagName, _, _ := strings.Cut(strings.TrimLeft(arg, "-"), "=")
				if !acc.flags[flagName] {
					t.Errorf("%s: %s -h names no such flag", arg, strings.Join(cmd, " "))
				}
			}
			// Files named by the variables live on a volume of the service.
			for k, v := range s.Environment {
				if v == nil || !(strings.HasSuffix(k, "_FILE") || strings.HasSuffix(k, "_FILES") || strings.HasSuffix(k, "_DIR")) {
					continue
				}
				for path := range strings.SplitSeq(*v, ",") {
					if !onVolume(s, path) {
						t.Errorf("%s=%s is on no volume of the service", k, path)
					}
				}
			}
		})
	}

	checkKeyFiles(t, p)
	checkHealthchecks(t, p)
	checkPrometheus(t, p)
	checkGrafana(t, p)
	checkClickHouseUsers(t, p)
}

// looksSecret reports whether a variable holds a credential itself (not
// a file naming one).
func looksSecret(k string) bool {
	if strings.HasSuffix(k, "_FILE") || strings.HasSuffix(k, "_FILES") {
		return false
	}
	parts := strings.Split(k, "_")
	switch parts[len(parts)-1] {
	case "TOKEN", "KEY":
		return true
	}
	return slices.Contains(parts, "SECRET") || slices.Contains(parts, "PASSWORD")
}

func onVolume(s types.ServiceConfig, path string) bool {
	for _, v := range s.Volumes {
		if path == v.Target || strings.HasPrefix(path, strings.TrimSuffix(v.Target, "/")+"/") {
			return true
		}
	}
	return false
}

// checkKeyFiles checks that every key or secret file a service reads from
// the keys volume is one the keys service writes there.
func checkKeyFiles(t *testing.T, p *types.Project) {
	keys := p.Services["keys"]
	var out string
	var secrets []string
	for i, a := range keys.Command {
		switch a {
		case "--out":
			out = keys.Command[i+1]
		case "--secrets":
			secrets = strings.Split(keys.Command[i+1], ",")
		}
	}
	written := map[string]bool{}
	for _, f := range append(secrets, "signing.key", "signing.pub", "seal.key", "seal.pub") {
		written[filepath.Join(out, f)] = true
	}
	if slices.Contains(keys.Command, "--checkpoint") {
		written[filepath.Join(out, "checkpoint.key")] = true
		written[filepath.Join(out, "checkpoint.pub")] = true
	}
	used := map[string]bool{}
	for name, s := range p.Services {
		for k, v := range s.Environment {
			if v == nil || !strings.HasPrefix(*v, out+"/") {
				continue
			}
			for f := range strings.SplitSeq(*v, ",") {
				used[f] = true
				if !written[f] {
					t.Errorf("%s: %s=%s, which the keys service does not write", name, k, f)
				}
			}
		}
	}
	for f := range written {
		if !used[f] && !strings.HasSuffix(f, ".pub") {
			t.Errorf("the keys service writes %s, which no service reads", f)
		}
	}
}

// checkHealthchecks checks that the healthchecks of our services ask the
// address the command listens on, as the command serves it.
func checkHealthchecks(t *testing.T, p *types.Project) {
	for name, s := range p.Services {
		if s.Build == nil || oneShot(s) {
			continue
		}
		test := s.HealthCheck.Test
		if len(test) != 3 || test[0] != "CMD" || test[1] != "/usr/local/bin/healthcheck" {
			t.Errorf("%s: healthcheck %q, want [CMD /usr/local/bin/healthcheck URL]", name, test)
			continue
		}
		port := listenPort(s)
		if want := "http://127.0.0.1:" + port + "/readyz"; test[2] != want {
			t.Errorf("%s: healthcheck asks %s, want %s", name, test[2], want)
		}
	}
}

// listenPort is the port a service of ours listens on, from its
// environment.
func listenPort(s types.ServiceConfig) string {
	for _, k := range []string{"REVOKED_HTTP_ADDR", "TOKENAPI_ADDR", "REVOKED_INGEST_LISTEN"} {
		if v, ok := s.Environment[k]; ok && v != nil {
			_, port, _ := strings.Cut(*v, ":")
			return port
		}
	}
	return ""
}

// checkPrometheus checks that Prometheus scrapes every command at the
// port it listens on and loads the alert rules of deployments/monitoring.
func checkPrometheus(t *testing.T, p *types.Project) {
	b, err := os.ReadFile(filepath.Join(composeDir, "prometheus", "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	scraped := map[string]bool{}
	for _, sc := range cfg.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			for _, target := range st.Targets {
				scraped[target] = true
			}
		}
	}
	for name, s := range p.Services {
		if s.Build == nil || oneShot(s) {
			continue
		}
		if target := name + ":" + listenPort(s); !scraped[target] {
			t.Errorf("prometheus does not scrape %s", target)
		}
		delete(scraped, name+":"+listenPort(s))
	}
	if len(scraped) > 0 {
		t.Errorf("prometheus scrapes targets no service serves: %v", scraped)
	}
	prom := p.Services["prometheus"]
	rules := false
	for _, v := range prom.Volumes {
		if v.Source == filepath.Join(repoRoot, "deployments", "monitoring", "alerts.yaml") {
			for _, rf := range cfg.RuleFiles {
				if ok, _ := filepath.Match(rf, v.Target); ok {
					rules = true
				}
			}
		}
	}
	if !rules {
		t.Error("prometheus does not load deployments/monitoring/alerts.yaml")
	}
}

// checkGrafana checks the provisioned data source's uid against the
// dashboards' default and that the dashboards are mounted where the
// provider reads them.
func checkGrafana(t *testing.T, p *types.Project) {
	var ds struct {
		Datasources []struct {
			UID  string `yaml:"uid"`
			Type string `yaml:"type"`
			URL  string `yaml:"url"`
		} `yaml:"datasources"`
	}
	readYAML(t, filepath.Join(composeDir, "grafana", "provisioning", "datasources", "prometheus.yaml"), &ds)
	var prov struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, filepath.Join(composeDir, "grafana", "provisioning", "dashboards", "revoked.yaml"), &prov)
	if len(ds.Datasources) != 1 || ds.Datasources[0].UID == "" || ds.Datasources[0].URL != "http://prometheus:9090" {
		t.Fatalf("data sources: %+v", ds.Datasources)
	}
	for _, d := range dashboards(t) {
		var dash struct {
			Templating struct {
				List []struct {
					Name    string `json:"name"`
					Current struct {
						Value string `json:"value"`
					} `json:"current"`
				} `json:"list"`
			} `json:"templating"`
		}
		if err := json.Unmarshal(d.raw, &dash); err != nil {
			t.Fatal(err)
		}
		if len(dash.Templating.List) == 0 || dash.Templating.List[0].Current.Value != ds.Datasources[0].UID {
			t.Errorf("%s: its data source variable does not default to %q", d.name, ds.Datasources[0].UID)
		}
	}
	mounted := false
	for _, v := range p.Services["grafana"].Volumes {
		if v.Source == filepath.Join(repoRoot, "deployments", "monitoring", "dashboards") && len(prov.Providers) == 1 && v.Target == prov.Providers[0].Options.Path {
			mounted = true
		}
	}
	if !mounted {
		t.Error("grafana's dashboard provider does not read deployments/monitoring/dashboards")
	}
}

// checkClickHouseUsers checks that the consumer's read DSN names the
// read-only user of the users file ClickHouse loads, with readonly=2, and
// its write DSN the user the container creates.
func checkClickHouseUsers(t *testing.T, p *types.Project) {
	ch := p.Services["clickhouse"]
	var file string
	for _, v := range ch.Volumes {
		if strings.HasPrefix(v.Target, "/etc/clickhouse-server/users.d/") {
			file = v.Source
		}
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("the users file clickhouse loads: %v", err)
	}
	var users struct {
		Profiles struct {
			List []struct {
				XMLName  xml.Name
				Readonly string `xml:"readonly"`
			} `xml:",any"`
		} `xml:"profiles"`
		Users struct {
			List []struct {
				XMLName  xml.Name
				Profile  string `xml:"profile"`
				Password struct {
					FromEnv string `xml:"from_env,attr"`
				} `xml:"password"`
			} `xml:",any"`
		} `xml:"users"`
	}
	if err := xml.Unmarshal(b, &users); err != nil {
		t.Fatal(err)
	}
	con := p.Services["consumer"]
	dsnUser := func(k string) string {
		v := con.Environment[k]
		if v == nil {
			t.Fatalf("consumer has no %s", k)
		}
		user, _, _ := strings.Cut(strings.TrimPrefix(*v, "clickhouse://"), ":")
		return user
	}
	if w := dsnUser("REVOKED_AUDIT_DSN"); ch.Environment["CLICKHOUSE_USER"] == nil || w != *ch.Environment["CLICKHOUSE_USER"] {
		t.Errorf("the write DSN's user %q is not CLICKHOUSE_USER", w)
	}
	r := dsnUser("REVOKED_AUDIT_READ_DSN")
	found := false
	for _, u := range users.Users.List {
		if u.XMLName.Local != r {
			continue
		}
		found = true
		if u.Password.FromEnv == "" || ch.Environment[u.Password.FromEnv] == nil {
			t.Errorf("%s's password comes from %q, which clickhouse's environment lacks", r, u.Password.FromEnv)
		}
		readonly := ""
		for _, pr := range users.Profiles.List {
			if pr.XMLName.Local == u.Profile {
				readonly = pr.Readonly
			}
		}
		if readonly != "2" {
			t.Errorf("%s's profile %q has readonly=%q, want 2", r, u.Profile, readonly)
		}
	}
	if !found {
		t.Errorf("the read DSN's user %q is not in %s", r, file)
	}
}

func readYAML(t testing.TB, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
