// Package backtest replays recorded audit events through the detector's
// rules offline: the pure engine, no Kafka, no wall clock. It answers
// "what would these rules have done to this history?" before a rule goes
// live: exactly the commands they would have issued, and how many distinct
// users each rule would have revoked (its blast radius).
//
// The output is deterministic: the engine stamps commands with event time
// (issued_at and detected_at are the time of the event that completed the
// detection, expires_at that plus the command TTL), so the same events and
// rules give the same bytes.
//
// By default the guards of the live detector (budget, allowlist,
// cross-rule cooldown) are not applied: the backtest shows what the rules
// ask for. With Options.Guard it applies them too, on event time: the
// output is then what the detector would have published to the command
// topic (allowlisted commands as dry_run, suppressed and held ones left
// out), and the summary counts what was held and suppressed.
package backtest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/revoked-dev/revoked/detector/engine"
	"github.com/revoked-dev/revoked/internal/guard"
	"github.com/revoked-dev/revoked/internal/progress"
	"github.com/revoked-dev/revoked/schemas"
)

// MaxLineBytes bounds one line of input; a longer line is malformed.
const MaxLineBytes = 1 << 20

// MaxReported bounds how many malformed lines are reported one by one;
// the rest are counted.
const MaxReported = 100

// Options configure Run.
type Options struct {
	// Rules are the rules to replay.
	Rules []*engine.Rule
	// Engine configures the engine; its DryRun makes every command dry_run.
	Engine engine.Config
	// Progress, when not nil, is advanced by the bytes read.
	Progress *progress.Bar
	// Guard, when not nil, applies the detector's guards with this
	// configuration, on event time. Its kill switch file is ignored.
	Guard *guard.Config
	// Enrich, when not nil, fills in each event's address context (ASN,
	// organisation, kind of network) before the rules see it, as the live
	// detector does.
	Enrich func(*schemas.AuditEvent)
}

// Summary is what a replay found.
type Summary struct {
	// Lines read, blank ones included.
	Lines int
	// Events decoded and replayed.
	Events int
	// Malformed lines, and the first MaxReported of them.
	Malformed int
	Problems  []Problem
	// Rules has one entry per rule, by rule id, including rules that
	// issued nothing.
	Rules []RuleSummary
	// Total sums Rules; its Users and Targets are distinct across rules.
	Total RuleSummary
	// Signals has one entry per signal rule that contributed to a
	// command, by rule id.
	Signals []SignalSummary
	// Users is the number of distinct users in the events; Risk counts
	// them by the highest risk they reached, in RiskBuckets.
	Users int
	Risk  []RiskBucket

	guarded bool
}

// Problem is a malformed line.
type Problem struct {
	Line int
	Err  error
}

// SignalSummary is what one signal rule contributed to the commands.
type SignalSummary struct {
	RuleID string
	// Commands it contributed to, of them Revocations (not notify), and
	// the distinct users those name.
	Commands    int
	Revocations int
	Users       int
	// Weight is the sum of its weights in those commands.
	Weight float64

	users map[string]bool
}

// RiskBucket counts users whose highest risk fell in [From, To).
type RiskBucket struct {
	From, To float64
	Users    int
}

// riskEdges are the bucket edges of the risk distribution: the default
// model notifies at 0.5 and revokes at 1.0.
var riskEdges = []float64{0, 0.001, 0.25, 0.5, 0.75, 1, 1.5, 2, math.Inf(1)}

func (p Problem) String() string { return fmt.Sprintf("line %d: %v", p.Line, p.Err) }

// RuleSummary is what one rule would have done.
type RuleSummary struct {
	RuleID   string
	Commands int
	Enforce  int
	DryRun   int
	// Held and Suppressed count the commands the guard held for approval
	// or suppressed (with Options.Guard); they are not in Commands.
	Held       int
	Suppressed int
	// Users is the number of distinct users the rule's commands name
	// (their targets' user ids): the projected blast radius.
	Users int
	// Targets is the number of distinct targets (kind and id).
	Targets int

	users, targets map[string]bool
}

func (r *RuleSummary) add(c *schemas.RevokeCommand) {
	if r.users == nil {
		r.users, r.targets = map[string]bool{}, map[string]bool{}
	}
	r.Commands++
	if c.Mode == schemas.ModeEnforce {
		r.Enforce++
	} else {
		r.DryRun++
	}
	if c.Target.UserID != "" {
		r.users[c.Target.UserID] = true
	}
	r.targets[string(c.Target.Kind)+"\x00"+c.Target.ID()] = true
	r.Users, r.Targets = len(r.users), len(r.targets)
}

