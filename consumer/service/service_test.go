package service_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/consumer/audit/backends"
	"github.com/revoked-dev/revoked/consumer/audit/memstore"
	"github.com/revoked-dev/revoked/consumer/idp"
	"github.com/revoked-dev/revoked/consumer/service"
	"github.com/revoked-dev/revoked/deployments/tokenapi/server"
	"github.com/revoked-dev/revoked/deployments/tokenapi/server/servertest"
	"github.com/revoked-dev/revoked/internal/config"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/kafka/kafkatest"
	"github.com/revoked-dev/revoked/internal/testenv"
	"github.com/revoked-dev/revoked/schemas"
)

type fixture struct {
	kafka  *kafkatest.Cluster
	api    *servertest.Env
	client *idp.Client
	signer *schemas.Signer
	seal   *schemas.SealKey
	store  audit.Store
	// rows are the audit rows the fixture's consumers wrote, as their
	// observer saw them: each once it is durable in the store the
	// consumer writes to; nil records nothing.
	rows *testenv.Recorder[schemas.AuditRow]
}

func newFixture(t testing.TB, store audit.Store) *fixture {
	t.Helper()
	priv, err := schemas.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	seal, err := schemas.GenerateSealKey()
	if err != nil {
		t.Fatal(err)
	}
	api := servertest.Start(t)
	client, err := idp.New(idp.Config{
		Issuer:       api.Issuer,
		ClientID:     servertest.RevokerID,
		ClientSecret: config.NewSecret(servertest.RevokerSecret),
		AuthMethod:   idp.AuthClientSecretBasic,
		Timeout:      5 * time.Second,
		Admin:        idp.ReferencePreset(api.URL, api.AdminToken),
	}, service.NewHTTPClient(64), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{
		kafka:  kafkatest.NewWithPartitions(t, map[string]int{schemas.TopicRevokeCommands: 4, schemas.TopicDLQ: 1}),
		api:    api,
		client: client,
		signer: schemas.NewSigner(priv),
		seal:   seal,
		store:  store,
		rows:   &testenv.Recorder[schemas.AuditRow]{},
	}
}

func (f *fixture) config(group string) service.Config {
	cfg := service.DefaultConfig()
	cfg.Reader = f.kafka.ReaderConfig(schemas.TopicRevokeCommands, group)
	cfg.Reader.Component = "consumer"
	cfg.Reader.DLQTopic = schemas.TopicDLQ
	cfg.Actor = "consumer-test"
	cfg.Retry.MinBackoff = time.Millisecond
	cfg.Retry.MaxBackoff = 10 * time.Millisecond
	return cfg
}

// run starts a consumer with deps, whose Store, TokenAPI, Keyring and Seal
// default to the fixture's, until the returned stop is called (by the test
// or at cleanup); stop returns what Run returned.
func (f *fixture) run(tb testing.TB, cfg service.Config, deps service.Deps) (*service.Service, func() error) {
	tb.Helper()
	if deps.Store == nil {
		deps.Store = f.store
	}
	if deps.TokenAPI == nil {
		deps.TokenAPI = f.client
	}
	if deps.Keyring == nil {
		deps.Keyring = schemas.NewKeyring(f.signer.Public())
	}
	if deps.Seal == nil {
		deps.Seal = f.seal
	}
	observe := deps.Observe
	deps.Observe = func(r schemas.AuditRow) {
		if f.rows != nil {
			f.rows.Add(r)
		}
		if observe != nil {
			observe(r)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := service.New(ctx, cfg, deps, zerolog.Nop())
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() { cancel(); runErr = <-done })
		return runErr
	}
	tb.Cleanup(func() { _ = stop() })
	return svc, stop
}

// start runs a consumer on the fixture until the returned stop is called.
func (f *fixture) start(t *testing.T, cfg service.Config) (stop func() error) {
	t.Helper()
	_, stop = f.run(t, cfg, service.Deps{})
	return stop
}

func command(target schemas.Target, now time.Time) schemas.RevokeCommand {
	return schemas.RevokeCommand{
		CommandID: "cmd_" + strconv.FormatInt(now.UnixNano(), 36) + "_" + target.Key(),
		IssuedAt:  now, ExpiresAt: now.Add(time.Hour), Issuer: "test",
		Target: target, Action: schemas.ActionRevoke, Mode: schemas.ModeEnforce,
		Reason: schemas.Reason{RuleID: "manual", Severity: schemas.SeverityHigh, Summary: "test", LastEventTime: now},
	}
}

func (f *fixture) message(t testing.TB, c schemas.RevokeCommand) kafkax.Message {
	t.Helper()
	value, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return kafkax.Message{Key: c.Key(), Value: value, Headers: []kafkax.Header{
		{Key: schemas.HeaderSchema, Value: []byte(schemas.SchemaRevokeCommandV1)},
		{Key: schemas.HeaderKeyID, Value: []byte(f.signer.KeyID())},
		{Key: schemas.HeaderSignature, Value: []byte(f.signer.Sign(value))},
	}}
}

func (f *fixture) introspect(t *testing.T, raw string) bool {
	t.Helper()
	in, err := f.client.Introspect(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	return in.Active
}

// waitStep waits until a consumer of the fixture has written a row of
// step for the command, and fails unless the fixture's store then holds
// exactly one: the consumers' observer sees each row once it is durable
// in their store, so nothing is polled.
func (f *fixture) waitStep(t *testing.T, commandID string, step schemas.Step) {
	t.Helper()
	f.rows.Wait(t, fmt.Sprintf("a %s row of %s", step, commandID), func(rows []schemas.AuditRow) bool {
		return countStep(rows, commandID, step) > 0
	})
	if n := steps(t, f.store, commandID)[step]; n != 1 {
		t.Fatalf("%s: %d %s rows in the store, want 1", commandID, n, step)
	}
}

// countStep counts the rows of step for the command among rows.
func countStep(rows []schemas.AuditRow, commandID string, step schemas.Step) int {
	n := 0
	for _, r := range rows {
		if r.CommandID == commandID && r.Step == step {
			n++
		}
	}
	return n
}

func steps(t *testing.T, s audit.Store, commandID string) map[schemas.Step]int {
	t.Helper()
	rows, err := s.CommandRows(context.Background(), commandID)
	if err != nil {
		t.Fatal(err)
	}
	out := map[schemas.Step]int{}
	for _, r := range rows {
		out[r.Step]++
	}
	return out
}

func TestRevokesEveryTargetKind(t *testing.T) {
	f := newFixture(t, memstore.New())
	now := time.Now()
	// A user with a token and a downscoped child; a token revoked by a
	// sealed raw value; a token revoked by id; a session; a client.
	userRaw, _ := f.api.Issue(t, server.IssueRequest{UserID: "u-user", ClientID: servertest.AppID, Scopes: servertest.AppScopes})
	child := f.api.Exchange(t, servertest.AppID, servertest.AppSecret, userRaw, nil)
	sealedRaw, sealedID := f.api.Issue(t, server.IssueRequest{UserID: "u-sealed", ClientID: servertest.AppID, Scopes: servertest.AppScopes})
	byIDRaw, byID := f.api.Issue(t, server.IssueRequest{UserID: "u-byid", ClientID: servertest.AppID, Scopes: servertest.AppScopes})
	sessRaw, _ := f.api.Issue(t, server.IssueRequest{UserID: "u-sess", ClientID: servertest.AppID, SessionID: "s-1", Scopes: servertest.AppScopes})
	keepRaw, _ := f.api.Issue(t, server.IssueRequest{UserID: "u-keep", ClientID: servertest.AppID, Scopes: servertest.AppScopes})

	sealed, err := schemas.SealToken(sealedRaw, f.seal.Public)
	if err != nil {
		t.Fatal(err)
	}
	cmds := []schemas.RevokeCommand{
		command(schemas.Target{Kind: schemas.TargetUser, UserID: "u-user", IncludeDownscoped: true}, now),
		command(schemas.Target{Kind: schemas.TargetToken, UserID: "u-sealed", TokenID: sealedID, SealedToken: sealed}, now),
		command(schemas.Target{Kind: schemas.TargetToken, UserID: "u-byid", TokenID: byID, IncludeDownscoped: true}, now),
		command(schemas.Target{Kind: schemas.TargetSession, SessionID: "s-1"}, now),
	}
	for _, c := range cmds {
		f.kafka.Produce(t, schemas.TopicRevokeCommands, f.message(t, c))
	}
	stop := f.start(t, f.config("g-kinds"))
	// Every target the token API can list is confirmed by its list or by
	// introspection; a session without its user cannot be listed.
	for _, c := range cmds {
		want := schemas.StepConfirmed
		if c.Target.Kind == schemas.TargetSession {
			want = schemas.StepUnconfirmed
		}
		f.waitStep(t, c.CommandID, want)
	}
	for name, raw := range map[string]string{"user token": userRaw, "downscoped child": child, "sealed": sealedRaw, "by id": byIDRaw, "session": sessRaw} {
		if f.introspect(t, raw) {
			t.Errorf("%s still active", name)
		}
	}
	if !f.introspect(t, keepRaw) {
		t.Error("an untargeted user's token was revoked")
	}
	// The user and token targets were proven through the token API:
	// confirmed, with what the proof showed.
	for _, c := range cmds[:3] {
		rows, err := f.store.CommandRows(t.Context(), c.CommandID)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			if r.Step == schemas.StepConfirmed && (r.Proof == "" || r.TokensRevoked == 0) {
				t.Errorf("%s: confirmed row with proof %q and %d tokens revoked", c.Target.Kind, r.Proof, r.TokensRevoked)
			}
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

func TestRejectsUnsignedForgedExpiredReplayed(t *testing.T) {
	f := newFixture(t, memstore.New())
	now := time.Now()
	raw, _ := f.api.Issue(t, server.IssueRequest{UserID: "u-victim", ClientID: servertest.AppID, Scopes: servertest.AppScopes})

	good := command(schemas.Target{Kind: schemas.TargetUser, UserID: "u-victim"}, now)
	unsigned := f.message(t, good)
	unsigned.Headers = unsigned.Headers[:1]
	forgedKey, _ := schemas.GenerateSigningKey()
	forger := schemas.NewSigner(forgedKey)
	forged := f.message(t, good)
	forged.Headers[2].Value = []byte(forger.Sign(forged.Value))
	tampered := f.message(t, good)
	tampered.Value = []byte(string(tampered.Value[:len(tampered.Value)-1]) + " }")
	expired := command(schemas.Target{Kind: schemas.TargetUser, UserID: "u-victim"}, now.Add(-3*time.Hour))
	f.kafka.Produce(t, schemas.TopicRevokeCommands, unsigned, forged, tampered, f.message(t, expired))

	stop := f.start(t, f.config("g-reject"))
	f.rows.Wait(t, "four rejections", func(rows []schemas.AuditRow) bool {
		n := 0
		for _, r := range rows {
			if r.Step == schemas.StepRejected {
				n++
			}
		}
		return n == 4
	})
	if rows, err := f.store.History(context.Background(), audit.Query{Steps: []schemas.Step{schemas.StepRejected}, Limit: 100}); err != nil || len(rows) != 4 {
		t.Fatalf("%d rejections in the store (%v), want 4", len(rows), err)
	}
	if dlq := f.kafka.WaitRecords(t, schemas.TopicDLQ, 3); len(dlq) != 3 {
		t.Fatalf("%d dead letters, want 3", len(dlq))
	}
	if !f.introspect(t, raw) {
		t.Fatal("a rejected command revoked the token")
	}
	for _, m := range f.kafka.Records(t, schemas.TopicDLQ) {
		if headerValue(m, schemas.HeaderDLQReason) == "" {
			t.Errorf("dead letter without a reason: %v", m.Headers)
		}
	}

	// The good command runs once; the same command again is a replay.
	f.kafka.Produce(t, schemas.TopicRevokeCommands, f.message(t, good))
	f.waitStep(t, good.CommandID, schemas.StepConfirmed)
	f.kafka.Produce(t, schemas.TopicRevokeCommands, f.message(t, good))
	f.waitStep(t, good.CommandID, schemas.StepRejected)
	if got := steps(t, f.store, good.CommandID)[schemas.StepConfirmed]; got != 1 {
		t.Fatalf("replayed command executed %d times", got)
	}
	if f.introspect(t, raw) {
		t.Fatal("token still active")
	}
	_ = stop()
}

func headerValue(m kafkax.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// TestRestartAfterCrashLosesNothingAndDuplicatesNothing stops a consumer
// in the middle of a stream, right after a command was audited but before
// its offset was committed, and starts another: every command runs, none
// is audited twice, none is mistaken for a replay.
func TestRestartAfterCrashLosesNothingAndDuplicatesNothing(t *testing.T) {
	for _, backend := range []string{"memory", backends.ChDB, backends.ClickHouse} {
		t.Run(backend, func(t *testing.T) { testRestartAfterCrash(t, openStore(t, backend)) })
	}
}

// openStore opens an audit store of the named backend for one test.
func openStore(t *testing.T, backend string) audit.Store {
	t.Helper()
	cfg := backends.Config{Backend: backend, Table: fmt.Sprintf("svc_%d", time.Now().UnixNano())}
	switch backend {
	case "memory":
		return memstore.New()
	case backends.ChDB:
		cfg.ChDBLibPath = testenv.ChDBLibPath(t)
		cfg.ChDBPath = t.TempDir()
	case backends.ClickHouse:
		cfg.DSN = testenv.ClickHouseDSN(t)
	}
	s, err := backends.Open(context.Background(), cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func testRestartAfterCrash(t *testing.T, store audit.Store) {
	f := newFixture(t, store)
	now := time.Now()
	const users = 40
	var raws []string
	var cmds []schemas.RevokeCommand
	for i := range users {
		u := fmt.Sprintf("u-%02d", i)
		raw, _ := f.api.Issue(t, server.IssueRequest{UserID: u, ClientID: servertest.AppID, Scopes: servertest.AppScopes})
		raws = append(raws, raw)
		c := command(schemas.Target{Kind: schemas.TargetUser, UserID: u, IncludeDownscoped: true}, now)
		cmds = append(cmds, c)
		f.kafka.Produce(t, schemas.TopicRevokeCommands, f.message(t, c))
	}

	// First run: the handler sees the audit trail through a store wrapper
	// that fails every write once it holds 10 rows, as a crash would
	// stop it; the rows already written stay, their offsets may not be
	// committed.
	crashing := &failAfter{Store: store, after: 10}
	cfg := f.config("g-crash")
	cfg.Reader.CommitInterval = time.Hour // no periodic commit: only the shutdown flush
	// One handler slot lets 64 messages wait on the audit writer, so its
	// group commits hold at most 64 of the 80 rows: the crash falls after
	// the first and leaves commands audited whose offsets are not
	// committed, which the second run must recognise.
	cfg.Reader.Concurrency = 1
	reg1 := prometheus.NewRegistry()
	stop := startWithStore(t, f, cfg, crashing, reg1)
	crashing.crash.Wait(t, "the crash", func() bool { return crashing.failed.Load() > 0 })
	_ = stop()

	// Second run on the real store, same group. Rows of the first run's
	// failed append are in the store but were never reported written, and
	// the second run finds their commands done, so the store is looked at.
	reg := prometheus.NewRegistry()
	stop = startWithStore(t, f, f.config("g-crash"), store, reg)
	for _, c := range cmds {
		testenv.Eventually(t, "revocation of "+c.Target.UserID, func() bool { return steps(t, store, c.CommandID)[schemas.StepConfirmed] >= 1 })
	}
	_ = stop()
	for i, c := range cmds {
		s := steps(t, store, c.CommandID)
		if s[schemas.StepConfirmed] != 1 || s[schemas.StepReceived] != 1 || s[schemas.StepRejected] != 0 {
			t.Errorf("%s: steps %v, want one received and one revoked, no rejection", c.Target.UserID, s)
		}
		if f.introspect(t, raws[i]) {
			t.Errorf("%s: token still active", c.Target.UserID)
		}
	}
	// The crash left audited but uncommitted messages, and the retry of
	// the first run or the second run recognised them as done instead of
	// running them again.
	if n := counter(t, reg1, "revoked_consumer_redelivered_total") + counter(t, reg, "revoked_consumer_redelivered_total"); n < 1 {
		t.Errorf("redelivered commands found done: %v, want at least 1", n)
	}
	// The chain the two runs wrote verifies.
	rows, err := store.ChainRows(context.Background(), "consumer-test", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := audit.VerifyChain(rows); err != nil {
		t.Fatalf("chain broken after restart: %v", err)
	}
}

// failAfter is an audit store standing in for a process that dies right
// after its audit rows became durable and before the reader committed
// their offsets: the append that takes the store past after rows is
// stored but reported as failed, and every later append fails without
// storing anything. (Counting rows, not appends: group commits put many
// commands' rows in one append.)
type failAfter struct {
	audit.Store
	after  int32
	n      atomic.Int32
	failed atomic.Int32
	crash  testenv.Notifier // told of each failure
}

func (s *failAfter) Append(ctx context.Context, rows []schemas.AuditRow) error {
	if s.failed.Load() > 0 {
		s.fail()
		return errors.New("simulated crash")
	}
	n := s.n.Add(int32(len(rows)))
	if err := s.Store.Append(ctx, rows); err != nil {
		return err
	}
	if n <= s.after {
		return nil
	}
	s.fail()
	return errors.New("simulated crash")
}

func (s *failAfter) fail() {
	s.failed.Add(1)
	s.crash.Notify()
}

func counter(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			var sum float64
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
			return sum
		}
	}
	return 0
}

func startWithStore(t *testing.T, f *fixture, cfg service.Config, store audit.Store, reg prometheus.Registerer) func() error {
	t.Helper()
	_, stop := f.run(t, cfg, service.Deps{Store: store, Registry: reg})
	return stop
}

// The audit writer's group commit goes once it holds as many rows as the
// reader lets messages wait on it, so a reader at its bound never waits
// out the commit delay; it never grows past the Writer's default cap.
func TestAuditWriterConfigMatchesTheReadersBound(t *testing.T) {
	for _, concurrency := range []int{1, 8, 128, 1024} {
		cfg := service.DefaultConfig()
		cfg.Reader.Concurrency = concurrency
		wc := service.AuditWriterConfig(cfg, "c", nil)
		want := min(audit.DefaultMaxBatchRows, cfg.Reader.MaxLater())
		if wc.MaxBatchRows != want || wc.MaxBatchRows > cfg.Reader.MaxLater() {
			t.Errorf("concurrency %d: batches of %d rows, the reader lets %d messages wait", concurrency, wc.MaxBatchRows, cfg.Reader.MaxLater())
		}
		if wc.WriteDelay >= wc.MaxDelay {
			t.Errorf("a handler that waits for its rows waits %s, as long as enqueued rows (%s)", wc.WriteDelay, wc.MaxDelay)
		}
	}
}

// gatedAppends is a store whose Append waits until open is closed.
type gatedAppends struct {
	audit.Store
	open chan struct{}
}

func (g gatedAppends) Append(ctx context.Context, rows []schemas.AuditRow) error {
	select {
	case <-g.open:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.Store.Append(ctx, rows)
}

// TestRowsWithoutRevocationDoNotHoldTheLane: a notify and a dry run
// revoke nothing, an expired command is refused, and their rows, like a
// revocation's, become durable after their lane has gone on. With the
// store holding every append, a revocation queued behind them on the same
// lane (same user, one key lane) is carried out; the rows of all four land
// once the store takes them.
func TestRowsWithoutRevocationDoNotHoldTheLane(t *testing.T) {
	store := gatedAppends{Store: memstore.New(), open: make(chan struct{})}
	f := newFixture(t, store)
	now := time.Now()
	raw, id := f.api.Issue(t, server.IssueRequest{UserID: "u-lane", ClientID: servertest.AppID, Scopes: servertest.AppScopes})
	target := schemas.Target{Kind: schemas.TargetToken, UserID: "u-lane", TokenID: id}
	notify := command(target, now)
	notify.CommandID, notify.Action = "cmd_notify", schemas.ActionNotify
	dry := command(target, now)
	dry.CommandID, dry.Mode = "cmd_dry", schemas.ModeDryRun
	expired := command(target, now.Add(-2*time.Hour))
	expired.CommandID, expired.ExpiresAt = "cmd_expired", now.Add(-time.Hour)
	revoke := command(target, now)
	revoke.CommandID = "cmd_revoke"
	for _, c := range []schemas.RevokeCommand{notify, dry, expired, revoke} {
		f.kafka.Produce(t, schemas.TopicRevokeCommands, f.message(t, c))
	}
	cfg := f.config("g-lane")
	cfg.Reader.KeyConcurrency = 1
	stop := f.start(t, cfg)
	// The token API is asked directly: no audit row can be durable yet.
	testenv.Eventually(t, "the revocation behind a notify, a dry run and an expired command, while their rows wait for the store",
		func() bool { return !f.introspect(t, raw) })
	if n := len(f.rows.All()); n != 0 {
		t.Fatalf("%d rows observed while the store held every append", n)
	}
	close(store.open)
	f.waitStep(t, notify.CommandID, schemas.StepNotified)
	f.waitStep(t, dry.CommandID, schemas.StepDryRun)
	f.waitStep(t, expired.CommandID, schemas.StepRejected)
	f.waitStep(t, revoke.CommandID, schemas.StepConfirmed)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
