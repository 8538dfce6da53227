package check

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/rs/zerolog"

	conapp "github.com/revoked-dev/revoked/consumer/app"
	"github.com/revoked-dev/revoked/consumer/audit/backends"
	"github.com/revoked-dev/revoked/consumer/idp"
	"github.com/revoked-dev/revoked/consumer/lineage"
	conservice "github.com/revoked-dev/revoked/consumer/service"
	"github.com/revoked-dev/revoked/deployments/tokenapi/server"
	detapp "github.com/revoked-dev/revoked/detector/app"
	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/internal/testenv"
	"github.com/revoked-dev/revoked/schemas"
)

var monitoringDir = filepath.Join(repoRoot, "deployments", "monitoring")

// metricInfo is what a component registers under one name.
type metricInfo struct {
	kind   string // histogram, summary or other
	labels map[string]bool
}

// recorder is a prometheus.Registerer that keeps the description of every
// collector registered on it: the metrics a component exports, also those
// of vectors that have no series yet, which a scrape would not show.
type recorder struct {
	reg     *prometheus.Registry
	mu      sync.Mutex
	metrics map[string]metricInfo
}

var _ prometheus.Registerer = (*recorder)(nil)

var (
	fqNameRE   = regexp.MustCompile(`fqName: "([^"]+)"`)
	constRE    = regexp.MustCompile(`constLabels: \{(.*?)\}, variableLabels`)
	variableRE = regexp.MustCompile(`variableLabels: \{([^}]*)\}\}$`)
)

func newRecorder() *recorder {
	return &recorder{reg: prometheus.NewRegistry(), metrics: map[string]metricInfo{}}
}

func (r *recorder) Register(c prometheus.Collector) error {
	if err := r.reg.Register(c); err != nil {
		return err
	}
	kind := "other"
	switch c.(type) {
	case prometheus.Histogram, *prometheus.HistogramVec:
		kind = "histogram"
	case prometheus.Summary, *prometheus.SummaryVec:
		kind = "summary"
	}
	ch := make(chan *prometheus.Desc)
	go func() { c.Describe(ch); close(ch) }()
	r.mu.Lock()
	defer r.mu.Unlock()
	for d := range ch {
		s := d.String()
		m := fqNameRE.FindStringSubmatch(s)
		if m == nil {
			continue
		}
		info := metricInfo{kind: kind, labels: map[string]bool{}}
		if v := variableRE.FindStringSubmatch(s); v != nil && v[1] != "" {
			for l := range strings.SplitSeq(v[1], ",") {
				info.labels[strings.TrimSuffix(strings.TrimPrefix(l, "c("), ")")] = true
			}
		}
		if v := constRE.FindStringSubmatch(s); v != nil && v[1] != "" {
			for l := range strings.SplitSeq(v[1], ",") {
				name, _, _ := strings.Cut(l, "=")
				info.labels[name] = true
			}
		}
		r.metrics[m[1]] = info
	}
	return nil
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

func (r *recorder) Unregister(c prometheus.Collector) bool { return r.reg.Unregister(c) }

// exportedMetrics assembles the detector, the consumer (on the ClickHouse
// server of the tests), its token API client and the reference token API
// as their commands assemble them, on a recorder, and returns every
// metric they register. Nothing connects to Kafka or the token API: the
// assemblies connect when they run.
func exportedMetrics(t *testing.T) map[string]metricInfo {
	t.Helper()
	ctx := context.Background()
	rec := newRecorder()
	rec.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	priv, err := schemas.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	signer := schemas.NewSigner(priv)
	nowhere := []string{"127.0.0.1:9"}
	dcfg := detapp.DefaultConfig()
	dcfg.Detector.Reader.Brokers = nowhere
	if _, err := detapp.New(dcfg, signer, zerolog.Nop(), rec); err != nil {
		t.Fatalf("assembling the detector: %v", err)
	}

	client, err := idp.New(idp.Config{
		Issuer: "http://127.0.0.1:9", ClientID: "revoker", ClientSecret: config.NewSecret("secret"),
		AuthMethod: idp.AuthClientSecretBasic, Admin: idp.ReferencePreset("http://127.0.0.1:9", config.NewSecret("admin")),
	}, nil, zerolog.Nop(), idp.WithRegisterer(rec))
	if err != nil {
		t.Fatalf("the token API client: %v", err)
	}

	dsn := testenv.ClickHouseDSN(t)
	db := testenv.UniqueName(t, "deploy")
	t.Cleanup(func() { testenv.DropClickHouseDatabase(t, dsn, db) })
	ccfg := conservice.DefaultConfig()
	ccfg.Reader.Brokers = nowhere
	a, err := conapp.New(ctx, conapp.Config{
		Consumer: ccfg, Lineage: lineage.DefaultConfig(),
		Audit: backends.Config{Backend: backends.ClickHouse, DSN: dsn, Database: db, SpoolDir: t.TempDir()},
	}, conapp.Deps{TokenAPI: client, Keyring: schemas.NewKeyring(signer.Public()), Registry: rec}, zerolog.Nop())
	if err != nil {
		t.Fatalf("assembling the consumer: %v", err)
	}
	t.Cleanup(func() { _ = a.Close() })

	api, err := server.New(server.Config{
		Issuer: "http://127.0.0.1:9", AdminToken: config.NewSecret("admin-token-of-the-test"),
		Clients: []server.ClientConfig{{ID: "revoker", Secret: config.NewSecret("revoker-secret"), Grants: []string{server.GrantClientCredentials}}},
	}, zerolog.Nop())
	if err != nil {
		t.Fatalf("the token API: %v", err)
	}
	if err := api.RegisterMetrics(rec); err != nil {
		t.Fatal(err)
	}
	return rec.metrics
}

// A query and where it comes from.
type query struct {
	where, expr string
}

type dashboard struct {
	name string
	raw  []byte
}

func dashboards(t testing.TB) []dashboard {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(monitoringDir, "dashboards", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards: %v", err)
	}
	var out []dashboard
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, dashboard{name: filepath.Base(f), raw: b})
	}
	return out
}

