// Package source is what the vendor sources of producer/ingest share (the
// Box event stream and webhooks, the Okta System Log): the poll loop that
// pages through a vendor's stream, honours its rate limits and backs off
// on failures; a durable checkpoint of where the stream was read to; a
// bounded window of the records recently published, for streams that
// deliver a record more than once; and the sink that publishes what a
// record became: an AuditEvent, a record kept on the unmapped topic, or a
// dead letter.
//
// A record is published before the checkpoint moves past it, and the
// checkpoint holds the window, so a restart resumes where the last
// published page ended, without losing or repeating a record.
package source

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/revoked-dev/revoked/producer/ingest"
	"github.com/revoked-dev/revoked/schemas"
)

// Record is one record of a vendor's stream, as received.
type Record struct {
	// ID is the vendor's unique id of the record (Box event_id, Okta
	// uuid): the key of deduplication and of the unmapped topic.
	ID string
	// Type is the vendor's type of the record (Box event_type, Okta
	// eventType), for logs and the unmapped topic.
	Type string
	// Time is when the event happened by the vendor's clock, zero when the
	// record does not say; it gives the ingestion's lag.
	Time time.Time
	// Raw is the record exactly as received.
	Raw json.RawMessage
}

// Page is what one fetch returned.
type Page struct {
	// Records are the page's records, in the vendor's order.
	Records []Record
	// Next is the cursor to resume from after this page. Empty keeps the
	// cursor the page was fetched with.
	Next string
	// More says that more records are ready: fetch again at once rather
	// than after the poll interval.
	More bool
}

// Fetcher reads a vendor's stream.
//
// Fetch returns the page that starts at cursor; an empty cursor means
// wherever the fetcher is configured to start (a first run). It blocks
// for one request (or a few, to renew credentials); ctx cancels it. An
// error wrapping a *RateLimitedError makes the poller wait as long as it
// says; one marked Permanent stops the poller; any other is retried with
// backoff.
type Fetcher interface {
	Fetch(ctx context.Context, cursor string) (Page, error)
}

// Mapper turns a record into an AuditEvent. An error wrapping
// ingest.ErrUnmapped (see ingest.Unmapped) keeps the record on the
// unmapped topic; any other error dead-letters it. The event is validated
// after the mapper returns it.
type Mapper func(Record) (schemas.AuditEvent, error)

// RateLimitedError is a vendor's answer that the client must wait before
// its next request: a 429 with Retry-After, or a rate limit window spent.
type RateLimitedError struct {
	// Wait is how long to wait from now.
	Wait time.Duration
	// Reason says what the vendor answered, for the log.
	Reason string
}

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("rate limited for %s: %s", e.Wait, e.Reason)
}

// permanentError marks an error that retrying cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as one that retrying cannot fix: credentials the
// vendor refuses, a request it calls malformed. The poller stops on it.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// IsPermanent reports whether err was marked by Permanent.
func IsPermanent(err error) bool {
	_, ok := errors.AsType[*permanentError](err)
	return ok
}

// ErrUnmapped is ingest.ErrUnmapped, which mappers wrap.
var ErrUnmapped = ingest.ErrUnmapped
