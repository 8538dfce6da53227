package quality_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/detector/quality"
	"github.com/revoked-dev/revoked/producer/simulate"
	"github.com/revoked-dev/revoked/schemas"
)

// smallProfile is the default profile shrunk to run in seconds: fewer
// users, less activity each, a day of baseline and a day of attacks, with
// attacks and outages made frequent so that every kind and class shows
// up.
func smallProfile() quality.Config {
	cfg := quality.DefaultConfig()
	cfg.Name = "small"
	cfg.Users = 500
	cfg.EventsPerUserDay = 20
	cfg.Sim.AttacksAfter = 24 * time.Hour
	cfg.Duration = cfg.Sim.AttacksAfter + 24*time.Hour
	cfg.Sim.BruteForceProb = 0.01
	cfg.Sim.ReplayProb = 0.01
	cfg.Sim.AttackProb = 0.08
	// A distributed stuffing touches a hundred users: a few are enough.
	cfg.Sim.AttackMix = []string{simulate.AttackDistributedStuffing + "=0.2"}
	cfg.Sim.OutageRate = 2
	cfg.Sim.ServiceShare = 0.03
	return cfg
}

// TestSmallProfile runs the small profile and checks that its report is
// well formed, with every kind of attack and every benign class in it. It
// does not assert the targets: the rules are being rewritten for the
// simulator's realistic traffic, and `detector quality` reports them.
func TestSmallProfile(t *testing.T) {
	cfg := smallProfile()
	enriched := 0
	cfg.Enrich = func(ev *schemas.AuditEvent) { enriched++ }
	progress := 0
	cfg.Progress = func(simulate.Stats) { progress++ }
	r, err := quality.Run(context.Background(), cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := r.Print(&out); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + out.String())
	if err := r.Err(); err != nil {
		t.Log(err)
	}
	if r.Profile != "small" || r.Events == 0 || int64(enriched) != r.Events || progress == 0 || r.EngineEventsPerSec <= 0 {
		t.Errorf("profile %q, %d events, %d enriched, %d progress reports, %.0f events/s", r.Profile, r.Events, enriched, progress, r.EngineEventsPerSec)
	}
	kinds := map[string]quality.KindReport{}
	for _, k := range r.Kinds {
		kinds[k.Kind] = k
		if k.Detected > k.Attacks || k.Recall < 0 || k.Recall > 1 {
			t.Errorf("kind %+v", k)
		}
	}
	for _, k := range simulate.Attacks() {
		if kinds[k].Attacks == 0 {
			t.Errorf("no %s attack in the report", k)
		}
	}
	classes := map[string]quality.ClassReport{}
	users := 0
	for _, c := range r.Classes {
		classes[c.Class] = c
		if c.Revoked > c.Users {
			t.Errorf("class %+v", c)
		}
	}
	for _, c := range simulate.BenignClasses() {
		if classes[c].Users == 0 {
			t.Errorf("no benign user in class %s", c)
		}
		users += classes[c].Users
	}
	o := r.Overall
	if o.AttackedUsers == 0 || o.BenignUsers == 0 || o.BenignUsers+o.AttackedUsers > cfg.Users || users < o.BenignUsers || o.Logouts == 0 {
		t.Errorf("overall %+v", o)
	}
	for _, s := range []string{"attack kind", "benign class", "logouts honoured", simulate.AttackMFAFatigue, simulate.ClassHandoff} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("the printed report lacks %q", s)
		}
	}
	if _, err := json.Marshal(r); err != nil {
		t.Error(err)
	}
}

func TestHeldOutProfilesDiffer(t *testing.T) {
	def := quality.DefaultConfig()
	seen := map[int64]bool{def.Seed: true}
	names := map[string]bool{}
	for _, c := range quality.HeldOut() {
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", c.Name, err)
		}
		if seen[c.Seed] || names[c.Name] {
			t.Errorf("%s repeats a seed or a name", c.Name)
		}
		seen[c.Seed], names[c.Name] = true, true
		if c.Users == def.Users && c.Sim.HandoffShare == def.Sim.HandoffShare && len(c.Sim.AttackMix) == 0 {
			t.Errorf("%s is the default profile with another seed", c.Name)
		}
		if c.Users > 10_000 || c.Duration > 11*24*time.Hour {
			t.Errorf("%s is too large to run in under a minute", c.Name)
		}
	}
	if len(names) < 3 {
		t.Errorf("%d held-out profiles", len(names))
	}
}

// Explain writes one line per missed attack and per benign user revoked,
// each with the user's events around it, the attack's own among them.
func TestExplain(t *testing.T) {
	cfg := smallProfile()
	var out bytes.Buffer
	cfg.Explain = &out
	// A rule that revokes some benign users too: anyone uploading
	// 10 MB or more.
	cfg.RulesDir = t.TempDir()
	rule := `id: test_big_upload
version: 1
description: A test rule that revokes a user uploading 10 MB or more at once, which some benign users do.
kind: threshold
when: event.type == "file.upload" && event.bytes >= 10000000
group_by: [user_id]
window: 1m
cooldown: 24h
severity: low
action: revoke
target:
  kind: user
threshold:
  count: 1
`
	if err := os.WriteFile(filepath.Join(cfg.RulesDir, "test.yaml"), []byte(rule), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := quality.Run(context.Background(), cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	missed := 0
	for _, k := range r.Kinds {
		missed += k.Attacks - k.Detected
	}
	type line struct {
		Profile string                `json:"profile"`
		Case    string                `json:"case"`
		UserID  string                `json:"user_id"`
		Attack  *simulate.GroundTruth `json:"attack"`
		At      time.Time             `json:"at"`
		Events  []struct {
			Time time.Time `json:"time"`
			Type string    `json:"type"`
		} `json:"events"`
		Commands []schemas.RevokeCommand `json:"commands"`
	}
	cases := map[string]int{}
	dec := json.NewDecoder(&out)
	for dec.More() {
		var l line
		if err := dec.Decode(&l); err != nil {
			t.Fatal(err)
		}
		cases[l.Case]++
		if l.Profile != "small" || l.UserID == "" || len(l.Events) == 0 {
			t.Errorf("line %+v", l)
			continue
		}
		switch l.Case {
		case "missed":
			if l.Attack == nil || l.Attack.UserID != l.UserID {
				t.Errorf("missed line without its attack: %+v", l)
				continue
			}
			in := false
			for _, e := range l.Events {
				in = in || !e.Time.Before(l.Attack.Start) && !e.Time.After(l.Attack.End)
			}
			if !in {
				t.Errorf("%s: no event within the attack %s..%s", l.UserID, l.Attack.Start, l.Attack.End)
			}
		case "benign_revoked":
			revoked := false
			for _, c := range l.Commands {
				revoked = revoked || c.Action != schemas.ActionNotify && c.Reason.LastEventTime.Equal(l.At)
			}
			if !revoked {
				t.Errorf("%s: no revocation at %s among its commands", l.UserID, l.At)
			}
		default:
			t.Errorf("case %q", l.Case)
		}
	}
	if r.Overall.BenignRevoked == 0 {
		t.Error("no benign user revoked: the benign lines are not exercised")
	}
	if cases["missed"] != missed || cases["benign_revoked"] != r.Overall.BenignRevoked {
		t.Errorf("%d missed and %d benign lines, want %d and %d", cases["missed"], cases["benign_revoked"], missed, r.Overall.BenignRevoked)
	}
	t.Logf("%d missed attacks and %d benign users revoked explained", missed, r.Overall.BenignRevoked)
}
