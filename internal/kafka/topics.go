package kafka

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

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
	c, err := NewClient(brokers, sec, "revoked-admin")
	if err != nil {
		return fmt.Errorf("ensuring kafka topics: %w", err)
	}
	defer c.Close()
	specs := make([]TopicSpec, 0, len(topics))
	for _, name := range slices.Sorted(maps.Keys(topics)) {
		specs = append(specs, TopicSpec{Name: name, Partitions: topics[name]})
	}
	return c.CreateTopics(ctx, specs...)
}

// TopicSpec describes a topic to create.
type TopicSpec struct {
	Name string
	// Partitions is the partition count; below 1, the broker's default.
	Partitions int
	// Configs are topic settings such as cleanup.policy.
	Configs map[string]string
}

// CreateTopics creates topics with the broker's default replication
// factor. A topic that exists already is left as it is, whatever its
// settings, and is no error. It reports every topic it could not create,
// joined.
func (c *Client) CreateTopics(ctx context.Context, topics ...TopicSpec) error {
	if len(topics) == 0 {
		return nil
	}
	req := &kafka.CreateTopicsRequest{}
	names := make([]string, 0, len(topics))
	for _, t := range topics {
		partitions := t.Partitions
		if partitions < 1 {
			partitions = -1
		}
		tc := kafka.TopicConfig{Topic: t.Name, NumPartitions: partitions, ReplicationFactor: -1}
		for _, k := range slices.Sorted(maps.Keys(t.Configs)) {
			tc.ConfigEntries = append(tc.ConfigEntries, kafka.ConfigEntry{ConfigName: k, ConfigValue: t.Configs[k]})
		}
		req.Topics = append(req.Topics, tc)
		names = append(names, t.Name)
	}
	resp, err := c.client.CreateTopics(ctx, req)
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

// GrowPartitions raises the partition count of topic to count. The broker
// refuses a count at or below the current one.
func (c *Client) GrowPartitions(ctx context.Context, topic string, count int) error {
	resp, err := c.client.CreatePartitions(ctx, &kafka.CreatePartitionsRequest{
		Topics: []kafka.TopicPartitionsConfig{{Name: topic, Count: int32(count)}},
	})
	if err == nil {
		err = resp.Errors[topic]
	}
	if err != nil {
		return fmt.Errorf("growing topic %q to %d partitions: %w", topic, count, err)
	}
	return nil
}

// TopicConfig returns the value of the setting name of topic (such as
// cleanup.policy or max.message.bytes), and false when the broker did not
// report it.
func (c *Client) TopicConfig(ctx context.Context, topic, name string) (string, bool, error) {
	resp, err := c.client.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: topic, ConfigNames: []string{name},
	}}})
	if err != nil {
		return "", false, fmt.Errorf("describing %s: %w", topic, err)
	}
	for _, r := range resp.Resources {
		if r.Error != nil {
			return "", false, fmt.Errorf("describing %s: %w", topic, r.Error)
		}
		for _, e := range r.ConfigEntries {
			if e.ConfigName == name {
				return e.ConfigValue, true, nil
			}
		}
	}
	return "", false, nil
}

// NewPartitionWriter returns a Writer for topic that writes every message
// to the partition the message names (its Partition field), not to the
// hash of its key, waiting for every in-sync replica. It has a connection
// pool of its own; Close it when done.
func (c *Client) NewPartitionWriter(topic string) (*Writer, error) {
	tr, err := c.sec.NewTransport(c.clientID)
	if err != nil {
		return nil, fmt.Errorf("kafka writer: %w", err)
	}
	w := &kafka.Writer{
		Addr:         kafka.TCP(c.brokers...),
		Topic:        topic,
		Balancer:     kafka.BalancerFunc(func(m kafka.Message, _ ...int) int { return m.Partition }),
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 2 * time.Millisecond,
		WriteTimeout: 10 * time.Second,
		MaxAttempts:  10,
		Transport:    tr,
	}
	return &Writer{w: w, transport: tr}, nil
}
