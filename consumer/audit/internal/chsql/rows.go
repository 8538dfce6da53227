package chsql

import (
	"time"

	"github.com/revoked-dev/revoked/schemas"
)

// The audit table has no Nullable columns: a row's zero times are stored
// as the epoch, a DateTime column's "no time"; nil evidence and evidence
// context as empty arrays; IncludeDownscoped as a UInt8 0 or 1. StoredRow and LoadRow map a
// row to the stored values and back, whichever way a backend then encodes
// or decodes them.

// StoredRow returns r with the values the table stores: the epoch for
// each zero time, every other time in UTC, and an empty array for nil
// evidence or evidence context.
func StoredRow(r schemas.AuditRow) schemas.AuditRow {
	for _, t := range times(&r) {
		if t.IsZero() {
			*t = time.Unix(0, 0).UTC()
		} else {
			*t = t.UTC()
		}
	}
	if r.Evidence == nil {
		r.Evidence = []string{}
	}
	if r.EvidenceContext == nil {
		r.EvidenceContext = []string{}
	}
	return r
}

// LoadRow turns r, as read from the table, back into the row that was
// stored: a time at or before the epoch becomes the zero time, every other
// time is in UTC, and empty evidence or evidence context becomes nil (a
// row written before the column existed reads back with none).
func LoadRow(r *schemas.AuditRow) {
	for _, t := range times(r) {
		if t.Unix() <= 0 {
			*t = time.Time{}
		} else {
			*t = t.UTC()
		}
	}
	if len(r.Evidence) == 0 {
		r.Evidence = nil
	}
	if len(r.EvidenceContext) == 0 {
		r.EvidenceContext = nil
	}
}

// Bool returns b as the table stores it, a UInt8.
func Bool(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// times are the row's DateTime columns.
func times(r *schemas.AuditRow) []*time.Time {
	return []*time.Time{&r.Time, &r.FirstEventTime, &r.LastEventTime, &r.DetectedAt, &r.IssuedAt, &r.ExpiresAt}
}
