package service

import (
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"sync"
	"time"

	"github.com/revoked-dev/revoked/schemas"
)

// replayStep lets a command id run at most once. A redelivery of the same
// Kafka message (after a crash before commit) resumes or skips; the same
// command at another position is a replay, audited as rejected. The
// command id's lock is held through the rest of the chain, until its rows
// are written or queued.
func (h *Handler) replayStep(ctx context.Context, f *flight, next next) error {
	mu := h.lock(f.cmd.CommandID)
	defer mu.Unlock()
	prior, err := h.prior(ctx, &f.cmd, f.pos, f.start, string(f.msg.Key) == f.cmd.Target.Key())
	if err != nil {
		return err
	}
	for _, r := range prior {
		if !r.Step.Terminal() {
			continue
		}
		if f.pos.same(r) {
			h.metrics.Redelivered.Inc()
			h.log.Debug().Str("command_id", f.cmd.CommandID).Msg("redelivered command already done")
			return nil
		}
		return h.reject(ctx, f.pos, &f.cmd, nil, fmt.Sprintf("replayed: already %s from %s[%d]@%d", r.Step, r.SourceTopic, r.SourcePartition, r.SourceOffset), false)
	}
	return next(ctx, f)
}

// maxRefreshWaits bounds how many refreshes of the replay index one
// replay check waits for: the one under way at start and the one its
// partitions' appearance asked for after it.
const maxRefreshWaits = 3

// prior returns the terminal steps already recorded for the command:
// from the replay index alone when it is sure (see replayIndex), else from
// the audit log (the store, and the spool's ledger while the store is
// down). The caller holds the command id's lock.
func (h *Handler) prior(ctx context.Context, cmd *schemas.RevokeCommand, pos position, arrived time.Time, canonicalKey bool) ([]schemas.AuditRow, error) {
	if h.replay != nil {
		rows, sure := h.replay.lookup(cmd, pos, arrived, canonicalKey)
		// Unsure while a refresh reads the store: wait for it rather
		// than read the store for this one command (a failed refresh
		// leaves the lookup unsure, and the store answers below).
		for waits := 0; waits < maxRefreshWaits && !sure && !slices.ContainsFunc(rows, pos.same) && h.replay.await(ctx, cmd, pos, canonicalKey); waits++ {
			rows, sure = h.replay.lookup(cmd, pos, arrived, canonicalKey)
		}
		if sure || slices.ContainsFunc(rows, pos.same) {
			h.metrics.ReplayChecks.WithLabelValues("index").Inc()
			return rows, nil
		}
	}
	h.metrics.ReplayChecks.WithLabelValues("store").Inc()
	rows, err := h.audit.CommandRows(ctx, cmd.CommandID)
	if err != nil {
		return nil, fmt.Errorf("reading the command's audit rows: %w", err)
	}
	if h.replay != nil {
		h.replay.record(rows)
	}
	return rows, nil
}

func (h *Handler) lock(commandID string) *sync.Mutex {
	f := fnv.New32a()
	f.Write([]byte(commandID))
	mu := &h.stripes[f.Sum32()%uint32(len(h.stripes))]
	mu.Lock()
	return mu
}
