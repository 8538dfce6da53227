package transmitter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/revoked-dev/revoked/internal/ops"
	"github.com/revoked-dev/revoked/internal/ssf"
)

// Paths of the endpoints, under Config.PublicURL.
const (
	PathJWKS          = "/ssf/jwks.json"
	PathStream        = "/ssf/stream"
	PathStatus        = "/ssf/status"
	PathAddSubject    = "/ssf/subjects:add"
	PathRemoveSubject = "/ssf/subjects:remove"
	PathVerify        = "/ssf/verify"
	PathPoll          = "/ssf/poll/"
)

// maxBodyBytes bounds a management or poll request body.
const maxBodyBytes = 64 << 10

// Mount serves the transmitter's endpoints on srv, and its readiness
// check as "ssf-streams".
func (t *Transmitter) Mount(srv *ops.Server) error {
	if err := srv.AddCheck("ssf-streams", t.Check); err != nil {
		return err
	}
	srv.Handle("GET "+t.cfg.wellKnownPath(), http.HandlerFunc(t.serveMetadata))
	srv.Handle("GET "+PathJWKS, http.HandlerFunc(t.serveJWKS))
	srv.Handle(PathStream, t.auth(t.serveStream))
	srv.Handle(PathStatus, t.auth(t.serveStatus))
	srv.Handle("POST "+PathAddSubject, t.auth(t.serveAddSubject))
	srv.Handle("POST "+PathRemoveSubject, t.auth(t.serveRemoveSubject))
	srv.Handle("POST "+PathVerify, t.auth(t.serveVerify))
	srv.Handle("POST "+PathPoll+"{stream_id}", t.auth(t.servePoll))
	return nil
}

// Metadata is the transmitter configuration it serves.
func (t *Transmitter) Metadata() ssf.TransmitterMetadata {
	base := t.cfg.publicBase()
	return ssf.TransmitterMetadata{
		SpecVersion:              ssf.SpecVersion,
		Issuer:                   t.cfg.Issuer,
		JWKSURI:                  base + PathJWKS,
		DeliveryMethodsSupported: []string{ssf.DeliveryPush, ssf.DeliveryPoll},
		ConfigurationEndpoint:    base + PathStream,
		StatusEndpoint:           base + PathStatus,
		AddSubjectEndpoint:       base + PathAddSubject,
		RemoveSubjectEndpoint:    base + PathRemoveSubject,
		VerificationEndpoint:     base + PathVerify,
		// Bearer tokens (RFC 6750) of the OAuth framework (RFC 6749),
		// issued to each receiver out of band; the CAEP interoperability
		// profile asks for urn:ietf:rfc:6749.
		AuthorizationSchemes: []ssf.AuthorizationScheme{{SpecURN: "urn:ietf:rfc:6749"}, {SpecURN: "urn:ietf:rfc:6750"}},
		DefaultSubjects:      "ALL",
	}
}

func (t *Transmitter) serveMetadata(w http.ResponseWriter, _ *http.Request) {
	ops.WriteJSON(w, http.StatusOK, t.Metadata())
}

func (t *Transmitter) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_ = json.NewEncoder(w).Encode(t.jwks)
}

// auth lets through requests bearing a receiver's token, with the
// receiver in the request's context; others get 401 (RFC 6750 section 3).
func (t *Transmitter) auth(next func(http.ResponseWriter, *http.Request, Receiver)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rcv, ok := authenticate(t.receivers, r.Header.Get("Authorization"))
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ssf", error="invalid_token"`)
			apiError(w, http.StatusUnauthorized, "invalid_token", "a receiver's bearer token is required")
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		next(w, r, rcv)
	})
}

func apiError(w http.ResponseWriter, status int, code, description string) {
	ops.WriteJSON(w, status, map[string]string{"error": code, "error_description": description})
}

// readJSON decodes a request body of at most maxBodyBytes into v.
func readJSON(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if err != nil {
		return fmt.Errorf("reading the body: %w", err)
	}
	if len(body) > maxBodyBytes {
		return fmt.Errorf("body larger than %d bytes", maxBodyBytes)
	}
	if err := json.Unmarshal(bytes.TrimSpace(body), v); err != nil {
		return fmt.Errorf("decoding the body: %w", err)
	}
	return nil
}

