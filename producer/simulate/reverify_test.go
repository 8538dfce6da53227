package simulate

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// refusingIssuer refuses a user's tokens until the user re-verified.
type refusingIssuer struct {
	waiting map[string]bool
	issued  int
}

func (r *refusingIssuer) Issue(_ context.Context, userID, _, _ string, _ []string) (string, string, error) {
	if r.waiting[userID] {
		return "", "", fmt.Errorf("%w: %w: invalid_grant", ErrRefused, ErrReverificationRequired)
	}
	r.issued++
	return fmt.Sprintf("raw-%d", r.issued), "", nil
}

func (r *refusingIssuer) Reverify(_ context.Context, userID string) error {
	delete(r.waiting, userID)
	return nil
}

// A user refused until they verify again verifies and gets the token; an
// attacker gets none and no second chance.
func TestRefusalForReverification(t *testing.T) {
	iss := &refusingIssuer{waiting: map[string]bool{"alice": true, "bob": true}}
	cfg := DefaultConfig()
	cfg.Duration = time.Minute
	s, err := New(cfg, iss, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.issue(t.Context(), asAttacker, "bob", "web-app", "s", nil); !errors.Is(err, errNoToken) {
		t.Errorf("attacker: %v, want errNoToken", err)
	}
	if !iss.waiting["bob"] || iss.issued != 0 {
		t.Error("the attacker's refusal re-verified the user or got a token")
	}
	tok, err := s.issue(t.Context(), asUser, "alice", "web-app", "s", nil)
	if err != nil || tok.raw == "" || iss.waiting["alice"] {
		t.Errorf("user: %+v %v", tok, err)
	}
	if got := s.Tokens()["alice"]; len(got) != 1 {
		t.Errorf("kept %v", got)
	}
}
