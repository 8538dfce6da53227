package schemas

import (
	"testing"
	"time"
)

// BenchmarkComputeHash hashes a confirmed revocation's audit row as the
// consumer writes it, evidence and its context included.
func BenchmarkComputeHash(b *testing.B) {
	at := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	r := AuditRow{
		RowID: "row-0123456789abcdef", Chain: "consumer-0", Seq: 1234, Time: at,
		CommandID: "cmd_0123456789abcdef0123456789abcdef", Step: StepConfirmed, Detail: "revoked; introspection: inactive",
		Issuer: "detector", Actor: "consumer-0", TargetKind: TargetToken, UserID: "user-000123",
		TokenID: "tok_0123456789abcdef0123456789abcdef", SessionID: "s-user-000123", ClientID: "web-app",
		Action: ActionRevoke, Mode: ModeEnforce, RuleID: "token_replay", RuleVersion: 3, Severity: SeverityHigh,
		Summary:  "token used from two networks 900 km apart within 4 minutes",
		Evidence: []string{"ev-000123-a", "ev-000123-b"}, EvidenceContext: []string{"ev-000123-a 203.0.113.7 DE AS3320", "ev-000123-b 198.51.100.9 US AS7922"},
		FirstEventTime: at.Add(-4 * time.Minute), LastEventTime: at, DetectedAt: at, IssuedAt: at, ExpiresAt: at.Add(time.Hour),
		IdPStatus: 200, TokensRevoked: 1, Attempts: 1, DetectLatencyMs: 3, RevokeLatencyMs: 5,
		SourceTopic: TopicRevokeCommands, SourcePartition: 3, SourceOffset: 987654,
		PrevHash: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = r.ComputeHash()
	}
}
