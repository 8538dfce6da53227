package ingest

import (
	"context"
	"errors"
	"net"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/internal/enrich"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
)

// EndpointConfig is the ingest HTTP endpoint's settings: the ingester's,
// the server's, address enrichment, and the Kafka writer the readiness
// check dials as.
type EndpointConfig struct {
	Ingest Config
	HTTP   HTTPConfig
	GeoIP  enrich.Config
	Kafka  kafkax.WriterConfig
}

// Endpoint is the ingest HTTP endpoint as `producer ingest --listen` runs
// it, and the local deployment beside its pipeline: events enriched with
// address context, published through pub, and /livez, /readyz (Kafka
// reachable) and /metrics on the same listener.
type Endpoint struct {
	Server   *Server
	enricher *enrich.Enricher
}

// NewEndpoint builds the endpoint; reg receives its metrics and is served
// at /metrics. opts are added to the ingester's (WithDecoder, say). It
// listens only when Run or Serve runs.
func NewEndpoint(cfg EndpointConfig, pub Publisher, log zerolog.Logger, reg *prometheus.Registry, opts ...Option) (*Endpoint, error) {
	enricher, err := enrich.NewLogged(cfg.GeoIP, log)
	if err != nil {
		return nil, err
	}
	if enricher != nil {
		opts = append([]Option{WithEnrich(enricher.Enrich)}, opts...)
	}
	in, err := New(cfg.Ingest, pub, log, opts...)
	if err != nil {
		return nil, errors.Join(err, enricher.Close())
	}
	check, err := kafkax.BrokersCheck(cfg.Kafka)
	if err != nil {
		return nil, errors.Join(err, enricher.Close())
	}
	if !cfg.HTTP.BearerToken.IsSet() {
		log.Warn().Msg("ingest endpoint accepts events without authentication: set REVOKED_INGEST_BEARER_TOKEN_FILE")
	}
	srv, err := NewServer(cfg.HTTP, in, log, WithRegistry(reg), WithReadyCheck("kafka", check))
	if err != nil {
		return nil, errors.Join(err, enricher.Close())
	}
	return &Endpoint{Server: srv, enricher: enricher}, nil
}

// Run listens on the configured address and serves until ctx ends (see
// Server.Run), then releases the address databases.
func (e *Endpoint) Run(ctx context.Context) error {
	return errors.Join(e.Server.Run(ctx), e.enricher.Close())
}

// Serve is Run on a listener the caller opened.
func (e *Endpoint) Serve(ctx context.Context, ln net.Listener) error {
	return errors.Join(e.Server.Serve(ctx, ln), e.enricher.Close())
}
