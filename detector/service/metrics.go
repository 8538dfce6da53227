package service

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the service's Prometheus metrics.
type metrics struct {
	events        *prometheus.CounterVec
	detections    *prometheus.CounterVec
	published     *prometheus.CounterVec
	publishErrors prometheus.Counter
	latency       prometheus.Histogram
	risk          *prometheus.HistogramVec
	// evidence counts the evidence events of commands by whether their
	// address context was found.
	evidence *prometheus.CounterVec
}

// Results of an event, the label of revoked_detector_events_total.
const (
	resultProcessed = "processed"
	resultInvalid   = "invalid"
	resultSkewed    = "clock_skew"
)

func newMetrics(reg prometheus.Registerer, eng *engineGuard, evidence *evidenceIndex) (*metrics, error) {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "revoked", Subsystem: "detector", Name: "events_total",
			Help: "Audit events read, by result: processed by the engine, invalid (dead-lettered), clock_skew (dead-lettered).",
		}, []string{"result"}),
		detections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "revoked", Subsystem: "detector", Name: "detections_total",
			Help: "Detections (commands built by the engine), by rule and mode.",
		}, []string{"rule", "mode"}),
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "revoked", Subsystem: "detector", Name: "commands_published_total",
			Help: "Signed commands acknowledged by Kafka, by rule and mode.",
		}, []string{"rule", "mode"}),
		publishErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "revoked", Subsystem: "detector", Name: "publish_errors_total",
			Help: "Failed attempts to publish the commands of an event; the event is retried.",
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "revoked", Subsystem: "detector", Name: "detection_latency_seconds",
			Help:    "From the event time at which a detection completed (its newest evidence event) to the publication of its command.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}),
		risk: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "revoked", Subsystem: "detector", Name: "command_risk",
			Help:    "Accumulated risk that crossed a threshold of the risk model, per command it issued, by action (notify, revoke_and_reverify, revoke).",
			Buckets: []float64{0.25, 0.5, 0.75, 1, 1.25, 1.5, 2, 3, 5},
		}, []string{"action"}),
		evidence: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "revoked", Subsystem: "detector", Name: "evidence_context_total",
			Help: "Evidence events of the commands published or held, by whether the detector still held their address context (found) or not (missing: older than the newest evidence-context events, or without an address).",
		}, []string{"result"}),
	}
	if reg == nil {
		return m, nil
	}
	held := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "revoked", Subsystem: "detector", Name: "evidence_context_events",
		Help: "Events whose address context the detector holds for the evidence of its commands (at most evidence-context).",
	}, func() float64 { return float64(evidence.len()) })
	for _, c := range []prometheus.Collector{m.events, m.detections, m.published, m.publishErrors, m.latency, m.risk, m.evidence, held, newEngineCollector(eng)} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("detector metrics: already registered (one detector per registry): %w", err)
			}
			return nil, fmt.Errorf("detector metrics: %w", err)
		}
	}
	return m, nil
}

// engineCollector exports the engine's counters and state sizes when
// scraped.
type engineCollector struct {
	eng                                                        *engineGuard
	matched, late, duplicates, truncated, suppressed, noTarget *prometheus.Desc
	groups, records, cooldowns, watermark                      *prometheus.Desc
}

func newEngineCollector(eng *engineGuard) *engineCollector {
	rule := []string{"rule"}
	return &engineCollector{
		eng:        eng,
		matched:    prometheus.NewDesc("revoked_detector_rule_events_total", "Events a rule tracked.", rule, nil),
		late:       prometheus.NewDesc("revoked_detector_rule_late_events_total", "Events a rule dropped for arriving later than the out-of-order allowance.", rule, nil),
		duplicates: prometheus.NewDesc("revoked_detector_rule_duplicate_events_total", "Events a rule had seen already (same event id).", rule, nil),
		truncated:  prometheus.NewDesc("revoked_detector_rule_truncated_records_total", "Records a rule dropped because a group reached its size limit.", rule, nil),
		suppressed: prometheus.NewDesc("revoked_detector_rule_suppressed_total", "Detections dropped by the rule's cooldown.", rule, nil),
		noTarget:   prometheus.NewDesc("revoked_detector_rule_no_target_total", "Detections dropped because the event lacked the target's id.", rule, nil),
		groups:     prometheus.NewDesc("revoked_detector_rule_groups", "Live groups (users, tokens...) a rule holds state for.", rule, nil),
		records:    prometheus.NewDesc("revoked_detector_rule_records", "Event records a rule holds.", rule, nil),
		cooldowns:  prometheus.NewDesc("revoked_detector_rule_cooldowns", "Targets in a rule's cooldown.", rule, nil),
		watermark:  prometheus.NewDesc("revoked_detector_watermark_seconds", "Newest event time the engine has seen, as a Unix time.", nil, nil),
	}
}

func (c *engineCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.matched, c.late, c.duplicates, c.truncated, c.suppressed, c.noTarget, c.groups, c.records, c.cooldowns, c.watermark} {
		ch <- d
	}
}

func (c *engineCollector) Collect(ch chan<- prometheus.Metric) {
	c.eng.lock()
	st := c.eng.eng.Stats()
	c.eng.unlock()
	if !st.Watermark.IsZero() {
		ch <- prometheus.MustNewConstMetric(c.watermark, prometheus.GaugeValue, float64(st.Watermark.UnixNano())/1e9)
	}
	for _, r := range st.Rules {
		for _, m := range []struct {
			d *prometheus.Desc
			t prometheus.ValueType
			v float64
		}{
			{c.matched, prometheus.CounterValue, float64(r.Matched)},
			{c.late, prometheus.CounterValue, float64(r.Late)},
			{c.duplicates, prometheus.CounterValue, float64(r.Duplicates)},
			{c.truncated, prometheus.CounterValue, float64(r.Truncated)},
			{c.suppressed, prometheus.CounterValue, float64(r.Suppressed)},
			{c.noTarget, prometheus.CounterValue, float64(r.NoTarget)},
			{c.groups, prometheus.GaugeValue, float64(r.Groups)},
			{c.records, prometheus.GaugeValue, float64(r.Records)},
			{c.cooldowns, prometheus.GaugeValue, float64(r.Cooldowns)},
		} {
			ch <- prometheus.MustNewConstMetric(m.d, m.t, m.v, r.RuleID)
		}
	}
}
