package service

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/revoked-dev/revoked/consumer/idp"
	"github.com/revoked-dev/revoked/schemas"
)

// Profile is what a token API says of itself beyond its calls: which of
// its calls leave tokens active, which wider calls a revocation that did
// not take falls back to, and the calls those need. A TokenAPI that also
// implements it (idp.Client does) gets escalation; one that does not has
// none, and every call counts as one that revokes tokens.
type Profile interface {
	LoginOnly(kind string) bool
	Escalation(kind string) (fallbacks []string, retries int, delay time.Duration)
	Lists() bool
	Counts(kind string) bool
	RevokeSubjectClient(ctx context.Context, userID, clientID string) (idp.Result, error)
	LookupClient(ctx context.Context, id string) (idp.ClientInfo, bool, error)
	AccessOnly() bool
}

var _ Profile = (*idp.Client)(nil)

// proof is what the token API showed after a revocation.
type proof struct {
	verdict schemas.Step
	// statement says what was seen, for the audit trail.
	statement string
	// revoked is how many targeted tokens the proof shows inactive, when
	// it can count them (-1 when it cannot).
	revoked int
	// subject and client of a token introspection found still active, for
	// the fallbacks that need them.
	subject, client string
}

// settle proves the revocation that call made, at since, and settles out's
// verdict: confirmed, unconfirmed or not effective. A revocation that did
// not take is repeated (Escalation's retries and delay) and then falls
// back to each configured wider call in turn, each followed by the proof
// again. It returns an error only for a failure of a repeat or a fallback
// that the reader should retry (a transient one); a terminal failure of a
// fallback is noted and leaves the verdict not effective. before is the
// number of targeted tokens listed before the call (-1: not listed), the
// count when the token API gives none.
func (r *IdPRevoker) settle(ctx context.Context, cmd *schemas.RevokeCommand, rawToken string, out *Outcome, call apiCall, since time.Time, before int) error {
	kind := string(cmd.Target.Kind)
	prof, _ := r.api.(Profile)
	pr := r.prove(ctx, cmd, rawToken, since, prof != nil && prof.LoginOnly(kind))
	var fallbacks []string
	if prof != nil && pr.verdict == schemas.StepNotEffective {
		var retries int
		var delay time.Duration
		fallbacks, retries, delay = prof.Escalation(kind)
		for i := 0; i < retries && pr.verdict == schemas.StepNotEffective && !prof.LoginOnly(kind); i++ {
			if err := r.sleep(ctx, delay); err != nil {
				return err
			}
			since = time.Now()
			if err := r.retrying(ctx, cmd, out, call); err != nil {
				return err
			}
			pr = r.prove(ctx, cmd, rawToken, since, false)
			out.Response = strings.TrimPrefix(fmt.Sprintf("%s; repeated (%d): %s", out.Response, i+1, pr.statement), "; ")
		}
	}
	for _, fb := range fallbacks {
		if pr.verdict != schemas.StepNotEffective {
			break
		}
		note, via, err := r.escalate(ctx, prof, cmd, fb, pr)
		out.Response = strings.TrimPrefix(out.Response+"; "+note, "; ")
		if err != nil {
			if retry, _ := idp.Retryable(err); retry {
				return fmt.Errorf("fallback %s: %w", fb, err)
			}
			continue
		}
		if via == nil {
			continue
		}
		pr = r.proveVia(ctx, cmd, rawToken, via, pr)
	}
	if err := ctx.Err(); err != nil {
		// Stopped while proving: the proof is not the token API's
		// answer, and the command is carried out again.
		return err
	}
	out.Verdict, out.Proof = pr.verdict, pr.statement
	if out.Verdict == schemas.StepConfirmed && !out.CountKnown {
		switch {
		case pr.revoked >= 0:
			out.Revoked, out.CountKnown = pr.revoked+out.FromLineage, true
		case before >= 0:
			out.Revoked, out.CountKnown = before, true
		}
	}
	return nil
}

// prove asks the token API whether the targeted tokens are inactive now:
// introspection for a raw token, else the subject's live tokens when the
// target names its user and the token API can list them. Tokens issued at
// or after since are not targeted (a user may sign in again the moment a
// revocation ends). A call that only ends login sessions proves nothing:
// its tokens stay active.
func (r *IdPRevoker) prove(ctx context.Context, cmd *schemas.RevokeCommand, rawToken string, since time.Time, loginOnly bool) proof {
	t := cmd.Target
	if loginOnly {
		return proof{verdict: schemas.StepNotEffective, revoked: -1,
			statement: fmt.Sprintf("the token API's %s call ends login sessions and leaves issued tokens active", t.Kind)}
	}
	if rawToken != "" {
		return r.introspect(ctx, cmd, rawToken)
	}
	if t.Kind == schemas.TargetClient {
		return r.proveClient(ctx, cmd, t.ClientID)
	}
	if t.UserID == "" {
		return proof{verdict: schemas.StepUnconfirmed, revoked: -1, statement: fmt.Sprintf("no proof: the token API offers none for a %s target without its token", t.Kind)}
	}
	return r.list(ctx, cmd, since)
}

