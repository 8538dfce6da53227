package source

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/revoked-dev/revoked/internal/ops"
)

// Metrics are the Prometheus metrics of the sources, labelled by source
// name; the pollers and receivers of one process share them.
type Metrics struct {
	// Records counts records by outcome: published, unmapped,
	// dead_lettered, duplicate (dropped as already published).
	Records *prometheus.CounterVec
	// Pages counts pages fetched.
	Pages *prometheus.CounterVec
	// FetchErrors counts failed fetches, rate limits aside.
	FetchErrors *prometheus.CounterVec
	// RateLimited counts answers that made the poller wait.
	RateLimited *prometheus.CounterVec
	// WaitSeconds adds up the waits asked for, by reason: rate_limit,
	// backoff (after a failure), poll (caught up).
	WaitSeconds *prometheus.CounterVec
	// Lag is how far behind the stream the last page was.
	Lag *prometheus.GaugeVec
	// LastPage is when the last page was published and checkpointed.
	LastPage *prometheus.GaugeVec
}

// NewMetrics registers the metrics on reg, or finds them there when
// another source of the process registered them first.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "revoked", Subsystem: "source", Name: name, Help: help},
			append([]string{"source"}, labels...))
	}
	gauge := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "revoked", Subsystem: "source", Name: name, Help: help},
			[]string{"source"})
	}
	m := &Metrics{
		Records: counter("records_total",
			"Records read from a vendor source, by outcome: published (an AuditEvent), unmapped (kept on the unmapped topic), dead_lettered, duplicate (already published, dropped).", "outcome"),
		Pages:       counter("pages_total", "Pages fetched from a vendor source."),
		FetchErrors: counter("fetch_errors_total", "Fetches that failed, rate limits aside; retried with backoff."),
		RateLimited: counter("rate_limited_total", "Vendor answers that made the poller wait: a 429, or a rate limit window spent."),
		WaitSeconds: counter("wait_seconds_total",
			"Seconds the poller was told to wait, by reason: rate_limit (the vendor's Retry-After or reset), backoff (after a failure), poll (caught up).", "reason"),
		Lag: gauge("lag_seconds",
			"How far behind the vendor's stream the last page was: now minus the newest event time in it; 0 when the last fetch found nothing new."),
		LastPage: gauge("last_page_timestamp_seconds",
			"When the last page was published and its checkpoint written (Unix time); alert when it stops moving."),
	}
	var errs []error
	m.Records = ops.Register(reg, m.Records, &errs)
	m.Pages = ops.Register(reg, m.Pages, &errs)
	m.FetchErrors = ops.Register(reg, m.FetchErrors, &errs)
	m.RateLimited = ops.Register(reg, m.RateLimited, &errs)
	m.WaitSeconds = ops.Register(reg, m.WaitSeconds, &errs)
	m.Lag = ops.Register(reg, m.Lag, &errs)
	m.LastPage = ops.Register(reg, m.LastPage, &errs)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("registering source metrics: %w", err)
	}
	return m, nil
}
