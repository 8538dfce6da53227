package config_test

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/revoked-dev/revoked/internal/config"
)

type tlsConfig struct {
	Enabled bool   `flag:"enabled" env:"ENABLED" yaml:"enabled" usage:"use TLS"`
	CAFile  string `flag:"ca-file" env:"CA_FILE" yaml:"ca_file" usage:"CA bundle"`
}

type kafkaConfig struct {
	Brokers  []string      `flag:"brokers" env:"BROKERS" yaml:"brokers" usage:"bootstrap brokers"`
	MaxWait  time.Duration `flag:"max-wait" env:"MAX_WAIT" yaml:"max_wait" usage:"fetch wait"`
	Password config.Secret `flag:"password" env:"PASSWORD" yaml:"password" usage:"SASL password"`
	TLS      tlsConfig     `flag:"tls" env:"TLS" yaml:"tls"`
}

type testConfig struct {
	Name     string        `flag:"name" env:"T_NAME" yaml:"name" usage:"component name"`
	Workers  int           `flag:"workers" env:"T_WORKERS" yaml:"workers"`
	Offset   int64         `flag:"offset" env:"T_OFFSET" yaml:"offset"`
	Ratio    float64       `flag:"ratio" env:"T_RATIO" yaml:"ratio"`
	DryRun   bool          `flag:"dry-run" env:"T_DRY_RUN" yaml:"dry_run"`
	Timeout  time.Duration `flag:"timeout" env:"T_TIMEOUT" yaml:"timeout"`
	Token    config.Secret `flag:"token" env:"T_TOKEN" yaml:"token"`
	EnvOnly  string        `env:"T_ENV_ONLY"`
	NoFlag   string        `flag:"-" env:"T_NO_FLAG" yaml:"no_flag"`
	Kafka    kafkaConfig   `flag:"kafka" env:"T_KAFKA" yaml:"kafka"`
	internal string        //nolint:unused // unexported fields are skipped
}

func defaults() testConfig {
	return testConfig{
		Name:    "default",
		Workers: 1,
		Offset:  1,
		Ratio:   0.5,
		Timeout: time.Second,
		Kafka:   kafkaConfig{Brokers: []string{"default:9092"}, MaxWait: 50 * time.Millisecond},
	}
}

func env(m map[string]string) config.Option {
	return config.WithLookupEnv(func(k string) (string, bool) { v, ok := m[k]; return v, ok })
}

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func newFlagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

func TestPrecedence(t *testing.T) {
	file := writeFile(t, "c.yaml", `
name: from-file
workers: 3
offset: 30
ratio: 0.25
dry_run: true
timeout: 3s
kafka:
  brokers: [file-a:9092, file-b:9092]
  max_wait: 300ms
  tls:
    enabled: true
    ca_file: /file/ca.pem
`)
	cfg := defaults()
	err := config.Load(newFlagSet(), []string{"-config", file, "-name", "from-flag", "-kafka.max-wait=1s", "-kafka.tls.enabled=false"}, &cfg,
		config.WithFileFlag("config", "T_CONFIG"),
		env(map[string]string{
			"T_NAME":              "from-env",
			"T_WORKERS":           "4",
			"T_KAFKA_BROKERS":     "env-a:9092, env-b:9092",
			"T_KAFKA_MAX_WAIT":    "400ms",
			"T_KAFKA_TLS_CA_FILE": "/env/ca.pem",
			"T_ENV_ONLY":          "env-only",
			"T_RATIO":             "", // empty counts as unset
		}))
	if err != nil {
		t.Fatal(err)
	}
	want := testConfig{
		Name:    "from-flag", // flag > env > file > default
		Workers: 4,           // env > file
		Offset:  30,          // file > default
		Ratio:   0.25,        // file, the empty variable is ignored
		DryRun:  true,
		Timeout: 3 * time.Second,
		EnvOnly: "env-only",
		Kafka: kafkaConfig{
			Brokers: []string{"env-a:9092", "env-b:9092"},
			MaxWait: time.Second,
			TLS:     tlsConfig{Enabled: false, CAFile: "/env/ca.pem"},
		},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("got  %+v\nwant %+v", cfg, want)
	}
}

func TestDefaultsStayWithoutSources(t *testing.T) {
	cfg := defaults()
	if err := config.Load(newFlagSet(), nil, &cfg, env(nil)); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, defaults()) {
		t.Fatalf("got %+v, want defaults", cfg)
	}
}

