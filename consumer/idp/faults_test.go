package idp_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/idp"
	"github.com/revoked-dev/revoked/internal/config"
)

func circuitState(t *testing.T, reg *prometheus.Registry, endpoint string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "revoked_idp_circuit_state" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "endpoint" && l.GetValue() == endpoint {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no circuit state for %s", endpoint)
	return -1
}

func faultClient(t *testing.T, url string, reg *prometheus.Registry, mutate func(*idp.Config), opts ...idp.Option) *idp.Client {
	t.Helper()
	cfg := idp.Config{RevocationURL: url + "/revoke", IntrospectionURL: url + "/introspect", ClientID: "c"}
	cfg.ClientSecret = config.NewSecret("s")
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := idp.New(cfg, nil, zerolog.Nop(), append([]idp.Option{idp.WithRegisterer(reg)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCircuitBreaker(t *testing.T) {
	var status atomic.Int32
	status.Store(http.StatusServiceUnavailable)
	var hits atomic.Int32
	_, ts := startScripted(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/introspect" {
			fmt.Fprint(w, `{"active":false}`)
			return
		}
		hits.Add(1)
		w.WriteHeader(int(status.Load()))
	})
	reg := prometheus.NewRegistry()
	const cooldown = 200 * time.Millisecond
	clk := clockwork.NewFakeClock()
	c := faultClient(t, ts.URL, reg, func(c *idp.Config) {
		c.Breaker = idp.BreakerConfig{Failures: 3, Cooldown: cooldown}
	}, idp.WithClock(clk))

	for i := range 3 {
		err := c.RevokeToken(t.Context(), "tok", "")
		if !errors.Is(err, idp.ErrUnavailable) {
			t.Fatalf("call %d: %v", i, err)
		}
		if retry, _ := idp.Retryable(err); !retry {
			t.Fatalf("503 not retryable")
		}
	}
	if got := circuitState(t, reg, "revoke"); got != 1 {
		t.Fatalf("state %v after 3 failures, want open", got)
	}
	// Open: fail fast, no request, retryable after the rest of the cool-down.
	err := c.RevokeToken(t.Context(), "tok", "")
	var ce *idp.CircuitOpenError
	if !errors.As(err, &ce) || !errors.Is(err, idp.ErrCircuitOpen) || ce.Op != "revoke" {
		t.Fatalf("err = %v, want CircuitOpenError", err)
	}
	if retry, after := idp.Retryable(err); !retry || after <= 0 || after > cooldown {
		t.Errorf("Retryable = %v, %s; want true, (0, %s]", retry, after, cooldown)
	}
	if hits.Load() != 3 {
		t.Errorf("%d requests, want 3", hits.Load())
	}
	// Other endpoints have their own breaker.
	if _, err := c.Introspect(t.Context(), "tok"); err != nil {
		t.Errorf("introspect while revoke is open: %v", err)
	}
	if got := circuitState(t, reg, "introspect"); got != 0 {
		t.Errorf("introspect state %v", got)
	}

	// After the cool-down a failing probe opens it again for a full cool-down.
	clk.Advance(cooldown + 20*time.Millisecond)
	if err := c.RevokeToken(t.Context(), "tok", ""); !errors.Is(err, idp.ErrUnavailable) {
		t.Fatalf("probe: %v", err)
	}
	if err := c.RevokeToken(t.Context(), "tok", ""); !errors.As(err, &ce) || ce.Remaining < cooldown/2 {
		t.Fatalf("after failed probe: %v", err)
	}
	if got := circuitState(t, reg, "revoke"); got != 1 {
		t.Errorf("state %v after failed probe", got)
	}

	// A successful probe closes it.
	status.Store(http.StatusOK)
	clk.Advance(cooldown + 20*time.Millisecond)
	for range 3 {
		if err := c.RevokeToken(t.Context(), "tok", ""); err != nil {
			t.Fatal(err)
		}
	}
	if got := circuitState(t, reg, "revoke"); got != 0 {
		t.Errorf("state %v after successful probe", got)
	}
}

// Only one probe goes out while half-open; the others fail fast.
func TestCircuitHalfOpenSingleProbe(t *testing.T) {
	var fail atomic.Bool
	fail.Store(true)
	release := make(chan struct{})
	entered := make(chan struct{}, 10)
	_, ts := startScripted(t, func(w http.ResponseWriter, r *http.Request) {
		if fail.Load() {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		entered <- struct{}{}
		<-release
	})
	reg := prometheus.NewRegistry()
	clk := clockwork.NewFakeClock()
	c := faultClient(t, ts.URL, reg, func(c *idp.Config) {
		c.Breaker = idp.BreakerConfig{Failures: 1, Cooldown: 50 * time.Millisecond}
	}, idp.WithClock(clk))
	if err := c.RevokeToken(t.Context(), "tok", ""); !errors.Is(err, idp.ErrServerError) {
		t.Fatal(err)
	}
	fail.Store(false)
	clk.Advance(70 * time.Millisecond)
	probe := make(chan error, 1)
	go func() { probe <- c.RevokeToken(context.Background(), "tok", "") }()
	<-entered
	if got := circuitState(t, reg, "revoke"); got != 2 {
		t.Errorf("state %v during probe, want half-open", got)
	}
	err := c.RevokeToken(t.Context(), "tok", "")
	var ce *idp.CircuitOpenError
	if !errors.As(err, &ce) || ce.Remaining != 0 {
		t.Errorf("second call during probe: %v", err)
	}
	close(release)
	if err := <-probe; err != nil {
		t.Fatal(err)
	}
	if got := circuitState(t, reg, "revoke"); got != 0 {
		t.Errorf("state %v after probe", got)
	}
}

// Terminal answers and rate limiting do not open the circuit; their
// classification stays as it was.
func TestCircuitIgnoresTerminalAndRateLimit(t *testing.T) {
	answers := []struct {
		status int
		body   string
		retry  bool
	}{
		{400, `{"error":"unsupported_token_type"}`, false},
		{400, `{"error":"invalid_request"}`, false},
		{401, `{"error":"invalid_client"}`, false},
		{403, ``, false},
		{404, ``, false},
		{429, ``, true},
	}
	for _, a := range answers {
		t.Run(fmt.Sprint(a.status, a.body), func(t *testing.T) {
			var hits atomic.Int32
			_, ts := startScripted(t, func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				if a.status == 429 {
					w.Header().Set("Retry-After", "2")
				}
				w.WriteHeader(a.status)
				fmt.Fprint(w, a.body)
			})
			reg := prometheus.NewRegistry()
			c := faultClient(t, ts.URL, reg, func(c *idp.Config) { c.Breaker.Failures = 2 })
			for range 5 {
				err := c.RevokeToken(t.Context(), "tok", "")
				var he *idp.HTTPError
				if !errors.As(err, &he) || he.Status != a.status {
					t.Fatalf("err = %v", err)
				}
				retry, after := idp.Retryable(err)
				if retry != a.retry || (a.status == 429 && after != 2*time.Second) {
					t.Errorf("Retryable = %v, %s", retry, after)
				}
			}
			if hits.Load() != 5 || circuitState(t, reg, "revoke") != 0 {
				t.Errorf("%d requests, state %v", hits.Load(), circuitState(t, reg, "revoke"))
			}
		})
	}
}

// The rate limit is shared by all calls of a client. The clock moves only
// when the test moves it, so the pace is exact.
func TestRateLimitShared(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second) // a hang fails instead of stalling the run
	defer cancel()
	clk := clockwork.NewFakeClock()
	arrived := make(chan time.Time, 6)
	_, ts := startScripted(t, func(w http.ResponseWriter, r *http.Request) { arrived <- clk.Now() })
	c := scriptedClient(t, ts, func(c *idp.Config) { c.RateLimit = idp.RateLimitConfig{PerSecond: 20, Burst: 2} }, idp.WithClock(clk))
	next := func() time.Time {
		t.Helper()
		select {
		case at := <-arrived:
			return at
		case <-ctx.Done():
			t.Fatal("a call never reached the server")
			return time.Time{}
		}
	}
	start := clk.Now()
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			var err error
			if i%2 == 0 {
				err = c.RevokeToken(t.Context(), "tok", "")
			} else {
				_, err = c.RevokeSubject(t.Context(), "alice")
			}
			if err != nil {
				t.Error(err)
			}
		})
	}
	var last time.Time
	for range 2 {
		last = next()
	}
	// The other four wait for the shared limit, one more every 50 ms.
	for waiting := 4; waiting > 0; waiting-- {
		if err := clk.BlockUntilContext(ctx, waiting); err != nil {
			t.Fatalf("%d calls should wait for the limit: %v", waiting, err)
		}
		clk.Advance(50 * time.Millisecond)
		last = next()
	}
	wg.Wait()
	// 2 at once, then 4 more at 20/s: at least 200ms.
	if d := last.Sub(start); d < 180*time.Millisecond {
		t.Errorf("6 calls took %s, want >= 200ms", d)
	}
}

