package receiver

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	sets     *prometheus.CounterVec
	events   *prometheus.CounterVec
	commands *prometheus.CounterVec
	polls    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		sets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "revoked_ssf_receiver_sets_total",
			Help: "SETs received, by outcome (accepted, duplicate, refused with err, failed: to be delivered again).",
		}, []string{"outcome", "err"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "revoked_ssf_receiver_events_total",
			Help: "AuditEvents published from SETs, by type.",
		}, []string{"type"}),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "revoked_ssf_receiver_commands_total",
			Help: "Revoke commands published from SETs, by rule.",
		}, []string{"rule"}),
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "revoked_ssf_receiver_polls_total",
			Help: "Polls of the transmitter (RFC 8936), by outcome.",
		}, []string{"outcome"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.sets, m.events, m.commands, m.polls} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
