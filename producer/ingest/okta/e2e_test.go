package okta_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/rs/zerolog"

	detapp "github.com/revoked-dev/revoked/detector/app"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/ops"
	"github.com/revoked-dev/revoked/schemas"
)

// Okta Verify pushes rejected three times and then a session started: the
// System Log read by the okta-logs poller makes the detector's default
// rules notify on the pushes (mfa_push_flood), then, on the sign-in (MFA
// fatigue), revoke the user and ask them to verify again; every event
// passes the detector.
func TestRejectedPushesThenSignInRevokesTheUser(t *testing.T) {
	h := newHarness(t, clockwork.NewRealClock())
	priv, err := schemas.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	cfg := detapp.DefaultConfig()
	cfg.Detector.Reader.Brokers = h.k.Brokers
	cfg.Detector.Reader.StartOffset = kafkax.StartFirst
	cfg.Detector.Reader.MaxWait = 10 * time.Millisecond
	cfg.Detector.Reader.CommitInterval = 10 * time.Millisecond
	cfg.Detector.Writer.Brokers = h.k.Brokers
	a, err := detapp.New(cfg, schemas.NewSigner(priv), zerolog.Nop(), ops.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("detector: %v", err)
		}
	}()

	last := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
	var events []map[string]any
	for i := range 3 {
		e := logEvent(t, fmt.Sprintf("push-%d", i), "user.mfa.okta_verify.deny_push", "FAILURE", last.Add(time.Duration(i-5)*time.Minute))
		e["outcome"] = map[string]any{"result": "FAILURE", "reason": "User rejected Okta push verify"}
		events = append(events, e)
	}
	events = append(events, logEvent(t, "session", "user.session.start", "SUCCESS", last))
	h.okta.page("", "tok1", events...)
	h.cfg.Since = last.Add(-time.Hour).Format(time.RFC3339)
	if err := h.run(t.Context(), t, h.w); err != nil {
		t.Fatal(err)
	}

	// The pushes alone notify (mfa_push_flood); the sign-in after them
	// revokes.
	msgs := h.k.WaitRecords(t, schemas.TopicRevokeCommands, 2)
	var cmds []schemas.RevokeCommand
	for _, m := range msgs {
		if err := schemas.NewKeyring(priv.Public().(ed25519.PublicKey)).Verify(header(m, schemas.HeaderKeyID), header(m, schemas.HeaderSignature), m.Value); err != nil {
			t.Fatal(err)
		}
		cmd, err := schemas.DecodeCommand(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	if len(cmds) != 2 || cmds[0].Action != schemas.ActionNotify {
		t.Fatalf("commands %+v", cmds)
	}
	cmd := cmds[1]
	var rules []string
	for _, s := range cmd.Reason.Signals {
		rules = append(rules, s.RuleID)
	}
	if cmd.Target.Kind != schemas.TargetUser || cmd.Target.UserID != "00u1qw1mqitPHM8AJ0g7" || cmd.Action != schemas.ActionRevokeAndReverify ||
		!slices.Contains(rules, "mfa_fatigue") {
		t.Errorf("command %+v, signals %v", cmd, rules)
	}
	h.k.WaitCommitted(t, "revoked-detector", schemas.TopicAuditEvents, map[int]int64{0: 4})
	if dl := h.k.Records(t, schemas.TopicDLQ); len(dl) != 0 {
		t.Errorf("dead letters: %v", dl)
	}
}
