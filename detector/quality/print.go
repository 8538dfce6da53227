package quality

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Print writes r as tables: per kind of attack, per benign class, per
// rule, then the overall figures and the targets.
func (r Report) Print(w io.Writer) error {
	if len(r.Profiles) > 0 {
		fmt.Fprintf(w, "== %s: %s (%d users in all): %d events in %s; engine %.0f events/s\n\n",
			r.Profile, strings.Join(r.Profiles, ", "), r.Users, r.Events, r.Elapsed.Round(time.Millisecond), r.EngineEventsPerSec)
	} else {
		fmt.Fprintf(w, "== profile %s: %d users, %s simulated from %s, seed %d: %d events in %s; engine %.0f events/s\n\n",
			r.Profile, r.Users, r.Duration, r.Start.UTC().Format(time.RFC3339), r.Seed, r.Events, r.Elapsed.Round(time.Millisecond), r.EngineEventsPerSec)
	}
	o := r.Overall
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "attack kind\tattacked users\tdetected\trecall\tdetect p50\tdetect p95\t")
	for _, k := range r.Kinds {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t\n", k.Kind, k.Attacks, k.Detected, pct(k.Recall), dur(k.TimeToDetect, false), dur(k.TimeToDetect, true))
	}
	fmt.Fprintf(tw, "all attacked users\t%d\t%d\t%s\t%s\t%s\t\n", o.AttackedUsers, o.DetectedUsers, pct(o.Recall), dur(o.TimeToDetect, false), dur(o.TimeToDetect, true))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "benign class\tbenign users\trevoked\trate\t")
	for _, c := range r.Classes {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t\n", c.Class, c.Users, c.Revoked, pct3(c.Rate))
	}
	fmt.Fprintf(tw, "all benign users\t%d\t%d\t%s\t\n", o.BenignUsers, o.BenignRevoked, pct3(o.BenignRevokedRate))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "rule\tcommands\tmatched\tunmatched\tbenign users revoked\tlatency p50\tlatency p95\t")
	for _, l := range r.Rules {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t%s\t\n", l.Rule, l.Commands, l.TruePositives, l.FalsePositives, l.BenignRevoked, dur(l.Latency, false), dur(l.Latency, true))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nattacked users detected: %d of %d (%s), target %s overall and %s in every kind\n",
		o.DetectedUsers, o.AttackedUsers, pct(o.Recall), pct(TargetRecall), pct(TargetKindRecall))
	fmt.Fprintf(w, "benign users revoked: %d of %d (%s), target at most %s overall and %s in every class\n",
		o.BenignRevoked, o.BenignUsers, pct3(o.BenignRevokedRate), pct3(TargetBenignRevoked), pct3(TargetClassRevoked))
	fmt.Fprintf(w, "logouts honoured: %d of %d (%s)\n", o.LogoutsHonoured, o.Logouts, pct(o.LogoutRate))
	fmt.Fprintf(w, "precision of detections (logouts left out): %s of %d commands\n", pct(o.PrecisionDetections), o.Commands-o.LogoutCommands)
	for _, m := range o.MissedAttacks {
		if _, err := fmt.Fprintf(w, "  missed: %s\n", m); err != nil {
			return err
		}
	}
	for _, u := range o.BenignRevokedUsers {
		fmt.Fprintf(w, "  benign revoked: %s\n", u)
	}
	if f := r.Failures(); len(f) > 0 {
		fmt.Fprintf(w, "targets missed (%d):\n", len(f))
		for _, s := range f {
			fmt.Fprintf(w, "  %s\n", s)
		}
	} else {
		fmt.Fprintln(w, "all targets met")
	}
	fmt.Fprintln(w)
	return nil
}

func pct(f float64) string  { return fmt.Sprintf("%.1f%%", 100*f) }
func pct3(f float64) string { return fmt.Sprintf("%.3f%%", 100*f) }

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
