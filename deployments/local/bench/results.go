package bench

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Results are what a run measured.
type Results struct {
	// Rows compare a part with its baseline, in the order they ran.
	Rows []Row
	// Latency has one entry per rate of the latency part.
	Latency []Latency
}

// Row is one part measured against its baseline.
type Row struct {
	// Part names the part, e.g. "audit (chDB)".
	Part string
	// Unit of both rates, e.g. "events/s".
	Unit string
	// Project is the rate of the project's component; Baseline that of
	// the plain client, which Against describes.
	Project, Baseline float64
	Against           string
	// Target is the least Ratio wanted.
	Target float64
}

// Ratio is Project / Baseline.
func (r Row) Ratio() float64 {
	if r.Baseline == 0 {
		return 0
	}
	return r.Project / r.Baseline
}

// Latency is the event → revoked latency of the whole stack at one rate.
type Latency struct {
	// Rate is the rate asked for; Achieved what the simulator published,
	// events per second.
	Rate, Achieved float64
	// Events published, and Revocations measured (the sample size).
	Events      int64
	Revocations int
	// CaughtUp says whether the detector read every event before the
	// drain ended.
	CaughtUp bool
	// Unfinished commands had not reached a terminal step at the end.
	Unfinished         int
	P50, P90, P99, Max time.Duration
	Target             time.Duration // 0: none
	// ToDetector and ToRevoked split each revocation's latency where the
	// detector took the event that completed the detection (the
	// command's detected_at): before it, the traffic's producer, Kafka
	// and the detector's queue; after it, the rule engine, the command
	// topic, the consumer and the token API. Each half's percentiles are
	// its own: its p99 and the other's need not be one revocation's.
	ToDetector, ToRevoked Split
	// CPU is how many cores the whole process used while the traffic
	// ran (user and system time over wall time), the simulator, the
	// broker and the token API included; 0 when not measured.
	CPU float64
}

// Split is the p50 and p99 of one half of the event → revoked latency.
type Split struct{ P50, P99 time.Duration }

// Revocation is one revocation's latency from its last event: to the
// detector taking that event, and to the token revoked.
type Revocation struct{ ToDetector, ToRevoked time.Duration }

// percentiles fills the latency percentiles from a sample.
func (l *Latency) percentiles(rs []Revocation) {
	l.Revocations = len(rs)
	if len(rs) == 0 {
		return
	}
	total, detect, rest := make([]time.Duration, len(rs)), make([]time.Duration, len(rs)), make([]time.Duration, len(rs))
	for i, r := range rs {
		total[i], detect[i], rest[i] = r.ToRevoked, r.ToDetector, r.ToRevoked-r.ToDetector
	}
	for _, s := range [][]time.Duration{total, detect, rest} {
		slices.Sort(s)
	}
	at := func(s []time.Duration, q float64) time.Duration { return s[min(len(s)-1, int(q*float64(len(s))))] }
	l.P50, l.P90, l.P99, l.Max = at(total, 0.50), at(total, 0.90), at(total, 0.99), total[len(total)-1]
	l.ToDetector = Split{P50: at(detect, 0.50), P99: at(detect, 0.99)}
	l.ToRevoked = Split{P50: at(rest, 0.50), P99: at(rest, 0.99)}
}

// Print writes the results as two tables: the parts against their
// baselines, and the latency at each rate.
func (res Results) Print(w io.Writer) {
	if len(res.Rows) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "part\tproject\tbaseline\tratio\ttarget\t")
		for _, r := range res.Rows {
			fmt.Fprintf(tw, "%s\t%s %s\t%s %s (%s)\t%.2f\t≥ %.1f %s\t\n",
				r.Part, count(r.Project), r.Unit, count(r.Baseline), r.Unit, r.Against, r.Ratio(), r.Target, met(r.Ratio() >= r.Target))
		}
		_ = tw.Flush()
	}
	if len(res.Latency) > 0 {
		if len(res.Rows) > 0 {
			fmt.Fprintln(w)
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "event → revoked\tachieved\tcpu\trevocations\tp50\tp90\tp99\tmax\tto detector p50/p99\tthen to revoked p50/p99\ttarget\t")
		for _, l := range res.Latency {
			target := "-"
			if l.Target > 0 {
				target = fmt.Sprintf("p99 ≤ %s %s", ms(l.Target), met(l.Revocations > 0 && l.P99 <= l.Target))
			}
			achieved := count(l.Achieved) + " events/s"
			if !l.CaughtUp {
				achieved += ", detector behind"
			}
			if l.Unfinished > 0 {
				achieved += fmt.Sprintf(", %d unfinished", l.Unfinished)
			}
			p := []string{"-", "-", "-", "-", "-", "-"}
			if l.Revocations > 0 {
				p = []string{ms(l.P50), ms(l.P90), ms(l.P99), ms(l.Max),
					ms(l.ToDetector.P50) + " / " + ms(l.ToDetector.P99), ms(l.ToRevoked.P50) + " / " + ms(l.ToRevoked.P99)}
			}
			cpu := "-"
			if l.CPU > 0 {
				cpu = fmt.Sprintf("%.2f cores", l.CPU)
			}
			fmt.Fprintf(tw, "at %s events/s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n",
				count(l.Rate), achieved, cpu, l.Revocations, p[0], p[1], p[2], p[3], p[4], p[5], target)
		}
		_ = tw.Flush()
	}
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "missed"
}

// count renders a rate with thousands separators and no decimals (one
// below 10).
func count(v float64) string {
	if v < 10 {
		return fmt.Sprintf("%.1f", v)
	}
	s := fmt.Sprintf("%.0f", v)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// ms renders a latency in milliseconds, or seconds from one second up.
func ms(d time.Duration) string {
	if d >= time.Second {
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}
