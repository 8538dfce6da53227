package service_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/consumer/audit/backends"
	"github.com/revoked-dev/revoked/consumer/audit/memstore"
	"github.com/revoked-dev/revoked/consumer/service"
	"github.com/revoked-dev/revoked/deployments/tokenapi/server"
	"github.com/revoked-dev/revoked/deployments/tokenapi/server/servertest"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/testenv"
	"github.com/revoked-dev/revoked/schemas"
)

// BenchmarkConsumerVsPlainClient measures revocations per second through
// the whole consumer (kfake broker, key lanes, signature check, unsealing,
// replay check and audit rows, RFC 7009 revocation and an introspection
// to prove it) against a plain net/http client posting the
// same RFC 7009 revocations to the same reference token API, with as many
// requests in flight as the consumer may have handlers. b.N is the number
// of revocations of each side; run it with a fixed count, e.g.
// -benchtime=2000x. The audit store is memstore, and chDB too when
// CHDB_LIB_PATH names libchdb (store=chdb; a fresh data directory per run).
func BenchmarkConsumerVsPlainClient(b *testing.B) {
	stores := map[string]func(testing.TB) audit.Store{"mem": func(testing.TB) audit.Store { return memstore.New() }}
	if os.Getenv("CHDB_LIB_PATH") != "" {
		stores["chdb"] = openChDB
	}
	for _, name := range []string{"mem", "chdb"} {
		open, ok := stores[name]
		if !ok {
			continue
		}
		for _, lanes := range []int{1, 8} {
			b.Run(fmt.Sprintf("store=%s/lanes=%d", name, lanes), func(b *testing.B) { benchConsumer(b, open(b), lanes) })
		}
	}
}

// openChDB opens a chDB store in a new directory, closed at cleanup.
func openChDB(tb testing.TB) audit.Store {
	tb.Helper()
	s, err := backends.Open(context.Background(), backends.Config{Backend: backends.ChDB, ChDBPath: tb.TempDir(), ChDBLibPath: testenv.ChDBLibPath(tb)}, zerolog.Nop())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

func benchConsumer(b *testing.B, store audit.Store, lanes int) {
	const partitions, concurrency = 4, 32
	f := newFixture(b, store)
	n := b.N
	issue := func(prefix string) []string {
		raws := make([]string, n)
		var wg sync.WaitGroup
		sem := make(chan struct{}, 16)
		for i := range n {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				raws[i], _ = f.api.Issue(b, server.IssueRequest{UserID: fmt.Sprintf("%s-%d", prefix, i), ClientID: servertest.AppID, Scopes: servertest.AppScopes})
			})
		}
		wg.Wait()
		return raws
	}

	// The consumer: n sealed-token commands, one per user.
	raws := issue("bench-consumer")
	now := time.Now()
	msgs := make([]kafkax.Message, 0, n)
	for i, raw := range raws {
		sealed, err := schemas.SealToken(raw, f.seal.Public)
		if err != nil {
			b.Fatal(err)
		}
		c := command(schemas.Target{Kind: schemas.TargetToken, UserID: fmt.Sprintf("bench-consumer-%d", i), SealedToken: sealed}, now)
		c.CommandID = fmt.Sprintf("bench-%d-%d", lanes, i)
		msgs = append(msgs, f.message(b, c))
	}
	f.kafka.Produce(b, schemas.TopicRevokeCommands, msgs...)
	var first atomic.Int64
	var revoked atomic.Int64
	allDone := make(chan struct{})
	cfg := f.config(fmt.Sprintf("g-bench-%d", lanes))
	cfg.Reader.KeyConcurrency = lanes
	cfg.Reader.Concurrency = concurrency
	cfg.Reader.QueueSize = 256
	cfg.Reader.CommitInterval = 100 * time.Millisecond
	b.ResetTimer()
	stop := f.startObserved(b, cfg, func(r schemas.AuditRow) {
		first.CompareAndSwap(0, time.Now().UnixNano())
		if r.Step == schemas.StepConfirmed && revoked.Add(1) == int64(n) {
			close(allDone)
		}
	})
	select {
	case <-allDone:
	case <-time.After(5 * time.Minute):
		b.Fatalf("only %d of %d revoked", revoked.Load(), n)
	}
	consumerSecs := time.Since(time.Unix(0, first.Load())).Seconds()
	b.StopTimer()
	_ = stop()

	// The plain client: the same number of RFC 7009 revocations, alone and
	// each followed by the introspection the consumer makes to prove it.
	plainRate := plainClient(b, f, issue("bench-plain"), concurrency, false)
	provenRate := plainClient(b, f, issue("bench-proven"), concurrency, true)
	consumerRate := float64(n) / consumerSecs
	b.ReportMetric(consumerRate, "consumer_rev/s")
	b.ReportMetric(plainRate, "plain_rev/s")
	b.ReportMetric(provenRate, "plain+introspect_rev/s")
	b.ReportMetric(consumerRate/plainRate, "ratio")
	b.Logf("n=%d partitions=%d lanes=%d: consumer %.0f rev/s; plain RFC 7009 client %.0f rev/s (ratio %.2f); plain client with an introspection each %.0f rev/s (ratio %.2f)",
		n, partitions, lanes, consumerRate, plainRate, consumerRate/plainRate, provenRate, consumerRate/provenRate)
}

// plainClient revokes raws with RFC 7009 from workers goroutines over
// net/http (client_secret_basic), introspecting each afterwards when
// prove, and returns the revocations per second.
func plainClient(b *testing.B, f *fixture, raws []string, workers int, prove bool) float64 {
	b.Helper()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}, Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	post := func(path string, form url.Values) bool {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, f.api.Issuer+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(servertest.RevokerID, servertest.RevokerSecret)
		resp, err := hc.Do(req)
		if err != nil {
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	jobs := make(chan string)
	var wg sync.WaitGroup
	var failed atomic.Int64
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for raw := range jobs {
				if !post(server.PathRevoke, url.Values{"token": {raw}, "token_type_hint": {"access_token"}}) {
					failed.Add(1)
				}
				if prove && !post(server.PathIntrospect, url.Values{"token": {raw}}) {
					failed.Add(1)
				}
			}
		})
	}
	for _, raw := range raws {
		jobs <- raw
	}
	close(jobs)
	wg.Wait()
	secs := time.Since(start).Seconds()
	if failed.Load() > 0 {
		b.Fatalf("%d plain requests failed", failed.Load())
	}
	return float64(len(raws)) / secs
}

// startObserved runs a consumer whose every audit row observe sees.
func (f *fixture) startObserved(tb testing.TB, cfg service.Config, observe func(schemas.AuditRow)) func() error {
	tb.Helper()
	_, stop := f.run(tb, cfg, service.Deps{Observe: observe})
	return stop
}
