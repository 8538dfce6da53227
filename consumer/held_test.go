package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/app"
	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/consumer/audit/backends"
	"github.com/revoked-dev/revoked/consumer/audit/memstore"
	"github.com/revoked-dev/revoked/consumer/idp"
	"github.com/revoked-dev/revoked/consumer/service"
	"github.com/revoked-dev/revoked/deployments/tokenapi/server"
	"github.com/revoked-dev/revoked/deployments/tokenapi/server/servertest"
	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/internal/held"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/kafka/kafkatest"
	"github.com/revoked-dev/revoked/internal/killswitch"
	"github.com/revoked-dev/revoked/internal/ops"
	"github.com/revoked-dev/revoked/internal/testenv"
	"github.com/revoked-dev/revoked/schemas"
)

// TestHeldListAndConfigErrors lists held commands from a chDB audit trail
// and checks what approve and reject require.
func TestHeldListAndConfigErrors(t *testing.T) {
	ctx := context.Background()
	now := time.Now().UTC()
	var rows []schemas.AuditRow
	for i, id := range []string{"cmd_pending", "cmd_rejected"} {
		cmd := schemas.RevokeCommand{
			CommandID: id, IssuedAt: now, ExpiresAt: now.Add(time.Hour), Issuer: "detector",
			Target: schemas.Target{Kind: schemas.TargetUser, UserID: "alice"}, Action: schemas.ActionRevoke, Mode: schemas.ModeEnforce,
			Reason: schemas.Reason{RuleID: "mass_download", Severity: schemas.SeverityHigh, Summary: "s"},
		}
		steps := []schemas.Step{schemas.StepReceived, schemas.StepHeld}
		if id == "cmd_rejected" {
			steps = append(steps, schemas.StepRejected)
		}
		for _, step := range steps {
			r := schemas.RowFromCommand(&cmd)
			r.Step, r.Time, r.Actor = step, now, "consumer-test"
			r.RowID = schemas.AuditRowID(id, step, schemas.TopicRevokeCommands, 0, int64(i))
			r.SourceTopic, r.SourceOffset = schemas.TopicRevokeCommands, int64(i)
			switch step {
			case schemas.StepHeld:
				r.Detail = "over budget: 60 revocations in the last minute (global cap 60)"
			case schemas.StepRejected:
				r.Approver, r.Detail = "bob", "rejected by bob"
			}
			rows = append(rows, r)
		}
	}
	dir, lib := seedChDB(t, rows...)
	base := []string{"-audit.backend=chdb", "-audit.chdb-path=" + dir, "-audit.chdb-lib-path=" + lib}

	var out, errb bytes.Buffer
	if err := run(ctx, append([]string{"held", "list"}, base...), &out, &errb); err != nil {
		t.Fatalf("held list: %v\n%s", err, errb.String())
	}
	if s := out.String(); !strings.Contains(s, "cmd_pending") || !strings.Contains(s, "over budget") || strings.Contains(s, "cmd_rejected") {
		t.Errorf("pending list:\n%s", s)
	}
	out.Reset()
	if err := run(ctx, append([]string{"held", "list", "-all"}, base...), &out, &errb); err != nil {
		t.Fatalf("held list -all: %v\n%s", err, errb.String())
	}
	if s := out.String(); !strings.Contains(s, "cmd_rejected") || !strings.Contains(s, "bob") {
		t.Errorf("full list:\n%s", s)
	}

	err := run(ctx, append([]string{"held", "approve", "-approver="}, base...), &out, &errb)
	for _, want := range []string{"id", "approver", "verify-key-files"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("approve without settings: %v, want a problem with %s", err, want)
		}
	}
	if err := run(ctx, []string{"held", "nuke"}, &out, &errb); err == nil {
		t.Error("unknown held command accepted")
	}
}

