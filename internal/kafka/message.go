package kafka

import (
	"context"

	"github.com/segmentio/kafka-go"
)

// Message is a Kafka record as the project reads and writes it.
type Message = kafka.Message

// Header is one header of a Message.
type Header = kafka.Header

// WriteErrors is what a failed write wraps when only some of its messages
// failed: one error per message, nil for those written.
type WriteErrors = kafka.WriteErrors

// ErrMessageSizeTooLarge is the broker's refusal of a record batch larger
// than the topic's max.message.bytes.
const ErrMessageSizeTooLarge = kafka.MessageSizeTooLarge

// Publisher writes messages to Kafka. WriteMessages blocks until every
// message is acknowledged (by all in-sync replicas, for a Writer) or the
// write failed; cancelling ctx stops the wait, but messages already sent
// may still be written. Which topic a message goes to is the
// implementation's business: a Writer with a topic needs messages without
// one. *Writer implements it.
type Publisher interface {
	WriteMessages(ctx context.Context, msgs ...Message) error
}

var _ Publisher = (*Writer)(nil)
