package service_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/consumer/audit/memstore"
	"github.com/revoked-dev/revoked/consumer/service"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/producer/campaign"
	"github.com/revoked-dev/revoked/producer/revoke"
	"github.com/revoked-dev/revoked/schemas"
)

// TestCampaignAtScale runs an "everyone off" campaign over
// $REVOKED_CAMPAIGN_USERS users (skipped when unset) end to end: the
// campaign publishes one signed command per user, the consumer (memstore
// trail, 8 key lanes over 4 partitions) revokes each user through the
// reference token API's subject-wide endpoint, and the trail must hold
// every user's received and outcome rows and the campaign's report. It
// logs how long publishing and revoking took.
func TestCampaignAtScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("REVOKED_CAMPAIGN_USERS"))
	if n <= 0 {
		t.Skip("set REVOKED_CAMPAIGN_USERS to run a campaign at scale")
	}
	store := memstore.New()
	f := newFixture(t, store)
	// The store holds the trail; a second copy of every row would only
	// add its appends and its garbage-collection work to the run.
	f.rows = nil
	var outcomes, notified atomic.Int64
	done := make(chan struct{})
	cfg := f.config("g-campaign")
	cfg.Reader.QueueSize = 1024
	cfg.Reader.MaxWait = kafkax.DefaultReaderConfig().MaxWait
	start := time.Now()
	_, stop := f.run(t, cfg, service.Deps{Observe: func(r schemas.AuditRow) {
		switch {
		case r.Step.Revoked():
			if outcomes.Add(1) == int64(n) && notified.Load() == 1 {
				close(done)
			}
		case r.Step == schemas.StepNotified:
			if notified.Add(1) == 1 && outcomes.Load() == int64(n) {
				close(done)
			}
		}
	}})

	wc := f.kafka.WriterConfig("")
	w, err := kafkax.NewWriter(wc, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	rev, err := revoke.New(revoke.Config{Topic: schemas.TopicRevokeCommands, TTL: time.Hour, Operator: "secops"}, f.signer, w, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ccfg := campaign.DefaultConfig()
	ccfg.ID, ccfg.StateDir, ccfg.Rate, ccfg.Operator, ccfg.Reason = "everyone-off", t.TempDir(), 0, "secops", "everyone off"
	runner, err := campaign.New(ccfg, rev, w, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = "user-" + strconv.Itoa(i)
	}
	rep, err := runner.Run(context.Background(), &campaign.Targets{Kind: schemas.TargetUser, IDs: ids})
	if err != nil {
		t.Fatal(err)
	}
	published := time.Since(start)
	select {
	case <-done:
	case <-time.After(30 * time.Minute):
		t.Fatalf("after 30m: %d of %d outcomes, %d reports", outcomes.Load(), n, notified.Load())
	}
	elapsed := time.Since(start)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d users: published in %s, revoked and audited in %s (%.0f users/s)", n, published.Round(time.Millisecond), elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds())

	// Every user's rows are in the trail, once each; the report is right.
	rows, err := store.History(context.Background(), audit.Query{})
	if err != nil {
		t.Fatal(err)
	}
	perUser := make(map[string]int, n)
	var report *schemas.AuditRow
	for i := range rows {
		r := &rows[i]
		switch {
		case r.Step == schemas.StepNotified:
			report = r
		case r.Step == schemas.StepReceived || r.Step.Revoked():
			perUser[r.UserID]++
		}
	}
	for _, id := range ids {
		if perUser[id] != 2 {
			t.Fatalf("user %s has %d received and outcome rows, want 2", id, perUser[id])
		}
	}
	if report == nil || report.CommandID != rep.ReportCommandID || !strings.Contains(report.Summary, strconv.Itoa(n)+" user targets") {
		t.Fatalf("report row %+v, want the report command %s", report, rep.ReportCommandID)
	}
}
