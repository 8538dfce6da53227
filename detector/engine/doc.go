// Package engine is the detector's rule engine. It is pure: events go in
// with their event time, revoke commands come out. It reads no clock, starts
// no goroutines and knows nothing of Kafka, so the same events always yield
// the same commands, live or in a backtest.
//
// # Rules
//
// Rules are data: YAML files (see LoadDir, LoadFS and DefaultRules). Every
// rule has a kind that names its evaluator, a condition in CEL on the events
// it looks at (when), the fields that split its state into groups
// (group_by), a window and a cooldown in event time, and what to do when it
// fires (severity, action, target, dry_run), with an allowlist of its own. A
// kind's parameters live in a block named after the kind, so a new kind is
// a new evaluator and a new block, and the common parts stay the same.
//
// A rule file:
//
//	id: brute_force_success          # a-z, 0-9, '_', '.', '-'
//	version: 1                       # bump when the logic changes
//	description: Failed logins, then a successful one.
//	kind: sequence_threshold
//	when: event.source in ["okta", "keycloak"]   # optional, CEL
//	group_by: [user_id]              # state is kept per value
//	window: 10m                      # event time
//	cooldown: 1h                     # per target; defaults to the window
//	cooldown_scope: target           # or group: one command per group
//	severity: high                   # low, medium, high, critical
//	action: revoke_and_reverify      # revoke, revoke_and_reverify, notify
//	target:
//	  kind: user                     # user, token, session, client
//	  include_downscoped: true
//	dry_run: false
//	allowlist:                       # events the rule ignores
//	  user_ids: [svc-monitor]
//	  ips: [10.0.0.0/8, 192.0.2.7]
//	  client_ids: [backup-bot]
//	sequence_threshold:              # the block named by kind
//	  count: 5
//	  of: event.type == "login.failure"
//	  then: event.type == "login.success"
//	  reset: true                    # a then event clears the of events before it
//	  reset_by: [ip]                 # ... only those from its own ip
//
// A file may hold several rules as YAML documents separated by "---".
// Unknown keys, unknown fields and unknown event types are errors. Every
// problem of every file is reported at once, each with its file, line and
// reason (see LoadError).
//
// # Signals and risk
//
// A rule with a signal block ({weight: 0.6, scope: session}) and no action
// is a signal: when it fires, its detection is evidence for the risk model
// (the one rule of kind risk, see KindRisk), which adds the weight to the
// user's risk (and, with scope session, to the risk of the token or
// session the rule's target names), lets each weight halve every
// half_life, and issues the command of the highest threshold the risk
// reaches (notify, revoke_and_reverify, revoke), naming every contributing
// signal with its weight and what the context saw (schemas.Reason.Signals
// and Risk). Rules with an action (logout, downscoped_misuse,
// token_after_password_change, password_spraying in the default pack)
// issue commands directly, as before.
//
// # Context
//
// Before the rules see an event, the engine works out its Context: whether
// its device, network (ASN) and country are new to the user, whether its
// address is a shared egress and its network one the organisation uses,
// and how the event's token is used against what it was bound to when
// issued (another device, another network or country, two devices at
// once). Conditions read it as the variable ctx (ctx.new_device,
// ctx.token_interleaved, ...). The user and organisation baselines behind
// it are drained by BaselineChanges and restored by RestoreBaselines;
// token bindings are rebuilt by replay. An engine none of whose rules
// reads ctx keeps no context.
//
// # Conditions
//
// Conditions are CEL expressions over the variables event and ctx, event
// typed with the event's JSON field names: event.type, event.user_id, event.ip,
// event.scopes (a list), event.bytes (an int), event.attrs["k"] (a map),
// event.geo.country, event.geo.asn (an int), event.geo.network (hosting,
// cellular, residential, business, vpn; see internal/enrich), has(event.geo.lat),
// event.resource.id and so on; absent strings read as "". They are compiled
// when rules load: a syntax or type error, a result that is not a bool, or
// an event type compared with event.type that does not exist is a load
// error. An expression that fails while evaluating (a missing map key:
// write "k" in event.attrs && event.attrs["k"] == "v") is false. Compiled
// programs are cached by their text, and a condition that names the event
// types it holds for (event.type == "x", event.type in [...], as a
// conjunct) is not evaluated at all for other types. Rule files of an
// earlier format, with lists of {field, equals|in} conditions in place of
// CEL (under match:, of:, then:), are refused, each error naming the CEL
// to write instead.
//
// Fields named in group_by, distinct, reset_by, join and first_seen are
// those of FieldNames: the event's fields by JSON name, nested ones dotted
// (geo.country, resource.id), attrs.<key>, and ip.prefix (the /24 or /48
// of the address).
//
// # Kinds
//
//	threshold:          {count: 10}
//	  at least count events of the group within the window
//	distinct:           {fields: [geo.country, geo.asn, ip.prefix], min: 2,
//	                     min_per_field: {ip.prefix: 4}, max_per_value: 3}
//	  at least min distinct values of any one field within the window;
//	  with max_per_value, values seen more often than that do not count
//	sequence:
//	  join: token_id                  # optional: steps share its value
//	  steps:
//	    - when: event.type == "login.failure"
//	      count: 10                   # events needed (default 1)
//	      distinct: user_id           # ... with distinct values of it
//	    - when: event.type == "password.changed"
//	      join: differ                # same (default), differ or any
//	    - when: event.type == "login.success"
//	  the steps in order within the window, each after the last
//	sequence_threshold: see above
//	geo_velocity:       {max_kmh: 1000, min_distance_km: 500, ignore_same_asn: true}
//	  consecutive located events implying a speed above max_kmh
//	first_seen:
//	  fields: [geo.country, geo.asn]  # a value new to the group
//	  learning: 168h                  # after this much history
//	  max_values: 16                  # per field, most recent kept
//	  retention: 2160h                # values unseen this long are forgotten
//	  then: event.type == "share.created"   # optional, within the window
//	volume:             {field: bytes, min: 5368709120, min_count: 500}
//	  the sum of field (or the count of events) within the window
//	token_lineage:      {scopes: true, resource: true, revoked: true,
//	                     hierarchical_types: [folder]}
//	  a downscoped token used beyond its grant, or after an ancestor was
//	  revoked, learned from token.exchanged and token.revoked events
//
// The default pack (DefaultRules) has one file per rule under rules/, each
// with a description of its reasoning and thresholds.
//
// # State
//
// Each rule keeps, per group key, the records of its matching events in
// event-time order. Records older than the rule's window plus the
// out-of-order allowance (Config.Allowance) before the group's newest event
// are pruned on insert, as are records no later event can need (the last
// step of a sequence, the older located events of geo_velocity); groups
// left empty are dropped, and whole groups and cooldown entries that went
// idle are evicted as the engine's watermark (the newest event time seen)
// moves on. An event older than its group's newest event by more than the
// allowance is late: it is counted and ignored. Duplicate event ids
// (at-least-once delivery upstream) are counted once while their group
// holds them.
//
// Lateness is judged per group, so one user's events are not late merely
// because another partition is ahead; idle groups are evicted against the
// engine-wide watermark, so a detector reading partitions that are far
// apart in event time should have an allowance that covers the gap. The
// watermark only moves forward: an event dated far in the future would
// evict every group, which is why the service refuses events beyond its
// clock skew before they reach the engine.
//
// first_seen rules also keep, per group, a baseline of learned values that
// outlives any window. It is not rebuilt by replay: BaselineChanges drains
// what was learned (for a store to persist), RestoreBaselines loads it
// back. Everything else is rebuilt by replaying Horizon() of input with
// ProcessSilently, which learns and starts cooldowns without emitting;
// see ProcessSilently for the guarantee that a detection is emitted once.
//
// Rules grouped by something other than the user (ip for
// credential_stuffing and password_spraying, token_id for session_hijack)
// see, on one detector instance, only the events of the partitions it
// reads, since events are keyed by user.
//
// # Commands
//
// A firing rule yields a schemas.RevokeCommand whose id is
// schemas.DetectionCommandID over the rule id and version, the target and
// the evidence event ids, so the same events always make the same command.
// Its times are event times: Reason.LastEventTime and Reason.DetectedAt are
// the time of the event that completed the pattern, IssuedAt equals it and
// ExpiresAt is IssuedAt plus Config.CommandTTL; a service may restamp
// IssuedAt, ExpiresAt and DetectedAt with wall-clock times without changing
// the id. A rule fires at most once per target (or group, with
// cooldown_scope: group) per cooldown. The evidence holds at most
// MaxEvidenceRecords events, the newest.
//
// An Engine is not safe for concurrent use; callers serialise Process.
package engine
