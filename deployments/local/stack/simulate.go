package stack

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/ops"
	"github.com/revoked-dev/revoked/producer/simulate"
	"github.com/revoked-dev/revoked/schemas"
)

// tally counts what the pipeline did, from the detector's and the
// consumer's observers.
type tally struct {
	mu         sync.Mutex
	detections map[string]int            // by rule
	pending    map[string]bool           // command ids detected, not yet terminal
	steps      map[schemas.Step]int      // audit rows by step
	revokedBy  map[string]map[string]int // rule → user → revocations
	answers    map[string][]answer       // user → revocations and notifications, by any rule
	latencies  []time.Duration           // last event → revoked
	detectLat  []time.Duration           // last event → detected
}

func newTally() *tally {
	return &tally{
		detections: map[string]int{}, pending: map[string]bool{},
		steps: map[schemas.Step]int{}, revokedBy: map[string]map[string]int{},
		answers: map[string][]answer{},
	}
}

func (t *tally) wrap(obs Observer) Observer {
	return Observer{
		Detection: func(c schemas.RevokeCommand) {
			t.mu.Lock()
			if _, seen := t.pending[c.CommandID]; !seen {
				t.detections[c.Reason.RuleID]++
				t.pending[c.CommandID] = true
			}
			t.mu.Unlock()
			if obs.Detection != nil {
				obs.Detection(c)
			}
		},
		AuditRow: func(r schemas.AuditRow) {
			t.mu.Lock()
			t.steps[r.Step]++
			if r.Step.Terminal() {
				t.pending[r.CommandID] = false
			}
			if r.Step.Revoked() || r.Step == schemas.StepNotified {
				t.answers[r.UserID] = append(t.answers[r.UserID], answer{
					at: r.Time, rule: r.RuleID, action: r.Action, revoked: r.Step.Revoked(),
					kind: r.TargetKind, tokenID: r.TokenID, sessionID: r.SessionID, clientID: r.ClientID,
					summary: r.Summary,
				})
			}
			if r.Step.Revoked() {
				if t.revokedBy[r.RuleID] == nil {
					t.revokedBy[r.RuleID] = map[string]int{}
				}
				t.revokedBy[r.RuleID][r.UserID]++
				if r.RevokeLatencyMs > 0 {
					t.latencies = append(t.latencies, time.Duration(r.RevokeLatencyMs)*time.Millisecond)
				}
				if r.DetectLatencyMs > 0 {
					t.detectLat = append(t.detectLat, time.Duration(r.DetectLatencyMs)*time.Millisecond)
				}
			}
			t.mu.Unlock()
			if obs.AuditRow != nil {
				obs.AuditRow(r)
			}
		},
	}
}

func (t *tally) inFlight() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, p := range t.pending {
		if p {
			n++
		}
	}
	return n
}

// logoutRule answers a user's own logout; its revocations are intended.
const logoutRule = simulate.RuleLogout

// answer is a revocation or notification of a user, by a rule: one
// revoked or notified audit row.
type answer struct {
	at      time.Time
	rule    string
	action  schemas.Action
	revoked bool
	// kind and the ids are the command's target's, where it named them.
	kind                         schemas.TargetKind
	tokenID, sessionID, clientID string
	// summary is the rule's account of the detection.
	summary string
}

// answerSlack is how long before an attack's first event an answer still
// counts for it, and answerAfter how long after its last: the windows of
// `detector quality`.
const (
	answerSlack = time.Minute
	answerAfter = 12 * time.Hour
)

// inWindow reports whether a falls in attack g's window.
func inWindow(a answer, g simulate.GroundTruth) bool {
	return !a.at.Before(g.Start.Add(-answerSlack)) && !a.at.After(g.End.Add(answerAfter))
}

