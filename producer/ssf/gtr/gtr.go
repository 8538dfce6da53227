// Package gtr is the Global Token Revocation endpoint of
// draft-parecki-oauth-global-token-revocation (-06), which Okta's
// Universal Logout calls: a POST whose JSON body names a user by an RFC
// 9493 subject identifier (sub_id), authenticated by a signed JWT
// (section 3.5: sent as a Bearer token; or as RFC 7523's
// client_assertion, with client_assertion_type
// urn:ietf:params:oauth:client-assertion-type:jwt-bearer, in the body).
// The JWT is verified against the calling client's JWKS: its iss (and
// sub), an aud that is exactly this endpoint's URL, exp, a short
// lifetime, and a jti never seen before. An accepted request becomes a
// signed revoke command for every token of the user (target kind user,
// downscoped tokens included, action revoke_and_reverify by default: the
// draft requires re-authentication before new tokens), on Kafka before
// the answer.
//
// Answers, as section 3.4 lists them: 204 once the command is on Kafka;
// 400 for a malformed request or an unsupported subject identifier; 401
// when the authentication is missing or invalid; 403 when the client may
// not name this subject (an iss_sub of another issuer, a format it may
// not use); 404 when a users file is configured and does not list the
// subject; 422 when the subject names no user a command can target; and
// 503, with Retry-After, when Kafka did not take the command.
package gtr

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.yaml.in/yaml/v3"

	"github.com/revoked-dev/revoked/internal/config"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/ops"
	"github.com/revoked-dev/revoked/internal/ssf"
	"github.com/revoked-dev/revoked/schemas"
)

// RuleID is the reason.rule_id of the commands the endpoint publishes;
// give it a budget in the consumer's guard (-guard.rule-budgets).
const RuleID = "global_token_revocation"

// AssertionType is RFC 7523's client_assertion_type for a JWT.
const AssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// Config configures the endpoint.
type Config struct {
	// Endpoint is the endpoint's URL as clients address it, the aud
	// their JWTs must carry exactly; it is served at its path.
	Endpoint string `flag:"endpoint" env:"ENDPOINT" yaml:"endpoint" usage:"the endpoint's public URL (https): the exact aud of the clients' JWTs; served at its path"`
	// ClientsFile lists the clients that may call.
	ClientsFile string `flag:"clients-file" env:"CLIENTS_FILE" yaml:"clients_file" usage:"YAML of the clients that may call: name, issuer, subject, jwks_uri or jwks_file, user_issuers, subject_formats"`
	// UsersFile maps subjects to user ids; with it, an unlisted subject
	// is 404.
	UsersFile string `flag:"users-file" env:"USERS_FILE" yaml:"users_file" usage:"YAML mapping subject identifiers to user ids (unlisted subjects: 404; default: the identifier is the user id)"`
	// Action is what the commands ask of the consumer.
	Action string `flag:"action" env:"ACTION" yaml:"action" usage:"action of the commands: revoke_and_reverify (the draft asks for re-authentication) or revoke"`
	// DryRun makes the commands dry runs.
	DryRun bool `flag:"dry-run" env:"DRY_RUN" yaml:"dry_run" usage:"publish the commands as dry runs"`
	// CommandsTopic gets the commands; CommandTTL is their validity.
	CommandsTopic string        `flag:"commands-topic" env:"COMMANDS_TOPIC" yaml:"commands_topic" usage:"topic of the revoke commands"`
	CommandTTL    time.Duration `flag:"command-ttl" env:"COMMAND_TTL" yaml:"command_ttl" usage:"validity of the revoke commands"`
	// MaxLifetime bounds exp - iat of a client's JWT (the draft
	// recommends five minutes); ClockSkew is the leeway on exp and iat.
	MaxLifetime time.Duration `flag:"max-jwt-lifetime" env:"MAX_JWT_LIFETIME" yaml:"max_jwt_lifetime" usage:"longest validity (exp - iat) of a client's JWT"`
	ClockSkew   time.Duration `flag:"clock-skew" env:"CLOCK_SKEW" yaml:"clock_skew" usage:"leeway on exp and iat"`
	// ReplayEntries bounds the jti values remembered.
	ReplayEntries int `flag:"replay-entries" env:"REPLAY_ENTRIES" yaml:"replay_entries" usage:"most JWT ids remembered for replay detection"`
	// AllowHTTP allows http endpoint and JWKS URLs (local runs).
	AllowHTTP bool `flag:"allow-http" env:"ALLOW_HTTP" yaml:"allow_http" usage:"allow http:// endpoint and JWKS URLs (local runs only)"`
}

