package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/internal/ops"
)

// EventsPath is where the HTTP endpoint accepts events.
const EventsPath = "/v1/events"

// HTTPConfig configures the HTTP endpoint.
type HTTPConfig struct {
	// Addr is the listen address.
	Addr string `flag:"listen" env:"LISTEN" yaml:"listen" usage:"listen address of the HTTP ingest endpoint (POST /v1/events, with /livez, /readyz and /metrics)"`
	// MaxBodyBytes bounds one request body; a larger one is refused whole
	// with 413 and nothing of it is published.
	MaxBodyBytes int64 `flag:"max-body-bytes" env:"MAX_BODY_BYTES" yaml:"max_body_bytes" usage:"largest accepted request body"`
	// BearerToken, when set, is required as "Authorization: Bearer <token>".
	BearerToken config.Secret `flag:"-" env:"BEARER_TOKEN" yaml:"-" usage:"bearer token required from clients"`
	// ReadHeaderTimeout bounds how long a client may take to send headers.
	ReadHeaderTimeout time.Duration `flag:"read-header-timeout" env:"READ_HEADER_TIMEOUT" yaml:"read_header_timeout" usage:"how long a client may take to send request headers"`
	// ReadTimeout bounds how long a client may take to send a whole request.
	ReadTimeout time.Duration `flag:"read-timeout" env:"READ_TIMEOUT" yaml:"read_timeout" usage:"how long a client may take to send a whole request"`
	// ShutdownTimeout bounds how long in-flight requests may run on shutdown.
	ShutdownTimeout time.Duration `flag:"shutdown-timeout" env:"SHUTDOWN_TIMEOUT" yaml:"shutdown_timeout" usage:"how long in-flight requests may run on shutdown"`
}

// DefaultHTTPConfig listens on :8088 and accepts bodies up to 8 MiB.
func DefaultHTTPConfig() HTTPConfig {
	return HTTPConfig{
		Addr:              ":8088",
		MaxBodyBytes:      8 << 20,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       60 * time.Second,
		ShutdownTimeout:   10 * time.Second,
	}
}

// Validate reports every problem with c at once.
func (c HTTPConfig) Validate() error {
	var p config.Problems
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		p.Addf("listen", "want host:port, got %q", c.Addr)
	}
	p.Check(c.MaxBodyBytes > 0, "max-body-bytes", "must be positive")
	p.Check(c.ReadHeaderTimeout > 0, "read-header-timeout", "must be positive")
	p.Check(c.ReadTimeout > 0, "read-timeout", "must be positive")
	p.Check(c.ShutdownTimeout > 0, "shutdown-timeout", "must be positive")
	return p.Err()
}

// Response is the JSON answer of POST /v1/events.
type Response struct {
	// Accepted is the number of events published to the events topic.
	Accepted int64 `json:"accepted"`
	// Rejected lists rejected lines (the first Config.MaxReportedRejections);
	// every one of them was published to the dead-letter topic.
	Rejected []Rejection `json:"rejected"`
	// RejectedTotal counts all rejected lines, listed or not.
	RejectedTotal int64 `json:"rejected_total"`
	// Unmapped counts the records of another format (-format) that were
	// read whole but have no AuditEvent; they were published to the
	// unmapped topic.
	Unmapped int64 `json:"unmapped,omitempty"`
}

// Server is the HTTP ingest endpoint.
//
// POST /v1/events takes newline-delimited JSON AuditEvents and answers a
// Response:
//
//   - 200 when every line was accepted (or, read with another format,
//     kept on the unmapped topic);
//   - 207 when some lines were accepted and some rejected;
//   - 400 when no line was accepted or kept (all rejected, or an empty
//     body).
//
// In all three cases every non-blank line was published, valid ones to the
// events topic and rejected ones to the dead-letter topic, so a client must
// not resend the body: rejected lines need fixing, not retrying. Other
// answers carry {"error": "..."}: 401 without the configured bearer token,
// 405 for another method, 413 when the body exceeds MaxBodyBytes (nothing
// was published), 415 for a compressed body, and 503 with Retry-After when
// Kafka did not take a batch; then some lines may already be published and
// resending the body repeats them (at-least-once; events carry unique ids).
//
// The same listener serves the operational endpoints of internal/ops:
// GET /livez, GET /readyz (200 while serving and every check added with
// WithReadyCheck passes, 503 once shutdown began) and GET /metrics.
type Server struct {
	cfg     HTTPConfig
	in      *Ingester
	log     zerolog.Logger
	ops     *ops.Server
	metrics *httpMetrics
	handler http.Handler
}

