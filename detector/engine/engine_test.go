package engine_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/revoked-dev/revoked/detector/engine"
	"github.com/revoked-dev/revoked/schemas"
)

// TestCases runs every directory of testdata as a case:
//
//	testdata/<case>/
//	  rules/          rule files (optional; the default pack otherwise)
//	  config.yaml     engine.Config overrides (optional)
//	  events.jsonl    the input events, in arrival order
//	  expected.jsonl  the commands expected, in order, without the fields
//	                  that depend on the issuer and TTL (command_id,
//	                  issued_at, expires_at, issuer), which are checked
//	                  against their definitions instead
var update = flag.Bool("update", false, "rewrite expected.jsonl of every test case with the commands made")

func TestCases(t *testing.T) {
	dirs, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	ran := 0
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		ran++
		t.Run(d.Name(), func(t *testing.T) {
			t.Parallel()
			runCase(t, filepath.Join("testdata", d.Name()))
		})
	}
	if ran == 0 {
		t.Fatal("no test cases in testdata")
	}
}

func runCase(t *testing.T, dir string) {
	cfg := engine.DefaultConfig()
	cfg.Issuer = "detector-test"
	cfg.CommandTTL = 30 * time.Minute
	if data, err := os.ReadFile(filepath.Join(dir, "config.yaml")); err == nil {
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil {
			t.Fatalf("config.yaml: %v", err)
		}
	}
	rules := loadCaseRules(t, dir)
	events := readEvents(t, filepath.Join(dir, "events.jsonl"))
	want := readExpected(t, filepath.Join(dir, "expected.jsonl"))

	eng, err := engine.New(cfg, rules)
	if err != nil {
		t.Fatal(err)
	}
	got := processAll(eng, events)
	for _, c := range got {
		checkDerived(t, cfg, c)
	}
	if *update {
		out := strings.ReplaceAll(render(t, stripDerived(got)),
			`{"command_id":"","issued_at":"0001-01-01T00:00:00Z","expires_at":"0001-01-01T00:00:00Z","issuer":"",`, "{")
		if err := os.WriteFile(filepath.Join(dir, "expected.jsonl"), []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if g, w := render(t, stripDerived(got)), render(t, want); g != w {
		t.Errorf("commands differ\n--- got\n%s\n--- want\n%s", g, w)
	}

	// The same events make the same commands, ids included.
	again, err := engine.New(cfg, rules)
	if err != nil {
		t.Fatal(err)
	}
	if g, w := render(t, processAll(again, events)), render(t, got); g != w {
		t.Errorf("a second engine made other commands\n--- second\n%s\n--- first\n%s", g, w)
	}
	// Redelivered events are duplicates: no new commands.
	if extra := processAll(eng, events); len(extra) != 0 {
		t.Errorf("redelivery made %d more commands:\n%s", len(extra), render(t, extra))
	}
}

func loadCaseRules(t *testing.T, dir string) []*engine.Rule {
	t.Helper()
	rulesDir := filepath.Join(dir, "rules")
	if _, err := os.Stat(rulesDir); err == nil {
		rules, err := engine.LoadDir(rulesDir)
		if err != nil {
			t.Fatal(err)
		}
		return rules
	}
	rules, err := engine.DefaultRules()
	if err != nil {
		t.Fatal(err)
	}
	return rules
}

func processAll(eng *engine.Engine, events []schemas.AuditEvent) []schemas.RevokeCommand {
	var out []schemas.RevokeCommand
	for i := range events {
		out = append(out, eng.Process(&events[i])...)
	}
	return out
}

// checkDerived checks the fields left out of expected.jsonl against their
// definitions, and that the command is valid on the wire.
func checkDerived(t *testing.T, cfg engine.Config, c schemas.RevokeCommand) {
	t.Helper()
	if id := schemas.DetectionCommandID(c.Reason.RuleID, c.Reason.RuleVersion, c.Target, c.Reason.Evidence); c.CommandID != id {
		t.Errorf("command_id %s, want DetectionCommandID = %s", c.CommandID, id)
	}
	if c.Issuer != cfg.Issuer {
		t.Errorf("issuer %q, want %q", c.Issuer, cfg.Issuer)
	}
	if !c.IssuedAt.Equal(c.Reason.DetectedAt) || !c.ExpiresAt.Equal(c.IssuedAt.Add(cfg.CommandTTL)) {
		t.Errorf("issued_at %s expires_at %s, want detected_at %s and +%s", c.IssuedAt, c.ExpiresAt, c.Reason.DetectedAt, cfg.CommandTTL)
	}
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := schemas.DecodeCommand(data); err != nil {
		t.Errorf("command does not decode: %v", err)
	}
}

func stripDerived(cs []schemas.RevokeCommand) []schemas.RevokeCommand {
	out := slices.Clone(cs)
	for i := range out {
		out[i].CommandID, out[i].Issuer = "", ""
		out[i].IssuedAt, out[i].ExpiresAt = time.Time{}, time.Time{}
	}
	return out
}

func render(t *testing.T, cs []schemas.RevokeCommand) string {
	t.Helper()
	var b strings.Builder
	for _, c := range cs {
		data, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(data)
		b.WriteByte('\n')
	}
	return b.String()
}

func readEvents(t *testing.T, path string) []schemas.AuditEvent {
	t.Helper()
	var out []schemas.AuditEvent
	eachLine(t, path, func(line []byte) {
		ev, err := schemas.DecodeEvent(line)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, ev)
	})
	return out
}

func readExpected(t *testing.T, path string) []schemas.RevokeCommand {
	t.Helper()
	out := []schemas.RevokeCommand{}
	eachLine(t, path, func(line []byte) {
		var c schemas.RevokeCommand
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, c)
	})
	return out
}

func eachLine(t *testing.T, path string, f func([]byte)) {
	t.Helper()
	file, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	sc.Buffer(make([]byte, 0, 64<<10), schemas.MaxEventBytes)
	for sc.Scan() {
		if line := bytes.TrimSpace(sc.Bytes()); len(line) > 0 {
			f(line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}

// Every rule of the default pack shows in the commands of some case, as
// the rule of a command or as one of its signals: none is untested.
func TestEveryDefaultRuleHasACase(t *testing.T) {
	rules, err := engine.DefaultRules()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	dirs, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		for _, c := range readExpected(t, filepath.Join("testdata", d.Name(), "expected.jsonl")) {
			seen[c.Reason.RuleID] = true
			for _, s := range c.Reason.Signals {
				seen[s.RuleID] = true
			}
		}
	}
	for _, r := range rules {
		if !seen[r.ID] {
			t.Errorf("no case of testdata shows rule %s", r.ID)
		}
	}
}
