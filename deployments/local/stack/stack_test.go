package stack_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/api"
	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/consumer/trail"
	"github.com/revoked-dev/revoked/deployments/local/stack"
	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/internal/held"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/kafka/kafkatest"
	"github.com/revoked-dev/revoked/internal/testenv"
	"github.com/revoked-dev/revoked/producer/simulate"
	"github.com/revoked-dev/revoked/schemas"
)

func startStack(t *testing.T, backend string) (*stack.Stack, *testenv.LogBuffer, *testenv.Recorder[schemas.AuditRow]) {
	t.Helper()
	return startStackWith(t, backend, nil)
}

// testConfig is the stack's defaults on free loopback ports with two
// partitions and the audit store of backend: a chDB directory of the
// test's own, or on the CI ClickHouse server a table named after prefix
// and the time.
func testConfig(t *testing.T, backend, prefix string) stack.Config {
	t.Helper()
	cfg := stack.DefaultConfig()
	cfg.KafkaAddr, cfg.TokenAPIAddr, cfg.HTTPAddr, cfg.IngestAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.Partitions = 2
	cfg.Audit.Backend = backend
	switch backend {
	case "chdb":
		testenv.ChDBLibPath(t)
		cfg.Audit.ChDBPath = t.TempDir()
	case "clickhouse":
		cfg.Audit.DSN = testenv.ClickHouseDSN(t)
		cfg.Audit.Table = fmt.Sprintf("%s_%d", prefix, time.Now().UnixNano())
	}
	return cfg
}

// startStackWith starts the stack on backend with its defaults changed by
// mutate. It returns the stack's log and the audit rows the consumer
// writes, as its observer sees each once it is durable.
func startStackWith(t *testing.T, backend string, mutate func(*stack.Config)) (*stack.Stack, *testenv.LogBuffer, *testenv.Recorder[schemas.AuditRow]) {
	t.Helper()
	cfg := testConfig(t, backend, "e2e")
	if mutate != nil {
		mutate(&cfg)
	}
	logs := &testenv.LogBuffer{}
	rows := &testenv.Recorder[schemas.AuditRow]{}
	log := zerolog.New(logs).Level(zerolog.DebugLevel).With().Timestamp().Logger()
	s, err := stack.Start(context.Background(), cfg, stack.Observer{AuditRow: rows.Add}, log)
	if err != nil {
		t.Fatalf("starting the stack: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("closing the stack: %v", err)
		}
	})
	return s, logs, rows
}

// waitRow waits until the consumer has written a row that match accepts.
// Rows are written after what they record, so once the row of a
// revocation is seen the token API has revoked.
func waitRow(t *testing.T, rows *testenv.Recorder[schemas.AuditRow], what string, match func(schemas.AuditRow) bool) {
	t.Helper()
	rows.Wait(t, what, func(all []schemas.AuditRow) bool { return slices.ContainsFunc(all, match) })
}

// userStep matches the rows of step about user.
func userStep(user string, step schemas.Step) func(schemas.AuditRow) bool {
	return func(r schemas.AuditRow) bool { return r.UserID == user && r.Step == step }
}

// waitHistory waits until the audit store's history of user holds a row
// of step, and returns that history. The store is behind the consumer's
// spool and gives no notice of its rows, so it is polled.
func waitHistory(t *testing.T, s *stack.Stack, user string, step schemas.Step) []schemas.AuditRow {
	t.Helper()
	var rows []schemas.AuditRow
	testenv.Eventually(t, fmt.Sprintf("a %s row of %s in the audit store", step, user), func() bool {
		var err error
		rows, err = s.Store.History(context.Background(), audit.Query{UserID: user, Limit: 100})
		return err == nil && hasStep(rows, step)
	})
	return rows
}