type panel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

// dashboardQueries returns every PromQL expression of the dashboards'
// panels, with Grafana's interval variables replaced by durations.
func dashboardQueries(t *testing.T) []query {
	t.Helper()
	vars := strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h")
	var out []query
	for _, d := range dashboards(t) {
		var dash struct {
			UID    string  `json:"uid"`
			Panels []panel `json:"panels"`
		}
		if err := json.Unmarshal(d.raw, &dash); err != nil {
			t.Fatalf("%s: %v", d.name, err)
		}
		if dash.UID == "" {
			t.Errorf("%s has no uid", d.name)
		}
		ids := map[int]bool{}
		var walk func([]panel)
		walk = func(ps []panel) {
			for _, p := range ps {
				if ids[p.ID] {
					t.Errorf("%s: panel id %d twice", d.name, p.ID)
				}
				ids[p.ID] = true
				walk(p.Panels)
				if p.Type == "row" {
					continue
				}
				if len(p.Targets) == 0 {
					t.Errorf("%s: panel %q queries nothing", d.name, p.Title)
				}
				if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
					t.Errorf("%s: panel %q does not query the dashboard's data source variable", d.name, p.Title)
				}
				for _, tg := range p.Targets {
					out = append(out, query{where: fmt.Sprintf("%s panel %q", d.name, p.Title), expr: vars.Replace(tg.Expr)})
				}
			}
		}
		walk(dash.Panels)
	}
	return out
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// alertQueries returns the expressions of the alert rules, and checks
// each rule's labels and annotations: a severity, a summary, a
// description and a runbook pointing at its section of the operator's
// guide.
func alertQueries(t *testing.T) []query {
	t.Helper()
	var rf ruleFile
	readYAML(t, filepath.Join(monitoringDir, "alerts.yaml"), &rf)
	anchors := guideAnchors(t)
	var out []query
	seen := map[string]bool{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("group %s has a rule that is no alert", g.Name)
				continue
			}
			if seen[r.Alert] {
				t.Errorf("alert %s twice", r.Alert)
			}
			seen[r.Alert] = true
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("%s: severity %q", r.Alert, s)
			}
			for _, a := range []string{"summary", "description", "runbook_url"} {
				if r.Annotations[a] == "" {
					t.Errorf("%s has no %s", r.Alert, a)
				}
			}
			const guide = "https://github.com/revoked-dev/revoked/blob/main/deployments/OPERATIONS.md#"
			anchor, ok := strings.CutPrefix(r.Annotations["runbook_url"], guide)
			if !ok || anchor != strings.ToLower(r.Alert) || !anchors[anchor] {
				t.Errorf("%s: runbook_url %q, want %s%s, a section of deployments/OPERATIONS.md", r.Alert, r.Annotations["runbook_url"], guide, strings.ToLower(r.Alert))
			}
			out = append(out, query{where: "alert " + r.Alert, expr: r.Expr})
		}
	}
	for _, want := range []string{"RevokedReaderLagGrowing", "RevokedAuditSpoolPending", "RevokedIdPCircuitOpen",
		"RevokedDetectorBudgetExceeded", "RevokedRevocationNotEffective", "RevokedDeadLetterRate"} {
		if !seen[want] {
			t.Errorf("no alert %s", want)
		}
	}
	return out
}

