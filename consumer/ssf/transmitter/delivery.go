package transmitter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/revoked-dev/revoked/internal/retry"
	"github.com/revoked-dev/revoked/internal/ssf"

	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/schemas"
)

// signedSET is a SET signed for one stream.
type signedSET struct {
	eventType string
	jti       string
	compact   string
}

// position is where a revocation record sits on its topic.
type position struct {
	topic     string
	partition int32
	offset    int64
}

// handler is the Kafka handler of a stream's reader: each revocation
// record becomes the stream's SETs, pushed (returning once the receiver
// took them or refused them, the outcome rows queued) or queued for polls
// (returning a kafkax.Later that waits for the acknowledgements). The
// record is committed only after that, so a SET is never lost: a stop or
// crash first leaves the record to be read again, and its SETs, being
// deterministic, are the same SETs again.
func (t *Transmitter) handler(r *runner) kafkax.Handler {
	return func(ctx context.Context, m kafkax.Message) error {
		rev, err := DecodeRevocation(m)
		if err != nil {
			return kafkax.Poison("ssf transmitter: "+err.Error(), err)
		}
		s, ok := t.streams.get(r.streamID)
		if !ok || rev.Time.Before(s.CreatedAt) {
			// Deleted, or a revocation from before the stream existed.
			return nil
		}
		sets, outcome := t.setsFor(s, rev)
		if outcome != "" {
			for _, e := range t.plan(rev) {
				t.metrics.sets.WithLabelValues(s.ID, eventName(e.eventType), outcome).Inc()
			}
			return nil
		}
		pos := position{topic: m.Topic, partition: int32(m.Partition), offset: m.Offset}
		if r.queue != nil {
			return t.queueForPoll(r, s, rev, pos, sets)
		}
		rows := make([]schemas.AuditRow, 0, len(sets))
		for _, set := range sets {
			res, err := t.push(ctx, s.ID, set)
			if errors.Is(err, errNoStream) {
				return nil
			}
			if err != nil {
				return err
			}
			rows = append(rows, t.settled(s.ID, rev, pos, set, res.delivered, res.detail, res.attempts))
		}
		return t.record(rows)
	}
}

// setsFor signs the SETs the stream gets about rev, or says why it gets
// none (outcomeDropped, outcomeSkipped).
func (t *Transmitter) setsFor(s Stream, rev schemas.AuditRow) ([]signedSET, string) {
	if s.Status == StatusDisabled {
		return nil, outcomeDropped
	}
	sub, ok := t.cfg.Subject.subject(rev)
	if !ok || s.removed(sub) {
		return nil, outcomeSkipped
	}
	delivered := s.delivered()
	var out []signedSET
	for _, p := range t.plan(rev) {
		if !contains(delivered, p.eventType) {
			continue
		}
		jti := setID(s.ID, rev.CommandID, p.eventType)
		claims, err := ssf.NewClaims(t.cfg.Issuer, jti, rev.Time, s.Audience, txn(rev), sub, p.eventType, p.payload)
		if err != nil {
			t.log.Error().Err(err).Str("stream_id", s.ID).Msg("building a SET")
			continue
		}
		compact, err := t.signer.Sign(claims)
		if err != nil {
			t.log.Error().Err(err).Str("stream_id", s.ID).Msg("signing a SET")
			continue
		}
		out = append(out, signedSET{eventType: p.eventType, jti: jti, compact: compact})
	}
	if len(out) == 0 {
		return nil, outcomeSkipped
	}
	return out, ""
}

