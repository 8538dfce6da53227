package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/revoked-dev/revoked/schemas"
)

// requireAdmin lets a request through only with the admin bearer token.
func (s *Server) requireAdmin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		authz := r.Header.Get("Authorization")
		var got [sha256.Size]byte
		ok := false
		if len(authz) > 7 && strings.EqualFold(authz[:7], "bearer ") {
			got = sha256.Sum256([]byte(strings.TrimSpace(authz[7:])))
			ok = true
		}
		if !ok || subtle.ConstantTimeCompare(got[:], s.adminKey[:]) != 1 {
			// RFC 6750 §3: a missing or wrong bearer token is a 401 with a
			// Bearer challenge.
			w.Header().Set("WWW-Authenticate", `Bearer realm="tokenapi-admin", error="invalid_token"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{
				"error":             ErrCodeInvalidToken,
				"error_description": "admin bearer token missing or wrong",
			})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// IssueRequest is the body of POST /admin/tokens.
type IssueRequest struct {
	UserID    string   `json:"user_id"`
	ClientID  string   `json:"client_id"`
	SessionID string   `json:"session_id,omitempty"`
	Scopes    []string `json:"scopes,omitempty"`
	// Resource optionally binds the token to resources or audiences.
	Resource []string `json:"resource,omitempty"`
	// TTLSeconds is the lifetime; 0 means Config.TokenTTL. It may not
	// exceed Config.MaxTokenTTL.
	TTLSeconds int64 `json:"ttl_seconds,omitempty"`
}

// IssueResponse answers POST /admin/tokens.
type IssueResponse struct {
	AccessToken string `json:"access_token"`
	TokenID     string `json:"token_id"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope,omitempty"`
}

// RevokeResponse answers the admin revoke calls: how many live tokens the
// call revoked, descendants included. Zero is a success: the target had
// nothing live left.
type RevokeResponse struct {
	Revoked int `json:"revoked"`
}

// TokenInfo describes a live token in GET /admin/subjects/{user_id}/tokens.
// It never carries the raw token. Every member is always present.
type TokenInfo struct {
	TokenID       string    `json:"token_id"`
	ParentTokenID string    `json:"parent_token_id"` // "" for a root token
	ClientID      string    `json:"client_id"`
	SessionID     string    `json:"session_id"`
	Scopes        []string  `json:"scopes"`
	Resource      []string  `json:"resource"`
	IssuedAt      time.Time `json:"issued_at"`
	ExpiresAt     time.Time `json:"expires_at"`
}

func (s *Server) adminError(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, map[string]string{
		"error":             ErrCodeInvalidRequest,
		"error_description": fmt.Sprintf(format, args...),
	})
}

// handleAdminIssue issues a root token for a user.
func (s *Server) handleAdminIssue(w http.ResponseWriter, r *http.Request) {
	var req IssueRequest
	if err := decodeStrict(r.Body, &req); err != nil {
		s.adminError(w, http.StatusBadRequest, "malformed body: %v", err)
		return
	}
	var problems []string
	if req.UserID == "" {
		problems = append(problems, "user_id is required")
	}
	if req.ClientID == "" {
		problems = append(problems, "client_id is required")
	}
	for _, sc := range req.Scopes {
		if !validScopeToken(sc) {
			problems = append(problems, fmt.Sprintf("invalid scope %q", sc))
		}
	}
	for _, res := range req.Resource {
		if res == "" {
			problems = append(problems, "empty resource")
		}
	}
	ttl := s.cfg.TokenTTL
	switch {
	case req.TTLSeconds < 0:
		problems = append(problems, "ttl_seconds must not be negative")
	case req.TTLSeconds > 0:
		ttl = time.Duration(req.TTLSeconds) * time.Second
		if ttl > s.cfg.MaxTokenTTL {
			problems = append(problems, fmt.Sprintf("ttl_seconds exceeds the maximum of %d", int64(s.cfg.MaxTokenTTL/time.Second)))
		}
	}
	if len(problems) > 0 {
		s.adminError(w, http.StatusBadRequest, "%s", strings.Join(problems, "; "))
		return
	}

	now := s.now()
	raw, t, err := s.issueRoot(func(id string) *token {
		return &token{
			id:        id,
			subject:   req.UserID,
			clientID:  req.ClientID,
			sessionID: req.SessionID,
			scopes:    normalizeScopes(req.Scopes),
			audience:  normalizeScopes(req.Resource),
			issuedAt:  now,
			expiresAt: now.Add(ttl),
		}
	})
	if errors.Is(err, errReverify) {
		// The login this call stands for is refused like the token
		// endpoint refuses a grant.
		s.refuseReverify(w, req.UserID)
		return
	}
	if err != nil {
		s.writeInternal(w, err, "issuing token")
		return
	}
	s.log.Debug().Str("token_id", t.id).Str("user_id", t.subject).Str("client_id", t.clientID).Msg("token issued (admin)")
	writeJSON(w, http.StatusOK, IssueResponse{
		AccessToken: raw,
		TokenID:     t.id,
		TokenType:   "Bearer",
		ExpiresIn:   expiresIn(t.expiresAt, now),
		Scope:       strings.Join(t.scopes, " "),
	})
}

