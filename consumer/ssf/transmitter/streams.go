package transmitter

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/internal/ssf"
)

// Stream statuses (SSF 1.0 section 8.1.2).
const (
	StatusEnabled  = "enabled"
	StatusPaused   = "paused"
	StatusDisabled = "disabled"
)

// Delivery is a stream's delivery object (SSF 1.0 section 6).
type Delivery struct {
	Method      string `json:"method"`
	EndpointURL string `json:"endpoint_url,omitempty"`
	// AuthorizationHeader is what a push carries as its Authorization
	// header, when the receiver gave one. It is a credential: it is kept
	// in the state file (0600), returned only to the stream's receiver,
	// and never logged.
	AuthorizationHeader string `json:"authorization_header,omitempty"`
}

// Stream is one receiver's event stream as the transmitter keeps it.
type Stream struct {
	ID              string        `json:"stream_id"`
	Receiver        string        `json:"receiver"`
	Audience        ssf.Audience  `json:"aud"`
	Delivery        Delivery      `json:"delivery"`
	EventsRequested []string      `json:"events_requested,omitempty"`
	Description     string        `json:"description,omitempty"`
	Status          string        `json:"status"`
	Reason          string        `json:"reason,omitempty"`
	Removed         []ssf.Subject `json:"removed_subjects,omitempty"`
	CreatedAt       time.Time     `json:"created_at"`
}

// delivered is the stream's events_delivered: the supported events it
// requested, or all of them when it requested none.
func (s *Stream) delivered() []string {
	if len(s.EventsRequested) == 0 {
		return slices.Clone(supportedEvents)
	}
	var out []string
	for _, e := range supportedEvents {
		if slices.Contains(s.EventsRequested, e) {
			out = append(out, e)
		}
	}
	return out
}

// removed reports whether the receiver removed sub from the stream.
func (s *Stream) removed(sub ssf.Subject) bool {
	for _, r := range s.Removed {
		if sub.Matches(r) {
			return true
		}
	}
	return false
}

// StreamConfig is a stream's configuration as the API shows it (SSF 1.0
// section 8.1.1).
type StreamConfig struct {
	StreamID                string       `json:"stream_id"`
	Iss                     string       `json:"iss"`
	Aud                     ssf.Audience `json:"aud"`
	EventsSupported         []string     `json:"events_supported"`
	EventsRequested         []string     `json:"events_requested,omitempty"`
	EventsDelivered         []string     `json:"events_delivered"`
	Delivery                Delivery     `json:"delivery"`
	MinVerificationInterval int64        `json:"min_verification_interval,omitempty"`
	Description             string       `json:"description,omitempty"`
}

// streamStore holds the streams and writes them to the state file after
// every change. It is safe for concurrent use.
type streamStore struct {
	path string
	mu   sync.Mutex
	m    map[string]*Stream
}

type stateFile struct {
	Streams []*Stream `json:"streams"`
}

// openStreams reads the state file; a missing one is no streams.
func openStreams(path string) (*streamStore, error) {
	st := &streamStore{path: path, m: map[string]*Stream{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the stream state: %w", err)
	}
	var f stateFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("decoding the stream state %s: %w", path, err)
	}
	for _, s := range f.Streams {
		st.m[s.ID] = s
	}
	return st, nil
}

// saveLocked writes the state file atomically: a temporary file, fsync,
// rename.
func (st *streamStore) saveLocked() error {
	f := stateFile{Streams: make([]*Stream, 0, len(st.m))}
	for _, s := range st.m {
		f.Streams = append(f.Streams, s)
	}
	sort.Slice(f.Streams, func(i, j int) bool { return f.Streams[i].ID < f.Streams[j].ID })
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(st.path), ".ssf-streams-*")
	if err != nil {
		return fmt.Errorf("writing the stream state: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("writing the stream state: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing the stream state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("writing the stream state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing the stream state: %w", err)
	}
	if err := os.Rename(tmp.Name(), st.path); err != nil {
		return fmt.Errorf("writing the stream state: %w", err)
	}
	return nil
}

// get returns a copy of the stream.
func (st *streamStore) get(id string) (Stream, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	s, ok := st.m[id]
	if !ok {
		return Stream{}, false
	}
	return s.clone(), true
}

