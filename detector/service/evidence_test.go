package service

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/detector/engine"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/schemas"
)

func evFrom(id, ip string, geo *schemas.Geo) *schemas.AuditEvent {
	return &schemas.AuditEvent{ID: id, Time: time.Now(), Type: schemas.EventLoginFailure, UserID: "u1", IP: ip, Geo: geo}
}

// The index holds the newest events with an address, forgets the oldest
// once full, updates a redelivered event in place, and returns context as
// commands carry it.
func TestEvidenceIndex(t *testing.T) {
	x := newEvidenceIndex(3)
	x.add(evFrom("no-ip", "", &schemas.Geo{Country: "DE"}))
	x.add(evFrom("bad-ip", "not-an-ip", nil))
	x.add(evFrom("e1", "::ffff:198.51.100.1", &schemas.Geo{Country: "NL", ASN: 1136, Org: "KPN B.V.", Network: schemas.NetworkResidential}))
	x.add(evFrom("e2", "2001:db8::2%eth0", nil))
	x.add(evFrom("e3", "203.0.113.3", &schemas.Geo{Country: "de", ASN: 3320, Org: "Evil\u202eCorp", Network: "satellite"}))
	if n := x.len(); n != 3 {
		t.Fatalf("%d events held, want 3 (those without an address are not)", n)
	}
	got := x.lookup([]string{"no-ip", "e1", "e2", "e3", "e9"})
	want := []schemas.EventContext{
		{EventID: "e1", IP: "198.51.100.1", Country: "NL", ASN: 1136, ASOrg: "KPN B.V.", Network: schemas.NetworkResidential},
		{EventID: "e2", IP: "2001:db8::2"},
		// What would not validate is left out.
		{EventID: "e3", IP: "203.0.113.3", ASN: 3320},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("lookup:\n%+v\nwant\n%+v", got, want)
	}

	// Full: the next event takes the oldest's slot.
	x.add(evFrom("e4", "192.0.2.4", nil))
	if got := x.lookup([]string{"e1", "e4"}); len(got) != 1 || got[0].EventID != "e4" {
		t.Errorf("after a fourth event: %+v, want e4 only (e1 forgotten)", got)
	}
	// A redelivery takes a slot like any event, its latest context wins.
	x.add(evFrom("e2", "192.0.2.22", &schemas.Geo{Country: "FR"}))
	if got := x.lookup([]string{"e2", "e3", "e4"}); len(got) != 3 || got[0].IP != "192.0.2.22" || got[0].Country != "FR" {
		t.Errorf("after a redelivery: %+v", got)
	}
	if n := x.len(); n != 3 {
		t.Errorf("%d events held after a redelivery, want 3", n)
	}
	// A redelivered event outlives the slot of its first copy.
	y := newEvidenceIndex(3)
	y.add(evFrom("a", "192.0.2.1", nil))
	y.add(evFrom("b", "192.0.2.2", nil))
	y.add(evFrom("a", "192.0.2.3", nil))
	y.add(evFrom("c", "192.0.2.4", nil)) // takes the first copy's slot
	if got := y.lookup([]string{"a", "b", "c"}); len(got) != 3 || got[0].IP != "192.0.2.3" {
		t.Errorf("after the first copy's slot was taken: %+v", got)
	}
	// Evidence naming an event twice gets one entry.
	if got := x.lookup([]string{"e4", "e4"}); len(got) != 1 {
		t.Errorf("an id given twice: %+v", got)
	}

	off := newEvidenceIndex(0)
	off.add(evFrom("e1", "192.0.2.1", nil))
	if off.lookup([]string{"e1"}) != nil || off.len() != 0 {
		t.Error("an index of size 0 kept something")
	}
}

// The ring keeps exactly the newest size events over many wraps.
func TestEvidenceIndexWraps(t *testing.T) {
	const size = 100
	x := newEvidenceIndex(size)
	for i := range 1000 {
		x.add(evFrom(fmt.Sprintf("e%d", i), fmt.Sprintf("10.0.%d.%d", i/256, i%256), nil))
	}
	if len(x.byID) != size || x.len() != size {
		t.Fatalf("map %d, ring %d, want %d", len(x.byID), x.len(), size)
	}
	for i := range 1000 {
		got := x.lookup([]string{fmt.Sprintf("e%d", i)})
		if held := len(got) == 1; held != (i >= 1000-size) {
			t.Fatalf("event %d held %t", i, held)
		}
	}
}

func addressedEvent(t *testing.T, id string, at time.Time, typ schemas.EventType, ip string, geo *schemas.Geo) kafkax.Message {
	t.Helper()
	v, err := json.Marshal(schemas.AuditEvent{ID: id, Time: at, Type: typ, UserID: "u1", IP: ip, Geo: geo})
	if err != nil {
		t.Fatal(err)
	}
	return kafkax.Message{Topic: schemas.TopicAuditEvents, Partition: 1, Key: []byte("u1"), Value: v}
}