// loggedOut reports whether the user's own logout, in attack g's window,
// revoked the token or session the attack used (a replayed token dies
// with its session): the attack was stopped, though no rule noticed it.
func loggedOut(as []answer, g simulate.GroundTruth) bool {
	return slices.ContainsFunc(as, func(a answer) bool {
		return a.rule == logoutRule && a.revoked && inWindow(a, g) &&
			(g.TokenID != "" && a.tokenID == g.TokenID || g.SessionID != "" && a.sessionID == g.SessionID)
	})
}

// answerOf reports whether the user's answers detect attack g: a
// revocation or notification by a rule other than logout (which answers
// the user's own logouts) from answerSlack before the attack's first
// event to answerAfter after its last. at is the first such revocation,
// from which the attack's tokens must be dead; revoked says there is one.
func answerOf(as []answer, g simulate.GroundTruth) (detected bool, at time.Time, revoked bool) {
	for _, a := range as {
		if a.rule == logoutRule || !inWindow(a, g) {
			continue
		}
		detected = true
		if a.revoked && (!revoked || a.at.Before(at)) {
			at, revoked = a.at, true
		}
	}
	return detected, at, revoked
}

// Report summarises a simulated run.
type Report struct {
	Events       int64
	Elapsed      time.Duration
	EventsPerSec float64
	// Detections counts commands published, by rule.
	Detections map[string]int
	// Steps counts audit rows by step.
	Steps map[schemas.Step]int
	// EventToRevoke and EventToDetect are percentiles of the latency from
	// the event that completed a detection to the token API's answer, and
	// to the detector's command.
	EventToRevoke, EventToDetect Percentiles
	// Ground truth against what was revoked: an attack is detected by a
	// revocation or notification of its user by any rule but logout, from
	// a minute before its first event to 12 hours after its last
	// (answerOf). LoggedOut lists the others whose token or session the
	// victim's own logout revoked in the attack's window (stopped, though
	// no rule noticed), and Missed the rest.
	Attacks, AttacksDetected int
	LoggedOut, Missed        []simulate.GroundTruth
	// FalsePositives are users revoked that no attack or attempt touched
	// (logout revocations of labelled logouts excepted).
	FalsePositives []string
	// FalsePositivesByRule counts them by the rule that revoked them.
	FalsePositivesByRule map[string]int
	// BenignRevocations describes, a line per user of FalsePositives, the
	// revocations that named them: action, target, rule, time and the
	// rule's summary.
	BenignRevocations []string
	// TokensChecked attacked tokens were introspected afterwards;
	// TokensStillActive of them were still active.
	TokensChecked, TokensStillActive int
	// StillActive describes each token counted in TokensStillActive: the
	// attack, its user, the token's fingerprint and times, and the user's
	// revocations.
	StillActive []string
	// AfterRevocation counts the tokens the token API issued to users
	// after they were revoked, from its answers to the simulator.
	AfterRevocation AfterRevocation
	// Unfinished commands had not reached a terminal state at the end.
	Unfinished int
	// DetectorEvents is how many events the detector read, and
	// DetectorCaughtUp how long after the start of the simulation it had
	// read every published event (zero if it had not by the end): the
	// pipeline's sustained rate is DetectorEvents / DetectorCaughtUp.
	DetectorEvents   int64
	DetectorCaughtUp time.Duration
}

// Percentiles of a latency sample.
type Percentiles struct {
	N             int
	P50, P99, Max time.Duration
}

func percentiles(d []time.Duration) Percentiles {
	if len(d) == 0 {
		return Percentiles{}
	}
	s := slices.Clone(d)
	slices.Sort(s)
	at := func(q float64) time.Duration { return s[min(len(s)-1, int(q*float64(len(s))))] }
	return Percentiles{N: len(s), P50: at(0.50), P99: at(0.99), Max: s[len(s)-1]}
}