// proveClient settles a client revocation, which no token API here can
// prove: unconfirmed, unless the client call leaves refresh tokens active
// and the client may hold some.
func (r *IdPRevoker) proveClient(ctx context.Context, cmd *schemas.RevokeCommand, clientID string) proof {
	none := proof{verdict: schemas.StepUnconfirmed, revoked: -1, statement: "no proof: the token API offers none for a client"}
	prof, ok := r.api.(Profile)
	if !ok || !prof.AccessOnly() {
		return none
	}
	var ci idp.ClientInfo
	var found bool
	err := r.again(ctx, cmd, func(ctx context.Context) (err error) {
		ci, found, err = prof.LookupClient(ctx, clientID)
		return err
	})
	switch {
	case err != nil:
		return proof{verdict: schemas.StepUnconfirmed, revoked: -1, statement: "no proof, and looking the client up failed: " + failure(err)}
	case found && ci.HoldsRefreshTokens():
		return proof{verdict: schemas.StepNotEffective, revoked: -1,
			statement: "the token API's client call revokes access tokens only, and the client's refresh_token grant leaves its refresh tokens active"}
	}
	return proof{verdict: schemas.StepUnconfirmed, revoked: -1, statement: "no proof: the client call revokes access tokens only, and the client holds no refresh tokens"}
}

// introspect proves a raw token's revocation.
func (r *IdPRevoker) introspect(ctx context.Context, cmd *schemas.RevokeCommand, rawToken string) proof {
	var in idp.Introspection
	err := r.again(ctx, cmd, func(ctx context.Context) (err error) {
		in, err = r.api.Introspect(ctx, rawToken)
		return err
	})
	switch {
	case errors.Is(err, idp.ErrNoEndpoint) || errors.Is(err, idp.ErrNotConfigured):
		return proof{verdict: schemas.StepUnconfirmed, revoked: -1, statement: "no proof: the token API has no introspection endpoint"}
	case err != nil:
		return proof{verdict: schemas.StepUnconfirmed, revoked: -1, statement: "no proof: introspection failed: " + sanitise(failure(err), rawToken)}
	case in.Active:
		return proof{verdict: schemas.StepNotEffective, revoked: -1, subject: in.Subject, client: in.ClientID,
			statement: fmt.Sprintf("introspection: active=true (client %q)", in.ClientID)}
	}
	return proof{verdict: schemas.StepConfirmed, revoked: 1, statement: "introspection: active=false"}
}

// list proves a revocation from the subject's live tokens.
func (r *IdPRevoker) list(ctx context.Context, cmd *schemas.RevokeCommand, since time.Time) proof {
	t := cmd.Target
	var live []idp.TokenInfo
	err := r.again(ctx, cmd, func(ctx context.Context) (err error) {
		live, err = r.api.ListSubjectTokens(ctx, t.UserID)
		return err
	})
	switch {
	case errors.Is(err, idp.ErrNotConfigured):
		return proof{verdict: schemas.StepUnconfirmed, revoked: -1, statement: "no proof: the token API cannot list a subject's tokens"}
	case err != nil:
		return proof{verdict: schemas.StepUnconfirmed, revoked: -1, statement: "no proof: listing the subject's tokens failed: " + failure(err)}
	}
	var still, newer int
	for _, ti := range live {
		if !ti.IssuedAt.IsZero() && !ti.IssuedAt.Before(since) {
			newer++
			continue
		}
		if targeted(t, live, ti) {
			still++
		}
	}
	what := map[schemas.TargetKind]string{schemas.TargetUser: "tokens of the subject", schemas.TargetToken: "the token or its descendants", schemas.TargetSession: "tokens of the session"}[t.Kind]
	if still > 0 {
		return proof{verdict: schemas.StepNotEffective, revoked: -1, statement: fmt.Sprintf("token list: %d of %s still live", still, what)}
	}
	st := fmt.Sprintf("token list: none of %s live among the subject's %d", what, len(live))
	if newer > 0 {
		st += fmt.Sprintf(" (%d issued since the revocation)", newer)
	}
	return proof{verdict: schemas.StepConfirmed, revoked: -1, statement: st}
}

// targeted reports whether the live token ti is one the command targets.
func targeted(t schemas.Target, live []idp.TokenInfo, ti idp.TokenInfo) bool {
	switch t.Kind {
	case schemas.TargetUser:
		return true
	case schemas.TargetToken:
		return ti.TokenID == t.TokenID || (t.IncludeDownscoped && descends(live, ti, t.TokenID))
	case schemas.TargetSession:
		return ti.SessionID == t.SessionID
	}
	return false
}