// DefaultConfig asks for re-authentication and accepts JWTs of up to ten
// minutes.
func DefaultConfig() Config {
	return Config{
		Action: string(schemas.ActionRevokeAndReverify), CommandsTopic: schemas.TopicRevokeCommands, CommandTTL: time.Hour,
		MaxLifetime: 10 * time.Minute, ClockSkew: time.Minute, ReplayEntries: 1_000_000,
	}
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var p config.Problems
	u, err := url.Parse(c.Endpoint)
	switch {
	case c.Endpoint == "":
		p.Addf("endpoint", "required: the URL clients call, the aud of their JWTs")
	case err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "":
		p.Addf("endpoint", "%q is not an absolute URL without query or fragment", c.Endpoint)
	case u.Scheme != "https" && !(c.AllowHTTP && u.Scheme == "http"):
		p.Addf("endpoint", "%q must use https (the draft requires it; http only with allow-http)", c.Endpoint)
	}
	p.Check(c.ClientsFile != "", "clients-file", "required: the clients that may call")
	switch schemas.Action(c.Action) {
	case schemas.ActionRevoke, schemas.ActionRevokeAndReverify:
	default:
		p.Addf("action", "want revoke_and_reverify or revoke, got %q", c.Action)
	}
	p.Check(c.CommandsTopic != "", "commands-topic", "required")
	p.Check(c.CommandTTL > 0 && c.CommandTTL <= schemas.MaxCommandTTL, "command-ttl", "must be positive and at most %s", schemas.MaxCommandTTL)
	p.Check(c.MaxLifetime > 0 && c.MaxLifetime <= time.Hour, "max-jwt-lifetime", "must be positive and at most 1h")
	p.Check(c.ClockSkew >= 0 && c.ClockSkew <= 5*time.Minute, "clock-skew", "must be in [0, 5m]")
	p.Check(c.ReplayEntries > 0, "replay-entries", "must be positive")
	return p.Err()
}

// Path is where the endpoint is served: the path of Endpoint.
func (c Config) Path() string {
	u, err := url.Parse(c.Endpoint)
	if err != nil || u.Path == "" {
		return "/"
	}
	return u.Path
}

// Client is a party allowed to call the endpoint.
type Client struct {
	Name string
	// Issuer is the iss of its JWTs; Subject, when set, their sub (RFC
	// 7523: its client id).
	Issuer, Subject string
	Keys            ssf.KeySource
	// UserIssuers are the issuers whose iss_sub subjects it may name
	// (default: its own issuer), SubjectFormats the formats it may use.
	UserIssuers    []string
	SubjectFormats []string
}

type clientsFile struct {
	Clients []struct {
		Name           string   `yaml:"name"`
		Issuer         string   `yaml:"issuer"`
		Subject        string   `yaml:"subject"`
		JWKSURI        string   `yaml:"jwks_uri"`
		JWKSFile       string   `yaml:"jwks_file"`
		UserIssuers    []string `yaml:"user_issuers"`
		SubjectFormats []string `yaml:"subject_formats"`
	} `yaml:"clients"`
}

// defaultFormats are the subject formats a client may use unless its
// entry says otherwise.
var defaultFormats = []string{ssf.FormatEmail, ssf.FormatIssSub, ssf.FormatOpaque, ssf.FormatAccount}