// Simulate feeds simulated traffic (cfg, normally on the live clock) into
// the pipeline, waits until every detection reached a terminal state (or
// drain passed), and reports. Every simulated user's tokens are real tokens
// of the reference token API; afterwards each attacked token is
// introspected to prove it is dead.
func (s *Stack) Simulate(ctx context.Context, cfg simulate.Config, drain time.Duration, groundTruth io.Writer, progress func(simulate.Stats)) (Report, error) {
	icfg := simulate.DefaultHTTPIssuerConfig()
	icfg.URL = s.TokenAPIURL
	icfg.AdminToken = s.AdminToken
	icfg.ExchangeClientID = "web-app"
	icfg.ExchangeClientSecret = s.appSecret
	http, err := simulate.NewHTTPIssuer(icfg, nil)
	if err != nil {
		return Report{}, err
	}
	issuer := newIssuance(http)
	sim, err := simulate.New(cfg, issuer, s.log.With().Str("component", "simulate").Logger())
	if err != nil {
		return Report{}, err
	}
	wcfg := kafkax.DefaultWriterConfig()
	wcfg.Brokers = s.Brokers
	wcfg.ClientID = "revoked-simulator"
	w, err := kafkax.NewWriter(wcfg, s.log.With().Str("component", "simulate-writer").Logger())
	if err != nil {
		return Report{}, err
	}
	defer w.Close()

	start := time.Now()
	before := int64(ops.CounterSum(s.Registry, "revoked_detector_events_total"))
	stats, err := sim.Run(ctx, w, simulate.Options{GroundTruth: groundTruth, Progress: progress})
	if err != nil {
		return Report{}, fmt.Errorf("simulating: %w", err)
	}
	// Let the detector read the last events and the last detections run
	// through the consumer.
	deadline := time.Now().Add(drain)
	var caughtUp time.Duration
	quiet := 0
	for time.Now().Before(deadline) && ctx.Err() == nil {
		read := int64(ops.CounterSum(s.Registry, "revoked_detector_events_total")) - before
		if caughtUp == 0 && read >= stats.Events {
			caughtUp = time.Since(start)
		}
		if caughtUp > 0 && s.tally.inFlight() == 0 {
			quiet++
			if quiet >= 10 { // no command in flight for a second
				break
			}
		} else {
			quiet = 0
		}
		time.Sleep(100 * time.Millisecond)
	}
	r := s.report(ctx, stats, sim, issuer)
	r.DetectorEvents = int64(ops.CounterSum(s.Registry, "revoked_detector_events_total")) - before
	r.DetectorCaughtUp = caughtUp
	return r, nil
}

