package service

import (
	"github.com/revoked-dev/revoked/detector/engine"
	"github.com/revoked-dev/revoked/detector/state"
	"github.com/revoked-dev/revoked/schemas"
)

// The engine calls that state recovery rests on.

// replaySilently feeds ev to e to rebuild state: its effects on windows,
// cooldowns and baselines are kept, the commands it would emit are not
// (they were emitted when the event was first handled).
func replaySilently(e *engine.Engine, ev *schemas.AuditEvent) {
	e.ProcessSilently(ev)
}

// baselineChanges drains the baseline entries e learnt, moved or forgot
// since the previous call.
func baselineChanges(e *engine.Engine) []state.Baseline {
	changes := e.BaselineChanges()
	if len(changes) == 0 {
		return nil
	}
	out := make([]state.Baseline, len(changes))
	for i, c := range changes {
		out[i] = state.Baseline(c)
	}
	return out
}

// restoreBaselines gives e baseline entries kept from an earlier run.
func restoreBaselines(e *engine.Engine, entries []state.Baseline) {
	in := make([]engine.BaselineEntry, len(entries))
	for i, b := range entries {
		in[i] = engine.BaselineEntry(b)
	}
	e.RestoreBaselines(in)
}

// process feeds ev, read from partition, to the engine and keeps the
// baselines it learnt from it until they are saved, which happens before
// the event is committed. Taking the changes under the same lock as
// Process ties them to ev, and so to its partition, although handlers of
// other partitions use the engine meanwhile (see engineGuard).
func (s *Service) process(partition int, ev *schemas.AuditEvent) []schemas.RevokeCommand {
	cmds, learnt := s.eng.process(ev)
	s.rec.learn(partition, learnt)
	return cmds
}
