// Package guard is the one guard package of both components, on the one
// guard core (internal/allowlist, internal/budget, internal/killswitch and
// internal/held): Guard is the detector's, Consumer the consumer's (see
// consumer.go), configured the same way (-guard.budget, -guard.rule-budget,
// -guard.rule-budgets, -guard.allowlist-file, -guard.kill-switch-file, the
// admin token, the held topics) and answering one Decision.
//
// Every command the detector's rule engine builds passes through a Guard
// before it is signed and published; the Guard decides, in this order:
//
//  1. A dry_run command stays dry_run and passes: it takes nothing from the
//     budget and starts no cooldown. Nothing here ever turns a dry_run
//     command into an enforce one.
//  2. While the kill switch is on (a file exists, or an operator turned it
//     on over HTTP), every command becomes dry_run.
//  3. A command whose target, client or source IP is allowlisted for its
//     rule and action becomes dry_run. It is demoted rather than dropped so
//     that the audit trail still shows what the detector would have done.
//  4. An enforce command for a target that another enforce command named
//     within Config.Cooldown, whatever its rule, is suppressed: it is not
//     published at all. Notifications count apart: a notification is
//     suppressed after a revocation or a notification of its target, and a
//     revocation only after a revocation.
//  5. An enforce command that revokes (any action but notify) beyond the
//     revocation budget, per minute globally or per rule, is held: the
//     service publishes it, signed as usual, to the held topic instead of
//     the command topic, and logs an error. An operator approves it
//     (republished to the command topic with a header naming the approver)
//     or rejects it (recorded, never published). See held.TopicStore.
//
// The budget counts, over a sliding minute of the Guard's clock, the
// commands it let through as enforce; held, suppressed and dry_run commands
// do not count, and neither do approvals, which are an operator's decision.
package guard
