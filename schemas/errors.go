package schemas

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"
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
// field. encoding/json reports type mismatches as *json.UnmarshalTypeError
// with the field path, but unknown fields and bad timestamps without one:
// for those the document is walked against the target type to find the
// full path (only on the error path, so valid input pays nothing).
func decodeError(err error, data []byte, target reflect.Type) *FieldError {
	var parseErr *time.ParseError
	if errors.As(err, &parseErr) || strings.HasPrefix(err.Error(), "json: unknown field ") {
		var doc any
		if json.Unmarshal(data, &doc) == nil {
			if fe := locate(target, doc, ""); fe != nil {
				return fe
			}
		}
	}
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

var timeType = reflect.TypeFor[time.Time]()

// locate walks a generic JSON document against the Go type it should decode
// into and returns the first unknown key or unparseable timestamp, with its
// dotted path.
func locate(typ reflect.Type, doc any, path string) *FieldError {
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	switch {
	case typ == timeType:
		if s, ok := doc.(string); ok {
			if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
				return &FieldError{Field: path, Reason: "not an RFC 3339 timestamp"}
			}
		}
	case typ.Kind() == reflect.Struct:
		obj, ok := doc.(map[string]any)
		if !ok {
			return nil
		}
		fields := map[string]reflect.Type{}
		for f := range typ.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			fields[name] = f.Type
		}
		for key, v := range obj {
			ft, known := fields[key]
			if !known {
				return &FieldError{Field: joinPath(path, key), Reason: "unknown field"}
			}
			if fe := locate(ft, v, joinPath(path, key)); fe != nil {
				return fe
			}
		}
	case typ.Kind() == reflect.Slice:
		arr, _ := doc.([]any)
		for i, v := range arr {
			if fe := locate(typ.Elem(), v, fmt.Sprintf("%s[%d]", path, i)); fe != nil {
				return fe
			}
		}
	}
	return nil
}
