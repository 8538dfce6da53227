// Package api is the analysts' read path over HTTP: JSON views of the
// revocation history in the audit trail, its statistics, a user's
// timeline, streamed exports, and the web UI that shows them.
//
// Data routes (all GET, JSON unless exporting):
//
//	/api/v1/revocations  a page of History (filters: ParseQuery)
//	/api/v1/activity     the newest row the filters select, and the
//	                     precision of the trail's times (ParseActivityQuery)
//	/api/v1/timeline     one user's or one command's timeline
//	/api/v1/stats        outcomes and latency per bucket (ParseStatsQuery)
//	/api/v1/export       every matching row as CSV, JSON Lines or Parquet
//
// The UI is static files under /ui/ (see ui.go); they hold no data, so they
// are served without the bearer token the data routes need.
package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/internal/ops"
	"github.com/revoked-dev/revoked/schemas"
)

// History is the part of the audit store the API reads.
type History interface {
	History(ctx context.Context, q audit.Query) ([]schemas.AuditRow, error)
	Latest(ctx context.Context, q audit.Query) (time.Time, error)
	Stats(ctx context.Context, q audit.StatsQuery) (audit.Stats, error)
	TimePrecision() time.Duration
}

var _ History = audit.Store(nil)

// Limits on one page of results.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// API serves the data routes and the UI.
type API struct {
	store History
	log   zerolog.Logger
}

// New returns the API over store.
func New(store History, log zerolog.Logger) *API { return &API{store: store, log: log} }

// Register mounts the API's data routes and the UI on mux, none of them
// behind a token (Mount puts the data routes behind one).
func (a *API) Register(mux *http.ServeMux) {
	a.mount(mux, config.Secret{})
}

// Mount mounts the data routes on mux behind the bearer token when one is
// set, and the UI (/ui/, and / redirecting to it) without it: the UI's
// files hold no data, and the page asks for the token when the data
// routes answer 401.
func (a *API) Mount(mux interface {
	Handle(pattern string, h http.Handler)
}, token config.Secret) {
	a.mount(mux, token)
}

func (a *API) mount(mux interface {
	Handle(pattern string, h http.Handler)
}, token config.Secret) {
	data := func(h http.HandlerFunc) http.Handler {
		if token.IsSet() {
			return ops.RequireBearer(token, h)
		}
		return h
	}
	mux.Handle("GET /api/v1/revocations", data(a.revocations))
	mux.Handle("GET /api/v1/activity", data(a.activity))
	mux.Handle("GET /api/v1/timeline", data(a.timeline))
	mux.Handle("GET /api/v1/stats", data(a.stats))
	mux.Handle("GET /api/v1/export", data(a.export))
	ui := UIHandler()
	mux.Handle("GET /ui/", ui)
	mux.Handle("GET /{$}", http.RedirectHandler("/ui/", http.StatusFound))
}

// Page is one page of audit rows.
type Page struct {
	Rows       []schemas.AuditRow `json:"rows"`
	Limit      int                `json:"limit"`
	Offset     int                `json:"offset"`
	NextOffset *int               `json:"next_offset,omitempty"`
}

type apiError struct {
	Error string `json:"error"`
}

// Search fields by their short names in the q_in parameter.
var searchIn = map[string]audit.SearchField{
	"user": audit.SearchUser, "token": audit.SearchToken, "session": audit.SearchSession,
	"client": audit.SearchClient, "command": audit.SearchCommand,
}

// ParseQuery reads the filters of a history request: user_id, token_id,
// command_id, rule_id, step (repeatable or comma-separated; outcome is a
// synonym), q (a prefix of a user, token, session, client or command id)
// and q_in (which of user, token, session, client, command q looks in;
// comma-separated, default all), from and to (RFC 3339), limit and
// offset. It reports every problem at once.
func ParseQuery(v map[string][]string) (audit.Query, error) {
	q := audit.Query{
		UserID:    first(v, "user_id"),
		TokenID:   first(v, "token_id"),
		CommandID: first(v, "command_id"),
		RuleID:    first(v, "rule_id"),
		Search:    first(v, "q"),
		Limit:     DefaultLimit,
	}
	var errs []error
	for _, name := range []string{"step", "outcome"} {
		for _, s := range v[name] {
			for part := range strings.SplitSeq(s, ",") {
				if strings.TrimSpace(part) == "" {
					continue
				}
				step := schemas.Step(strings.TrimSpace(part))
				if !validStep(step) {
					errs = append(errs, fmt.Errorf("%s: unknown step %q", name, part))
					continue
				}
				if !slices.Contains(q.Steps, step) {
					q.Steps = append(q.Steps, step)
				}
			}
		}
	}
	for _, s := range v["q_in"] {
		for part := range strings.SplitSeq(s, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			f, ok := searchIn[part]
			if !ok {
				errs = append(errs, fmt.Errorf("q_in: %q is not one of user, token, session, client, command", part))
				continue
			}
			if !slices.Contains(q.SearchIn, f) {
				q.SearchIn = append(q.SearchIn, f)
			}
		}
	}
	errs = append(errs, checkSearch(q.Search))
	errs = append(errs,
		parseRange(v, &q.From, &q.To),
		parseInt(v, "limit", &q.Limit, 1, MaxLimit),
		parseInt(v, "offset", &q.Offset, 0, 1<<30))
	return q, errors.Join(errs...)
}

// checkSearch refuses what the store would: a search longer than
// audit.MaxSearchLen or shaped like a raw token, named by its parameter.
// The value is never quoted back.
func checkSearch(s string) error {
	switch {
	case len(s) > audit.MaxSearchLen:
		return fmt.Errorf("q: longer than %d bytes", audit.MaxSearchLen)
	case schemas.SecretKind(s) != "":
		return fmt.Errorf("q: looks like a raw token (%s), which must never travel in a URL; search by the token's id or fingerprint (%s…)", schemas.SecretKind(s), schemas.FingerprintPrefix)
	}
	return nil
}

func validStep(s schemas.Step) bool { return slices.Contains(schemas.Steps, s) }

func (a *API) revocations(w http.ResponseWriter, r *http.Request) {
	q, err := ParseQuery(r.URL.Query())
	if err != nil {
		ops.WriteJSON(w, http.StatusBadRequest, apiError{Error: err.Error()})
		return
	}
	// One more row than asked tells whether there is a next page.
	want := q.Limit
	q.Limit++
	rows, err := a.store.History(r.Context(), q)
	if err != nil {
		a.log.Error().Err(err).Msg("history query failed")
		ops.WriteJSON(w, http.StatusServiceUnavailable, apiError{Error: "audit store unavailable"})
		return
	}
	page := Page{Rows: rows, Limit: want, Offset: q.Offset}
	if len(rows) > want {
		page.Rows = rows[:want]
		next := q.Offset + want
		page.NextOffset = &next
	}
	if page.Rows == nil {
		page.Rows = []schemas.AuditRow{}
	}
	ops.WriteJSON(w, http.StatusOK, page)
}

// Handler returns the API's routes as one handler.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	a.Register(mux)
	return mux
}
