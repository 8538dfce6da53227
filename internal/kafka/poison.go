package kafka

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
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
func deadLetter(m kafka.Message, pe *PoisonError, component string, now time.Time, maxBytes int) kafka.Message {
	headers := make([]kafka.Header, 0, len(m.Headers)+len(dlqHeaderNames))
	for _, h := range m.Headers {
		if !slices.Contains(dlqHeaderNames, h.Key) && !slices.Contains(truncationHeaders, h.Key) {
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
	dm := kafka.Message{Key: m.Key, Value: m.Value, Headers: headers}
	if value, paths := schemas.RedactTokenIDs(m.Value); len(paths) > 0 {
		// A raw token where a token id belongs must not live on in the
		// dead-letter topic: store its fingerprint instead.
		dm.Value = value
		dm.Headers = append(dm.Headers, kafka.Header{Key: schemas.HeaderDLQRedacted, Value: []byte(strings.Join(paths, ","))})
		dm.Headers = appendOriginal(dm.Headers, m.Value)
	}
	return fitDeadLetter(dm, m, maxBytes)
}

// DefaultDLQMaxBytes is the default bound of a dead-letter copy: well
// below Kafka's default message.max.bytes (1,048,588) and kafka-go's
// default batch size (1,048,576), leaving room for the record's framing.
const DefaultDLQMaxBytes = 1_000_000

// minDLQBytes is the least DLQMaxBytes: room for the dead-letter headers,
// a key and a useful head of the value.
const minDLQBytes = 16 << 10

// messageBytes is what a message costs the broker, framing aside.
func messageBytes(m kafka.Message) int {
	n := len(m.Key) + len(m.Value)
	for _, h := range m.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}

// fitDeadLetter cuts dm to maxBytes: the value first (its head is kept,
// with headers giving the original size and SHA-256 so that the message
// can be recognised and fetched from the source topic by offset while it
// is retained), then the original's own headers, then the key. The
// dead-letter headers always stay.
func fitDeadLetter(dm, orig kafka.Message, maxBytes int) kafka.Message {
	if maxBytes <= 0 || messageBytes(dm) <= maxBytes {
		return dm
	}
	dm.Headers = append(dm.Headers, kafka.Header{Key: schemas.HeaderDLQTruncated, Value: []byte("value")})
	dm.Headers = appendOriginal(dm.Headers, orig.Value)
	rest := maxBytes - (messageBytes(dm) - len(dm.Value))
	if rest < 0 {
		// The original's headers (or key) alone are too large: keep the
		// dead-letter ones.
		var kept []kafka.Header
		for _, h := range dm.Headers {
			if slices.Contains(dlqHeaderNames, h.Key) || slices.Contains(truncationHeaders, h.Key) {
				kept = append(kept, h)
			}
		}
		dm.Headers = kept
		if len(dm.Key) > 1024 {
			dm.Key = dm.Key[:1024]
		}
		rest = max(0, maxBytes-(messageBytes(dm)-len(dm.Value)))
	}
	if len(dm.Value) > rest {
		dm.Value = dm.Value[:rest]
	}
	return dm
}

// appendOriginal adds the headers that describe the value as received,
// unless they are there already.
func appendOriginal(headers []kafka.Header, value []byte) []kafka.Header {
	for _, h := range headers {
		if h.Key == schemas.HeaderDLQOriginalSHA256 {
			return headers
		}
	}
	sum := sha256.Sum256(value)
	return append(headers,
		kafka.Header{Key: schemas.HeaderDLQOriginalSize, Value: []byte(strconv.Itoa(len(value)))},
		kafka.Header{Key: schemas.HeaderDLQOriginalSHA256, Value: []byte(hex.EncodeToString(sum[:]))},
	)
}

// truncationHeaders are the headers fitDeadLetter and a redaction add.
var truncationHeaders = []string{schemas.HeaderDLQTruncated, schemas.HeaderDLQOriginalSize, schemas.HeaderDLQOriginalSHA256, schemas.HeaderDLQRedacted}