// handleAdminRevokeToken revokes a token by id (fingerprint) with its
// descendants.
func (s *Server) handleAdminRevokeToken(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("token_id")
	if !validTokenID(id) {
		// The value is not echoed: a raw token pasted here by mistake
		// must not come back in the answer.
		s.adminError(w, http.StatusBadRequest, "token_id must be a token fingerprint (%s...)", schemas.FingerprintPrefix)
		return
	}
	n := s.store.revokeFamily(id, s.now())
	s.revoked.Add(uint64(n))
	s.log.Info().Str("token_id", id).Int("revoked", n).Msg("admin: token revoked")
	writeJSON(w, http.StatusOK, RevokeResponse{Revoked: n})
}

// handleAdminRevokeIndexed revokes every token of a subject, session or
// client, with descendants.
func (s *Server) handleAdminRevokeIndexed(k indexKind, param string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key := r.PathValue(param)
		if key == "" {
			s.adminError(w, http.StatusBadRequest, "%s is required", param)
			return
		}
		n := s.store.revokeIndexed(k, key, s.now())
		s.revoked.Add(uint64(n))
		s.log.Info().Str(param, key).Int("revoked", n).Msg("admin: tokens revoked")
		writeJSON(w, http.StatusOK, RevokeResponse{Revoked: n})
	}
}

// handleAdminListSubject lists the subject's live tokens.
func (s *Server) handleAdminListSubject(w http.ResponseWriter, r *http.Request) {
	user := r.PathValue("user_id")
	views := s.store.listSubject(user, s.now())
	out := make([]TokenInfo, 0, len(views))
	for _, t := range views {
		scopes, resource := t.Scopes, t.Audience
		if scopes == nil {
			scopes = []string{}
		}
		if resource == nil {
			resource = []string{}
		}
		out = append(out, TokenInfo{
			TokenID:       t.ID,
			ParentTokenID: t.Parent,
			ClientID:      t.ClientID,
			SessionID:     t.SessionID,
			Scopes:        scopes,
			Resource:      resource,
			IssuedAt:      t.IssuedAt.UTC(),
			ExpiresAt:     t.ExpiresAt.UTC(),
		})
	}
	writeJSON(w, http.StatusOK, out)
}

// ReverificationRequest is the optional body of POST
// /admin/subjects/{user_id}/require-reverification: the command that asks,
// for the log.
type ReverificationRequest struct {
	CommandID string `json:"command_id,omitempty"`
}

// ReverificationResponse answers the re-verification calls: whether the
// subject must verify again, since when, and for require-reverification
// how many live tokens it revoked.
type ReverificationResponse struct {
	Required bool       `json:"required"`
	Since    *time.Time `json:"since,omitempty"`
	Revoked  int        `json:"revoked"`
}

// handleAdminRequireReverification makes a subject verify again before
// it gets another token: the token endpoint and POST /admin/tokens refuse
// it with invalid_grant until POST .../reverified. The subject's live
// tokens are revoked in the same step, so a token issued between a
// revocation and this call does not survive it. Repeating it is harmless
// (a redelivered command): the first time required stays.
func (s *Server) handleAdminRequireReverification(w http.ResponseWriter, r *http.Request) {
	user := r.PathValue("user_id")
	var req ReverificationRequest
	body, err := io.ReadAll(r.Body)
	if err == nil && len(strings.TrimSpace(string(body))) > 0 {
		err = decodeStrict(strings.NewReader(string(body)), &req)
	}
	if err != nil {
		s.adminError(w, http.StatusBadRequest, "malformed body: %v", err)
		return
	}
	now := s.now()
	n, since := s.store.requireReverification(user, now)
	s.revoked.Add(uint64(n))
	if since.Equal(now) {
		s.reverifyAsked.Add(1)
	}
	s.log.Info().Str("user_id", user).Str("command_id", req.CommandID).Int("revoked", n).
		Time("since", since).Msg("admin: re-verification required")
	since = since.UTC()
	writeJSON(w, http.StatusOK, ReverificationResponse{Required: true, Since: &since, Revoked: n})
}

// handleAdminReverified records that the subject verified again (the
// login application calls it after the second factor): tokens are issued
// again. Clearing a subject that had nothing to clear is a success.
func (s *Server) handleAdminReverified(w http.ResponseWriter, r *http.Request) {
	user := r.PathValue("user_id")
	was := s.store.reverified(user)
	s.log.Info().Str("user_id", user).Bool("was_required", was).Msg("admin: re-verified")
	writeJSON(w, http.StatusOK, ReverificationResponse{})
}

// handleAdminReverification says whether the subject must verify again.
func (s *Server) handleAdminReverification(w http.ResponseWriter, r *http.Request) {
	since, ok := s.store.reverification(r.PathValue("user_id"))
	resp := ReverificationResponse{Required: ok}
	if ok {
		since = since.UTC()
		resp.Since = &since
	}
	writeJSON(w, http.StatusOK, resp)
}

// decodeStrict decodes exactly one JSON value and rejects unknown fields.
func decodeStrict(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

// validTokenID reports whether id has the shape of schemas.Fingerprint.
func validTokenID(id string) bool {
	rest, ok := strings.CutPrefix(id, schemas.FingerprintPrefix)
	if !ok || len(rest) != base64.RawURLEncoding.EncodedLen(16) {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(rest)
	return err == nil
}
