package service

import (
	"context"
	"time"

	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/retry"
	"github.com/revoked-dev/revoked/schemas"
)

// restoreBackoff bounds the wait between tries of restoring the guard.
const (
	restoreMinBackoff = 200 * time.Millisecond
	restoreMaxBackoff = 10 * time.Second
)

// restoreGuard gives the guard back what it decided before this process
// started: the cooldowns and budget windows it keeps in memory, rebuilt
// from the commands this detector published in the last guard.Lookback,
// read back from the command topic. A command counts as enforced only
// once Kafka acknowledged it, so the topic holds every enforcement a
// crash (kill -9 included) could lose, and nothing else needs keeping in
// step with it. Only commands signed by this detector's key count, so
// nobody able to write to the topic can silence a revocation by
// publishing a command for its target. It retries until the topic has
// been read or ctx ends: handling events before it would revoke again
// what the cooldown holds back. A topic that does not exist yet holds
// nothing to restore. It reports false when ctx ended first.
func (s *Service) restoreGuard(ctx context.Context) bool {
	if s.guard == nil {
		return true
	}
	sched := retry.New(restoreMinBackoff, restoreMaxBackoff)
	for {
		n, err := s.readEnforced(ctx)
		if err == nil {
			s.log.Info().Int("commands", n).Dur("lookback", s.guard.g.Lookback()).Str("command_topic", s.cfg.Writer.Topic).
				Msg("guard cooldowns and budgets restored from the command topic")
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		wait := sched.Next()
		s.log.Warn().Err(err).Dur("retry_in", wait).Msg("restoring the guard from the command topic failed; the detector handles no event until it succeeds")
		if !retry.Sleep(ctx, wait) {
			return false
		}
	}
}

// readEnforced reads the command topic's messages of the last Lookback
// and restores this detector's commands into the guard; it returns how
// many it restored.
func (s *Service) readEnforced(ctx context.Context) (int, error) {
	topic := s.cfg.Writer.Topic
	since := s.now().Add(-s.guard.g.Lookback())
	partitions, err := s.rec.client.Partitions(ctx, topic)
	if err != nil {
		return 0, err
	}
	keyring := schemas.NewKeyring(s.signer.Public())
	seen := make(map[string]struct{})
	restored := 0
	for p := range partitions {
		from, ok, err := s.rec.client.OffsetAt(ctx, topic, p, since)
		if err != nil {
			return 0, err
		}
		if !ok {
			continue
		}
		_, end, err := s.rec.client.Bounds(ctx, topic, p)
		if err != nil {
			return 0, err
		}
		_, err = s.rec.client.Read(ctx, topic, p, from, end, func(m kafkax.Message) error {
			if keyring.Verify(header(m, schemas.HeaderKeyID), header(m, schemas.HeaderSignature), m.Value) != nil {
				return nil // another issuer's command (a manual revoke), or not a command
			}
			cmd, err := schemas.DecodeCommand(m.Value)
			if err != nil {
				return nil
			}
			if _, dup := seen[cmd.CommandID]; dup {
				return nil // a command published again by a retried event
			}
			seen[cmd.CommandID] = struct{}{}
			s.guard.g.Restore(&cmd, cmd.IssuedAt)
			restored++
			return nil
		})
		if err != nil {
			return 0, err
		}
	}
	return restored, nil
}
