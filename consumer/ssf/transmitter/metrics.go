package transmitter

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of a SET, the outcome label of revoked_ssf_transmitter_sets_total.
const (
	outcomeSignalled = "signalled"
	outcomeFailed    = "signal_failed"
	// outcomeDropped: the stream is disabled, which holds nothing.
	outcomeDropped = "dropped"
	// outcomeSkipped: the revocation names no subject the stream can be
	// told of (no user, or one the receiver removed).
	outcomeSkipped = "skipped"
)

type metrics struct {
	sets          *prometheus.CounterVec
	pushes        *prometheus.CounterVec
	outstanding   *prometheus.GaugeVec
	latency       prometheus.Histogram
	verifications *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		sets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "revoked_ssf_transmitter_sets_total",
			Help: "Security Event Tokens about revocations, by stream, event type and outcome (signalled, signal_failed, dropped on a disabled stream, skipped for want of a subject).",
		}, []string{"stream", "event", "outcome"}),
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "revoked_ssf_transmitter_pushes_total",
			Help: "Push attempts (RFC 8935), by stream and the receiver's HTTP status (error: no answer).",
		}, []string{"stream", "code"}),
		outstanding: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "revoked_ssf_transmitter_poll_outstanding",
			Help: "SETs of a poll stream (RFC 8936) waiting for the receiver's acknowledgement.",
		}, []string{"stream"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "revoked_ssf_transmitter_delivery_seconds",
			Help:    "Time from a revocation to its receiver taking the SET (push answered, poll acknowledged).",
			Buckets: prometheus.ExponentialBuckets(0.005, 4, 10),
		}),
		verifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "revoked_ssf_transmitter_verifications_total",
			Help: "Verification events sent, by stream and outcome.",
		}, []string{"stream", "outcome"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.sets, m.pushes, m.outstanding, m.latency, m.verifications} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// eventName is the last segment of an event type URI, for labels and
// details.
func eventName(uri string) string {
	for i := len(uri) - 1; i >= 0; i-- {
		if uri[i] == '/' {
			return uri[i+1:]
		}
	}
	return uri
}
