package idp

import (
	"context"
	"fmt"
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
