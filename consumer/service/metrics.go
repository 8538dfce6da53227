package service

import "github.com/prometheus/client_golang/prometheus"

// Metrics of the command path.
type Metrics struct {
	Revoked       *prometheus.CounterVec
	NotEffective  *prometheus.CounterVec
	Rejected      prometheus.Counter
	DeadLettered  prometheus.Counter
	Failed        prometheus.Counter
	Redelivered   prometheus.Counter
	Held          prometheus.Counter
	Decided       prometheus.Counter
	AuditErrors   prometheus.Counter
	EventToRevoke prometheus.Histogram
	// ReplayChecks counts replay checks by what answered them: the
	// in-memory index alone, or the audit store.
	ReplayChecks *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Revoked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "revoked", Subsystem: "consumer", Name: "revocations_total",
			Help: "Revocations the token API accepted, by target kind and outcome: confirmed (its proof shows every targeted token inactive) or unconfirmed (it offers no proof).",
		}, []string{"target_kind", "outcome"}),
		NotEffective: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "revoked", Subsystem: "consumer", Name: "not_effective_total",
			Help: "Revocations the token API accepted while its proof showed a targeted token still active after every retry and fallback (dead-lettered); alert on any increase.",
		}, []string{"target_kind"}),
		Rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "revoked", Subsystem: "consumer", Name: "rejected_total",
			Help: "Commands rejected: unsigned, forged, invalid, expired or replayed.",
		}),
		DeadLettered: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "revoked", Subsystem: "consumer", Name: "dead_lettered_total",
			Help: "Commands the token API refused terminally.",
		}),
		Failed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "revoked", Subsystem: "consumer", Name: "transient_failures_total",
			Help: "Executions that failed transiently and will be retried.",
		}),
		Redelivered: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "revoked", Subsystem: "consumer", Name: "redelivered_total",
			Help: "Redelivered commands found already done in the audit trail.",
		}),
		Held: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "revoked", Subsystem: "consumer", Name: "held_total",
			Help: "Commands held for approval (over budget or under the kill switch); alert on any increase.",
		}),
		Decided: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "revoked", Subsystem: "consumer", Name: "held_decisions_total",
			Help: "Held commands approved or rejected by a human.",
		}),
		AuditErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "revoked", Subsystem: "consumer", Name: "audit_write_errors_total",
			Help: "Failed writes to the audit trail.",
		}),
		EventToRevoke: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "revoked", Subsystem: "consumer", Name: "event_to_revocation_seconds",
			Help:    "From the event that completed a detection to the token API's answer.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
		ReplayChecks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "revoked", Subsystem: "consumer", Name: "replay_checks_total",
			Help: "Replay checks by what answered them: index (in memory, no store query) or store (after a start or a reassignment, or for a command under a key other than its target's).",
		}, []string{"by"}),
	}
	if reg != nil {
		reg.MustRegister(m.Revoked, m.NotEffective, m.Rejected, m.DeadLettered, m.Failed, m.Redelivered, m.Held, m.Decided, m.AuditErrors, m.EventToRevoke, m.ReplayChecks)
	}
	return m
}
