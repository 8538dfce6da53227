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
// A rule file:
//
//	id: brute_force_success          # a-z, 0-9, '_', '.', '-'
//	version: 1                       # bump when the logic changes
//	description: Failed logins, then a successful one.
//	kind: sequence_threshold         # or distinct
//	match:                           # optional; all must hold
//	  - field: source
//	    in: [okta, keycloak]         # or equals: okta
//	group_by: [user_id]              # state is kept per value
//	window: 10m                      # event time
//	cooldown: 1h                     # per target; defaults to the window
//	severity: high                   # low, medium, high, critical
//	action: revoke_and_reverify      # revoke, revoke_and_reverify, notify
//	target:
//	  kind: user                     # user, token, session, client
//	  include_downscoped: true
//	dry_run: false
//	allowlist:
//	  user_ids: [svc-monitor]
//	sequence_threshold:              # the block named by kind
//	  count: 5
//	  of:   [{field: type, equals: login.failure}]
//	  then: [{field: type, equals: login.success}]
//	  reset: true                    # a then event clears the of events before it
//	  reset_by: [ip]                 # ... only those from its own ip
//
// The distinct block names fields and a minimum:
//
//	distinct:
//	  fields: [geo.country, geo.asn] # fires when any one reaches min
//	  min: 2
//
// Fields are those of schemas.AuditEvent by their JSON names, nested ones
// dotted (geo.country, geo.asn, resource.type), and attrs.<key>; see
// FieldNames. A file may hold several rules as YAML documents separated by
// "---". Unknown keys, unknown fields and unknown event types are errors,
// reported with file and line.
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
// Lateness is judged per group, so one user's events are not late merely
// because another partition is ahead; idle groups are evicted against the
// engine-wide watermark, so a detector reading partitions that are far
// apart in event time should have an allowance that covers the gap. The
// watermark only moves forward: an event dated far in the future would
// evict every group, which is why the service refuses events beyond its
// clock skew before they reach the engine.
//
// # Commands
//
// A firing rule yields a schemas.RevokeCommand whose id is
// schemas.DetectionCommandID over the rule id and version, the target and
// the evidence event ids, so the same events always make the same command.
// Its times are event times: Reason.LastEventTime and Reason.DetectedAt are
// the time of the event that completed the pattern, IssuedAt equals it and ExpiresAt is IssuedAt plus
// Config.CommandTTL; a service may restamp IssuedAt, ExpiresAt and
// DetectedAt with wall-clock times without changing the id. A rule fires at
// most once per target per cooldown.
//
// An Engine is not safe for concurrent use; callers serialise Process.
package engine
