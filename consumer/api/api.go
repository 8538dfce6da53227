// Package api is the analysts' read path over HTTP: JSON views of the
// revocation history in the audit trail.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/schemas"
)

// History is the part of the audit store the API reads.
type History interface {
	History(ctx context.Context, q audit.Query) ([]schemas.AuditRow, error)
}

// Limits on one page of results.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// API serves /api/v1/revocations.
type API struct {
	store History
	log   zerolog.Logger
}

// New returns the API over store.
func New(store History, log zerolog.Logger) *API { return &API{store: store, log: log} }

// Register mounts the API's routes on mux.
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/revocations", a.revocations)
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

// ParseQuery reads the filters of a history request: user_id, token_id,
// command_id, rule_id, step (repeatable or comma-separated), from and to
// (RFC 3339), limit and offset. It reports every problem at once.
func ParseQuery(v map[string][]string) (audit.Query, error) {
	get := func(k string) string {
		if vs := v[k]; len(vs) > 0 {
			return strings.TrimSpace(vs[0])
		}
		return ""
	}
	q := audit.Query{
		UserID:    get("user_id"),
		TokenID:   get("token_id"),
		CommandID: get("command_id"),
		RuleID:    get("rule_id"),
		Limit:     DefaultLimit,
	}
	var errs []error
	for _, s := range v["step"] {
		for part := range strings.SplitSeq(s, ",") {
			step := schemas.Step(strings.TrimSpace(part))
			if !validStep(step) {
				errs = append(errs, fmt.Errorf("step: unknown step %q", part))
				continue
			}
			q.Steps = append(q.Steps, step)
		}
	}
	parseTime := func(name string, dst *time.Time) {
		if s := get(name); s != "" {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: not an RFC 3339 time", name))
				return
			}
			*dst = t
		}
	}
	parseTime("from", &q.From)
	parseTime("to", &q.To)
	parseInt := func(name string, dst *int, lo, hi int) {
		if s := get(name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < lo || n > hi {
				errs = append(errs, fmt.Errorf("%s: must be an integer in [%d, %d]", name, lo, hi))
				return
			}
			*dst = n
		}
	}
	parseInt("limit", &q.Limit, 1, MaxLimit)
	parseInt("offset", &q.Offset, 0, 1<<30)
	if !q.From.IsZero() && !q.To.IsZero() && q.To.Before(q.From) {
		errs = append(errs, errors.New("to: before from"))
	}
	return q, errors.Join(errs...)
}

func validStep(s schemas.Step) bool {
	for _, k := range schemas.Steps {
		if s == k {
			return true
		}
	}
	return false
}

func (a *API) revocations(w http.ResponseWriter, r *http.Request) {
	q, err := ParseQuery(r.URL.Query())
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Error: err.Error()})
		return
	}
	// One more row than asked tells whether there is a next page.
	want := q.Limit
	q.Limit++
	rows, err := a.store.History(r.Context(), q)
	if err != nil {
		a.log.Error().Err(err).Msg("history query failed")
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "audit store unavailable"})
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
	writeJSON(w, http.StatusOK, page)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Handler returns the API's routes as one handler.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	a.Register(mux)
	return mux
}
