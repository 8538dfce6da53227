package idp_test

import (
	"errors"
	"testing"

	"github.com/revoked-dev/revoked/consumer/idp"
)

// contractIDs names what exists at the provider under test; an empty
// session means the provider has no session call.
type contractIDs struct {
	user, session string
	// configured lists the admin calls the adapter has besides subject
	// and session: "token_id", "client", "list_subject_tokens".
	configured []string
}

// checkContract is what the revoker relies on from every adapter (the
// reference token API and each preset against its scripted provider):
// revocations succeed and stay successful when repeated (commands are
// redelivered), empty arguments and unconfigured calls fail before any
// request and are not retried.
func checkContract(t *testing.T, c *idp.Client, ids contractIDs) {
	t.Helper()
	for range 2 {
		if err := c.RevokeToken(t.Context(), "contract-token-never-issued", ""); err != nil && !errors.Is(err, idp.ErrNoEndpoint) {
			t.Errorf("contract: revoking an unknown token: %v", err)
		}
		if res, err := c.RevokeSubject(t.Context(), ids.user); err != nil || res.Status < 200 || res.Status > 299 {
			t.Errorf("contract: subject revocation: %+v %v", res, err)
		}
		if ids.session != "" {
			if _, err := c.RevokeSession(t.Context(), ids.session); err != nil {
				t.Errorf("contract: session revocation: %v", err)
			}
		}
	}
	if err := c.RevokeToken(t.Context(), "", ""); !errors.Is(err, idp.ErrInvalidArgument) {
		t.Errorf("contract: empty token: %v", err)
	}
	if _, err := c.RevokeSubject(t.Context(), ""); !errors.Is(err, idp.ErrInvalidArgument) {
		t.Errorf("contract: empty user: %v", err)
	}
	configured := map[string]bool{}
	for _, n := range ids.configured {
		configured[n] = true
	}
	if ids.session == "" {
		if _, err := c.RevokeSession(t.Context(), "s"); !errors.Is(err, idp.ErrNotConfigured) {
			t.Errorf("contract: session call: %v, want ErrNotConfigured", err)
		}
	}
	for name, call := range map[string]func() error{
		"token_id":            func() error { _, err := c.RevokeTokenID(t.Context(), "id"); return err },
		"client":              func() error { _, err := c.RevokeClient(t.Context(), "cl"); return err },
		"list_subject_tokens": func() error { _, err := c.ListSubjectTokens(t.Context(), ids.user); return err },
	} {
		if configured[name] {
			continue
		}
		err := call()
		if !errors.Is(err, idp.ErrNotConfigured) {
			t.Errorf("contract: %s: %v, want ErrNotConfigured", name, err)
		}
		if retry, _ := idp.Retryable(err); retry {
			t.Errorf("contract: %s: ErrNotConfigured retryable", name)
		}
	}
}