func issue(t *testing.T, s *stack.Stack, user string) (raw, id string) {
	t.Helper()
	icfg := simulate.DefaultHTTPIssuerConfig()
	icfg.URL = s.TokenAPIURL
	icfg.AdminToken = s.AdminToken
	iss, err := simulate.NewHTTPIssuer(icfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, id, err = iss.Issue(context.Background(), user, "web-app", "s-"+user, []string{"files.read"})
	if err != nil {
		t.Fatal(err)
	}
	return raw, id
}

func event(id, typ, user string, at time.Time, extra string) kafkax.Message {
	v := fmt.Sprintf(`{"id":%q,"time":%q,"type":%q,"user_id":%q,"ip":"198.51.100.9","geo":{"country":"NL","asn":1136}%s}`,
		id, at.UTC().Format(time.RFC3339Nano), typ, user, extra)
	return kafkax.Message{Key: []byte(user), Value: []byte(v)}
}

// bruteForce is the user signing in from home an hour before now, then
// six failed logins ending ten seconds before now and a successful one
// with the token tokenID at now, from another network: what the default
// rules revoke. (Without the hour before, the user would be unknown to a
// detector a few seconds old, and the success not judged new.)
func bruteForce(user, tokenID string, now time.Time) []kafkax.Message {
	msgs := []kafkax.Message{knownFromHome(user, now)}
	for i := range 6 {
		msgs = append(msgs, event(fmt.Sprintf("%s-f%d", user, i), "login.failure", user, now.Add(time.Duration(i-10)*time.Second), ""))
	}
	return append(msgs, event(user+"-ok", "login.success", user, now, fmt.Sprintf(`,"token_id":%q`, tokenID)))
}

// knownFromHome is a login of user from a home network an hour before now.
func knownFromHome(user string, now time.Time) kafkax.Message {
	v := fmt.Sprintf(`{"id":%q,"time":%q,"type":"login.success","user_id":%q,"ip":"192.0.2.10","geo":{"country":"NL","asn":3320}}`,
		user+"-home", now.Add(-time.Hour).UTC().Format(time.RFC3339Nano), user)
	return kafkax.Message{Key: []byte(user), Value: []byte(v)}
}

// TestEndToEnd drives the whole pipeline on each audit backend: a brute
// force against a user whose real token lives at the token API, and a
// malformed event in the same partition before it. The token ends
// inactive (introspection), the audit rows are in the store and behind the
// analyst API, the malformed event is in revoke.dlq with a reason, and the
// raw token appears in no log line, no Kafka record and no audit row.
func TestEndToEnd(t *testing.T) {
	for _, backend := range []string{"chdb", "clickhouse"} {
		t.Run(backend, func(t *testing.T) {
			s, logs, written := startStack(t, backend)
			k := &kafkatest.Cluster{Brokers: s.Brokers}
			user := "u-victim-" + backend
			raw, tokenID := issue(t, s, user)
			bystander, _ := issue(t, s, "u-bystander-"+backend)

			now := time.Now()
			msgs := []kafkax.Message{
				{Key: []byte(user), Value: []byte(`{"id":"bad-1","type":"login.failure","user_id":"` + user + `","colour":"red"}`)},
			}
			msgs = append(msgs, bruteForce(user, tokenID, now)...)
			k.Produce(t, schemas.TopicAuditEvents, msgs...)

			waitRow(t, written, "the victim's revocation", userStep(user, schemas.StepConfirmed))
			if in, err := s.IdP.Introspect(context.Background(), raw); err != nil || in.Active {
				t.Fatalf("the victim's token is still active after its revocation was audited (%v)", err)
			}
			in, err := s.IdP.Introspect(context.Background(), bystander)
			if err != nil || !in.Active {
				t.Fatalf("the bystander's token was revoked (%v)", err)
			}
			rows := waitHistory(t, s, user, schemas.StepConfirmed)
			for _, r := range rows {
				if r.RuleID != "risk" || r.Mode != schemas.ModeEnforce {
					t.Errorf("unexpected row %+v", r)
				}
			}

			// The analyst API serves the same rows.
			resp, err := http.Get(s.HTTPURL + "/api/v1/revocations?user_id=" + user)
			if err != nil {
				t.Fatal(err)
			}
			var page api.Page
			if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 || !hasStep(page.Rows, schemas.StepConfirmed) {
				t.Fatalf("GET /api/v1/revocations: %d %+v", resp.StatusCode, page)
			}

			// The malformed event was dead-lettered with its reason.
			dlq := k.WaitRecords(t, schemas.TopicDLQ, 1)
			if got := header(dlq[0], schemas.HeaderDLQReason); !strings.Contains(got, "colour") {
				t.Errorf("dead letter reason %q does not name the bad field", got)
			}

			// No raw token anywhere.
			var haystack strings.Builder
			haystack.WriteString(logs.String())
			for _, topic := range []string{schemas.TopicAuditEvents, schemas.TopicRevokeCommands, schemas.TopicDLQ} {
				for _, m := range k.Records(t, topic) {
					haystack.Write(m.Key)
					haystack.Write(m.Value)
					for _, h := range m.Headers {
						haystack.Write(h.Value)
					}
				}
			}
			all, err := s.Store.History(context.Background(), audit.Query{Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			_ = json.NewEncoder(&haystack).Encode(all)
			for name, secret := range map[string]string{"victim token": raw, "bystander token": bystander} {
				if strings.Contains(haystack.String(), secret) {
					t.Errorf("the %s appears in logs, Kafka or the audit trail", name)
				}
			}
			if !strings.Contains(haystack.String(), tokenID) {
				t.Error("the token's fingerprint is nowhere: the scan looked at nothing")
			}

			// The trail the consumer wrote verifies as a hash chain (its
			// rows are not yet covered by a checkpoint: that comes every
			// 1,000 rows, every minute and at shutdown).
			rep, err := trail.Verify(context.Background(), s.Store, schemas.NewKeyring(s.CheckpointSigner.Public()), trail.Options{AllowUnsigned: true})
			if err != nil {
				t.Fatalf("verifying the trail: %v", err)
			}
			if rep.Rows == 0 {
				t.Fatal("verified no rows")
			}
		})
	}
}

// The local detector is assembled as the detector command assembles it,
// guard included: a brute force against an allowlisted user becomes a
// dry run, which the consumer audits and does not carry out.
func TestDetectorGuardEnforced(t *testing.T) {
	allow := filepath.Join(t.TempDir(), "allowlist.yaml")
	if err := os.WriteFile(allow, []byte("entries:\n  - user_ids: [u-breakglass]\n    reason: break-glass account\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, _, written := startStackWith(t, "chdb", func(c *stack.Config) { c.Guard.AllowlistFile = allow })
	k := &kafkatest.Cluster{Brokers: s.Brokers}
	user := "u-breakglass"
	raw, tokenID := issue(t, s, user)
	k.Produce(t, schemas.TopicAuditEvents, bruteForce(user, tokenID, time.Now())...)

	waitRow(t, written, "the dry run", userStep(user, schemas.StepDryRun))
	rows := waitHistory(t, s, user, schemas.StepDryRun)
	for _, r := range rows {
		if r.Mode != schemas.ModeDryRun || r.Step.Revoked() {
			t.Errorf("row %+v: want dry runs only", r)
		}
	}
	in, err := s.IdP.Introspect(context.Background(), raw)
	if err != nil || !in.Active {
		t.Fatalf("the allowlisted user's token was revoked (%v)", err)
	}
}

// The local consumer is assembled as the consumer command assembles it,
// lineage follower included: a token the token API issued on its own,
// which a token.exchanged event on audit.events names as another token's
// child, is revoked with its parent by a command that includes downscoped
// tokens, though only the follower knows the two are related.
func TestConsumerFollowsLineage(t *testing.T) {
	s, _, written := startStack(t, "chdb")
	k := &kafkatest.Cluster{Brokers: s.Brokers}
	user := "u-lineage"
	parentRaw, parentID := issue(t, s, user)
	childRaw, childID := issue(t, s, user)
	otherRaw, _ := issue(t, s, user)
	k.Produce(t, schemas.TopicAuditEvents, event(user+"-x", "token.exchanged", user, time.Now(),
		fmt.Sprintf(`,"token_id":%q,"parent_token_id":%q,"scopes":["files.read"]`, childID, parentID)))
	// The follower gives no notice of what it learns: its counts are
	// polled.
	testenv.Eventually(t, "the follower to learn the exchange", func() bool {
		st, on := s.LineageStats()
		return on && st.Learned >= 1
	})

	now := time.Now()
	target := schemas.Target{Kind: schemas.TargetToken, TokenID: parentID, UserID: user, IncludeDownscoped: true}
	reason := schemas.Reason{RuleID: "manual", RuleVersion: 1, Severity: schemas.SeverityHigh, Summary: "parent token leaked",
		Evidence: []string{"ticket-1"}, FirstEventTime: now, LastEventTime: now, DetectedAt: now}
	cmd := schemas.RevokeCommand{
		CommandID: schemas.DetectionCommandID(reason.RuleID, reason.RuleVersion, target, reason.Evidence),
		IssuedAt:  now, ExpiresAt: now.Add(time.Hour), Issuer: "detector",
		Target: target, Action: schemas.ActionRevoke, Mode: schemas.ModeEnforce, Reason: reason,
	}
	value, err := json.Marshal(&cmd)
	if err != nil {
		t.Fatal(err)
	}
	k.Produce(t, schemas.TopicRevokeCommands, kafkax.Message{Key: cmd.Key(), Value: value, Headers: []kafkax.Header{
		{Key: schemas.HeaderSchema, Value: []byte(schemas.SchemaRevokeCommandV1)},
		{Key: schemas.HeaderKeyID, Value: []byte(s.Signer.KeyID())},
		{Key: schemas.HeaderSignature, Value: []byte(s.Signer.Sign(value))},
	}})
	waitRow(t, written, "the command's revocation", func(r schemas.AuditRow) bool {
		return r.CommandID == cmd.CommandID && r.Step.Revoked()
	})
	for name, raw := range map[string]string{"parent": parentRaw, "child": childRaw} {
		if in, err := s.IdP.Introspect(context.Background(), raw); err != nil || in.Active {
			t.Errorf("the %s is still active after the revocation was audited (%v)", name, err)
		}
	}
	if in, err := s.IdP.Introspect(context.Background(), otherRaw); err != nil || !in.Active {
		t.Errorf("the user's unrelated token was revoked too (%v): the command was not the token's", err)
	}
}

// Events posted to the local ingest endpoint, assembled as the producer's
// ingest command assembles it, go through the whole pipeline: a brute
// force posted as JSON lines ends with the victim's token revoked.
func TestIngestEndpointFeedsThePipeline(t *testing.T) {
	s, _, written := startStack(t, "chdb")
	user := "u-posted"
	raw, tokenID := issue(t, s, user)
	var body strings.Builder
	for _, m := range bruteForce(user, tokenID, time.Now()) {
		body.Write(m.Value)
		body.WriteByte('\n')
	}
	resp, err := http.Post(s.IngestURL+"/v1/events", "application/x-ndjson", strings.NewReader(body.String()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /v1/events: %d", resp.StatusCode)
	}
	waitRow(t, written, "the posted victim's revocation", userStep(user, schemas.StepConfirmed))
	if in, err := s.IdP.Introspect(context.Background(), raw); err != nil || in.Active {
		t.Fatalf("the posted victim's token is still active after its revocation was audited (%v)", err)
	}
}

// TestSimulatedRun runs a short simulation through the stack on chDB and
// checks the summary against the ground truth.
func TestSimulatedRun(t *testing.T) {
	s, _, _ := startStack(t, "chdb")
	cfg := simulate.DefaultConfig()
	cfg.Clock = simulate.ClockLive
	cfg.Users = 60
	cfg.Rate = 400
	cfg.Duration = 10 * time.Second
	cfg.AttackTimeScale = 0.01
	cfg.BruteForceProb = 0.2
	cfg.ReplayProb = 0.2
	cfg.Seed = 7
	var truth bytes.Buffer
	r, err := s.Simulate(context.Background(), cfg, 30*time.Second, &truth, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("report: %+v", r)
	if r.Events == 0 || r.Attacks == 0 {
		t.Fatalf("the simulation produced %d events and %d attacks", r.Events, r.Attacks)
	}
	// Every attack is detected, or stopped by the victim's own logout of
	// the session whose token it used (a replay of a token its owner
	// logged out of before the rules saw it moved).
	t.Logf("attacks: %d detected, %d stopped by the victim's logout, of %d", r.AttacksDetected, len(r.LoggedOut), r.Attacks)
	if len(r.Missed) > 0 || r.AttacksDetected+len(r.LoggedOut) != r.Attacks {
		t.Errorf("detected %d of %d attacks, %d stopped by a logout: missed %+v", r.AttacksDetected, r.Attacks, len(r.LoggedOut), r.Missed)
	}
	if len(r.FalsePositives) > 0 {
		t.Errorf("benign users revoked: %v\n%s", r.FalsePositives, strings.Join(r.BenignRevocations, "\n"))
	}
	if r.TokensChecked == 0 || r.TokensStillActive > 0 {
		t.Errorf("%d of %d attacked tokens still active", r.TokensStillActive, r.TokensChecked)
	}
	if r.Unfinished > 0 {
		t.Errorf("%d commands unfinished", r.Unfinished)
	}
	if r.EventToRevoke.N == 0 {
		t.Error("no latency measured")
	}
	if n := strings.Count(truth.String(), "\n"); n == 0 {
		t.Error("empty ground truth")
	}
	_ = io.Discard
}

func hasStep(rows []schemas.AuditRow, step schemas.Step) bool {
	for _, r := range rows {
		if r.Step == step {
			return true
		}
	}
	return false
}

func header(m kafkax.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// The local consumer is assembled as the consumer command assembles it,
// guard and held-command API included: with its kill switch engaged it
// holds the detector's enforcing command instead of revoking, the held
// API lists it, refuses its approval while the switch is engaged, and
// once the switch is released an approval carries it out.
func TestConsumerGuardEnforced(t *testing.T) {
	s, _, written := startStackWith(t, "chdb", func(c *stack.Config) {
		c.ConsumerGuard.KillSwitch = true
		c.ConsumerGuard.AdminToken = config.NewSecret("adm1n")
	})
	k := &kafkatest.Cluster{Brokers: s.Brokers}
	user := "u-held"
	raw, tokenID := issue(t, s, user)
	k.Produce(t, schemas.TopicAuditEvents, bruteForce(user, tokenID, time.Now())...)

	call := func(method, path, body string, into any) int {
		t.Helper()
		req, err := http.NewRequest(method, s.HTTPURL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer adm1n")
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
	waitRow(t, written, "the kill switch's hold", userStep(user, schemas.StepHeld))
	// The held API reads the audit store, which gives no notice: polled.
	var pending []held.Held
	testenv.Eventually(t, "the held command listed", func() bool {
		pending = nil
		return call("GET", "/api/v1/held", "", &pending) == http.StatusOK && len(pending) == 1
	})
	h := pending[0]
	if h.HeldBy != held.ByConsumer || h.Target != user || !strings.Contains(h.Reason, "kill switch") {
		t.Fatalf("held %+v", h)
	}
	if in, err := s.IdP.Introspect(context.Background(), raw); err != nil || !in.Active {
		t.Fatalf("a command the kill switch held was carried out (%v)", err)
	}
	if code := call("POST", "/api/v1/held/"+h.CommandID+"/approve", `{"approver":"alice"}`, nil); code != http.StatusConflict {
		t.Fatalf("approval under the kill switch: %d, want 409", code)
	}
	if code := call("POST", "/admin/kill-switch", `{"engaged":false,"by":"alice"}`, nil); code != http.StatusOK {
		t.Fatalf("releasing the kill switch: %d", code)
	}
	var decided held.Held
	if code := call("POST", "/api/v1/held/"+h.CommandID+"/approve", `{"approver":"alice"}`, &decided); code != http.StatusOK || decided.State != held.Approved {
		t.Fatalf("approval: %d %+v", code, decided)
	}
	if in, err := s.IdP.Introspect(context.Background(), raw); err != nil || in.Active {
		t.Fatalf("the approved command's token is still active (%v)", err)
	}
}
