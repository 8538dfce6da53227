package config

import (
	"encoding/json"
	"fmt"

	"go.yaml.in/yaml/v3"
)

// redacted is what a set Secret prints as, whatever the verb or encoder.
const redacted = "********"

// Secret holds a credential (a password, a client secret, a key). It prints
// as ******** through fmt (every verb, including %v, %+v, %#v, %s, %q and %x),
// encoding/json and yaml.v3, so a configuration struct can be logged or
// dumped whole without leaking it. An unset Secret prints as an empty string,
// which tells an operator it is missing without telling anyone what it is.
//
// Reveal is the only way to read the value; call it where the credential is
// handed to the library that needs it, and nowhere else.
//
// Load fills a Secret from a flag, a YAML string, the environment variable
// named by its env tag, or, when that variable is unset, from the file named
// by the same variable with a _FILE suffix (its contents trimmed of
// surrounding white space), which keeps the value out of the environment and
// the process list.
type Secret struct {
	value string
}

// NewSecret wraps v.
func NewSecret(v string) Secret { return Secret{value: v} }

// Reveal returns the credential itself.
func (s Secret) Reveal() string { return s.value }

// IsSet reports whether the secret holds a non-empty value.
func (s Secret) IsSet() bool { return s.value != "" }

// String implements fmt.Stringer without revealing the value.
func (s Secret) String() string {
	if s.value == "" {
		return ""
	}
	return redacted
}

// GoString implements fmt.GoStringer without revealing the value.
func (s Secret) GoString() string { return fmt.Sprintf("config.Secret(%q)", s.String()) }

// Format implements fmt.Formatter so that no verb can print the value.
func (s Secret) Format(f fmt.State, verb rune) {
	switch {
	case verb == 'v' && f.Flag('#'):
		_, _ = f.Write([]byte(s.GoString()))
	case verb == 'q':
		_, _ = fmt.Fprintf(f, "%q", s.String())
	default:
		_, _ = f.Write([]byte(s.String()))
	}
}

// MarshalJSON implements json.Marshaler without revealing the value.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// UnmarshalJSON reads the secret from a JSON string.
func (s *Secret) UnmarshalJSON(b []byte) error {
	var v string
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("decoding secret: %w", err)
	}
	s.value = v
	return nil
}

// UnmarshalYAML reads the secret from a YAML string.
func (s *Secret) UnmarshalYAML(n *yaml.Node) error {
	var v string
	if err := n.Decode(&v); err != nil {
		return fmt.Errorf("decoding secret: %w", err)
	}
	s.value = v
	return nil
}

// MarshalYAML implements yaml.Marshaler without revealing the value.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// MarshalText implements encoding.TextMarshaler without revealing the value;
// it keeps loggers and encoders that prefer text from reaching the field.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
