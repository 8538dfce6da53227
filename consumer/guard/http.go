package guard

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/internal/ops"
)

// KillSwitchPath is where KillSwitchHandler is mounted.
const KillSwitchPath = "/api/v1/killswitch"

// KillSwitchState is the kill-switch endpoint's JSON body.
type KillSwitchState struct {
	Engaged bool   `json:"engaged"`
	Reason  string `json:"reason,omitempty"`
	// By names who set the switch (POST).
	By string `json:"by,omitempty"`
}

// Register mounts the kill switch's endpoint on mux: GET reports it, POST
// {"engaged": true|false, "by": "name"} sets it. Both need
// "Authorization: Bearer <token>"; with no token set nothing is mounted.
func (k *KillSwitch) Register(mux interface {
	Handle(pattern string, h http.Handler)
}, token config.Secret) {
	if !token.IsSet() {
		return
	}
	mux.Handle("GET "+KillSwitchPath, Bearer(token, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		on, why := k.Engaged()
		ops.WriteJSON(w, http.StatusOK, KillSwitchState{Engaged: on, Reason: why})
	})))
	mux.Handle("POST "+KillSwitchPath, Bearer(token, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var s KillSwitchState
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&s); err != nil || strings.TrimSpace(s.By) == "" {
			ops.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": `want {"engaged": bool, "by": "name"}`})
			return
		}
		k.Set(s.Engaged, s.By)
		on, why := k.Engaged()
		ops.WriteJSON(w, http.StatusOK, KillSwitchState{Engaged: on, Reason: why})
	})))
}

// Bearer lets through only requests that carry the token as a bearer
// credential, compared in constant time (ops.RequireBearer).
func Bearer(token config.Secret, next http.Handler) http.Handler {
	return ops.RequireBearer(token, next)
}
