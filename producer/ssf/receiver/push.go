package receiver

import (
	"errors"
	"io"
	"mime"
	"net/http"

	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/internal/ops"
	"github.com/revoked-dev/revoked/internal/ssf"
)

// PushPath is where the push endpoint listens by default.
const PushPath = "/ssf/events"

// PushHandler is the RFC 8935 endpoint: a POST of one SET
// (application/secevent+jwt) is answered 202 once what it says is on
// Kafka (or it is a SET accepted before), 400 with {"err",
// "description"} when it is refused, 401 with err authentication_failed
// without the bearer token the stream was given (when one is set), and
// 503 with Retry-After when it could not be processed now (the
// transmitter's keys or Kafka unavailable): the transmitter retries.
func (r *Receiver) PushHandler(token config.Secret) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			ops.WriteJSON(w, http.StatusMethodNotAllowed, ssf.ErrorBody{Err: ssf.ErrCodeInvalidRequest, Description: "POST a SET"})
			return
		}
		if token.IsSet() && !ops.BearerMatches(req, token.Reveal()) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ssf-receiver"`)
			ops.WriteJSON(w, http.StatusUnauthorized, ssf.ErrorBody{Err: ssf.ErrCodeAuthenticationFailed, Description: "the bearer token of this stream is required"})
			return
		}
		if mt, _, err := mime.ParseMediaType(req.Header.Get("Content-Type")); err != nil || (mt != ssf.ContentTypeSET && mt != "application/jwt") {
			ops.WriteJSON(w, http.StatusBadRequest, ssf.ErrorBody{Err: ssf.ErrCodeInvalidRequest, Description: "Content-Type must be " + ssf.ContentTypeSET})
			return
		}
		body, err := io.ReadAll(io.LimitReader(req.Body, ssf.MaxSETBytes+1))
		if err != nil {
			ops.WriteJSON(w, http.StatusBadRequest, ssf.ErrorBody{Err: ssf.ErrCodeInvalidRequest, Description: "reading the SET failed"})
			return
		}
		if len(body) > ssf.MaxSETBytes {
			ops.WriteJSON(w, http.StatusBadRequest, ssf.ErrorBody{Err: ssf.ErrCodeInvalidRequest, Description: "SET too large"})
			return
		}
		_, err = r.Process(req.Context(), string(body))
		var se *ssf.SETError
		switch {
		case err == nil:
			w.WriteHeader(http.StatusAccepted)
		case errors.As(err, &se):
			ops.WriteJSON(w, http.StatusBadRequest, se.Body())
		default:
			w.Header().Set("Retry-After", "5")
			ops.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "temporarily_unavailable", "error_description": "the SET could not be processed now; deliver it again"})
		}
	})
}
