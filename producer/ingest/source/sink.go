package source

import (
	"context"
	"errors"
	"fmt"
	"time"

	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/producer/ingest"
	"github.com/revoked-dev/revoked/schemas"
)

// Outcome is what a record became.
type Outcome int

// Outcomes of Sink.Route.
const (
	// Published: an AuditEvent on the events topic.
	Published Outcome = iota
	// Unmapped: the record, as received, on the unmapped topic.
	Unmapped
	// DeadLettered: the record, as received, on the dead-letter topic,
	// because its mapping failed or made an invalid event.
	DeadLettered
)

func (o Outcome) String() string {
	switch o {
	case Published:
		return "published"
	case Unmapped:
		return "unmapped"
	case DeadLettered:
		return "dead_lettered"
	}
	return "unknown"
}

// Sink turns records into the messages that carry them and publishes
// them. It is safe for concurrent use if its publisher and enricher are.
type Sink struct {
	cfg    ingest.Config
	pub    ingest.Publisher
	format string
	source string
	enrich func(*schemas.AuditEvent)
	now    func() time.Time
}

// NewSink returns a sink publishing through pub to the topics of cfg
// (Topic, DLQTopic, UnmappedTopic). format names the records' format in
// the unmapped topic's headers ("box-event"), source where they were read
// ("box-events"). enrich, when not nil, adds address context to every
// event before it is validated (internal/enrich's Enricher.Enrich).
func NewSink(cfg ingest.Config, pub ingest.Publisher, format, source string, enrich func(*schemas.AuditEvent)) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if pub == nil {
		return nil, errors.New("source: nil publisher")
	}
	return &Sink{cfg: cfg, pub: pub, format: format, source: source, enrich: enrich, now: time.Now}, nil
}

// Route maps rec with m and returns the message to publish and what the
// record became, with the reason when it did not become an event.
func (s *Sink) Route(rec Record, m Mapper) (kafkax.Message, Outcome, string) {
	ev, err := m(rec)
	if errors.Is(err, ErrUnmapped) {
		return ingest.UnmappedMessage(s.cfg.UnmappedTopic, s.format, s.source, rec.ID, rec.Raw, err, s.now()), Unmapped, err.Error()
	}
	if err == nil {
		if s.enrich != nil {
			s.enrich(&ev)
		}
		err = ev.Validate()
	}
	if err == nil {
		value, merr := ev.AppendJSON(nil)
		if merr == nil {
			return kafkax.Message{
				Topic:   s.cfg.Topic,
				Key:     ev.Key(),
				Value:   value,
				Headers: []kafkax.Header{{Key: schemas.HeaderSchema, Value: []byte(schemas.SchemaAuditEventV1)}},
			}, Published, ""
		}
		err = fmt.Errorf("encoding event: %w", merr)
	}
	reason := fmt.Sprintf("%s record %s (%s): %s", s.format, rec.ID, rec.Type, ingest.Describe(err))
	return kafkax.Message{
		Topic: s.cfg.DLQTopic,
		Key:   []byte(rec.ID),
		Value: append([]byte(nil), rec.Raw...),
		Headers: []kafkax.Header{
			{Key: schemas.HeaderDLQReason, Value: []byte(reason)},
			{Key: schemas.HeaderDLQTopic, Value: []byte(s.cfg.Topic)},
			{Key: schemas.HeaderDLQComponent, Value: []byte(ingest.Component)},
			{Key: schemas.HeaderDLQTime, Value: []byte(s.now().UTC().Format(time.RFC3339Nano))},
			{Key: ingest.HeaderDLQSource, Value: []byte(s.source)},
		},
	}, DeadLettered, reason
}

// Publish writes msgs in one batch; see ingest.Publisher. A nil error
// means every message is acknowledged.
func (s *Sink) Publish(ctx context.Context, msgs []kafkax.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	if err := s.pub.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("publishing %d records of %s: %w", len(msgs), s.source, err)
	}
	return nil
}