// ServerOption adjusts a Server.
type ServerOption func(*serverOptions)

type serverOptions struct {
	reg    *prometheus.Registry
	checks []namedCheck
}

type namedCheck struct {
	name  string
	check ops.Check
}

// WithRegistry registers the endpoint's metrics on reg and serves reg at
// /metrics. Without it the server uses a registry of its own made by
// ops.NewRegistry.
func WithRegistry(reg *prometheus.Registry) ServerOption {
	return func(o *serverOptions) { o.reg = reg }
}

// WithReadyCheck adds a readiness check that /readyz runs under name.
func WithReadyCheck(name string, c ops.Check) ServerOption {
	return func(o *serverOptions) { o.checks = append(o.checks, namedCheck{name, c}) }
}

// NewServer returns the endpoint serving in.
func NewServer(cfg HTTPConfig, in *Ingester, log zerolog.Logger, opts ...ServerOption) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if in == nil {
		return nil, errors.New("ingest: nil ingester")
	}
	var o serverOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.reg == nil {
		o.reg = ops.NewRegistry()
	}
	log = log.With().Str("component", "ingest-http").Logger()
	m, err := newHTTPMetrics(o.reg)
	if err != nil {
		return nil, err
	}
	// The ops server never listens itself: its routes are mounted on the
	// ingest listener.
	ocfg := ops.DefaultServerConfig()
	ocfg.Addr = cfg.Addr
	ocfg.ShutdownTimeout = cfg.ShutdownTimeout
	ocfg.ReadHeaderTimeout = cfg.ReadHeaderTimeout
	osrv, err := ops.NewServer(ocfg, log, o.reg)
	if err != nil {
		return nil, err
	}
	for _, c := range o.checks {
		if c.check == nil {
			return nil, fmt.Errorf("ingest: nil readiness check %q", c.name)
		}
		if err := osrv.AddCheck(c.name, c.check); err != nil {
			return nil, err
		}
	}
	s := &Server{cfg: cfg, in: in, log: log, ops: osrv, metrics: m}
	mux := http.NewServeMux()
	mux.Handle(EventsPath, m.instrument(http.HandlerFunc(s.handleEvents)))
	opsRoutes := osrv.Handler()
	for _, p := range []string{"/livez", "/readyz", "/metrics"} {
		mux.Handle(p, opsRoutes)
	}
	s.handler = mux
	return s, nil
}

// Handler is the endpoint's handler, with the operational endpoints, for
// tests and for mounting elsewhere.
func (s *Server) Handler() http.Handler { return s.handler }

// Drain makes /readyz answer 503 from now on; Serve calls it when shutting
// down.
func (s *Server) Drain() { s.ops.Drain() }

// Run listens on HTTPConfig.Addr and serves until ctx is cancelled, then
// stops accepting, lets in-flight requests finish for up to
// ShutdownTimeout and returns. It returns nil after a clean shutdown.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listening for events: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve is Run on a listener the caller opened; it closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		// Publishing waits for Kafka's acknowledgements; give the answer
		// time beyond reading the body.
		WriteTimeout: s.cfg.ReadTimeout + 30*time.Second,
		IdleTimeout:  2 * time.Minute,
		BaseContext:  func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	s.log.Info().Str("addr", ln.Addr().String()).Msg("ingest endpoint listening")
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serving events: %w", err)
	case <-ctx.Done():
	}
	s.Drain()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		_ = srv.Close()
		return fmt.Errorf("shutting down ingest endpoint: %w", err)
	}
	s.log.Info().Msg("ingest endpoint stopped")
	return nil
}

