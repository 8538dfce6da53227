package service_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/detector/service"
	"github.com/revoked-dev/revoked/internal/enrich"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/kafka/kafkatest"
	"github.com/revoked-dev/revoked/schemas"
)

func event(id string, at time.Time, typ schemas.EventType, user string, mutate func(*schemas.AuditEvent)) kafkax.Message {
	ev := schemas.AuditEvent{ID: id, Time: at.UTC().Truncate(time.Millisecond), Type: typ, UserID: user, IP: "203.0.113.7"}
	if mutate != nil {
		mutate(&ev)
	}
	value, err := json.Marshal(ev)
	if err != nil {
		panic(err)
	}
	return kafkax.Message{Key: []byte(user), Value: value,
		Headers: []kafkax.Header{{Key: schemas.HeaderSchema, Value: []byte(schemas.SchemaAuditEventV1)}}}
}

func geo(token, country string, asn uint32, device string) func(*schemas.AuditEvent) {
	return func(e *schemas.AuditEvent) {
		e.TokenID, e.DeviceID = token, device
		e.Geo = &schemas.Geo{Country: country, ASN: asn}
	}
}

func header(m kafkax.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// Events go in through the broker; signed commands come out, a malformed
// event lands in the dead-letter topic with its reason, the events after it
// are still handled, and every event is committed.
func TestEventsInSignedCommandsOut(t *testing.T) {
	c := kafkatest.New(t, schemas.TopicAuditEvents, schemas.TopicRevokeCommands, schemas.TopicDLQ)
	cfg := service.DefaultConfig()
	cfg.Reader = c.ReaderConfig(schemas.TopicAuditEvents, "detector-test")
	cfg.Reader.Component = "detector"
	cfg.Writer = c.WriterConfig(schemas.TopicRevokeCommands)

	priv, err := schemas.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	signer := schemas.NewSigner(priv)
	reg := prometheus.NewRegistry()
	var (
		mu       sync.Mutex
		observed []schemas.RevokeCommand
	)
	svc, err := service.New(cfg, signer, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel),
		service.WithRegistry(reg),
		service.WithOnDetection(func(cmd schemas.RevokeCommand) {
			mu.Lock()
			observed = append(observed, cmd)
			mu.Unlock()
		}))
	if err != nil {
		t.Fatal(err)
	}

	t0 := time.Now().Add(-20 * time.Minute)
	var msgs []kafkax.Message
	for i := range 5 {
		msgs = append(msgs, event(fmt.Sprintf("bf-%d", i), t0.Add(time.Duration(i)*time.Minute), schemas.EventLoginFailure, "alice", nil))
	}
	msgs = append(msgs,
		kafkax.Message{Key: []byte("alice"), Value: []byte(`{"id": "broken", "time": `)},
		kafkax.Message{Key: []byte("alice"), Value: []byte(`{"id":"x","time":"2025-03-01T10:00:00Z","type":"login.success","user_id":"alice","password":"hunter2"}`)},
		event("future", time.Now().Add(time.Hour), schemas.EventLoginFailure, "mallory", nil),
		event("bf-s", t0.Add(6*time.Minute), schemas.EventLoginSuccess, "alice", nil),
		event("tr-1", t0.Add(7*time.Minute), schemas.EventTokenUsed, "bob", geo("tok-bob", "US", 7922, "laptop")),
		event("tr-2", t0.Add(8*time.Minute), schemas.EventTokenUsed, "bob", geo("tok-bob", "DE", 3320, "elsewhere")),
	)
	c.Produce(t, schemas.TopicAuditEvents, msgs...)

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	out := c.WaitRecords(t, schemas.TopicRevokeCommands, 3)
	dlq := c.WaitRecords(t, schemas.TopicDLQ, 3)
	c.WaitCommitted(t, "detector-test", schemas.TopicAuditEvents, map[int]int64{0: int64(len(msgs))})

	keyring := schemas.NewKeyring(signer.Public())
	byRule := map[string]schemas.RevokeCommand{}
	for _, m := range out {
		if got := header(m, schemas.HeaderSchema); got != schemas.SchemaRevokeCommandV1 {
			t.Errorf("schema header %q", got)
		}
		if err := keyring.Verify(header(m, schemas.HeaderKeyID), header(m, schemas.HeaderSignature), m.Value); err != nil {
			t.Errorf("signature: %v", err)
		}
		cmd, err := schemas.DecodeCommand(m.Value)
		if err != nil {
			t.Fatalf("command: %v", err)
		}
		if string(m.Key) != cmd.Target.Key() {
			t.Errorf("key %q, want target key %q", m.Key, cmd.Target.Key())
		}
		if id := schemas.DetectionCommandID(cmd.Reason.RuleID, cmd.Reason.RuleVersion, cmd.Target, cmd.Reason.Evidence); cmd.CommandID != id {
			t.Errorf("command id %s, want %s", cmd.CommandID, id)
		}
		if cmd.Expired(time.Now()) || cmd.Mode != schemas.ModeEnforce {
			t.Errorf("command expired or not enforced: %+v", cmd)
		}
		byRule[cmd.Reason.Signals[0].RuleID+"/"+string(cmd.Target.Kind)] = cmd
	}
	bf, tr, trUser := byRule["brute_force_success/user"], byRule["session_hijack/token"], byRule["session_hijack/user"]
	if bf.Target.Kind != schemas.TargetUser || bf.Target.UserID != "alice" || bf.Action != schemas.ActionRevokeAndReverify ||
		strings.Join(bf.Reason.Evidence, ",") != "bf-0,bf-1,bf-2,bf-3,bf-4,bf-s" {
		t.Errorf("brute force command: %+v", bf)
	}
	if tr.Target.Kind != schemas.TargetToken || tr.Target.TokenID != "tok-bob" || tr.Target.UserID != "bob" ||
		!tr.Target.IncludeDownscoped || strings.Join(tr.Reason.Evidence, ",") != "tr-2" || tr.Action != schemas.ActionRevoke {
		t.Errorf("session hijack command: %+v", tr)
	}
	if trUser.Target.UserID != "bob" || trUser.Action != schemas.ActionRevokeAndReverify {
		t.Errorf("session hijack user command: %+v", trUser)
	}

	wantReasons := []string{"invalid audit event: unexpected EOF", `invalid audit event: field "password": unknown field`, "ahead of the detector's clock"}
	for i, m := range dlq {
		reason := header(m, schemas.HeaderDLQReason)
		if !strings.Contains(reason, wantReasons[i]) {
			t.Errorf("dead letter %d: reason %q lacks %q", i, reason, wantReasons[i])
		}
		if header(m, schemas.HeaderDLQTopic) != schemas.TopicAuditEvents || header(m, schemas.HeaderDLQComponent) != "detector" {
			t.Errorf("dead letter %d headers: %v", i, m.Headers)
		}
		if string(m.Value) != string(msgs[5+i].Value) {
			t.Errorf("dead letter %d value %q, want the message as received", i, m.Value)
		}
	}

	mu.Lock()
	if len(observed) != 3 {
		t.Errorf("OnDetection saw %d commands, want 3", len(observed))
	}
	mu.Unlock()
	for _, w := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"revoked_detector_events_total", map[string]string{"result": "processed"}, 8},
		{"revoked_detector_events_total", map[string]string{"result": "invalid"}, 2},
		{"revoked_detector_events_total", map[string]string{"result": "clock_skew"}, 1},
		{"revoked_detector_detections_total", map[string]string{"rule": "risk", "mode": "enforce"}, 3},
		{"revoked_detector_commands_published_total", map[string]string{"rule": "risk", "mode": "enforce"}, 3},
		{"revoked_detector_rule_groups", map[string]string{"rule": "brute_force_success"}, 1},
	} {
		if got := metricValue(t, reg, w.name, w.labels); got != w.want {
			t.Errorf("%s%v = %v, want %v", w.name, w.labels, got, w.want)
		}
	}
	// The three commands of the risk rule, each with the risk it reached.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var risks uint64
	for _, mf := range mfs {
		if mf.GetName() == "revoked_detector_command_risk" {
			for _, m := range mf.GetMetric() {
				risks += m.GetHistogram().GetSampleCount()
			}
		}
	}
	if risks != 3 {
		t.Errorf("revoked_detector_command_risk counted %d commands, want 3", risks)
	}
}

