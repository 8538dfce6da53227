package engine

import (
	"time"
)

// BaselineEntry is one learned fact of a first_seen rule, for a store that
// keeps baselines across restarts (they outlive any replay of the input).
// Key is the rule's group key (the user id). An entry with Field and
// Value empty gives the start of the group's history (FirstSeen), which
// the learning period counts from. An entry with a zero LastSeen reports
// a value the engine forgot (beyond its bound or retention): the store may
// delete it.
type BaselineEntry struct {
	Rule      string    `json:"rule"`
	Key       string    `json:"key"`
	Field     string    `json:"field,omitempty"`
	Value     string    `json:"value,omitempty"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen,omitzero"`
}

// BaselineChanges drains the baseline entries learned or changed since the
// last call, in the order they changed: new values, history starts, and
// LastSeen moves of a day or more. A store that upserts them by (Rule,
// Key, Field, Value) and deletes those with a zero LastSeen holds what
// RestoreBaselines needs.
func (e *Engine) BaselineChanges() []BaselineEntry {
	var out []BaselineEntry
	if e.ctx != nil {
		out = e.ctx.drain(out)
	}
	for _, rs := range e.rules {
		if f, ok := rs.eval.(*firstSeenEval); ok {
			out = f.changes(out)
		}
	}
	return out
}

// RestoreBaselines loads entries (from BaselineChanges, as stored) into the
// baselines of the rules they name, keeping per field the most recently
// seen values within the rule's bound. Entries of rules the engine does
// not run, or of fields the rule no longer learns, are ignored. Restored
// entries are not reported again by BaselineChanges.
func (e *Engine) RestoreBaselines(entries []BaselineEntry) {
	byRule := make(map[string]*firstSeenEval)
	for _, rs := range e.rules {
		if f, ok := rs.eval.(*firstSeenEval); ok {
			byRule[rs.rule.ID] = f
		}
	}
	for _, en := range entries {
		if en.Rule == contextRule {
			if e.ctx != nil {
				e.ctx.restore(en)
			}
			continue
		}
		if f := byRule[en.Rule]; f != nil {
			f.restore(en)
		}
	}
}
