package service

import (
	"github.com/revoked-dev/revoked/internal/guard"
	"github.com/revoked-dev/revoked/internal/held"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/schemas"
)

// commandStep stamps each command the engine built with the detector's
// clock, lets the guard decide on it once (pass, demote to dry run,
// suppress or hold), adds to what is to be published or held where its
// evidence events came from (Reason.Context, from the evidence index) and
// signs it. An event whose commands were all suppressed is settled here.
func (s *Service) commandStep(f *flight, next next) error {
	for i := range f.cmds {
		c := &f.cmds[i]
		detected := c.Reason.DetectedAt
		s.metrics.detections.WithLabelValues(c.Reason.RuleID, string(c.Mode)).Inc()
		if c.Reason.Risk > 0 {
			s.metrics.risk.WithLabelValues(string(c.Action)).Observe(c.Reason.Risk)
		}
		// The engine stamps commands with event time; on the wire they
		// carry the detector's clock, so that a detector catching up on a
		// backlog issues commands that are not born expired. The id does
		// not depend on these fields.
		c.IssuedAt = f.now.UTC()
		c.ExpiresAt = c.IssuedAt.Add(s.cfg.Engine.CommandTTL)
		c.Reason.DetectedAt = c.IssuedAt
		d := s.guardCommand(c, &f.ev)
		if d.Verdict == guard.Suppress {
			continue
		}
		c.Reason.Context = s.evidence.lookup(c.Reason.Evidence)
		s.metrics.evidence.WithLabelValues("found").Add(float64(len(c.Reason.Context)))
		s.metrics.evidence.WithLabelValues("missing").Add(float64(len(c.Reason.Evidence) - len(c.Reason.Context)))
		msg, err := s.message(*c)
		for err == nil && len(msg.Value) > schemas.MaxCommandBytes && len(c.Reason.Context) > 0 {
			// Context never makes a command too large to be accepted:
			// the oldest evidence's goes first.
			c.Reason.Context = c.Reason.Context[len(c.Reason.Context)/2+len(c.Reason.Context)%2:]
			msg, err = s.message(*c)
		}
		if err != nil {
			// A command the engine built that does not encode or
			// validate is a bug, not a property of the event: retrying
			// cannot help, and dead-lettering the event keeps it for
			// analysis.
			return kafkax.Poison("detector built an invalid command", err)
		}
		if d.Verdict == guard.Hold {
			f.out.held = append(f.out.held, heldCommand{cmd: *c, msg: held.HeldMessage(msg, d.Reason, f.now), reason: d.Reason})
			continue
		}
		f.out.cmds = append(f.out.cmds, *c)
		f.out.detected = append(f.out.detected, detected)
		f.out.msgs = append(f.out.msgs, msg)
	}
	if len(f.out.msgs) == 0 && len(f.out.held) == 0 {
		return nil
	}
	return next(f)
}

// publishStep hands the event's signed and held commands to the outbox,
// which writes them in handling order; the reader commits the event once
// they are acknowledged (kafkax.Later).
func (s *Service) publishStep(f *flight, _ next) error {
	return kafkax.Later(s.out.add(f.msg.Partition, &outboxEntry{ev: f.out}))
}
