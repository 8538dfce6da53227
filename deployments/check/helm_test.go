package check

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
)

var chartDir = filepath.Join(repoRoot, "deployments", "helm", "revoked")

// object is one rendered Kubernetes object.
type object map[string]any

func (o object) kind() string { s, _ := o["kind"].(string); return s }

func (o object) name() string {
	md, _ := o["metadata"].(map[string]any)
	s, _ := md["name"].(string)
	return s
}

// path walks maps (by key) and lists (by index) of a decoded object.
func path(v any, keys ...any) any {
	if o, ok := v.(object); ok {
		v = map[string]any(o)
	}
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func loadChart(t testing.TB) *chart.Chart {
	t.Helper()
	c, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("loading the chart: %v", err)
	}
	return c
}

// render renders the chart with vals as helm install would (the values
// checked against values.schema.json), and decodes every object.
func render(c *chart.Chart, vals map[string]any) ([]object, error) {
	rv, err := chartutil.ToRenderValues(c, vals, chartutil.ReleaseOptions{Name: "revoked", Namespace: "security", IsInstall: true}, nil)
	if err != nil {
		return nil, err
	}
	files, err := engine.Render(c, rv)
	if err != nil {
		return nil, err
	}
	names := slices.Sorted(maps.Keys(files))
	var out []object
	for _, name := range names {
		if !strings.HasSuffix(name, ".yaml") {
			continue
		}
		dec := yaml.NewDecoder(strings.NewReader(files[name]))
		for {
			var o map[string]any
			err := dec.Decode(&o)
			if err != nil {
				if err.Error() == "EOF" {
					break
				}
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			if len(o) > 0 {
				out = append(out, object(o))
			}
		}
	}
	return out, nil
}

func ciValues(t testing.TB) map[string]map[string]any {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(chartDir, "ci", "*-values.yaml"))
	if err != nil || len(files) < 3 {
		t.Fatalf("CI values files: %v, %v", files, err)
	}
	out := map[string]map[string]any{}
	for _, f := range files {
		v, err := chartutil.ReadValuesFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = v.AsMap()
	}
	return out
}

// secretKeys are the keys the keys secret may hold, from the schema.
func secretKeys(t testing.TB) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(chartDir, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s any
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	enum, _ := path(s, "properties", "secrets", "properties", "values", "propertyNames", "enum").([]any)
	out := map[string]bool{}
	for _, k := range enum {
		out[k.(string)] = true
	}
	if len(out) == 0 {
		t.Fatal("values.schema.json names no secret keys")
	}
	return out
}

// commandOf is the command a container runs: the binary its image holds
// (deployments/Dockerfile's target) and its subcommand.
func commandOf(c map[string]any) []string {
	image, _ := c["image"].(string)
	repo, _, _ := strings.Cut(filepath.Base(image), ":")
	bin := strings.TrimPrefix(repo, "revoked-")
	args, _ := c["args"].([]any)
	if len(args) > 0 {
		return []string{bin, args[0].(string)}
	}
	return []string{bin}
}

var dsnWithPassword = regexp.MustCompile(`://[^/@:\s]+:[^@\s]+@`)

func TestChart(t *testing.T) {
	c := loadChart(t)
	keys := secretKeys(t)
	var alertGroups ruleFile
	readYAML(t, filepath.Join(monitoringDir, "alerts.yaml"), &alertGroups)
	dashboardFiles := len(dashboards(t))

	for file, vals := range ciValues(t) {
		t.Run(file, func(t *testing.T) {
			objs, err := render(c, vals)
			if err != nil {
				t.Fatalf("rendering: %v", err)
			}
			counts := map[string]int{}
			configMaps := map[string]map[string]any{}
			for _, o := range objs {
				counts[o.kind()]++
				if o.kind() == "ConfigMap" {
					data, _ := o["data"].(map[string]any)
					configMaps[o.name()] = data
				}
			}
			kinds := slices.Sorted(maps.Keys(counts))
			var summary []string
			for _, k := range kinds {
				summary = append(summary, fmt.Sprintf("%s %d", k, counts[k]))
			}
			t.Logf("ci/%s renders %d objects: %s", file, len(objs), strings.Join(summary, ", "))

			secretValues := map[string]bool{}
			if sv, ok := path(vals, "secrets", "values").(map[string]any); ok {
				for _, v := range sv {
					secretValues[v.(string)] = true
				}
			}
			// Secrets are never in ConfigMaps.
			for name, data := range configMaps {
				for k, v := range data {
					s := fmt.Sprint(v)
					if looksSecret(k) || secretValues[s] || dsnWithPassword.MatchString(s) {
						t.Errorf("ConfigMap %s holds a secret in %s", name, k)
					}
					for sv := range secretValues {
						if strings.Contains(s, sv) {
							t.Errorf("ConfigMap %s: %s holds the value of a secret", name, k)
						}
					}
				}
			}

			for _, o := range objs {
				switch o.kind() {
				case "Deployment":
					checkDeployment(t, o, configMaps, keys)
				case "Secret":
					for k := range path(o, "stringData").(map[string]any) {
						if !keys[k] {
							t.Errorf("Secret %s has key %s, which no component reads", o.name(), k)
						}
					}
				case "PrometheusRule":
					if groups, _ := path(o, "spec", "groups").([]any); len(groups) != len(alertGroups.Groups) {
						t.Errorf("PrometheusRule has %d groups, alerts.yaml %d", len(groups), len(alertGroups.Groups))
					}
					expr, _ := path(o, "spec", "groups", 0, "rules", 0, "annotations", "summary").(string)
					if !strings.Contains(expr, "{{ $labels.") {
						t.Errorf("PrometheusRule's annotations lost their templates: %q", expr)
					}
				}
			}
			want := func(kind string, n int) {
				if counts[kind] != n {
					t.Errorf("%d %s objects, want %d", counts[kind], kind, n)
				}
			}
			sm, _ := path(vals, "metrics", "serviceMonitor", "enabled").(bool)
			pr, _ := path(vals, "metrics", "prometheusRule", "enabled").(bool)
			gd, _ := path(vals, "grafana", "dashboards", "enabled").(bool)
			if !sm {
				want("ServiceMonitor", 0)
			} else {
				want("ServiceMonitor", counts["Deployment"])
			}
			want("PrometheusRule", map[bool]int{true: 1}[pr])
			if gd {
				dashCMs := 0
				for name := range configMaps {
					if strings.Contains(name, "-dashboard-") {
						dashCMs++
					}
				}
				if dashCMs != dashboardFiles {
					t.Errorf("%d dashboard ConfigMaps, want %d", dashCMs, dashboardFiles)
				}
			}
		})
	}
}

