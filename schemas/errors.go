package schemas

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Sentinels that decoding and validation errors wrap.
var (
	// ErrInvalidEvent wraps every reason an AuditEvent is rejected.
	ErrInvalidEvent = errors.New("invalid audit event")
	// ErrInvalidCommand wraps every reason a RevokeCommand is rejected.
	ErrInvalidCommand = errors.New("invalid revoke command")
)

// FieldError names the offending field of a rejected value and why it was
// rejected. Field is a dotted JSON path ("geo.lat", "target.kind"); it is
// empty when the value is not valid JSON at all.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return fmt.Sprintf("field %q: %s", e.Field, e.Reason)
}

// decodeError turns an encoding/json error into a FieldError that names the
// field. encoding/json reports unknown fields as `json: unknown field "x"`
// and type mismatches as *json.UnmarshalTypeError with the field path.
func decodeError(err error) *FieldError {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		return &FieldError{Field: typeErr.Field, Reason: fmt.Sprintf("expected %s, got JSON %s", typeErr.Type, typeErr.Value)}
	case errors.As(err, &syntaxErr):
		return &FieldError{Reason: fmt.Sprintf("malformed JSON at byte %d: %v", syntaxErr.Offset, syntaxErr)}
	}
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return &FieldError{Field: strings.Trim(rest, `"`), Reason: "unknown field"}
	}
	if fe, ok := errors.AsType[*FieldError](err); ok {
		return fe
	}
	return &FieldError{Reason: strings.TrimPrefix(msg, "json: ")}
}

// fieldErrors collects problems so a caller sees all of them at once.
type fieldErrors []error

func (fe *fieldErrors) add(field, format string, args ...any) {
	*fe = append(*fe, &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
}

func (fe fieldErrors) join(sentinel error) error {
	if len(fe) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", sentinel, errors.Join(fe...))
}
