package campaign

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/schemas"
)

// Report summarises a campaign: what it targeted and published, and what
// the audit trail says became of its commands.
type Report struct {
	CampaignID string
	Kind       schemas.TargetKind
	Targeted   int
	// Published counts targets whose command Kafka acknowledged.
	Published int
	Runs      int
	Mode      schemas.Mode
	StartedAt time.Time
	// FinishedAt is when the last command was published (zero until then).
	FinishedAt time.Time
	// Complete says every command and the report command are published.
	Complete        bool
	ReportCommandID string
	// Audit holds the outcomes from the audit trail; nil when it was not
	// consulted or could not be read (AuditErr says why).
	Audit    *AuditCounts
	AuditErr error
}

// AuditCounts are a campaign's commands by their furthest step in the
// audit trail. Each command counts once.
type AuditCounts struct {
	// Seen counts commands with any row; the rest of the published ones
	// have not reached the consumer yet (or its rows the store).
	Seen int
	// Revoked: executed, of which Confirmed by the token API's proof and
	// Unconfirmed (no proof offered; older trails' revoked steps too).
	// DryRun: audited, nothing revoked.
	Revoked, Confirmed, Unconfirmed, DryRun int
	// NotEffective: accepted by the token API while its proof showed a
	// targeted token still active; dead-lettered, counted in Failed too.
	NotEffective int
	// Failed: dead-lettered, or failed and not yet retried to success.
	Failed int
	// Held: waiting for approval.
	Held int
	// Rejected: refused by the consumer (expired, replayed, bad signature)
	// and never executed.
	Rejected int
	// Pending: received, no outcome yet.
	Pending int
}

func newReport(st *State) Report {
	return Report{
		CampaignID: st.CampaignID, Kind: st.Kind, Targeted: st.Total, Published: st.Next, Runs: st.Runs, Mode: st.Mode,
		StartedAt: st.StartedAt, FinishedAt: st.FinishedAt, Complete: st.Complete(), ReportCommandID: st.ReportCommandID,
	}
}

// Summary is the report on one line, as the report command carries it.
func (r Report) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "campaign %s: %d %s targets, %d commands published", r.CampaignID, r.Targeted, r.Kind, r.Published)
	if r.Mode == schemas.ModeDryRun {
		b.WriteString(" (dry run)")
	}
	if a := r.Audit; a != nil {
		fmt.Fprintf(&b, "; audit trail: %d revoked (%d confirmed, %d unconfirmed), %d failed (%d not effective), %d held, %d rejected, %d dry run, %d pending, %d not yet seen",
			a.Revoked, a.Confirmed, a.Unconfirmed, a.Failed, a.NotEffective, a.Held, a.Rejected, a.DryRun, a.Pending, r.Published-a.Seen)
	} else if r.AuditErr != nil {
		b.WriteString("; audit trail unavailable")
	} else {
		b.WriteString("; audit trail not consulted")
	}
	return b.String()
}

// String is the report for people, several lines.
func (r Report) String() string {
	var b strings.Builder
	state := "in progress"
	if r.Complete {
		state = "complete"
	}
	fmt.Fprintf(&b, "campaign %s (%s, %s)\n", r.CampaignID, state, r.Mode)
	fmt.Fprintf(&b, "  targets:   %d %s\n", r.Targeted, r.Kind)
	fmt.Fprintf(&b, "  published: %d (%d left) in %d run(s)\n", r.Published, r.Targeted-r.Published, r.Runs)
	fmt.Fprintf(&b, "  started:   %s\n", r.StartedAt.Format(time.RFC3339))
	if !r.FinishedAt.IsZero() {
		fmt.Fprintf(&b, "  finished:  %s (%s)\n", r.FinishedAt.Format(time.RFC3339), r.FinishedAt.Sub(r.StartedAt).Round(time.Millisecond))
	}
	if a := r.Audit; a != nil {
		fmt.Fprintf(&b, "  audit:     %d revoked (%d confirmed, %d unconfirmed), %d failed (%d not effective), %d held, %d rejected, %d dry run, %d pending, %d not yet seen\n",
			a.Revoked, a.Confirmed, a.Unconfirmed, a.Failed, a.NotEffective, a.Held, a.Rejected, a.DryRun, a.Pending, r.Published-a.Seen)
	} else if r.AuditErr != nil {
		fmt.Fprintf(&b, "  audit:     unavailable: %v\n", r.AuditErr)
	} else {
		b.WriteString("  audit:     not consulted (no audit store configured)\n")
	}
	if r.ReportCommandID != "" {
		fmt.Fprintf(&b, "  report:    command %s\n", r.ReportCommandID)
	}
	return b.String()
}

// Status reads campaign id's checkpoint from dir and, when h is not nil,
// counts its commands' outcomes in the audit trail.
func Status(ctx context.Context, dir, id string, h HistoryReader) (Report, error) {
	st, err := LoadState(dir, id)
	if err != nil {
		return Report{}, err
	}
	rep := newReport(st)
	if h != nil {
		rep.Audit, rep.AuditErr = CountAudit(ctx, h, st)
	}
	return rep, nil
}

func (r *Runner) countAudit(ctx context.Context, st *State) (*AuditCounts, error) {
	if r.audit == nil {
		return nil, nil
	}
	return CountAudit(ctx, r.audit, st)
}

// stepRank orders the steps by how far they say a command got; a
// command counts under its furthest step.
var stepRank = map[schemas.Step]int{
	schemas.StepReceived:     1,
	schemas.StepHeld:         2,
	schemas.StepFailed:       3,
	schemas.StepRejected:     4,
	schemas.StepDeadLettered: 5,
	schemas.StepDryRun:       6,
	schemas.StepNotified:     6,
	schemas.StepNotEffective: 5,
	schemas.StepRevoked:      7,
	schemas.StepUnconfirmed:  7,
	schemas.StepVerified:     8,
	schemas.StepConfirmed:    8,
}

// CountAudit counts the outcomes of the campaign's commands (not its
// report) from the audit trail: rows of rule "campaign" and the campaign's
// issuer since it started.
func CountAudit(ctx context.Context, h HistoryReader, st *State) (*AuditCounts, error) {
	issuer := IssuerPrefix + st.CampaignID
	furthest := make(map[string]schemas.Step)
	q := audit.Query{RuleID: RuleID, From: st.StartedAt.Add(-time.Minute), To: time.Now().Add(time.Minute)}
	err := pageHistory(ctx, h, q, func(row *schemas.AuditRow) {
		if row.Issuer != issuer || row.Action == schemas.ActionNotify {
			return
		}
		if cur, ok := furthest[row.CommandID]; !ok || stepRank[row.Step] > stepRank[cur] {
			furthest[row.CommandID] = row.Step
		}
	})
	if err != nil {
		return nil, fmt.Errorf("counting campaign outcomes in the audit trail: %w", err)
	}
	c := &AuditCounts{Seen: len(furthest)}
	for _, s := range furthest {
		switch s {
		case schemas.StepConfirmed, schemas.StepVerified:
			c.Revoked++
			c.Confirmed++
		case schemas.StepUnconfirmed, schemas.StepRevoked:
			c.Revoked++
			c.Unconfirmed++
		case schemas.StepDryRun:
			c.DryRun++
		case schemas.StepNotEffective:
			c.Failed++
			c.NotEffective++
		case schemas.StepFailed, schemas.StepDeadLettered:
			c.Failed++
		case schemas.StepHeld:
			c.Held++
		case schemas.StepRejected:
			c.Rejected++
		default:
			c.Pending++
		}
	}
	return c, nil
}
