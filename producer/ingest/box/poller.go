package box

import (
	"net/http"

	"github.com/jonboulle/clockwork"
	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/producer/ingest/source"
)

// StreamSourceName names the enterprise event stream's poller: the
// checkpoint's source and the metrics' label.
const StreamSourceName = "box-events"

// NewPoller assembles the enterprise event stream's poller: a Client for
// cfg, the Mapping, and sink (whose format should be FormatEvent). clk
// (nil: the real clock) times the access token and the poller's waits;
// hc nil uses a client with cfg.RequestTimeout. Run it with cfg.From.
func NewPoller(cfg Config, poll source.PollConfig, sink *source.Sink, log zerolog.Logger, clk clockwork.Clock, hc *http.Client, opts ...source.PollerOption) (*source.Poller, error) {
	if clk == nil {
		clk = clockwork.NewRealClock()
	}
	c, err := NewClient(cfg, hc, clk)
	if err != nil {
		return nil, err
	}
	m := Mapping{UserKey: cfg.UserKey}
	opts = append([]source.PollerOption{source.WithClock(clk)}, opts...)
	return source.NewPoller(StreamSourceName, poll, c, m.Event, sink, log, opts...)
}
