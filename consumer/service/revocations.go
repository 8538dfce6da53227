package service

import (
	"context"
	"fmt"

	"github.com/revoked-dev/revoked/schemas"
)

// RevocationSink hears of every revocation this consumer carries out: the
// outcome row (a step for which schemas.Step.Revoked holds: confirmed or
// unconfirmed) of each, as the audit trail records it. The Shared Signals
// transmitter's publisher (consumer/ssf/transmitter) is one: it records
// them on a Kafka topic the transmitter reads.
//
// Revoked blocks until the rows are durable where the sink keeps them
// (Kafka acknowledged them) or ctx ends; an error means they may not be,
// and the command's message is not committed, so it is delivered again,
// runs again (revocation is idempotent) and its rows reach the sink then.
// A row may so reach the sink more than once; it carries the command id
// and its Kafka position, which make duplicates recognisable.
type RevocationSink interface {
	Revoked(ctx context.Context, rows []schemas.AuditRow) error
}

// withRevocations makes the audit log tell sink of carried-out
// revocations: the rows go to the sink before the trail has them, so a
// failure between the two leaves the command to run again rather than a
// revocation the sink never heard of (a redelivery whose terminal row is
// in the trail is skipped, and would not reach the sink again). A nil
// sink returns l.
func withRevocations(l AuditLog, sink RevocationSink) AuditLog {
	if sink == nil {
		return l
	}
	return &revocationLog{AuditLog: l, sink: sink}
}

type revocationLog struct {
	AuditLog
	sink RevocationSink
}

func revokedRows(rows []schemas.AuditRow) []schemas.AuditRow {
	var out []schemas.AuditRow
	for _, r := range rows {
		if r.Step.Revoked() {
			out = append(out, r)
		}
	}
	return out
}

// Write hands the revocations among rows to the sink, then writes rows.
func (l *revocationLog) Write(ctx context.Context, rows ...schemas.AuditRow) error {
	if rev := revokedRows(rows); len(rev) > 0 {
		if err := l.sink.Revoked(ctx, rev); err != nil {
			return fmt.Errorf("recording the revocation for shared signals: %w", err)
		}
	}
	return l.AuditLog.Write(ctx, rows...)
}

// Enqueue implements auditQueue when the log it wraps does. A batch with
// a revocation is handed to the sink at once, on a context of its own,
// and its rows are queued for the trail once the sink has them: the lane
// goes on meanwhile, and the wait returns once both are durable. A sink
// that fails leaves the rows out of the trail, so the message stays
// uncommitted and its redelivery is not mistaken for a finished command.
func (l *revocationLog) Enqueue(rows ...schemas.AuditRow) (func(context.Context) error, error) {
	q, ok := l.AuditLog.(auditQueue)
	if !ok {
		return nil, errNoQueue
	}
	rev := revokedRows(rows)
	if len(rev) == 0 {
		return q.Enqueue(rows...)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sent := make(chan error, 1)
	go func() { sent <- l.sink.Revoked(ctx, rev) }()
	return func(wctx context.Context) error {
		defer cancel()
		stop := context.AfterFunc(wctx, cancel)
		defer stop()
		if err := <-sent; err != nil {
			return fmt.Errorf("recording the revocation for shared signals: %w", err)
		}
		wait, err := q.Enqueue(rows...)
		if err != nil {
			return err
		}
		return wait(wctx)
	}, nil
}
