package service_test

import (
	"context"
	"testing"
	"time"

	"github.com/revoked-dev/revoked/detector/engine"
	"github.com/revoked-dev/revoked/detector/service"
	"github.com/revoked-dev/revoked/internal/guard"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/kafka/kafkatest"
	"github.com/revoked-dev/revoked/schemas"
)

// Two rules that revoke a user, each on its own signal, so the second
// detection of a user is a new command that only the guard's cross-rule
// cooldown holds back (each rule's own cooldown is rebuilt from the
// event topic anyway).
const twoRules = `
id: downloads
version: 1
description: Two downloads.
kind: threshold
when: event.type == "file.download"
group_by: [user_id]
window: 10m
cooldown: 1h
severity: high
action: revoke
target:
  kind: user
threshold:
  count: 2
---
id: shares
version: 1
description: Two shares.
kind: threshold
when: event.type == "share.created"
group_by: [user_id]
window: 10m
cooldown: 1h
severity: high
action: revoke
target:
  kind: user
threshold:
  count: 2
`

// discard is the held topic of a guard that holds nothing here.
type discard struct{}

func (discard) WriteMessages(context.Context, ...kafkax.Message) error { return nil }

// A detector publishes a revocation of dave and dies; the guard kept its
// cooldown in memory alone. The next instance, with a guard of its own,
// restores the cooldown from the command topic before it handles an
// event: another rule's detection of dave within the cooldown is
// suppressed, while erin, never revoked, is.
func TestGuardCooldownSurvivesCrash(t *testing.T) {
	c := kafkatest.New(t, schemas.TopicAuditEvents, schemas.TopicRevokeCommands, schemas.TopicDLQ)
	signer := newSigner(t)
	rules, err := engine.ParseRules("two.yaml", []byte(twoRules))
	if err != nil {
		t.Fatal(err)
	}
	newGuard := func() *guard.Guard {
		g, err := guard.New(guard.DefaultConfig()) // cooldown 15m
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	const group = "detector-guard-crash"
	now := time.Now()

	first := startDetector(t, c, "first", group, signer, service.WithRules(rules), service.WithGuard(newGuard(), discard{}))
	c.Produce(t, schemas.TopicAuditEvents,
		event("d1", now.Add(-3*time.Minute), schemas.EventFileDownload, "dave", nil),
		event("d2", now.Add(-2*time.Minute), schemas.EventFileDownload, "dave", nil),
	)
	c.WaitRecords(t, schemas.TopicRevokeCommands, 1)
	// The process dies: whatever the guard held in memory is gone. (Its
	// stop is no gentler than kill -9 for the guard: nothing of it is
	// saved on the way out.)
	first.stop(t)

	second := startDetector(t, c, "second", group, signer, service.WithRules(rules), service.WithGuard(newGuard(), discard{}))
	c.Produce(t, schemas.TopicAuditEvents,
		event("s1", now.Add(-time.Minute), schemas.EventShareCreated, "dave", nil),
		event("s2", now.Add(-30*time.Second), schemas.EventShareCreated, "dave", nil),
		event("e1", now.Add(-time.Minute), schemas.EventShareCreated, "erin", nil),
		event("e2", now.Add(-30*time.Second), schemas.EventShareCreated, "erin", nil),
	)
	c.WaitCommitted(t, group, schemas.TopicAuditEvents, map[int]int64{0: 6})
	second.stop(t)

	byUser := map[string][]string{}
	for _, m := range c.Records(t, schemas.TopicRevokeCommands) {
		cmd, err := schemas.DecodeCommand(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		byUser[cmd.Target.UserID] = append(byUser[cmd.Target.UserID], cmd.Reason.RuleID+"/"+string(cmd.Mode))
	}
	if got := byUser["dave"]; len(got) != 1 || got[0] != "downloads/enforce" {
		t.Errorf("dave's commands %v, want the first revocation alone (the second is within the cooldown)", got)
	}
	if got := byUser["erin"]; len(got) != 1 || got[0] != "shares/enforce" {
		t.Errorf("erin's commands %v, want one shares revocation", got)
	}
}
