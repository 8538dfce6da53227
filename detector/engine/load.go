package engine

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// defaultPack is the rule set the detector runs when given no rules.
//
//go:embed rules/*.yaml
var defaultPack embed.FS

// DefaultRules returns the embedded default rule pack.
func DefaultRules() ([]*Rule, error) {
	rules, err := LoadFS(defaultPack, "rules")
	if err != nil {
		return nil, fmt.Errorf("default rule pack: %w", err)
	}
	return rules, nil
}

// LoadDir loads every *.yaml and *.yml file of a directory (not its
// subdirectories). See LoadFS.
func LoadDir(dir string) ([]*Rule, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("rules directory: %w", err)
	}
	rules, err := LoadFS(os.DirFS(dir), ".")
	if err != nil {
		return nil, err
	}
	for _, r := range rules {
		r.Source = path.Join(dir, r.Source)
	}
	return rules, nil
}

// LoadFS loads every *.yaml and *.yml file of dir in fsys, in name order.
// A file holds one rule or several YAML documents, one rule each. Every
// problem of every file is reported at once: the error joins one *LoadError
// per problem, each naming the file, the line where known and the reason,
// and each wrapping ErrInvalidRule. A rule id defined twice is an error.
func LoadFS(fsys fs.FS, dir string) ([]*Rule, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("reading rules directory: %w", err)
	}
	var (
		rules []*Rule
		errs  []error
	)
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !(strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")) {
			continue
		}
		p := path.Join(dir, name)
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			errs = append(errs, &LoadError{File: p, Reason: err.Error()})
			continue
		}
		rs, err := ParseRules(p, data)
		if err != nil {
			errs = append(errs, err)
		}
		rules = append(rules, rs...)
	}
	if err := checkDuplicates(rules); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return rules, nil
}

func checkDuplicates(rules []*Rule) error {
	var errs []error
	seen := make(map[string]*Rule, len(rules))
	for _, r := range rules {
		if first, ok := seen[r.ID]; ok {
			file, line := splitSource(r.Source)
			errs = append(errs, &LoadError{File: file, Line: line, Rule: r.ID, Field: "id",
				Reason: fmt.Sprintf("rule id already defined at %s", first.Source)})
			continue
		}
		seen[r.ID] = r
	}
	return errors.Join(errs...)
}

func splitSource(src string) (string, int) {
	i := strings.LastIndexByte(src, ':')
	if i < 0 {
		return src, 0
	}
	line, err := strconv.Atoi(src[i+1:])
	if err != nil {
		return src, 0
	}
	return src[:i], line
}

// LoadError is one problem with a rule file.
type LoadError struct {
	File   string
	Line   int    // 0 when unknown
	Rule   string // the rule's id, when known
	Field  string // dotted path of the offending field, when known
	Reason string
}

func (e *LoadError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":")
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Rule != "" {
		fmt.Fprintf(&b, "rule %q: ", e.Rule)
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Reason)
	return b.String()
}

// Unwrap makes every LoadError an ErrInvalidRule.
func (e *LoadError) Unwrap() error { return ErrInvalidRule }

// ParseRules parses the rules of one file; name is what errors and
// Rule.Source call the file. It decodes strictly (unknown keys are errors)
// and validates each rule.
func ParseRules(name string, data []byte) ([]*Rule, error) {
	// Two decoders walk the same documents in step: one keeps the node tree
	// (for the line of each field), the other decodes strictly into Rule
	// (yaml.v3 ignores KnownFields when decoding a node).
	nodes := yaml.NewDecoder(bytes.NewReader(data))
	strict := yaml.NewDecoder(bytes.NewReader(data))
	strict.KnownFields(true)
	var (
		rules []*Rule
		errs  []error
	)
	for {
		var doc yaml.Node
		if err := nodes.Decode(&doc); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			errs = append(errs, yamlErrors(name, "", err)...)
			break
		}
		var r Rule
		serr := strict.Decode(&r)
		root := docRoot(&doc)
		if root == nil || (root.Kind == yaml.ScalarNode && root.Tag == "!!null") {
			continue // an empty document
		}
		if root.Kind != yaml.MappingNode {
			errs = append(errs, &LoadError{File: name, Line: root.Line, Reason: "a rule must be a mapping of keys to values"})
			continue
		}
		id := scalarValue(root, "id")
		if serr != nil {
			errs = append(errs, yamlErrors(name, id, serr)...)
			continue
		}
		r.Source = fmt.Sprintf("%s:%d", name, root.Line)
		if err := r.Validate(); err != nil {
			for _, fe := range fieldErrorsOf(err) {
				errs = append(errs, &LoadError{File: name, Line: lineOf(root, fe.Field), Rule: id, Field: fe.Field, Reason: fe.Reason})
			}
			continue
		}
		rules = append(rules, &r)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(rules) == 0 {
		return nil, nil
	}
	return rules, nil
}

