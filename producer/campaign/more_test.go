package campaign_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/consumer/audit/memstore"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/producer/campaign"
	"github.com/revoked-dev/revoked/schemas"
)

// TestCrashBeforeCheckpoint models a process killed after Kafka
// acknowledged a batch but before its checkpoint was written. Reading the
// topic back from the checkpoint's marks, the next run skips that batch's
// commands: nobody gets a second command and nobody is skipped. Without
// the read-back, the batch is published again as the very same commands
// (same ids), which the consumer executes once.
func TestCrashBeforeCheckpoint(t *testing.T) {
	for _, readBack := range []bool{true, false} {
		t.Run(fmt.Sprintf("read-back=%t", readBack), func(t *testing.T) {
			f := newFixture(t, 2)
			var opts []campaign.Option
			if readBack {
				opts = append(opts, campaign.WithLog(campaign.NewKafkaLog(newClient(t, f.c)), schemas.TopicRevokeCommands))
			}
			// Another producer's command lands between the batches.
			f.c.Produce(t, schemas.TopicRevokeCommands, kafkax.Message{Key: []byte("someone"), Value: []byte(`{"command_id":"cmd_x","issuer":"detector"}`)})
			testCrashBeforeCheckpoint(t, f, readBack, opts)
		})
	}
}

func testCrashBeforeCheckpoint(t *testing.T, f *fixture, readBack bool, opts []campaign.Option) {
	ids := userIDs(3000)
	cfg := f.config("crash")
	cfg.BatchSize = 500
	targets := &campaign.Targets{Kind: schemas.TargetUser, IDs: ids}

	ctx, cancel := context.WithCancel(t.Context())
	var saved []byte
	kill := &killAfter{pub: f.w, n: 1500, cancel: func() {
		// Keep the checkpoint as it was before this batch.
		if saved == nil {
			saved, _ = os.ReadFile(filepath.Join(f.dir, "crash.json"))
		}
		cancel()
	}}
	if _, err := f.runner(t, cfg, kill, opts...).Run(ctx, targets); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.dir, "crash.json"), saved, 0o600); err != nil {
		t.Fatal(err)
	}
	st, _ := campaign.LoadState(f.dir, "crash")
	if st.Next != 1000 {
		t.Fatalf("rolled-back checkpoint at %d, want 1000", st.Next)
	}
	rep, err := f.runner(t, cfg, f.w, opts...).Run(t.Context(), nil)
	if err != nil || !rep.Complete {
		t.Fatalf("%+v, %v", rep, err)
	}
	msgs := records(t, f.c, schemas.TopicRevokeCommands)
	byUser := map[string][]string{}
	for _, m := range msgs {
		if string(m.Key) == "someone" {
			continue
		}
		cmd, err := schemas.DecodeCommand(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		if cmd.Action != schemas.ActionNotify {
			byUser[cmd.Target.UserID] = append(byUser[cmd.Target.UserID], cmd.CommandID)
		}
	}
	repeated := 0
	for _, u := range ids {
		got := byUser[u]
		if len(got) == 0 {
			t.Fatalf("user %s skipped", u)
		}
		for _, id := range got[1:] {
			if id != got[0] {
				t.Fatalf("user %s got different commands %v", u, got)
			}
		}
		repeated += len(got) - 1
	}
	want := 500
	if readBack {
		want = 0
	}
	if repeated != want {
		t.Errorf("%d commands published twice, want %d", repeated, want)
	}
}

