package ssf

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"
)

// Subject identifier formats (RFC 9493 section 3.2; SSF 1.0 section 3.2
// adds complex).
const (
	FormatAccount = "account"
	FormatEmail   = "email"
	FormatIssSub  = "iss_sub"
	FormatOpaque  = "opaque"
	FormatPhone   = "phone_number"
	FormatDID     = "did"
	FormatURI     = "uri"
	FormatAliases = "aliases"
	FormatComplex = "complex"
)

// Components are the members a complex subject may have (SSF 1.0 section
// 3.2, "Complex Subject Members").
var Components = []string{"user", "device", "session", "application", "tenant", "org_unit", "group"}

// maxAliases bounds the identifiers of an aliases subject.
const maxAliases = 16

// Subject is an RFC 9493 Subject Identifier, or an SSF complex subject.
// Only the members of its Format are set.
//
// Decoding is lenient where transmitters in the field differ from RFC
// 9493, and strict where it matters: it accepts "subject_type" for
// "format" (Google's RISC transmitter, which RISC 1.0 section 4 says
// receivers should tolerate) and "issuer" for iss_sub's "iss" (the
// spelling of drafts before RFC 9493, which SGNL's secevent library still
// writes), and refuses a subject without the members its format requires.
// Encoding writes exactly the members RFC 9493 describes.
type Subject struct {
	Format string
	// Email is the address of format email.
	Email string
	// Iss and Sub are the members of format iss_sub.
	Iss, Sub string
	// ID is the identifier of format opaque.
	ID string
	// Phone is the E.164 number of format phone_number.
	Phone string
	// URI is the URI of formats account ("acct:…") and uri; URL is the
	// DID of format did.
	URI, URL string
	// Identifiers are the subjects of format aliases.
	Identifiers []Subject
	// Members are a complex subject's components, by name (see
	// Components).
	Members map[string]*Subject
}

// EmailSubject returns an email subject for addr.
func EmailSubject(addr string) Subject { return Subject{Format: FormatEmail, Email: addr} }

// IssSubSubject returns an iss_sub subject.
func IssSubSubject(iss, sub string) Subject { return Subject{Format: FormatIssSub, Iss: iss, Sub: sub} }

// OpaqueSubject returns an opaque subject.
func OpaqueSubject(id string) Subject { return Subject{Format: FormatOpaque, ID: id} }

// ComplexSubject returns a complex subject with the given components
// (nil ones left out).
func ComplexSubject(members map[string]*Subject) Subject {
	m := map[string]*Subject{}
	for k, v := range members {
		if v != nil {
			m[k] = v
		}
	}
	return Subject{Format: FormatComplex, Members: m}
}

// IsEmail reports whether s is an addr-spec (RFC 5322) without a display
// name, the value format email carries.
func IsEmail(s string) bool {
	if s == "" || len(s) > 320 || strings.ContainsAny(s, " <>\"") {
		return false
	}
	a, err := mail.ParseAddress(s)
	return err == nil && a.Address == s && a.Name == ""
}

// Validate reports whether s has the members its format requires.
func (s Subject) Validate() error { return s.validate(0) }

func (s Subject) validate(depth int) error {
	need := func(name, v string) error {
		if strings.TrimSpace(v) == "" {
			return fmt.Errorf("subject of format %s needs %q", s.Format, name)
		}
		return nil
	}
	switch s.Format {
	case FormatEmail:
		if err := need("email", s.Email); err != nil {
			return err
		}
		if !IsEmail(s.Email) {
			return fmt.Errorf("subject email %q is not an e-mail address", truncate(s.Email, 64))
		}
	case FormatIssSub:
		if err := need("iss", s.Iss); err != nil {
			return err
		}
		return need("sub", s.Sub)
	case FormatOpaque:
		return need("id", s.ID)
	case FormatPhone:
		return need("phone_number", s.Phone)
	case FormatAccount:
		if !strings.HasPrefix(s.URI, "acct:") {
			return errors.New(`subject of format account needs a "uri" starting with "acct:"`)
		}
	case FormatURI:
		return need("uri", s.URI)
	case FormatDID:
		if !strings.HasPrefix(s.URL, "did:") {
			return errors.New(`subject of format did needs a "url" starting with "did:"`)
		}
	case FormatAliases:
		if depth > 0 {
			return fmt.Errorf("subject of format aliases cannot nest")
		}
		if len(s.Identifiers) == 0 || len(s.Identifiers) > maxAliases {
			return fmt.Errorf("subject of format aliases needs 1 to %d identifiers", maxAliases)
		}
		for _, id := range s.Identifiers {
			if id.Format == FormatAliases || id.Format == FormatComplex {
				return fmt.Errorf("an aliases identifier cannot be of format %s", id.Format)
			}
			if err := id.validate(depth + 1); err != nil {
				return err
			}
		}
	case FormatComplex:
		if depth > 0 {
			return fmt.Errorf("a complex subject cannot nest")
		}
		if len(s.Members) == 0 {
			return fmt.Errorf("a complex subject needs at least one member")
		}
		for name, m := range s.Members {
			if m == nil {
				return fmt.Errorf("complex subject member %q is null", name)
			}
			if m.Format == FormatComplex {
				return fmt.Errorf("complex subject member %q cannot be complex", name)
			}
			if err := m.validate(depth + 1); err != nil {
				return fmt.Errorf("complex subject member %q: %w", name, err)
			}
		}
	case "":
		return fmt.Errorf("subject has no format")
	default:
		return fmt.Errorf("unsupported subject format %q", truncate(s.Format, 32))
	}
	return nil
}

