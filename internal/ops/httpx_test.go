package ops_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/internal/ops"
)

// A bearer token matches only itself, spaces around it aside; no token
// matches nothing; RequireBearer answers 401 in JSON, uncached, to every
// request without the token, and to all of them when none is set.
func TestBearer(t *testing.T) {
	req := func(auth string) *http.Request {
		r := httptest.NewRequest("GET", "/x", nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		return r
	}
	for auth, want := range map[string]bool{"Bearer tok": true, "Bearer  tok ": true, "Bearer tok2": false, "bearer tok": false, "tok": false, "": false} {
		if got := ops.BearerMatches(req(auth), "tok"); got != want {
			t.Errorf("%q: %v, want %v", auth, got, want)
		}
	}
	if ops.BearerMatches(req("Bearer "), "") {
		t.Error("an empty token matched")
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	for _, tc := range []struct {
		token config.Secret
		auth  string
		want  int
	}{
		{config.NewSecret("tok"), "Bearer tok", http.StatusNoContent},
		{config.NewSecret("tok"), "Bearer nope", http.StatusUnauthorized},
		{config.NewSecret("tok"), "", http.StatusUnauthorized},
		{config.Secret{}, "Bearer ", http.StatusUnauthorized},
	} {
		rec := httptest.NewRecorder()
		ops.RequireBearer(tc.token, ok).ServeHTTP(rec, req(tc.auth))
		if rec.Code != tc.want {
			t.Errorf("%q: %d, want %d", tc.auth, rec.Code, tc.want)
		}
		if tc.want == http.StatusUnauthorized && (rec.Header().Get("Content-Type") != "application/json" ||
			rec.Header().Get("Cache-Control") != "no-store" || rec.Header().Get("WWW-Authenticate") == "") {
			t.Errorf("%q: 401 headers %v", tc.auth, rec.Header())
		}
	}
}
