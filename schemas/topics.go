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
	// TopicUnmapped keeps the records a vendor source read whole but has
	// no AuditEvent for (an event type the mapping does not know, an
	// anonymous user), as received, so that none is dropped unseen.
	TopicUnmapped = "audit.unmapped"
)

// Headers of a record on TopicUnmapped: what it is and why it has no
// AuditEvent. Its key is the vendor's id of the record.
const (
	// HeaderUnmappedFormat names the record's format: "box-event",
	// "box-webhook-v2", "okta-log-event", "ocsf".
	HeaderUnmappedFormat = "unmapped-format"
	// HeaderUnmappedType is the vendor's type of the record (Box
	// event_type or webhook trigger, Okta eventType, OCSF class_uid and
	// activity_id).
	HeaderUnmappedType = "unmapped-type"
	// HeaderUnmappedReason says why no AuditEvent was made.
	HeaderUnmappedReason = "unmapped-reason"
	// HeaderUnmappedSource names where the record was read: the stream
	// ("box-events", "okta-logs"), the receiver, a file or an HTTP client.
	HeaderUnmappedSource = "unmapped-source"
	// HeaderUnmappedTime is when the record was set aside (RFC 3339).
	HeaderUnmappedTime = "unmapped-time"
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