// LoadClients reads a clients file; keys at a jwks_uri are fetched with
// client on clock, a jwks_file is read now.
func LoadClients(path string, allowHTTP bool, client *http.Client, clock clockwork.Clock) ([]Client, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the clients file: %w", err)
	}
	var f clientsFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("decoding the clients file %s: %w", path, err)
	}
	var out []Client
	var errs []error
	for i, e := range f.Clients {
		where := fmt.Sprintf("clients[%d] (%s)", i, e.Name)
		if e.Name == "" || e.Issuer == "" || (e.JWKSURI == "") == (e.JWKSFile == "") {
			errs = append(errs, fmt.Errorf("%s: name, issuer and one of jwks_uri or jwks_file are required", where))
			continue
		}
		c := Client{Name: e.Name, Issuer: e.Issuer, Subject: e.Subject, UserIssuers: e.UserIssuers, SubjectFormats: e.SubjectFormats}
		if len(c.UserIssuers) == 0 {
			c.UserIssuers = []string{e.Issuer}
		}
		if len(c.SubjectFormats) == 0 {
			c.SubjectFormats = defaultFormats
		}
		for _, f := range c.SubjectFormats {
			if !slices.Contains(defaultFormats, f) {
				errs = append(errs, fmt.Errorf("%s: subject format %q cannot name a user (want %s)", where, f, strings.Join(defaultFormats, ", ")))
			}
		}
		switch {
		case e.JWKSURI != "":
			u, err := url.Parse(e.JWKSURI)
			if err != nil || u.Host == "" || (u.Scheme != "https" && !(allowHTTP && u.Scheme == "http")) {
				errs = append(errs, fmt.Errorf("%s: jwks_uri %q must be an https URL", where, e.JWKSURI))
				continue
			}
			c.Keys = ssf.NewRemoteKeys(e.JWKSURI, client, clock)
		default:
			jf := e.JWKSFile
			if !filepath.IsAbs(jf) {
				jf = filepath.Join(filepath.Dir(path), jf)
			}
			b, err := os.ReadFile(jf)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", where, err))
				continue
			}
			set, err := ssf.ParseJWKS(b)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %s: %w", where, jf, err))
				continue
			}
			c.Keys = ssf.StaticKeys{Set: set}
		}
		out = append(out, c)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("the clients file %s names no client", path)
	}
	return out, nil
}

// Deps are the endpoint's collaborators.
type Deps struct {
	Clients []Client
	// Signer signs the commands.
	Signer *schemas.Signer
	// Publisher writes them (messages name their topic).
	Publisher kafkax.Publisher
	Clock     clockwork.Clock
	Registry  prometheus.Registerer
}

// Endpoint serves global token revocation requests. It is safe for
// concurrent use.
type Endpoint struct {
	cfg      Config
	clients  []Client
	users    *ssf.Users
	signer   *schemas.Signer
	pub      kafkax.Publisher
	replay   *ssf.Replay
	clock    clockwork.Clock
	log      zerolog.Logger
	requests *prometheus.CounterVec
}

// New checks the configuration and returns the endpoint.
func New(cfg Config, deps Deps, log zerolog.Logger) (*Endpoint, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(deps.Clients) == 0 || deps.Signer == nil || deps.Publisher == nil {
		return nil, errors.New("gtr: clients, a command signing key and a Kafka publisher are required")
	}
	users, err := ssf.LoadUsers(cfg.UsersFile)
	if err != nil {
		return nil, err
	}
	clock := deps.Clock
	if clock == nil {
		clock = clockwork.NewRealClock()
	}
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "revoked_gtr_requests_total",
		Help: "Global token revocation requests, by client (unauthenticated: none) and HTTP status answered.",
	}, []string{"client", "code"})
	if deps.Registry != nil {
		if err := deps.Registry.Register(requests); err != nil {
			return nil, err
		}
	}
	return &Endpoint{
		cfg: cfg, clients: deps.Clients, users: users, signer: deps.Signer, pub: deps.Publisher,
		replay: ssf.NewReplay(cfg.ReplayEntries), clock: clock, requests: requests,
		log: log.With().Str("component", "gtr").Logger(),
	}, nil
}

