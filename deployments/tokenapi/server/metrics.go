package server

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// PathMetrics is where ServeMetrics mounts the Prometheus endpoint, relative
// to the issuer's path like PathLivez.
const PathMetrics = "/metrics"

// routeUnmatched is the route label of requests that matched no endpoint.
const routeUnmatched = "unmatched"

// httpMetrics are the per-request metrics the middleware records once
// RegisterMetrics has been called.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func (m *httpMetrics) observe(route string, status int, took time.Duration) {
	if route == "" {
		route = routeUnmatched
	}
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(route).Observe(took.Seconds())
}

// RegisterMetrics registers the server's metrics on reg:
//
//   - revoked_tokenapi_tokens_issued_total, revoked_tokenapi_tokens_exchanged_total
//     and revoked_tokenapi_tokens_revoked_total, the counters of Stats;
//   - revoked_tokenapi_reverification_required_total and
//     revoked_tokenapi_reverification_refused_total, the re-verification
//     counters of Stats, and revoked_tokenapi_subjects_awaiting_reverification;
//   - revoked_tokenapi_tokens_stored, the tokens currently held;
//   - revoked_tokenapi_http_requests_total by route and status code, and
//     revoked_tokenapi_http_request_duration_seconds by route. The route is
//     the endpoint's pattern (for example "POST /oauth2/token"), or
//     "unmatched" for requests no endpoint took.
//
// Requests are counted from the call on. It may be called once per server.
func (s *Server) RegisterMetrics(reg prometheus.Registerer) error {
	if reg == nil {
		return errors.New("token API metrics: nil registerer")
	}
	s.metricsMu.Lock()
	defer s.metricsMu.Unlock()
	if s.httpMetrics.Load() != nil {
		return errors.New("token API metrics: already registered")
	}
	counter := func(name, help string, v func(Stats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "revoked", Subsystem: "tokenapi", Name: name, Help: help,
		}, func() float64 { return float64(v(s.Stats())) })
	}
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "revoked", Subsystem: "tokenapi", Name: "http_requests_total",
			Help: "HTTP requests answered, by route pattern and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "revoked", Subsystem: "tokenapi", Name: "http_request_duration_seconds",
			Help:    "Time taken to answer an HTTP request, by route pattern.",
			Buckets: prometheus.ExponentialBucketsRange(0.0001, 5, 12),
		}, []string{"route"}),
	}
	collectors := []prometheus.Collector{
		counter("tokens_issued_total", "Tokens issued: client credentials, admin and token exchange.",
			func(st Stats) uint64 { return st.Issued }),
		counter("tokens_exchanged_total", "Tokens issued by token exchange (RFC 8693).",
			func(st Stats) uint64 { return st.Exchanged }),
		counter("tokens_revoked_total", "Live tokens revoked, descendants included.",
			func(st Stats) uint64 { return st.Revoked }),
		counter("reverification_required_total", "Subjects made to verify again before their next token.",
			func(st Stats) uint64 { return st.ReverificationRequired }),
		counter("reverification_refused_total", "Token requests refused because the subject must verify again.",
			func(st Stats) uint64 { return st.ReverificationRefused }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "revoked", Subsystem: "tokenapi", Name: "subjects_awaiting_reverification",
			Help: "Subjects that must verify again before they get a token.",
		}, func() float64 { return float64(s.Stats().AwaitingReverification) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "revoked", Subsystem: "tokenapi", Name: "tokens_stored",
			Help: "Tokens held in memory, revoked and expired ones not yet pruned included.",
		}, func() float64 { return float64(s.Stats().Stored) }),
		m.requests,
		m.duration,
	}
	for i, c := range collectors {
		if err := reg.Register(c); err != nil {
			for _, done := range collectors[:i] {
				reg.Unregister(done)
			}
			return fmt.Errorf("registering token API metrics: %w", err)
		}
	}
	s.httpMetrics.Store(m)
	return nil
}

// ServeMetrics mounts g's metrics at GET PathMetrics under the issuer's
// path, next to /livez and /readyz, so that a standalone token API exposes
// them on its own listener. An embedding process that serves its registry
// elsewhere need not call it. It may be called once per server.
func (s *Server) ServeMetrics(g prometheus.Gatherer) error {
	if g == nil {
		return errors.New("token API metrics: nil gatherer")
	}
	s.metricsMu.Lock()
	defer s.metricsMu.Unlock()
	if s.metricsServed {
		return errors.New("token API metrics: already served")
	}
	s.metricsServed = true
	s.mux.Handle("GET "+s.prefix+PathMetrics, promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog:      promErrorLog{s},
		ErrorHandling: promhttp.ContinueOnError,
	}))
	return nil
}

// promErrorLog routes promhttp's errors into the server's log.
type promErrorLog struct{ s *Server }

func (p promErrorLog) Println(v ...any) {
	p.s.log.Error().Str("source", "promhttp").Msg(strings.TrimSpace(fmt.Sprintln(v...)))
}
