package ssf

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ErrUnknownUser means a subject names no user this pipeline knows (a
// users file is given and does not list it).
var ErrUnknownUser = errors.New("the subject names no known user")

// ErrForeignIssuer means an iss_sub subject's iss is not one whose
// subjects the caller may name.
var ErrForeignIssuer = errors.New("the subject's issuer is not accepted here")

// Users turns subject identifiers into this pipeline's user ids. Without
// a users file the identifier is the user id: the address of email, the
// sub of iss_sub, the id of opaque, the account of account ("acct:" cut
// off); a complex subject is its user member's, aliases the first of its
// identifiers that names a user. With a users file only the subjects it
// lists name users, each mapped to the user id it gives.
type Users struct {
	byKey map[string]string // nil: identifiers are user ids
}

// usersFile is the YAML of a users file.
type usersFile struct {
	Users []struct {
		UserID   string           `yaml:"user_id"`
		Subjects []map[string]any `yaml:"subjects"`
	} `yaml:"users"`
}

// LoadUsers reads a users file:
//
//	users:
//	  - user_id: alice
//	    subjects:
//	      - {format: email, email: alice@example.com}
//	      - {format: iss_sub, iss: "https://example.okta.com", sub: 00u1abcd}
//
// An empty path gives the identity mapping.
func LoadUsers(path string) (*Users, error) {
	if path == "" {
		return &Users{}, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the users file: %w", err)
	}
	var f usersFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("decoding the users file %s: %w", path, err)
	}
	u := &Users{byKey: map[string]string{}}
	for i, e := range f.Users {
		if strings.TrimSpace(e.UserID) == "" || len(e.Subjects) == 0 {
			return nil, fmt.Errorf("users[%d]: user_id and subjects are required", i)
		}
		for j, raw := range e.Subjects {
			b, err := json.Marshal(raw)
			if err != nil {
				return nil, fmt.Errorf("users[%d].subjects[%d]: %w", i, j, err)
			}
			var s Subject
			if err := json.Unmarshal(b, &s); err != nil {
				return nil, fmt.Errorf("users[%d].subjects[%d]: %w", i, j, err)
			}
			if s.Format == FormatComplex || s.Format == FormatAliases {
				return nil, fmt.Errorf("users[%d].subjects[%d]: list simple subjects", i, j)
			}
			if prev, ok := u.byKey[s.Key()]; ok && prev != e.UserID {
				return nil, fmt.Errorf("users[%d].subjects[%d]: also listed for user %q", i, j, prev)
			}
			u.byKey[s.Key()] = e.UserID
		}
	}
	return u, nil
}

// UserID returns the user id a subject names, and the id of the session
// a complex subject names (its session member's identifier), if any.
// issuers are the iss values whose iss_sub subjects are accepted (none:
// any). It returns ErrUnknownUser for a subject the users file does not
// list, ErrForeignIssuer for an iss_sub of another issuer, and another
// error for a subject that cannot name a user.
func (u *Users) UserID(s Subject, issuers []string) (user, session string, err error) {
	switch s.Format {
	case FormatComplex:
		if m := s.Members["session"]; m != nil {
			session = m.identifier()
		}
		m := s.Members["user"]
		if m == nil {
			return "", "", errors.New("the complex subject has no user member")
		}
		user, err = u.simple(*m, issuers)
		return user, session, err
	case FormatAliases:
		err = errors.New("no identifier of the aliases subject names a user")
		for _, id := range s.Identifiers {
			var e error
			if user, e = u.simple(id, issuers); e == nil {
				return user, "", nil
			}
			if errors.Is(e, ErrForeignIssuer) || errors.Is(e, ErrUnknownUser) {
				err = e
			}
		}
		return "", "", err
	}
	user, err = u.simple(s, issuers)
	return user, "", err
}

func (u *Users) simple(s Subject, issuers []string) (string, error) {
	if s.Format == FormatIssSub && len(issuers) > 0 && !slices.Contains(issuers, s.Iss) {
		return "", fmt.Errorf("%w: %q", ErrForeignIssuer, truncate(s.Iss, 128))
	}
	if u.byKey != nil {
		id, ok := u.byKey[s.Key()]
		if !ok {
			return "", ErrUnknownUser
		}
		return id, nil
	}
	switch s.Format {
	case FormatEmail, FormatIssSub, FormatOpaque, FormatAccount:
		return s.identifier(), nil
	}
	return "", fmt.Errorf("a subject of format %s names no user here", s.Format)
}

// identifier is the value a simple subject identifies by.
func (s *Subject) identifier() string {
	switch s.Format {
	case FormatEmail:
		return s.Email
	case FormatIssSub:
		return s.Sub
	case FormatOpaque:
		return s.ID
	case FormatAccount:
		return strings.TrimPrefix(s.URI, "acct:")
	case FormatPhone:
		return s.Phone
	case FormatURI:
		return s.URI
	case FormatDID:
		return s.URL
	}
	return ""
}
