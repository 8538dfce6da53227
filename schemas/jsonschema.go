package schemas

import "embed"

// JSONSchemas holds the JSON Schema (draft 2020-12) of each wire contract:
// jsonschema/audit-event.v1.json and jsonschema/revoke-command.v1.json. They
// document the contracts for producers in other languages; DecodeEvent and
// DecodeCommand enforce the same rules.
//
//go:embed jsonschema/*.json
var JSONSchemas embed.FS
