package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/kafka/kafkatest"
	"github.com/revoked-dev/revoked/internal/testenv"
	"github.com/revoked-dev/revoked/schemas"
)

// The command wires flags and the environment through to a running
// detector: brute-force events in, a signed command out, a clean stop on
// cancellation.
func TestRunWiring(t *testing.T) {
	c := kafkatest.New(t, schemas.TopicAuditEvents, schemas.TopicRevokeCommands, schemas.TopicDLQ)
	priv, err := schemas.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("REVOKED_SIGNING_KEY", base64.StdEncoding.EncodeToString(priv.Seed()))
	t.Setenv("REVOKED_KAFKA_BROKERS", c.Addr())

	t0 := time.Now().Add(-time.Hour).UTC()
	var msgs []kafkax.Message
	for i := range 6 {
		typ := schemas.EventLoginFailure
		if i == 5 {
			typ = schemas.EventLoginSuccess
		}
		v, _ := json.Marshal(schemas.AuditEvent{ID: fmt.Sprintf("e%d", i), Time: t0.Add(time.Duration(i) * time.Second), Type: typ, UserID: "u1"})
		msgs = append(msgs, kafkax.Message{Key: []byte("u1"), Value: v})
	}
	c.Produce(t, schemas.TopicAuditEvents, msgs...)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr testenv.LogBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"run", "-http.addr", "127.0.0.1:0", "-log.level", "warn",
			"-kafka.max-wait", "10ms", "-kafka.commit-interval", "10ms", "-engine.dry-run"}, &bytes.Buffer{}, &stderr)
	}()
	out := c.WaitRecords(t, schemas.TopicRevokeCommands, 1)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	m := out[0]
	var keyID, sig string
	for _, h := range m.Headers {
		switch h.Key {
		case schemas.HeaderKeyID:
			keyID = string(h.Value)
		case schemas.HeaderSignature:
			sig = string(h.Value)
		}
	}
	if err := schemas.NewKeyring(priv.Public().(ed25519.PublicKey)).Verify(keyID, sig, m.Value); err != nil {
		t.Fatal(err)
	}
	cmd, err := schemas.DecodeCommand(m.Value)
	if err != nil {
		t.Fatal(err)
	}
	if cmd.Mode != schemas.ModeDryRun || cmd.Reason.RuleID != "risk" || len(cmd.Reason.Signals) != 1 || cmd.Reason.Signals[0].RuleID != "brute_force_success" {
		t.Errorf("command %+v", cmd)
	}
}

func TestRunReportsEveryProblem(t *testing.T) {
	t.Setenv("REVOKED_KAFKA_BROKERS", "")
	t.Setenv("REVOKED_SIGNING_KEY", "")
	err := run(context.Background(), []string{"-log.format", "xml", "-engine.command-ttl", "0s"}, &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"kafka.brokers", "log.format", "command_ttl", "signing key is required"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "publish.brokers") {
		t.Errorf("missing brokers reported twice:\n%v", err)
	}
}

func TestRulesCommand(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"rules", "-rules-dir", dir}, &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "brute_force_success") || !strings.Contains(out.String(), "signal 1.00 (session)") ||
		!strings.Contains(out.String(), "revoke_and_reverify at 1.00") {
		t.Errorf("listing:\n%s", out.String())
	}
	if err := run(context.Background(), []string{"rules", "-default-rules=false", "-rules-dir", dir}, &out, &bytes.Buffer{}); err == nil {
		t.Error("no rules: no error")
	}
	if err := run(context.Background(), []string{"frobnicate"}, &out, &bytes.Buffer{}); err == nil {
		t.Error("unknown command: no error")
	}
}

// The HTTP server's settings of earlier versions are refused, naming what
// replaced them.
func TestOpsSettingsRefused(t *testing.T) {
	err := run(context.Background(), []string{"run", "-ops.addr", ":9091"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "-http.addr") {
		t.Errorf("run -ops.addr: %v, want it to name -http.addr", err)
	}
}