// guideAnchors are the anchors GitHub gives the headings of
// deployments/OPERATIONS.md.
func guideAnchors(t testing.TB) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "deployments", "OPERATIONS.md"))
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	strip := regexp.MustCompile(`[^a-z0-9 _-]`)
	for line := range strings.SplitSeq(string(b), "\n") {
		if h := strings.TrimLeft(line, "#"); h != line && strings.HasPrefix(h, " ") {
			a := strip.ReplaceAllString(strings.ToLower(strings.TrimSpace(h)), "")
			anchors[strings.ReplaceAll(a, " ", "-")] = true
		}
	}
	return anchors
}

// Labels every series gets from its scrape target.
var targetLabels = map[string]bool{"job": true, "instance": true}

// TestMonitoringQueriesExportedMetrics parses every dashboard query and
// alert expression with Prometheus's own parser and checks that each
// metric it selects is one the components register, with the labels it
// matches or groups by.
func TestMonitoringQueriesExportedMetrics(t *testing.T) {
	metrics := exportedMetrics(t)
	if len(metrics) < 40 {
		t.Fatalf("only %d metrics registered: %v", len(metrics), keysOf(metrics))
	}
	queries := append(dashboardQueries(t), alertQueries(t)...)
	used := map[string]bool{}
	for _, q := range queries {
		for _, p := range queryProblems(metrics, q, used) {
			t.Error(p)
		}
	}
	if len(used) < 20 {
		t.Errorf("the dashboards and alerts query only %d metrics", len(used))
	}
	t.Logf("%d queries over %d metrics, of the %d the components register", len(queries), len(used), len(metrics))
}

