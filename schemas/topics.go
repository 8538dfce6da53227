// Package schemas holds the wire contracts of the revocation pipeline: the
// AuditEvent and RevokeCommand types with strict decoding, their JSON Schema
// files, command signing and token sealing, the audit row, topic and header
// names. It imports nothing else of the module.
package schemas

// Default topic names. Every component lets them be configured.
const (
	TopicAuditEvents    = "audit.events"
	TopicRevokeCommands = "revoke.commands"
	TopicDLQ            = "revoke.dlq"
)

// Kafka header names.
const (
	// HeaderSchema names the schema of the value, e.g. "revoke-command/v1".
	HeaderSchema = "schema"
	// HeaderKeyID names the Ed25519 key that signed a command.
	HeaderKeyID = "sig-key-id"
	// HeaderSignature is the base64 (std, padded) Ed25519 signature over the
	// exact value bytes.
	HeaderSignature = "sig"

	// Dead-letter headers: why a message was dead-lettered and where it came from.
	HeaderDLQReason    = "dlq-reason"
	HeaderDLQTopic     = "dlq-source-topic"
	HeaderDLQPartition = "dlq-source-partition"
	HeaderDLQOffset    = "dlq-source-offset"
	HeaderDLQTime      = "dlq-time"
	HeaderDLQComponent = "dlq-component"
	// A dead-letter copy too large for the broker is stored with its
	// value cut: dlq-truncated says what was cut, dlq-original-size and
	// dlq-original-sha256 describe the value as received.
	HeaderDLQTruncated      = "dlq-truncated"
	HeaderDLQOriginalSize   = "dlq-original-size"
	HeaderDLQOriginalSHA256 = "dlq-original-sha256"
	// A dead-letter copy whose value held a raw token where a token id
	// belongs is stored with that token replaced by its fingerprint
	// (RedactTokenIDs): dlq-redacted names the fields replaced, and
	// dlq-original-size and dlq-original-sha256 describe the value as
	// received.
	HeaderDLQRedacted = "dlq-redacted"
)

// Schema identifiers carried in HeaderSchema.
const (
	SchemaAuditEventV1    = "audit-event/v1"
	SchemaRevokeCommandV1 = "revoke-command/v1"
)