// Run replays the JSON lines of events (AuditEvent v1, one per line, in
// the order they happened or close to it: the engine's out-of-order
// allowance applies) and writes each command the rules issue to out as one
// JSON line, in order. Malformed lines are reported to diag as
// "line N: reason", counted and skipped. Run fails only when reading
// events or writing commands fails, or the rules do not build an engine.
func Run(events io.Reader, out, diag io.Writer, opts Options) (Summary, error) {
	eng, err := engine.New(opts.Engine, opts.Rules)
	if err != nil {
		return Summary{}, err
	}
	var sum Summary
	sum.guarded = opts.Guard != nil
	var g *guard.Guard
	var clock time.Time
	if opts.Guard != nil {
		gcfg := *opts.Guard
		gcfg.KillSwitchFile = ""
		if g, err = guard.New(gcfg, guard.WithClock(func() time.Time { return clock })); err != nil {
			return Summary{}, err
		}
	}
	eng.TrackRiskPeaks()
	users := map[string]bool{}
	bySignal := map[string]*SignalSummary{}
	byRule := map[string]*RuleSummary{}
	for _, r := range eng.Rules() {
		byRule[r.ID] = &RuleSummary{RuleID: r.ID}
	}
	bw := bufio.NewWriter(out)
	br := bufio.NewReaderSize(events, 64<<10)
	report := func(err error) {
		sum.Malformed++
		if sum.Malformed <= MaxReported {
			p := Problem{Line: sum.Lines, Err: err}
			sum.Problems = append(sum.Problems, p)
			fmt.Fprintln(diag, p.String())
		}
	}
	for {
		line, n, tooLong, rerr := readLine(br)
		opts.Progress.Add(int64(n))
		if n > 0 {
			sum.Lines++
		}
		switch {
		case n == 0:
		case tooLong:
			report(fmt.Errorf("longer than %d bytes", MaxLineBytes))
		case len(bytes.TrimSpace(line)) == 0:
		default:
			ev, err := schemas.DecodeEvent(line)
			if err != nil {
				report(oneLine(err))
				break
			}
			sum.Events++
			users[ev.UserID] = true
			if opts.Enrich != nil {
				opts.Enrich(&ev)
			}
			if ev.Time.After(clock) {
				clock = ev.Time
			}
			for _, c := range eng.Process(&ev) {
				if g != nil {
					d := g.Check(&c, &ev)
					switch d.Verdict {
					case guard.Hold:
						byRule[c.Reason.RuleID].Held++
						sum.Total.Held++
						continue
					case guard.Suppress:
						byRule[c.Reason.RuleID].Suppressed++
						sum.Total.Suppressed++
						continue
					}
					if c.Mode == schemas.ModeEnforce {
						c.Mode = d.Mode
					}
				}
				byRule[c.Reason.RuleID].add(&c)
				sum.Total.add(&c)
				for _, s := range c.Reason.Signals {
					ss := bySignal[s.RuleID]
					if ss == nil {
						ss = &SignalSummary{RuleID: s.RuleID, users: map[string]bool{}}
						bySignal[s.RuleID] = ss
					}
					ss.Commands++
					if c.Action != schemas.ActionNotify {
						ss.Revocations++
					}
					ss.Weight += s.Weight
					if c.Target.UserID != "" {
						ss.users[c.Target.UserID] = true
					}
					ss.Users = len(ss.users)
				}
				b, err := json.Marshal(&c)
				if err != nil {
					return sum, fmt.Errorf("encoding command: %w", err)
				}
				b = append(b, '\n')
				if _, err := bw.Write(b); err != nil {
					return sum, fmt.Errorf("writing commands: %w", err)
				}
			}
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) {
				break
			}
			return sum, fmt.Errorf("reading events (line %d): %w", sum.Lines+1, rerr)
		}
	}
	if sum.Malformed > MaxReported {
		fmt.Fprintf(diag, "... and %d more malformed lines\n", sum.Malformed-MaxReported)
	}
	for _, r := range eng.Rules() {
		if r.Signal != nil {
			// Signals issue no commands; they are in Signals.
			continue
		}
		sum.Rules = append(sum.Rules, *byRule[r.ID])
	}
	slices.SortFunc(sum.Rules, func(a, b RuleSummary) int { return strings.Compare(a.RuleID, b.RuleID) })
	for _, ss := range bySignal {
		sum.Signals = append(sum.Signals, *ss)
	}
	slices.SortFunc(sum.Signals, func(a, b SignalSummary) int { return strings.Compare(a.RuleID, b.RuleID) })
	sum.Users = len(users)
	peaks := eng.PeakRisks()
	for i := 0; peaks != nil && i+1 < len(riskEdges); i++ {
		sum.Risk = append(sum.Risk, RiskBucket{From: riskEdges[i], To: riskEdges[i+1]})
	}
	for u := range users {
		v := peaks[u]
		for i := range sum.Risk {
			if v >= sum.Risk[i].From && v < sum.Risk[i].To {
				sum.Risk[i].Users++
				break
			}
		}
	}
	sum.Total.RuleID = "TOTAL"
	if err := bw.Flush(); err != nil {
		return sum, fmt.Errorf("writing commands: %w", err)
	}
	return sum, nil
}

