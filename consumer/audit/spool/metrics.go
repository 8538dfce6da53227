package spool

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	reg         prometheus.Registerer
	collectors  []prometheus.Collector
	spooled     prometheus.Counter
	drained     prometheus.Counter
	drainErrors prometheus.Counter
	writeErrors prometheus.Counter
}

// newMetrics creates the spool's metrics and registers them with reg (nil:
// not registered).
func newMetrics(reg prometheus.Registerer, s *Store) (*metrics, error) {
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: "revoked", Subsystem: "audit_spool", Name: name, Help: help}
	}
	m := &metrics{
		reg:         reg,
		spooled:     prometheus.NewCounter(prometheus.CounterOpts(opts("spooled_total", "Audit rows and checkpoints written to the local spool because the audit store was unavailable or the spool was not yet drained."))),
		drained:     prometheus.NewCounter(prometheus.CounterOpts(opts("drained_total", "Spooled audit rows and checkpoints the audit store has acknowledged."))),
		drainErrors: prometheus.NewCounter(prometheus.CounterOpts(opts("drain_errors_total", "Failed tries to drain the spool into the audit store (or to reach it)."))),
		writeErrors: prometheus.NewCounter(prometheus.CounterOpts(opts("write_errors_total", "Failed writes to the spool file (a full or failing disk); the append then fails and is retried."))),
	}
	m.collectors = []prometheus.Collector{
		m.spooled, m.drained, m.drainErrors, m.writeErrors,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts("pending", "Audit rows and checkpoints spooled and not yet acknowledged by the audit store; alert when it stays above zero.")),
			func() float64 { n, _ := s.Pending(); return float64(n) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts("bytes", "Size of the spool file.")),
			func() float64 { _, b := s.Pending(); return float64(b) }),
	}
	if reg == nil {
		return m, nil
	}
	for i, c := range m.collectors {
		if err := reg.Register(c); err != nil {
			for _, r := range m.collectors[:i] {
				reg.Unregister(r)
			}
			return nil, fmt.Errorf("registering the audit spool's metrics: %w", err)
		}
	}
	return m, nil
}

// unregister removes the metrics, so a spool opened again in the same
// process can register its own.
func (m *metrics) unregister() {
	if m.reg == nil {
		return
	}
	for _, c := range m.collectors {
		m.reg.Unregister(c)
	}
}
