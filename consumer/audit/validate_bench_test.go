package audit

import (
	"testing"
	"time"

	"github.com/revoked-dev/revoked/schemas"
)

// BenchmarkValidateRow checks a confirmed revocation's row as the Writer
// and every store check each row they are given.
func BenchmarkValidateRow(b *testing.B) {
	at := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	r := schemas.AuditRow{
		RowID: "row-0123456789abcdef", Chain: "consumer-0", Seq: 2, Time: at,
		CommandID: "cmd_0123456789abcdef", Step: schemas.StepConfirmed, Detail: "revoked; introspection: inactive",
		Issuer: "detector", Actor: "consumer-0", TargetKind: schemas.TargetToken, UserID: "user-000123",
		TokenID: "tok_0123456789abcdef", ClientID: "web-app", Action: schemas.ActionRevoke, Mode: schemas.ModeEnforce,
		RuleID: "token_replay", RuleVersion: 3, Severity: schemas.SeverityHigh,
		Summary:  "token used from two networks 900 km apart within 4 minutes",
		Evidence: []string{"ev-000123-a", "ev-000123-b"}, FirstEventTime: at.Add(-4 * time.Minute), LastEventTime: at,
		DetectedAt: at, IssuedAt: at, ExpiresAt: at.Add(time.Hour), IdPStatus: 200,
		PrevHash: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
	}
	r.Hash = r.ComputeHash()
	b.ReportAllocs()
	for b.Loop() {
		if err := ValidateRow(0, &r); err != nil {
			b.Fatal(err)
		}
	}
}
