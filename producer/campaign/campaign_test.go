package campaign_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/kafka/kafkatest"
	"github.com/revoked-dev/revoked/producer/campaign"
	"github.com/revoked-dev/revoked/producer/revoke"
	"github.com/revoked-dev/revoked/schemas"
)

type fixture struct {
	c      *kafkatest.Cluster
	w      *kafkax.Writer
	signer *schemas.Signer
	dir    string
}

func newFixture(t testing.TB, partitions int) *fixture {
	t.Helper()
	return newFixtureW(t, partitions, 1000)
}

func newFixtureW(t testing.TB, partitions, wbatch int) *fixture {
	t.Helper()
	c := kafkatest.NewWithPartitions(t, map[string]int{schemas.TopicRevokeCommands: partitions})
	wc := c.WriterConfig("")
	wc.BatchSize = wbatch
	w, err := kafkax.NewWriter(wc, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	priv, err := schemas.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{c: c, w: w, signer: schemas.NewSigner(priv), dir: t.TempDir()}
}

func (f *fixture) config(id string) campaign.Config {
	cfg := campaign.DefaultConfig()
	cfg.ID = id
	cfg.StateDir = f.dir
	cfg.Rate = 0
	cfg.Operator = "secops"
	cfg.Reason = "forced re-login after key rotation"
	return cfg
}

func (f *fixture) runner(t testing.TB, cfg campaign.Config, pub revoke.Publisher, opts ...campaign.Option) *campaign.Runner {
	t.Helper()
	rc := revoke.DefaultConfig()
	rc.Operator = cfg.Operator
	rev, err := revoke.New(rc, f.signer, f.w, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	r, err := campaign.New(cfg, rev, pub, zerolog.Nop(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// killAfter forwards writes and cancels the run once n messages went
// through: the operator's Ctrl-C, or a deployment stopping the pod.
type killAfter struct {
	pub    revoke.Publisher
	n      int64
	sent   atomic.Int64
	cancel context.CancelFunc
}

func (k *killAfter) WriteMessages(ctx context.Context, msgs ...kafkax.Message) error {
	err := k.pub.WriteMessages(ctx, msgs...)
	if k.sent.Add(int64(len(msgs))) >= k.n {
		k.cancel()
	}
	return err
}

// records reads every message of topic, partition by partition, with a
// deadline that suits large topics under the race detector on a busy
// machine.
func records(t testing.TB, c *kafkatest.Cluster, topic string) []kafkax.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl := newClient(t, c)
	out, err := cl.ReadTopic(ctx, topic)
	if err != nil {
		t.Fatalf("reading %s: %v", topic, err)
	}
	return out
}

// newClient returns a kafkax.Client of c, closed at cleanup.
func newClient(t testing.TB, c *kafkatest.Cluster) *kafkax.Client {
	t.Helper()
	cl, err := kafkax.NewClient(c.Brokers, kafkax.Security{}, "campaign-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func userIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("user-%06d", i)
	}
	return ids
}

// checkTopic reads revoke.commands back and checks that it holds exactly
// one command per user, each once by command id, plus one report.
func checkTopic(t *testing.T, f *fixture, id string, ids []string, verifyEvery int) schemas.RevokeCommand {
	t.Helper()
	msgs := records(t, f.c, schemas.TopicRevokeCommands)
	ring := schemas.NewKeyring(f.signer.Public())
	byID := make(map[string]int, len(msgs))
	byUser := make(map[string]int, len(msgs))
	var reports []schemas.RevokeCommand
	for i, m := range msgs {
		if i%verifyEvery == 0 {
			var kid, sig string
			for _, h := range m.Headers {
				switch h.Key {
				case schemas.HeaderKeyID:
					kid = string(h.Value)
				case schemas.HeaderSignature:
					sig = string(h.Value)
				}
			}
			if err := ring.Verify(kid, sig, m.Value); err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
		}
		cmd, err := schemas.DecodeCommand(m.Value)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if cmd.Issuer != campaign.IssuerPrefix+id || cmd.Reason.RuleID != campaign.RuleID {
			t.Fatalf("message %d: issuer %q rule %q", i, cmd.Issuer, cmd.Reason.RuleID)
		}
		byID[cmd.CommandID]++
		if cmd.Action == schemas.ActionNotify {
			reports = append(reports, cmd)
			continue
		}
		if cmd.Target.Kind != schemas.TargetUser || string(m.Key) != cmd.Target.UserID || cmd.Action != schemas.ActionRevoke {
			t.Fatalf("message %d: key %q command %+v", i, m.Key, cmd)
		}
		if want := campaign.CommandID(id, cmd.Target); cmd.CommandID != want {
			t.Fatalf("message %d: command id %s, want the deterministic %s", i, cmd.CommandID, want)
		}
		byUser[cmd.Target.UserID]++
	}
	for cid, n := range byID {
		if n != 1 {
			t.Errorf("command %s published %d times", cid, n)
		}
	}
	if len(byUser) != len(ids) {
		t.Errorf("%d users got a command, want %d", len(byUser), len(ids))
	}
	for _, u := range ids {
		if byUser[u] != 1 {
			t.Fatalf("user %s got %d commands", u, byUser[u])
		}
	}
	if len(reports) != 1 {
		t.Fatalf("%d report commands, want 1", len(reports))
	}
	if len(msgs) != len(ids)+1 {
		t.Errorf("topic holds %d messages, want %d", len(msgs), len(ids)+1)
	}
	return reports[0]
}

func testKillAndResume(t *testing.T, n int) {
	f := newFixture(t, 4)
	ids := userIDs(n)
	targets := &campaign.Targets{Kind: schemas.TargetUser, IDs: ids}
	cfg := f.config("rotation-1")

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	kill := &killAfter{pub: f.w, n: int64(n / 2), cancel: cancel}
	readBack := campaign.WithLog(campaign.NewKafkaLog(newClient(t, f.c)), schemas.TopicRevokeCommands)
	start := time.Now()
	rep, err := f.runner(t, cfg, kill, readBack).Run(ctx, targets)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("first run: %v", err)
	}
	if rep.Published < n/2 || rep.Published >= n || rep.Complete {
		t.Fatalf("first run stopped at %d of %d (complete %t)", rep.Published, n, rep.Complete)
	}
	st, err := campaign.LoadState(f.dir, cfg.ID)
	if err != nil || st.Next != rep.Published {
		t.Fatalf("checkpoint %+v, %v; report says %d", st, err, rep.Published)
	}
	// The checkpoint matches what Kafka holds: nothing published unrecorded.
	if got := len(records(t, f.c, schemas.TopicRevokeCommands)); got != st.Next {
		t.Fatalf("topic holds %d commands, checkpoint says %d", got, st.Next)
	}

	// Another input under the same id is refused.
	if _, err := f.runner(t, cfg, f.w).Run(t.Context(), &campaign.Targets{Kind: schemas.TargetUser, IDs: ids[1:]}); !errors.Is(err, campaign.ErrInputChanged) {
		t.Fatalf("other input: %v", err)
	}
	other := cfg
	other.DryRun = true
	if _, err := f.runner(t, other, f.w).Run(t.Context(), nil); !errors.Is(err, campaign.ErrSettingsChanged) {
		t.Fatalf("other settings: %v", err)
	}

	// Resume with the same input.
	rep, err = f.runner(t, cfg, f.w, readBack).Run(t.Context(), targets)
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	t.Logf("%d commands in %s over two runs: %.0f commands/s", n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds())
	if !rep.Complete || rep.Published != n || rep.Targeted != n || rep.Runs != 2 || rep.ReportCommandID == "" {
		t.Fatalf("report %+v", rep)
	}
	report := checkTopic(t, f, cfg.ID, ids, max(1, n/1000))
	if report.CommandID != rep.ReportCommandID {
		t.Errorf("report command %s, state says %s", report.CommandID, rep.ReportCommandID)
	}
	want := fmt.Sprintf("campaign rotation-1: %d user targets, %d commands published", n, n)
	if !strings.HasPrefix(report.Reason.Summary, want) {
		t.Errorf("report summary %q, want it to start %q", report.Reason.Summary, want)
	}

	// A third run finds it complete and publishes nothing.
	rep, err = f.runner(t, cfg, f.w).Run(t.Context(), nil)
	if err != nil || !rep.Complete {
		t.Fatalf("third run: %+v, %v", rep, err)
	}
	if got := len(records(t, f.c, schemas.TopicRevokeCommands)); got != n+1 {
		t.Fatalf("third run published: topic holds %d", got)
	}
}

// TestKillAndResume stops a campaign halfway by cancelling its context and
// resumes it: every user's command is on the topic exactly once.
func TestKillAndResume(t *testing.T) {
	testKillAndResume(t, 10000)
}

// TestKillAndResume100k is the same over 100,000 users. It runs without
// the race detector only (about 10 s; under -race, reading 100,000
// messages back alone outlasts the broker helper's deadlines) and not with
// -short; TestKillAndResume covers the same paths under -race.
func TestKillAndResume100k(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("100,000 users: not with -short or -race")
	}
	testKillAndResume(t, 100000)
}
