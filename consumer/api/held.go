package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/guard"
	"github.com/revoked-dev/revoked/consumer/service"
	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/internal/ops"
)

// HeldCommands is what the held-command endpoints drive
// (*service.Approvals).
type HeldCommands interface {
	List(ctx context.Context, all bool, limit int) ([]service.HeldCommand, error)
	Approve(ctx context.Context, commandID, approver string) (service.HeldCommand, error)
	Reject(ctx context.Context, commandID, approver, reason string) (service.HeldCommand, error)
}

var _ HeldCommands = (*service.Approvals)(nil)

// HeldAPI serves the held commands:
//
//	GET  /api/v1/held[?all=true&limit=N]        pending (or all) held commands
//	POST /api/v1/held/{command_id}/approve      {"approver": "name"}
//	POST /api/v1/held/{command_id}/reject       {"approver": "name", "reason": "..."}
//
// Every request needs "Authorization: Bearer <token>". Answers are the
// command's state (service.HeldCommand); errors are {"error": "..."} with
// 404 (not held), 409 (decided the other way, or the kill switch is
// engaged), 400 (no approver), 502 (the token API refused for good) or 503
// (transient: try again).
type HeldAPI struct {
	held  HeldCommands
	token config.Secret
	log   zerolog.Logger
}

// NewHeld returns the held-command API; with no token set it refuses every
// request.
func NewHeld(held HeldCommands, token config.Secret, log zerolog.Logger) *HeldAPI {
	return &HeldAPI{held: held, token: token, log: log}
}

// Register mounts the routes on mux.
func (a *HeldAPI) Register(mux interface {
	Handle(pattern string, h http.Handler)
}) {
	mux.Handle("GET /api/v1/held", ops.RequireBearer(a.token, http.HandlerFunc(a.list)))
	mux.Handle("POST /api/v1/held/{command_id}/approve", ops.RequireBearer(a.token, http.HandlerFunc(a.approve)))
	mux.Handle("POST /api/v1/held/{command_id}/reject", ops.RequireBearer(a.token, http.HandlerFunc(a.reject)))
}

// Handler returns the routes as one handler.
func (a *HeldAPI) Handler() http.Handler {
	mux := http.NewServeMux()
	a.Register(mux)
	return mux
}

// Decision is the body of an approval or a rejection.
type Decision struct {
	Approver string `json:"approver"`
	Reason   string `json:"reason,omitempty"`
}

func (a *HeldAPI) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	page, err := ParseQuery(map[string][]string{"limit": q["limit"]})
	if err != nil {
		ops.WriteJSON(w, http.StatusBadRequest, apiError{Error: err.Error()})
		return
	}
	held, err := a.held.List(r.Context(), q.Get("all") == "true", page.Limit)
	if err != nil {
		a.fail(w, err)
		return
	}
	ops.WriteJSON(w, http.StatusOK, held)
}

func (a *HeldAPI) approve(w http.ResponseWriter, r *http.Request) {
	d, ok := decode(w, r)
	if !ok {
		return
	}
	hc, err := a.held.Approve(r.Context(), r.PathValue("command_id"), d.Approver)
	if err != nil {
		a.fail(w, err)
		return
	}
	ops.WriteJSON(w, http.StatusOK, hc)
}

func (a *HeldAPI) reject(w http.ResponseWriter, r *http.Request) {
	d, ok := decode(w, r)
	if !ok {
		return
	}
	hc, err := a.held.Reject(r.Context(), r.PathValue("command_id"), d.Approver, d.Reason)
	if err != nil {
		a.fail(w, err)
		return
	}
	ops.WriteJSON(w, http.StatusOK, hc)
}

func decode(w http.ResponseWriter, r *http.Request) (Decision, bool) {
	var d Decision
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil || strings.TrimSpace(d.Approver) == "" {
		ops.WriteJSON(w, http.StatusBadRequest, apiError{Error: `want {"approver": "name", "reason": "optional"}`})
		return d, false
	}
	return d, true
}

func (a *HeldAPI) fail(w http.ResponseWriter, err error) {
	status := http.StatusServiceUnavailable
	switch {
	case errors.Is(err, service.ErrNotHeld):
		status = http.StatusNotFound
	case errors.Is(err, service.ErrDecided), errors.Is(err, guard.ErrKillSwitch):
		status = http.StatusConflict
	case errors.Is(err, service.ErrNoApprover):
		status = http.StatusBadRequest
	case errors.Is(err, service.ErrTerminal), errors.Is(err, service.ErrMismatch):
		status = http.StatusBadGateway
	}
	if status >= 500 {
		a.log.Error().Err(err).Msg("held command request failed")
	}
	ops.WriteJSON(w, status, apiError{Error: err.Error()})
}
