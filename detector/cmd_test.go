package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/revoked-dev/revoked/internal/guard"
	"github.com/revoked-dev/revoked/internal/held"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/kafka/kafkatest"
	"github.com/revoked-dev/revoked/internal/killswitch"
	"github.com/revoked-dev/revoked/internal/testenv"
	"github.com/revoked-dev/revoked/schemas"
)

// freeAddr returns a loopback address with a port that was free a moment
// ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

func TestBacktestCommand(t *testing.T) {
	var out, errs bytes.Buffer
	err := run(context.Background(), []string{"backtest", "--events", "backtest/testdata/events.jsonl",
		"--rules", "backtest/testdata/rules", "--default-rules=false"}, &out, &errs)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("backtest/testdata/commands.golden.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Errorf("stdout:\n%s\nwant:\n%s", out.Bytes(), want)
	}
	wantErr, err := os.ReadFile("backtest/testdata/stderr.golden.txt")
	if err != nil {
		t.Fatal(err)
	}
	if errs.String() != string(wantErr) {
		t.Errorf("stderr:\n%s\nwant:\n%s", errs.String(), wantErr)
	}
	out.Reset()
	errs.Reset()
	if err := run(context.Background(), []string{"backtest", "--events", "backtest/testdata/events.jsonl", "--rules", "backtest/testdata/rules",
		"--default-rules=false", "--guard", "--budget", "1"}, &out, &errs); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errs.String(), "HELD") || strings.Count(out.String(), "\n") != 3 {
		t.Errorf("guarded backtest:\n%s\n%s", out.String(), errs.String())
	}
	for _, args := range [][]string{
		{"backtest"},
		{"backtest", "--events", "missing.jsonl"},
		{"backtest", "--events", "backtest/testdata/events.jsonl", "--default-rules=false"},
		{"backtest", "--events", "backtest/testdata/events.jsonl", "extra"},
		{"backtest", "--events", "backtest/testdata/events.jsonl", "--allowlist", "x.yaml"},
	} {
		if err := run(context.Background(), args, &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
}

// With a budget of one revocation a minute, the second user's command is
// held; "held list" shows it, "held approve" publishes it to the command
// topic, signed as it was, naming the approver, and a second decision is
// refused.
func TestHeldApproveFlow(t *testing.T) {
	c := kafkatest.New(t, schemas.TopicAuditEvents, schemas.TopicRevokeCommands, schemas.TopicDLQ, guard.TopicHeld, guard.TopicHeldDecisions)
	priv, err := schemas.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("REVOKED_SIGNING_KEY", base64.StdEncoding.EncodeToString(priv.Seed()))
	t.Setenv("REVOKED_KAFKA_BROKERS", c.Addr())
	t.Setenv("REVOKED_GUARD_ADMIN_TOKEN", "s3cret")
	opsAddr := freeAddr(t)

	t0 := time.Now().Add(-time.Hour).UTC()
	var msgs []kafkax.Message
	for _, user := range []string{"u1", "u2"} {
		for i := range 6 {
			typ := schemas.EventLoginFailure
			if i == 5 {
				typ = schemas.EventLoginSuccess
			}
			v, _ := json.Marshal(schemas.AuditEvent{ID: fmt.Sprintf("%s-e%d", user, i), Time: t0.Add(time.Duration(i) * time.Second), Type: typ, UserID: user})
			msgs = append(msgs, kafkax.Message{Key: []byte(user), Value: v})
		}
	}
	c.Produce(t, schemas.TopicAuditEvents, msgs...)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr testenv.LogBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"run", "-http.addr", opsAddr, "-log.level", "warn",
			"-kafka.max-wait", "10ms", "-kafka.commit-interval", "10ms", "-guard.budget", "1"}, &bytes.Buffer{}, &stderr)
	}()
	c.WaitRecords(t, guard.TopicHeld, 1)
	c.WaitRecords(t, schemas.TopicRevokeCommands, 1)
	// The kill switch is served on the ops server, behind the token.
	for _, tc := range []struct {
		token string
		want  int
	}{{"", http.StatusUnauthorized}, {"wrong", http.StatusUnauthorized}, {"s3cret", http.StatusOK}} {
		req, _ := http.NewRequest("POST", "http://"+opsAddr+killswitch.Path+"?state=on&by=test", nil)
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != tc.want || (tc.want == http.StatusOK && !strings.Contains(string(body), `"engaged":true`)) {
			t.Errorf("token %q: %d %s", tc.token, resp.StatusCode, body)
		}
	}
	ready, err := http.Get("http://" + opsAddr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(ready.Body)
	_ = ready.Body.Close()
	if ready.StatusCode != http.StatusOK || !strings.Contains(string(body), "held-topic: ok") {
		t.Errorf("/readyz %d:\n%s", ready.StatusCode, body)
	}
	metrics, err := http.Get("http://" + opsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(metrics.Body)
	_ = metrics.Body.Close()
	for _, want := range []string{`revoked_detector_guard_kill_switch{source="runtime"} 1`, `revoked_detector_guard_held_total{budget="global",rule="risk"} 1`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// The held commands are served there too, in the one shape of both
	// components.
	req, _ := http.NewRequest("GET", "http://"+opsAddr+"/api/v1/held", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var served []held.Held
	err = json.NewDecoder(resp.Body).Decode(&served)
	_ = resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || len(served) != 1 || served[0].HeldBy != held.ByDetector ||
		served[0].State != held.Pending || served[0].Reason != guard.ReasonBudgetGlobal {
		t.Errorf("GET /api/v1/held: %d %+v %v", resp.StatusCode, served, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "held for approval") {
		t.Errorf("no alert logged:\n%s", stderr.String())
	}
	heldCmd, err := schemas.DecodeCommand(c.Records(t, guard.TopicHeld)[0].Value)
	if err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	if err := run(context.Background(), []string{"held", "list"}, &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), heldCmd.CommandID) || !strings.Contains(out.String(), "pending") || !strings.Contains(out.String(), guard.ReasonBudgetGlobal) {
		t.Errorf("held list:\n%s", out.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"held", "approve", "--id", heldCmd.CommandID, "--approver", "alice"}, &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	cmds := c.Records(t, schemas.TopicRevokeCommands)
	if len(cmds) != 2 {
		t.Fatalf("%d commands, want 2", len(cmds))
	}
	var approvedBy string
	for _, m := range cmds {
		for _, h := range m.Headers {
			if h.Key == held.HeaderApprovedBy {
				approvedBy = string(h.Value)
			}
		}
	}
	if approvedBy != "alice" {
		t.Errorf("approved-by %q", approvedBy)
	}
	if err := run(context.Background(), []string{"held", "reject", "--id", heldCmd.CommandID, "--approver", "bob"}, &bytes.Buffer{}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "already decided") {
		t.Errorf("second decision: %v", err)
	}
	out.Reset()
	if err := run(context.Background(), []string{"held", "list", "-all"}, &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`detector +approved +` + heldCmd.CommandID + `.* alice\n`).MatchString(out.String()) {
		t.Errorf("held list -all:\n%s", out.String())
	}
	if err := run(context.Background(), []string{"held", "reject", "-id", heldCmd.CommandID, "-note", "x"}, &bytes.Buffer{}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "-reason") {
		t.Errorf("held reject -note: %v, want it refused naming -reason", err)
	}
	if err := run(context.Background(), []string{"held", "approve"}, &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
		t.Error("approve without -id: no error")
	}
}
