package schemas

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// schemaOnlyMisses are the fixtures whose fault no JSON Schema keyword can
// express, with the reason; the Go decoder refuses them, a validator of
// the published schema accepts them.
var schemaOnlyMisses = map[string]string{
	"commands/invalid/expires_before_issue.json": "expires_at must be after issued_at: JSON Schema cannot compare two values",
	// LooksRandom measures a value's Shannon entropy, mix of letter cases
	// and share of words; no JSON Schema keyword computes a statistic.
	"events/invalid/random_token_id.json":       "token_id looks random (LooksRandom): JSON Schema cannot measure entropy",
	"commands/invalid/random_target_token.json": "target.token_id looks random (LooksRandom): JSON Schema cannot measure entropy",
	// Context entries name evidence events: a value of one property must
	// be among the values of another.
	"commands/invalid/context_not_evidence.json": "reason.context[].event_id must be one of reason.evidence: JSON Schema cannot relate two values",
}

// Every fixture gets the same verdict from the Go decoder and from an
// outside JSON Schema validator (santhosh-tekuri/jsonschema, formats
// asserted) of the embedded schema files: what one accepts, the other
// accepts, but for the faults listed in schemaOnlyMisses.
func TestFixturesAgreeWithJSONSchema(t *testing.T) {
	for _, c := range []struct {
		dir, schema string
		decode      func([]byte) error
	}{
		{"events", "jsonschema/audit-event.v1.json", func(b []byte) error { _, err := DecodeEvent(b); return err }},
		{"commands", "jsonschema/revoke-command.v1.json", func(b []byte) error { _, err := DecodeCommand(b); return err }},
	} {
		raw, err := JSONSchemas.ReadFile(c.schema)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		comp := jsonschema.NewCompiler()
		comp.AssertFormat()
		if err := comp.AddResource(c.schema, doc); err != nil {
			t.Fatal(err)
		}
		sch, err := comp.Compile(c.schema)
		if err != nil {
			t.Fatalf("%s does not compile: %v", c.schema, err)
		}
		paths, _ := filepath.Glob(filepath.Join("testdata", c.dir, "*", "*.json"))
		if len(paths) < 10 {
			t.Fatalf("only %d fixtures under testdata/%s", len(paths), c.dir)
		}
		for _, path := range paths {
			rel := strings.TrimPrefix(filepath.ToSlash(path), "testdata/")
			t.Run(rel, func(t *testing.T) {
				data, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				goErr := c.decode(data)
				var schemaErr error
				if inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data)); err != nil {
					schemaErr = err
				} else {
					schemaErr = sch.Validate(inst)
				}
				wantValid := strings.Contains(rel, "/valid/")
				if (goErr == nil) != wantValid {
					t.Errorf("Go decoder: %v", goErr)
				}
				if why, ok := schemaOnlyMisses[rel]; ok {
					if schemaErr != nil {
						t.Errorf("listed as beyond the schema (%s), but the validator refuses it: %v", why, schemaErr)
					}
					return
				}
				if (schemaErr == nil) != (goErr == nil) {
					t.Errorf("verdicts differ: Go decoder %v; JSON Schema validator %v", goErr, errors.Unwrap(schemaErr))
				}
			})
		}
	}
}