func TestFileFromEnvironment(t *testing.T) {
	file := writeFile(t, "c.yaml", "workers: 7\n")
	cfg := defaults()
	if err := config.Load(newFlagSet(), nil, &cfg, config.WithFileFlag("config", "T_CONFIG"), env(map[string]string{"T_CONFIG": file})); err != nil {
		t.Fatal(err)
	}
	if cfg.Workers != 7 {
		t.Fatalf("workers = %d, want 7", cfg.Workers)
	}
}

func TestSecretSources(t *testing.T) {
	secretFile := writeFile(t, "pw", "  s3cr3t-from-file\n")
	cfg := defaults()
	err := config.Load(newFlagSet(), []string{"-token", "tok-from-flag"}, &cfg, env(map[string]string{
		"T_KAFKA_PASSWORD_FILE": secretFile,
	}))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Kafka.Password.Reveal(); got != "s3cr3t-from-file" {
		t.Fatalf("password = %q", got)
	}
	if got := cfg.Token.Reveal(); got != "tok-from-flag" {
		t.Fatalf("token = %q", got)
	}

	cfg = defaults()
	err = config.Load(newFlagSet(), nil, &cfg, env(map[string]string{
		"T_KAFKA_PASSWORD":      "a",
		"T_KAFKA_PASSWORD_FILE": secretFile,
	}))
	if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), "T_KAFKA_PASSWORD_FILE") {
		t.Fatalf("both variable and file set: err = %v", err)
	}
}

func TestSecretRedaction(t *testing.T) {
	const value = "hunter2-very-secret"
	cfg := defaults()
	cfg.Token = config.NewSecret(value)
	cfg.Kafka.Password = config.NewSecret(value)

	var outputs []string
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		outputs = append(outputs, fmt.Sprintf(format, cfg), fmt.Sprintf(format, cfg.Token), fmt.Sprintf(format, &cfg))
	}
	outputs = append(outputs, cfg.Token.String(), fmt.Sprint(cfg.Token), fmt.Sprintln(cfg))
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ys, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	outputs = append(outputs, string(js), string(ys))
	for _, out := range outputs {
		if strings.Contains(out, value) || strings.Contains(out, fmt.Sprintf("%x", value)) {
			t.Fatalf("secret leaked: %s", out)
		}
	}
	if got := fmt.Sprintf("%v", cfg.Token); got != "********" {
		t.Fatalf("%%v = %q", got)
	}
	if !strings.Contains(string(js), `"Token":"********"`) {
		t.Fatalf("json = %s", js)
	}
	var back struct {
		Token config.Secret `json:"token" yaml:"token"`
	}
	if err := json.Unmarshal([]byte(`{"token":"from-json"}`), &back); err != nil || back.Token.Reveal() != "from-json" {
		t.Fatalf("json decode: %v %q", err, back.Token.Reveal())
	}
	if err := yaml.Unmarshal([]byte("token: from-yaml\n"), &back); err != nil || back.Token.Reveal() != "from-yaml" {
		t.Fatalf("yaml decode: %v %q", err, back.Token.Reveal())
	}
	if got := fmt.Sprint(config.Secret{}); got != "" {
		t.Fatalf("unset secret prints %q", got)
	}

	// The flag's usage shows the default redacted too.
	fs := newFlagSet()
	if _, err := config.Register(fs, &cfg); err != nil {
		t.Fatal(err)
	}
	if got := fs.Lookup("token").DefValue; got != "********" {
		t.Fatalf("flag default = %q", got)
	}
}

