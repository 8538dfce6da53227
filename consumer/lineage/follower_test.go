package lineage

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"

	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/kafka/kafkatest"
	"github.com/revoked-dev/revoked/internal/testenv"
	"github.com/revoked-dev/revoked/schemas"
)

func exchanged(t *testing.T, id, user, token, parent string) kafkax.Message {
	t.Helper()
	b, err := json.Marshal(schemas.AuditEvent{
		ID: id, Time: time.Now().UTC(), Type: schemas.EventTokenExchanged,
		UserID: user, TokenID: token, ParentTokenID: parent, ClientID: "app",
	})
	if err != nil {
		t.Fatal(err)
	}
	return kafkax.Message{Key: []byte(user), Value: b}
}

// TestFollowerFillsIndex produces token.exchanged events (some before the
// follower starts, some after) beside other events and garbage, and sees
// the index learn the whole family.
func TestFollowerFillsIndex(t *testing.T) {
	c := kafkatest.NewWithPartitions(t, map[string]int{schemas.TopicAuditEvents: 3})
	used, err := json.Marshal(schemas.AuditEvent{ID: "e-used", Time: time.Now().UTC(), Type: schemas.EventTokenUsed, UserID: "u1", TokenID: "tok-root"})
	if err != nil {
		t.Fatal(err)
	}
	c.ProduceTo(t, schemas.TopicAuditEvents, 0, exchanged(t, "e1", "u1", "tok-c1", "tok-root"))
	c.ProduceTo(t, schemas.TopicAuditEvents, 1, exchanged(t, "e2", "u1", "tok-g1", "tok-c1"),
		kafkax.Message{Value: []byte("{not json")}, kafkax.Message{Value: used})

	x := NewIndex(time.Hour, 100, nil)
	cfg := DefaultConfig()
	f, err := NewFollower([]string{c.Addr()}, c.ReaderConfig(schemas.TopicAuditEvents, "").Security, cfg, x, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	// The follower tells nothing of what it read: its index and counts
	// are polled.
	testenv.Eventually(t, "the events produced before the start", func() bool { return x.Len() == 2 && f.Stats().Read == 4 })
	c.ProduceTo(t, schemas.TopicAuditEvents, 2, exchanged(t, "e3", "u1", "tok-gg1", "tok-g1"))
	c.ProduceTo(t, schemas.TopicAuditEvents, 0, exchanged(t, "e4", "u2", "tok-x1", "tok-x"))
	testenv.Eventually(t, "the events produced after the start", func() bool { return x.Len() == 4 && f.Stats().Read == 6 })

	got := x.Descendants("tok-root")
	slices.Sort(got)
	if want := []string{"tok-c1", "tok-g1", "tok-gg1"}; !slices.Equal(got, want) {
		t.Fatalf("Descendants = %v, want %v", got, want)
	}
	if got := x.UserTokens("u2"); !slices.Equal(got, []string{"tok-x1"}) {
		t.Fatalf("UserTokens(u2) = %v", got)
	}
	if e, ok := x.Lookup("tok-g1"); !ok || e.ParentTokenID != "tok-c1" || e.UserID != "u1" {
		t.Fatalf("Lookup(tok-g1) = %+v, %v", e, ok)
	}
	st := f.Stats()
	if st.Read != 6 || st.Learned != 4 || st.Malformed != 1 {
		t.Fatalf("stats = %+v", st)
	}
}

// TestFollowerStartsAtRetention skips events older than the retention: the
// start offset is looked up by time.
func TestFollowerStartsAtRetention(t *testing.T) {
	c := kafkatest.New(t, schemas.TopicAuditEvents)
	old := exchanged(t, "e-old", "u1", "tok-old", "tok-p")
	old.Time = time.Now().Add(-3 * time.Hour)
	c.Produce(t, schemas.TopicAuditEvents, old, exchanged(t, "e-new", "u1", "tok-new", "tok-p"))

	x := NewIndex(time.Hour, 100, nil)
	cfg := DefaultConfig()
	cfg.Retention = time.Hour
	f, err := NewFollower([]string{c.Addr()}, c.ReaderConfig(schemas.TopicAuditEvents, "").Security, cfg, x, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("follower: %v", err)
		}
	}()
	testenv.Eventually(t, "the recent exchange", func() bool { return x.Len() == 1 })
	if _, ok := x.Lookup("tok-new"); !ok {
		t.Fatal("tok-new not learned")
	}
	if st := f.Stats(); st.Read != 1 {
		t.Fatalf("read %d messages, want 1 (the old one is before the start offset)", st.Read)
	}
}
