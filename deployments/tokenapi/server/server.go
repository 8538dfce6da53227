package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/schemas"
)

// Paths of the endpoints, relative to the issuer's path.
const (
	PathToken      = "/oauth2/token"
	PathRevoke     = "/oauth2/revoke"
	PathIntrospect = "/oauth2/introspect"
	PathLivez      = "/livez"
	PathReadyz     = "/readyz"
	// PathMetadata is the RFC 8414 well-known path. It sits at the root of
	// the host, followed by the issuer's path (RFC 8414 §3.1).
	PathMetadata = "/.well-known/oauth-authorization-server"
)

// maxBodyBytes bounds request bodies; every request here is small.
const maxBodyBytes = 64 << 10

// rawTokenBytes is the entropy of an access token.
const rawTokenBytes = 32

// Server is the reference token API. It is safe for concurrent use.
type Server struct {
	cfg      Config
	log      zerolog.Logger
	now      func() time.Time
	issuer   string
	prefix   string // issuer path without trailing slash, "" for a bare host
	clients  map[string]*client
	store    *store
	metadata map[string]any
	mux      *http.ServeMux
	handler  http.Handler
	adminKey [sha256.Size]byte

	metricsMu     sync.Mutex
	metricsServed bool
	httpMetrics   atomic.Pointer[httpMetrics]

	notReady        atomic.Bool
	issued          atomic.Uint64
	exchanged       atomic.Uint64
	revoked         atomic.Uint64
	reverifyAsked   atomic.Uint64
	reverifyRefused atomic.Uint64
}

type client struct {
	id            string
	secretHash    [sha256.Size]byte
	grants        map[string]bool
	scopes        []string
	revokeAny     bool
	introspectAny bool
}

// New validates cfg and returns a server with an empty token store. It does
// not listen; use Handler to embed it or Serve / ListenAndServe to run it.
func New(cfg Config, log zerolog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("token API config: %w", err)
	}
	cfg = cfg.withDefaults()
	iss, err := parseIssuer(cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("token API config: issuer: %w", err)
	}
	s := &Server{
		cfg:     cfg,
		log:     log.With().Str("component", "tokenapi").Logger(),
		now:     cfg.Now,
		issuer:  cfg.Issuer,
		prefix:  strings.TrimSuffix(iss.EscapedPath(), "/"),
		clients: make(map[string]*client, len(cfg.Clients)),
		store:   newStore(),
	}
	for _, cc := range cfg.Clients {
		c := &client{
			id:            cc.ID,
			secretHash:    sha256.Sum256([]byte(cc.Secret.Reveal())),
			grants:        make(map[string]bool, len(cc.Grants)),
			scopes:        normalizeScopes(cc.Scopes),
			revokeAny:     cc.RevokeAny,
			introspectAny: cc.IntrospectAny,
		}
		for _, g := range cc.Grants {
			n, _ := normalizeGrant(g)
			c.grants[n] = true
		}
		s.clients[c.id] = c
	}
	if cfg.AdminToken.IsSet() {
		s.adminKey = sha256.Sum256([]byte(cfg.AdminToken.Reveal()))
	}
	if iss.Scheme == "http" && !isLoopbackHost(iss.Hostname()) {
		s.log.Warn().Str("issuer", cfg.Issuer).Msg("issuer is plain http on a non-loopback host; tokens and secrets travel in clear text")
	}
	s.metadata = s.buildMetadata()
	s.handler = s.routes()
	return s, nil
}

// Handler returns the HTTP handler serving every endpoint. It can be mounted
// in another server or wrapped by httptest.NewServer; the issuer configured
// must then match the URL it is reached at.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve serves HTTP on l until ctx is cancelled, then shuts down gracefully:
// /readyz turns 503, the listener closes, in-flight requests get up to
// Config.ShutdownTimeout to finish and are then cut off. It blocks until the
// server has stopped and returns nil after a shutdown caused by ctx, or the
// error that stopped serving. l is closed on return.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		ErrorLog:          log.New(httpErrorWriter{s.log}, "", 0),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	s.notReady.Store(false)
	s.log.Info().Str("addr", l.Addr().String()).Str("issuer", s.issuer).Msg("token API serving")

	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(l) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serving token API: %w", err)
	case <-ctx.Done():
	}

	s.notReady.Store(true)
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	err := hs.Shutdown(sctx)
	if err != nil {
		// In-flight requests outlived the timeout: cut them off.
		_ = hs.Close()
		err = fmt.Errorf("shutting down token API: %w", err)
	}
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, fmt.Errorf("serving token API: %w", serr))
	}
	s.log.Info().Err(err).Msg("token API stopped")
	return err
}

// ListenAndServe listens on the TCP address addr and calls Serve. It blocks
// like Serve; ctx also cancels the listen itself.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", addr, err)
	}
	return s.Serve(ctx, l)
}

// Stats are cumulative counters of the server, for metrics. Issued counts
// every token issued (client credentials, admin and exchange), Exchanged the
// token exchanges among them, Revoked every live token revoked (descendants
// included). ReverificationRequired counts the calls that made a subject
// verify again, ReverificationRefused the token requests refused because
// the subject had not yet. Stored is the number of tokens currently held,
// revoked and expired ones not yet pruned included; AwaitingReverification
// the subjects that must verify again.
type Stats struct {
	Issued                 uint64
	Exchanged              uint64
	Revoked                uint64
	ReverificationRequired uint64
	ReverificationRefused  uint64
	Stored                 int
	AwaitingReverification int
}

