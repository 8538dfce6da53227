// Package config loads a component's configuration from flags, environment
// variables and an optional YAML file into a plain Go struct, and helps the
// struct's Validate method report every problem at once.
//
// Where a value comes from is declared with struct tags:
//
//	type Config struct {
//		Brokers  []string       `flag:"brokers" env:"REVOKED_BROKERS" yaml:"brokers" usage:"Kafka bootstrap brokers"`
//		Timeout  time.Duration  `flag:"timeout" env:"REVOKED_TIMEOUT" yaml:"timeout" usage:"request timeout"`
//		Password config.Secret  `flag:"password" env:"REVOKED_PASSWORD" yaml:"password" usage:"SASL password"`
//		Kafka    kafkax.ReaderConfig `flag:"kafka" env:"REVOKED_KAFKA" yaml:"kafka"`
//	}
//
// Precedence, highest first: a flag given on the command line, an
// environment variable, the YAML file, and the value the struct held before
// loading, which is therefore where defaults go (fill the struct from a
// DefaultConfig function first).
//
// Supported field types are string, bool, int, int64, float64,
// time.Duration, []string (comma-separated in flags and the environment, a
// sequence or a comma-separated string in YAML), Secret, and nested structs.
// A nested struct's tags prefix its fields' names: flag "kafka" and "brokers"
// give the flag -kafka.brokers, env "REVOKED_KAFKA" and "BROKERS" give
// REVOKED_KAFKA_BROKERS, and yaml "kafka" and "brokers" give the key brokers
// in the mapping kafka. A nested struct without a tag for a source adds no
// prefix for that source; a tag of "-" excludes the field (or the whole
// nested struct) from that source. Leaf fields without a tag for a source are
// not read from it.
//
// An environment variable set to the empty string counts as unset. Unknown
// keys in the YAML file are errors, not silently ignored.
package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Errors that Register and Load wrap.
var (
	// ErrInvalid is wrapped by every value or validation problem: a flag,
	// variable or YAML value that does not parse, an unknown YAML key, and
	// every FieldError a Validate method reports.
	ErrInvalid = errors.New("invalid configuration")
	// ErrTarget means the destination is not a non-nil pointer to a struct.
	ErrTarget = errors.New("configuration target must be a non-nil pointer to a struct")
	// ErrUnsupportedType means a tagged field has a type Load cannot fill.
	ErrUnsupportedType = errors.New("unsupported configuration field type")
	// ErrDuplicate means two fields (or a field and an existing flag) claim
	// the same flag or environment variable.
	ErrDuplicate = errors.New("duplicate configuration name")
	// ErrNotParsed means Load was called before the flag set was parsed.
	ErrNotParsed = errors.New("flag set not parsed")
)

// Option adjusts Register and Load.
type Option func(*options)

type options struct {
	file      string
	fileFlag  string
	fileEnv   string
	lookupEnv func(string) (string, bool)
	readFile  func(string) ([]byte, error)
}

// WithFile reads the YAML file at path. A path given through WithFileFlag
// takes precedence over it.
func WithFile(path string) Option { return func(o *options) { o.file = path } }

// WithFileFlag registers the flag flagName (for example "config") and reads
// the environment variable envName (for example "REVOKED_CONFIG"), either of
// which may name the YAML file; the flag wins over the variable. Either name
// may be empty to leave that source out.
func WithFileFlag(flagName, envName string) Option {
	return func(o *options) { o.fileFlag, o.fileEnv = flagName, envName }
}

// WithLookupEnv replaces os.LookupEnv as the source of environment
// variables, for tests and for callers that assemble the environment
// themselves.
func WithLookupEnv(fn func(string) (string, bool)) Option {
	return func(o *options) { o.lookupEnv = fn }
}

// Loader fills one configuration struct. Create it with Register, parse the
// flag set, then call Load.
type Loader struct {
	fs       *flag.FlagSet
	opts     options
	fields   []*field
	fileFlag *stringFlag
	yamlTree map[string]bool // dotted YAML path -> true for leaves, false for mappings
}