func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "use POST")
		return
	}
	if !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="revoked-ingest"`)
		writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
		return
	}
	if enc := r.Header.Get("Content-Encoding"); enc != "" && !strings.EqualFold(enc, "identity") {
		writeError(w, http.StatusUnsupportedMediaType, "compressed bodies are not accepted")
		return
	}
	// Read the whole body first, so that an oversized one is refused
	// before any of it is published.
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body exceeds %d bytes", s.cfg.MaxBodyBytes))
			return
		}
		writeError(w, http.StatusBadRequest, "reading body: "+err.Error())
		return
	}
	source := "http:" + r.RemoteAddr
	res, err := s.in.Ingest(r.Context(), bytes.NewReader(body), source, nil)
	s.metrics.record(res, err)
	if err != nil {
		s.log.Error().Err(err).Str("source", source).Int64("published_through", res.PublishedThrough).Msg("publishing events failed")
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("publishing failed after line %d; retry later", res.PublishedThrough))
		return
	}
	s.log.Debug().Str("source", source).Int64("accepted", res.Accepted).Int64("rejected", res.RejectedTotal).Msg("events ingested")
	status := http.StatusOK
	switch {
	case res.Accepted == 0 && res.Unmapped == 0:
		status = http.StatusBadRequest
	case res.RejectedTotal > 0:
		status = http.StatusMultiStatus
	}
	rejected := res.Rejected
	if rejected == nil {
		rejected = []Rejection{}
	}
	ops.WriteJSON(w, status, Response{Accepted: res.Accepted, Rejected: rejected, RejectedTotal: res.RejectedTotal, Unmapped: res.Unmapped})
}

func (s *Server) authorized(r *http.Request) bool {
	return !s.cfg.BearerToken.IsSet() || ops.BearerMatches(r, s.cfg.BearerToken.Reveal())
}

func writeError(w http.ResponseWriter, status int, msg string) {
	ops.WriteJSON(w, status, map[string]string{"error": msg})
}

// httpMetrics are the Prometheus metrics of the HTTP endpoint.
type httpMetrics struct {
	accepted, rejected, deadLettered, publishFailures prometheus.Counter
	requests                                          *prometheus.CounterVec
	duration                                          *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) (*httpMetrics, error) {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "revoked", Subsystem: "ingest", Name: name, Help: help,
		})
	}
	m := &httpMetrics{
		accepted: counter("lines_accepted_total",
			"Valid events published to the events topic by requests that completed."),
		rejected: counter("lines_rejected_total",
			"Lines that failed validation, including those of requests whose publishing then failed (which a client may resend)."),
		deadLettered: counter("lines_dead_lettered_total",
			"Rejected lines published to the dead-letter topic by requests that completed."),
		publishFailures: counter("publish_failures_total",
			"Requests answered 503 because publishing did not complete; some of their lines may be published."),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "revoked", Subsystem: "ingest", Name: "http_requests_total",
			Help: "Requests to the events endpoint, by status code.",
		}, []string{"code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "revoked", Subsystem: "ingest", Name: "http_request_duration_seconds",
			Help:    "Time taken to answer a request to the events endpoint, publishing included, by status code.",
			Buckets: prometheus.ExponentialBucketsRange(0.001, 60, 12),
		}, []string{"code"}),
	}
	var errs []error
	m.accepted = ops.Register(reg, m.accepted, &errs)
	m.rejected = ops.Register(reg, m.rejected, &errs)
	m.deadLettered = ops.Register(reg, m.deadLettered, &errs)
	m.publishFailures = ops.Register(reg, m.publishFailures, &errs)
	m.requests = ops.Register(reg, m.requests, &errs)
	m.duration = ops.Register(reg, m.duration, &errs)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("registering ingest metrics: %w", err)
	}
	return m, nil
}

func (m *httpMetrics) instrument(h http.Handler) http.Handler {
	return promhttp.InstrumentHandlerDuration(m.duration, promhttp.InstrumentHandlerCounter(m.requests, h))
}

// record counts the lines of one ingestion.
func (m *httpMetrics) record(res Result, err error) {
	m.rejected.Add(float64(res.RejectedTotal))
	if err != nil {
		m.publishFailures.Inc()
		return
	}
	m.accepted.Add(float64(res.Accepted))
	m.deadLettered.Add(float64(res.RejectedTotal))
}
