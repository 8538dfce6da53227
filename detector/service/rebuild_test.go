package service_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/detector/engine"
	"github.com/revoked-dev/revoked/detector/service"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/kafka/kafkatest"
	"github.com/revoked-dev/revoked/schemas"
)

// detector is one running detector instance of a test.
type detector struct {
	name   string
	reg    *prometheus.Registry
	cancel context.CancelFunc
	errc   chan error
	done   bool
}

func startDetector(t *testing.T, c *kafkatest.Cluster, name, group string, signer *schemas.Signer, opts ...service.Option) *detector {
	t.Helper()
	cfg := service.DefaultConfig()
	cfg.Reader = c.ReaderConfig(schemas.TopicAuditEvents, group)
	cfg.Reader.Component = "detector"
	cfg.Writer = c.WriterConfig(schemas.TopicRevokeCommands)
	reg := prometheus.NewRegistry()
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel).With().Str("instance", name).Logger()
	svc, err := service.New(cfg, signer, log, append([]service.Option{service.WithRegistry(reg)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &detector{name: name, reg: reg, cancel: cancel, errc: make(chan error, 1)}
	go func() { d.errc <- svc.Run(ctx) }()
	t.Cleanup(func() { d.stop(t) })
	return d
}

// stop cancels the detector and waits for its clean shutdown: it finishes
// what it holds, commits and leaves the group.
func (d *detector) stop(t *testing.T) {
	t.Helper()
	if d.done {
		return
	}
	d.done = true
	d.cancel()
	if err := <-d.errc; err != nil {
		t.Errorf("detector %s: Run: %v", d.name, err)
	}
}

func (d *detector) metric(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	return metricValue(t, d.reg, name, labels)
}

// attack is a brute force on user: five failed logins then a success,
// from one address, a minute apart, the success at end.
func attack(prefix, user string, end time.Time) []kafkax.Message {
	t0 := end.Add(-5 * time.Minute)
	var out []kafkax.Message
	for i := range 5 {
		out = append(out, event(fmt.Sprintf("%s-f%d", prefix, i), t0.Add(time.Duration(i)*time.Minute), schemas.EventLoginFailure, user, nil))
	}
	return append(out, event(prefix+"-s", t0.Add(5*time.Minute), schemas.EventLoginSuccess, user, nil))
}

// bruteForceCommands returns the brute-force commands against user in the
// command topic.
func bruteForceCommands(t *testing.T, c *kafkatest.Cluster, user string) []schemas.RevokeCommand {
	t.Helper()
	var out []schemas.RevokeCommand
	for _, m := range c.Records(t, schemas.TopicRevokeCommands) {
		cmd, err := schemas.DecodeCommand(m.Value)
		if err != nil {
			t.Fatalf("command: %v", err)
		}
		if cmd.Reason.RuleID == "risk" && len(cmd.Reason.Signals) > 0 && cmd.Reason.Signals[0].RuleID == "brute_force_success" &&
			cmd.Target.UserID == user {
			out = append(out, cmd)
		}
	}
	return out
}

func newSigner(t *testing.T) *schemas.Signer {
	t.Helper()
	priv, err := schemas.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	return schemas.NewSigner(priv)
}

// A detector stopped after it handled and committed half of a brute force
// leaves the attack's start in Kafka only. The next instance of the group
// rebuilds it from the event topic before handling the rest, without
// emitting anything for it, and emits the detection exactly once. A
// further instance rebuilds the cooldown too: a second attack within the
// hour is not detected again.
func TestRestartMidAttackDetectsOnce(t *testing.T) {
	c := kafkatest.New(t, schemas.TopicAuditEvents, schemas.TopicRevokeCommands, schemas.TopicDLQ)
	signer := newSigner(t)
	const group = "detector-restart"
	msgs := attack("a1", "alice", time.Now().Add(-15*time.Minute))

	first := startDetector(t, c, "first", group, signer)
	c.Produce(t, schemas.TopicAuditEvents, msgs[:3]...)
	c.WaitCommitted(t, group, schemas.TopicAuditEvents, map[int]int64{0: 3})
	first.stop(t)

	second := startDetector(t, c, "second", group, signer)
	c.Produce(t, schemas.TopicAuditEvents, msgs[3:]...)
	c.WaitCommitted(t, group, schemas.TopicAuditEvents, map[int]int64{0: 6})
	cmds := bruteForceCommands(t, c, "alice")
	if len(cmds) != 1 {
		t.Fatalf("%d brute-force commands for alice, want 1: %+v", len(cmds), cmds)
	}
	if got := strings.Join(cmds[0].Reason.Evidence, ","); got != "a1-f0,a1-f1,a1-f2,a1-f3,a1-f4,a1-s" {
		t.Errorf("evidence %s", got)
	}
	if got := second.metric(t, "revoked_detector_state_replayed_events_total", nil); got != 3 {
		t.Errorf("second instance replayed %v events, want 3", got)
	}
	if got := second.metric(t, "revoked_detector_events_total", map[string]string{"result": "processed"}); got != 3 {
		t.Errorf("second instance processed %v events, want 3", got)
	}
	second.stop(t)

	third := startDetector(t, c, "third", group, signer)
	c.Produce(t, schemas.TopicAuditEvents, attack("a2", "alice", time.Now().Add(-time.Minute))...)
	c.WaitCommitted(t, group, schemas.TopicAuditEvents, map[int]int64{0: 12})
	if cmds := bruteForceCommands(t, c, "alice"); len(cmds) != 1 {
		t.Errorf("%d brute-force commands for alice after a second attack within the cooldown, want 1: %+v", len(cmds), cmds)
	}
	if got := third.metric(t, "revoked_detector_state_replayed_events_total", nil); got != 6 {
		t.Errorf("third instance replayed %v events, want 6", got)
	}
	if got := third.metric(t, "revoked_detector_rule_suppressed_total", map[string]string{"rule": "brute_force_success"}); got != 1 {
		t.Errorf("third instance suppressed %v detections, want 1 (the cooldown rebuilt)", got)
	}
	// The pack's rules keep no baselines of their own; the context's
	// (what each user's devices and networks are) are all there is.
	for _, m := range c.Records(t, "detector.baselines") {
		if !strings.Contains(string(m.Value), `"rule":"_context"`) {
			t.Errorf("baseline record from a rule without baselines: %s", m.Value)
		}
	}
}

// Two detectors share the group; the one that handled the start of an
// attack stops, its partition moves to the other, which rebuilds the
// partition's state and emits the detection exactly once.
func TestPartitionMoveMidAttackDetectsOnce(t *testing.T) {
	c := kafkatest.NewWithPartitions(t, map[string]int{schemas.TopicAuditEvents: 2, schemas.TopicRevokeCommands: 1, schemas.TopicDLQ: 1})
	signer := newSigner(t)
	const group = "detector-move"
	dets := []*detector{startDetector(t, c, "a", group, signer), startDetector(t, c, "b", group, signer)}
	waitMembers(t, c, group, 2)

	msgs := attack("m1", "mallory", time.Now().Add(-time.Minute))
	c.ProduceTo(t, schemas.TopicAuditEvents, 0, msgs[:3]...)
	c.WaitCommitted(t, group, schemas.TopicAuditEvents, map[int]int64{0: 3})
	processed := "revoked_detector_events_total"
	owner, other := dets[0], dets[1]
	if owner.metric(t, processed, map[string]string{"result": "processed"}) != 3 {
		owner, other = other, owner
	}
	if got := owner.metric(t, processed, map[string]string{"result": "processed"}); got != 3 {
		t.Fatalf("neither detector handled the attack's start alone (%s: %v)", owner.name, got)
	}
	owner.stop(t)
	waitMembers(t, c, group, 1)

	c.ProduceTo(t, schemas.TopicAuditEvents, 0, msgs[3:]...)
	c.WaitCommitted(t, group, schemas.TopicAuditEvents, map[int]int64{0: 6})
	cmds := bruteForceCommands(t, c, "mallory")
	if len(cmds) != 1 {
		t.Fatalf("%d brute-force commands for mallory, want 1: %+v", len(cmds), cmds)
	}
	if got := len(cmds[0].Reason.Evidence); got != 6 {
		t.Errorf("evidence %v", cmds[0].Reason.Evidence)
	}
	if got := other.metric(t, "revoked_detector_state_replayed_events_total", nil); got != 3 {
		t.Errorf("%s replayed %v events, want 3", other.name, got)
	}
	if got := other.metric(t, "revoked_detector_commands_published_total", map[string]string{"rule": "risk", "mode": "enforce"}); got != 1 {
		t.Errorf("%s published %v commands, want 1", other.name, got)
	}
}

// waitMembers waits until group is stable with n members.
func waitMembers(t *testing.T, c *kafkatest.Cluster, group string, n int) {
	t.Helper()
	c.WaitStableGroup(t, group, n)
}

// newCountry fires when a user shows up from a country never seen for them,
// once an hour of their history is known.
const newCountry = `
id: new_country
version: 1
description: A country never seen for the user.
kind: first_seen
group_by: [user_id]
window: 10m
severity: medium
action: notify
target:
  kind: user
first_seen:
  fields: [geo.country]
  learning: 1h
`

func from(country string) func(*schemas.AuditEvent) {
	return func(e *schemas.AuditEvent) { e.Geo = &schemas.Geo{Country: country} }
}

// What a first_seen rule learnt hours before a restart, beyond the
// replay, is kept in the baseline topic and read back by the next
// instance: a known country stays quiet, a new one is detected (which,
// with the history lost, would still be "learning").
func TestBaselinesSurviveRestart(t *testing.T) {
	c := kafkatest.New(t, schemas.TopicAuditEvents, schemas.TopicRevokeCommands, schemas.TopicDLQ)
	signer := newSigner(t)
	rules, err := engine.ParseRules("new_country.yaml", []byte(newCountry))
	if err != nil {
		t.Fatal(err)
	}
	const group = "detector-baselines"
	now := time.Now()

	first := startDetector(t, c, "first", group, signer, service.WithRules(rules))
	// Stamped with their event time, as a producer forwarding a backlog
	// may: they are beyond the replay of the next instance.
	old := []kafkax.Message{
		event("b1", now.Add(-3*time.Hour), schemas.EventLoginSuccess, "carol", from("FR")),
		event("b2", now.Add(-2*time.Hour), schemas.EventLoginSuccess, "carol", from("FR")),
	}
	old[0].Time, old[1].Time = now.Add(-3*time.Hour), now.Add(-2*time.Hour)
	c.Produce(t, schemas.TopicAuditEvents, old...)
	c.WaitCommitted(t, group, schemas.TopicAuditEvents, map[int]int64{0: 2})
	if got := first.metric(t, "revoked_detector_baselines_persisted_total", nil); got != 2 {
		t.Errorf("first instance persisted %v baseline entries, want 2 (the history start and FR)", got)
	}
	first.stop(t)

	second := startDetector(t, c, "second", group, signer, service.WithRules(rules))
	c.Produce(t, schemas.TopicAuditEvents,
		event("b3", now.Add(-2*time.Minute), schemas.EventLoginSuccess, "carol", from("FR")),
		event("b4", now.Add(-time.Minute), schemas.EventLoginSuccess, "carol", from("DE")),
	)
	c.WaitCommitted(t, group, schemas.TopicAuditEvents, map[int]int64{0: 4})
	if got := second.metric(t, "revoked_detector_baselines_restored_total", nil); got != 2 {
		t.Errorf("second instance restored %v baseline entries, want 2", got)
	}
	if got := second.metric(t, "revoked_detector_state_replayed_events_total", nil); got != 0 {
		t.Errorf("second instance replayed %v events, want 0 (they are older than the horizon)", got)
	}
	var cmds []schemas.RevokeCommand
	for _, m := range c.Records(t, schemas.TopicRevokeCommands) {
		cmd, err := schemas.DecodeCommand(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	if len(cmds) != 1 || cmds[0].Reason.RuleID != "new_country" || strings.Join(cmds[0].Reason.Evidence, ",") != "b4" {
		t.Fatalf("commands %+v, want one new_country command for b4", cmds)
	}
	if got := len(c.Records(t, "detector.baselines")); got != 3 {
		t.Errorf("%d baseline records, want 3 (history start, FR, DE)", got)
	}
}

// A detector joining the group mid-attack takes one of the two partitions
// from the detector that handled the start of both attacks: each attack is
// detected once, the joiner having rebuilt the state of the partition it
// took, the other keeping the state of the partition it kept.
func TestJoiningDetectorTakesPartitionMidAttack(t *testing.T) {
	c := kafkatest.NewWithPartitions(t, map[string]int{schemas.TopicAuditEvents: 2, schemas.TopicRevokeCommands: 1, schemas.TopicDLQ: 1})
	signer := newSigner(t)
	const group = "detector-join"
	first := startDetector(t, c, "first", group, signer)
	waitMembers(t, c, group, 1)

	end := time.Now().Add(-time.Minute)
	attacks := [][]kafkax.Message{attack("j0", "mallory", end), attack("j1", "trudy", end)}
	for p, msgs := range attacks {
		c.ProduceTo(t, schemas.TopicAuditEvents, p, msgs[:3]...)
	}
	c.WaitCommitted(t, group, schemas.TopicAuditEvents, map[int]int64{0: 3, 1: 3})

	joiner := startDetector(t, c, "joiner", group, signer)
	waitMembers(t, c, group, 2)
	for p, msgs := range attacks {
		c.ProduceTo(t, schemas.TopicAuditEvents, p, msgs[3:]...)
	}
	c.WaitCommitted(t, group, schemas.TopicAuditEvents, map[int]int64{0: 6, 1: 6})
	for _, user := range []string{"mallory", "trudy"} {
		if cmds := bruteForceCommands(t, c, user); len(cmds) != 1 || len(cmds[0].Reason.Evidence) != 6 {
			t.Errorf("brute-force commands for %s: %+v, want one with six events of evidence", user, cmds)
		}
	}
	if got := joiner.metric(t, "revoked_detector_state_replayed_events_total", nil); got != 3 {
		t.Errorf("joiner replayed %v events, want 3 (the start of the attack on the partition it took)", got)
	}
	if got := first.metric(t, "revoked_detector_state_replayed_events_total", nil); got != 0 {
		t.Errorf("first detector replayed %v events, want 0", got)
	}
}

func TestStateConfigValidate(t *testing.T) {
	cfg := service.DefaultConfig()
	cfg.Reader.Brokers = []string{"127.0.0.1:9092"}
	cfg.State.BaselineTopic = cfg.Reader.Topic
	cfg.State.ReplaySlack = -time.Second
	cfg.State.MaxReplay = -time.Second
	err := cfg.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{`state.baseline-topic: must differ from the topics read and written ("audit.events")`, "state.replay-slack", "state.max-replay"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	cfg.State = service.DefaultConfig().State
	cfg.State.BaselineTopic = ""
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "state.baseline-topic: required") {
		t.Errorf("empty baseline topic: %v", err)
	}
}