// Load is Register, fs.Parse(args) and Loader.Load in one call. It returns
// flag.ErrHelp when args ask for help, after fs has printed its usage.
func Load(fs *flag.FlagSet, args []string, dst any, opts ...Option) error {
	l, err := Register(fs, dst, opts...)
	if err != nil {
		return err
	}
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("parsing flags: %w", err)
	}
	return l.Load()
}

// Register defines a flag on fs for every field of *dst that has a flag tag,
// showing the field's current value as the default and the environment
// variable in the usage text. dst must stay valid until Load is called.
// Flags the caller defined on fs before are left alone; a name clash is
// reported as ErrDuplicate.
func Register(fs *flag.FlagSet, dst any, opts ...Option) (*Loader, error) {
	o := options{lookupEnv: os.LookupEnv, readFile: os.ReadFile}
	for _, opt := range opts {
		opt(&o)
	}
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("%w: got %T", ErrTarget, dst)
	}
	l := &Loader{fs: fs, opts: o, yamlTree: map[string]bool{}}
	var errs []error
	l.collect(rv.Elem(), prefix{}, &errs)

	seenFlag := map[string]bool{}
	seenEnv := map[string]bool{}
	for _, f := range l.fields {
		if f.flagName != "" {
			if seenFlag[f.flagName] || fs.Lookup(f.flagName) != nil {
				errs = append(errs, fmt.Errorf("%w: flag -%s", ErrDuplicate, f.flagName))
				continue
			}
			seenFlag[f.flagName] = true
		}
		if f.envName != "" {
			if seenEnv[f.envName] {
				errs = append(errs, fmt.Errorf("%w: environment variable %s", ErrDuplicate, f.envName))
			}
			seenEnv[f.envName] = true
		}
	}
	if o.fileFlag != "" && (seenFlag[o.fileFlag] || fs.Lookup(o.fileFlag) != nil) {
		errs = append(errs, fmt.Errorf("%w: flag -%s", ErrDuplicate, o.fileFlag))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	for _, f := range l.fields {
		if f.flagName == "" {
			continue
		}
		f.flag = &flagValue{f: f, def: f.format()}
		usage := f.usage
		if f.envName != "" {
			usage = strings.TrimSpace(usage + " (env " + f.envVars() + ")")
		}
		fs.Var(f.flag, f.flagName, usage)
	}
	l.usageEnvOnly()
	if o.fileFlag != "" {
		l.fileFlag = &stringFlag{}
		usage := "YAML configuration file"
		if o.fileEnv != "" {
			usage += " (env " + o.fileEnv + ")"
		}
		fs.Var(l.fileFlag, o.fileFlag, usage)
	}
	return l, nil
}

// Load fills the struct given to Register from the YAML file, then the
// environment, then the flags that were set, so that each source overrides
// the ones before it and the struct's prior values remain the defaults. It
// reports every problem it finds at once, joined, each wrapping ErrInvalid,
// and leaves fields whose value did not parse unchanged. It does not call
// the struct's Validate method.
func (l *Loader) Load() error {
	if !l.fs.Parsed() {
		return ErrNotParsed
	}
	var errs []error

	path := l.opts.file
	if l.opts.fileEnv != "" {
		if v, ok := l.opts.lookupEnv(l.opts.fileEnv); ok && v != "" {
			path = v
		}
	}
	if l.fileFlag != nil && l.fileFlag.set {
		path = l.fileFlag.value
	}
	if path != "" {
		errs = append(errs, l.loadFile(path)...)
	}

	for _, f := range l.fields {
		if f.envName == "" {
			continue
		}
		if err := l.loadEnv(f); err != nil {
			errs = append(errs, err)
		}
	}

	for _, f := range l.fields {
		if f.flag == nil || !f.flag.set {
			continue
		}
		if err := f.set(f.flag.raw); err != nil {
			errs = append(errs, fmt.Errorf("%w: flag -%s: %w", ErrInvalid, f.flagName, err))
		}
	}
	return errors.Join(errs...)
}

