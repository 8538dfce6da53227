package guard

import (
	"net/http"
	"strings"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/internal/ops"
)

// KillSwitchPath is where AdminHandler serves the kill switch.
const KillSwitchPath = "/admin/kill-switch"

// AdminHandler serves the kill switch over HTTP for an operator holding
// token, a bearer token:
//
//	GET  /admin/kill-switch            {"on":false,"runtime":false,"file":false}
//	POST /admin/kill-switch?state=on   turn the runtime switch on (or off)
//
// POST takes state from the query or a form body: on or off (also true,
// false, 1, 0). It answers the new state. A wrong or missing token gets 401
// and is logged. Turning the runtime switch off leaves a kill-switch file
// in force; the answer's "file" says so. Every change is logged at warn
// level with the caller's address.
func AdminHandler(k *KillSwitch, token string, log zerolog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !ops.BearerMatches(r, token) {
			log.Warn().Str("remote", r.RemoteAddr).Str("method", r.Method).Msg("kill switch: unauthorized request")
			w.Header().Set("WWW-Authenticate", `Bearer realm="revoked-detector"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		switch r.Method {
		case http.MethodGet:
		case http.MethodPost:
			on, ok := parseState(r.FormValue("state"))
			if !ok {
				http.Error(w, `state must be "on" or "off"`, http.StatusBadRequest)
				return
			}
			k.Set(on)
			_, file := k.State()
			log.Warn().Bool("on", on).Bool("file", file).Str("remote", r.RemoteAddr).Msg("kill switch set")
		default:
			w.Header().Set("Allow", "GET, POST")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		runtime, file := k.State()
		ops.WriteJSON(w, http.StatusOK, map[string]bool{"on": runtime || file, "runtime": runtime, "file": file})
	})
}

func parseState(s string) (on, ok bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "on", "true", "1":
		return true, true
	case "off", "false", "0":
		return false, true
	}
	return false, false
}
