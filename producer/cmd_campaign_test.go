package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/consumer/audit/backends"
	"github.com/revoked-dev/revoked/internal/kafka/kafkatest"
	"github.com/revoked-dev/revoked/internal/testenv"
	"github.com/revoked-dev/revoked/schemas"
)

func TestCampaignCommand(t *testing.T) {
	c := kafkatest.New(t, schemas.TopicRevokeCommands)
	brokers := "--kafka.brokers=" + c.Addr()
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	if _, err := runCLI(t, "", "keygen", "--out", keys); err != nil {
		t.Fatal(err)
	}
	t.Setenv("REVOKED_SIGNING_KEY_FILE", filepath.Join(keys, signingKeyFile))
	users := filepath.Join(dir, "users.txt")
	var b strings.Builder
	b.WriteString("# everyone\n")
	for i := range 250 {
		fmt.Fprintf(&b, "u%03d\n", i)
	}
	b.WriteString("u000\n")
	if err := os.WriteFile(users, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	common := []string{brokers, "--state-dir", state, "--operator", "secops", "--rate", "0", "--batch", "100"}

	out, err := runCLI(t, "", append([]string{"campaign", "run", "--id", "rollout", "--users-file", users, "--reason", "signing key rotated"}, common...)...)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"250 users, 2 lines skipped", "campaign rollout (complete, enforce)", "targets:   250 user", "published: 250 (0 left) in 1 run(s)", "report:    command cmd_"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	msgs := c.WaitRecords(t, schemas.TopicRevokeCommands, 251)
	ring, err := schemas.LoadPublicKeyFiles(filepath.Join(keys, signingPubFile))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, m := range msgs {
		if err := ring.Verify(header(m, schemas.HeaderKeyID), header(m, schemas.HeaderSignature), m.Value); err != nil {
			t.Fatal(err)
		}
		cmd, err := schemas.DecodeCommand(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		if cmd.Issuer != "campaign:rollout" || seen[cmd.CommandID] {
			t.Fatalf("command %+v (seen %t)", cmd, seen[cmd.CommandID])
		}
		seen[cmd.CommandID] = true
		if cmd.Action == schemas.ActionRevoke && !strings.Contains(cmd.Reason.Summary, "by secops: signing key rotated") {
			t.Fatalf("summary %q", cmd.Reason.Summary)
		}
	}

	// Running it again publishes nothing; status reports it.
	if _, err := runCLI(t, "", append([]string{"campaign", "--id", "rollout"}, common...)...); err != nil {
		t.Fatal(err)
	}
	out, err = runCLI(t, "", "campaign", "status", "--id", "rollout", "--state-dir", state)
	if err != nil || !strings.Contains(out, "published: 250 (0 left)") || !strings.Contains(out, "not consulted") {
		t.Fatalf("status: %v\n%s", err, out)
	}
	if got := len(c.Records(t, schemas.TopicRevokeCommands)); got != 251 {
		t.Fatalf("a second run published: %d messages", got)
	}

	// Another list under the same id is refused; a client campaign is one command.
	if _, err := runCLI(t, "", append([]string{"campaign", "--id", "rollout", "--cohort-file", filepath.Join(keys, signingPubFile)}, common...)...); err == nil {
		t.Fatal("a different input under the same campaign id must be refused")
	}
	if _, err := runCLI(t, "", append([]string{"campaign", "--id", "app", "--client", "mobile-app"}, common...)...); err != nil {
		t.Fatal(err)
	}
	c.WaitRecords(t, schemas.TopicRevokeCommands, 253)

	// Misuse.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"campaign", "--id", "x", "--users-file", users, "--client", "c"}, "give one of"},
		{[]string{"campaign", "--id", "../x", "--users-file", users}, "id:"},
		{[]string{"campaign", "--id", "new", "--from-audit"}, "needs the audit store"},
		{[]string{"campaign", "--id", "never-started"}, "name the targets"},
		{[]string{"campaign", "--id", "y", "--users-file", users, "--action", "notify"}, "action"},
	} {
		_, err := runCLI(t, "", append(tc.args, common...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error about %q", tc.args, err, tc.want)
		}
	}
	if _, err := runCLI(t, "", "campaign", "status", "--id", "never-started", "--state-dir", state); err == nil {
		t.Error("status of an unknown campaign succeeded")
	}
}

// TestCampaignFromAudit lists the users of a campaign from the audit trail
// on a ClickHouse server and reports the campaign's outcomes from it.
func TestCampaignFromAudit(t *testing.T) {
	dsn := testenv.ClickHouseDSN(t)
	ctx := t.Context()
	db := testenv.UniqueName(t, "campaign")
	acfg := backends.Config{Backend: backends.ClickHouse, DSN: dsn, Database: db}
	store, err := backends.Open(ctx, acfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = store.Close()
		testenv.DropClickHouseDatabase(t, dsn, db)
	})
	w, err := audit.NewWriter(ctx, store, "test", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	var rows []schemas.AuditRow
	for i, u := range []string{"carol", "alice", "bob", "alice"} {
		rows = append(rows, schemas.AuditRow{
			RowID: fmt.Sprintf("r%d", i), CommandID: fmt.Sprintf("cmd_%d", i), Step: schemas.StepRevoked, Time: now.Add(-time.Duration(i) * time.Minute),
			Issuer: "detector", Actor: "consumer", TargetKind: schemas.TargetUser, UserID: u, Action: schemas.ActionRevoke, Mode: schemas.ModeEnforce,
			RuleID: "brute_force", RuleVersion: 1, Severity: schemas.SeverityHigh,
		})
	}
	// An old row outside the range.
	rows = append(rows, schemas.AuditRow{
		RowID: "old", CommandID: "cmd_old", Step: schemas.StepRevoked, Time: now.Add(-48 * time.Hour), Issuer: "detector", Actor: "consumer",
		TargetKind: schemas.TargetUser, UserID: "dave", Action: schemas.ActionRevoke, Mode: schemas.ModeEnforce, RuleID: "brute_force", RuleVersion: 1, Severity: schemas.SeverityHigh,
	})
	if err := w.Write(ctx, rows...); err != nil {
		t.Fatal(err)
	}
	_ = w.Close()

	c := kafkatest.New(t, schemas.TopicRevokeCommands)
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	if _, err := runCLI(t, "", "keygen", "--out", keys); err != nil {
		t.Fatal(err)
	}
	t.Setenv("REVOKED_SIGNING_KEY_FILE", filepath.Join(keys, signingKeyFile))
	auditFlags := []string{"--audit.backend", "clickhouse", "--audit.dsn", dsn, "--audit.database", db}
	out, err := runCLI(t, "", append([]string{"campaign", "--kafka.brokers=" + c.Addr(), "--id", "seen", "--from-audit", "--audit-since", "24h",
		"--state-dir", dir, "--operator", "secops", "--rate", "0"}, auditFlags...)...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "3 distinct users") || !strings.Contains(out, "published: 3 (0 left)") || !strings.Contains(out, "0 revoked") {
		t.Fatalf("output:\n%s", out)
	}
	users := map[string]bool{}
	for _, m := range c.WaitRecords(t, schemas.TopicRevokeCommands, 4) {
		users[string(m.Key)] = true
	}
	if !users["alice"] || !users["bob"] || !users["carol"] || users["dave"] {
		t.Fatalf("keys %v", users)
	}
	out, err = runCLI(t, "", append([]string{"campaign", "status", "--id", "seen", "--state-dir", dir}, auditFlags...)...)
	if err != nil || !strings.Contains(out, "3 not yet seen") {
		t.Fatalf("status: %v\n%s", err, out)
	}
}
