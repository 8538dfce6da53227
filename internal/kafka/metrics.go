package kafka

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/revoked-dev/revoked/internal/ops"
)

// ReaderMetrics are the Prometheus metrics of Readers, labelled by topic and
// consumer group so that one set serves every Reader of a process.
type ReaderMetrics struct {
	handled      *prometheus.CounterVec
	poisoned     *prometheus.CounterVec
	retries      *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	lag          *prometheus.GaugeVec
	commitErrors *prometheus.CounterVec
	dlqErrors    *prometheus.CounterVec
	stalled      *prometheus.GaugeVec
}

// NewReaderMetrics creates the metrics and registers them on reg. A nil reg
// leaves them unregistered. Registering on a registry that already holds
// them (a second Reader in the process) reuses the registered ones.
func NewReaderMetrics(reg prometheus.Registerer) (*ReaderMetrics, error) {
	labels := []string{"topic", "group"}
	m := &ReaderMetrics{
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "revoked", Subsystem: "kafka_reader", Name: "messages_handled_total",
			Help: "Messages whose handler succeeded and that were committed.",
		}, labels),
		poisoned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "revoked", Subsystem: "kafka_reader", Name: "messages_dead_lettered_total",
			Help: "Poison messages written to the dead-letter topic and committed.",
		}, labels),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "revoked", Subsystem: "kafka_reader", Name: "handler_retries_total",
			Help: "Transient handler failures, each followed by a retry of the same message.",
		}, labels),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "revoked", Subsystem: "kafka_reader", Name: "handler_duration_seconds",
			Help:    "Time one handler call took, whatever its outcome.",
			Buckets: prometheus.ExponentialBucketsRange(0.0001, 10, 16),
		}, labels),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "revoked", Subsystem: "kafka_reader", Name: "lag_messages",
			Help: "Messages in the partition after the last one fetched, as of that fetch.",
		}, []string{"topic", "group", "partition"}),
		commitErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "revoked", Subsystem: "kafka_reader", Name: "commit_errors_total",
			Help: "Offset commits that failed; the messages stay uncommitted until a later commit covers them.",
		}, labels),
		dlqErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "revoked", Subsystem: "kafka_reader", Name: "dead_letter_errors_total",
			Help: "Failed writes to the dead-letter topic; each is retried.",
		}, labels),
		stalled: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "revoked", Subsystem: "kafka_reader", Name: "stalled_lanes",
			Help: "Lanes (partitions, or key lanes of one) that have held one message for longer than the stall timeout.",
		}, labels),
	}
	if reg == nil {
		return m, nil
	}
	var errs []error
	m.handled = ops.Register(reg, m.handled, &errs)
	m.poisoned = ops.Register(reg, m.poisoned, &errs)
	m.retries = ops.Register(reg, m.retries, &errs)
	m.duration = ops.Register(reg, m.duration, &errs)
	m.lag = ops.Register(reg, m.lag, &errs)
	m.commitErrors = ops.Register(reg, m.commitErrors, &errs)
	m.dlqErrors = ops.Register(reg, m.dlqErrors, &errs)
	m.stalled = ops.Register(reg, m.stalled, &errs)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("registering kafka reader metrics: %w", err)
	}
	return m, nil
}

// readerMetrics are the metrics of one Reader, with its labels applied.
type readerMetrics struct {
	handled, poisoned, retries, commitErrors, dlqErrors prometheus.Counter
	duration                                            prometheus.Observer
	lag                                                 *prometheus.GaugeVec
	stalled                                             prometheus.Gauge
}

func (m *ReaderMetrics) forReader(topic, group string) readerMetrics {
	l := prometheus.Labels{"topic": topic, "group": group}
	return readerMetrics{
		handled:      m.handled.With(l),
		poisoned:     m.poisoned.With(l),
		retries:      m.retries.With(l),
		commitErrors: m.commitErrors.With(l),
		dlqErrors:    m.dlqErrors.With(l),
		duration:     m.duration.With(l),
		lag:          m.lag.MustCurryWith(l),
		stalled:      m.stalled.With(l),
	}
}
