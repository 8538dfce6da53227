package audit_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/consumer/audit/audittest"
	"github.com/revoked-dev/revoked/schemas"
)

// Evidence context is held to the rules of every other string of a row:
// valid UTF-8 and no raw token, which Normalize repairs as it does
// elsewhere.
func TestEvidenceContextValidatedAndNormalized(t *testing.T) {
	const jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEifQ.c2lnbmF0dXJl"
	r := audittest.Link("c", 0, "", []schemas.AuditRow{audittest.Row(1)})[0]
	if err := audit.ValidateRow(0, &r); err != nil {
		t.Fatalf("a row with context: %v", err)
	}
	for name, bad := range map[string]string{
		"raw token": `{"event_id":"` + jwt + `","ip":"192.0.2.7"}`,
		"not UTF-8": "{\"event_id\":\"\xff\",\"ip\":\"192.0.2.7\"}",
	} {
		b := r
		b.EvidenceContext = []string{r.EvidenceContext[0], bad}
		err := audit.ValidateRow(0, &b)
		var re *audit.RowError
		if !errors.As(err, &re) || re.Field != "evidence_context[1]" {
			t.Errorf("%s: ValidateRow = %v, want a RowError for evidence_context[1]", name, err)
		}
		audit.Normalize(&b)
		b.Hash = b.ComputeHash()
		if err := audit.ValidateRow(0, &b); err != nil {
			t.Errorf("%s: after Normalize: %v", name, err)
		}
		if strings.Contains(b.EvidenceContext[1], jwt) || b.EvidenceContext[0] != r.EvidenceContext[0] {
			t.Errorf("%s: Normalize left %q", name, b.EvidenceContext)
		}
	}
}