// checkDeployment checks one Deployment: probes on the ops server's
// /livez and /readyz at the port the command listens on, resource
// limits, an unprivileged read-only container, a termination grace
// period longer than the command's shutdown timeouts, every variable one
// the command reads, and every file it names on a volume of the pod.
func checkDeployment(t *testing.T, d object, configMaps map[string]map[string]any, keys map[string]bool) {
	t.Helper()
	name := d.name()
	pod := path(d, "spec", "template", "spec").(map[string]any)
	if path(pod, "securityContext", "runAsNonRoot") != true {
		t.Errorf("%s: the pod may run as root", name)
	}
	containers := pod["containers"].([]any)
	if len(containers) != 1 {
		t.Fatalf("%s: %d containers", name, len(containers))
	}
	ctr := containers[0].(map[string]any)
	cmd := commandOf(ctr)
	acc := accepts(t, cmd...)

	// The environment: envFrom ConfigMaps and env.
	env := map[string]string{}
	for _, ef := range asList(ctr["envFrom"]) {
		cm, _ := path(ef, "configMapRef", "name").(string)
		data, ok := configMaps[cm]
		if !ok {
			t.Errorf("%s: envFrom names ConfigMap %s, which the chart does not render", name, cm)
		}
		for k, v := range data {
			env[k] = fmt.Sprint(v)
		}
	}
	for _, e := range asList(ctr["env"]) {
		k := path(e, "name").(string)
		if v, ok := path(e, "value").(string); ok {
			env[k] = v
		} else {
			env[k] = ""
		}
		if key, ok := path(e, "valueFrom", "secretKeyRef", "key").(string); ok && !keys[key] {
			t.Errorf("%s: %s reads key %s, which the keys secret does not have", name, k, key)
		}
	}
	for k := range env {
		if !acc.env[k] {
			t.Errorf("%s: %s, which %s -h does not name", name, k, strings.Join(cmd, " "))
		}
	}

	// Probes and port.
	port := 0
	for _, k := range []string{"REVOKED_HTTP_ADDR", "TOKENAPI_ADDR", "REVOKED_INGEST_LISTEN"} {
		if v, ok := env[k]; ok {
			_, p, _ := strings.Cut(v, ":")
			_, _ = fmt.Sscan(p, &port)
		}
	}
	if cp, _ := path(ctr, "ports", 0, "containerPort").(int); cp != port || port == 0 || path(ctr, "ports", 0, "name") != "http" {
		t.Errorf("%s: container port %v named %v, but the command listens on %d", name, path(ctr, "ports", 0, "containerPort"), path(ctr, "ports", 0, "name"), port)
	}
	for probe, want := range map[string]string{"livenessProbe": "/livez", "readinessProbe": "/readyz"} {
		if path(ctr, probe, "httpGet", "path") != want || path(ctr, probe, "httpGet", "port") != "http" {
			t.Errorf("%s: %s is %v, want GET %s on the http port", name, probe, ctr[probe], want)
		}
	}
	for _, r := range []string{"cpu", "memory"} {
		if path(ctr, "resources", "limits", r) == nil {
			t.Errorf("%s: no %s limit", name, r)
		}
	}
	sc := ctr["securityContext"]
	if path(sc, "readOnlyRootFilesystem") != true || path(sc, "allowPrivilegeEscalation") != false || path(sc, "capabilities", "drop", 0) != "ALL" {
		t.Errorf("%s: container security context %v", name, sc)
	}

	// Termination grace: longer than the shutdown timeouts.
	var shutdown time.Duration
	for _, k := range []string{"REVOKED_KAFKA_SHUTDOWN_TIMEOUT", "REVOKED_HTTP_SHUTDOWN_TIMEOUT", "TOKENAPI_SHUTDOWN_TIMEOUT", "REVOKED_INGEST_SHUTDOWN_TIMEOUT"} {
		if !acc.env[k] {
			continue
		}
		v, ok := env[k]
		if !ok {
			v = acc.defaults[k]
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Errorf("%s: %s=%q: %v", name, k, v, err)
		}
		shutdown += d
	}
	grace, _ := pod["terminationGracePeriodSeconds"].(int)
	if shutdown == 0 || time.Duration(grace)*time.Second <= shutdown {
		t.Errorf("%s: terminationGracePeriodSeconds %d is not longer than the shutdown timeouts (%s)", name, grace, shutdown)
	}

	// Files on volumes; keys in the secret.
	mounts := map[string]string{} // mount path -> volume
	for _, m := range asList(ctr["volumeMounts"]) {
		mounts[path(m, "mountPath").(string)] = path(m, "name").(string)
	}
	volumes := map[string]any{}
	for _, v := range asList(pod["volumes"]) {
		volumes[path(v, "name").(string)] = v
	}
	for vol := range maps.Values(mounts) {
		if _, ok := volumes[vol]; !ok {
			t.Errorf("%s: mounts volume %s, which the pod lacks", name, vol)
		}
	}
	for k, v := range env {
		if !(strings.HasSuffix(k, "_FILE") || strings.HasSuffix(k, "_FILES") || strings.HasSuffix(k, "_DIR")) {
			continue
		}
		for f := range strings.SplitSeq(v, ",") {
			mount := ""
			for m := range mounts {
				if (f == m || strings.HasPrefix(f, strings.TrimSuffix(m, "/")+"/")) && len(m) > len(mount) {
					mount = m
				}
			}
			if mount == "" {
				t.Errorf("%s: %s=%s is on no volume", name, k, f)
				continue
			}
			if mount == "/etc/revoked/keys" {
				if key := strings.TrimPrefix(f, mount+"/"); !keys[key] {
					t.Errorf("%s: %s names %s, which is no key of the keys secret", name, k, key)
				}
			}
		}
	}
}