// queryProblems parses q and reports every selected metric that is not in
// metrics (a histogram's or summary's series count as theirs), every
// label matched that the metric lacks, and every label grouped by that
// the metrics aggregated lack. It adds the metrics selected to used.
func queryProblems(metrics map[string]metricInfo, q query, used map[string]bool) []string {
	expr, err := parser.NewParser(parser.Options{}).ParseExpr(q.expr)
	if err != nil {
		return []string{fmt.Sprintf("%s: %v\n%s", q.where, err, q.expr)}
	}
	var problems []string
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		switch n := node.(type) {
		case *parser.VectorSelector:
			name := selectorName(n)
			m, ok := lookupMetric(metrics, name)
			if !ok {
				problems = append(problems, fmt.Sprintf("%s: %s is not a metric the components export", q.where, name))
				return nil
			}
			used[name] = true
			for _, lm := range n.LabelMatchers {
				if lm.Name != labels.MetricName && !targetLabels[lm.Name] && !m.labels[lm.Name] {
					problems = append(problems, fmt.Sprintf("%s: %s has no label %q (it has %v)", q.where, name, lm.Name, keys(m.labels)))
				}
			}
		case *parser.AggregateExpr:
			if n.Without {
				return nil
			}
			have := map[string]bool{}
			parser.Inspect(n.Expr, func(inner parser.Node, _ []parser.Node) error {
				if vs, ok := inner.(*parser.VectorSelector); ok {
					if m, ok := lookupMetric(metrics, selectorName(vs)); ok {
						for l := range m.labels {
							have[l] = true
						}
					}
				}
				return nil
			})
			for _, l := range n.Grouping {
				if !targetLabels[l] && !have[l] {
					problems = append(problems, fmt.Sprintf("%s: groups by %q, which the metrics it aggregates lack", q.where, l))
				}
			}
		}
		return nil
	})
	return problems
}

// lookupMetric finds the metric a selected name belongs to: itself, or a
// histogram's or summary's series (_bucket with its le label, _sum,
// _count).
func lookupMetric(metrics map[string]metricInfo, name string) (metricInfo, bool) {
	if m, ok := metrics[name]; ok && m.kind != "histogram" {
		return m, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		m, ok := metrics[base]
		if !ok || m.kind == "other" || (m.kind == "summary" && suffix == "_bucket") {
			continue
		}
		if suffix == "_bucket" {
			l := map[string]bool{"le": true}
			for k := range m.labels {
				l[k] = true
			}
			m.labels = l
		}
		return m, true
	}
	return metricInfo{}, false
}

func selectorName(vs *parser.VectorSelector) string {
	if vs.Name != "" {
		return vs.Name
	}
	for _, lm := range vs.LabelMatchers {
		if lm.Name == labels.MetricName {
			return lm.Value
		}
	}
	return ""
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func keysOf(m map[string]metricInfo) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestQueryProblemsCatchesMistakes runs the check on queries that must
// fail it: a misspelt metric, a label the metric lacks, a histogram's
// series of a counter, a grouping by a label nobody has.
func TestQueryProblemsCatchesMistakes(t *testing.T) {
	metrics := map[string]metricInfo{
		"revoked_consumer_held_total":                  {kind: "other", labels: map[string]bool{}},
		"revoked_consumer_revocations_total":           {kind: "other", labels: map[string]bool{"outcome": true, "target_kind": true}},
		"revoked_consumer_event_to_revocation_seconds": {kind: "histogram", labels: map[string]bool{}},
	}
	for _, c := range []struct {
		expr string
		ok   bool
	}{
		{`rate(revoked_consumer_held_total[5m])`, true},
		{`sum by (outcome, instance) (rate(revoked_consumer_revocations_total{target_kind="user", job="consumer"}[5m]))`, true},
		{`histogram_quantile(0.9, sum by (le) (rate(revoked_consumer_event_to_revocation_seconds_bucket[5m])))`, true},
		{`rate(revoked_consumer_helds_total[5m])`, false},
		{`rate(revoked_consumer_held_total{rule="x"}[5m])`, false},
		{`rate(revoked_consumer_held_total_bucket[5m])`, false},
		{`revoked_consumer_event_to_revocation_seconds`, false},
		{`sum by (rule) (rate(revoked_consumer_revocations_total[5m]))`, false},
		{`sum by (outcome) (rate(revoked_consumer_revocations_total[5m])`, false},
	} {
		problems := queryProblems(metrics, query{where: "test", expr: c.expr}, map[string]bool{})
		if (len(problems) == 0) != c.ok {
			t.Errorf("%s: problems %q, want ok=%v", c.expr, problems, c.ok)
		}
	}
}
