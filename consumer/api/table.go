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
	fmt.Fprintln(tw, "TIME (UTC)\tSTEP\tTARGET\tRULE\tACTION\tMODE\tREVOKED\tLATENCY\tCOMMAND\tDETAIL")
	for _, r := range rows {
		latency := "-"
		if r.RevokeLatencyMs > 0 {
			latency = (time.Duration(r.RevokeLatencyMs) * time.Millisecond).String()
		}
		detail := r.Detail
		if detail == "" {
			detail = r.Proof
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n",
			r.Time.UTC().Format("2006-01-02 15:04:05"), r.Step, target(r), r.RuleID, r.Action, r.Mode,
			r.TokensRevoked, latency, r.CommandID, oneLine(detail, 60))
	}
	if len(rows) == 0 {
		fmt.Fprintln(tw, "(no revocations)")
	}
	return tw.Flush()
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