// MarshalJSON writes the members of s's format, in a stable order.
func (s Subject) MarshalJSON() ([]byte, error) {
	m := map[string]any{"format": s.Format}
	switch s.Format {
	case FormatEmail:
		m["email"] = s.Email
	case FormatIssSub:
		m["iss"], m["sub"] = s.Iss, s.Sub
	case FormatOpaque:
		m["id"] = s.ID
	case FormatPhone:
		m["phone_number"] = s.Phone
	case FormatAccount, FormatURI:
		m["uri"] = s.URI
	case FormatDID:
		m["url"] = s.URL
	case FormatAliases:
		m["identifiers"] = s.Identifiers
	case FormatComplex:
		for k, v := range s.Members {
			m[k] = v
		}
	}
	return json.Marshal(m)
}

// UnmarshalJSON reads a subject identifier (see Subject for what it
// tolerates) and validates it.
func (s *Subject) UnmarshalJSON(data []byte) error {
	v, err := decodeSubject(data, 0)
	if err != nil {
		return err
	}
	*s = v
	return nil
}

func decodeSubject(data []byte, depth int) (Subject, error) {
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&raw); err != nil || raw == nil {
		return Subject{}, fmt.Errorf("subject is not a JSON object")
	}
	str := func(name string) (string, error) {
		r, ok := raw[name]
		if !ok {
			return "", nil
		}
		var v string
		if err := json.Unmarshal(r, &v); err != nil {
			return "", fmt.Errorf("subject member %q is not a string", name)
		}
		return v, nil
	}
	var s Subject
	var errs []error
	get := func(name string) string {
		v, err := str(name)
		if err != nil {
			errs = append(errs, err)
		}
		return v
	}
	s.Format = get("format")
	if s.Format == "" {
		s.Format = get("subject_type")
	}
	switch s.Format {
	case FormatEmail:
		s.Email = get("email")
	case FormatIssSub:
		s.Iss, s.Sub = get("iss"), get("sub")
		if s.Iss == "" {
			s.Iss = get("issuer")
		}
	case FormatOpaque:
		s.ID = get("id")
	case FormatPhone:
		s.Phone = get("phone_number")
	case FormatAccount, FormatURI:
		s.URI = get("uri")
	case FormatDID:
		s.URL = get("url")
	case FormatAliases:
		var ids []json.RawMessage
		if err := json.Unmarshal(raw["identifiers"], &ids); err != nil {
			return s, fmt.Errorf("subject of format aliases needs an array \"identifiers\"")
		}
		if len(ids) > maxAliases {
			return s, fmt.Errorf("subject of format aliases has %d identifiers, limit %d", len(ids), maxAliases)
		}
		for _, r := range ids {
			id, err := decodeSubject(r, depth+1)
			if err != nil {
				return s, err
			}
			s.Identifiers = append(s.Identifiers, id)
		}
	case FormatComplex:
		s.Members = map[string]*Subject{}
		for name, r := range raw {
			if name == "format" || !slices.Contains(Components, name) {
				// SSF 1.0 section 3.2.2: members a receiver does not
				// know are ignored unless the transmitter marked them
				// critical.
				continue
			}
			m, err := decodeSubject(r, depth+1)
			if err != nil {
				return s, fmt.Errorf("complex subject member %q: %w", name, err)
			}
			s.Members[name] = &m
		}
	}
	if len(errs) > 0 {
		return s, errs[0]
	}
	if err := s.validate(depth); err != nil {
		return s, err
	}
	return s, nil
}

// Member returns the component name of a complex subject, or s itself
// when s is simple and name is "user" (a simple subject names a user in
// the events this project exchanges), else nil.
func (s *Subject) Member(name string) *Subject {
	if s == nil {
		return nil
	}
	if s.Format == FormatComplex {
		return s.Members[name]
	}
	if name == "user" {
		return s
	}
	return nil
}

// Key is a canonical string of s: two subjects are identical when their
// keys are.
func (s Subject) Key() string {
	b, err := json.Marshal(s)
	if err != nil {
		return s.Format
	}
	return string(b)
}

// Matches reports whether an event about subject s concerns the subject
// other that a receiver added to or removed from a stream, by SSF 1.0
// section 8.1.3.1: simple subjects match when identical; complex ones
// when, for every component, one of them leaves it out or both give the
// same value. A simple subject against a complex one is compared with
// the complex one's user component, so that removing alice@example.com
// also stops events about alice's sessions.
func (s Subject) Matches(other Subject) bool {
	switch {
	case s.Format != FormatComplex && other.Format != FormatComplex:
		return s.Key() == other.Key()
	case s.Format != FormatComplex:
		u := other.Members["user"]
		return u != nil && u.Key() == s.Key()
	case other.Format != FormatComplex:
		u := s.Members["user"]
		return u != nil && u.Key() == other.Key()
	}
	for name, x := range s.Members {
		if y, ok := other.Members[name]; ok && x.Key() != y.Key() {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
