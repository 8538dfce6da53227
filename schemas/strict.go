package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// strictOptions make github.com/go-json-experiment/json (the proposed
// encoding/json/v2) decode as strictly as the JSON Schema files: besides
// what it does by default (object keys match field names exactly, invalid
// UTF-8 and duplicate keys are errors, nothing may follow the value), it
// rejects unknown fields, and it reads timestamps as encoding/json does
// (time.Time.UnmarshalJSON on the raw string, so an escaped character in
// a timestamp is refused as it always was).
//
// Measured on the 2-core machines here (go test -bench DecodeSimulated
// ./detector/service): DecodeEvent of a simulated 514-byte event took
// 7.5 µs and 30 allocations with checkRaw and encoding/json, 2.8 µs and 13
// allocations this way, validation included.
var strictOptions = jsonv2.JoinOptions(
	jsonv2.RejectUnknownMembers(true),
	jsonv2.WithUnmarshalers(jsonv2.UnmarshalFromFunc(unmarshalTime)),
)

func unmarshalTime(dec *jsontext.Decoder, t *time.Time) error {
	raw, err := dec.ReadValue()
	if err != nil {
		return err
	}
	return t.UnmarshalJSON(raw)
}

// decodeStrict decodes exactly one JSON value from data into v, rejecting
// unknown fields, keys that differ from a field's name in case, invalid
// UTF-8, duplicate keys and trailing data, and returns a *FieldError that
// names the field of the first problem.
//
// Valid input takes one pass (strictOptions). Only when that fails is the
// input decoded again the way it was before (checkRaw, then encoding/json
// and decodeError), whose errors name the field of every problem it knows;
// what only the first pass refuses (a duplicate key, an unpaired surrogate
// escape, data after the value) is named from that pass's JSON pointer.
func decodeStrict[T any](data []byte, v *T) error {
	err := jsonv2.Unmarshal(data, v, strictOptions)
	if err == nil {
		return nil
	}
	t := reflect.TypeFor[T]()
	if ferr := checkRaw(data, t); ferr != nil {
		return ferr
	}
	var again T
	if lerr := strictUnmarshal(data, &again); lerr != nil {
		return decodeError(lerr, data, t)
	}
	return jsonv2Error(err, t)
}

// jsonv2Error turns an error of jsonv2.Unmarshal into a FieldError naming
// the field its JSON pointer leads to.
func jsonv2Error(err error, t reflect.Type) *FieldError {
	if se, ok := errors.AsType[*jsontext.SyntacticError](err); ok {
		return &FieldError{Field: pointerPath(se.JSONPointer, t), Reason: strings.TrimPrefix(se.Err.Error(), "jsontext: ")}
	}
	if se, ok := errors.AsType[*jsonv2.SemanticError](err); ok {
		reason := fmt.Sprintf("cannot decode JSON %s into %s", se.JSONKind, se.GoType)
		if se.Err != nil {
			reason = se.Err.Error()
		}
		return &FieldError{Field: pointerPath(se.JSONPointer, t), Reason: reason}
	}
	return &FieldError{Reason: strings.TrimPrefix(err.Error(), "json: ")}
}

// pointerPath is the dotted path (as FieldError.Field) of a JSON pointer
// into a value of type t: "/geo/lat" is "geo.lat", "/scopes/2" is
// "scopes[2]".
func pointerPath(p jsontext.Pointer, t reflect.Type) string {
	var path string
	for tok := range p.Tokens() {
		for t != nil && t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch {
		case t != nil && t.Kind() == reflect.Slice:
			path, t = path+"["+tok+"]", t.Elem()
		case t != nil && t.Kind() == reflect.Map:
			path, t = joinPath(path, tok), t.Elem()
		case t != nil && t.Kind() == reflect.Struct && t != timeType:
			path = joinPath(path, tok)
			t, _ = structField(t, tok)
		default:
			path, t = joinPath(path, tok), nil
		}
	}
	return path
}