// Mount serves the endpoint on srv at the path of its URL.
func (e *Endpoint) Mount(srv *ops.Server) { srv.Handle(e.cfg.Path(), e) }

// request is the JSON body: the subject, and RFC 7523's client
// assertion when the JWT is not in the Authorization header.
type request struct {
	SubID               json.RawMessage `json:"sub_id"`
	ClientAssertionType string          `json:"client_assertion_type"`
	ClientAssertion     string          `json:"client_assertion"`
}

// failure is an answer other than 204.
type failure struct {
	status     int
	code, desc string
}

func (f *failure) Error() string { return f.desc }

func fail(status int, code, format string, args ...any) *failure {
	return &failure{status: status, code: code, desc: fmt.Sprintf(format, args...)}
}

// ServeHTTP implements http.Handler.
func (e *Endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	client, cmd, err := e.serve(r)
	var f *failure
	if err != nil && !errors.As(err, &f) {
		f = &failure{status: http.StatusServiceUnavailable, code: "temporarily_unavailable", desc: "the revocation could not be recorded now; try again"}
		e.log.Error().Err(err).Str("client", client).Msg("global token revocation not published")
	}
	name := client
	if name == "" {
		name = "none"
	}
	if f == nil {
		e.requests.WithLabelValues(name, "204").Inc()
		e.log.Info().Str("client", client).Str("user_id", cmd.Target.UserID).Str("command_id", cmd.CommandID).
			Str("action", string(cmd.Action)).Msg("global token revocation accepted")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	e.requests.WithLabelValues(name, fmt.Sprint(f.status)).Inc()
	ev := e.log.Warn()
	if f.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
		ev = e.log.Error()
	}
	ev.Str("client", client).Int("status", f.status).Str("error", f.code).Str("description", f.desc).Msg("global token revocation refused")
	switch f.status {
	case http.StatusMethodNotAllowed:
		w.Header().Set("Allow", http.MethodPost)
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	}
	ops.WriteJSON(w, f.status, map[string]string{"error": f.code, "error_description": f.desc})
}

func (e *Endpoint) serve(r *http.Request) (string, schemas.RevokeCommand, error) {
	if r.Method != http.MethodPost {
		return "", schemas.RevokeCommand{}, fail(http.StatusMethodNotAllowed, "invalid_request", "POST a JSON body with sub_id")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10+1))
	if err != nil || len(body) > 64<<10 {
		return "", schemas.RevokeCommand{}, fail(http.StatusBadRequest, "invalid_request", "the body is unreadable or larger than 64 KiB")
	}
	var req request
	if err := json.Unmarshal(body, &req); err != nil {
		return "", schemas.RevokeCommand{}, fail(http.StatusBadRequest, "invalid_request", "the body is not a JSON object")
	}
	client, jti, err := e.authenticate(r.Context(), r.Header.Get("Authorization"), req)
	if err != nil {
		return "", schemas.RevokeCommand{}, err
	}
	if len(req.SubID) == 0 {
		return client.Name, schemas.RevokeCommand{}, fail(http.StatusBadRequest, "invalid_request", "sub_id is required")
	}
	var sub ssf.Subject
	if err := json.Unmarshal(req.SubID, &sub); err != nil {
		return client.Name, schemas.RevokeCommand{}, fail(http.StatusBadRequest, "invalid_request", "sub_id: %v", err)
	}
	if !slices.Contains(client.SubjectFormats, sub.Format) {
		status := http.StatusBadRequest
		if slices.Contains(defaultFormats, sub.Format) {
			// A format the endpoint supports, which this client may not
			// use: insufficient authorization.
			status = http.StatusForbidden
		}
		return client.Name, schemas.RevokeCommand{}, fail(status, "invalid_request", "subject identifier format %q is not accepted from this client", sub.Format)
	}
	user, _, err := e.users.UserID(sub, client.UserIssuers)
	switch {
	case errors.Is(err, ssf.ErrForeignIssuer):
		return client.Name, schemas.RevokeCommand{}, fail(http.StatusForbidden, "access_denied", "%v", err)
	case errors.Is(err, ssf.ErrUnknownUser):
		return client.Name, schemas.RevokeCommand{}, fail(http.StatusNotFound, "user_not_found", "the user indicated by sub_id was not found")
	case err != nil:
		return client.Name, schemas.RevokeCommand{}, fail(http.StatusBadRequest, "invalid_request", "%v", err)
	}
	cmd := e.command(client, sub, user, jti)
	if err := cmd.Validate(); err != nil {
		return client.Name, cmd, fail(http.StatusUnprocessableEntity, "unable_to_process", "unable to log out the user: %v", err)
	}
	msg, err := e.message(cmd)
	if err != nil {
		return client.Name, cmd, err
	}
	if err := e.pub.WriteMessages(r.Context(), msg); err != nil {
		return client.Name, cmd, fmt.Errorf("publishing command %s: %w", cmd.CommandID, err)
	}
	return client.Name, cmd, nil
}

