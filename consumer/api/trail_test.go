package api_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/consumer/audit/memstore"
	"github.com/revoked-dev/revoked/schemas"
)

// trail is a realistic audit trail in a memstore, written through an
// audit.Writer so its hash chain is real.
type trail struct {
	store    *memstore.Store
	commands int
	rows     int
	// byUser counts the rows of each user.
	byUser map[string]int
	// focus is a user with a known, mixed history of focusCommands
	// commands.
	focus         string
	focusCommands int
	// evidence and context are each command's evidence event ids and
	// the context of those events the detector knew, as its rows hold
	// them.
	evidence map[string][]string
	context  map[string][]schemas.EventContext
}

// trailNetworks are where the trail's events come from: the address
// (a pattern over a documentation range) with the country, autonomous
// system and kind of network enrichment gives it.
var trailNetworks = []schemas.EventContext{
	{IP: "203.0.113.%d", Country: "RU", ASN: 12389, ASOrg: "PJSC Rostelecom", Network: schemas.NetworkResidential},
	{IP: "198.51.100.%d", Country: "US", ASN: 16509, ASOrg: "AMAZON-02", Network: schemas.NetworkHosting},
	{IP: "192.0.2.%d", Country: "DE", ASN: 3320, ASOrg: "Deutsche Telekom AG", Network: schemas.NetworkResidential},
	{IP: "2001:db8:4134::%x", Country: "CN", ASN: 4134, ASOrg: "CHINANET-BACKBONE"},
	{IP: "2001:db8:1136::%x", Country: "NL", ASN: 1136, ASOrg: "KPN B.V.", Network: schemas.NetworkCellular},
}

// evidenceContext is the context the detector attaches to evidence, drawn
// from rng (not the trail's own generator, whose sequence the other tests
// depend on): every event from one or two of trailNetworks, and, for
// some commands, the oldest event without context (it was older than the
// detector's evidence index, or had no address).
func evidenceContext(rng *rand.Rand, evidence []string) []schemas.EventContext {
	nets := []schemas.EventContext{trailNetworks[rng.IntN(len(trailNetworks))], trailNetworks[rng.IntN(len(trailNetworks))]}
	var out []schemas.EventContext
	for i, id := range evidence {
		if i == 0 && rng.IntN(4) == 0 {
			continue
		}
		c := nets[rng.IntN(len(nets))]
		c.EventID, c.IP = id, fmt.Sprintf(c.IP, 1+rng.IntN(250))
		out = append(out, c)
	}
	return out
}

var trailRules = []struct {
	id       string
	severity schemas.Severity
	weight   int
}{
	{"brute_force_success", schemas.SeverityHigh, 34},
	{"impossible_travel", schemas.SeverityHigh, 24},
	{"refresh_token_reuse", schemas.SeverityCritical, 16},
	{"token_replay", schemas.SeverityCritical, 12},
	{"mass_download", schemas.SeverityMedium, 9},
	{"privilege_escalation", schemas.SeverityCritical, 5},
}

var trailClients = []string{"web-app", "mobile-ios", "mobile-android", "sync-client", "admin-console"}

