package stack_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/revoked-dev/revoked/consumer/audit"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/kafka/kafkatest"
	"github.com/revoked-dev/revoked/schemas"
)

// TestRawTokenIDIsRefused sends the pipeline events whose token ids are
// raw tokens, as a misconfigured source would: a real token of the token
// API (43 random base64url characters) and an Ory access token. The
// detector dead-letters both with a reason naming the field, and neither
// value appears in any log line, in the commands or dead-letter topics,
// in the audit trail, behind the analyst API or in its export; the
// dead-letter copies hold the tokens' fingerprints instead. A brute force
// in the same partition afterwards shows the pipeline went on.
func TestRawTokenIDIsRefused(t *testing.T) {
	for _, backend := range []string{"chdb", "clickhouse"} {
		t.Run(backend, func(t *testing.T) {
			s, logs, written := startStack(t, backend)
			k := &kafkatest.Cluster{Brokers: s.Brokers}
			user := "u-leaky-" + backend
			raw, tokenID := issue(t, s, user)
			const ory = "ory_at_bzzHIqUZJ1XoVzvdcLnW8a-Bwc6bBn3OI6xGf3X8S5E.MLgyrXqbLL4QHGhyTcDDzlJ5qFQUI-YgGIzCo0Nl-XE"

			now := time.Now()
			msgs := []kafkax.Message{
				knownFromHome(user, now),
				event(user+"-raw", "token.used", user, now.Add(-20*time.Second), fmt.Sprintf(`,"token_id":%q`, raw)),
				event(user+"-ory", "token.exchanged", user, now.Add(-19*time.Second), fmt.Sprintf(`,"token_id":%q,"parent_token_id":%q`, tokenID, ory)),
			}
			for i := range 6 {
				msgs = append(msgs, event(fmt.Sprintf("%s-f%d", user, i), "login.failure", user, now.Add(time.Duration(i-10)*time.Second), ""))
			}
			msgs = append(msgs, event(user+"-ok", "login.success", user, now, fmt.Sprintf(`,"token_id":%q`, tokenID)))
			k.Produce(t, schemas.TopicAuditEvents, msgs...)

			dlq := k.WaitRecords(t, schemas.TopicDLQ, 2)
			for i, field := range []string{"token_id", "parent_token_id"} {
				m := dlq[i]
				if reason := header(m, schemas.HeaderDLQReason); !strings.Contains(reason, fmt.Sprintf("field %q: looks like a raw token", field)) {
					t.Errorf("dead letter %d: reason %q does not name %s", i, reason, field)
				}
				if got := header(m, schemas.HeaderDLQRedacted); got != field {
					t.Errorf("dead letter %d: dlq-redacted %q, want %q", i, got, field)
				}
			}
			if !strings.Contains(string(dlq[0].Value), schemas.Fingerprint(raw)) || !strings.Contains(string(dlq[1].Value), schemas.Fingerprint(ory)) {
				t.Errorf("dead letters do not hold the fingerprints:\n%s\n%s", dlq[0].Value, dlq[1].Value)
			}

			waitRow(t, written, "the brute force after them to be revoked", userStep(user, schemas.StepConfirmed))
			waitHistory(t, s, user, schemas.StepConfirmed)

			var haystack strings.Builder
			haystack.WriteString(logs.String())
			// audit.events holds what the source sent; everything the
			// pipeline wrote is searched.
			for _, topic := range []string{schemas.TopicRevokeCommands, schemas.TopicDLQ} {
				for _, m := range k.Records(t, topic) {
					haystack.Write(m.Key)
					haystack.Write(m.Value)
					for _, h := range m.Headers {
						haystack.Write(h.Value)
					}
				}
			}
			all, err := s.Store.History(context.Background(), audit.Query{Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			_ = json.NewEncoder(&haystack).Encode(all)
			for _, path := range []string{"/api/v1/revocations?user_id=" + user, "/api/v1/export?format=csv", "/api/v1/export?format=jsonl", "/api/v1/timeline?user_id=" + user} {
				resp, err := http.Get(s.HTTPURL + path)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("GET %s: %d %s", path, resp.StatusCode, body)
				}
				haystack.Write(body)
			}
			for name, secret := range map[string]string{"token API token": raw, "Ory token": ory, "Ory token's signature": ory[len(ory)-43:]} {
				if strings.Contains(haystack.String(), secret) {
					t.Errorf("the %s appears in logs, Kafka, the audit trail, the API or the export", name)
				}
			}
			if !strings.Contains(haystack.String(), tokenID) || !strings.Contains(logs.String(), "looks like a raw token") {
				t.Error("the fingerprint or the refusal is nowhere: the scan looked at nothing")
			}
		})
	}
}