// jwtClaims are the claims of a client's JWT (draft section 3.5, RFC
// 7523 section 3).
type jwtClaims struct {
	Issuer   string          `json:"iss"`
	Subject  string          `json:"sub"`
	Audience ssf.Audience    `json:"aud"`
	ID       string          `json:"jti"`
	IssuedAt ssf.NumericDate `json:"iat"`
	Expires  ssf.NumericDate `json:"exp"`
}

// authenticate verifies the client's JWT and returns the client. Every
// failure is 401, saying what was wrong.
func (e *Endpoint) authenticate(ctx context.Context, authz string, req request) (Client, string, error) {
	// The scheme is case-insensitive (RFC 9110 section 11.1).
	bearer := len(authz) > 7 && strings.EqualFold(authz[:7], "Bearer ")
	var jwt string
	if bearer {
		jwt = authz[7:]
	}
	switch {
	case bearer && req.ClientAssertion != "":
		return Client{}, "", fail(http.StatusUnauthorized, "invalid_client", "give the JWT once: as the Bearer token or as client_assertion")
	case !bearer && req.ClientAssertion == "":
		return Client{}, "", fail(http.StatusUnauthorized, "invalid_client", "a signed JWT is required: Authorization: Bearer <JWT>, or client_assertion with client_assertion_type "+AssertionType)
	case !bearer && req.ClientAssertionType != AssertionType:
		return Client{}, "", fail(http.StatusUnauthorized, "invalid_client", "client_assertion_type must be "+AssertionType)
	case !bearer:
		jwt = req.ClientAssertion
	}
	jwt = strings.TrimSpace(jwt)
	obj, err := jose.ParseSignedCompact(jwt, ssf.Algorithms)
	if err != nil {
		return Client{}, "", fail(http.StatusUnauthorized, "invalid_client", "the JWT does not parse or uses an algorithm not accepted (asymmetric only)")
	}
	var unverified jwtClaims
	if err := json.Unmarshal(obj.UnsafePayloadWithoutVerification(), &unverified); err != nil {
		return Client{}, "", fail(http.StatusUnauthorized, "invalid_client", "the JWT's claims do not parse")
	}
	var client *Client
	for i := range e.clients {
		c := &e.clients[i]
		if c.Issuer == unverified.Issuer && (c.Subject == "" || c.Subject == unverified.Subject) {
			client = c
			break
		}
	}
	if client == nil {
		return Client{}, "", fail(http.StatusUnauthorized, "invalid_client", "no client with iss %q and sub %q", schemas.CutUTF8(unverified.Issuer, 128), schemas.CutUTF8(unverified.Subject, 128))
	}
	v, err := ssf.VerifyJWS(ctx, jwt, client.Keys)
	var se *ssf.SETError
	switch {
	case errors.As(err, &se):
		return *client, "", fail(http.StatusUnauthorized, "invalid_client", "%s", se.Description)
	case err != nil:
		// The client's keys could not be fetched: not the caller's
		// fault, and worth a retry.
		return *client, "", err
	}
	if ssf.IsSETType(v.Typ) {
		return *client, "", fail(http.StatusUnauthorized, "invalid_client", "a Security Event Token is not a client assertion")
	}
	var c jwtClaims
	if err := json.Unmarshal(v.Payload, &c); err != nil {
		return *client, "", fail(http.StatusUnauthorized, "invalid_client", "the JWT's claims do not parse")
	}
	now := e.clock.Now()
	skew := e.cfg.ClockSkew
	switch {
	case !c.Audience.Contains(e.cfg.Endpoint):
		return *client, "", fail(http.StatusUnauthorized, "invalid_client", "aud must be this endpoint's URL, %s", e.cfg.Endpoint)
	case c.Expires == 0:
		return *client, "", fail(http.StatusUnauthorized, "invalid_client", "exp is required")
	case !now.Before(c.Expires.Time().Add(skew)):
		return *client, "", fail(http.StatusUnauthorized, "invalid_client", "the JWT expired at %s", c.Expires.Time().Format(time.RFC3339))
	case c.IssuedAt != 0 && c.IssuedAt.Time().After(now.Add(skew)):
		return *client, "", fail(http.StatusUnauthorized, "invalid_client", "iat is in the future")
	case c.ID == "" || len(c.ID) > 256:
		return *client, "", fail(http.StatusUnauthorized, "invalid_client", "jti is required (at most 256 bytes)")
	}
	from := now
	if c.IssuedAt != 0 {
		from = c.IssuedAt.Time()
	}
	if c.Expires.Time().Sub(from) > e.cfg.MaxLifetime {
		return *client, "", fail(http.StatusUnauthorized, "invalid_client", "the JWT is valid for longer than %s", e.cfg.MaxLifetime)
	}
	key := client.Issuer + "\x00" + c.ID
	if seen, _ := e.replay.Seen(key, ssf.Digest(jwt), now); seen {
		return *client, "", fail(http.StatusUnauthorized, "invalid_client", "jti %q was used before", schemas.CutUTF8(c.ID, 64))
	}
	// Remembered at once, before the command is published: a JWT
	// authenticates one request, whatever becomes of it.
	if err := e.replay.Add(key, ssf.Digest(jwt), c.Expires.Time().Add(skew), now); err != nil {
		return *client, "", err
	}
	return *client, c.ID, nil
}

