package stack

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/revoked-dev/revoked/producer/simulate"
	"github.com/revoked-dev/revoked/schemas"
)

// issuance records what the token API answered to the simulator's token
// requests: every token it issued (by id, user and the moment the answer
// came back) and every request it refused because the user must first
// verify again. The report counts tokens issued after a revocation from
// these answers, not from what the simulator meant to do.
type issuance struct {
	next *simulate.HTTPIssuer

	mu      sync.Mutex
	issued  map[string][]issueRecord // user → tokens in answer order
	byToken map[string]issueRecord   // token id → its issue
	refused map[string]int           // user → requests refused for re-verification
	verify  map[string][]time.Time   // user → re-verifications
}

type issueRecord struct {
	userID, tokenID string
	at              time.Time
}

var (
	_ simulate.TokenIssuer    = (*issuance)(nil)
	_ simulate.TokenExchanger = (*issuance)(nil)
	_ simulate.Reverifier     = (*issuance)(nil)
)

func newIssuance(next *simulate.HTTPIssuer) *issuance {
	return &issuance{
		next: next, issued: map[string][]issueRecord{}, byToken: map[string]issueRecord{},
		refused: map[string]int{}, verify: map[string][]time.Time{},
	}
}

// Issue implements simulate.TokenIssuer.
func (i *issuance) Issue(ctx context.Context, userID, clientID, sessionID string, scopes []string) (string, string, error) {
	raw, id, err := i.next.Issue(ctx, userID, clientID, sessionID, scopes)
	i.record(userID, raw, err)
	return raw, id, err
}

// CanExchange implements simulate.TokenExchanger.
func (i *issuance) CanExchange(clientID string) bool { return i.next.CanExchange(clientID) }

// Exchange implements simulate.TokenExchanger. The exchange names no
// user: the child belongs to its parent's.
func (i *issuance) Exchange(ctx context.Context, clientID, parentRaw string, scopes []string) (string, string, error) {
	raw, id, err := i.next.Exchange(ctx, clientID, parentRaw, scopes)
	i.mu.Lock()
	user := i.byToken[schemas.Fingerprint(parentRaw)].userID
	i.mu.Unlock()
	i.record(user, raw, err)
	return raw, id, err
}

// Reverify implements simulate.Reverifier.
func (i *issuance) Reverify(ctx context.Context, userID string) error {
	if err := i.next.Reverify(ctx, userID); err != nil {
		return err
	}
	i.mu.Lock()
	i.verify[userID] = append(i.verify[userID], time.Now())
	i.mu.Unlock()
	return nil
}

func (i *issuance) record(userID, raw string, err error) {
	at := time.Now()
	i.mu.Lock()
	defer i.mu.Unlock()
	switch {
	case err == nil:
		r := issueRecord{userID: userID, tokenID: schemas.Fingerprint(raw), at: at}
		i.issued[userID] = append(i.issued[userID], r)
		i.byToken[r.tokenID] = r
	case errors.Is(err, simulate.ErrReverificationRequired):
		i.refused[userID]++
	}
}

// AfterRevocation counts the tokens the token API issued to a user after
// the consumer revoked that user (the revoked row's time), from the token
// API's answers to the simulator.
type AfterRevocation struct {
	// Unverified tokens were issued after a revoke_and_reverify of the
	// user and before the user verified again: the re-verification did
	// not hold. It must be 0.
	Unverified int
	// Later tokens were issued after a plain revocation of the user (of
	// the user, or one of their sessions or tokens), or after the user
	// verified again: the user, or whoever holds the password, logged in
	// again.
	Later int
	// AttackerUnverified and AttackerLater count, among Unverified and
	// Later, the tokens an attack's ground-truth line names (the
	// attacker's token after a guessed password, a stolen child).
	AttackerUnverified, AttackerLater int
	// Refused is how many token requests the token API refused because
	// the user must verify again, and Reverified how many times users
	// verified again.
	Refused, Reverified int
}

// afterRevocation classifies every token issued to a revoked user, from
// the users' answers (their notifications count for nothing).
// attackerTokens are the attackers' token ids from the ground truth.
func (i *issuance) afterRevocation(answers map[string][]answer, attackerTokens map[string]bool) AfterRevocation {
	i.mu.Lock()
	defer i.mu.Unlock()
	var out AfterRevocation
	for _, n := range i.refused {
		out.Refused += n
	}
	for _, v := range i.verify {
		out.Reverified += len(v)
	}
	for user, rs := range answers {
		for _, tok := range i.issued[user] {
			unverified, after := false, false
			for _, r := range rs {
				if !r.revoked || !r.at.Before(tok.at) {
					continue
				}
				after = true
				if r.action == schemas.ActionRevokeAndReverify && !i.verifiedBetween(user, r.at, tok.at) {
					unverified = true
				}
			}
			switch {
			case unverified:
				out.Unverified++
				if attackerTokens[tok.tokenID] {
					out.AttackerUnverified++
				}
			case after:
				out.Later++
				if attackerTokens[tok.tokenID] {
					out.AttackerLater++
				}
			}
		}
	}
	return out
}

// verifiedBetween reports whether the user verified again in (from, to].
func (i *issuance) verifiedBetween(user string, from, to time.Time) bool {
	for _, v := range i.verify[user] {
		if v.After(from) && !v.After(to) {
			return true
		}
	}
	return false
}
