package ops

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/internal/config"
)

// Errors of the HTTP server.
var (
	// ErrDuplicateCheck means a readiness check of that name exists already.
	ErrDuplicateCheck = errors.New("duplicate readiness check")
	// ErrShutdownTimeout means in-flight requests did not finish within
	// ServerConfig.ShutdownTimeout and their connections were closed.
	ErrShutdownTimeout = errors.New("http server shutdown timed out")
	// ErrServerStarted means Run or Listen was called a second time.
	ErrServerStarted = errors.New("http server already started")
	// ErrDegraded, wrapped by a Check's error, means the dependency works
	// in a degraded mode that needs no intervention to stay correct (the
	// consumer spooling audit rows while the audit store is down): /readyz
	// reports it and still answers 200.
	ErrDegraded = errors.New("degraded")
)

// ServerConfig configures the operational HTTP server.
type ServerConfig struct {
	Addr              string        `flag:"addr" env:"ADDR" yaml:"addr" usage:"listen address of the ops server (/livez, /readyz, /metrics)"`
	ShutdownTimeout   time.Duration `flag:"shutdown-timeout" env:"SHUTDOWN_TIMEOUT" yaml:"shutdown_timeout" usage:"how long in-flight requests may run on shutdown"`
	ReadHeaderTimeout time.Duration `flag:"read-header-timeout" env:"READ_HEADER_TIMEOUT" yaml:"read_header_timeout" usage:"how long a client may take to send request headers"`
	CheckTimeout      time.Duration `flag:"check-timeout" env:"CHECK_TIMEOUT" yaml:"check_timeout" usage:"how long one /readyz check may take"`
}

// DefaultServerConfig listens on :9090 and gives requests five seconds to
// finish on shutdown.
func DefaultServerConfig() ServerConfig {
	return ServerConfig{
		Addr:              ":9090",
		ShutdownTimeout:   5 * time.Second,
		ReadHeaderTimeout: 5 * time.Second,
		CheckTimeout:      2 * time.Second,
	}
}

// Validate reports every problem with c at once.
func (c ServerConfig) Validate() error {
	var p config.Problems
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		p.Addf("addr", "want host:port, got %q", c.Addr)
	}
	p.Check(c.ShutdownTimeout > 0, "shutdown-timeout", "must be positive")
	p.Check(c.ReadHeaderTimeout > 0, "read-header-timeout", "must be positive")
	p.Check(c.CheckTimeout > 0, "check-timeout", "must be positive")
	return p.Err()
}

// Check reports whether one dependency of the process is ready. It returns
// nil when ready and an error saying what is wrong otherwise. ctx carries
// ServerConfig.CheckTimeout; a check must return when it is done. Checks run
// concurrently with each other and with themselves.
type Check func(ctx context.Context) error

type namedCheck struct {
	name  string
	check Check
}

// Server is the operational HTTP server of a process:
//
//   - GET /livez answers 200 while the process serves HTTP at all.
//   - GET /readyz runs every registered Check and answers 200 when all pass
//     (a check whose error wraps ErrDegraded passes, with its error shown),
//     or 503 naming each failing check and its error; it also answers 503
//     once Drain was called or shutdown began.
//   - GET /metrics serves the process's Prometheus registry.
//
// More handlers can be mounted with Handle.
type Server struct {
	cfg      ServerConfig
	log      zerolog.Logger
	mux      *http.ServeMux
	srv      *http.Server
	draining atomic.Bool

	mu     sync.Mutex
	checks []namedCheck
	ln     net.Listener
	ran    bool
}

// NewServer returns a server exposing g on /metrics. It does not listen
// until Listen or Run is called.
func NewServer(cfg ServerConfig, l zerolog.Logger, g prometheus.Gatherer) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: l, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog:      promLogger{l},
		ErrorHandling: promhttp.ContinueOnError,
	}))
	s.srv = &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ErrorLog:          log.New(httpLogWriter{l}, "", 0),
	}
	return s, nil
}

