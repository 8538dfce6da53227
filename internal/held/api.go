package held

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/internal/ops"
)

// API serves the held commands of a Source, the same on both components:
//
//	GET  /api/v1/held[?all=true&limit=N]        pending (or all) held commands
//	POST /api/v1/held/{command_id}/approve      {"approver": "name", "reason": "..."}
//	POST /api/v1/held/{command_id}/reject       {"approver": "name", "reason": "..."}
//
// Every request needs "Authorization: Bearer <token>". Answers are Held
// (a list, or the decided command); errors are {"error": "..."} with 404
// (not held), 409 (decided the other way, expired, or the kill switch is
// engaged), 400 (no approver), 502 (refused for good) or 503 (transient:
// try again).
type API struct {
	held  Source
	token config.Secret
	log   zerolog.Logger
}

// DefaultListLimit is how many held commands a list returns unless told.
const DefaultListLimit = 100

// NewAPI returns the held-command API over src; with no token set it
// refuses every request.
func NewAPI(src Source, token config.Secret, log zerolog.Logger) *API {
	return &API{held: src, token: token, log: log}
}

// Register mounts the routes on mux.
func (a *API) Register(mux interface {
	Handle(pattern string, h http.Handler)
}) {
	mux.Handle("GET /api/v1/held", ops.RequireBearer(a.token, http.HandlerFunc(a.list)))
	mux.Handle("POST /api/v1/held/{command_id}/approve", ops.RequireBearer(a.token, http.HandlerFunc(a.approve)))
	mux.Handle("POST /api/v1/held/{command_id}/reject", ops.RequireBearer(a.token, http.HandlerFunc(a.reject)))
}

// Handler returns the routes as one handler.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	a.Register(mux)
	return mux
}

// decisionBody is the body of an approval or a rejection.
type decisionBody struct {
	Approver string `json:"approver"`
	Reason   string `json:"reason,omitempty"`
}

func (a *API) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := DefaultListLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100000 {
			ops.WriteJSON(w, http.StatusBadRequest, apiError{Error: "limit: want a whole number in [1, 100000]"})
			return
		}
		limit = n
	}
	held, err := a.held.List(r.Context(), q.Get("all") == "true", limit)
	if err != nil {
		a.fail(w, err)
		return
	}
	ops.WriteJSON(w, http.StatusOK, held)
}

func (a *API) approve(w http.ResponseWriter, r *http.Request) {
	d, ok := decode(w, r)
	if !ok {
		return
	}
	hc, err := a.held.Approve(r.Context(), r.PathValue("command_id"), d.Approver, d.Reason)
	if err != nil {
		a.fail(w, err)
		return
	}
	ops.WriteJSON(w, http.StatusOK, hc)
}

func (a *API) reject(w http.ResponseWriter, r *http.Request) {
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

func decode(w http.ResponseWriter, r *http.Request) (decisionBody, bool) {
	var d decisionBody
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil || strings.TrimSpace(d.Approver) == "" {
		ops.WriteJSON(w, http.StatusBadRequest, apiError{Error: `want {"approver": "name", "reason": "optional"}`})
		return d, false
	}
	return d, true
}

func (a *API) fail(w http.ResponseWriter, err error) {
	status := http.StatusServiceUnavailable
	switch {
	case errors.Is(err, ErrNotHeld):
		status = http.StatusNotFound
	case errors.Is(err, ErrDecided), errors.Is(err, ErrExpired), errors.Is(err, ErrBlocked):
		status = http.StatusConflict
	case errors.Is(err, ErrNoApprover):
		status = http.StatusBadRequest
	case errors.Is(err, ErrRefused):
		status = http.StatusBadGateway
	}
	if status >= 500 {
		a.log.Error().Err(err).Msg("held command request failed")
	}
	ops.WriteJSON(w, status, apiError{Error: err.Error()})
}

type apiError struct {
	Error string `json:"error"`
}