// TestClientCampaign revokes one client with one client-wide command.
func TestClientCampaign(t *testing.T) {
	f := newFixture(t, 1)
	cfg := f.config("client-rollout")
	cfg.IncludeDownscoped = true
	rep, err := f.runner(t, cfg, f.w).Run(t.Context(), &campaign.Targets{Kind: schemas.TargetClient, IDs: []string{"mobile-app"}})
	if err != nil || !rep.Complete || rep.Published != 1 {
		t.Fatalf("%+v, %v", rep, err)
	}
	msgs := records(t, f.c, schemas.TopicRevokeCommands)
	if len(msgs) != 2 {
		t.Fatalf("%d messages, want the command and the report", len(msgs))
	}
	cmd, err := schemas.DecodeCommand(msgs[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	if cmd.Target.Kind != schemas.TargetClient || cmd.Target.ClientID != "mobile-app" || !cmd.Target.IncludeDownscoped || string(msgs[0].Key) != "mobile-app" {
		t.Fatalf("command %+v", cmd)
	}
	report, err := schemas.DecodeCommand(msgs[1].Value)
	if err != nil || report.Action != schemas.ActionNotify || report.Target.ClientID != "mobile-app" || report.CommandID == cmd.CommandID {
		t.Fatalf("report %+v, %v", report, err)
	}
}

// TestPaced checks that a campaign keeps to its rate.
func TestPaced(t *testing.T) {
	f := newFixture(t, 1)
	cfg := f.config("paced")
	cfg.Rate = 400
	clk := clockwork.NewFakeClock()
	start := clk.Now()
	type result struct {
		rep campaign.Report
		err error
	}
	done := make(chan result, 1)
	r := f.runner(t, cfg, f.w, campaign.WithClock(clk))
	go func() {
		rep, err := r.Run(t.Context(), &campaign.Targets{Kind: schemas.TargetUser, IDs: userIDs(200)})
		done <- result{rep, err}
	}()
	// Move the clock 10 ms whenever the campaign waits on it, until it
	// is done: the clock then says how long the pacing made it take.
	var res result
	for running := true; running; {
		wctx, cancel := context.WithTimeout(t.Context(), 10*time.Second) // a hang fails instead of stalling the run
		waiting := make(chan error, 1)
		go func() { waiting <- clk.BlockUntilContext(wctx, 1) }()
		select {
		case res = <-done:
			running = false
		case err := <-waiting:
			if err != nil {
				t.Fatalf("the campaign neither waits nor ends: %v", err)
			}
			clk.Advance(10 * time.Millisecond)
		}
		cancel()
	}
	rep, err := res.rep, res.err
	if err != nil || rep.Published != 200 {
		t.Fatalf("%+v, %v", rep, err)
	}
	// 200 commands at 400/s, the bucket starting empty: half a second.
	if el := clk.Since(start); el < 450*time.Millisecond {
		t.Fatalf("200 commands at 400/s took %s", el)
	}
}

// TestReportFromAudit counts a campaign's outcomes from an audit trail.
func TestReportFromAudit(t *testing.T) {
	ctx := t.Context()
	store := memstore.New()
	w, err := audit.NewWriter(ctx, store, "test", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })

	f := newFixture(t, 1)
	cfg := f.config("audited")
	ids := userIDs(10)
	r := f.runner(t, cfg, f.w, campaign.WithAudit(store))
	// The campaign runs before the consumer audited anything; the
	// outcomes arrive afterwards and Status counts them.
	rep, err := r.Run(ctx, &campaign.Targets{Kind: schemas.TargetUser, IDs: ids})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Audit == nil || rep.Audit.Seen != 0 {
		t.Fatalf("audit before any row: %+v (%v)", rep.Audit, rep.AuditErr)
	}
	cmds := map[string]schemas.RevokeCommand{}
	for _, m := range records(t, f.c, schemas.TopicRevokeCommands) {
		c, err := schemas.DecodeCommand(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		cmds[c.Target.UserID] = c
	}
	offset := int64(0)
	row := func(user string, step schemas.Step) schemas.AuditRow {
		c := cmds[user]
		r := schemas.RowFromCommand(&c)
		offset++
		r.RowID = schemas.AuditRowID(c.CommandID, step, schemas.TopicRevokeCommands, 0, offset)
		r.Step, r.Time, r.Actor = step, time.Now().UTC(), "consumer"
		return r
	}
	var rows []schemas.AuditRow
	for i, u := range ids {
		rows = append(rows, row(u, schemas.StepReceived))
		switch {
		case i < 5: // revoked, three confirmed, one of them replayed later
			step := schemas.StepConfirmed
			if i >= 3 {
				step = schemas.StepUnconfirmed
			}
			rows = append(rows, row(u, step))
			if i == 0 {
				rows = append(rows, row(u, schemas.StepRejected))
			}
		case i == 5: // failed, then revoked on retry (an older trail's step)
			rows = append(rows, row(u, schemas.StepFailed), row(u, schemas.StepRevoked))
		case i == 6: // the token API's proof showed a token still active
			rows = append(rows, row(u, schemas.StepNotEffective))
		case i == 7:
			rows = append(rows, row(u, schemas.StepHeld))
		case i == 8: // received only
		case i == 9:
			rows = rows[:len(rows)-1] // not seen at all
		}
	}
	// Rows of another campaign and of a detection do not count.
	other := row(ids[0], schemas.StepRevoked)
	other.Issuer, other.CommandID = "campaign:other", "cmd_other"
	rows = append(rows, other)
	if err := w.Write(ctx, rows...); err != nil {
		t.Fatal(err)
	}
	rep, err = campaign.Status(ctx, f.dir, cfg.ID, store)
	if err != nil {
		t.Fatal(err)
	}
	want := campaign.AuditCounts{Seen: 9, Revoked: 6, Confirmed: 3, Unconfirmed: 3, Failed: 1, NotEffective: 1, Held: 1, Pending: 1}
	if rep.Audit == nil || *rep.Audit != want {
		t.Fatalf("counts %+v (%v), want %+v", rep.Audit, rep.AuditErr, want)
	}
	s := rep.String()
	for _, part := range []string{"complete", "10 user", "published: 10", "6 revoked (3 confirmed, 3 unconfirmed), 1 failed (1 not effective), 1 held, 0 rejected, 0 dry run, 1 pending, 1 not yet seen"} {
		if !strings.Contains(s, part) {
			t.Errorf("report lacks %q:\n%s", part, s)
		}
	}

	// The same trail lists the users for a campaign over "everyone seen".
	got, err := campaign.UsersFromAudit(ctx, store, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got.IDs) != fmt.Sprint(ids[:9]) {
		t.Fatalf("users from audit %v", got.IDs)
	}
}

func TestReadIDs(t *testing.T) {
	got, err := campaign.ReadIDs(strings.NewReader("# cohort A\nalice\n\n bob \nalice\r\ncarol\n"), schemas.TargetUser)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got.IDs) != "[alice bob carol]" || got.Skipped != 3 {
		t.Fatalf("%+v", got)
	}
	if _, err := campaign.ReadIDs(strings.NewReader("ok\n"+strings.Repeat("x", 300)+"\n"), schemas.TargetUser); !errors.Is(err, campaign.ErrTargets) || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("long id: %v", err)
	}
}

// BenchmarkUnthrottled measures a campaign's rate against the in-process
// broker with no rate limit: go test -run - -bench Unthrottled.
func BenchmarkUnthrottled(b *testing.B) {
	const n = 50000
	ids := userIDs(n)
	for i := 0; b.Loop(); i++ {
		f := newFixture(b, 4)
		cfg := f.config(fmt.Sprintf("bench-%d", i))
		start := time.Now()
		if _, err := f.runner(b, cfg, f.w).Run(context.Background(), &campaign.Targets{Kind: schemas.TargetUser, IDs: ids}); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(n/time.Since(start).Seconds(), "commands/s")
	}
}
