package service

import (
	"context"
	"fmt"

	"github.com/revoked-dev/revoked/internal/guard"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/schemas"
)

// guardSink is the guard a service applies and where it puts the commands
// the guard holds.
type guardSink struct {
	g    *guard.Guard
	held Publisher
}

// heldCommand is a signed command the guard held, as it goes to the held
// topic.
type heldCommand struct {
	cmd    schemas.RevokeCommand
	msg    kafkax.Message
	reason string
}

// WithGuard applies g to every command the engine builds, after it is
// stamped and before it is signed: g may turn it into dry_run, suppress it,
// or hold it. Held commands are published, signed like the others, through
// held, which must write to g.HeldTopic() (see Config.HeldWriter). The
// service does not close held.
func WithGuard(g *guard.Guard, held Publisher) Option {
	return func(o *options) { o.guard = &guardSink{g: g, held: held} }
}

// HeldWriter is the configuration of a writer to topic with the command
// writer's settings: its brokers, or the reader's when it names none.
func (c Config) HeldWriter(topic string) kafkax.WriterConfig {
	w := c.writer()
	w.Topic = topic
	return w
}

// guardCommand applies the guard, if any, to c, which triggered by ev, and
// sets c's mode to the one decided. The guard only ever turns enforce into
// dry_run.
func (s *Service) guardCommand(c *schemas.RevokeCommand, ev *schemas.AuditEvent) guard.Decision {
	if s.guard == nil {
		return guard.Decision{Verdict: guard.Allow, Reason: guard.ReasonEnforce, Mode: c.Mode}
	}
	d := s.guard.g.Check(c, ev)
	if c.Mode == schemas.ModeEnforce {
		c.Mode = d.Mode
	}
	switch d.Reason {
	case guard.ReasonKillSwitch, guard.ReasonAllowlist, guard.ReasonCooldown:
		s.log.Info().Str("command_id", c.CommandID).Str("rule", c.Reason.RuleID).
			Str("target_kind", string(c.Target.Kind)).Str("target", c.Target.ID()).
			Str("guard", d.Reason).Str("verdict", d.Verdict.String()).Str("mode", string(c.Mode)).Msg("command changed by the guard")
	}
	return d
}

// publishHeld publishes the held commands of an event to the held topic
// and raises the alert: an error log line per command (and the guard's
// revoked_detector_guard_held_total).
func (s *Service) publishHeld(ctx context.Context, held []heldCommand) error {
	if len(held) == 0 {
		return nil
	}
	msgs := make([]kafkax.Message, len(held))
	for i, h := range held {
		msgs[i] = h.msg
	}
	if err := s.guard.held.WriteMessages(ctx, msgs...); err != nil {
		s.metrics.publishErrors.Inc()
		return fmt.Errorf("publishing %d held command(s) to %s: %w", len(msgs), s.guard.g.HeldTopic(), err)
	}
	for _, h := range held {
		c := h.cmd
		s.log.Error().Str("command_id", c.CommandID).Str("rule", c.Reason.RuleID).
			Str("target_kind", string(c.Target.Kind)).Str("target", c.Target.ID()).
			Str("action", string(c.Action)).Str("guard", h.reason).Str("held_topic", s.guard.g.HeldTopic()).
			Msg("revocation budget spent: command held for approval (detector held list / approve / reject)")
	}
	return nil
}