// Stats returns the current counters. It does not block on requests beyond
// a brief read lock; callers can expose the values as Prometheus
// CounterFunc/GaugeFunc.
func (s *Server) Stats() Stats {
	return Stats{
		Issued:    s.issued.Load(),
		Exchanged: s.exchanged.Load(),
		Revoked:   s.revoked.Load(),
		Stored:    s.store.size(),

		ReverificationRequired: s.reverifyAsked.Load(),
		ReverificationRefused:  s.reverifyRefused.Load(),
		AwaitingReverification: s.store.awaitingReverification(),
	}
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	s.mux = mux
	p := s.prefix
	mux.HandleFunc("POST "+p+PathToken, s.handleToken)
	mux.HandleFunc("POST "+p+PathRevoke, s.handleRevoke)
	mux.HandleFunc("POST "+p+PathIntrospect, s.handleIntrospect)
	mux.HandleFunc("GET "+PathMetadata+p, s.handleMetadata)
	if p != "" {
		// Also under the issuer's path, where OpenID-Connect-style clients
		// look for it.
		mux.HandleFunc("GET "+p+PathMetadata, s.handleMetadata)
	}
	mux.HandleFunc("GET "+p+PathLivez, s.handleLivez)
	mux.HandleFunc("GET "+p+PathReadyz, s.handleReadyz)
	if s.cfg.AdminToken.IsSet() {
		admin := func(pattern string, h http.HandlerFunc) {
			mux.Handle(pattern, s.requireAdmin(h))
		}
		admin("POST "+p+"/admin/tokens", s.handleAdminIssue)
		admin("POST "+p+"/admin/tokens/{token_id}/revoke", s.handleAdminRevokeToken)
		admin("POST "+p+"/admin/subjects/{user_id}/revoke", s.handleAdminRevokeIndexed(bySubject, "user_id"))
		admin("GET "+p+"/admin/subjects/{user_id}/tokens", s.handleAdminListSubject)
		admin("POST "+p+"/admin/subjects/{user_id}/require-reverification", s.handleAdminRequireReverification)
		admin("POST "+p+"/admin/subjects/{user_id}/reverified", s.handleAdminReverified)
		admin("GET "+p+"/admin/subjects/{user_id}/reverification", s.handleAdminReverification)
		admin("POST "+p+"/admin/sessions/{session_id}/revoke", s.handleAdminRevokeIndexed(bySession, "session_id"))
		admin("POST "+p+"/admin/clients/{client_id}/revoke", s.handleAdminRevokeIndexed(byClient, "client_id"))
	}
	return s.middleware(mux)
}

// middleware bounds request bodies, logs each request at debug level and
// records it in the metrics once they are registered. It logs the route
// pattern, never the query or body.
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		took := time.Since(start)
		if m := s.httpMetrics.Load(); m != nil {
			m.observe(r.Pattern, sw.status, took)
		}
		if e := s.log.Debug(); e.Enabled() {
			e.Str("method", r.Method).Str("route", r.Pattern).Int("status", sw.status).
				Dur("took", took).Msg("request")
		}
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// httpErrorWriter routes net/http's own error log into zerolog.
type httpErrorWriter struct{ log zerolog.Logger }

func (w httpErrorWriter) Write(p []byte) (int, error) {
	w.log.Warn().Str("source", "net/http").Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}

func (s *Server) handleLivez(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

func (s *Server) handleReadyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if s.notReady.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("shutting down\n"))
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}

// newRawToken returns a fresh access token and its fingerprint.
func newRawToken() (raw, id string, err error) {
	b := make([]byte, rawTokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("generating token: %w", err)
	}
	raw = base64.RawURLEncoding.EncodeToString(b)
	return raw, schemas.Fingerprint(raw), nil
}

// issueRoot stores a new root token built by mk from a fresh id, retrying
// on the (astronomically unlikely) id collision. It returns the raw token.
func (s *Server) issueRoot(mk func(id string) *token) (string, *token, error) {
	for range 3 {
		raw, id, err := newRawToken()
		if err != nil {
			return "", nil, err
		}
		t := mk(id)
		switch err := s.store.issue(t, s.now()); {
		case errors.Is(err, errCollision):
			continue
		case err != nil:
			return "", nil, err
		}
		s.issued.Add(1)
		return raw, t, nil
	}
	return "", nil, errCollision
}

// authenticateClient checks client_secret_basic or client_secret_post
// credentials (RFC 6749 §2.3.1).
func (s *Server) authenticateClient(r *http.Request, form url.Values) (*client, *oauthError) {
	user, pass, hasBasic := r.BasicAuth()
	authz := r.Header.Get("Authorization")
	if !hasBasic && len(authz) >= 6 && strings.EqualFold(authz[:6], "basic ") {
		return nil, errInvalidClient("malformed Basic credentials")
	}
	postID, postSecret := form.Get("client_id"), form.Get("client_secret")

	var id, secret string
	switch {
	case hasBasic && postSecret != "":
		// RFC 6749 §2.3: one authentication method per request.
		return nil, errInvalidRequest("client authenticated with more than one method")
	case hasBasic:
		// RFC 6749 §2.3.1: id and secret are form-encoded before Basic encoding.
		id, secret = formUnescape(user), formUnescape(pass)
		if postID != "" && postID != id {
			return nil, errInvalidRequest("client_id does not match the Basic credentials")
		}
	case postID != "" && postSecret != "":
		id, secret = postID, postSecret
	default:
		return nil, errInvalidClient("client authentication is required")
	}

	got := sha256.Sum256([]byte(secret))
	c := s.clients[id]
	want := [sha256.Size]byte{}
	if c != nil {
		want = c.secretHash
	}
	// Compare even for unknown clients so timing does not reveal which ids exist.
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 || c == nil {
		return nil, errInvalidClient("client authentication failed")
	}
	return c, nil
}

func formUnescape(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