// Waiting for the rate limit ends with ctx, before any request. The clock
// never moves: the wait ends with ctx's deadline, not with a token.
func TestRateLimitHonoursContext(t *testing.T) {
	var hits atomic.Int32
	_, ts := startScripted(t, func(w http.ResponseWriter, r *http.Request) { hits.Add(1) })
	clk := clockwork.NewFakeClock()
	c := scriptedClient(t, ts, func(c *idp.Config) { c.RateLimit = idp.RateLimitConfig{PerSecond: 0.5} }, idp.WithClock(clk))
	if err := c.RevokeToken(t.Context(), "tok", ""); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	start := clk.Now()
	err := c.RevokeToken(ctx, "tok", "")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if retry, _ := idp.Retryable(err); retry {
		t.Error("ended context retryable")
	}
	if d := clk.Since(start); d > time.Second || hits.Load() != 1 {
		t.Errorf("took %s, %d requests", d, hits.Load())
	}
}

func TestFaultConfigValidate(t *testing.T) {
	err := idp.Config{RevocationURL: "https://idp.example/r", ClientID: "c", ClientSecret: config.NewSecret("s"),
		RateLimit: idp.RateLimitConfig{PerSecond: -1, Burst: -1}, Breaker: idp.BreakerConfig{Cooldown: -time.Second}}.Validate()
	for _, want := range []string{"rate_limit.per_second", "rate_limit.burst", "breaker.cooldown"} {
		if err == nil || !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
}

// A negative failure count disables the breaker.
func TestCircuitBreakerDisabled(t *testing.T) {
	var hits atomic.Int32
	_, ts := startScripted(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusBadGateway)
	})
	c := faultClient(t, ts.URL, prometheus.NewRegistry(), func(c *idp.Config) { c.Breaker.Failures = -1 })
	for range 10 {
		if err := c.RevokeToken(t.Context(), "tok", ""); !errors.Is(err, idp.ErrServerError) {
			t.Fatal(err)
		}
	}
	if hits.Load() != 10 {
		t.Errorf("%d requests, want 10", hits.Load())
	}
}

// Two clients on one registry share the gauge instead of failing.
func TestCircuitGaugeSharedRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	faultClient(t, "https://a.example", reg, nil)
	faultClient(t, "https://b.example", reg, nil)
}

// A TLS failure stays terminal however often it happens: it does not open
// the circuit, which would make it retryable.
func TestCircuitIgnoresCertificateErrors(t *testing.T) {
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	ts.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshake errors are the point
	ts.StartTLS()
	t.Cleanup(ts.Close)
	reg := prometheus.NewRegistry()
	c := faultClient(t, ts.URL, reg, func(c *idp.Config) { c.Breaker.Failures = 1 })
	for range 3 {
		err := c.RevokeToken(t.Context(), "tok", "")
		if retry, _ := idp.Retryable(err); err == nil || retry || errors.Is(err, idp.ErrCircuitOpen) {
			t.Fatalf("err = %v, retry %v", err, retry)
		}
	}
	if got := circuitState(t, reg, "revoke"); got != 0 {
		t.Errorf("state %v", got)
	}
}