// buildTrail writes n commands over the span before end: a daily rhythm
// with a brute-force burst on the second day and a slow token API for a
// few hours, users user-001..user-200 and the focus user alice.chen.
func buildTrail(t testing.TB, n int, end time.Time, span time.Duration) *trail {
	t.Helper()
	ctx := context.Background()
	store := memstore.New()
	w, err := audit.NewWriter(ctx, store, "consumer-ui-test", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 11))
	ctxRng := rand.New(rand.NewPCG(13, 17))
	start := end.Add(-span)
	burst := start.Add(span / 2)
	slowFrom, slowTo := start.Add(span/4), start.Add(span/4+3*time.Hour)

	pickRule := func() int {
		total := 0
		for _, r := range trailRules {
			total += r.weight
		}
		x := rng.IntN(total)
		for i, r := range trailRules {
			if x -= r.weight; x < 0 {
				return i
			}
		}
		return 0
	}
	// eventTime draws a time with more activity in working hours (UTC).
	eventTime := func() time.Time {
		for {
			at := start.Add(time.Duration(rng.Int64N(int64(span))))
			h := float64(at.Hour()) + float64(at.Minute())/60
			p := 0.35 + 0.65*math.Exp(-math.Pow((h-14)/4, 2))
			if rng.Float64() < p {
				return at
			}
		}
	}
	lognormal := func(median, sigma float64) int64 {
		return int64(median * math.Exp(sigma*rng.NormFloat64()))
	}

	tr := &trail{store: store, byUser: map[string]int{}, focus: "alice.chen",
		evidence: map[string][]string{}, context: map[string][]schemas.EventContext{}}
	var rows []schemas.AuditRow
	focusRecent := 0
	for i := range n {
		ri := pickRule()
		user := fmt.Sprintf("user-%03d", 1+rng.IntN(200))
		last := eventTime()
		switch {
		case i%150 == 0:
			// The focus user's commands are spread evenly over the
			// span, in the order they are made, so that their outcomes,
			// given in turn, alternate in time too.
			user = tr.focus
			tr.focusCommands++
			last = start.Add(span / time.Duration(n) * time.Duration(i+75))
		case i%9 == 0 && rng.IntN(2) == 0:
			// The burst: credential stuffing against many accounts.
			ri = 0
			last = burst.Add(time.Duration(rng.Int64N(int64(2 * time.Hour))))
		}
		rule := trailRules[ri]
		cmd := fmt.Sprintf("cmd-%s-%05d", last.Format("0102"), i)
		// Ids as the pipeline writes them: a token's fingerprint, the
		// IdP's session and client ids.
		token := schemas.Fingerprint(fmt.Sprintf("token-%d-%d", i, rng.Uint64()))
		session := fmt.Sprintf("ses_%012x%012x", rng.Uint64()>>16, rng.Uint64()>>16)
		client := trailClients[rng.IntN(len(trailClients))]
		nEvents := 2 + rng.IntN(5)
		first := last.Add(-time.Duration(nEvents) * time.Duration(5+rng.IntN(60)) * time.Second)
		// Evidence is the ids of the events behind the detection, as the
		// detector writes them (the events themselves are not in the trail).
		var evidence []string
		for range nEvents {
			evidence = append(evidence, fmt.Sprintf("evt_%012x%012x", rng.Uint64()>>16, rng.Uint64()>>16))
		}
		evCtx := evidenceContext(ctxRng, evidence)
		tr.evidence[cmd], tr.context[cmd] = evidence, evCtx
		detect := max(40, lognormal(380, 0.5))
		detected := last.Add(time.Duration(detect) * time.Millisecond)
		issued := detected.Add(time.Duration(5+rng.IntN(40)) * time.Millisecond)
		slow := !last.Before(slowFrom) && last.Before(slowTo)

		base := schemas.AuditRow{
			CommandID: cmd, Issuer: "detector", Actor: "consumer-0",
			TargetKind: schemas.TargetUser, UserID: user, TokenID: token, SessionID: session, ClientID: client,
			Action: schemas.ActionRevoke, Mode: schemas.ModeEnforce,
			RuleID: rule.id, RuleVersion: 3, Severity: rule.severity,
			Summary:  fmt.Sprintf("%s for %s: %d events in %s", rule.id, user, nEvents, last.Sub(first).Round(time.Second)),
			Evidence: evidence, EvidenceContext: schemas.EncodeEventContexts(evCtx), FirstEventTime: first, LastEventTime: last,
			DetectedAt: detected, IssuedAt: issued, ExpiresAt: issued.Add(15 * time.Minute),
			DetectLatencyMs: detect, SourceTopic: "revoke.commands", SourcePartition: int32(i % 6), SourceOffset: int64(i),
		}
		switch rule.id {
		case "token_replay":
			base.TargetKind = schemas.TargetToken
		case "refresh_token_reuse":
			base.TargetKind = schemas.TargetSession
		}
		at := issued.Add(time.Duration(20+rng.IntN(60)) * time.Millisecond)
		step := func(s schemas.Step, n int, mod func(*schemas.AuditRow)) {
			r := base
			r.RowID = fmt.Sprintf("%s/%s/%d", cmd, s, n)
			r.Step, r.Time = s, at
			if mod != nil {
				mod(&r)
			}
			rows = append(rows, r)
			tr.byUser[user]++
		}
		// Commands of the first third of the span were recorded before the
		// three outcomes (revoked, then verified); later ones end confirmed,
		// unconfirmed or not effective.
		legacy := last.Before(start.Add(span / 3))
		verdict := schemas.StepConfirmed
		switch x := rng.IntN(100); {
		case user == tr.focus && !legacy:
			// In turn, counting the focus user's recent commands only:
			// which of them fall in the legacy third depends on the
			// hour the test runs at (eventTime's working hours).
			verdict = []schemas.Step{schemas.StepConfirmed, schemas.StepUnconfirmed, schemas.StepNotEffective}[focusRecent%3]
			focusRecent++
		case user == tr.focus:
		case x < 4:
			verdict = schemas.StepNotEffective
		case x < 22:
			verdict = schemas.StepUnconfirmed
		}
		revoke := func(attempts uint32) {
			lat := max(detect+60, detect+lognormal(650, 0.55))
			if slow {
				lat += lognormal(4500, 0.6)
			}
			// After any failed attempt before it.
			at = at.Add(time.Duration(200+rng.IntN(800)) * time.Millisecond)
			if t := last.Add(time.Duration(lat) * time.Millisecond); t.After(at) {
				at = t
			}
			lat = at.Sub(last).Milliseconds()
			tokens := uint32(1 + rng.IntN(4))
			if legacy {
				step(schemas.StepRevoked, 1, func(r *schemas.AuditRow) {
					r.Attempts, r.TokensRevoked, r.RevokeLatencyMs = attempts, tokens, lat
					r.IdPStatus, r.IdPResponse = 200, fmt.Sprintf(`{"revoked":%d}`, tokens)
				})
				at = at.Add(time.Duration(300+rng.IntN(1200)) * time.Millisecond)
				step(schemas.StepVerified, 1, func(r *schemas.AuditRow) {
					r.Proof = fmt.Sprintf("introspection of %s: active=false at %s", token, at.UTC().Format(time.RFC3339))
				})
				return
			}
			step(verdict, 1, func(r *schemas.AuditRow) {
				r.Attempts, r.RevokeLatencyMs, r.IdPStatus = attempts, lat, 200
				switch verdict {
				case schemas.StepConfirmed:
					r.TokensRevoked, r.IdPResponse = tokens, fmt.Sprintf(`{"revoked":%d}`, tokens)
					r.Proof = "token list: none of the targeted tokens live among the subject's " + fmt.Sprint(rng.IntN(3))
				case schemas.StepUnconfirmed:
					r.Proof = "no proof: the token API offers none for a user target without its token"
				case schemas.StepNotEffective:
					r.Proof = "introspection of " + token + ": active=true after the revocation"
					r.Detail = "dead-lettered: the token API's proof shows a targeted token still active"
				}
			})
		}
		outcome := rng.IntN(100)
		if user == tr.focus {
			outcome = []int{0, 80, 90, 0, 95, 0, 97, 99}[(i/150)%8]
		}
		if rule.id == "mass_download" && outcome < 50 {
			outcome = 99
		}
		switch {
		case outcome >= 98:
			base.Action = schemas.ActionNotify
		case outcome >= 96:
			base.Mode = schemas.ModeDryRun
		}
		step(schemas.StepReceived, 1, nil)
		switch {
		case outcome < 78:
			revoke(1)
		case outcome < 86:
			at = at.Add(time.Duration(200+rng.IntN(800)) * time.Millisecond)
			step(schemas.StepFailed, 1, func(r *schemas.AuditRow) {
				r.Attempts, r.IdPStatus, r.Detail = 1, 503, "token API: 503 Service Unavailable"
			})
			revoke(2)
		case outcome < 89:
			for a := 1; a <= 3; a++ {
				at = at.Add(time.Duration(a) * time.Second)
				step(schemas.StepFailed, a, func(r *schemas.AuditRow) {
					r.Attempts, r.IdPStatus, r.Detail = uint32(a), 502, "token API: 502 Bad Gateway"
				})
			}
			at = at.Add(time.Second)
			step(schemas.StepDeadLettered, 1, func(r *schemas.AuditRow) {
				r.Attempts, r.Detail = 3, "gave up after 3 attempts: token API: 502 Bad Gateway"
			})
		case outcome < 93:
			step(schemas.StepHeld, 1, func(r *schemas.AuditRow) {
				r.Detail = "critical rule on a privileged account: needs approval"
			})
		case outcome < 96:
			step(schemas.StepRejected, 1, func(r *schemas.AuditRow) {
				r.Detail = "command expired before it was received"
			})
		case outcome < 98:
			step(schemas.StepDryRun, 1, func(r *schemas.AuditRow) { r.Detail = "rule in dry-run mode" })
		default:
			step(schemas.StepNotified, 1, func(r *schemas.AuditRow) { r.Detail = "notify-only rule: security team paged" })
		}
	}
	slices.SortStableFunc(rows, func(a, b schemas.AuditRow) int { return a.Time.Compare(b.Time) })
	for batch := range slices.Chunk(rows, 500) {
		if err := w.Write(ctx, batch...); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	tr.commands, tr.rows = n, len(rows)
	return tr
}
