// Package engine is the detector's rule engine. It is pure: events go in
// with their event time, revoke commands come out. It reads no clock, starts
// no goroutines and knows nothing of Kafka, so the same events always yield
// the same commands, live or in a backtest.
//
// # Rules
//
// Rules are data: YAML files (see LoadDir, LoadFS and DefaultRules). Every
// rule has a kind that names its evaluator (sequence_threshold, distinct),
// conditions on event fields (match), the fields that split its state into
// groups (group_by), a window and a cooldown in event time, and what to do
// when it fires (severity, action, target, dry_run). A kind's parameters
// live in a block named after the kind, so a new kind is a new evaluator and
// a new block, and the common parts stay the same.
//
// # State
//
// Each rule keeps, per group key, the records of its matching events in
// event-time order. Records older than the rule's window plus the
// out-of-order allowance (Config.Allowance) before the group's newest event
// are pruned on insert; whole groups and cooldown entries that went idle are
// evicted as the engine's watermark (the newest event time seen) moves on.
// An event older than its group's newest event by more than the allowance is
// late: it is counted and ignored. Duplicate event ids (at-least-once
// delivery upstream) are counted once.
//
// # Commands
//
// A firing rule yields a schemas.RevokeCommand whose id is
// schemas.DetectionCommandID over the rule id and version, the target and
// the evidence event ids, so the same events always make the same command.
// Its times are event times: Reason.DetectedAt is the time of the event that
// completed the pattern, IssuedAt equals it and ExpiresAt is IssuedAt plus
// Config.CommandTTL; a service may restamp IssuedAt, ExpiresAt and
// DetectedAt with wall-clock times without changing the id. A rule fires at
// most once per target per cooldown.
//
// An Engine is not safe for concurrent use; callers serialise Process.
package engine
