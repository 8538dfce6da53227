package quality

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// Print writes r as a table.
func (r Report) Print(w io.Writer) error {
	fmt.Fprintf(w, "profile: %d users, %s simulated, seed %d: %d events in %s; engine %.0f events/s\n\n",
		r.Users, r.Duration, r.Seed, r.Events, r.Elapsed.Round(time.Millisecond), r.EngineEventsPerSec)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "rule\tattacks\tby rule\tby any\trecall\tcommands\tfalse pos.\tprecision\tttd p50\tttd p95\tlatency p50\tlatency p95\t")
	for _, l := range r.Rules {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t\n", l.Rule, l.Attacks, l.DetectedByRule, l.DetectedByAny,
			pct(l.Recall), l.Commands, l.FalsePositives, pct(l.Precision),
			dur(l.TimeToDetect, false), dur(l.TimeToDetect, true), dur(l.Latency, false), dur(l.Latency, true))
	}
	o := r.Overall
	fmt.Fprintf(tw, "overall (users)\t%d\t%d\t%d\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t\n", o.AttackedUsers, o.DetectedUsersRule, o.DetectedUsers,
		pct(o.Recall), o.Commands, o.FalsePositives, pct(o.Precision),
		dur(o.TimeToDetect, false), dur(o.TimeToDetect, true), dur(o.Latency, false), dur(o.Latency, true))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nattacked users detected: %d of %d (%s; by the expected rule %s), target %s\n",
		o.DetectedUsers, o.AttackedUsers, pct(o.Recall), pct(o.RecallRule), pct(TargetRecall))
	fmt.Fprintf(w, "benign users revoked: %d of %d (%.3f%%), target at most %.1f%%\n",
		o.BenignRevoked, o.BenignUsers, 100*o.BenignRevokedRate, 100*TargetBenignRevoked)
	fmt.Fprintf(w, "precision of detections (logouts answered left out): %s\n", pct(o.PrecisionDetections))
	for _, u := range o.BenignRevokedUsers {
		fmt.Fprintf(w, "  benign revoked: %s\n", u)
	}
	return nil
}

func pct(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) }

func dur(p Percentiles, p95 bool) string {
	d := p.P50
	if p95 {
		d = p.P95
	}
	switch {
	case p.N == 0:
		return "-"
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(100 * time.Microsecond).String()
	default:
		return d.Round(time.Second).String()
	}
}
