package idp

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/revoked-dev/revoked/internal/pace"
)

// Defaults of BreakerConfig.
const (
	DefaultBreakerFailures = 5
	DefaultBreakerCooldown = 30 * time.Second
)

// ErrCircuitOpen matches a *CircuitOpenError.
var ErrCircuitOpen = errors.New("idp: circuit open")

// CircuitOpenError is returned without a request while the circuit breaker
// of an endpoint is open (or half-open with its one probe in flight).
// Retryable reports it as retryable after Remaining.
type CircuitOpenError struct {
	// Op is the endpoint's call ("revoke", "revoke_subject" ...).
	Op string
	// Remaining is the rest of the cool-down; zero in half-open state.
	Remaining time.Duration
}

func (e *CircuitOpenError) Error() string {
	return fmt.Sprintf("idp: %s: circuit open, next attempt in %s", e.Op, e.Remaining)
}

// Unwrap returns ErrCircuitOpen.
func (e *CircuitOpenError) Unwrap() error { return ErrCircuitOpen }

// RateLimitConfig is a token bucket shared by every call of one Client
// (discovery, OAuth endpoints, admin calls and the step-up hook), so the
// client stays under the provider's quota whatever mix of calls it makes.
type RateLimitConfig struct {
	// PerSecond is the sustained rate; zero means unlimited.
	PerSecond float64 `flag:"per-second" env:"PER_SECOND" yaml:"per_second" usage:"requests per second to the token API (0: unlimited)"`
	// Burst is how many requests may go at once after a quiet spell
	// (default: PerSecond rounded up, at least 1).
	Burst int `flag:"burst" env:"BURST" yaml:"burst" usage:"request burst to the token API (default: per-second rounded up)"`
}

// BreakerConfig configures the circuit breaker of each endpoint.
type BreakerConfig struct {
	// Failures is how many consecutive transient failures (5xx, 408,
	// timeouts, transport errors) open the circuit (default
	// DefaultBreakerFailures; negative disables the breaker).
	Failures int `flag:"failures" env:"FAILURES" yaml:"failures" usage:"consecutive transient failures that open an endpoint's circuit (negative: never)"`
	// Cooldown is how long an open circuit fails fast before one probe is
	// let through (default DefaultBreakerCooldown).
	Cooldown time.Duration `flag:"cooldown" env:"COOLDOWN" yaml:"cooldown" usage:"how long an open circuit fails fast before a probe"`
}

// Option tunes New beyond Config.
type Option func(*options)

type options struct {
	reg   prometheus.Registerer
	clock clockwork.Clock
}

// WithRegisterer registers the client's metrics (the circuit state gauge,
// revoked_idp_circuit_state) with reg. Without it they are not exported.
// Clients sharing a registerer share the gauge.
func WithRegisterer(reg prometheus.Registerer) Option {
	return func(o *options) { o.reg = reg }
}

// WithClock replaces the real clock, which paces the rate limit, times the
// circuit breakers' cool-downs and the readiness checks, and dates answers
// (Retry-After as a date) and cached admin tokens. For tests: a
// clockwork.FakeClock moves only when told.
func WithClock(clk clockwork.Clock) Option {
	return func(o *options) { o.clock = clk }
}

// Circuit states as exported by the gauge.
const (
	circuitClosed   = 0
	circuitOpen     = 1
	circuitHalfOpen = 2
)

func newCircuitGauge(reg prometheus.Registerer) (*prometheus.GaugeVec, error) {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "revoked",
		Subsystem: "idp",
		Name:      "circuit_state",
		Help:      "State of the token API circuit breaker per endpoint: 0 closed, 1 open, 2 half-open.",
	}, []string{"endpoint"})
	if reg == nil {
		return g, nil
	}
	if err := reg.Register(g); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.GaugeVec); ok {
				return existing, nil
			}
		}
		return nil, fmt.Errorf("registering circuit gauge: %w", err)
	}
	return g, nil
}