// list returns copies of the receiver's streams (every stream for "").
func (st *streamStore) list(receiver string) []Stream {
	st.mu.Lock()
	defer st.mu.Unlock()
	var out []Stream
	for _, s := range st.m {
		if receiver == "" || s.Receiver == receiver {
			out = append(out, s.clone())
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// update applies fn to the stream under the lock and saves; fn's error
// leaves everything as it was.
func (st *streamStore) update(id string, fn func(*Stream) error) (Stream, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	s, ok := st.m[id]
	if !ok {
		return Stream{}, errNoStream
	}
	c := s.clone()
	if err := fn(&c); err != nil {
		return Stream{}, err
	}
	st.m[id] = &c
	if err := st.saveLocked(); err != nil {
		st.m[id] = s
		return Stream{}, err
	}
	return c.clone(), nil
}

// add stores a new stream.
func (st *streamStore) add(s Stream) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	c := s.clone()
	st.m[s.ID] = &c
	if err := st.saveLocked(); err != nil {
		delete(st.m, s.ID)
		return err
	}
	return nil
}

// remove deletes a stream.
func (st *streamStore) remove(id string) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	s, ok := st.m[id]
	if !ok {
		return errNoStream
	}
	delete(st.m, id)
	if err := st.saveLocked(); err != nil {
		st.m[id] = s
		return err
	}
	return nil
}

var errNoStream = errors.New("no such stream")

func (s *Stream) clone() Stream {
	c := *s
	c.Audience = slices.Clone(s.Audience)
	c.EventsRequested = slices.Clone(s.EventsRequested)
	c.Removed = slices.Clone(s.Removed)
	return c
}

// newStreamID is 128 random bits in hex (RFC 3986 unreserved characters,
// as SSF 1.0 section 8.1.1 asks).
func newStreamID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// Receiver is a party that may manage streams and poll them: a bearer
// token, and the audience its streams' SETs carry.
type Receiver struct {
	Name     string
	Audience string
	Token    config.Secret
}

// receiversFile is the YAML of -receivers-file.
type receiversFile struct {
	Receivers []struct {
		Name      string `yaml:"name"`
		Audience  string `yaml:"audience"`
		TokenFile string `yaml:"token_file"`
	} `yaml:"receivers"`
}

// LoadReceivers reads a receivers file: each receiver's name, audience
// and the file holding its bearer token (relative paths are taken from
// the receivers file's directory).
func LoadReceivers(path string) ([]Receiver, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the receivers file: %w", err)
	}
	var f receiversFile
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("decoding the receivers file %s: %w", path, err)
	}
	var out []Receiver
	var errs []error
	seen := map[string]bool{}
	for i, r := range f.Receivers {
		switch {
		case r.Name == "" || r.Audience == "" || r.TokenFile == "":
			errs = append(errs, fmt.Errorf("receivers[%d]: name, audience and token_file are required", i))
			continue
		case seen[r.Name]:
			errs = append(errs, fmt.Errorf("receivers[%d]: name %q given twice", i, r.Name))
			continue
		}
		seen[r.Name] = true
		tf := r.TokenFile
		if !filepath.IsAbs(tf) {
			tf = filepath.Join(filepath.Dir(path), tf)
		}
		tok, err := os.ReadFile(tf)
		if err != nil {
			errs = append(errs, fmt.Errorf("receivers[%d] (%s): reading its token: %w", i, r.Name, err))
			continue
		}
		t := strings.TrimSpace(string(tok))
		if len(t) < 16 {
			errs = append(errs, fmt.Errorf("receivers[%d] (%s): its token is shorter than 16 characters", i, r.Name))
			continue
		}
		out = append(out, Receiver{Name: r.Name, Audience: r.Audience, Token: config.NewSecret(t)})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("the receivers file %s names no receiver", path)
	}
	return out, nil
}

// authenticate returns the receiver whose token the request carries.
// Every token is compared, in constant time, so the time taken says
// nothing about which matched.
func authenticate(receivers []Receiver, header string) (Receiver, bool) {
	// The scheme is case-insensitive (RFC 9110 section 11.1).
	if len(header) < 7 || !strings.EqualFold(header[:7], "Bearer ") {
		return Receiver{}, false
	}
	got := strings.TrimSpace(header[7:])
	var found Receiver
	match := 0
	for _, r := range receivers {
		if subtle.ConstantTimeCompare([]byte(got), []byte(r.Token.Reveal())) == 1 {
			found = r
			match = 1
		}
	}
	return found, match == 1 && got != ""
}
