package service

import (
	"time"

	"github.com/revoked-dev/revoked/detector/engine"
	"github.com/revoked-dev/revoked/detector/state"
	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/internal/enrich"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/schemas"
)

// Config configures the detector service.
type Config struct {
	// Reader reads audit events. Its Component names the detector in
	// dead-letter headers.
	Reader kafkax.ReaderConfig `flag:"kafka" env:"KAFKA" yaml:"kafka"`
	// Writer publishes commands to Writer.Topic. Left without brokers, it
	// uses the reader's brokers and security settings.
	Writer kafkax.WriterConfig `flag:"publish" env:"PUBLISH" yaml:"publish"`
	// Engine configures the rule engine; Engine.DryRun is the global
	// dry-run switch.
	Engine engine.Config `flag:"engine" env:"ENGINE" yaml:"engine"`
	// RulesDir holds rule files (*.yaml, *.yml). Its rules replace the
	// default rules of the same id and add to the others.
	RulesDir string `flag:"rules-dir" env:"RULES_DIR" yaml:"rules_dir" usage:"directory of rule files (they override default rules of the same id)"`
	// DefaultRules loads the embedded default rule pack.
	DefaultRules bool `flag:"default-rules" env:"DEFAULT_RULES" yaml:"default_rules" usage:"load the embedded default rules"`
	// MaxClockSkew is how far ahead of the detector's clock an event's time
	// may be. A later event is dead-lettered: its time would move the
	// engine's watermark into the future and evict everyone's state.
	MaxClockSkew time.Duration `flag:"max-clock-skew" env:"MAX_CLOCK_SKEW" yaml:"max_clock_skew" usage:"how far ahead of the local clock an event's time may be before it is dead-lettered"`
	// State configures how the engine's state survives restarts and
	// partition moves: windowed state rebuilt from the event topic,
	// baselines kept in a compacted topic. It uses the reader's brokers
	// and security settings.
	State state.Config `flag:"state" env:"STATE" yaml:"state"`
	// GeoIP enriches every event's address (ASN, organisation, location,
	// kind of network) after decoding, before the engine sees it:
	// -geoip.dir, REVOKED_GEOIP_DIR.
	GeoIP enrich.Config `flag:"geoip" env:"GEOIP" yaml:"geoip"`
	// EvidenceContext is how many of the newest events with an address
	// the detector remembers (address, country, ASN, organisation, kind
	// of network, after enrichment) to say in each command where its
	// evidence events came from (schemas.Reason.Context). Evidence older
	// than that gets no context; the event that completed a detection
	// always has it. 0 turns it off.
	EvidenceContext int `flag:"evidence-context" env:"EVIDENCE_CONTEXT" yaml:"evidence_context" usage:"newest events whose address, country and ASN the detector keeps to put in its commands' evidence (0: none)"`
}

// DefaultConfig reads schemas.TopicAuditEvents as group "revoked-detector",
// publishes to schemas.TopicRevokeCommands with the default pack and
// engine defaults, allows five minutes of clock skew, rebuilds state from
// Kafka, keeps baselines in state.DefaultBaselineTopic, enriches events
// by the curated networks list (no address databases) and keeps the
// context of the newest DefaultEvidenceContext events. Brokers must be
// set.
func DefaultConfig() Config {
	r := kafkax.DefaultReaderConfig()
	r.Topic = schemas.TopicAuditEvents
	r.GroupID = "revoked-detector"
	r.Component = "detector"
	r.QueueSize = DefaultQueueSize
	w := kafkax.DefaultWriterConfig()
	w.Topic = schemas.TopicRevokeCommands
	w.ClientID = "revoked-detector"
	return Config{
		Reader:          r,
		Writer:          w,
		Engine:          engine.DefaultConfig(),
		DefaultRules:    true,
		MaxClockSkew:    5 * time.Minute,
		State:           state.DefaultConfig(),
		GeoIP:           enrich.DefaultConfig(),
		EvidenceContext: DefaultEvidenceContext,
	}
}

// DefaultQueueSize is how many fetched events may wait per partition for
// the detector's handler. The reader fetches for all partitions in one
// loop, which stops when the next event's partition queue is full; at the
// reader's default of 16, handlers of other partitions ran dry while one
// partition's handler waited its turn at the engine. bench -parts
// detector -events 400000, three runs each: 74,000-83,300 events/s with
// 1,024, 59,700-64,500 with 16. An event is about 600 bytes, so a full
// queue holds well under a megabyte.
const DefaultQueueSize = 1024

// writer is the writer configuration with the reader's brokers and
// security filled in when it names no brokers of its own.
func (c Config) writer() kafkax.WriterConfig {
	w := c.Writer
	if len(w.Brokers) == 0 {
		w.Brokers = c.Reader.Brokers
		w.Security = c.Reader.Security
	}
	return w
}

// Validate reports every problem with c at once. It does not read the
// rules directory; New does.
func (c Config) Validate() error {
	var p config.Problems
	p.Nest("kafka", c.Reader.Validate())
	w := c.writer()
	if len(w.Brokers) == 0 {
		// Missing brokers are reported once, under kafka.brokers; the
		// writer's other settings are still checked.
		w.Brokers = []string{"inherited:9092"}
	}
	p.Nest("publish", w.Validate())
	p.Check(w.Topic != "", "publish.topic", "required: the topic commands are published to")
	p.Check(w.Topic == "" || w.Topic != c.Reader.Topic, "publish.topic", "must differ from the topic read (%q)", c.Reader.Topic)
	p.Check(w.Topic == "" || w.Topic != c.Reader.DLQTopic, "publish.topic", "must differ from the dead-letter topic (%q)", c.Reader.DLQTopic)
	for _, err := range unwrapAll(c.Engine.Validate()) {
		p.Add(err) // already "engine: ..."
	}
	p.Check(c.DefaultRules || c.RulesDir != "", "rules-dir", "required when default-rules is off: the detector needs rules")
	p.Check(c.MaxClockSkew > 0, "max-clock-skew", "must be positive")
	p.Check(c.EvidenceContext >= 0 && c.EvidenceContext <= maxEvidenceContext, "evidence-context", "must be between 0 and %d", maxEvidenceContext)
	p.Nest("state", c.State.Validate())
	for _, other := range []string{c.Reader.Topic, c.Reader.DLQTopic, w.Topic} {
		p.Check(c.State.BaselineTopic == "" || c.State.BaselineTopic != other, "state.baseline-topic", "must differ from the topics read and written (%q)", other)
	}
	return p.Err()
}

func unwrapAll(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// LoadRules returns the rules c names: the default pack (when
// DefaultRules), overridden and extended by the rules of RulesDir.
func (c Config) LoadRules() ([]*engine.Rule, error) {
	var base, dir []*engine.Rule
	if c.DefaultRules {
		var err error
		if base, err = engine.DefaultRules(); err != nil {
			return nil, err
		}
	}
	if c.RulesDir != "" {
		var err error
		if dir, err = engine.LoadDir(c.RulesDir); err != nil {
			return nil, err
		}
	}
	return engine.Merge(base, dir), nil
}
