package kafka

import (
	"context"
	"errors"
	"fmt"
)

// BrokersCheck is a readiness check for a writer of c: ready when one of
// the bootstrap brokers accepts a connection made the way the writer
// makes it (TLS and SASL included). It does not check the topics.
func BrokersCheck(c WriterConfig) (func(context.Context) error, error) {
	d, err := c.Security.NewDialer(c.ClientID)
	if err != nil {
		return nil, fmt.Errorf("kafka readiness check: %w", err)
	}
	return func(ctx context.Context) error {
		var errs []error
		for _, b := range c.Brokers {
			conn, err := d.DialContext(ctx, "tcp", b)
			if err == nil {
				_ = conn.Close()
				return nil
			}
			errs = append(errs, err)
		}
		return fmt.Errorf("no Kafka broker reachable: %w", errors.Join(errs...))
	}, nil
}