// TestGuardRoutes mounts the held-command and kill-switch endpoints beside
// the analysts' API on the ops server: all answer, and only with the token.
func TestGuardRoutes(t *testing.T) {
	srv, err := ops.NewServer(ops.DefaultServerConfig(), zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	store := memstore.New()
	app.MountAPI(srv, store, config.Secret{}, zerolog.Nop())
	kill := killswitch.New("", false)
	app.MountGuards(srv, service.NewApprovals(nil, store, nil).Source(), kill, config.NewSecret("tok"), zerolog.Nop())
	h := srv.Handler()
	do := func(method, path, auth, body string) int {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	for _, tc := range []struct {
		method, path, auth, body string
		want                     int
	}{
		{"GET", "/api/v1/revocations?user_id=a", "", "", 200},
		{"GET", "/api/v1/held", "", "", 401},
		{"GET", "/api/v1/held", "tok", "", 200},
		{"POST", "/api/v1/held/x/approve", "tok", `{"approver":"a"}`, 404}, // x is held nowhere
		{"POST", "/api/v1/held/x/reject", "tok", `{"approver":"a"}`, 404},
		{"GET", "/admin/kill-switch", "", "", 401},
		{"POST", "/admin/kill-switch", "tok", `{"engaged":true,"by":"test"}`, 200},
	} {
		if got := do(tc.method, tc.path, tc.auth, tc.body); got != tc.want {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, got, tc.want)
		}
	}
	if on, _ := kill.Engaged(); !on {
		t.Error("the kill switch endpoint did not engage the switch")
	}
}

// TestHeldApproveFromTheCommandLine approves a held command with
// "consumer held approve": the command is read back from Kafka, verified
// and carried out against the token API, and the trail names the approver;
// approving again changes nothing.
func TestHeldApproveFromTheCommandLine(t *testing.T) {
	lib := testenv.ChDBLibPath(t)
	dir := t.TempDir()
	ctx := context.Background()
	kc := kafkatest.NewWithPartitions(t, map[string]int{schemas.TopicRevokeCommands: 1, schemas.TopicDLQ: 1})
	tokenAPI := servertest.Start(t)
	priv, err := schemas.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	signer := schemas.NewSigner(priv)
	pem, err := schemas.MarshalPublicKeyPEM(signer.Public())
	if err != nil {
		t.Fatal(err)
	}
	keyFile := dir + "/verify.pem"
	if err := os.WriteFile(keyFile, pem, 0o600); err != nil {
		t.Fatal(err)
	}
	raw, _ := tokenAPI.Issue(t, server.IssueRequest{UserID: "u-cli", ClientID: servertest.AppID, Scopes: servertest.AppScopes})
	now := time.Now().UTC()
	cmd := schemas.RevokeCommand{
		CommandID: "cmd_cli_held", IssuedAt: now, ExpiresAt: now.Add(time.Hour), Issuer: "detector",
		Target: schemas.Target{Kind: schemas.TargetUser, UserID: "u-cli"}, Action: schemas.ActionRevoke, Mode: schemas.ModeEnforce,
		Reason: schemas.Reason{RuleID: "mass_download", Severity: schemas.SeverityHigh, Summary: "s"},
	}
	value, err := json.Marshal(cmd)
	if err != nil {
		t.Fatal(err)
	}
	kc.ProduceTo(t, schemas.TopicRevokeCommands, 0, kafkax.Message{Key: []byte("u-cli"), Value: value, Headers: []kafkax.Header{
		{Key: schemas.HeaderKeyID, Value: []byte(signer.KeyID())},
		{Key: schemas.HeaderSignature, Value: []byte(signer.Sign(value))},
	}})

	// The consumer held it at offset 0.
	store, err := backends.Open(ctx, backends.Config{Backend: backends.ChDB, ChDBPath: dir, ChDBLibPath: lib}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	w, err := audit.NewWriter(ctx, store, "consumer", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	var rows []schemas.AuditRow
	for _, step := range []schemas.Step{schemas.StepReceived, schemas.StepHeld} {
		r := schemas.RowFromCommand(&cmd)
		r.Step, r.Time, r.Actor, r.Detail = step, now, "consumer", "kill switch engaged: test"
		r.RowID = schemas.AuditRowID(cmd.CommandID, step, schemas.TopicRevokeCommands, 0, 0)
		r.SourceTopic = schemas.TopicRevokeCommands
		rows = append(rows, r)
	}
	if err := w.Write(ctx, rows...); err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(w.Close(), store.Close()); err != nil {
		t.Fatal(err)
	}

	t.Setenv("REVOKED_IDP_CLIENT_SECRET", servertest.RevokerSecret)
	t.Setenv("REVOKED_IDP_ADMIN_AUTH_TOKEN", servertest.AdminToken)
	args := []string{"held", "approve", "-id", cmd.CommandID, "-approver", "alice",
		"-audit.backend=chdb", "-audit.chdb-path=" + dir, "-audit.chdb-lib-path=" + lib,
		"-kafka.brokers=" + kc.Addr(), "-verify-key-files=" + keyFile,
		"-idp.issuer=" + tokenAPI.Issuer, "-idp.client-id=" + servertest.RevokerID,
		"-idp.admin.preset=reference", "-idp.admin.base-url=" + tokenAPI.URL, "-idp.admin.auth.kind=bearer"}
	for range 2 {
		var out, errb bytes.Buffer
		if err := run(ctx, args, &out, &errb); err != nil {
			t.Fatalf("held approve: %v\n%s", err, errb.String())
		}
		if !strings.Contains(out.String(), "approved") || !strings.Contains(out.String(), "alice") {
			t.Fatalf("output:\n%s", out.String())
		}
	}
	client, err := idp.New(idp.Config{Issuer: tokenAPI.Issuer, ClientID: servertest.RevokerID,
		ClientSecret: config.NewSecret(servertest.RevokerSecret), AuthMethod: idp.AuthClientSecretBasic}, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if in, err := client.Introspect(ctx, raw); err != nil || in.Active {
		t.Fatalf("token after approval: active=%v, %v", in.Active, err)
	}
	store, err = backends.Open(ctx, backends.Config{Backend: backends.ChDB, ChDBPath: dir, ChDBLibPath: lib}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	got, err := store.CommandRows(ctx, cmd.CommandID)
	if err != nil {
		t.Fatal(err)
	}
	revoked := 0
	for _, r := range got {
		if r.Step.Revoked() {
			revoked++
			if r.Approver != "alice" || r.Chain != "consumer-cli" {
				t.Errorf("revoked row: approver %q chain %q", r.Approver, r.Chain)
			}
		}
	}
	if revoked != 1 {
		t.Fatalf("%d revoked rows after two approvals, want 1", revoked)
	}
}

// TestAPIToken: with a token the analysts' API answers only to it, and an
// address beyond loopback without one is a configuration error.
func TestAPIToken(t *testing.T) {
	srv, err := ops.NewServer(ops.DefaultServerConfig(), zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	app.MountAPI(srv, memstore.New(), config.NewSecret("analyst-token"), zerolog.Nop())
	for auth, want := range map[string]int{"": 401, "wrong": 401, "analyst-token": 200} {
		req := httptest.NewRequest("GET", "/api/v1/revocations?user_id=a", nil)
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("token %q: %d, want %d", auth, rec.Code, want)
		}
	}
	for addr, ok := range map[string]bool{"127.0.0.1:8080": true, "[::1]:8080": true, "localhost:8080": true, "0.0.0.0:8080": false, ":8080": false, "10.1.2.3:8080": false} {
		cfg := defaultRunConfig()
		cfg.VerifyKeyFiles = []string{"k.pub"}
		cfg.Ops.Addr = addr
		err := cfg.Validate()
		if got := err == nil || !strings.Contains(err.Error(), "REVOKED_API_TOKEN"); got != ok {
			t.Errorf("%s without a token: %v", addr, err)
		}
		cfg.APIToken = config.NewSecret("t")
		if err := cfg.Validate(); err != nil && strings.Contains(err.Error(), "REVOKED_API_TOKEN") {
			t.Errorf("%s with a token: %v", addr, err)
		}
	}
}

// TestHeldOneWorkflow lists and decides the commands both components
// held in one place: the consumer's held-command API shows its own held
// row and the detector's held message side by side, each naming who held
// it, and approving the detector's republishes it, signed as it was, to
// the command topic the consumer reads.
func TestHeldOneWorkflow(t *testing.T) {
	c := kafkatest.New(t, schemas.TopicRevokeCommands, held.TopicHeld, held.TopicHeldDecisions)
	priv, err := schemas.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	signer := schemas.NewSigner(priv)
	now := time.Now().UTC().Truncate(time.Second)
	newCommand := func(id, user string) schemas.RevokeCommand {
		return schemas.RevokeCommand{
			CommandID: id, IssuedAt: now, ExpiresAt: now.Add(time.Hour), Issuer: "detector",
			Target: schemas.Target{Kind: schemas.TargetUser, UserID: user}, Action: schemas.ActionRevoke, Mode: schemas.ModeEnforce,
			Reason: schemas.Reason{RuleID: "mass_download", Severity: schemas.SeverityHigh, Summary: "s"},
		}
	}
	// The detector held cmd_det over its budget.
	det := newCommand("cmd_det", "dana")
	v, err := json.Marshal(det)
	if err != nil {
		t.Fatal(err)
	}
	signed := kafkax.Message{Key: []byte(det.Target.Key()), Value: v, Headers: []kafkax.Header{
		{Key: schemas.HeaderSchema, Value: []byte(schemas.SchemaRevokeCommandV1)},
		{Key: schemas.HeaderKeyID, Value: []byte(signer.KeyID())},
		{Key: schemas.HeaderSignature, Value: []byte(signer.Sign(v))},
	}}
	c.Produce(t, held.TopicHeld, held.HeldMessage(signed, "budget_global", now.Add(-time.Minute)))
	// The consumer held cmd_con under its kill switch.
	con := newCommand("cmd_con", "carl")
	store := memstore.New()
	w, err := audit.NewWriter(context.Background(), store, "consumer-test", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []schemas.Step{schemas.StepReceived, schemas.StepHeld} {
		r := schemas.RowFromCommand(&con)
		r.Step, r.Time, r.Actor = step, now, "consumer-test"
		r.RowID = schemas.AuditRowID(con.CommandID, step, schemas.TopicRevokeCommands, 0, 7)
		r.SourceTopic, r.SourceOffset = schemas.TopicRevokeCommands, 7
		if step == schemas.StepHeld {
			r.Detail = "kill switch engaged: runtime by alice"
		}
		if err := w.Write(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	cfg := service.DefaultConfig()
	cfg.Reader.Brokers = []string{c.Addr()}
	src, closeSources, err := service.HeldSources(cfg, service.NewApprovals(nil, store, nil), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := closeSources(); err != nil {
			t.Error(err)
		}
	}()
	srv := httptest.NewServer(held.NewAPI(src, config.NewSecret("tok"), zerolog.Nop()).Handler())
	defer srv.Close()
	call := func(method, path, body string, into any) int {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer tok")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if into != nil {
			if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
				t.Fatal(err)
			}
		}
		return resp.StatusCode
	}

	var list []held.Held
	if code := call("GET", "/api/v1/held", "", &list); code != http.StatusOK {
		t.Fatalf("list: %d", code)
	}
	got := map[string]held.Held{}
	for _, h := range list {
		got[h.CommandID] = h
	}
	if h := got["cmd_con"]; len(list) != 2 || h.HeldBy != held.ByConsumer || h.State != held.Pending || h.Target != "carl" || !strings.Contains(h.Reason, "kill switch") {
		t.Errorf("consumer's held command: %+v (of %d)", h, len(list))
	}
	if h := got["cmd_det"]; h.HeldBy != held.ByDetector || h.State != held.Pending || h.Target != "dana" || h.Reason != "budget_global" {
		t.Errorf("detector's held command: %+v", h)
	}
	// Newest first: the consumer held its command after the detector.
	if len(list) == 2 && list[0].CommandID != "cmd_con" {
		t.Errorf("order: %s, %s", list[0].CommandID, list[1].CommandID)
	}

	var decided held.Held
	if code := call("POST", "/api/v1/held/cmd_det/approve", `{"approver":"alice","reason":"checked with dana"}`, &decided); code != http.StatusOK ||
		decided.State != held.Approved || decided.Decision == nil || decided.Decision.By != "alice" {
		t.Fatalf("approving the detector's command: %d %+v", code, decided)
	}
	cmds := c.Records(t, schemas.TopicRevokeCommands)
	if len(cmds) != 1 || string(cmds[0].Value) != string(v) {
		t.Fatalf("command topic holds %d messages, want the approved command as signed", len(cmds))
	}
	if code := call("POST", "/api/v1/held/cmd_det/reject", `{"approver":"bob"}`, nil); code != http.StatusConflict {
		t.Errorf("rejecting an approved command: %d, want 409", code)
	}
	if code := call("POST", "/api/v1/held/cmd_none/approve", `{"approver":"bob"}`, nil); code != http.StatusNotFound {
		t.Errorf("approving a command nobody held: %d, want 404", code)
	}
	list = nil
	if code := call("GET", "/api/v1/held", "", &list); code != http.StatusOK || len(list) != 1 || list[0].CommandID != "cmd_con" {
		t.Errorf("pending after the approval: %d %+v", code, list)
	}
}
