package backtest

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/revoked-dev/revoked/detector/engine"
	"github.com/revoked-dev/revoked/internal/guard"
	"github.com/revoked-dev/revoked/schemas"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata")

func loadRules(t *testing.T) []*engine.Rule {
	t.Helper()
	rules, err := engine.LoadDir("testdata/rules")
	if err != nil {
		t.Fatal(err)
	}
	return rules
}

// golden compares got with the file testdata/name, or rewrites it with
// -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// The fixture replays to exactly the golden commands; malformed lines are
// reported by number and counted, never fatal.
func TestGolden(t *testing.T) {
	f, err := os.Open("testdata/events.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out, diag bytes.Buffer
	sum, err := Run(f, &out, &diag, Options{Rules: loadRules(t), Engine: engine.DefaultConfig()})
	if err != nil {
		t.Fatal(err)
	}
	if err := sum.WriteSummary(&diag); err != nil {
		t.Fatal(err)
	}
	golden(t, "commands.golden.jsonl", out.Bytes())
	golden(t, "stderr.golden.txt", diag.Bytes())

	if sum.Malformed != 3 || sum.Events != 20 || sum.Lines != 24 {
		t.Errorf("summary %+v", sum)
	}
	var lines []int
	for _, p := range sum.Problems {
		lines = append(lines, p.Line)
	}
	if len(lines) != 3 || lines[0] != 4 || lines[1] != 8 || lines[2] != 18 {
		t.Errorf("malformed lines %v, want 4, 8, 18", lines)
	}
	for _, line := range bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n")) {
		if _, err := schemas.DecodeCommand(line); err != nil {
			t.Errorf("output line is not a valid command: %v\n%s", err, line)
		}
	}
}

// Same input, same bytes, with the default rule pack too.
func TestDeterministic(t *testing.T) {
	rules, err := engine.DefaultRules()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("testdata/events.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var first []byte
	for i := range 3 {
		var out bytes.Buffer
		if _, err := Run(bytes.NewReader(data), &out, &bytes.Buffer{}, Options{Rules: engine.Merge(rules, nil), Engine: engine.DefaultConfig()}); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = out.Bytes()
			if len(first) == 0 {
				t.Fatal("the default rules issued nothing on the fixture")
			}
		} else if !bytes.Equal(out.Bytes(), first) {
			t.Fatalf("run %d differs", i)
		}
	}
}

