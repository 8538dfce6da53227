package service

import (
	"slices"
	"testing"
	"time"

	"github.com/revoked-dev/revoked/schemas"
)

// A held command rejected by an approver is audited with the evidence
// context its held row kept.
func TestCommandFromRowKeepsEvidenceContext(t *testing.T) {
	at := time.Date(2026, 11, 24, 9, 0, 5, 0, time.UTC)
	cmd := schemas.RevokeCommand{
		CommandID: "cmd_1", IssuedAt: at, ExpiresAt: at.Add(time.Hour), Issuer: "detector",
		Target: schemas.Target{Kind: schemas.TargetUser, UserID: "u-alice"}, Action: schemas.ActionRevoke, Mode: schemas.ModeEnforce,
		Reason: schemas.Reason{RuleID: "risk", RuleVersion: 1, Severity: schemas.SeverityHigh, Evidence: []string{"ev-1", "ev-2"},
			Context: []schemas.EventContext{{EventID: "ev-2", IP: "203.0.113.9", Country: "DE", ASN: 3320, ASOrg: "Deutsche Telekom AG"}}},
	}
	held := schemas.RowFromCommand(&cmd)
	back := commandFromRow(held)
	if !slices.Equal(back.Reason.Context, cmd.Reason.Context) {
		t.Errorf("context %+v, want %+v", back.Reason.Context, cmd.Reason.Context)
	}
	if r := schemas.RowFromCommand(&back); !slices.Equal(r.EvidenceContext, held.EvidenceContext) {
		t.Errorf("the rejection row's context %q, the held row's %q", r.EvidenceContext, held.EvidenceContext)
	}
	held.EvidenceContext = append(held.EvidenceContext, "not JSON")
	if back := commandFromRow(held); len(back.Reason.Context) != 1 {
		t.Errorf("an entry that does not decode: context %+v, want the one that does", back.Reason.Context)
	}
}
