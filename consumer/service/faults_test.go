package service_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/consumer/audit/memstore"
	"github.com/revoked-dev/revoked/consumer/idp"
	"github.com/revoked-dev/revoked/consumer/service"
	"github.com/revoked-dev/revoked/internal/config"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/testenv"
	"github.com/revoked-dev/revoked/schemas"
)

// faultyAPI is a token API whose subject-wide revocation answers each
// request with a fault drawn from a seeded generator: 429 and 503 with
// Retry-After, a hang past the client's timeout, 500, 400 and 401, or
// success. Only a success revokes, and it is counted per user: the
// effective revocations.
type faultyAPI struct {
	mu        sync.Mutex
	rng       *rand.Rand
	effective map[string]int
	answers   map[string]int
	srv       *httptest.Server
}

func newFaultyAPI(t *testing.T, seed uint64) *faultyAPI {
	a := &faultyAPI{rng: rand.New(rand.NewPCG(seed, seed^0x5eed)), effective: map[string]int{}, answers: map[string]int{}}
	a.srv = httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *faultyAPI) serve(w http.ResponseWriter, r *http.Request) {
	user, ok := strings.CutPrefix(r.URL.Path, "/admin/subjects/")
	user, ok2 := strings.CutSuffix(user, "/revoke")
	if !ok || !ok2 || r.Method != http.MethodPost {
		http.NotFound(w, r)
		return
	}
	a.mu.Lock()
	p := a.rng.IntN(100)
	var answer string
	switch {
	case p < 10:
		answer = "429"
	case p < 20:
		answer = "503"
	case p < 25:
		answer = "hang"
	case p < 37:
		answer = "500"
	case p < 41:
		answer = "400"
	case p < 44:
		answer = "401"
	default:
		answer = "200"
		a.effective[user]++
	}
	a.answers[answer]++
	// Retry-After in whole seconds; mostly 0 (retry at once), sometimes 1.
	after := strconv.Itoa(a.rng.IntN(4) / 3)
	a.mu.Unlock()

	w.Header().Set("Content-Type", "application/json")
	switch answer {
	case "429", "503":
		w.Header().Set("Retry-After", after)
		code, _ := strconv.Atoi(answer)
		w.WriteHeader(code)
		_, _ = w.Write([]byte(`{"error":"slow_down"}`))
	case "hang":
		select {
		case <-r.Context().Done():
		case <-time.After(2 * time.Second):
		}
	case "500":
		w.WriteHeader(http.StatusInternalServerError)
	case "400":
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":"invalid_request","error_description":"scripted refusal"}`))
	case "401":
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"invalid_client"}`))
	default:
		_, _ = w.Write([]byte(`{"revoked":1}`))
	}
}

// TestFaultsProperty drives many commands through the real reader (kfake),
// handler and memstore against a token API that fails at random: every
// command ends revoked, dead-lettered or held; no offset is ever committed
// before every message below it is terminal in the audit trail; no command
// is carried out twice at the token API.
func TestFaultsProperty(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("REVOKED_FAULTS_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (set REVOKED_FAULTS_SEED to replay)", seed)
	const commands = 240
	api := newFaultyAPI(t, seed)
	client, err := idp.New(idp.Config{
		Timeout: 150 * time.Millisecond,
		Admin: idp.AdminConfig{
			BaseURL: api.srv.URL,
			Auth:    idp.AdminAuth{Kind: idp.AdminAuthBearer, Token: config.NewSecret("admin")},
			Subject: idp.AdminCall{Method: http.MethodPost, URL: "{base}/admin/subjects/{user_id}/revoke", AcceptStatus: []string{"200"}},
		},
		Breaker: idp.BreakerConfig{Failures: 5, Cooldown: 20 * time.Millisecond},
	}, service.NewHTTPClient(32), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, memstore.New())
	f.client = client

	now := time.Now()
	var cmds []schemas.RevokeCommand
	for i := range commands {
		c := command(schemas.Target{Kind: schemas.TargetUser, UserID: fmt.Sprintf("u-fault-%03d", i)}, now)
		if i%8 == 0 {
			c.Reason.RuleID = "capped" // 30 commands of a rule capped at 5 a minute
		}
		cmds = append(cmds, c)
	}
	for i := 0; i < len(cmds); i += 40 {
		msgs := make([]kafkax.Message, 0, 40)
		for _, c := range cmds[i:min(i+40, len(cmds))] {
			msgs = append(msgs, f.message(t, c))
		}
		f.kafka.Produce(t, schemas.TopicRevokeCommands, msgs...)
	}
	records := f.kafka.Records(t, schemas.TopicRevokeCommands)

	cfg := f.config("g-faults")
	cfg.Reader.KeyConcurrency = 4
	cfg.Reader.Concurrency = 16
	cfg.Reader.CommitInterval = 5 * time.Millisecond
	cfg.Guard.RuleBudgets = []string{"capped=5"}
	cfg.Retry.MaxAttempts = 3
	frozen := time.Now()
	_, stop := f.startService(t, cfg, func() time.Time { return frozen })

	terminal := func() map[[2]int64]schemas.Step {
		rows, err := f.store.History(context.Background(), audit.Query{})
		if err != nil {
			t.Fatal(err)
		}
		out := map[[2]int64]schemas.Step{}
		for _, r := range rows {
			if r.Step.Terminal() {
				out[[2]int64{int64(r.SourcePartition), r.SourceOffset}] = r.Step
			}
		}
		return out
	}
	// checkCommitted reads the committed offsets first and the audit trail
	// after: every message below a committed offset must already be
	// terminal in the trail.
	checks := 0
	checkCommitted := func() {
		committed := f.kafka.Committed(t, "g-faults", schemas.TopicRevokeCommands)
		done := terminal()
		for _, m := range records {
			if c, ok := committed[m.Partition]; ok && m.Offset < c {
				if _, ok := done[[2]int64{int64(m.Partition), m.Offset}]; !ok {
					t.Fatalf("partition %d committed up to %d but offset %d is not terminal", m.Partition, c, m.Offset)
				}
			}
		}
		checks++
	}
	// The invariant is checked over and over while the faults play out.
	testenv.EventuallyWithin(t, 2*time.Minute, "every command terminal", func() bool {
		checkCommitted()
		return len(terminal()) >= len(records)
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	checkCommitted()

	// Every command ended revoked, dead-lettered or held, once.
	byStep := map[schemas.Step]int{}
	dead := 0
	for _, c := range cmds {
		s := steps(t, f.store, c.CommandID)
		var end []schemas.Step
		for _, st := range []schemas.Step{schemas.StepConfirmed, schemas.StepUnconfirmed, schemas.StepDeadLettered, schemas.StepHeld} {
			if s[st] > 0 {
				if st.Revoked() {
					st = schemas.StepRevoked // confirmed or unconfirmed, whichever the proof gave
				}
				end = append(end, st)
			}
		}
		if len(end) != 1 || s[schemas.StepRejected] > 0 {
			t.Fatalf("%s ended %v (steps %v), want exactly one of revoked, dead_lettered, held", c.CommandID, end, s)
		}
		byStep[end[0]]++
		user := c.Target.UserID
		api.mu.Lock()
		n := api.effective[user]
		api.mu.Unlock()
		switch end[0] {
		case schemas.StepRevoked:
			if n != 1 {
				t.Errorf("%s revoked with %d effective revocations, want 1", user, n)
			}
		default:
			if n != 0 {
				t.Errorf("%s %s with %d effective revocations, want 0", user, end[0], n)
			}
		}
		if end[0] == schemas.StepDeadLettered {
			dead++
		}
	}
	if byStep[schemas.StepHeld] < 30-5 {
		t.Errorf("%d held, want at least 25 (the capped rule's excess)", byStep[schemas.StepHeld])
	}
	if got := len(f.kafka.Records(t, schemas.TopicDLQ)); got != dead {
		t.Errorf("%d dead letters in the topic, %d dead_lettered commands", got, dead)
	}
	// Everything is committed once the consumer stopped.
	committed := f.kafka.Committed(t, "g-faults", schemas.TopicRevokeCommands)
	for _, m := range records {
		if committed[m.Partition] <= m.Offset {
			t.Errorf("partition %d committed %d, message at %d never committed", m.Partition, committed[m.Partition], m.Offset)
		}
	}
	api.mu.Lock()
	t.Logf("outcomes %v; token API answers %v; %d commit checks", byStep, api.answers, checks)
	api.mu.Unlock()
	if byStep[schemas.StepRevoked] == 0 || byStep[schemas.StepDeadLettered] == 0 {
		t.Errorf("the faults did not exercise both outcomes: %v", byStep)
	}
}
