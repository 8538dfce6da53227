package bench

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/consumer/audit/backends"
	"github.com/revoked-dev/revoked/consumer/audit/spool"
	"github.com/revoked-dev/revoked/consumer/idp"
	consumer "github.com/revoked-dev/revoked/consumer/service"
	tokenapi "github.com/revoked-dev/revoked/deployments/tokenapi/server"
	"github.com/revoked-dev/revoked/internal/config"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/progress"
	"github.com/revoked-dev/revoked/producer/simulate"
	"github.com/revoked-dev/revoked/schemas"
)

// Clients of the benchmark's token API.
const (
	revokerID = "revoker"
	appID     = "web-app"
)

var appScopes = []string{"files.read", "files.write", "profile"}

// tokenAPI is a reference token API on a free loopback port.
type tokenAPI struct {
	url           string
	admin         config.Secret
	revokerSecret config.Secret
	stop          func()
}

func (r *runner) startTokenAPI(ctx context.Context) (*tokenAPI, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("token API: %w", err)
	}
	t := &tokenAPI{url: "http://" + ln.Addr().String(), admin: config.NewSecret(randomSecret()), revokerSecret: config.NewSecret(randomSecret())}
	api, err := tokenapi.New(tokenapi.Config{
		Issuer: t.url,
		Clients: []tokenapi.ClientConfig{
			{ID: revokerID, Secret: t.revokerSecret, Grants: []string{tokenapi.GrantClientCredentials}, RevokeAny: true, IntrospectAny: true},
			{ID: appID, Secret: config.NewSecret(randomSecret()), Grants: []string{tokenapi.GrantClientCredentials}, Scopes: appScopes},
		},
		AdminToken: t.admin,
	}, r.logger("tokenapi"))
	if err != nil {
		ln.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := api.Serve(ctx, ln); err != nil && !errors.Is(err, context.Canceled) {
			r.log.Error().Err(err).Msg("token API stopped")
		}
	}()
	t.stop = func() { cancel(); <-done }
	return t, nil
}

// issue issues n tokens, one per user prefix-i, through the admin API.
func (t *tokenAPI) issue(ctx context.Context, prefix string, n int, bar *progress.Bar) ([]string, error) {
	icfg := simulate.DefaultHTTPIssuerConfig()
	icfg.URL = t.url
	icfg.AdminToken = t.admin
	iss, err := simulate.NewHTTPIssuer(icfg, &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}})
	if err != nil {
		return nil, err
	}
	raws := make([]string, n)
	jobs := make(chan int)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := range jobs {
				user := fmt.Sprintf("%s-%06d", prefix, i)
				raw, _, err := iss.Issue(ctx, user, appID, "s-"+user, appScopes)
				if err != nil {
					report(errs, fmt.Errorf("issuing a token for %s: %w", user, err))
					continue
				}
				raws[i] = raw
				bar.Add(1)
			}
		})
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	select {
	case err := <-errs:
		return nil, err
	default:
	}
	return raws, nil
}

// consumer revokes cfg.Commands tokens through the consumer service and as
// many others with a plain net/http client.
func (r *runner) consumer(ctx context.Context) (Row, error) {
	b, err := r.startBroker(ctx)
	if err != nil {
		return Row{}, err
	}
	defer b.Close()
	brokers := []string{b.Addr()}
	api, err := r.startTokenAPI(ctx)
	if err != nil {
		return Row{}, err
	}
	defer api.stop()

	n := r.cfg.Commands
	bar := progress.New(r.progress, progress.Config{Label: "  issuing tokens", Total: int64(2 * n), Unit: "tokens"})
	forConsumer, err := api.issue(ctx, "bench-consumer", n, bar)
	if err != nil {
		bar.Finish()
		return Row{}, err
	}
	forPlain, err := api.issue(ctx, "bench-plain", n, bar)
	bar.Finish()
	if err != nil {
		return Row{}, err
	}

	ccfg := consumer.DefaultConfig()
	project, err := r.consumerRevoke(ctx, brokers, api, ccfg, forConsumer)
	if err != nil {
		return Row{}, fmt.Errorf("consumer: %w", err)
	}
	var plain float64
	err = measured(ctx, PartConsumer, sideBaseline, func(ctx context.Context) (err error) {
		plain, err = r.plainRevoke(ctx, api, forPlain, ccfg.Reader.Concurrency)
		return err
	})
	if err != nil {
		return Row{}, fmt.Errorf("plain client: %w", err)
	}
	return Row{
		Part: "consumer", Unit: "revocations/s", Project: project, Baseline: plain,
		Against: fmt.Sprintf("net/http RFC 7009 + introspection, %d in flight", ccfg.Reader.Concurrency), Target: TargetConsumer,
	}, nil
}