// queueForPoll puts the SETs in the stream's poll queue and returns a
// kafkax.Later that waits until the receiver acknowledged (or reported)
// each, then records the outcomes.
func (t *Transmitter) queueForPoll(r *runner, s Stream, rev schemas.AuditRow, pos position, sets []signedSET) error {
	waits := make([]<-chan pollResult, len(sets))
	for i, set := range sets {
		ch, err := r.queue.enqueue(set.jti, set.compact, true)
		if err != nil {
			return err
		}
		waits[i] = ch
	}
	t.metrics.outstanding.WithLabelValues(s.ID).Set(float64(r.queue.outstanding()))
	return kafkax.Later(func(ctx context.Context) error {
		rows := make([]schemas.AuditRow, 0, len(sets))
		for i, ch := range waits {
			select {
			case res, ok := <-ch:
				if !ok {
					return errQueueClosed
				}
				detail := fmt.Sprintf("%s SET %s acknowledged by a poll of stream %s", eventName(sets[i].eventType), sets[i].jti, s.ID)
				if !res.acked {
					detail = fmt.Sprintf("%s SET %s refused by the receiver of stream %s (setErrs): %s: %s",
						eventName(sets[i].eventType), sets[i].jti, s.ID, res.err.Err, cut(res.err.Description, 256))
				}
				rows = append(rows, t.settled(s.ID, rev, pos, sets[i], res.acked, detail, 1))
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		t.metrics.outstanding.WithLabelValues(s.ID).Set(float64(r.queue.outstanding()))
		if err := t.record(rows); err != nil {
			var le *kafkax.LaterError
			if errors.As(err, &le) {
				return le.Wait(ctx)
			}
			return err
		}
		return nil
	})
}

// settled logs and counts a SET's outcome and returns its audit row: the
// revocation's row with step signalled or signal_failed, on the
// transmitter's chain. Its id is derived from the revocation, the stream
// and the event, so the row of a SET delivered again is the same row.
func (t *Transmitter) settled(streamID string, rev schemas.AuditRow, pos position, set signedSET, delivered bool, detail string, attempts int) schemas.AuditRow {
	step, outcome := schemas.StepSignalled, outcomeSignalled
	if !delivered {
		step, outcome = schemas.StepSignalFailed, outcomeFailed
	}
	now := t.clock.Now().UTC()
	t.metrics.sets.WithLabelValues(streamID, eventName(set.eventType), outcome).Inc()
	if delivered {
		t.metrics.latency.Observe(now.Sub(rev.Time).Seconds())
	}
	// Per-SET lines are debug; a refusal or a give-up is an error.
	ev := t.log.Debug()
	if !delivered {
		ev = t.log.Error()
	}
	ev.Str("stream_id", streamID).Str("event", eventName(set.eventType)).Str("jti", set.jti).
		Str("command_id", rev.CommandID).Str("user_id", rev.UserID).Str("outcome", outcome).Int("attempts", attempts).
		Str("detail", detail).Msg("SET delivery settled")

	r := rev
	r.RowID = schemas.AuditRowID(rev.CommandID, step, "ssf:"+streamID+":"+eventName(set.eventType), pos.partition, pos.offset)
	r.Step, r.Time, r.Actor, r.Approver = step, now, t.cfg.Actor, ""
	r.Detail = cut(detail, 1024)
	r.IdPStatus, r.IdPResponse, r.TokensRevoked, r.Proof = 0, "", 0, ""
	r.Attempts = uint32(max(attempts, 0))
	r.DetectLatencyMs, r.RevokeLatencyMs = 0, 0
	r.SourceTopic, r.SourcePartition, r.SourceOffset = pos.topic, pos.partition, pos.offset
	r.Chain, r.Seq, r.PrevHash, r.Hash = "", 0, "", ""
	return r
}

// record queues outcome rows on the transmitter's audit chain and returns
// a kafkax.Later waiting for them, or nil when there is no audit store
// (the outcomes are then only logged and counted).
func (t *Transmitter) record(rows []schemas.AuditRow) error {
	if t.writer == nil || len(rows) == 0 {
		return nil
	}
	wait, err := t.writer.Enqueue(rows...)
	if err != nil {
		return fmt.Errorf("recording SET outcomes: %w", err)
	}
	return kafkax.Later(wait)
}

// pushResult is what became of one SET pushed.
type pushResult struct {
	delivered bool
	attempts  int
	detail    string
}

// push delivers a SET to the stream's endpoint (RFC 8935): a POST of the
// SET as application/secevent+jwt, with the stream's authorization
// header. It returns once the receiver took it (2xx; 202 is what RFC
// 8935 prescribes), refused it, or MaxAttempts ran out; it retries the
// rest with backoff on the transmitter's clock. An error means ctx ended
// (errNoStream: the stream is gone) and nothing is settled.
func (t *Transmitter) push(ctx context.Context, streamID string, set signedSET) (pushResult, error) {
	return t.pushAttempts(ctx, streamID, set, t.cfg.Push.MaxAttempts)
}

// pushAttempts is push with its own bound on attempts (0: none).
func (t *Transmitter) pushAttempts(ctx context.Context, streamID string, set signedSET, maxAttempts int) (pushResult, error) {
	sched := retry.New(t.cfg.Push.RetryMin, t.cfg.Push.RetryMax)
	for attempt := 1; ; attempt++ {
		s, ok := t.streams.get(streamID)
		if !ok {
			return pushResult{}, errNoStream
		}
		status, body, after, err := t.post(ctx, s.Delivery, set.compact)
		code := strconv.Itoa(status)
		if err != nil {
			code = "error"
		}
		t.metrics.pushes.WithLabelValues(streamID, code).Inc()
		what := fmt.Sprintf("%s SET %s pushed to stream %s (%s)", eventName(set.eventType), set.jti, streamID, s.Delivery.EndpointURL)
		switch {
		case err != nil && ctx.Err() != nil:
			return pushResult{}, ctx.Err()
		case err == nil && status >= 200 && status < 300:
			return pushResult{delivered: true, attempts: attempt, detail: fmt.Sprintf("%s: HTTP %d after %d attempt(s)", what, status, attempt)}, nil
		case err == nil && refused(status):
			return pushResult{attempts: attempt, detail: fmt.Sprintf("%s: refused, HTTP %d%s", what, status, describeRefusal(body))}, nil
		}
		reason := fmt.Sprintf("HTTP %d", status)
		if err != nil {
			reason = err.Error()
		}
		if maxAttempts > 0 && attempt >= maxAttempts {
			return pushResult{attempts: attempt, detail: fmt.Sprintf("%s: gave up after %d attempts, last: %s", what, attempt, cut(reason, 256))}, nil
		}
		wait := sched.Next()
		if after > wait {
			wait = min(after, t.cfg.Push.RetryMax)
		}
		t.log.Warn().Str("stream_id", streamID).Str("jti", set.jti).Str("endpoint", s.Delivery.EndpointURL).
			Str("reason", cut(reason, 256)).Int("attempt", attempt).Dur("retry_in", wait).Msg("push failed; retrying")
		if !t.sleep(ctx, wait) {
			return pushResult{}, ctx.Err()
		}
	}
}

// refused reports whether an answer means the receiver will never take
// this SET, so retrying cannot help: 400 is RFC 8935's refusal of an
// invalid SET (with an error body), 413 and 415 refuse its size and media
// type. Every other answer may change: 401 and 403 when the receiver's
// credentials are fixed, 404 when its endpoint is back, 408, 429 and 5xx
// by themselves; those are retried, and the SET waits in Kafka meanwhile.
func refused(status int) bool {
	return status == http.StatusBadRequest || status == http.StatusRequestEntityTooLarge || status == http.StatusUnsupportedMediaType
}

// describeRefusal renders an RFC 8935 error body, if there is one.
func describeRefusal(body []byte) string {
	var e ssf.ErrorBody
	if json.Unmarshal(body, &e) != nil || e.Err == "" {
		return ""
	}
	return fmt.Sprintf(": %s: %s", cut(e.Err, 64), cut(e.Description, 256))
}

// post makes one push and returns the status, the first KiB of the
// body and, for 429 and 503, the wait Retry-After asks for.
func (t *Transmitter) post(ctx context.Context, d Delivery, set string) (int, []byte, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, t.cfg.Push.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.EndpointURL, strings.NewReader(set))
	if err != nil {
		return 0, nil, 0, err
	}
	req.Header.Set("Content-Type", ssf.ContentTypeSET)
	req.Header.Set("Accept", "application/json")
	if d.AuthorizationHeader != "" {
		req.Header.Set("Authorization", d.AuthorizationHeader)
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return 0, nil, 0, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	var after time.Duration
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		if secs, err := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After"))); err == nil && secs > 0 {
			after = time.Duration(secs) * time.Second
		}
	}
	return resp.StatusCode, bytes.TrimSpace(body), after, nil
}

// sleep waits d on the transmitter's clock, or reports false when ctx
// ends first.
func (t *Transmitter) sleep(ctx context.Context, d time.Duration) bool {
	tm := t.clock.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.Chan():
		return true
	case <-ctx.Done():
		return false
	}
}
