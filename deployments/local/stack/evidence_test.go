package stack_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/trail"
	"github.com/revoked-dev/revoked/deployments/local/stack"
	"github.com/revoked-dev/revoked/internal/enrich"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/kafka/kafkatest"
	"github.com/revoked-dev/revoked/internal/testenv"
	"github.com/revoked-dev/revoked/schemas"
)

// seen collects what the stack's observer reports and wakes a waiter at
// each report; the callbacks never block.
type seen struct {
	mu   sync.Mutex
	cmds []schemas.RevokeCommand
	rows []schemas.AuditRow
	wake chan struct{}
}

func (s *seen) notify() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *seen) observer() stack.Observer {
	return stack.Observer{
		Detection: func(c schemas.RevokeCommand) {
			s.mu.Lock()
			s.cmds = append(s.cmds, c)
			s.mu.Unlock()
			s.notify()
		},
		AuditRow: func(r schemas.AuditRow) {
			s.mu.Lock()
			s.rows = append(s.rows, r)
			s.mu.Unlock()
			s.notify()
		},
	}
}

// until waits for cond (called under the lock) to hold after a report,
// for at most a minute.
func (s *seen) until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(time.Minute)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		ok := cond()
		s.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-s.wake:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestEvidenceContextEndToEnd drives a brute force from public addresses,
// with no geo of their own, through the whole pipeline with the address
// databases on: the enforced command the detector publishes says, for
// each of its evidence events, the address, country and ASN the
// enrichment found, and every audit row of the command keeps them, in
// the store as the consumer wrote them, with the trail verifying.
func TestEvidenceContextEndToEnd(t *testing.T) {
	geoip := testenv.GeoIPDir(t, enrich.Files...)
	for _, backend := range []string{"chdb", "clickhouse"} {
		t.Run(backend, func(t *testing.T) {
			cfg := testConfig(t, backend, "e2e_ctx")
			cfg.GeoIP.Dir = geoip
			obs := &seen{wake: make(chan struct{}, 1)}
			s, err := stack.Start(context.Background(), cfg, obs.observer(), zerolog.Nop())
			if err != nil {
				t.Fatalf("starting the stack: %v", err)
			}
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("closing the stack: %v", err)
				}
			})
			user := "u-ctx-" + backend
			raw, tokenID := issue(t, s, user)

			// Failed logins from two networks abroad, then the success
			// from a third: where each came from is for the enrichment
			// to say.
			now := time.Now()
			addrs := []string{"185.220.101.1", "5.255.255.5", "185.220.101.1", "5.255.255.5", "81.2.69.142", "185.220.101.1"}
			var msgs []kafkax.Message
			events := map[string]schemas.AuditEvent{}
			for i, ip := range append(addrs, "2a00:1450:4001:82b::200e") {
				ev := schemas.AuditEvent{ID: fmt.Sprintf("%s-f%d", user, i), Time: now.Add(time.Duration(i-10) * time.Second).UTC(),
					Type: schemas.EventLoginFailure, UserID: user, IP: ip}
				if i == len(addrs) {
					ev.ID, ev.Time, ev.Type, ev.TokenID = user+"-ok", now.UTC(), schemas.EventLoginSuccess, tokenID
				}
				v, err := json.Marshal(ev)
				if err != nil {
					t.Fatal(err)
				}
				msgs = append(msgs, kafkax.Message{Key: []byte(user), Value: v})
				events[ev.ID] = ev
			}
			// What the detector's enrichment makes of each event, by an
			// enricher of the same databases.
			ecfg := cfg.GeoIP
			enr, err := enrich.New(ecfg)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]schemas.EventContext{}
			for id, ev := range events {
				enr.Enrich(&ev)
				c, ok := schemas.ContextFromEvent(&ev)
				if !ok || c.Country == "" || c.ASN == 0 {
					t.Fatalf("the address databases say nothing of %s: %+v", ev.IP, c)
				}
				want[id] = c
			}
			_ = enr.Close()
			msgs = append([]kafkax.Message{knownFromHome(user, now)}, msgs...)
			(&kafkatest.Cluster{Brokers: s.Brokers}).Produce(t, schemas.TopicAuditEvents, msgs...)

			var cmd schemas.RevokeCommand
			obs.until(t, "an enforced command against "+user, func() bool {
				for _, c := range obs.cmds {
					if c.Target.UserID == user && c.Mode == schemas.ModeEnforce && c.Action != schemas.ActionNotify {
						cmd = c
						return true
					}
				}
				return false
			})
			if !slices.Contains(cmd.Reason.Evidence, user+"-ok") {
				t.Errorf("evidence %q lacks the success that completed the detection", cmd.Reason.Evidence)
			}
			if len(cmd.Reason.Context) != len(cmd.Reason.Evidence) {
				t.Errorf("%d context entries for %d evidence events, all of them with an address", len(cmd.Reason.Context), len(cmd.Reason.Evidence))
			}
			for _, c := range cmd.Reason.Context {
				if c != want[c.EventID] {
					t.Errorf("command context %+v, want %+v", c, want[c.EventID])
				}
			}
			encoded := schemas.EncodeEventContexts(cmd.Reason.Context)

			obs.until(t, "the revocation's audit row", func() bool {
				return slices.ContainsFunc(obs.rows, func(r schemas.AuditRow) bool {
					return r.CommandID == cmd.CommandID && r.Step.Revoked()
				})
			})
			if in, err := s.IdP.Introspect(context.Background(), raw); err != nil || in.Active {
				t.Errorf("the token is still active after its revocation was audited (%v)", err)
			}
			rows, err := s.Store.CommandRows(context.Background(), cmd.CommandID)
			if err != nil {
				t.Fatal(err)
			}
			steps := map[schemas.Step]bool{}
			for _, r := range rows {
				steps[r.Step] = true
				if !slices.Equal(r.EvidenceContext, encoded) {
					t.Errorf("%s row: evidence context\n%q\nwant\n%q", r.Step, r.EvidenceContext, encoded)
				}
				if r.Hash != r.ComputeHash() {
					t.Errorf("%s row does not hash as stored", r.Step)
				}
			}
			if !steps[schemas.StepReceived] || !slices.ContainsFunc(rows, func(r schemas.AuditRow) bool { return r.Step.Revoked() }) {
				t.Errorf("the command's rows have steps %v, want received and a revocation", steps)
			}
			if _, err := trail.Verify(context.Background(), s.Store, schemas.NewKeyring(s.CheckpointSigner.Public()), trail.Options{AllowUnsigned: true}); err != nil {
				t.Errorf("verifying the trail: %v", err)
			}
		})
	}
}
