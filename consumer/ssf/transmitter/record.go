package transmitter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/revoked-dev/revoked/consumer/service"
	"github.com/revoked-dev/revoked/internal/config"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/schemas"
)

// DefaultTopic is the topic where the consumer records the revocations
// it carried out and the transmitter reads them.
const DefaultTopic = "revoke.executed"

// SchemaRevocationV1 names a record of the revocations topic in its
// schema header: the value is the JSON of the revocation's outcome row,
// a schemas.AuditRow (confirmed or unconfirmed) as the consumer queued it
// for its trail (without chain fields).
const SchemaRevocationV1 = "revocation/v1"

// PublishConfig is the consumer's side: whether it records its
// revocations for the transmitter, and where.
type PublishConfig struct {
	Enabled bool   `flag:"publish" env:"PUBLISH" yaml:"publish" usage:"record every revocation carried out on the revocations topic, for the Shared Signals transmitter"`
	Topic   string `flag:"topic" env:"TOPIC" yaml:"topic" usage:"topic of the revocations carried out (read by consumer ssf-transmitter)"`
}

// DefaultPublishConfig is off, on DefaultTopic.
func DefaultPublishConfig() PublishConfig { return PublishConfig{Topic: DefaultTopic} }

// Validate reports every problem at once.
func (c PublishConfig) Validate() error {
	var p config.Problems
	p.Check(!c.Enabled || c.Topic != "", "topic", "required when publishing")
	return p.Err()
}

// Publisher records revocations on the revocations topic: one message per
// outcome row, keyed by the target's key (the user id where there is
// one), so one user's revocations stay in order. It implements
// service.RevocationSink.
type Publisher struct {
	pub   kafkax.Publisher
	topic string
}

var _ service.RevocationSink = (*Publisher)(nil)

// NewPublisher returns a Publisher writing through pub (a kafkax.Writer
// without a topic of its own) to topic.
func NewPublisher(pub kafkax.Publisher, topic string) (*Publisher, error) {
	if pub == nil || topic == "" {
		return nil, errors.New("transmitter: a publisher needs a Kafka writer and a topic")
	}
	return &Publisher{pub: pub, topic: topic}, nil
}

// Revoked implements service.RevocationSink: it returns once Kafka
// acknowledged every row.
func (p *Publisher) Revoked(ctx context.Context, rows []schemas.AuditRow) error {
	msgs := make([]kafkax.Message, 0, len(rows))
	for _, r := range rows {
		m, err := RevocationMessage(p.topic, r)
		if err != nil {
			return err
		}
		msgs = append(msgs, m)
	}
	return p.pub.WriteMessages(ctx, msgs...)
}

// RevocationMessage encodes one outcome row as a message of topic.
func RevocationMessage(topic string, r schemas.AuditRow) (kafkax.Message, error) {
	// The chain fields are the trail's business; a record carries what
	// happened, not where it sits in a chain.
	r.Chain, r.Seq, r.PrevHash, r.Hash = "", 0, "", ""
	value, err := json.Marshal(r)
	if err != nil {
		return kafkax.Message{}, fmt.Errorf("encoding revocation %s: %w", r.CommandID, err)
	}
	key := r.UserID
	for _, k := range []string{r.TokenID, r.SessionID, r.ClientID, r.CommandID} {
		if key == "" {
			key = k
		}
	}
	return kafkax.Message{
		Topic: topic, Key: []byte(key), Value: value,
		Headers: []kafkax.Header{{Key: schemas.HeaderSchema, Value: []byte(SchemaRevocationV1)}},
	}, nil
}

// DecodeRevocation reads a record of the revocations topic. A record that
// is not one, or whose step is not a revocation, is an error: the reader
// dead-letters it.
func DecodeRevocation(m kafkax.Message) (schemas.AuditRow, error) {
	var r schemas.AuditRow
	for _, h := range m.Headers {
		if h.Key == schemas.HeaderSchema && string(h.Value) != SchemaRevocationV1 {
			return r, fmt.Errorf("schema %q is not %s", h.Value, SchemaRevocationV1)
		}
	}
	if len(m.Value) > schemas.MaxCommandBytes*2 {
		return r, fmt.Errorf("revocation record of %d bytes", len(m.Value))
	}
	if err := json.Unmarshal(m.Value, &r); err != nil {
		return r, fmt.Errorf("decoding revocation record: %w", err)
	}
	switch {
	case r.CommandID == "":
		return r, errors.New("revocation record without a command id")
	case !r.Step.Revoked():
		return r, fmt.Errorf("record of step %q is not a revocation", r.Step)
	case r.Time.IsZero():
		return r, errors.New("revocation record without a time")
	}
	return r, nil
}