// owned returns the receiver's stream id; another receiver's stream is
// as absent as one that does not exist (404), so ids cannot be probed.
func (t *Transmitter) owned(w http.ResponseWriter, rcv Receiver, id string) (Stream, bool) {
	if id == "" {
		apiError(w, http.StatusBadRequest, "invalid_request", "stream_id is required")
		return Stream{}, false
	}
	s, ok := t.streams.get(id)
	if !ok || s.Receiver != rcv.Name {
		apiError(w, http.StatusNotFound, "not_found", "no stream "+id+" for this receiver")
		return Stream{}, false
	}
	return s, true
}

// config is the API's view of a stream.
func (t *Transmitter) config(s Stream) StreamConfig {
	return StreamConfig{
		StreamID: s.ID, Iss: t.cfg.Issuer, Aud: s.Audience,
		EventsSupported: slices.Clone(supportedEvents), EventsRequested: s.EventsRequested, EventsDelivered: s.delivered(),
		Delivery: s.Delivery, MinVerificationInterval: int64(t.cfg.MinVerificationInterval.Seconds()), Description: s.Description,
	}
}

func (t *Transmitter) serveStream(w http.ResponseWriter, r *http.Request, rcv Receiver) {
	switch r.Method {
	case http.MethodPost:
		t.createStream(w, r, rcv)
	case http.MethodGet:
		id := r.URL.Query().Get("stream_id")
		if id == "" {
			out := []StreamConfig{}
			for _, s := range t.streams.list(rcv.Name) {
				out = append(out, t.config(s))
			}
			ops.WriteJSON(w, http.StatusOK, out)
			return
		}
		if s, ok := t.owned(w, rcv, id); ok {
			ops.WriteJSON(w, http.StatusOK, t.config(s))
		}
	case http.MethodPatch, http.MethodPut:
		t.changeStream(w, r, rcv, r.Method == http.MethodPut)
	case http.MethodDelete:
		s, ok := t.owned(w, rcv, r.URL.Query().Get("stream_id"))
		if !ok {
			return
		}
		if err := t.streams.remove(s.ID); err != nil {
			apiError(w, http.StatusInternalServerError, "server_error", "deleting the stream failed")
			t.log.Error().Err(err).Str("stream_id", s.ID).Msg("deleting a stream")
			return
		}
		t.reconcile(s.ID)
		t.log.Info().Str("stream_id", s.ID).Str("receiver", rcv.Name).Msg("stream deleted")
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("Allow", "GET, POST, PATCH, PUT, DELETE")
		apiError(w, http.StatusMethodNotAllowed, "invalid_request", "method not allowed")
	}
}

// checkDelivery validates a receiver's delivery object and fills the
// transmitter's part: a missing one is poll (SSF 1.0 section 8.1.1.1),
// whose endpoint the transmitter supplies.
func (t *Transmitter) checkDelivery(d *Delivery, id string) (Delivery, error) {
	if d == nil || d.Method == "" {
		return Delivery{Method: ssf.DeliveryPoll, EndpointURL: t.cfg.publicBase() + PathPoll + id}, nil
	}
	switch d.Method {
	case ssf.DeliveryPush:
		if err := checkURL(d.EndpointURL, t.cfg.AllowHTTP, true); err != nil {
			return Delivery{}, fmt.Errorf("delivery.endpoint_url: %v", err)
		}
		return Delivery{Method: d.Method, EndpointURL: d.EndpointURL, AuthorizationHeader: d.AuthorizationHeader}, nil
	case ssf.DeliveryPoll:
		return Delivery{Method: d.Method, EndpointURL: t.cfg.publicBase() + PathPoll + id}, nil
	}
	return Delivery{}, fmt.Errorf("delivery method %q is not supported (want %s or %s)", d.Method, ssf.DeliveryPush, ssf.DeliveryPoll)
}

const maxDescription = 1024

