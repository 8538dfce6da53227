package idp

import (
	"context"
	"fmt"
	"net/http"
)

// stepUpParams are the placeholders of Config.StepUp.
var stepUpParams = []string{"user_id", "session_id", "command_id"}

// StepUpRequest names whom the step-up hook is for.
type StepUpRequest struct {
	UserID    string
	SessionID string
	// CommandID is the revoke command's id; a hook that passes it on can
	// deduplicate a redelivered command.
	CommandID string
}

// StepUp calls the configured step-up hook (Config.StepUp) for a
// revoke_and_reverify command, after the revocation. Each placeholder the
// templates use must have a value in req, else ErrInvalidArgument. It
// blocks for one request bounded by Config.Timeout (plus an admin token
// request for client_credentials auth); ctx cancels it. An answer outside
// AcceptStatus is *HTTPError (classify with Retryable); an unconfigured
// hook is ErrNotConfigured, which callers treat as "nothing to do".
func (c *Client) StepUp(ctx context.Context, req StepUpRequest) (Result, error) {
	const op = "step_up"
	if c.cfg.StepUp.URL == "" {
		return Result{}, fmt.Errorf("idp: %s: %w", op, ErrNotConfigured)
	}
	vals := map[string]string{"user_id": req.UserID, "session_id": req.SessionID, "command_id": req.CommandID}
	resp, body, err := c.adminCall(ctx, op, c.cfg.StepUp, vals, maxBodyBytes)
	if err != nil {
		return Result{}, err
	}
	res := Result{Status: resp.StatusCode, Body: sanitize(string(body), excerptBytes, nil)}
	c.log.Debug().Str("op", op).Str("user_id", req.UserID).Str("command_id", req.CommandID).
		Int("status", res.Status).Msg("step-up hook called")
	return res, nil
}

// Step-up presets: the call each provider offers for "this user must prove
// themselves again before they get another token". A step-up runs after
// the subject-wide revocation, so it only has to stop the next login; the
// question for each provider is whether its call stops an attacker who
// holds the user's password (a guessed or stuffed password is what most
// revoke_and_reverify commands answer). A call that is completed with the
// password alone (Keycloak's UPDATE_PASSWORD or CONFIGURE_TOTP required
// actions, Okta's expire_password or reset_factors) would hand such an
// attacker the account, so none of those is used.
//
// The reference token API's call is filled in by default for
// admin.preset "reference" (Config.StepUp left empty). The providers'
// calls change the user's account (a password reset, an unverified
// e-mail), so they are opt-in: set Config.StepUp to the function's result,
// or copy the commented step_up block of examples/<provider>.yaml.
//
// Ory Hydra has no such call: it keeps no users and no credentials and
// delegates every login to the login application. The subject-wide
// revocation of HydraPreset ends the login sessions, so the next
// authorization request reaches the login application without skip=true;
// that application must keep its own "verify again" mark (set by a step_up
// call to an endpoint of its own) and, while it is set, ask for the second
// factor before it accepts the login request (PUT
// /admin/oauth2/auth/requests/login/accept, with amr naming the factor).
// Without that, revoke_and_reverify is a revoke.
//
// Box has no call that holds either: a user's is_password_reset_required
// (PUT /2.0/users/{id}) is completed with the current password, and status
// "inactive" locks the user out until an administrator reactivates them.
// Where Box sign-in goes through SSO, the step-up belongs at that identity
// provider; otherwise point step_up at the help desk's ticket API.

// ReferenceStepUp is the step-up of the reference token API
// (deployments/tokenapi): POST {base}/admin/subjects/{id}/require-reverification
// with the command id, 200. It revokes the user's live tokens again in the
// same step (closing the gap since the subject-wide revocation) and refuses
// every new token with invalid_grant until the login application calls
// POST {base}/admin/subjects/{id}/reverified after the second factor.
// Repeating it is harmless.
func ReferenceStepUp() AdminCall {
	return AdminCall{
		Method:       http.MethodPost,
		URL:          "{base}/admin/subjects/{user_id}/require-reverification",
		Body:         `{"command_id":"{command_id}"}`,
		AcceptStatus: []string{"200"},
	}
}

// KeycloakStepUp is Keycloak's step-up, a required action: PUT
// {base}/users/{id} (Admin REST API, "Update the user") with
// {"emailVerified":false,"requiredActions":["VERIFY_EMAIL"]}, 204. At the
// next login, after the password, Keycloak sends a verification link to
// the user's e-mail address and lets the login finish only once it is
// followed, so whoever has only the password is stopped. VERIFY_EMAIL
// passes at once for a verified address, hence emailVerified false.
//
// Caveats an operator accepts by opting in: the realm needs SMTP; a user
// without an e-mail address is let through (Keycloak skips the action);
// the call replaces the user's pending required actions with this one;
// the service account needs manage-users (as for the subject call).
// Realms whose browser flow already asks every user for OTP get that on
// top. UPDATE_PASSWORD and CONFIGURE_TOTP are not used: they run after
// the password, so an attacker who has it would set their own.
func KeycloakStepUp() AdminCall {
	return AdminCall{
		Method:       http.MethodPut,
		URL:          "{base}/users/{user_id}",
		Body:         `{"emailVerified":false,"requiredActions":["VERIFY_EMAIL"]}`,
		AcceptStatus: []string{"204"},
	}
}

// OktaStepUp is Okta's step-up: POST
// {base}/users/{id}/lifecycle/reset_password?sendEmail=true (Users API,
// "Reset a password"), 200 with an empty object. The user moves to
// RECOVERY: the old password no longer signs in, and Okta e-mails a
// one-time reset link, so the user proves the mailbox (and, per the
// org's password policy, a recovery factor) before the next token. With
// sendEmail=false Okta would return the reset URL instead, which must
// never reach the audit trail; that is why the e-mail is sent.
//
// expire_password is not used: the expired password is changed by
// entering it, which whoever guessed it can do. reset_factors is not
// used either: the next login enrols new factors after the password.
func OktaStepUp() AdminCall {
	return AdminCall{
		Method:       http.MethodPost,
		URL:          "{base}/users/{user_id}/lifecycle/reset_password?sendEmail=true",
		AcceptStatus: []string{"200"},
	}
}

// withStepUpPreset fills an unset step-up from the admin preset where the
// preset's step-up is the default (the reference token API's).
func (c Config) withStepUpPreset() AdminCall {
	if c.StepUp.URL != "" || c.Admin.Preset != PresetReference {
		return c.StepUp
	}
	call := ReferenceStepUp()
	call.Auth = c.StepUp.Auth
	return call
}
