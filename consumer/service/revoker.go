package service

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/revoked-dev/revoked/consumer/idp"
	"github.com/revoked-dev/revoked/schemas"
)

// TokenAPI is the part of the IdP client the revoker uses.
type TokenAPI interface {
	RevokeToken(ctx context.Context, rawToken, hint string) error
	Introspect(ctx context.Context, rawToken string) (idp.Introspection, error)
	RevokeSubject(ctx context.Context, userID string) (idp.Result, error)
	RevokeTokenID(ctx context.Context, tokenID string) (idp.Result, error)
	RevokeSession(ctx context.Context, sessionID string) (idp.Result, error)
	RevokeClient(ctx context.Context, clientID string) (idp.Result, error)
	ListSubjectTokens(ctx context.Context, userID string) ([]idp.TokenInfo, error)
}

// StepUpper calls the step-up hook of revoke_and_reverify commands: it
// makes the user prove themselves again (re-authentication, MFA) after the
// revocation. A TokenAPI that also implements it gets the call.
type StepUpper interface {
	StepUp(ctx context.Context, req idp.StepUpRequest) (idp.Result, error)
}

var (
	_ TokenAPI  = (*idp.Client)(nil)
	_ StepUpper = (*idp.Client)(nil)
	_ Revoker   = (*IdPRevoker)(nil)
)

// RetryConfig bounds the revoker's retries of transient failures.
type RetryConfig struct {
	// MaxAttempts is how many calls one Revoke makes at most before it
	// reports a transient failure (the reader then retries the message).
	MaxAttempts int           `flag:"max-attempts" env:"MAX_ATTEMPTS" yaml:"max_attempts" usage:"calls to the token API per command before the reader retries it later"`
	MinBackoff  time.Duration `flag:"min-backoff" env:"MIN_BACKOFF" yaml:"min_backoff" usage:"first backoff after a transient token API failure"`
	MaxBackoff  time.Duration `flag:"max-backoff" env:"MAX_BACKOFF" yaml:"max_backoff" usage:"longest backoff after transient token API failures"`
}

// DefaultRetryConfig retries 5 times between 50 ms and 5 s.
func DefaultRetryConfig() RetryConfig {
	return RetryConfig{MaxAttempts: 5, MinBackoff: 50 * time.Millisecond, MaxBackoff: 5 * time.Second}
}

// IdPRevoker carries out commands through an IdP client: RFC 7009 for a
// sealed raw token, the subject-wide, token-id, session and client admin
// calls for the other targets, and then proves the revocation where the
// token API offers a way (introspection, the subject's live tokens).
type IdPRevoker struct {
	api     TokenAPI
	retry   RetryConfig
	sleep   func(context.Context, time.Duration) error
	lineage Lineage
}

// Lineage knows downscoped tokens from token.exchanged events, which the
// token API may not: a token's descendants, any number of generations
// down, and a user's downscoped tokens.
type Lineage interface {
	Descendants(tokenID string) []string
	UserTokens(userID string) []string
}

// WithLineage makes the revoker also revoke, for include_downscoped
// commands, the descendants l knows of. A nil l turns that off.
func (r *IdPRevoker) WithLineage(l Lineage) *IdPRevoker {
	r.lineage = l
	return r
}

