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
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/revoked-dev/revoked/detector/engine"
	"github.com/revoked-dev/revoked/detector/guard"
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

	guarded bool
}

// Problem is a malformed line.
type Problem struct {
	Line int
	Err  error
}

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
		sum.Rules = append(sum.Rules, *byRule[r.ID])
	}
	slices.SortFunc(sum.Rules, func(a, b RuleSummary) int { return strings.Compare(a.RuleID, b.RuleID) })
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
	return tw.Flush()
}