// usageEnvOnly makes the flag set's usage also list the settings read
// from the environment only (secrets, mostly), so that -h names every
// variable a command reads.
func (l *Loader) usageEnvOnly() {
	var only []*field
	for _, f := range l.fields {
		if f.envName != "" && f.flagName == "" {
			only = append(only, f)
		}
	}
	if len(only) == 0 {
		return
	}
	fs, prev := l.fs, l.fs.Usage
	fs.Usage = func() {
		if prev != nil {
			prev()
		} else {
			if fs.Name() == "" {
				fmt.Fprintf(fs.Output(), "Usage:\n")
			} else {
				fmt.Fprintf(fs.Output(), "Usage of %s:\n", fs.Name())
			}
			fs.PrintDefaults()
		}
		fmt.Fprintf(fs.Output(), "Environment only:\n")
		for _, f := range only {
			fmt.Fprintf(fs.Output(), "  %s\n", f.envVars())
			if f.usage != "" {
				fmt.Fprintf(fs.Output(), "    \t%s\n", f.usage)
			}
		}
	}
}

// envVars names the field's environment variable, and for a secret the
// variable naming a file that holds it.
func (f *field) envVars() string {
	if f.kind == kindSecret {
		return f.envName + " or " + f.envName + "_FILE"
	}
	return f.envName
}

func (l *Loader) loadEnv(f *field) error {
	v, ok := l.opts.lookupEnv(f.envName)
	ok = ok && v != ""
	if f.kind == kindSecret {
		fileVar := f.envName + "_FILE"
		p, fok := l.opts.lookupEnv(fileVar)
		fok = fok && p != ""
		switch {
		case ok && fok:
			return fmt.Errorf("%w: both %s and %s are set", ErrInvalid, f.envName, fileVar)
		case fok:
			b, err := l.opts.readFile(p)
			if err != nil {
				return fmt.Errorf("%w: %s: reading secret file: %w", ErrInvalid, fileVar, err)
			}
			return f.set(strings.TrimSpace(string(b)))
		}
	}
	if !ok {
		return nil
	}
	if err := f.set(v); err != nil {
		return fmt.Errorf("%w: environment variable %s: %w", ErrInvalid, f.envName, err)
	}
	return nil
}

func (l *Loader) loadFile(path string) []error {
	b, err := l.opts.readFile(path)
	if err != nil {
		return []error{fmt.Errorf("%w: reading configuration file: %w", ErrInvalid, err)}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return []error{fmt.Errorf("%w: %s: %w", ErrInvalid, path, err)}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil // empty file
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil
	}
	if root.Kind != yaml.MappingNode {
		return []error{fmt.Errorf("%w: %s: top level must be a mapping", ErrInvalid, path)}
	}
	errs := l.checkKeys(path, root, "")
	for _, f := range l.fields {
		if f.yamlPath == "" {
			continue
		}
		n := lookup(root, strings.Split(f.yamlPath, "."))
		if n == nil {
			continue
		}
		if err := f.setYAML(n); err != nil {
			errs = append(errs, fmt.Errorf("%w: %s: key %s (line %d): %w", ErrInvalid, path, f.yamlPath, n.Line, err))
		}
	}
	return errs
}

// checkKeys reports every key of the mapping n (at dotted path at) that no
// field reads.
func (l *Loader) checkKeys(path string, n *yaml.Node, at string) []error {
	var errs []error
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		p := k.Value
		if at != "" {
			p = at + "." + k.Value
		}
		leaf, known := l.yamlTree[p]
		switch {
		case !known:
			errs = append(errs, fmt.Errorf("%w: %s: unknown key %s (line %d)", ErrInvalid, path, p, k.Line))
		case !leaf && v.Kind == yaml.MappingNode:
			errs = append(errs, l.checkKeys(path, v, p)...)
		case !leaf && !(v.Kind == yaml.ScalarNode && v.Tag == "!!null"):
			errs = append(errs, fmt.Errorf("%w: %s: key %s (line %d) must be a mapping", ErrInvalid, path, p, k.Line))
		}
	}
	return errs
}