// NewIdPRevoker returns a revoker over api.
func NewIdPRevoker(api TokenAPI, retry RetryConfig) *IdPRevoker {
	if retry.MaxAttempts <= 0 {
		retry = DefaultRetryConfig()
	}
	return &IdPRevoker{api: api, retry: retry, sleep: sleepCtx}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Revoke implements Revoker. It makes the call that carries out the
// command (retrying transient failures), then settles its outcome with the
// token API's proof (see settle), and for revoke_and_reverify calls the
// step-up hook once the revocation took.
func (r *IdPRevoker) Revoke(ctx context.Context, cmd *schemas.RevokeCommand, rawToken string) (Outcome, error) {
	var out Outcome
	call := r.call(cmd, rawToken, &out.FromLineage)
	if call == nil {
		return out, fmt.Errorf("%w: target %q cannot be revoked by this consumer", ErrTerminal, cmd.Target.Kind)
	}
	before := r.countBefore(ctx, cmd)
	since := time.Now()
	if err := r.retrying(ctx, cmd, &out, call); err != nil {
		return out, err
	}
	if err := r.settle(ctx, cmd, rawToken, &out, call, since, before); err != nil {
		return out, err
	}
	if cmd.Action == schemas.ActionRevokeAndReverify && out.Verdict != schemas.StepNotEffective {
		note, err := r.stepUp(ctx, cmd)
		if err != nil {
			return out, err
		}
		out.Response = strings.TrimPrefix(out.Response+"; "+note, "; ")
	}
	return out, nil
}

// retrying makes call until it succeeds, fails terminally or runs out of
// attempts, and records its answer in out.
func (r *IdPRevoker) retrying(ctx context.Context, cmd *schemas.RevokeCommand, out *Outcome, call apiCall) error {
	return r.again(ctx, cmd, func(ctx context.Context) error {
		out.Attempts++
		res, err := call(ctx)
		out.Status, out.Revoked, out.CountKnown, out.Response = res.Status, res.Revoked, res.CountKnown, res.Body
		var he *idp.HTTPError
		if errors.As(err, &he) {
			out.Status = he.Status
		}
		return err
	})
}

// again makes call until it succeeds, fails terminally (an error wrapping
// ErrTerminal), has been made MaxAttempts times, or the next wait would
// outlast the command (ErrTerminal too).
func (r *IdPRevoker) again(ctx context.Context, cmd *schemas.RevokeCommand, call func(context.Context) error) error {
	// Each wait is drawn at random up to the schedule's next interval
	// (full jitter): MinBackoff, doubling up to MaxBackoff. The loop is
	// ours rather than backoff.Retry's: a Retry-After overrides the
	// schedule without advancing it, a command that would expire during
	// the wait is given up as terminal, and the wait goes through
	// r.sleep, which tests replace.
	schedule := &backoff.ExponentialBackOff{
		InitialInterval: r.retry.MinBackoff,
		Multiplier:      2,
		MaxInterval:     r.retry.MaxBackoff,
	}
	for tries := 1; ; tries++ {
		err := call(ctx)
		if err == nil {
			return nil
		}
		retry, after := idp.Retryable(err)
		if !retry {
			return fmt.Errorf("%w: %w", ErrTerminal, err)
		}
		if tries >= r.retry.MaxAttempts {
			return fmt.Errorf("after %d attempts: %w", tries, err)
		}
		// Honour the server's Retry-After; otherwise back off
		// exponentially with full jitter.
		wait := after
		if wait <= 0 {
			wait = time.Duration(rand.Int64N(int64(schedule.NextBackOff())) + 1)
		}
		if !cmd.ExpiresAt.IsZero() && time.Now().Add(wait).After(cmd.ExpiresAt) {
			return fmt.Errorf("%w: command expires before the token API can be retried: %w", ErrTerminal, err)
		}
		if err := r.sleep(ctx, wait); err != nil {
			return err
		}
	}
}

type apiCall func(ctx context.Context) (idp.Result, error)

// stepUp calls the step-up hook after a revoke_and_reverify revocation
// and returns a note for the trail. No hook (ErrNotConfigured, or a token
// API without one) leaves the revocation alone. A transient failure is
// returned, so the command is retried whole (the revocation again is
// harmless, and the hook gets the command id to deduplicate); a terminal
// one is noted and the revocation stands, since it already took.
func (r *IdPRevoker) stepUp(ctx context.Context, cmd *schemas.RevokeCommand) (string, error) {
	s, ok := r.api.(StepUpper)
	if !ok {
		return "step-up: no hook", nil
	}
	res, err := s.StepUp(ctx, idp.StepUpRequest{UserID: cmd.Target.UserID, SessionID: cmd.Target.SessionID, CommandID: cmd.CommandID})
	switch {
	case err == nil:
		return fmt.Sprintf("step-up: %d", res.Status), nil
	case errors.Is(err, idp.ErrNotConfigured):
		return "step-up: no hook", nil
	}
	if retry, _ := idp.Retryable(err); retry {
		return "", fmt.Errorf("step-up after the revocation: %w", err)
	}
	return "step-up refused: " + err.Error(), nil
}

// call returns the token API call that carries out the command. Every call
// is idempotent, so the retry loop may repeat it whole:
//
//   - user: the subject-wide admin call; where the provider has none
//     (ErrNotConfigured), every live token the subject listing names, one
//     by one by id (downscoped ones are the user's tokens too).
//   - token: RFC 7009 with the unsealed raw token, else the token-id admin
//     call. With include_downscoped, the token's whole family goes too:
//     the reference token API (deployments/tokenapi) cascades a revocation
//     to every descendant itself, and so do providers that track lineage;
//     for the others the subject's live tokens are listed after the
//     revocation and every one descending from the token (through
//     TokenInfo.ParentTokenID, any number of generations) is revoked by id.
//     This needs the target's user id and the listing call; without them
//     the provider's own cascade is all there is.
//   - session and client: their admin calls.
//
// With a lineage index, include_downscoped also revokes by id what the
// index learned from token.exchanged events and the token API's own answer
// did not cover: a token's descendants, and, where the provider has no
// subject-wide call, the user's downscoped tokens. fromLineage is set to
// how many of those were revoked.
func (r *IdPRevoker) call(cmd *schemas.RevokeCommand, rawToken string, fromLineage *int) apiCall {
	t := cmd.Target
	var base apiCall
	switch t.Kind {
	case schemas.TargetUser:
		return func(ctx context.Context) (idp.Result, error) {
			*fromLineage = 0
			res, err := r.api.RevokeSubject(ctx, t.UserID)
			if err == nil {
				return r.clientSubject(ctx, t.UserID, res)
			}
			if !errors.Is(err, idp.ErrNotConfigured) {
				return res, err
			}
			covered := map[string]bool{}
			res, err = r.revokeEach(ctx, t.UserID, func(_ []idp.TokenInfo, ti idp.TokenInfo) bool {
				covered[ti.TokenID] = true
				return true
			})
			if err != nil || !t.IncludeDownscoped || r.lineage == nil {
				return res, err
			}
			return r.revokeKnown(ctx, res, r.lineage.UserTokens(t.UserID), covered, fromLineage)
		}
	case schemas.TargetToken:
		if rawToken != "" {
			base = func(ctx context.Context) (idp.Result, error) {
				if err := r.api.RevokeToken(ctx, rawToken, "access_token"); err != nil {
					return idp.Result{}, err
				}
				return idp.Result{Status: 200}, nil
			}
		} else {
			base = func(ctx context.Context) (idp.Result, error) { return r.api.RevokeTokenID(ctx, t.TokenID) }
		}
		if !t.IncludeDownscoped || (t.UserID == "" && r.lineage == nil) {
			return base
		}
		return func(ctx context.Context) (idp.Result, error) {
			*fromLineage = 0
			res, err := base(ctx)
			if err != nil {
				return res, err
			}
			covered := map[string]bool{t.TokenID: true}
			if t.UserID != "" {
				more, err := r.revokeEach(ctx, t.UserID, func(live []idp.TokenInfo, ti idp.TokenInfo) bool {
					if !descends(live, ti, t.TokenID) {
						return false
					}
					covered[ti.TokenID] = true
					return true
				})
				switch {
				case errors.Is(err, idp.ErrNotConfigured):
					// no listing: the provider's cascade (and the
					// lineage index) is all there is
				default:
					res.Revoked += more.Revoked
					if more.Revoked > 0 {
						res.Body = strings.TrimSpace(res.Body + "; " + more.Body)
					}
					if err != nil {
						return res, err
					}
				}
			}
			if r.lineage == nil {
				return res, nil
			}
			return r.revokeKnown(ctx, res, r.lineage.Descendants(t.TokenID), covered, fromLineage)
		}
	case schemas.TargetSession:
		return func(ctx context.Context) (idp.Result, error) { return r.api.RevokeSession(ctx, t.SessionID) }
	case schemas.TargetClient:
		return func(ctx context.Context) (idp.Result, error) { return r.api.RevokeClient(ctx, t.ClientID) }
	}
	return nil
}

// clientSubject also revokes, with the client call, the tokens of a user
// id that names a registered client (a client-credentials grant's subject
// is its client id on Ory Hydra, whose subject-wide call leaves them
// alone), when the token API can look clients up.
func (r *IdPRevoker) clientSubject(ctx context.Context, userID string, res idp.Result) (idp.Result, error) {
	prof, ok := r.api.(Profile)
	if !ok {
		return res, nil
	}
	_, isClient, err := prof.LookupClient(ctx, userID)
	switch {
	case errors.Is(err, idp.ErrNotConfigured):
		return res, nil
	case err != nil:
		return res, fmt.Errorf("looking up whether subject %q is a client: %w", userID, err)
	case !isClient:
		return res, nil
	}
	more, err := r.api.RevokeClient(ctx, userID)
	if err != nil {
		return res, fmt.Errorf("subject %q is a client, revoking its own tokens: %w", userID, err)
	}
	res.Status = more.Status
	res.Body = strings.TrimPrefix(fmt.Sprintf("%s; the subject is a client: client call %d", res.Body, more.Status), "; ")
	if more.CountKnown && res.CountKnown {
		res.Revoked += more.Revoked
	} else {
		res.CountKnown, res.Revoked = false, 0
	}
	return res, nil
}

// revokeEach lists the user's live tokens and revokes, by id, each that
// pick selects. A token that is gone by the time it is revoked (404) is
// done. It stops at the first other failure, which the caller classifies;
// a repeat lists again and so skips what was already revoked.
func (r *IdPRevoker) revokeEach(ctx context.Context, userID string, pick func(live []idp.TokenInfo, ti idp.TokenInfo) bool) (idp.Result, error) {
	live, err := r.api.ListSubjectTokens(ctx, userID)
	if err != nil {
		return idp.Result{}, err
	}
	res := idp.Result{Status: 200, CountKnown: true}
	for _, ti := range live {
		if !pick(live, ti) {
			continue
		}
		one, err := r.api.RevokeTokenID(ctx, ti.TokenID)
		switch {
		case err == nil:
			res.Revoked++
		case errors.Is(err, idp.ErrNotFound):
		default:
			res.Status = one.Status
			res.Body = fmt.Sprintf("revoked %d of %d listed tokens one by one", res.Revoked, len(live))
			return res, err
		}
	}
	res.Body = fmt.Sprintf("revoked %d listed tokens one by one", res.Revoked)
	return res, nil
}

// revokeKnown revokes by id each of ids that covered does not hold, adds
// them to res and sets *n to how many were revoked. A token that is
// already gone (404) is done, and revoking an already revoked id is
// harmless. It stops at the first other failure, which the caller
// classifies; a repeat revokes them all again.
func (r *IdPRevoker) revokeKnown(ctx context.Context, res idp.Result, ids []string, covered map[string]bool, n *int) (idp.Result, error) {
	slices.Sort(ids)
	for _, id := range ids {
		if covered[id] {
			continue
		}
		covered[id] = true
		one, err := r.api.RevokeTokenID(ctx, id)
		switch {
		case err == nil:
			*n++
		case errors.Is(err, idp.ErrNotFound):
		default:
			res.Status = one.Status
			res.Body = strings.TrimPrefix(fmt.Sprintf("%s; revoked %d downscoped tokens known from token.exchanged events before a failure", res.Body, *n), "; ")
			return res, err
		}
	}
	if *n > 0 {
		res.Revoked += *n
		res.Body = strings.TrimPrefix(fmt.Sprintf("%s; revoked %d more downscoped tokens known from token.exchanged events", res.Body, *n), "; ")
	}
	return res, nil
}

// descends reports whether ti descends from root through the parents
// named in live (the root itself need not be listed any more).
func descends(live []idp.TokenInfo, ti idp.TokenInfo, root string) bool {
	parent := make(map[string]string, len(live))
	for _, l := range live {
		parent[l.TokenID] = l.ParentTokenID
	}
	seen := map[string]bool{}
	for p := ti.ParentTokenID; p != "" && !seen[p]; p = parent[p] {
		if p == root {
			return true
		}
		seen[p] = true
	}
	return false
}
