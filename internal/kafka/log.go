package kafka

import (
	"fmt"
	"strings"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
)

// kafkaLogger adapts l to kafka-go's Logger, writing each line at level.
// kafka-go is chatty at its normal level; pass zerolog.DebugLevel for
// Logger and zerolog.WarnLevel for ErrorLogger.
//
// Each call creates its own event: handing kafka-go a method value such as
// l.Info().Msgf would reuse one pooled zerolog event for every line, which
// panics or corrupts output.
func kafkaLogger(l zerolog.Logger, level zerolog.Level) kafka.Logger {
	return kafka.LoggerFunc(func(format string, args ...any) {
		e := l.WithLevel(level)
		if e == nil {
			return
		}
		e.Str("lib", "kafka-go").Msg(strings.TrimSpace(fmt.Sprintf(format, args...)))
	})
}
