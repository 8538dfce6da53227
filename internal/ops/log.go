// Package ops is the operational plumbing every component shares: logging
// setup, a per-process Prometheus registry, and the HTTP server that answers
// /livez, /readyz and /metrics.
package ops

import (
	"fmt"
	"io"
	"time"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/internal/config"
)

// Log formats.
const (
	// FormatJSON writes one JSON object per line, for machines.
	FormatJSON = "json"
	// FormatConsole writes coloured, human-readable lines, for terminals.
	FormatConsole = "console"
)

// LogConfig selects how a process logs.
type LogConfig struct {
	Level  string `flag:"level" env:"LEVEL" yaml:"level" usage:"log level: trace, debug, info, warn, error"`
	Format string `flag:"format" env:"FORMAT" yaml:"format" usage:"log format: json or console"`
}

// DefaultLogConfig logs JSON at info level.
func DefaultLogConfig() LogConfig {
	return LogConfig{Level: "info", Format: FormatJSON}
}

// Validate reports every problem with c at once.
func (c LogConfig) Validate() error {
	var p config.Problems
	if _, err := zerolog.ParseLevel(c.Level); err != nil || c.Level == "" {
		p.Addf("level", "unknown level %q (want trace, debug, info, warn or error)", c.Level)
	}
	p.Check(c.Format == FormatJSON || c.Format == FormatConsole, "format", "unknown format %q (want json or console)", c.Format)
	return p.Err()
}

// NewLogger returns a logger writing to w as c says. Every line carries a
// "time" field in RFC 3339 with nanoseconds, in UTC. It changes none of
// zerolog's package-level settings.
func NewLogger(c LogConfig, w io.Writer) (zerolog.Logger, error) {
	if err := c.Validate(); err != nil {
		return zerolog.Nop(), err
	}
	level, err := zerolog.ParseLevel(c.Level)
	if err != nil {
		return zerolog.Nop(), fmt.Errorf("parsing log level: %w", err)
	}
	if c.Format == FormatConsole {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: "15:04:05.000"}
	}
	return zerolog.New(w).Level(level).Hook(timeHook{}), nil
}

// timeHook stamps each event at the moment it is written, with a precision
// that suits a pipeline measured in milliseconds. zerolog's own Timestamp
// takes its format from a package-level variable, which this avoids setting.
type timeHook struct{}

func (timeHook) Run(e *zerolog.Event, _ zerolog.Level, _ string) {
	e.Str(zerolog.TimestampFieldName, time.Now().UTC().Format(time.RFC3339Nano))
}