// handleAll feeds msgs to s and returns the commands it published.
func handleAll(t *testing.T, s *Service, pub *flakyPublisher, msgs []kafkax.Message) []schemas.RevokeCommand {
	t.Helper()
	ctx := context.Background()
	for i, m := range msgs {
		m.Offset = int64(i)
		if err := settled(ctx, s.handle(ctx, m)); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
	}
	var out []schemas.RevokeCommand
	for _, m := range pub.got {
		if len(m.Value) > schemas.MaxCommandBytes {
			t.Errorf("a command of %d bytes was published, limit %d", len(m.Value), schemas.MaxCommandBytes)
		}
		c, err := schemas.DecodeCommand(m.Value)
		if err != nil {
			t.Fatalf("published command: %v", err)
		}
		out = append(out, c)
	}
	return out
}

// A brute force from several networks: the command says, for each
// evidence event, its address, country and ASN as the event carried them;
// with an index smaller than the evidence, the newest events keep theirs
// and the triggering event always does; without one, none. The command id
// is the same either way.
func TestCommandsCarryEvidenceContext(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	t0 := now.Add(-time.Hour)
	type src struct {
		ip  string
		geo *schemas.Geo
	}
	srcs := []src{
		{"203.0.113.10", &schemas.Geo{Country: "RU", ASN: 12389, Org: "PJSC Rostelecom", Network: schemas.NetworkBusiness}},
		{"2001:db8:10::1", &schemas.Geo{Country: "CN", ASN: 4134, Org: "CHINANET-BACKBONE", Network: schemas.NetworkResidential}},
		{"198.51.100.7", &schemas.Geo{Country: "US", ASN: 16509, Org: "AMAZON-02", Network: schemas.NetworkHosting}},
	}
	var msgs []kafkax.Message
	want := map[string]schemas.EventContext{}
	for i := range 6 {
		typ := schemas.EventLoginFailure
		if i == 5 {
			typ = schemas.EventLoginSuccess
		}
		s := srcs[i%len(srcs)]
		id := fmt.Sprintf("bf-%d", i)
		msgs = append(msgs, addressedEvent(t, id, t0.Add(time.Duration(i)*time.Minute), typ, s.ip, s.geo))
		want[id] = schemas.EventContext{EventID: id, IP: s.ip, Country: s.geo.Country, ASN: s.geo.ASN, ASOrg: s.geo.Org, Network: s.geo.Network}
	}
	// An event without an address between them: no context, and the
	// others keep theirs.
	msgs = append(msgs[:2], append([]kafkax.Message{addressedEvent(t, "bf-noip", t0.Add(90*time.Second), schemas.EventLoginFailure, "", nil)}, msgs[2:]...)...)
	// The user signed in from home earlier: known, so a success from a
	// network new to them completes the brute force.
	home := addressedEvent(t, "home", t0.Add(-2*time.Hour), schemas.EventLoginSuccess, "192.0.2.1",
		&schemas.Geo{Country: "US", ASN: 7922, Org: "COMCAST-7922", Network: schemas.NetworkResidential})
	msgs = append([]kafkax.Message{home}, msgs...)

	run := func(size int) (schemas.RevokeCommand, *Service) {
		pub := &flakyPublisher{}
		s := newTestService(t, func(c *Config) { c.EvidenceContext = size }, pub, now)
		cmds := handleAll(t, s, pub, msgs)
		if len(cmds) != 1 {
			t.Fatalf("size %d: %d commands, want 1", size, len(cmds))
		}
		return cmds[0], s
	}

	full, s := run(DefaultEvidenceContext)
	if len(full.Reason.Evidence) < 6 {
		t.Fatalf("evidence %q: want the six events at least", full.Reason.Evidence)
	}
	trig := full.Reason.Evidence[len(full.Reason.Evidence)-1]
	if trig != "bf-5" {
		t.Fatalf("evidence %q does not end with the success", full.Reason.Evidence)
	}
	var withIP int
	for _, id := range full.Reason.Evidence {
		if _, ok := want[id]; ok {
			withIP++
		}
	}
	if len(full.Reason.Context) != withIP {
		t.Errorf("%d context entries for %d evidence events with an address: %+v", len(full.Reason.Context), withIP, full.Reason.Context)
	}
	for _, c := range full.Reason.Context {
		if c != want[c.EventID] {
			t.Errorf("context %+v, want %+v", c, want[c.EventID])
		}
	}
	count := func(result string) float64 {
		var m dto.Metric
		if err := s.metrics.evidence.WithLabelValues(result).Write(&m); err != nil {
			t.Fatal(err)
		}
		return m.GetCounter().GetValue()
	}
	if f, m := count("found"), count("missing"); int(f) != withIP || int(f+m) != len(full.Reason.Evidence) {
		t.Errorf("evidence_context_total found %v missing %v, want %d of %d", f, m, withIP, len(full.Reason.Evidence))
	}

	small, _ := run(2)
	if small.CommandID != full.CommandID {
		t.Errorf("command id %s with a small index, %s with the default: context is not part of the id", small.CommandID, full.CommandID)
	}
	if n := len(small.Reason.Context); n != 2 || small.Reason.Context[n-1] != want[trig] {
		t.Errorf("index of 2: context %+v, want the newest two, ending with the triggering event", small.Reason.Context)
	}

	none, _ := run(0)
	if none.Reason.Context != nil || none.CommandID != full.CommandID {
		t.Errorf("without an index: context %+v, id %s", none.Reason.Context, none.CommandID)
	}
}

