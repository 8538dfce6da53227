package ingest_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/kafka/kafkatest"
	"github.com/revoked-dev/revoked/producer/ingest"
	"github.com/revoked-dev/revoked/schemas"
)

func header(m kafkax.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// TestIngestFileThroughKafka ingests a file with good and malformed lines
// through the real Kafka writer into the embedded broker.
func TestIngestFileThroughKafka(t *testing.T) {
	c := kafkatest.New(t, schemas.TopicAuditEvents, schemas.TopicDLQ)
	w, err := kafkax.NewWriter(c.WriterConfig(""), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })

	lines := []string{
		`{"id":"e1","time":"2026-03-01T10:00:00Z","type":"login.success","user_id":"alice","ip":"198.51.100.4"}`,
		`{"id":"e2","time":"2026-03-01T10:00:01Z","type":"token.issued","user_id":"bob","token_id":"tfp_abc","scopes":["files.read"]}`,
		`{"id":"e3","time":"2026-03-01T10:00:02Z","type":"login.success","user_id":"carol","geo":{"country":"DE","lat":91,"lon":13}}`,
		`{"id":"e4","time":"not a time","type":"login.success","user_id":"dave"}`,
		`{"id":"e5","time":"2026-03-01T10:00:03Z","type":"file.download","user_id":"alice","bytes":1024,"resource":{"type":"file","id":"f1"}}`,
		`{"id":"e6","time":"2026-03-01T10:00:04Z","type":"teleport","user_id":"erin"}`,
		`{"id":"e7"`,
	}
	path := filepath.Join(t.TempDir(), "events.jsonl")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := ingest.DefaultConfig()
	cfg.BatchSize = 3
	in, err := ingest.New(cfg, w, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	res, err := in.IngestFile(t.Context(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 3 || res.RejectedTotal != 4 {
		t.Fatalf("result %+v", res)
	}

	events := c.WaitRecords(t, schemas.TopicAuditEvents, 3)
	var keys []string
	for _, m := range events {
		ev, err := schemas.DecodeEvent(m.Value)
		if err != nil {
			t.Fatalf("event in %s does not decode: %v", schemas.TopicAuditEvents, err)
		}
		if string(m.Key) != ev.UserID {
			t.Errorf("event %s keyed %q, want its user id %q", ev.ID, m.Key, ev.UserID)
		}
		keys = append(keys, string(m.Key))
	}
	if strings.Join(keys, ",") != "alice,bob,alice" {
		t.Errorf("keys %v", keys)
	}

	dead := c.WaitRecords(t, schemas.TopicDLQ, 4)
	if len(dead) != 4 {
		t.Fatalf("%d dead letters, want 4", len(dead))
	}
	wantLines := map[string]string{"3": lines[2], "4": lines[3], "6": lines[5], "7": lines[6]}
	for _, m := range dead {
		line := header(m, schemas.HeaderDLQOffset)
		if want, ok := wantLines[line]; !ok || string(m.Value) != want {
			t.Errorf("dead letter for line %q is %q, want the line as received", line, m.Value)
		}
		if header(m, schemas.HeaderDLQReason) == "" || header(m, schemas.HeaderDLQTopic) != schemas.TopicAuditEvents ||
			header(m, schemas.HeaderDLQComponent) != ingest.Component || header(m, ingest.HeaderDLQSource) != path {
			t.Errorf("dead letter headers %+v", m.Headers)
		}
	}
	if r := header(dead[0], schemas.HeaderDLQReason); !strings.Contains(r, `field "geo.lat"`) {
		t.Errorf("reason %q does not name the field", r)
	}
}
