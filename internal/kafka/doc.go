// Package kafka is the project's Kafka plumbing on top of
// github.com/segmentio/kafka-go: a Reader that runs a handler over a
// consumer group with at-least-once delivery, ordered per partition, and
// dead-lettering of poison messages; a Writer that produces durably; topic
// creation; and TLS and SASL settings shared by all of them.
//
// Import it under another name, for example kafkax, next to kafka-go:
//
//	import (
//		"github.com/segmentio/kafka-go"
//		kafkax "github.com/revoked-dev/revoked/internal/kafka"
//	)
//
// The embedded broker for local runs is in the broker subpackage and the
// test helper in kafkatest.
package kafka
