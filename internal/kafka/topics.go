package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/segmentio/kafka-go"
)

// EnsureTopics creates those of topics (name to partition count) that do not
// exist yet, with the broker's default replication factor; a count below 1
// asks for the broker's default partition count too. A topic that exists
// already is left as it is, whatever its partition count, so calling
// EnsureTopics again is harmless. ctx bounds the whole call. It reports
// every topic it could not create, joined.
//
// Call it before creating Writers for these topics: a kafka-go transport
// caches metadata (for six seconds by default), and one that looked up a
// topic before it existed keeps failing writes to it until that expires.
func EnsureTopics(ctx context.Context, brokers []string, sec Security, topics map[string]int) error {
	if len(topics) == 0 {
		return nil
	}
	if len(brokers) == 0 {
		return errors.New("ensuring kafka topics: no brokers")
	}
	transport, err := sec.NewTransport("revoked-admin")
	if err != nil {
		return fmt.Errorf("ensuring kafka topics: %w", err)
	}
	defer transport.CloseIdleConnections()

	names := make([]string, 0, len(topics))
	for name := range topics {
		names = append(names, name)
	}
	slices.Sort(names)
	req := &kafka.CreateTopicsRequest{}
	for _, name := range names {
		partitions := topics[name]
		if partitions < 1 {
			partitions = -1
		}
		req.Topics = append(req.Topics, kafka.TopicConfig{Topic: name, NumPartitions: partitions, ReplicationFactor: -1})
	}
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Transport: transport}
	resp, err := client.CreateTopics(ctx, req)
	if err != nil {
		return fmt.Errorf("creating kafka topics %v: %w", names, err)
	}
	var errs []error
	for _, name := range names {
		err, ok := resp.Errors[name]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("creating kafka topic %q: no answer from the broker", name))
		case err == nil, errors.Is(err, kafka.TopicAlreadyExists):
		default:
			errs = append(errs, fmt.Errorf("creating kafka topic %q: %w", name, err))
		}
	}
	return errors.Join(errs...)
}