// openStore opens and migrates the audit store the configuration names,
// its chDB data (and spool) under dir, behind a spool when the
// configuration has a spool directory, as the consumer command does.
func (r *runner) openStore(ctx context.Context, dir string, reg prometheus.Registerer) (audit.Store, error) {
	acfg := r.cfg.Audit
	if acfg.Backend == backends.ChDB {
		acfg.ChDBPath = filepath.Join(dir, "chdb")
	}
	log := r.logger("audit")
	store, err := backends.Open(ctx, acfg, log)
	if err != nil {
		return nil, fmt.Errorf("opening the audit store: %w", err)
	}
	if err := store.Migrate(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("migrating the audit store: %w", err), store.Close())
	}
	if acfg.SpoolDir == "" {
		return store, nil
	}
	sp, err := spool.Open(filepath.Join(acfg.SpoolDir, filepath.Base(dir)), store, spool.Options{Registerer: reg}, log)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("opening the audit spool: %w", err), store.Close())
	}
	return sp, nil
}

// consumerRevoke publishes one signed command per token (the raw token
// sealed to the consumer, as the detector sends it for a token it saw)
// and runs the consumer service until every command is confirmed. It
// returns revocations per second from the first audit row to the last
// confirmation.
func (r *runner) consumerRevoke(ctx context.Context, brokers []string, api *tokenAPI, ccfg consumer.Config, raws []string) (float64, error) {
	signer, err := newSigner()
	if err != nil {
		return 0, err
	}
	seal, err := schemas.GenerateSealKey()
	if err != nil {
		return 0, err
	}
	if err := r.publishCommands(ctx, brokers, signer, seal, raws); err != nil {
		return 0, err
	}

	reg := prometheus.NewRegistry()
	store, err := r.openStore(ctx, filepath.Join(r.root, PartConsumer), reg)
	if err != nil {
		return 0, err
	}
	defer store.Close()
	client, err := idp.New(idp.Config{
		Issuer: api.url, ClientID: revokerID, ClientSecret: api.revokerSecret,
		AuthMethod: idp.AuthClientSecretBasic, Timeout: 10 * time.Second,
		Admin: idp.ReferencePreset(api.url, api.admin),
	}, consumer.NewHTTPClient(ccfg.Reader.Concurrency), r.logger("idp"), idp.WithRegisterer(reg))
	if err != nil {
		return 0, err
	}
	checkpoints, err := newSigner()
	if err != nil {
		return 0, err
	}

	ccfg.Reader.Brokers = brokers
	ccfg.Reader.GroupID = "revoked-bench-consumer"
	ccfg.Reader.StartOffset = kafkax.StartFirst
	ccfg.Actor = fmt.Sprintf("consumer-bench-%d", time.Now().UnixNano())
	var confirmed, other atomic.Int64
	var span spanClock
	var otherStep atomic.Value
	con, err := consumer.New(ctx, ccfg, consumer.Deps{
		Store: store, TokenAPI: client, Keyring: schemas.NewKeyring(signer.Public()), Seal: seal,
		Registry: reg, CheckpointSigner: checkpoints,
		Observe: func(row schemas.AuditRow) {
			switch {
			case row.Step == schemas.StepConfirmed:
				confirmed.Add(1)
			case row.Step.Terminal():
				otherStep.Store(row.Step)
				other.Add(1)
			default:
				return
			}
			span.done()
		},
	}, r.logger("consumer"))
	if err != nil {
		return 0, err
	}
	bar := progress.New(r.progress, progress.Config{Label: "  consumer", Total: int64(len(raws)), Unit: "revocations"})
	defer bar.Finish()
	// The clock runs from the first command done to the last (span), so
	// joining the group is not counted; runUntil's samples, 100 ms apart,
	// would be most of a run of a few seconds.
	err = measured(ctx, PartConsumer, sideProject, func(ctx context.Context) error {
		_, err := runUntil(ctx, con.Run, int64(len(raws)), func() int64 { return confirmed.Load() + other.Load() }, bar)
		return err
	})
	if err != nil {
		return 0, err
	}
	got := span.rate()
	if n := other.Load(); n > 0 {
		return 0, fmt.Errorf("%d of %d commands ended other than confirmed (e.g. %s)", n, len(raws), otherStep.Load())
	}
	return got, nil
}

