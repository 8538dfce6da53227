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

// A timeline's events entry carries the evidence context of its command,
// decoded; entries that do not decode are left out, and a row written
// before the column existed has none.
func TestTimelineEvidenceContext(t *testing.T) {
	ctx := []schemas.EventContext{
		{EventID: "ev-1", IP: "203.0.113.10", Country: "RU", ASN: 12389, ASOrg: "PJSC Rostelecom"},
		{EventID: "ev-3", IP: "2001:db8::3"},
	}
	r := audittest.Row(0)
	r.Evidence = []string{"ev-1", "ev-2", "ev-3"}
	r.EvidenceContext = append(schemas.EncodeEventContexts(ctx), "not JSON")
	var events *audit.TimelineEntry
	tl := audit.BuildTimeline([]schemas.AuditRow{r})
	for i := range tl {
		if tl[i].Kind == audit.TimelineEvents {
			events = &tl[i]
		}
	}
	if events == nil {
		t.Fatalf("no events entry in %+v", tl)
	}
	if len(events.EvidenceContext) != 2 || events.EvidenceContext[0] != ctx[0] || events.EvidenceContext[1] != ctx[1] {
		t.Errorf("evidence context %+v, want %+v", events.EvidenceContext, ctx)
	}
	r.EvidenceContext = nil
	for _, e := range audit.BuildTimeline([]schemas.AuditRow{r}) {
		if e.EvidenceContext != nil {
			t.Errorf("%s entry of a row without context: %+v", e.Kind, e.EvidenceContext)
		}
	}
}