// lookup returns the value node at path in the mapping n, or nil.
func lookup(n *yaml.Node, path []string) *yaml.Node {
	for _, key := range path {
		if n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				next = n.Content[i+1]
			}
		}
		if next == nil {
			return nil
		}
		n = next
	}
	return n
}

// prefix is what the enclosing structs contribute to a field's names. A
// source is off when an enclosing struct's tag for it is "-".
type prefix struct {
	flag, env, yaml       string
	noFlag, noEnv, noYAML bool
}

func join(p, name, sep string) string {
	switch {
	case p == "":
		return name
	case name == "":
		return p
	}
	return p + sep + name
}

func tagName(sf reflect.StructField, key string) string {
	v := sf.Tag.Get(key)
	if key == "yaml" {
		v, _, _ = strings.Cut(v, ",")
	}
	return v
}

func (l *Loader) collect(v reflect.Value, p prefix, errs *[]error) {
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		fl, en, ym := tagName(sf, "flag"), tagName(sf, "env"), tagName(sf, "yaml")
		if fl == "-" && en == "-" && ym == "-" {
			continue
		}
		fv := v.Field(i)
		if k, ok := kindOf(sf.Type); ok {
			f := &field{v: fv, kind: k, usage: sf.Tag.Get("usage")}
			if fl != "" && fl != "-" && !p.noFlag {
				f.flagName = join(p.flag, fl, ".")
			}
			if en != "" && en != "-" && !p.noEnv {
				f.envName = join(p.env, en, "_")
			}
			if ym != "" && ym != "-" && !p.noYAML {
				f.yamlPath = join(p.yaml, ym, ".")
				l.markYAML(f.yamlPath)
			}
			if f.flagName != "" || f.envName != "" || f.yamlPath != "" {
				l.fields = append(l.fields, f)
			}
			continue
		}
		if sf.Type.Kind() == reflect.Struct {
			np := p
			np.noFlag = p.noFlag || fl == "-"
			np.noEnv = p.noEnv || en == "-"
			np.noYAML = p.noYAML || ym == "-"
			if !np.noFlag {
				np.flag = join(p.flag, fl, ".")
			}
			if !np.noEnv {
				np.env = join(p.env, en, "_")
			}
			if !np.noYAML {
				np.yaml = join(p.yaml, ym, ".")
			}
			l.collect(fv, np, errs)
			continue
		}
		if (fl != "" && fl != "-") || (en != "" && en != "-") || (ym != "" && ym != "-") {
			*errs = append(*errs, fmt.Errorf("%w: field %s.%s has type %s", ErrUnsupportedType, t.Name(), sf.Name, sf.Type))
		}
	}
}

// markYAML records a leaf path and all the mappings that lead to it.
func (l *Loader) markYAML(path string) {
	l.yamlTree[path] = true
	for i := strings.LastIndex(path, "."); i > 0; i = strings.LastIndex(path[:i], ".") {
		if _, ok := l.yamlTree[path[:i]]; !ok {
			l.yamlTree[path[:i]] = false
		}
	}
}

type kind int

const (
	kindString kind = iota + 1
	kindBool
	kindInt
	kindInt64
	kindFloat64
	kindDuration
	kindStrings
	kindSecret
)

var (
	durationType = reflect.TypeFor[time.Duration]()
	secretType   = reflect.TypeFor[Secret]()
)

