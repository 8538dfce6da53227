package enrich

import (
	"fmt"

	"github.com/rs/zerolog"
)

// NewLogged builds the enricher cfg describes, as New does, and says in
// the log what it enriches from; nil when enrichment is off.
func NewLogged(cfg Config, log zerolog.Logger) (*Enricher, error) {
	e, err := New(cfg)
	if err != nil {
		return nil, fmt.Errorf("address enrichment: %w", err)
	}
	switch {
	case e == nil:
		log.Info().Msg("address enrichment off")
	case e.HasDatabases():
		log.Info().Str("dir", cfg.Dir).Str("networks", cfg.Networks).Msg("enriching addresses from the databases and the networks lists")
	default:
		log.Info().Str("networks", cfg.Networks).Msg("no -geoip.dir: enriching only events that carry an ASN or organisation, from the networks lists")
	}
	return e, nil
}
