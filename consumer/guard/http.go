package guard

import (
	"net/http"

	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/internal/ops"
)

// Bearer lets through only requests that carry the token as a bearer
// credential, compared in constant time (ops.RequireBearer).
func Bearer(token config.Secret, next http.Handler) http.Handler {
	return ops.RequireBearer(token, next)
}