func kindOf(t reflect.Type) (kind, bool) {
	switch t {
	case secretType:
		return kindSecret, true
	case durationType:
		return kindDuration, true
	}
	switch t.Kind() {
	case reflect.String:
		return kindString, true
	case reflect.Bool:
		return kindBool, true
	case reflect.Int:
		return kindInt, true
	case reflect.Int64:
		return kindInt64, true
	case reflect.Float64:
		return kindFloat64, true
	case reflect.Slice:
		if t.Elem().Kind() == reflect.String {
			return kindStrings, true
		}
	}
	return 0, false
}

// field is one leaf of the configuration struct.
type field struct {
	v        reflect.Value // addressable
	kind     kind
	usage    string
	flagName string
	envName  string
	yamlPath string
	flag     *flagValue
}

// parse converts s into a value of the field's type without storing it.
func (f *field) parse(s string) (reflect.Value, error) {
	out := reflect.New(f.v.Type()).Elem()
	switch f.kind {
	case kindString:
		out.SetString(s)
	case kindBool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return out, fmt.Errorf("parsing %q as a boolean: %w", s, err)
		}
		out.SetBool(b)
	case kindInt, kindInt64:
		n, err := strconv.ParseInt(s, 0, out.Type().Bits())
		if err != nil {
			return out, fmt.Errorf("parsing %q as an integer: %w", s, err)
		}
		out.SetInt(n)
	case kindFloat64:
		n, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return out, fmt.Errorf("parsing %q as a number: %w", s, err)
		}
		out.SetFloat(n)
	case kindDuration:
		d, err := time.ParseDuration(s)
		if err != nil {
			return out, fmt.Errorf("parsing %q as a duration: %w", s, err)
		}
		out.SetInt(int64(d))
	case kindStrings:
		out.Set(reflect.ValueOf(splitList(s)).Convert(out.Type()))
	case kindSecret:
		out.Set(reflect.ValueOf(NewSecret(s)))
	}
	return out, nil
}

func (f *field) set(s string) error {
	v, err := f.parse(s)
	if err != nil {
		return err
	}
	f.v.Set(v)
	return nil
}

func (f *field) setYAML(n *yaml.Node) error {
	switch {
	case n.Kind == yaml.ScalarNode && n.Tag == "!!null":
		return nil
	case n.Kind == yaml.SequenceNode && f.kind == kindStrings:
		items := make([]string, 0, len(n.Content))
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return errors.New("list items must be scalars")
			}
			items = append(items, c.Value)
		}
		f.v.Set(reflect.ValueOf(items).Convert(f.v.Type()))
		return nil
	case n.Kind == yaml.ScalarNode:
		return f.set(n.Value)
	}
	return errors.New("expected a single value")
}

// format renders the field's current value as a flag default.
func (f *field) format() string {
	switch f.kind {
	case kindStrings:
		return strings.Join(f.v.Convert(reflect.TypeFor[[]string]()).Interface().([]string), ",")
	case kindDuration:
		return time.Duration(f.v.Int()).String()
	case kindSecret:
		return f.v.Interface().(Secret).String()
	}
	return fmt.Sprint(f.v.Interface())
}

func splitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// flagValue records what was given on the command line; Load applies it
// last so that flags override the other sources.
type flagValue struct {
	f   *field
	def string
	raw string
	set bool
}

func (v *flagValue) String() string {
	if v == nil || v.f == nil {
		return ""
	}
	return v.def
}

func (v *flagValue) Set(s string) error {
	if _, err := v.f.parse(s); err != nil {
		return err
	}
	v.raw, v.set = s, true
	return nil
}

// IsBoolFlag lets boolean flags be given without a value.
func (v *flagValue) IsBoolFlag() bool { return v != nil && v.f != nil && v.f.kind == kindBool }

type stringFlag struct {
	value string
	set   bool
}

func (s *stringFlag) String() string {
	if s == nil {
		return ""
	}
	return s.value
}

func (s *stringFlag) Set(v string) error {
	s.value, s.set = v, true
	return nil
}
