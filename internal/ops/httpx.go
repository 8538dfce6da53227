package ops

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/revoked-dev/revoked/internal/config"
)

// WriteJSON writes v as the JSON body of a response with status, marked
// not to be cached (answers here hold audit data, tokens or state).
func WriteJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// BearerMatches reports whether r carries token as its bearer credential
// ("Authorization: Bearer <token>"), compared in constant time. An empty
// token matches nothing.
func BearerMatches(r *http.Request, token string) bool {
	if token == "" {
		return false
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(token)) == 1
}

// RequireBearer lets through only requests that carry token as their
// bearer credential; others get 401 with a JSON error. With no token set,
// nothing gets through.
func RequireBearer(token config.Secret, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !token.IsSet() || !BearerMatches(r, token.Reveal()) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="revoked"`)
			WriteJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthorized"})
			return
		}
		next.ServeHTTP(w, r)
	})
}
