// Package state keeps the detector's state recoverable from Kafka.
//
// The engine holds two kinds of state. Windowed state (the events of the
// last window of each group, cooldowns) is short-lived and is rebuilt, when
// the detector starts or is given a partition, by reading that partition of
// the event topic again from a point in time (see Client.OffsetAt and
// Client.Read). Baselines (what a user has been seen with before: devices,
// countries, networks) live far longer than any window, so replaying the
// event topic cannot rebuild them; they are kept in a compacted topic,
// one record per baseline entry, in the partition of the same number as
// the event partition they were learnt from, so that a partition's
// baselines move with it from one detector to another (see Store).
package state

import (
	"errors"
	"time"

	"github.com/revoked-dev/revoked/internal/config"
)

// DefaultBaselineTopic is the compacted topic baselines are kept in.
const DefaultBaselineTopic = "detector.baselines"

// Config configures the detector's state recovery.
type Config struct {
	// Rebuild replays, before the first event the detector handles on a
	// partition, the part of that partition that the engine's rules can
	// still look back on, so that a restart or a partition move leaves no
	// gap in detection.
	Rebuild bool `flag:"rebuild" env:"REBUILD" yaml:"rebuild" usage:"rebuild windowed state from the event topic when a partition is taken on"`
	// BaselineTopic is the compacted topic long-lived baselines are kept
	// in, partitioned like the event topic.
	BaselineTopic string `flag:"baseline-topic" env:"BASELINE_TOPIC" yaml:"baseline_topic" usage:"compacted topic the long-lived baselines are kept in"`
	// CreateTopic creates BaselineTopic when it is missing: compacted,
	// with as many partitions as the event topic.
	CreateTopic bool `flag:"create-topic" env:"CREATE_TOPIC" yaml:"create_topic" usage:"create the baseline topic (compacted, partitioned like the event topic) when missing"`
	// ReplaySlack widens the replay beyond the engine's horizon, to cover
	// events written to Kafka later than their event time by up to this
	// much, or stamped by clocks that run behind.
	ReplaySlack time.Duration `flag:"replay-slack" env:"REPLAY_SLACK" yaml:"replay_slack" usage:"how much more than the rules' horizon a rebuild replays"`
	// MaxReplay caps how far back, before the first event to handle, a
	// rebuild replays; zero replays the engine's whole horizon. A cap
	// below the horizon shortens rebuilds at the price of what the rules
	// with the longest windows and cooldowns remember across a restart.
	MaxReplay time.Duration `flag:"max-replay" env:"MAX_REPLAY" yaml:"max_replay" usage:"longest stretch of event time a rebuild replays (0: the rules' whole horizon)"`
}

// DefaultConfig rebuilds state, keeps baselines in DefaultBaselineTopic,
// creates it when missing and replays five minutes beyond the horizon.
func DefaultConfig() Config {
	return Config{
		Rebuild:       true,
		BaselineTopic: DefaultBaselineTopic,
		CreateTopic:   true,
		ReplaySlack:   5 * time.Minute,
	}
}

// ErrPartitionCount means the baseline topic has fewer partitions than the
// event topic, so some partitions' baselines would have nowhere to go.
var ErrPartitionCount = errors.New("state: baseline topic has fewer partitions than the event topic")

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var p config.Problems
	p.Check(c.BaselineTopic != "", "baseline-topic", "required")
	p.Check(c.ReplaySlack >= 0, "replay-slack", "must not be negative")
	p.Check(c.MaxReplay >= 0, "max-replay", "must not be negative")
	return p.Err()
}
