package service

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/internal/allowlist"
	"github.com/revoked-dev/revoked/internal/guard"
	"github.com/revoked-dev/revoked/internal/held"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/testenv"
	"github.com/revoked-dev/revoked/schemas"
)

func bruteForceUser(t *testing.T, user string, t0 time.Time, offset int64) []kafkax.Message {
	t.Helper()
	var out []kafkax.Message
	for i := range 6 {
		typ := schemas.EventLoginFailure
		if i == 5 {
			typ = schemas.EventLoginSuccess
		}
		ev := schemas.AuditEvent{ID: fmt.Sprintf("%s-e%d", user, i), Time: t0.Add(time.Duration(i) * time.Second), Type: typ, UserID: user, IP: "203.0.113.9"}
		v, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, kafkax.Message{Topic: schemas.TopicAuditEvents, Partition: 0, Offset: offset + int64(i), Key: []byte(user), Value: v})
	}
	return out
}

// With a budget of two revocations a minute, the third user's command is
// held: published signed to the held topic, not to the command topic. An
// allowlisted user's command goes out as dry_run, and nothing is enforced
// while the kill switch is on.
func TestGuardedService(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	cfg := DefaultConfig()
	cfg.Reader.Brokers = []string{"127.0.0.1:1"}
	allow, err := allowlist.Parse([]byte("entries:\n  - user_ids: [vip]\n    rules: [risk]\n"))
	if err != nil {
		t.Fatal(err)
	}
	gcfg := guard.DefaultConfig()
	gcfg.Budget = 2
	g, err := guard.New(gcfg, guard.WithClock(func() time.Time { return now }), guard.WithAllowlist(allow))
	if err != nil {
		t.Fatal(err)
	}
	priv, err := schemas.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	pub, heldPub := &flakyPublisher{}, &flakyPublisher{}
	var logs testenv.LogBuffer
	s, err := New(cfg, schemas.NewSigner(priv), zerolog.New(&logs), WithPublisher(pub), WithGuard(g, heldPub),
		WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var offset int64
	feed := func(user string) {
		t.Helper()
		for _, m := range bruteForceUser(t, user, now.Add(-time.Hour), offset) {
			if err := settled(ctx, s.handle(ctx, m)); err != nil {
				t.Fatal(err)
			}
		}
		offset += 6
	}
	for _, u := range []string{"u1", "vip", "u2", "u3"} {
		feed(u)
	}
	g.KillSwitch().Set(true, "test")
	feed("u4")

	modes := map[string]schemas.Mode{}
	for _, m := range pub.got {
		c, err := schemas.DecodeCommand(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		modes[c.Target.UserID] = c.Mode
	}
	want := map[string]schemas.Mode{"u1": schemas.ModeEnforce, "vip": schemas.ModeDryRun, "u2": schemas.ModeEnforce, "u4": schemas.ModeDryRun}
	if fmt.Sprint(modes) != fmt.Sprint(want) {
		t.Errorf("published %v, want %v", modes, want)
	}
	if len(heldPub.got) != 1 {
		t.Fatalf("held %d commands, want 1", len(heldPub.got))
	}
	h := heldPub.got[0]
	c, err := schemas.DecodeCommand(h.Value)
	if err != nil {
		t.Fatal(err)
	}
	if c.Target.UserID != "u3" || c.Mode != schemas.ModeEnforce {
		t.Errorf("held %+v", c)
	}
	var keyID, sig, reason string
	for _, hd := range h.Headers {
		switch hd.Key {
		case schemas.HeaderKeyID:
			keyID = string(hd.Value)
		case schemas.HeaderSignature:
			sig = string(hd.Value)
		case held.HeaderHeldReason:
			reason = string(hd.Value)
		}
	}
	if err := schemas.NewKeyring(priv.Public().(ed25519.PublicKey)).Verify(keyID, sig, h.Value); err != nil {
		t.Errorf("held command does not verify: %v", err)
	}
	if reason != guard.ReasonBudgetGlobal {
		t.Errorf("held reason %q", reason)
	}
	if out := logs.String(); !strings.Contains(out, `"level":"error"`) || !strings.Contains(out, "held for approval") {
		t.Errorf("no alert in the logs:\n%s", logs.String())
	}
}