// countBefore lists the targeted tokens before the call when the proof
// will be a list and the token API does not count what it revokes, so the
// count can come from the proof. -1: not listed.
func (r *IdPRevoker) countBefore(ctx context.Context, cmd *schemas.RevokeCommand) int {
	prof, ok := r.api.(Profile)
	if !ok || !prof.Lists() || prof.Counts(string(cmd.Target.Kind)) || cmd.Target.UserID == "" || cmd.Target.Kind == schemas.TargetClient {
		return -1
	}
	live, err := r.api.ListSubjectTokens(ctx, cmd.Target.UserID)
	if err != nil {
		return -1
	}
	n := 0
	for _, ti := range live {
		if targeted(cmd.Target, live, ti) {
			n++
		}
	}
	return n
}

// escalate makes one fallback call for a revocation that did not take. It
// returns a note for the trail and the kind of target the fallback
// revoked, whose proof settles the outcome next (nil when it was skipped
// or failed).
func (r *IdPRevoker) escalate(ctx context.Context, prof Profile, cmd *schemas.RevokeCommand, fallback string, pr proof) (string, *schemas.Target, error) {
	t := cmd.Target
	user := cmp.Or(t.UserID, pr.subject)
	var res idp.Result
	var err error
	var via schemas.Target
	switch fallback {
	case idp.EscalateSubjectClient:
		client := cmp.Or(pr.client, t.ClientID)
		if user == "" || client == "" {
			return "fallback subject_client skipped: the subject or client is unknown", nil, nil
		}
		res, err = prof.RevokeSubjectClient(ctx, user, client)
		via = schemas.Target{Kind: schemas.TargetToken, UserID: user, TokenID: t.TokenID}
	case idp.EscalateSubject:
		if user == "" {
			return "fallback subject skipped: the subject is unknown", nil, nil
		}
		res, err = r.api.RevokeSubject(ctx, user)
		via = schemas.Target{Kind: schemas.TargetUser, UserID: user}
	case idp.EscalateClient:
		// A client's tokens are everyone's who used it: fall back to them
		// only when they are the client's own (a client-credentials token,
		// whose subject is its client) or the target is the client.
		client := t.ClientID
		if client == "" && pr.client != "" && pr.client == pr.subject {
			client = pr.client
		}
		if client == "" {
			return "fallback client skipped: the token is not its client's own", nil, nil
		}
		res, err = r.api.RevokeClient(ctx, client)
		via = schemas.Target{Kind: schemas.TargetClient, ClientID: client, TokenID: t.TokenID}
	default:
		return "fallback " + fallback + " unknown", nil, nil
	}
	if err != nil {
		return fmt.Sprintf("fallback %s failed: %v", fallback, err), nil, err
	}
	return fmt.Sprintf("fallback %s: %d", fallback, res.Status), &via, nil
}

// proveVia proves a fallback: a raw token by introspection again, else a
// list of the fallback's target's tokens when it can be listed.
func (r *IdPRevoker) proveVia(ctx context.Context, cmd *schemas.RevokeCommand, rawToken string, via *schemas.Target, prev proof) proof {
	if rawToken != "" {
		return r.introspect(ctx, cmd, rawToken)
	}
	c := *cmd
	c.Target = *via
	if via.Kind == schemas.TargetClient || via.UserID == "" {
		return proof{verdict: schemas.StepUnconfirmed, revoked: -1, statement: prev.statement + "; the fallback offers no proof"}
	}
	// Tokens issued after the first call are not targeted, but the list
	// cannot tell them from ones issued before the fallback: take the
	// fallback's own time.
	return r.list(ctx, &c, time.Now())
}

// Proves says, for each target kind, how this revoker proves a revocation
// of it through api, for the startup log and `consumer idp`.
func Proves(api TokenAPI) map[schemas.TargetKind]string {
	prof, _ := api.(Profile)
	lists := prof != nil && prof.Lists()
	out := map[schemas.TargetKind]string{}
	for _, k := range []schemas.TargetKind{schemas.TargetUser, schemas.TargetToken, schemas.TargetSession, schemas.TargetClient} {
		var how []string
		switch {
		case prof != nil && prof.LoginOnly(string(k)):
			how = append(how, "not effective: its call leaves tokens active")
		case k == schemas.TargetClient:
			how = append(how, "unconfirmed: no proof")
		default:
			if k == schemas.TargetToken {
				how = append(how, "a raw token by introspection")
			}
			if lists {
				how = append(how, "by the subject's token list when the target names its user")
			} else if k != schemas.TargetToken {
				how = append(how, "unconfirmed: no proof")
			}
		}
		if prof != nil {
			if fb, n, _ := prof.Escalation(string(k)); len(fb) > 0 || n > 0 {
				how = append(how, fmt.Sprintf("not effective: %d repeats, then %s", n, strings.Join(cmpList(fb), ", ")))
			}
		}
		out[k] = strings.Join(how, "; ")
	}
	return out
}

func cmpList(fb []string) []string {
	if len(fb) == 0 {
		return []string{"dead-lettered"}
	}
	return append(slices.Clone(fb), "dead-lettered")
}

// failure is a proof call's error for the trail, without the terminal
// mark: a proof that failed leaves the revocation unconfirmed, not
// dead-lettered.
func failure(err error) string {
	return strings.TrimPrefix(err.Error(), ErrTerminal.Error()+": ")
}
