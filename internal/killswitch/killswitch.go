// Package killswitch is the one kill switch of the detector's and the
// consumer's guards, with one HTTP shape on both. What engaging it means is
// each component's: the detector turns every command into a dry run, the
// consumer holds every enforcing command for approval.
package killswitch

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"strings"
	"sync"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/internal/ops"
)

// Path is where the detector and the consumer serve their kill switch.
const Path = "/admin/kill-switch"

// Switch is engaged while its file exists (or cannot be checked: when in
// doubt, do not enforce), or while an operator engaged it at runtime or
// configuration engaged it at start. Releasing it at runtime does not
// override the file, the operator's hard switch. It is safe for concurrent
// use.
type Switch struct {
	file string
	mu   sync.Mutex
	on   bool
	why  string
}

// New returns a switch watching file ("" for none), engaged from the start
// when on.
func New(file string, on bool) *Switch {
	k := &Switch{file: file, on: on}
	if on {
		k.why = "configured"
	}
	return k
}

// Set engages or releases the runtime switch; by names who did.
func (k *Switch) Set(on bool, by string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.on, k.why = on, "set by "+by
}

// State is the switch's state as the endpoint answers it.
type State struct {
	// Engaged is Runtime or File.
	Engaged bool `json:"engaged"`
	Runtime bool `json:"runtime"`
	File    bool `json:"file"`
	// Reason says why it is engaged: who set it, the file, configuration.
	Reason string `json:"reason,omitempty"`
}

// State reports the switch.
func (k *Switch) State() State {
	if k == nil {
		return State{}
	}
	k.mu.Lock()
	s := State{Runtime: k.on}
	if k.on {
		s.Reason = k.why
	}
	k.mu.Unlock()
	if k.file != "" {
		if _, err := os.Stat(k.file); err == nil || !errors.Is(err, os.ErrNotExist) {
			s.File = true
			if s.Reason == "" {
				s.Reason = "file " + k.file + " exists"
			}
		}
	}
	s.Engaged = s.Runtime || s.File
	return s
}

// Engaged reports whether the switch is engaged, and why.
func (k *Switch) Engaged() (bool, string) {
	s := k.State()
	return s.Engaged, s.Reason
}

// On reports whether the switch is engaged.
func (k *Switch) On() bool { return k.State().Engaged }

// change is a POST's body: {"engaged": true, "by": "alice"}.
type change struct {
	Engaged *bool  `json:"engaged"`
	By      string `json:"by"`
}

// Mount serves the switch at Path on mux behind the bearer token: GET
// answers its State; POST sets it, from a JSON body {"engaged": bool,
// "by": "name"} or the query state=on|off&by=name (by is required: it is
// the record of who stopped enforcement), and answers the new State. Every change is logged at warn level with who and from where;
// meaning says what engaging it does, for the log. With no token nothing
// is mounted.
func (k *Switch) Mount(mux interface {
	Handle(pattern string, h http.Handler)
}, token config.Secret, meaning string, log zerolog.Logger) {
	if !token.IsSet() {
		return
	}
	mux.Handle("GET "+Path, ops.RequireBearer(token, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		ops.WriteJSON(w, http.StatusOK, k.State())
	})))
	mux.Handle("POST "+Path, ops.RequireBearer(token, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := parseChange(w, r)
		if !ok {
			ops.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": `want {"engaged": true|false, "by": "name"} or ?state=on|off&by=name`})
			return
		}
		k.Set(*c.Engaged, c.By)
		s := k.State()
		log.Warn().Bool("engaged", *c.Engaged).Bool("file", s.File).Str("by", c.By).Str("remote", r.RemoteAddr).
			Str("meaning", meaning).Msg("kill switch set")
		ops.WriteJSON(w, http.StatusOK, s)
	})))
}

func parseChange(w http.ResponseWriter, r *http.Request) (change, bool) {
	var c change
	if st := r.URL.Query().Get("state"); st != "" {
		on, ok := parseState(st)
		if !ok {
			return c, false
		}
		c.Engaged, c.By = &on, r.URL.Query().Get("by")
	} else {
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil || c.Engaged == nil {
			return c, false
		}
	}
	c.By = strings.TrimSpace(c.By)
	return c, c.By != "" // who engaged it is part of the record

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