// command is the user-scope command of an accepted request. Its id is
// derived from the client and its JWT's jti, which authenticates one
// request only: the same request seen twice is one command.
func (e *Endpoint) command(client Client, sub ssf.Subject, user, jti string) schemas.RevokeCommand {
	now := e.clock.Now().UTC()
	target := schemas.Target{Kind: schemas.TargetUser, UserID: user, IncludeDownscoped: true}
	h := sha256.New()
	for _, p := range []string{"gtr/v1", client.Issuer, jti} {
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(p))))
		h.Write([]byte(p))
	}
	request := "gtr_" + hex.EncodeToString(h.Sum(nil)[:16])
	mode := schemas.ModeEnforce
	if e.cfg.DryRun {
		mode = schemas.ModeDryRun
	}
	return schemas.RevokeCommand{
		CommandID: schemas.DetectionCommandID(RuleID, 1, target, []string{request}),
		IssuedAt:  now, ExpiresAt: now.Add(e.cfg.CommandTTL), Issuer: "gtr:" + client.Name,
		Target: target, Action: schemas.Action(e.cfg.Action), Mode: mode,
		Reason: schemas.Reason{
			RuleID: RuleID, RuleVersion: 1, Severity: schemas.SeverityHigh,
			Summary:  schemas.CutUTF8(fmt.Sprintf("global token revocation requested by %s (sub_id format %s)", client.Name, sub.Format), 1024),
			Evidence: []string{request}, LastEventTime: now, DetectedAt: now,
		},
	}
}

func (e *Endpoint) message(cmd schemas.RevokeCommand) (kafkax.Message, error) {
	return kafkax.SignedCommand(e.signer, e.cfg.CommandsTopic, &cmd)
}