func (t *Transmitter) createStream(w http.ResponseWriter, r *http.Request, rcv Receiver) {
	var req struct {
		EventsRequested []string  `json:"events_requested"`
		Delivery        *Delivery `json:"delivery"`
		Description     string    `json:"description"`
	}
	if err := readJSON(r, &req); err != nil {
		apiError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	id, err := newStreamID()
	if err != nil {
		apiError(w, http.StatusInternalServerError, "server_error", "no stream id")
		return
	}
	d, err := t.checkDelivery(req.Delivery, id)
	if err != nil {
		apiError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	s := Stream{
		ID: id, Receiver: rcv.Name, Audience: ssf.Audience{rcv.Audience}, Delivery: d,
		EventsRequested: req.EventsRequested, Description: cut(req.Description, maxDescription),
		Status: StatusEnabled, CreatedAt: t.clock.Now().UTC(),
	}
	if err := t.streams.add(s); err != nil {
		apiError(w, http.StatusInternalServerError, "server_error", "saving the stream failed")
		t.log.Error().Err(err).Msg("creating a stream")
		return
	}
	t.reconcile(id)
	t.log.Info().Str("stream_id", id).Str("receiver", rcv.Name).Str("method", d.Method).Str("endpoint", d.EndpointURL).Msg("stream created")
	ops.WriteJSON(w, http.StatusCreated, t.config(s))
}

// changeStream is PATCH (update what the request names) and PUT
// (replace: what it leaves out of the receiver's properties is removed),
// SSF 1.0 sections 8.1.1.3 and 8.1.1.4. Transmitter-supplied properties
// may be present and must then match.
func (t *Transmitter) changeStream(w http.ResponseWriter, r *http.Request, rcv Receiver, replace bool) {
	var raw map[string]json.RawMessage
	if err := readJSON(r, &raw); err != nil {
		apiError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	var id string
	if v, ok := raw["stream_id"]; ok {
		_ = json.Unmarshal(v, &id)
	}
	s, ok := t.owned(w, rcv, id)
	if !ok {
		return
	}
	cur := t.config(s)
	if err := matchTransmitterSupplied(raw, cur); err != nil {
		apiError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	var events []string
	var desc string
	var delivery *Delivery
	for name, dst := range map[string]any{"events_requested": &events, "description": &desc, "delivery": &delivery} {
		if v, ok := raw[name]; ok {
			if err := json.Unmarshal(v, dst); err != nil {
				apiError(w, http.StatusBadRequest, "invalid_request", name+": "+err.Error())
				return
			}
		}
	}
	_, hasEvents := raw["events_requested"]
	_, hasDesc := raw["description"]
	_, hasDelivery := raw["delivery"]
	var d Delivery
	if hasDelivery || replace {
		var err error
		if d, err = t.checkDelivery(delivery, s.ID); err != nil {
			apiError(w, http.StatusBadRequest, "invalid_request", err.Error())
			return
		}
	}
	updated, err := t.streams.update(s.ID, func(st *Stream) error {
		if hasEvents || replace {
			st.EventsRequested = events
		}
		if hasDesc || replace {
			st.Description = cut(desc, maxDescription)
		}
		if hasDelivery || replace {
			st.Delivery = d
		}
		return nil
	})
	if err != nil {
		apiError(w, http.StatusInternalServerError, "server_error", "saving the stream failed")
		t.log.Error().Err(err).Str("stream_id", s.ID).Msg("changing a stream")
		return
	}
	t.reconcile(s.ID)
	ops.WriteJSON(w, http.StatusOK, t.config(updated))
}

// matchTransmitterSupplied checks that the transmitter-supplied
// properties a change request carries are the current ones.
func matchTransmitterSupplied(raw map[string]json.RawMessage, cur StreamConfig) error {
	want := map[string]any{
		"iss": cur.Iss, "aud": cur.Aud, "events_supported": cur.EventsSupported,
		"events_delivered": cur.EventsDelivered, "min_verification_interval": cur.MinVerificationInterval,
	}
	for name, v := range want {
		got, ok := raw[name]
		if !ok {
			continue
		}
		exp, _ := json.Marshal(v)
		if !sameJSON(got, exp) {
			return fmt.Errorf("%s is transmitter-supplied and does not match the stream's", name)
		}
	}
	return nil
}

func sameJSON(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	if string(xa) == string(ya) {
		return true
	}
	// aud may be given as a string or a one-element array.
	var as, bs ssf.Audience
	if json.Unmarshal(a, &as) == nil && json.Unmarshal(b, &bs) == nil {
		return slices.Equal(as, bs)
	}
	return false
}

// StatusBody is a stream's status (SSF 1.0 section 8.1.2).
type StatusBody struct {
	StreamID string `json:"stream_id"`
	Status   string `json:"status"`
	Reason   string `json:"reason,omitempty"`
}

func (t *Transmitter) serveStatus(w http.ResponseWriter, r *http.Request, rcv Receiver) {
	switch r.Method {
	case http.MethodGet:
		if s, ok := t.owned(w, rcv, r.URL.Query().Get("stream_id")); ok {
			ops.WriteJSON(w, http.StatusOK, StatusBody{StreamID: s.ID, Status: s.Status, Reason: s.Reason})
		}
	case http.MethodPost:
		var req StatusBody
		if err := readJSON(r, &req); err != nil {
			apiError(w, http.StatusBadRequest, "invalid_request", err.Error())
			return
		}
		s, ok := t.owned(w, rcv, req.StreamID)
		if !ok {
			return
		}
		switch req.Status {
		case StatusEnabled, StatusPaused, StatusDisabled:
		default:
			apiError(w, http.StatusBadRequest, "invalid_request", "status must be enabled, paused or disabled")
			return
		}
		updated, err := t.streams.update(s.ID, func(st *Stream) error {
			st.Status, st.Reason = req.Status, cut(req.Reason, maxDescription)
			return nil
		})
		if err != nil {
			apiError(w, http.StatusInternalServerError, "server_error", "saving the stream failed")
			return
		}
		t.reconcile(s.ID)
		t.log.Info().Str("stream_id", s.ID).Str("status", req.Status).Str("reason", updated.Reason).Msg("stream status changed")
		ops.WriteJSON(w, http.StatusOK, StatusBody{StreamID: updated.ID, Status: updated.Status, Reason: updated.Reason})
	default:
		w.Header().Set("Allow", "GET, POST")
		apiError(w, http.StatusMethodNotAllowed, "invalid_request", "method not allowed")
	}
}

type subjectRequest struct {
	StreamID string          `json:"stream_id"`
	Subject  json.RawMessage `json:"subject"`
	Verified *bool           `json:"verified,omitempty"`
}

func (t *Transmitter) readSubject(w http.ResponseWriter, r *http.Request, rcv Receiver) (Stream, ssf.Subject, bool) {
	var req subjectRequest
	if err := readJSON(r, &req); err != nil {
		apiError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return Stream{}, ssf.Subject{}, false
	}
	s, ok := t.owned(w, rcv, req.StreamID)
	if !ok {
		return Stream{}, ssf.Subject{}, false
	}
	var sub ssf.Subject
	if len(req.Subject) == 0 {
		apiError(w, http.StatusBadRequest, "invalid_request", "subject is required")
		return Stream{}, ssf.Subject{}, false
	}
	if err := json.Unmarshal(req.Subject, &sub); err != nil {
		apiError(w, http.StatusBadRequest, "invalid_request", "subject: "+err.Error())
		return Stream{}, ssf.Subject{}, false
	}
	return s, sub, true
}

// serveAddSubject adds a subject back to a stream. Every subject is in a
// stream unless its receiver removed it (default_subjects ALL, which the
// CAEP interoperability profile has receivers assume), so adding undoes
// a removal.
func (t *Transmitter) serveAddSubject(w http.ResponseWriter, r *http.Request, rcv Receiver) {
	s, sub, ok := t.readSubject(w, r, rcv)
	if !ok {
		return
	}
	if _, err := t.streams.update(s.ID, func(st *Stream) error {
		st.Removed = slices.DeleteFunc(st.Removed, func(x ssf.Subject) bool { return x.Key() == sub.Key() })
		return nil
	}); err != nil {
		apiError(w, http.StatusInternalServerError, "server_error", "saving the stream failed")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// maxRemoved bounds the subjects removed from one stream.
const maxRemoved = 100000

func (t *Transmitter) serveRemoveSubject(w http.ResponseWriter, r *http.Request, rcv Receiver) {
	s, sub, ok := t.readSubject(w, r, rcv)
	if !ok {
		return
	}
	if _, err := t.streams.update(s.ID, func(st *Stream) error {
		if slices.ContainsFunc(st.Removed, func(x ssf.Subject) bool { return x.Key() == sub.Key() }) {
			return nil
		}
		if len(st.Removed) >= maxRemoved {
			return errTooManyRemoved
		}
		st.Removed = append(st.Removed, sub)
		return nil
	}); err != nil {
		if errors.Is(err, errTooManyRemoved) {
			apiError(w, http.StatusTooManyRequests, "invalid_request", err.Error())
			return
		}
		apiError(w, http.StatusInternalServerError, "server_error", "saving the stream failed")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

var errTooManyRemoved = fmt.Errorf("a stream keeps at most %d removed subjects", maxRemoved)

func (t *Transmitter) serveVerify(w http.ResponseWriter, r *http.Request, rcv Receiver) {
	var req struct {
		StreamID string `json:"stream_id"`
		State    string `json:"state"`
	}
	if err := readJSON(r, &req); err != nil {
		apiError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	s, ok := t.owned(w, rcv, req.StreamID)
	if !ok {
		return
	}
	if len(req.State) > maxDescription {
		apiError(w, http.StatusBadRequest, "invalid_request", "state is too long")
		return
	}
	now := t.clock.Now()
	t.mu.Lock()
	last, seen := t.lastVerify[s.ID]
	tooSoon := seen && now.Sub(last) < t.cfg.MinVerificationInterval
	if !tooSoon {
		t.lastVerify[s.ID] = now
	}
	t.mu.Unlock()
	if tooSoon {
		w.Header().Set("Retry-After", fmt.Sprint(int((t.cfg.MinVerificationInterval-now.Sub(last)).Seconds())+1))
		apiError(w, http.StatusTooManyRequests, "slow_down", "verification requested more often than min_verification_interval")
		return
	}
	if s.Status != StatusEnabled {
		// A paused or disabled stream transmits nothing (SSF 1.0
		// section 8.1.2); the request is taken, as the spec lets a
		// transmitter send the event later.
		t.log.Info().Str("stream_id", s.ID).Str("status", s.Status).Msg("verification requested on a stream that is not enabled; not sent")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if err := t.verify(s, req.State); err != nil {
		apiError(w, http.StatusServiceUnavailable, "temporarily_unavailable", err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (t *Transmitter) servePoll(w http.ResponseWriter, r *http.Request, rcv Receiver) {
	s, ok := t.owned(w, rcv, r.PathValue("stream_id"))
	if !ok {
		return
	}
	if s.Delivery.Method != ssf.DeliveryPoll {
		apiError(w, http.StatusNotFound, "not_found", "stream "+s.ID+" is not a poll stream")
		return
	}
	var req PollRequest
	if err := readJSON(r, &req); err != nil {
		ops.WriteJSON(w, http.StatusBadRequest, ssf.ErrorBody{Err: ssf.ErrCodeInvalidRequest, Description: err.Error()})
		return
	}
	if req.MaxEvents != nil && *req.MaxEvents < 0 {
		ops.WriteJSON(w, http.StatusBadRequest, ssf.ErrorBody{Err: ssf.ErrCodeInvalidRequest, Description: "maxEvents must not be negative"})
		return
	}
	q := t.queue(s.ID)
	if q == nil {
		// Paused: nothing is transmitted, and acknowledgements of
		// SETs served before the pause are moot (they are read again
		// from Kafka and served anew when the stream is enabled).
		ops.WriteJSON(w, http.StatusOK, PollResponse{Sets: map[string]string{}})
		return
	}
	for jti, e := range req.SetErrs {
		t.log.Warn().Str("stream_id", s.ID).Str("jti", cut(jti, 64)).Str("err", cut(e.Err, 64)).
			Str("description", cut(strings.TrimSpace(e.Description), 256)).Msg("receiver reported an error for a SET")
	}
	resp := q.poll(r.Context(), req, t.cfg.Poll.MaxEvents, t.cfg.Poll.Wait)
	t.metrics.outstanding.WithLabelValues(s.ID).Set(float64(q.outstanding()))
	ops.WriteJSON(w, http.StatusOK, resp)
}
