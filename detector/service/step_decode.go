package service

import (
	"fmt"
	"strings"
	"time"

	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/schemas"
)

// decodeStep refuses what can never be handled, as poison: a value of
// another schema, an event that does not decode strictly, and an event
// further ahead of the detector's clock than max-clock-skew.
func (s *Service) decodeStep(f *flight, next next) error {
	m := f.msg
	if schema := headerBytes(m, schemas.HeaderSchema); len(schema) > 0 && string(schema) != schemas.SchemaAuditEventV1 {
		s.metrics.events.WithLabelValues(resultInvalid).Inc()
		return kafkax.Poison(fmt.Sprintf("unexpected schema %.64q, want %s", schema, schemas.SchemaAuditEventV1), nil)
	}
	ev, err := schemas.DecodeEvent(m.Value)
	if err != nil {
		s.metrics.events.WithLabelValues(resultInvalid).Inc()
		return kafkax.Poison("invalid audit event", decodeCause(err))
	}
	now := s.now()
	if ahead := ev.Time.Sub(now); ahead > s.cfg.MaxClockSkew {
		s.metrics.events.WithLabelValues(resultSkewed).Inc()
		return kafkax.Poison(fmt.Sprintf("event time is %s ahead of the detector's clock (max-clock-skew %s)", ahead.Round(time.Second), s.cfg.MaxClockSkew), nil)
	}
	f.ev, f.now = ev, now
	return next(f)
}

// enrichStep adds address context (country, ASN, network kind) to the
// event before the engine sees it (with enrichment off it adds nothing),
// and remembers the event's context for the evidence of the commands it
// and later events complete (evidenceIndex).
func (s *Service) enrichStep(f *flight, next next) error {
	s.enrich.Enrich(&f.ev)
	s.evidence.add(&f.ev)
	return next(f)
}

// decodeCause is a DecodeEvent error without its ErrInvalidEvent prefix
// (the dead-letter reason says that already), on one line, so that the
// dlq-reason header reads "invalid audit event: field \"time\": required;
// field \"type\": required".
func decodeCause(err error) error {
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, schemas.ErrInvalidEvent.Error()+": "); ok {
		msg = rest
	}
	return &causeError{msg: strings.ReplaceAll(msg, "\n", "; "), err: err}
}

// causeError rewords an error and keeps it for errors.Is and errors.As.
type causeError struct {
	msg string
	err error
}

func (e *causeError) Error() string { return e.msg }
func (e *causeError) Unwrap() error { return e.err }
