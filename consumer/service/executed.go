package service

import (
	"context"
	"fmt"

	"github.com/revoked-dev/revoked/schemas"
)

// ExecutedIndex knows, without the audit store, the terminal steps of the
// commands this consumer recorded recently (spool.Store.Executed: its
// spool file and ledger). Executed returns rows that carry at least
// RowID, CommandID, Step and the source position; it does not block on
// the store.
type ExecutedIndex interface {
	Executed(ctx context.Context, commandID string) ([]schemas.AuditRow, error)
}

// withExecuted makes the replay check of l also consult idx, so a command
// that ran before the store went down is refused as a replay (or skipped
// as a redelivery) while the store is down, as the store's trail would.
// A nil idx returns l.
func withExecuted(l AuditLog, idx ExecutedIndex) AuditLog {
	if idx == nil {
		return l
	}
	return &executedLog{AuditLog: l, idx: idx}
}

type executedLog struct {
	AuditLog
	idx ExecutedIndex
}

// Enqueue implements auditQueue when the log it wraps does.
func (e *executedLog) Enqueue(rows ...schemas.AuditRow) (func(context.Context) error, error) {
	q, ok := e.AuditLog.(auditQueue)
	if !ok {
		return nil, errNoQueue
	}
	return q.Enqueue(rows...)
}

// CommandRows returns the trail's rows of the command and, for rows the
// trail lacks (the store is down), the index's terminal steps.
func (e *executedLog) CommandRows(ctx context.Context, commandID string) ([]schemas.AuditRow, error) {
	rows, err := e.AuditLog.CommandRows(ctx, commandID)
	if err != nil {
		return nil, err
	}
	known, err := e.idx.Executed(ctx, commandID)
	if err != nil {
		return nil, fmt.Errorf("reading the local index of executed commands: %w", err)
	}
	for _, k := range known {
		dup := false
		for _, r := range rows {
			if r.RowID == k.RowID {
				dup = true
				break
			}
		}
		if !dup {
			rows = append(rows, k)
		}
	}
	return rows, nil
}