func TestEveryLoadProblemReported(t *testing.T) {
	file := writeFile(t, "c.yaml", `
workers: many
bogus: 1
kafka:
  max_wait: soon
  nope: true
  tls: 3
`)
	cfg := defaults()
	err := config.Load(newFlagSet(), []string{"-config", file}, &cfg,
		config.WithFileFlag("config", ""),
		env(map[string]string{"T_OFFSET": "x", "T_DRY_RUN": "perhaps"}))
	if !errors.Is(err, config.ErrInvalid) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{"workers", "unknown key bogus", "kafka.max_wait", "unknown key kafka.nope", "kafka.tls (line", "T_OFFSET", "T_DRY_RUN"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
	if cfg.Workers != 1 {
		t.Errorf("workers changed to %d on a bad value", cfg.Workers)
	}
}

func TestBadFlagValueRejectedAtParse(t *testing.T) {
	cfg := defaults()
	err := config.Load(newFlagSet(), []string{"-workers", "lots"}, &cfg, env(nil))
	if err == nil || !strings.Contains(err.Error(), "workers") {
		t.Fatalf("err = %v", err)
	}
}

func TestRegisterErrors(t *testing.T) {
	if _, err := config.Register(newFlagSet(), defaults()); !errors.Is(err, config.ErrTarget) {
		t.Fatalf("non-pointer: err = %v", err)
	}
	type bad struct {
		M map[string]string `flag:"m"`
		A string            `flag:"dup"`
		B string            `flag:"dup"`
	}
	_, err := config.Register(newFlagSet(), &bad{})
	if !errors.Is(err, config.ErrUnsupportedType) || !errors.Is(err, config.ErrDuplicate) {
		t.Fatalf("err = %v", err)
	}
	type skipped struct {
		Topics map[string]int `yaml:"-"`
		Hooks  []func()       `flag:"-" env:"-" yaml:"-"`
		Plain  map[string]int
		Name   string `flag:"name"`
	}
	if _, err := config.Register(newFlagSet(), &skipped{}); err != nil {
		t.Fatalf("fields excluded from every source: err = %v", err)
	}
	fs := newFlagSet()
	var cfg testConfig
	l, err := config.Register(fs, &cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Load(); !errors.Is(err, config.ErrNotParsed) {
		t.Fatalf("load before parse: err = %v", err)
	}
}

func TestSubcommandFlagSetKeepsOwnFlags(t *testing.T) {
	fs := newFlagSet()
	verbose := fs.Bool("v", false, "verbose")
	cfg := defaults()
	if err := config.Load(fs, []string{"-v", "-dry-run", "rest"}, &cfg, env(nil)); err != nil {
		t.Fatal(err)
	}
	if !*verbose || !cfg.DryRun || fs.Arg(0) != "rest" {
		t.Fatalf("verbose=%v dryRun=%v args=%v", *verbose, cfg.DryRun, fs.Args())
	}
}

type validated struct {
	Brokers []string
	Workers int
	TLS     tlsConfig
}

func (t tlsConfig) Validate() error {
	var p config.Problems
	p.Check(!t.Enabled || t.CAFile != "", "ca-file", "required when TLS is enabled")
	return p.Err()
}

func (v validated) Validate() error {
	var p config.Problems
	p.Check(len(v.Brokers) > 0, "brokers", "at least one broker is required")
	p.Check(v.Workers > 0, "workers", "must be positive, got %d", v.Workers)
	p.Nest("tls", v.TLS.Validate())
	return p.Err()
}

func TestProblemsReportsEverything(t *testing.T) {
	err := validated{Workers: -1, TLS: tlsConfig{Enabled: true}}.Validate()
	if !errors.Is(err, config.ErrInvalid) {
		t.Fatalf("err = %v", err)
	}
	want := "brokers: at least one broker is required\nworkers: must be positive, got -1\ntls.ca-file: required when TLS is enabled"
	if err.Error() != want {
		t.Fatalf("got\n%v\nwant\n%v", err, want)
	}
	var fe *config.FieldError
	if !errors.As(err, &fe) || fe.Field != "brokers" {
		t.Fatalf("FieldError = %+v", fe)
	}
	if err := (validated{Brokers: []string{"b"}, Workers: 1}).Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
}

// TestUsageNamesEveryVariable checks that -h names every environment
// variable a command reads: the flags' variables, the _FILE variable of a
// secret, and the settings read from the environment only.
func TestUsageNamesEveryVariable(t *testing.T) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	var out strings.Builder
	fs.SetOutput(&out)
	cfg := defaults()
	if _, err := config.Register(fs, &cfg); err != nil {
		t.Fatal(err)
	}
	fs.Usage()
	for _, want := range []string{
		"Usage of test:",
		"(env T_NAME)",
		"(env T_TOKEN or T_TOKEN_FILE)",
		"(env T_KAFKA_PASSWORD or T_KAFKA_PASSWORD_FILE)",
		"Environment only:\n  T_ENV_ONLY\n  T_NO_FLAG\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("usage lacks %q:\n%s", want, out.String())
		}
	}
}