func docRoot(doc *yaml.Node) *yaml.Node {
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return nil
		}
		return doc.Content[0]
	}
	return doc
}

func scalarValue(m *yaml.Node, key string) string {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key && m.Content[i+1].Kind == yaml.ScalarNode {
			return m.Content[i+1].Value
		}
	}
	return ""
}

func fieldErrorsOf(err error) []*FieldError {
	var out []*FieldError
	var walk func(error)
	walk = func(err error) {
		if fe, ok := err.(*FieldError); ok {
			out = append(out, fe)
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		out = append(out, &FieldError{Reason: err.Error()})
	}
	walk(err)
	return out
}

// yamlErrors turns a yaml.v3 error into LoadErrors carrying its lines, with
// the Go type names of this package replaced by plain words.
func yamlErrors(file, rule string, err error) []error {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	out := make([]error, 0, len(msgs))
	for _, m := range msgs {
		le := &LoadError{File: file, Rule: rule}
		le.Line, le.Reason = splitYAMLLine(strings.TrimPrefix(m, "yaml: "))
		le.Reason = plainYAMLReason(le.Reason)
		out = append(out, le)
	}
	return out
}

// splitYAMLLine splits "line 12: reason" into 12 and "reason".
func splitYAMLLine(m string) (int, string) {
	rest, ok := strings.CutPrefix(m, "line ")
	if !ok {
		return 0, m
	}
	num, reason, ok := strings.Cut(rest, ": ")
	if !ok {
		return 0, m
	}
	line, err := strconv.Atoi(num)
	if err != nil {
		return 0, m
	}
	return line, reason
}

// plainYAMLReason rewords yaml.v3's messages that name Go types.
func plainYAMLReason(m string) string {
	if rest, ok := strings.CutPrefix(m, "field "); ok {
		if key, _, ok := strings.Cut(rest, " not found in type "); ok {
			return fmt.Sprintf("unknown key %q", key)
		}
	}
	if rest, ok := strings.CutPrefix(m, "cannot unmarshal "); ok {
		if i := strings.LastIndex(rest, " into "); i >= 0 {
			return fmt.Sprintf("wrong type: %s where %s is expected", strings.TrimPrefix(rest[:i], "!!"), plainType(rest[i+len(" into "):]))
		}
	}
	return m
}

func plainType(t string) string {
	switch {
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "map"), strings.HasPrefix(t, "engine."):
		return "a mapping"
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"):
		return "an integer"
	case t == "bool":
		return "true or false"
	case t == "string", strings.HasPrefix(t, "schemas."):
		return "a string"
	}
	return t
}

// lineOf finds the line of a dotted field path ("distinct.fields[1]") in a
// rule's mapping node, falling back to the deepest part found.
func lineOf(root *yaml.Node, field string) int {
	n, line := root, root.Line
	if field == "" {
		return line
	}
	for _, part := range strings.Split(field, ".") {
		key, idxs := part, []int(nil)
		if i := strings.IndexByte(part, '['); i >= 0 {
			key = part[:i]
			for _, s := range strings.Split(strings.TrimSuffix(part[i+1:], "]"), "][") {
				v, err := strconv.Atoi(s)
				if err != nil {
					return line
				}
				idxs = append(idxs, v)
			}
		}
		if n.Kind != yaml.MappingNode {
			return line
		}
		found := false
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				line, n, found = n.Content[i].Line, n.Content[i+1], true
				break
			}
		}
		if !found {
			return line
		}
		for _, idx := range idxs {
			if n.Kind != yaml.SequenceNode || idx >= len(n.Content) {
				return line
			}
			n = n.Content[idx]
			line = n.Line
		}
	}
	return line
}

// SortRules orders rules by id, so that the engine evaluates them, and
// emits their commands, in a stable order.
func SortRules(rules []*Rule) {
	slices.SortFunc(rules, func(a, b *Rule) int { return strings.Compare(a.ID, b.ID) })
}

// Merge returns base with the rules of override added, an override rule
// replacing the base rule of the same id. The result is sorted by id.
func Merge(base, override []*Rule) []*Rule {
	byID := make(map[string]*Rule, len(base)+len(override))
	for _, r := range base {
		byID[r.ID] = r
	}
	for _, r := range override {
		byID[r.ID] = r
	}
	out := make([]*Rule, 0, len(byID))
	for _, r := range byID {
		out = append(out, r)
	}
	SortRules(out)
	return out
}