// newLimiter returns the client's rate limit, a token bucket that starts
// full; without PerSecond, one that never waits.
func newLimiter(c RateLimitConfig) *rate.Limiter {
	if c.PerSecond <= 0 {
		return rate.NewLimiter(rate.Inf, 0)
	}
	burst := c.Burst
	if burst <= 0 {
		burst = max(1, int(math.Ceil(c.PerSecond)))
	}
	return rate.NewLimiter(rate.Limit(c.PerSecond), burst)
}

// waitLimit takes a token of the rate limit, waiting on the client's clock
// until one is due. If ctx ends first the token is given back and ctx's
// error returned.
func (c *Client) waitLimit(ctx context.Context) error {
	if err := pace.Wait(ctx, c.clock, c.limiter, 1); err != nil {
		return err
	}
	return ctx.Err()
}

// outcome of a call as the breaker sees it.
type outcome int

const (
	// outcomeOK: the server answered (also with a terminal 4xx or a 429:
	// it is up and deciding).
	outcomeOK outcome = iota
	// outcomeTransient: 5xx, 408, a timeout or a transport failure.
	outcomeTransient
	// outcomeAbandoned: the caller's ctx ended; says nothing of the server.
	outcomeAbandoned
)

// breaker is the circuit breaker of one endpoint: closed until failures
// consecutive transient failures, then open for cooldown (calls fail fast),
// then half-open: one probe goes through; its success closes the circuit,
// its failure opens it again for another cool-down.
type breaker struct {
	op       string
	failures int
	cooldown time.Duration
	gauge    prometheus.Gauge
	now      func() time.Time

	mu       sync.Mutex
	state    int
	count    int
	openedAt time.Time
	probing  bool
}

func (b *breaker) setState(s int) {
	b.state = s
	b.gauge.Set(float64(s))
}

// allow reports whether a call may go out now.
func (b *breaker) allow() error {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case circuitOpen:
		if rem := b.cooldown - b.now().Sub(b.openedAt); rem > 0 {
			return &CircuitOpenError{Op: b.op, Remaining: rem}
		}
		b.setState(circuitHalfOpen)
		b.probing = true
		return nil
	case circuitHalfOpen:
		if b.probing {
			return &CircuitOpenError{Op: b.op}
		}
		b.probing = true
	}
	return nil
}

// record notes the outcome of a call that allow let through.
func (b *breaker) record(o outcome) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case circuitHalfOpen:
		b.probing = false
		switch o {
		case outcomeOK:
			b.count = 0
			b.setState(circuitClosed)
		case outcomeTransient:
			b.openedAt = b.now()
			b.setState(circuitOpen)
		}
	case circuitClosed:
		switch o {
		case outcomeOK:
			b.count = 0
		case outcomeTransient:
			b.count++
			if b.count >= b.failures {
				b.openedAt = b.now()
				b.setState(circuitOpen)
			}
		}
	}
	// Answers of calls that were in flight when the circuit opened change
	// nothing: the cool-down runs its course.
}

// breakers holds the breaker of each endpoint, made on first use.
type breakers struct {
	cfg   BreakerConfig
	gauge *prometheus.GaugeVec
	now   func() time.Time

	mu sync.Mutex
	m  map[string]*breaker
}

func (bs *breakers) get(op string) *breaker {
	if bs == nil || bs.cfg.Failures < 0 {
		return nil
	}
	bs.mu.Lock()
	defer bs.mu.Unlock()
	b, ok := bs.m[op]
	if !ok {
		b = &breaker{op: op, failures: bs.cfg.Failures, cooldown: bs.cfg.Cooldown, gauge: bs.gauge.WithLabelValues(op), now: bs.now}
		b.gauge.Set(circuitClosed)
		bs.m[op] = b
	}
	return b
}

// statusOutcome classifies an answer for the breaker, in line with
// Retryable: statuses worth retrying because the server is failing count
// against it; a 429 is the server working as intended.
func statusOutcome(status int) outcome {
	if status == http.StatusRequestTimeout || (status >= 500 && status <= 599) {
		return outcomeTransient
	}
	return outcomeOK
}