// encoding/json is looser than the JSON Schema in two ways that matter
// here: it matches object keys to fields case-insensitively ("User_ID" sets
// user_id) and it turns invalid UTF-8 into U+FFFD without a word. checkRaw
// closes both, naming the field: a cheap scan first (valid UTF-8, and no
// object key with an upper-case letter or an escape, which our keys never
// need), and only when it finds something, a walk of the value that tells
// a key of a field written in another case (refused) from a key of a
// free-form map such as attrs (allowed), and names the field of the bad
// bytes. decodeStrict uses it only to name the problem of input it has
// already refused.
func checkRaw(data []byte, t reflect.Type) error {
	if utf8.Valid(data) && !suspectKeys(data) {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if fe := walk(dec, data, t, ""); fe != nil && fe != errWalkSyntax {
		return fe
	}
	// Bad bytes outside any string are a syntax error, which the decoder
	// proper reports.
	return nil
}

// errWalkSyntax ends a walk at a syntax error. The walk must stop there:
// the decoder's More keeps reporting another element after a failed
// Token, so a walk that went on would never end (as it did on "[\x80").
var errWalkSyntax = &FieldError{Reason: "malformed JSON"}

// suspectKeys reports whether any object key of the JSON text holds an
// ASCII upper-case letter or a backslash escape: one pass over the bytes,
// remembering of each string only whether it held either.
func suspectKeys(data []byte) bool {
	const (
		outside = iota
		inString
		escaped
	)
	state, flagged := outside, false
	for _, c := range data {
		switch state {
		case outside:
			if c == '"' {
				state, flagged = inString, false
			} else if c == ':' && flagged {
				return true
			} else if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
				flagged = false
			}
		case inString:
			switch {
			case c == '"':
				state = outside
			case c == '\\':
				state, flagged = escaped, true
			case c-'A' < 26:
				flagged = true
			}
		case escaped:
			state = inString
		}
	}
	return false
}

// walk reads one JSON value from dec, checking it against t (nil: any
// value, no key checks), and returns the first problem, or nil. A syntax
// error ends the walk with errWalkSyntax: the decoder proper reports it.
func walk(dec *json.Decoder, data []byte, t reflect.Type, path string) *FieldError {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	start := dec.InputOffset()
	tok, err := dec.Token()
	if err != nil {
		return errWalkSyntax
	}
	switch v := tok.(type) {
	case string:
		if !utf8.Valid(data[start:dec.InputOffset()]) {
			return &FieldError{Field: path, Reason: "not valid UTF-8"}
		}
	case json.Delim:
		switch v {
		case '{':
			for dec.More() {
				kstart := dec.InputOffset()
				ktok, err := dec.Token()
				if err != nil {
					return errWalkSyntax
				}
				key, _ := ktok.(string)
				sub := joinPath(path, key)
				if !utf8.Valid(data[kstart:dec.InputOffset()]) {
					return &FieldError{Field: path, Reason: "a key is not valid UTF-8"}
				}
				var ft reflect.Type
				switch {
				case t == nil || t == timeType:
				case t.Kind() == reflect.Map:
					ft = t.Elem()
				case t.Kind() == reflect.Struct:
					var name string
					ft, name = structField(t, key)
					if ft != nil && name != key {
						return &FieldError{Field: sub, Reason: fmt.Sprintf("keys are case-sensitive: want %q", name)}
					}
				}
				if fe := walk(dec, data, ft, sub); fe != nil {
					return fe
				}
			}
			_, _ = dec.Token()
		case '[':
			var et reflect.Type
			if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
				et = t.Elem()
			}
			for i := 0; dec.More(); i++ {
				if fe := walk(dec, data, et, fmt.Sprintf("%s[%d]", path, i)); fe != nil {
					return fe
				}
			}
			_, _ = dec.Token()
		}
	}
	return nil
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// structField finds the field of t that key names, exactly or, as
// encoding/json would match it, ignoring case, and returns its type and
// JSON name (which differs from key in the second case); nil for none.
func structField(t reflect.Type, key string) (reflect.Type, string) {
	var folded reflect.Type
	var foldedName string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		if name == key {
			return f.Type, name
		}
		if folded == nil && strings.EqualFold(name, key) {
			folded, foldedName = f.Type, name
		}
	}
	return folded, foldedName
}

// badIDRune reports whether r may not stand in an identifier: a control
// character (Cc) or a format character (Cf: zero-width spaces and joiners,
// bidirectional overrides and isolates, the byte-order mark), which make
// two different ids print alike, or U+FFFD, which stands for bytes that
// were not UTF-8. The JSON Schema's identifier pattern refuses the same.
func badIDRune(r rune) bool {
	return r == utf8.RuneError || unicode.Is(unicode.Cc, r) || unicode.Is(unicode.Cf, r)
}

// hasBadIDRune reports whether s holds a rune badIDRune refuses, looking
// at ASCII bytes directly (only C0 controls and DEL are bad there).
func hasBadIDRune(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return strings.ContainsFunc(s[i:], badIDRune)
		}
		if c < 0x20 || c == 0x7f {
			return true
		}
	}
	return false
}
