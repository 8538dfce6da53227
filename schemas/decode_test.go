package schemas

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// golden runs fn over testdata/<dir>/valid/*.json and invalid/*.json. An
// invalid fixture's .field file names the field the error must name (empty
// for errors about the document as a whole).
func golden(t *testing.T, dir string, decode func([]byte) (any, error), sentinel error) {
	t.Helper()
	valid, _ := filepath.Glob(filepath.Join("testdata", dir, "valid", "*.json"))
	invalid, _ := filepath.Glob(filepath.Join("testdata", dir, "invalid", "*.json"))
	if len(valid) == 0 || len(invalid) == 0 {
		t.Fatalf("no fixtures under testdata/%s", dir)
	}
	for _, path := range valid {
		t.Run("valid/"+filepath.Base(path), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			v, err := decode(data)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			// Encoding and decoding again gives the same value.
			again, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			v2, err := decode(again)
			if err != nil {
				t.Fatalf("re-decode of %s: %v", again, err)
			}
			if !reflect.DeepEqual(normalise(t, v), normalise(t, v2)) {
				t.Fatalf("round trip changed the value:\n%+v\n%+v", v, v2)
			}
		})
	}
	for _, path := range invalid {
		t.Run("invalid/"+filepath.Base(path), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(strings.TrimSuffix(path, ".json") + ".field")
			if err != nil {
				t.Fatal(err)
			}
			_, err = decode(data)
			if err == nil {
				t.Fatal("decoded without error")
			}
			if !errors.Is(err, sentinel) {
				t.Fatalf("error %v does not wrap %v", err, sentinel)
			}
			field := strings.TrimSpace(string(want))
			var fields []string
			collectFields(err, &fields)
			if !slices.Contains(fields, field) {
				t.Fatalf("error %q names fields %q, want %q", err, fields, field)
			}
		})
	}
}

func normalise(t *testing.T, v any) any {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func collectFields(err error, out *[]string) {
	if fe, ok := err.(*FieldError); ok {
		*out = append(*out, fe.Field)
		return
	}
	switch u := err.(type) {
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			collectFields(e, out)
		}
	case interface{ Unwrap() error }:
		collectFields(u.Unwrap(), out)
	}
}

func TestDecodeEventGolden(t *testing.T) {
	golden(t, "events", func(b []byte) (any, error) { return DecodeEvent(b) }, ErrInvalidEvent)
}

func TestDecodeCommandGolden(t *testing.T) {
	golden(t, "commands", func(b []byte) (any, error) { return DecodeCommand(b) }, ErrInvalidCommand)
}

func TestValidateReportsEveryProblem(t *testing.T) {
	_, err := DecodeEvent([]byte(`{"id":"","time":"2026-11-24T09:00:00Z","type":"nope","user_id":"","ip":"x","bytes":-1}`))
	var fields []string
	collectFields(err, &fields)
	for _, want := range []string{"id", "type", "user_id", "ip", "bytes"} {
		if !slices.Contains(fields, want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
}

// TestJSONSchemaMatchesTypes keeps the embedded JSON Schema files and the Go
// types describing the same fields and required fields.
func TestJSONSchemaMatchesTypes(t *testing.T) {
	for file, typ := range map[string]reflect.Type{
		"jsonschema/audit-event.v1.json":    reflect.TypeFor[AuditEvent](),
		"jsonschema/revoke-command.v1.json": reflect.TypeFor[RevokeCommand](),
	} {
		data, err := JSONSchemas.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var schema map[string]any
		if err := json.Unmarshal(data, &schema); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		compareSchema(t, file, schema, typ)
	}
}

func compareSchema(t *testing.T, path string, schema map[string]any, typ reflect.Type) {
	t.Helper()
	for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice {
		if typ.Kind() == reflect.Slice {
			if items, ok := schema["items"].(map[string]any); ok {
				schema = items
			}
		}
		typ = typ.Elem()
	}
	if typ.Kind() != reflect.Struct || typ.String() == "time.Time" {
		return
	}
	if schema["additionalProperties"] != false {
		t.Errorf("%s: additionalProperties must be false", path)
	}
	props, _ := schema["properties"].(map[string]any)
	var goFields []string
	for f := range typ.Fields() {
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		goFields = append(goFields, name)
		sub, ok := props[name].(map[string]any)
		if !ok {
			t.Errorf("%s: Go field %s (%q) missing from the schema", path, f.Name, name)
			continue
		}
		if !strings.Contains(opts, "omit") && name != "rule_version" && name != "summary" && name != "include_downscoped" {
			req, _ := schema["required"].([]any)
			if !slices.Contains(req, any(name)) {
				t.Errorf("%s: %q is required in Go but not in the schema", path, name)
			}
		}
		compareSchema(t, path+"."+name, sub, f.Type)
	}
	for name := range props {
		if !slices.Contains(goFields, name) {
			t.Errorf("%s: schema property %q has no Go field", path, name)
		}
	}
}