func metricValue(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for k, v := range labels {
				if !hasLabel(m, k, v) {
					continue metrics
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			}
		}
	}
	return -1
}

func hasLabel(m *dto.Metric, k, v string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == k && l.GetValue() == v {
			return true
		}
	}
	return false
}

func TestConfigValidate(t *testing.T) {
	cfg := service.DefaultConfig()
	cfg.DefaultRules = false
	cfg.MaxClockSkew = 0
	cfg.Writer.Topic = schemas.TopicAuditEvents
	cfg.Engine.Issuer = ""
	err := cfg.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"kafka.brokers", "publish.topic: must differ from the topic read", "engine: issuer is required", "rules-dir", "max-clock-skew"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	cfg = service.DefaultConfig()
	cfg.Reader.Brokers = []string{"127.0.0.1:9092"}
	if err := cfg.Validate(); err != nil {
		t.Errorf("defaults with brokers: %v", err)
	}
	if _, err := service.New(cfg, nil, zerolog.Nop()); !errors.Is(err, service.ErrNoSigner) {
		t.Errorf("New without signer: %v", err)
	}
}

// A -geoip.dir without the databases stops the detector from starting,
// saying how to install them.
func TestGeoIPDirWithoutDatabases(t *testing.T) {
	cfg := service.DefaultConfig()
	cfg.Reader.Brokers = []string{"127.0.0.1:9092"}
	cfg.GeoIP.Dir = t.TempDir()
	priv, err := schemas.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	_, err = service.New(cfg, schemas.NewSigner(priv), zerolog.Nop())
	if !errors.Is(err, enrich.ErrNoDatabase) || !strings.Contains(err.Error(), "install-geoip.sh") {
		t.Errorf("New: %v, want enrich.ErrNoDatabase with the install command", err)
	}
}
