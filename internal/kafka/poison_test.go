package kafka

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/revoked-dev/revoked/schemas"
)

// A message refused for a raw token in a token id field is dead-lettered
// with the token replaced by its fingerprint, the fields named, and the
// original's size and SHA-256; other messages are kept as received.
func TestDeadLetterRedactsRawTokenIDs(t *testing.T) {
	const raw = "ory_at_bzzHIqUZJ1XoVzvdcLnW8a-Bwc6bBn3OI6xGf3X8S5E.MLgyrXqbLL4QHGhyTcDDzlJ5qFQUI-YgGIzCo0Nl-XE"
	value := []byte(`{"id":"ev-1","time":"2026-11-24T09:00:00Z","type":"token.used","user_id":"u","token_id":"` + raw + `","bytes":12}`)
	m := kafka.Message{Topic: "audit.events", Partition: 1, Offset: 7, Key: []byte("u"), Value: value}
	pe := Poison("invalid audit event", nil)
	dm := deadLetter(m, pe.(*PoisonError), "detector", time.Unix(0, 0), DefaultDLQMaxBytes)
	if bytes.Contains(dm.Value, []byte(raw)) || bytes.Contains(dm.Value, []byte("bzzHIqUZ")) {
		t.Fatalf("dead letter holds the raw token: %s", dm.Value)
	}
	if !bytes.Contains(dm.Value, []byte(schemas.Fingerprint(raw))) || !bytes.Contains(dm.Value, []byte(`"bytes":12`)) {
		t.Errorf("redacted value %s lacks the fingerprint or the other fields", dm.Value)
	}
	sum := sha256.Sum256(value)
	want := map[string]string{
		schemas.HeaderDLQRedacted:       "token_id",
		schemas.HeaderDLQOriginalSHA256: hex.EncodeToString(sum[:]),
		schemas.HeaderDLQReason:         "invalid audit event",
	}
	for k, v := range want {
		if got := headerValue(dm, k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}

	clean := kafka.Message{Topic: "audit.events", Value: []byte(`{"id":"ev-2","token_id":"3f2b8c1e-6d4a-4b7e-9c2d-1a5e7f9b0c3d","colour":"red"}`)}
	dm = deadLetter(clean, pe.(*PoisonError), "detector", time.Unix(0, 0), DefaultDLQMaxBytes)
	if !bytes.Equal(dm.Value, clean.Value) || headerValue(dm, schemas.HeaderDLQRedacted) != "" {
		t.Errorf("a message without a raw token was changed: %s", dm.Value)
	}
}

func headerValue(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
