package api

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/revoked-dev/revoked/schemas"
)

// WriteTable prints audit rows as an aligned text table, newest first, for
// the `consumer history` command.
func WriteTable(w io.Writer, rows []schemas.AuditRow) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME (UTC)\tSTEP\tOUTCOME\tTARGET\tRULE\tACTION\tMODE\tREVOKED\tLATENCY\tCOMMAND\tDETAIL")
	for _, r := range rows {
		latency := "-"
		if r.RevokeLatencyMs > 0 {
			latency = (time.Duration(r.RevokeLatencyMs) * time.Millisecond).String()
		}
		detail := r.Detail
		if detail == "" {
			detail = r.Proof
		}
		outcome := Outcome(r.Step)
		if outcome == "" {
			outcome = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n",
			r.Time.UTC().Format("2006-01-02 15:04:05"), r.Step, outcome, target(r), r.RuleID, r.Action, r.Mode,
			r.TokensRevoked, latency, r.CommandID, oneLine(detail, 60))
	}
	if len(rows) == 0 {
		fmt.Fprintln(tw, "(no revocations)")
	}
	return tw.Flush()
}

// Outcome is the outcome of a revocation a step records: confirmed (a
// proof shows every targeted token inactive), unconfirmed (the token API
// accepted and offers no proof) or not_effective (a proof shows a token
// still active); the revoked and verified steps of older trails read as
// unconfirmed and confirmed. Other steps record no outcome: "".
func Outcome(s schemas.Step) schemas.Step {
	switch s {
	case schemas.StepConfirmed, schemas.StepVerified:
		return schemas.StepConfirmed
	case schemas.StepUnconfirmed, schemas.StepRevoked:
		return schemas.StepUnconfirmed
	case schemas.StepNotEffective:
		return schemas.StepNotEffective
	}
	return ""
}

func target(r schemas.AuditRow) string {
	id := map[schemas.TargetKind]string{
		schemas.TargetUser: r.UserID, schemas.TargetToken: r.TokenID,
		schemas.TargetSession: r.SessionID, schemas.TargetClient: r.ClientID,
	}[r.TargetKind]
	s := string(r.TargetKind) + ":" + id
	if r.IncludeDownscoped {
		s += "+downscoped"
	}
	return s
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