const manyFailures = `
id: many_failures
version: 1
description: A hundred failed logins.
kind: threshold
when: event.type == "login.failure"
group_by: [user_id]
window: 1h
cooldown: 1h
severity: high
action: revoke
target:
  kind: user
threshold:
  count: 100
`

// Context never makes a command too large: with a hundred evidence events
// whose ids and organisations are as long as events may have them, the
// context is cut, oldest first, until the command fits, and the triggering
// event keeps its context.
func TestOversizedContextIsCut(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	rules, err := engine.ParseRules("many.yaml", []byte(manyFailures))
	if err != nil {
		t.Fatal(err)
	}
	pub := &flakyPublisher{}
	priv, err := schemas.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Reader.Brokers = []string{"127.0.0.1:1"}
	s, err := New(cfg, schemas.NewSigner(priv), zerolog.Nop(), WithRules(rules), WithPublisher(pub), WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	org := strings.Repeat("Ω", schemas.MaxIDLen/2)
	var msgs []kafkax.Message
	for i := range 100 {
		id := fmt.Sprintf("%03d-%s", i, strings.Repeat("x", schemas.MaxIDLen-4))
		msgs = append(msgs, addressedEvent(t, id, now.Add(time.Duration(i-200)*time.Second), schemas.EventLoginFailure,
			fmt.Sprintf("2001:db8:%x::%x", i, i), &schemas.Geo{Country: "NL", ASN: 4294967295, Org: org, Network: schemas.NetworkHosting}))
	}
	cmds := handleAll(t, s, pub, msgs)
	if len(cmds) != 1 {
		t.Fatalf("%d commands, want 1", len(cmds))
	}
	c := cmds[0]
	if len(c.Reason.Evidence) != 100 {
		t.Fatalf("%d evidence events, want 100", len(c.Reason.Evidence))
	}
	n := len(c.Reason.Context)
	if n == 0 || n >= 100 {
		t.Fatalf("%d context entries: want the context cut, not dropped", n)
	}
	if last := c.Reason.Context[n-1]; last.EventID != c.Reason.Evidence[99] {
		t.Errorf("the last context entry is %s, want the triggering event's", last.EventID[:8])
	}
	if first := c.Reason.Context[0]; first.EventID != c.Reason.Evidence[100-n] {
		t.Errorf("the context starts at %s, want the newest %d events'", first.EventID[:8], n)
	}
}

// A replayed event (the state rebuilt after a restart or a partition
// move) is remembered like a live one.
func TestReplayedEventsKeepTheirContext(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	s := newTestService(t, nil, &flakyPublisher{}, now)
	m := addressedEvent(t, "old-1", now.Add(-time.Minute), schemas.EventLoginFailure, "192.0.2.77", &schemas.Geo{Country: "SE", ASN: 3301, Network: schemas.NetworkResidential})
	if err := s.rec.replay(m); err != nil {
		t.Fatal(err)
	}
	got := s.evidence.lookup([]string{"old-1"})
	if want := (schemas.EventContext{EventID: "old-1", IP: "192.0.2.77", Country: "SE", ASN: 3301, Network: schemas.NetworkResidential}); len(got) != 1 || got[0] != want {
		t.Errorf("replayed event's context %+v, want %+v", got, want)
	}
}

func TestEvidenceContextConfig(t *testing.T) {
	for _, n := range []int{-1, maxEvidenceContext + 1} {
		cfg := DefaultConfig()
		cfg.Reader.Brokers = []string{"127.0.0.1:1"}
		cfg.EvidenceContext = n
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "evidence-context") {
			t.Errorf("evidence-context %d: %v", n, err)
		}
	}
}

// Partitions are handled concurrently: adds and lookups from several
// goroutines (run with -race).
func TestEvidenceIndexConcurrent(t *testing.T) {
	x := newEvidenceIndex(64)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				id := fmt.Sprintf("g%d-e%d", g, i)
				x.add(evFrom(id, "192.0.2.1", &schemas.Geo{Country: "NL"}))
				if got := x.lookup([]string{id}); len(got) > 1 {
					t.Errorf("lookup of one id: %+v", got)
				}
			}
		}()
	}
	wg.Wait()
	if x.len() != 64 || len(x.byID) != 64 {
		t.Errorf("ring %d, map %d, want 64", x.len(), len(x.byID))
	}
}