// readLine returns the next line without its line ending and the number of
// bytes it took, n == 0 only at the end. A line longer than MaxLineBytes is
// consumed and reported as tooLong.
func readLine(br *bufio.Reader) (line []byte, n int, tooLong bool, err error) {
	var buf []byte
	for {
		chunk, err := br.ReadSlice('\n')
		n += len(chunk)
		if !tooLong {
			if len(buf)+len(chunk) > MaxLineBytes+2 {
				tooLong, buf = true, nil
			} else {
				buf = append(buf, chunk...)
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		buf = bytes.TrimSuffix(bytes.TrimSuffix(buf, []byte("\n")), []byte("\r"))
		if !tooLong && len(buf) > MaxLineBytes {
			tooLong, buf = true, nil
		}
		return buf, n, tooLong, err
	}
}

// oneLine is err on one line: DecodeEvent reports every problem, one per
// line.
func oneLine(err error) error {
	msg := strings.TrimPrefix(err.Error(), schemas.ErrInvalidEvent.Error()+": ")
	return errors.New(strings.ReplaceAll(msg, "\n", "; "))
}

// WriteSummary writes s as a table: per rule, the commands it would have
// issued, the distinct users and targets they name, and how many were
// enforce and dry_run.
func (s Summary) WriteSummary(w io.Writer) error {
	fmt.Fprintf(w, "backtest: %d lines, %d events, %d malformed, %d commands\n", s.Lines, s.Events, s.Malformed, s.Total.Commands)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if s.guarded {
		fmt.Fprintln(tw, "RULE\tCOMMANDS\tUSERS\tTARGETS\tENFORCE\tDRY RUN\tHELD\tSUPPRESSED")
	} else {
		fmt.Fprintln(tw, "RULE\tCOMMANDS\tUSERS\tTARGETS\tENFORCE\tDRY RUN")
	}
	for _, r := range append(slices.Clone(s.Rules), s.Total) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d", r.RuleID, r.Commands, r.Users, r.Targets, r.Enforce, r.DryRun)
		if s.guarded {
			fmt.Fprintf(tw, "\t%d\t%d", r.Held, r.Suppressed)
		}
		fmt.Fprintln(tw)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(s.Signals) > 0 {
		fmt.Fprintln(w, "\nsignals behind the commands:")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SIGNAL\tCOMMANDS\tREVOCATIONS\tUSERS\tMEAN WEIGHT")
		for _, ss := range s.Signals {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.2f\n", ss.RuleID, ss.Commands, ss.Revocations, ss.Users, ss.Weight/float64(max(ss.Commands, 1)))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(s.Risk) == 0 || s.Users == 0 {
		return nil
	}
	fmt.Fprintf(w, "\nhighest risk reached, %d users:\n", s.Users)
	most := 0
	for _, b := range s.Risk {
		most = max(most, b.Users)
	}
	for _, b := range s.Risk {
		label := fmt.Sprintf("[%.2f, %.2f)", b.From, b.To)
		switch {
		case b.From == 0:
			label = "none"
		case b.From < 0.01:
			label = fmt.Sprintf("(0, %.2f)", b.To)
		case math.IsInf(b.To, 1):
			label = fmt.Sprintf(">= %.2f", b.From)
		}
		bar := 0
		if b.Users > 0 {
			// A log scale: one user shows, a million fits in 40 columns.
			bar = 1 + int(39*math.Log1p(float64(b.Users))/math.Log1p(float64(most)))
		}
		fmt.Fprintf(w, "  %-14s %8d  %s\n", label, b.Users, strings.Repeat("█", bar))
	}
	return nil
}