// publishCommands writes one signed revoke command per raw token to
// revoke.commands, the tokens sealed by one Sealer as one producer run
// seals them.
func (r *runner) publishCommands(ctx context.Context, brokers []string, signer *schemas.Signer, seal *schemas.SealKey, raws []string) error {
	sealer, err := schemas.NewSealer(seal.Public)
	if err != nil {
		return err
	}
	wcfg := kafkax.DefaultWriterConfig()
	wcfg.Brokers = brokers
	wcfg.Topic = schemas.TopicRevokeCommands
	wcfg.ClientID = "revoked-bench"
	wcfg.BatchSize = 1000
	w, err := kafkax.NewWriter(wcfg, r.logger("bench-writer"))
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	msgs := make([]kafkax.Message, 0, len(raws))
	for i, raw := range raws {
		sealed, err := sealer.Seal(raw)
		if err != nil {
			return errors.Join(err, w.Close())
		}
		cmd := benchCommand(i, schemas.Target{
			Kind: schemas.TargetToken, UserID: fmt.Sprintf("bench-consumer-%06d", i),
			TokenID: schemas.Fingerprint(raw), SealedToken: sealed,
		}, now)
		m, err := signedMessage(signer, cmd)
		if err != nil {
			return errors.Join(err, w.Close())
		}
		msgs = append(msgs, m)
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		return errors.Join(err, w.Close())
	}
	return w.Close()
}

// benchCommand is the command the detector sends for a replayed token.
func benchCommand(i int, target schemas.Target, now time.Time) schemas.RevokeCommand {
	reason := schemas.Reason{
		RuleID: "token_replay", RuleVersion: 1, Severity: schemas.SeverityHigh,
		Summary:        "token used from two networks 900 km apart within 4 minutes",
		Evidence:       []string{fmt.Sprintf("ev-%06d-a", i), fmt.Sprintf("ev-%06d-b", i)},
		FirstEventTime: now.Add(-4 * time.Minute), LastEventTime: now, DetectedAt: now,
	}
	return schemas.RevokeCommand{
		CommandID: schemas.DetectionCommandID(reason.RuleID, reason.RuleVersion, target, reason.Evidence),
		IssuedAt:  now, ExpiresAt: now.Add(time.Hour), Issuer: "detector",
		Target: target, Action: schemas.ActionRevoke, Mode: schemas.ModeEnforce, Reason: reason,
	}
}

// signedMessage encodes cmd as the detector publishes it.
func signedMessage(signer *schemas.Signer, cmd schemas.RevokeCommand) (kafkax.Message, error) {
	return kafkax.SignedCommand(signer, "", &cmd)
}

// plainRevoke revokes every raw token with RFC 7009 and introspects it
// afterwards, from workers goroutines over one net/http client, and
// returns revocations per second. A revocation that did not take (the
// introspection says active) is an error.
func (r *runner) plainRevoke(ctx context.Context, api *tokenAPI, raws []string, workers int) (float64, error) {
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}, Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	secret := api.revokerSecret.Reveal()
	post := func(path string, form url.Values) (string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, api.url+path, strings.NewReader(form.Encode()))
		if err != nil {
			return "", err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(revokerID, secret)
		resp, err := hc.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return "", err
		}
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("%s: status %d", path, resp.StatusCode)
		}
		return string(body), nil
	}
	bar := progress.New(r.progress, progress.Config{Label: "  plain client", Total: int64(len(raws)), Unit: "revocations"})
	defer bar.Finish()
	jobs := make(chan string)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for raw := range jobs {
				if _, err := post(tokenapi.PathRevoke, url.Values{"token": {raw}, "token_type_hint": {"access_token"}}); err != nil {
					report(errs, err)
					continue
				}
				body, err := post(tokenapi.PathIntrospect, url.Values{"token": {raw}})
				if err != nil {
					report(errs, err)
					continue
				}
				var in struct {
					Active bool `json:"active"`
				}
				if err := json.Unmarshal([]byte(body), &in); err != nil || in.Active {
					report(errs, fmt.Errorf("introspection after revocation: %q", body))
					continue
				}
				bar.Add(1)
			}
		})
	}
	for _, raw := range raws {
		jobs <- raw
	}
	close(jobs)
	wg.Wait()
	elapsed := time.Since(start)
	select {
	case err := <-errs:
		return 0, err
	default:
	}
	return rate(int64(len(raws)), elapsed), nil
}

// report keeps the first error of several goroutines.
func report(errs chan<- error, err error) {
	select {
	case errs <- err:
	default:
	}
}

func randomSecret() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// spanClock times a run from its first finished item to its last.
type spanClock struct {
	mu          sync.Mutex
	n           int64
	first, last time.Time
}

// done records one finished item.
func (c *spanClock) done() {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == 0 {
		c.first = now
	}
	c.n++
	c.last = now
}

// rate is the items finished per second from the first to the last.
func (c *spanClock) rate() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return rate(c.n, c.last.Sub(c.first))
}