// AddCheck registers a readiness check under name. Names are unique; they
// are what /readyz reports when a check fails.
func (s *Server) AddCheck(name string, c Check) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, nc := range s.checks {
		if nc.name == name {
			return fmt.Errorf("%w: %q", ErrDuplicateCheck, name)
		}
	}
	s.checks = append(s.checks, namedCheck{name: name, check: c})
	slices.SortFunc(s.checks, func(a, b namedCheck) int { return strings.Compare(a.name, b.name) })
	return nil
}

// Handle mounts h on pattern (http.ServeMux syntax, e.g. "GET /api/").
// It may be called before or while the server runs.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// Handler returns the server's routes, for tests and for embedding them in
// another server.
func (s *Server) Handler() http.Handler { return s.mux }

// Drain makes /readyz answer 503 from now on, so that load balancers stop
// sending work while the rest of the process shuts down.
func (s *Server) Drain() { s.draining.Store(true) }

// Listen binds the configured address and returns it, which tells callers
// the port chosen for an address with port 0. Run calls it when needed.
func (s *Server) Listen() (net.Addr, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return nil, ErrServerStarted
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", s.cfg.Addr, err)
	}
	s.ln = ln
	return ln.Addr(), nil
}

// Run serves until ctx is cancelled, then stops accepting connections and
// gives in-flight requests ServerConfig.ShutdownTimeout to finish before
// closing them. It returns nil after a clean shutdown, an error wrapping
// ErrShutdownTimeout when requests had to be cut off, and any error that
// stopped it from serving. Run may be called once.
func (s *Server) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.ran {
		s.mu.Unlock()
		return ErrServerStarted
	}
	s.ran = true
	ln := s.ln
	s.mu.Unlock()
	if ln == nil {
		if _, err := s.Listen(); err != nil {
			return err
		}
		s.mu.Lock()
		ln = s.ln
		s.mu.Unlock()
	}
	s.log.Info().Str("addr", ln.Addr().String()).Msg("ops server listening")

	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(ln) }()

	select {
	case err := <-errc:
		return fmt.Errorf("serving ops http: %w", err)
	case <-ctx.Done():
	}
	s.Drain()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	err := s.srv.Shutdown(sctx)
	// Serve returns http.ErrServerClosed once Shutdown begins.
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		_ = s.srv.Close()
		return fmt.Errorf("%w after %s: %w", ErrShutdownTimeout, s.cfg.ShutdownTimeout, err)
	}
	s.log.Info().Msg("ops server stopped")
	return nil
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if s.draining.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("shutting down\n"))
		return
	}
	s.mu.Lock()
	checks := slices.Clone(s.checks)
	s.mu.Unlock()

	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.CheckTimeout)
	defer cancel()
	results := make([]error, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Go(func() { results[i] = runCheck(ctx, c.check) })
	}
	wg.Wait()

	var b strings.Builder
	failed := false
	for i, c := range checks {
		err := results[i]
		if errors.Is(err, ErrDegraded) {
			fmt.Fprintf(&b, "%s: %v\n", c.name, err)
			continue
		}
		if err != nil {
			failed = true
			fmt.Fprintf(&b, "%s: failed: %v\n", c.name, err)
			s.log.Warn().Str("check", c.name).Err(err).Msg("readiness check failed")
			continue
		}
		fmt.Fprintf(&b, "%s: ok\n", c.name)
	}
	if failed {
		w.WriteHeader(http.StatusServiceUnavailable)
	} else {
		b.WriteString("ok\n")
	}
	_, _ = w.Write([]byte(b.String()))
}

// runCheck runs c, turning a check that overruns its context into a failure
// even if it ignores ctx. A check that ignores ctx keeps its goroutine until
// it returns.
func runCheck(ctx context.Context, c Check) error {
	done := make(chan error, 1)
	go func() { done <- c(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("check did not finish: %w", ctx.Err())
	}
}

// promLogger routes promhttp's errors to zerolog.
type promLogger struct{ log zerolog.Logger }

func (p promLogger) Println(v ...any) {
	p.log.Error().Msg(strings.TrimSpace(fmt.Sprintln(v...)))
}

// httpLogWriter routes net/http's error log (TLS handshake failures, panics
// in handlers) to zerolog.
type httpLogWriter struct{ log zerolog.Logger }

func (w httpLogWriter) Write(p []byte) (int, error) {
	w.log.Warn().Str("lib", "net/http").Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}