func asList(v any) []any { l, _ := v.([]any); return l }

// TestChartRefusesBadValues checks that values.schema.json and the
// templates refuse what would not run.
func TestChartRefusesBadValues(t *testing.T) {
	c := loadChart(t)
	for _, bad := range []struct {
		name, values, want string
	}{
		{"unknown key", "detectr: {replicas: 2}", "detectr"},
		{"spool type", "consumer: {spool: {type: hostPath}}", "spool/type"},
		{"no replicas", "detector: {replicas: 0}", "replicas"},
		{"no brokers", "kafka: {brokers: []}", "brokers"},
		{"broker without port", "kafka: {brokers: [kafka]}", "brokers"},
		{"log level", "log: {level: verbose}", "level"},
		{"secret both ways", "secrets: {create: true, existingSecret: mine}", "secrets"},
		{"secret key", "secrets: {create: true, existingSecret: '', values: {signing-key: x}}", "signing-key"},
		{"no limits", "detector: {resources: {limits: null}}", "limits"},
		{"ttl", "clickhouse: {ttl: a year}", "ttl"},
		{"extra env not ours", "consumer: {extraEnv: {HTTP_PROXY: x}}", "HTTP_PROXY"},
		{"idle detectors", "detector: {replicas: 7}", "exceeds kafka.partitions.events"},
		{"idle consumers", "consumer: {replicas: 7, spool: {type: emptyDir}}", "exceeds kafka.partitions.commands"},
		{"two consumers on one claim", "consumer: {replicas: 2}", "must be 1"},
	} {
		t.Run(bad.name, func(t *testing.T) {
			var vals map[string]any
			if err := yaml.Unmarshal([]byte(bad.values), &vals); err != nil {
				t.Fatal(err)
			}
			_, err := render(c, vals)
			if err == nil || !strings.Contains(err.Error(), bad.want) {
				t.Fatalf("err = %v, want one naming %q", err, bad.want)
			}
		})
	}
}

// TestChartUsesOneSetOfRules checks that the chart's monitoring files are
// deployments/monitoring's, not copies that could drift.
func TestChartUsesOneSetOfRules(t *testing.T) {
	c := loadChart(t)
	var got []string
	for _, f := range c.Files {
		if strings.HasPrefix(f.Name, "files/monitoring/") {
			want, err := os.ReadFile(filepath.Join(monitoringDir, strings.TrimPrefix(f.Name, "files/monitoring/")))
			if err != nil || string(want) != string(f.Data) {
				t.Errorf("%s differs from deployments/monitoring (%v)", f.Name, err)
			}
			got = append(got, f.Name)
		}
	}
	sort.Strings(got)
	if !slices.Contains(got, "files/monitoring/alerts.yaml") || len(got) < 3 {
		t.Errorf("the chart's monitoring files: %v", got)
	}
}
