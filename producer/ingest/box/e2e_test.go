package box_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	detapp "github.com/revoked-dev/revoked/detector/app"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/kafka/kafkatest"
	"github.com/revoked-dev/revoked/internal/ops"
	"github.com/revoked-dev/revoked/producer/ingest"
	"github.com/revoked-dev/revoked/producer/ingest/box"
	"github.com/revoked-dev/revoked/producer/ingest/source"
	"github.com/revoked-dev/revoked/schemas"
)

// startDetector runs the detector as the detector command assembles it
// (detector/app, default rule pack, default guard) on the broker, until
// the test ends.
func startDetector(t *testing.T, k *kafkatest.Cluster) *schemas.Keyring {
	t.Helper()
	priv, err := schemas.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	cfg := detapp.DefaultConfig()
	cfg.Detector.Reader.Brokers = k.Brokers
	cfg.Detector.Reader.StartOffset = kafkax.StartFirst
	cfg.Detector.Reader.MaxWait = 10 * time.Millisecond
	cfg.Detector.Reader.CommitInterval = 10 * time.Millisecond
	cfg.Detector.Writer.Brokers = k.Brokers
	cfg.Detector.Engine.Issuer = "detector"
	a, err := detapp.New(cfg, schemas.NewSigner(priv), zerolog.Nop(), ops.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("detector: %v", err)
		}
	})
	return schemas.NewKeyring(priv.Public().(ed25519.PublicKey))
}

// A burst of Box FAILED_LOGIN events and then a LOGIN of the same user,
// read from Box's event stream by the box-events poller into the events
// topic, make the detector's default rules publish a signed command
// revoking that user's tokens and asking them to verify again; also when
// the stream, which Box does not order, delivers the LOGIN before the
// last failures.
func TestFailedLoginBurstThenLoginRevokesTheUser(t *testing.T) {
	for _, c := range []struct {
		name         string
		page0, page1 []int // indexes into the six failures; 6 is the login
	}{
		{"in order", []int{0, 1, 2, 3}, []int{4, 5, 6}},
		{"login read before the last failures", []int{0, 1, 2, 6}, []int{3, 4, 5}},
	} {
		t.Run(c.name, func(t *testing.T) { bruteForceThroughBox(t, c.page0, c.page1) })
	}
}

func bruteForceThroughBox(t *testing.T, page0, page1 []int) {
	k := kafkatest.New(t, schemas.TopicAuditEvents, schemas.TopicRevokeCommands, schemas.TopicDLQ, schemas.TopicUnmapped)
	keys := startDetector(t, k)

	// Box writes times in the enterprise's zone, to the second.
	pst := time.FixedZone("PST", -8*3600)
	last := time.Now().Add(-time.Minute).In(pst).Truncate(time.Second)
	fb := newFakeBox(t)
	var events []map[string]any
	for i := range 6 {
		events = append(events, enterpriseEvent(t, fmt.Sprintf("fail-%d", i), "FAILED_LOGIN", last.Add(time.Duration(i-10)*time.Second), "198.51.100.9"))
	}
	events = append(events, enterpriseEvent(t, "login-ok", "LOGIN", last, "198.51.100.9"))
	pick := func(idx []int) []map[string]any {
		var out []map[string]any
		for _, i := range idx {
			out = append(out, events[i])
		}
		return out
	}
	fb.page("0", "1001", pick(page0)...)
	fb.page("1001", "1002", pick(page1)...)

	w, err := kafkax.NewWriter(k.WriterConfig(""), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	sink, err := source.NewSink(ingest.DefaultConfig(), w, box.FormatEvent, box.StreamSourceName, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := fb.config()
	cfg.Start = "0"
	poll := source.DefaultPollConfig()
	poll.Checkpoint = filepath.Join(t.TempDir(), "box.checkpoint")
	poll.UntilCaughtUp = true
	p, err := box.NewPoller(cfg, poll, sink, zerolog.Nop(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(t.Context(), ""); err != nil {
		t.Fatal(err)
	}

	m := k.WaitRecords(t, schemas.TopicRevokeCommands, 1)[0]
	if err := keys.Verify(header(m, schemas.HeaderKeyID), header(m, schemas.HeaderSignature), m.Value); err != nil {
		t.Fatalf("command signature: %v", err)
	}
	cmd, err := schemas.DecodeCommand(m.Value)
	if err != nil {
		t.Fatal(err)
	}
	// The user is Box's user id, which the event source guide's user
	// object gives as a number.
	if cmd.Target.Kind != schemas.TargetUser || cmd.Target.UserID != "11446498" || cmd.Mode != schemas.ModeEnforce ||
		cmd.Action != schemas.ActionRevokeAndReverify {
		t.Errorf("command %+v", cmd)
	}
	var rules []string
	for _, s := range cmd.Reason.Signals {
		rules = append(rules, s.RuleID)
	}
	if !slices.Contains(rules, "brute_force_success") {
		t.Errorf("signals %v, want brute_force_success", rules)
	}
	if !slices.Contains(cmd.Reason.Evidence, "box:login-ok") || !slices.ContainsFunc(cmd.Reason.Evidence, func(id string) bool { return strings.HasPrefix(id, "box:fail-") }) {
		t.Errorf("evidence %v", cmd.Reason.Evidence)
	}
	// Every event passed the detector: all seven handled, none
	// dead-lettered.
	k.WaitCommitted(t, "revoked-detector", schemas.TopicAuditEvents, map[int]int64{0: 7})
	if dl := k.Records(t, schemas.TopicDLQ); len(dl) != 0 {
		t.Errorf("dead letters: %v", dl)
	}
}
