package kafka

import (
	"slices"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/revoked-dev/revoked/schemas"
)

// PoisonError marks a message that can never be handled, however often it
// is retried: it does not decode, fails validation, carries a forged
// signature, or was refused for good by the system it was meant for. A
// Reader dead-letters such a message and moves on. Build one with Poison
// and detect one with errors.As.
type PoisonError struct {
	// Reason is a short, stable description of why, for operators; it is
	// written to the dead-letter header dlq-reason.
	Reason string
	// Err is the underlying error, if any.
	Err error
}

// Poison marks err as permanent for the message being handled: the Reader
// writes the message to the dead-letter topic with reason and commits it.
// err may be nil.
func Poison(reason string, err error) error {
	return &PoisonError{Reason: reason, Err: err}
}

func (e *PoisonError) Error() string {
	if e.Err == nil {
		return "poison message: " + e.Reason
	}
	return "poison message: " + e.Reason + ": " + e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *PoisonError) Unwrap() error { return e.Err }

// detail is what the dlq-reason header says: the reason and, after a colon,
// the underlying error, cut to a length that keeps headers small.
func (e *PoisonError) detail() string {
	const maxLen = 1024
	s := e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	if len(s) > maxLen {
		s = s[:maxLen]
	}
	return s
}

// dlqHeaderNames are the headers a dead-lettering sets.
var dlqHeaderNames = []string{
	schemas.HeaderDLQReason,
	schemas.HeaderDLQTopic,
	schemas.HeaderDLQPartition,
	schemas.HeaderDLQOffset,
	schemas.HeaderDLQTime,
	schemas.HeaderDLQComponent,
}

// deadLetter builds the message written to the dead-letter topic: the
// received key, value and headers, with dead-letter headers naming why,
// where from and when. Dead-letter headers the message already carried (it
// was dead-lettered before and replayed) are replaced, so that they always
// describe the latest dead-lettering.
func deadLetter(m kafka.Message, pe *PoisonError, component string, now time.Time) kafka.Message {
	headers := make([]kafka.Header, 0, len(m.Headers)+len(dlqHeaderNames))
	for _, h := range m.Headers {
		if !slices.Contains(dlqHeaderNames, h.Key) {
			headers = append(headers, h)
		}
	}
	headers = append(headers,
		kafka.Header{Key: schemas.HeaderDLQReason, Value: []byte(pe.detail())},
		kafka.Header{Key: schemas.HeaderDLQTopic, Value: []byte(m.Topic)},
		kafka.Header{Key: schemas.HeaderDLQPartition, Value: []byte(strconv.Itoa(m.Partition))},
		kafka.Header{Key: schemas.HeaderDLQOffset, Value: []byte(strconv.FormatInt(m.Offset, 10))},
		kafka.Header{Key: schemas.HeaderDLQTime, Value: []byte(now.UTC().Format(time.RFC3339Nano))},
		kafka.Header{Key: schemas.HeaderDLQComponent, Value: []byte(component)},
	)
	return kafka.Message{Key: m.Key, Value: m.Value, Headers: headers}
}
