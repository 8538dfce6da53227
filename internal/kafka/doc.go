// Package kafka is the project's Kafka plumbing on top of
// github.com/segmentio/kafka-go: a Reader that runs a handler over a
// consumer group with at-least-once delivery, ordered per partition, and
// dead-lettering of poison messages; a Writer that produces durably; a
// Client that reads partitions outside any group (ranges, offsets by time,
// whole small topics, a tail) and makes the admin calls the project needs;
// and TLS and SASL settings shared by all of them. Message, Header and
// Publisher are the types the rest of the module writes and reads.
//
// It is the only package of the module (with its subpackages) that imports
// kafka-go; the depguard rule "kafka" in .golangci.yml keeps it so. Import
// it as kafkax:
//
//	import kafkax "github.com/revoked-dev/revoked/internal/kafka"
//
// The embedded broker for local runs is in the broker subpackage and the
// test helper in kafkatest.
package kafka