// The global dry-run switch makes every command dry_run.
func TestEngineDryRun(t *testing.T) {
	data, err := os.ReadFile("testdata/events.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	cfg := engine.DefaultConfig()
	cfg.DryRun = true
	sum, err := Run(bytes.NewReader(data), &bytes.Buffer{}, &bytes.Buffer{}, Options{Rules: loadRules(t), Engine: cfg})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Total.Commands == 0 || sum.Total.Enforce != 0 || sum.Total.DryRun != sum.Total.Commands {
		t.Errorf("total %+v", sum.Total)
	}
}

func TestLongLinesAndLineEndings(t *testing.T) {
	long := strings.Repeat("x", MaxLineBytes+10)
	in := "\r\n" + long + "\n" + `{"id":"a","time":"2025-03-01T10:00:00Z","type":"login.failure","user_id":"u"}` + "\r\n" + "{" // no final newline
	var diag bytes.Buffer
	sum, err := Run(strings.NewReader(in), &bytes.Buffer{}, &diag, Options{Rules: loadRules(t), Engine: engine.DefaultConfig()})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Lines != 4 || sum.Events != 1 || sum.Malformed != 2 {
		t.Errorf("summary %+v\n%s", sum, diag.String())
	}
	if !strings.Contains(diag.String(), "line 2: longer than") || !strings.Contains(diag.String(), "line 4: ") {
		t.Errorf("diag %q", diag.String())
	}
}

// With the guards applied on event time, an allowlisted user's command is
// dry_run, and a command beyond the budget is held and left out.
func TestGuarded(t *testing.T) {
	data, err := os.ReadFile("testdata/events.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	allowFile := filepath.Join(t.TempDir(), "allow.yaml")
	if err := os.WriteFile(allowFile, []byte("entries:\n  - user_ids: [bob]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	gcfg := guard.DefaultConfig()
	gcfg.AllowlistFile = allowFile
	var out, diag bytes.Buffer
	sum, err := Run(bytes.NewReader(data), &out, &diag, Options{Rules: loadRules(t), Engine: engine.DefaultConfig(), Guard: &gcfg})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Total.Commands != 3 || sum.Total.Enforce != 1 || sum.Total.DryRun != 2 || sum.Total.Held != 0 {
		t.Errorf("total %+v", sum.Total)
	}
	if !strings.Contains(out.String(), `"user_id":"bob","include_downscoped":true},"action":"revoke_and_reverify","mode":"dry_run"`) {
		t.Errorf("bob's command is not dry_run:\n%s", out.String())
	}

	// Two users' brute force completing in the same minute, budget one.
	var in strings.Builder
	for _, u := range []string{"u1", "u2"} {
		for i := range 6 {
			typ := "login.failure"
			if i == 5 {
				typ = "login.success"
			}
			fmt.Fprintf(&in, `{"id":"%s-%d","time":"2025-03-01T10:00:%02dZ","type":"%s","user_id":"%s"}`+"\n", u, i, i*2, typ, u)
		}
	}
	gcfg = guard.DefaultConfig()
	gcfg.Budget = 1
	out.Reset()
	diag.Reset()
	sum, err = Run(strings.NewReader(in.String()), &out, &diag, Options{Rules: loadRules(t), Engine: engine.DefaultConfig(), Guard: &gcfg})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Total.Commands != 1 || sum.Total.Held != 1 || strings.Count(out.String(), "\n") != 1 {
		t.Errorf("total %+v\n%s", sum.Total, out.String())
	}
	if err := sum.WriteSummary(&diag); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(diag.String(), "HELD") {
		t.Errorf("summary without the guard's columns:\n%s", diag.String())
	}
}

// With the default pack, the backtest shows what the risk model would do:
// the commands with the signals behind each, the signals' share, and how
// high every user's risk went. The fixture is a session hijacked from a
// hosting network, a sync client filling a new laptop, and an identity
// provider outage where a hundred users fail once and then log in.
func TestRiskModelReport(t *testing.T) {
	f, err := os.Open("testdata/risk/events.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rules, err := engine.DefaultRules()
	if err != nil {
		t.Fatal(err)
	}
	var out, diag bytes.Buffer
	sum, err := Run(f, &out, &diag, Options{Rules: rules, Engine: engine.DefaultConfig()})
	if err != nil {
		t.Fatal(err)
	}
	if err := sum.WriteSummary(&diag); err != nil {
		t.Fatal(err)
	}
	golden(t, "risk/commands.golden.jsonl", out.Bytes())
	golden(t, "risk/stderr.golden.txt", diag.Bytes())

	var revoked []string
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		c, err := schemas.DecodeCommand([]byte(line))
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Reason.Signals) == 0 || c.Reason.Risk <= 0 {
			t.Errorf("command without its signals: %s", line)
		}
		if c.Action != schemas.ActionNotify {
			revoked = append(revoked, c.Target.UserID)
		}
	}
	if strings.Join(revoked, ",") != "alice,alice" {
		t.Errorf("revoked %v, want alice's token and alice", revoked)
	}
	if sum.Users != 102 {
		t.Errorf("users %d", sum.Users)
	}
	byLabel := map[float64]int{}
	for _, b := range sum.Risk {
		byLabel[b.From] = b.Users
	}
	// The hundred users of the outage raised nothing; the sync client
	// only a notification's worth; alice far beyond the revocation.
	if byLabel[0] != 100 || byLabel[0.5] != 1 || byLabel[2] != 1 {
		t.Errorf("risk distribution %+v", sum.Risk)
	}
	for _, want := range []string{"session_hijack", "mass_download", "highest risk reached, 102 users"} {
		if !strings.Contains(diag.String(), want) {
			t.Errorf("report lacks %q", want)
		}
	}
}