func (s *Stack) report(ctx context.Context, stats simulate.Stats, sim *simulate.Sim, issued *issuance) Report {
	t := s.tally
	t.mu.Lock()
	r := Report{
		Events:        stats.Events,
		Elapsed:       stats.Elapsed,
		Detections:    map[string]int{},
		Steps:         map[schemas.Step]int{},
		EventToRevoke: percentiles(t.latencies),
		EventToDetect: percentiles(t.detectLat),
	}
	if stats.Elapsed > 0 {
		r.EventsPerSec = float64(stats.Events) / stats.Elapsed.Seconds()
	}
	for k, v := range t.detections {
		r.Detections[k] = v
	}
	for k, v := range t.steps {
		r.Steps[k] = v
	}
	revokedBy := map[string]map[string]int{}
	for rule, users := range t.revokedBy {
		revokedBy[rule] = maps.Clone(users)
	}
	answers := make(map[string][]answer, len(t.answers))
	for u, as := range t.answers {
		answers[u] = slices.Clone(as)
	}
	for _, p := range t.pending {
		if p {
			r.Unfinished++
		}
	}
	t.mu.Unlock()

	// The ground truth labels attacks (the user's tokens must die),
	// attempts (users a many-user attack tried: a revocation is no false
	// alarm) and user actions (logouts, which the logout rule answers by
	// design).
	explained := map[string]bool{}  // attack or attempt
	userAction := map[string]bool{} // logouts
	tokens := sim.Tokens()
	attackerTokens := map[string]bool{}
	for _, g := range sim.Labels() {
		if g.Label == simulate.LabelAttack && g.TokenID != "" {
			attackerTokens[g.TokenID] = true
		}
	}
	r.AfterRevocation = issued.afterRevocation(answers, attackerTokens)
	for _, g := range sim.Labels() {
		switch g.Label {
		case simulate.LabelUserAction:
			userAction[g.UserID] = true
			continue
		case simulate.LabelAttempt:
			explained[g.UserID] = true
			continue
		}
		explained[g.UserID] = true
		if g.Partial {
			continue
		}
		r.Attacks++
		detected, at, revoked := answerOf(answers[g.UserID], g)
		switch {
		case detected:
			r.AttacksDetected++
		case loggedOut(answers[g.UserID], g):
			r.LoggedOut = append(r.LoggedOut, g)
		default:
			r.Missed = append(r.Missed, g)
		}
		if !revoked {
			continue // a notify-only answer (failed logins only) revokes nothing
		}
		// Introspect what the attack touched: the named token (the
		// attacker's, the stolen or misused one) or, without one, every
		// token the user held before the revocation.
		for _, raw := range tokens[g.UserID] {
			if g.TokenID != "" && schemas.Fingerprint(raw) != g.TokenID {
				continue
			}
			in, err := s.IdP.Introspect(ctx, raw)
			if err != nil {
				continue
			}
			// A token issued after the revocation (the user logged in
			// again) is rightly alive; introspection's iat has second
			// precision.
			if in.Active && !in.IssuedAt.Before(at.Add(-time.Second)) {
				continue
			}
			r.TokensChecked++
			if in.Active {
				r.TokensStillActive++
				var rs []string
				for _, a := range answers[g.UserID] {
					if a.revoked {
						rs = append(rs, fmt.Sprintf("%s %s by %s at %s", a.action, a.target(), a.rule, a.at.UTC().Format("15:04:05.000")))
					}
				}
				r.StillActive = append(r.StillActive, fmt.Sprintf("%s attack %s on user %s: token %s issued %s, first revoked %s; revocations: %s",
					g.Attack, g.AttackID, g.UserID, schemas.Fingerprint(raw), in.IssuedAt.UTC().Format("15:04:05"), at.UTC().Format("15:04:05.000"), strings.Join(rs, ", ")))
			}
		}
	}
	r.FalsePositives, r.FalsePositivesByRule, r.BenignRevocations = benignRevoked(revokedBy, answers, explained, userAction)
	return r
}

// benignRevoked returns the users revoked (revokedBy: rule → user →
// revocations) that no attack or attempt explains, nor (for the logout
// rule) their own logout; how many each rule revoked; and a line per user
// with the revocations that named them, from answers.
func benignRevoked(revokedBy map[string]map[string]int, answers map[string][]answer, explained, userAction map[string]bool) ([]string, map[string]int, []string) {
	var users []string
	var byRule map[string]int
	for rule, revoked := range revokedBy {
		for u := range revoked {
			if explained[u] || (rule == logoutRule && userAction[u]) {
				continue
			}
			if byRule == nil {
				byRule = map[string]int{}
			}
			byRule[rule]++
			if !slices.Contains(users, u) {
				users = append(users, u)
			}
		}
	}
	sort.Strings(users)
	details := make([]string, 0, len(users))
	for _, u := range users {
		var rs []string
		for _, a := range answers[u] {
			if a.revoked && !(a.rule == logoutRule && userAction[u]) {
				rs = append(rs, fmt.Sprintf("%s %s by %s at %s (%s)", a.action, a.target(), a.rule, a.at.UTC().Format("15:04:05.000"), a.summary))
			}
		}
		details = append(details, u+": "+strings.Join(rs, "; "))
	}
	return users, byRule, details
}

// target names what the command revoked.
func (a answer) target() string {
	switch a.kind {
	case schemas.TargetToken:
		return "token " + a.tokenID
	case schemas.TargetSession:
		return "session " + a.sessionID
	case schemas.TargetClient:
		return "client " + a.clientID
	}
	return string(a.kind)
}
