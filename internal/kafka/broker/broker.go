// Package broker runs an embedded, single-node Kafka-protocol broker in the
// process, built on franz-go's kfake, for the all-in-one local run and for
// tests. It listens on a real TCP port, so any Kafka client (kafka-go,
// franz-go, librdkafka and kcat) can produce to it and consume from it,
// consumer groups and committed offsets included.
//
// It is not Kafka: there is one broker, no replication, and, unless DataDir
// is set, everything lives in memory and is gone when the broker closes.
package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/revoked-dev/revoked/internal/config"
)

// Config configures the embedded broker.
type Config struct {
	// Addr is the host:port to listen on. The broker advertises exactly
	// this host to clients, so use an address clients can reach (the
	// default is 127.0.0.1:9092); port 0 picks a free port, see Addr.
	Addr string `flag:"addr" env:"ADDR" yaml:"addr" usage:"listen address of the embedded Kafka broker"`
	// Topics to create at start, name to partition count. A count below 1
	// means DefaultPartitions.
	Topics map[string]int `yaml:"-"`
	// DefaultPartitions is the partition count of topics created without
	// one: Topics entries below 1 and CreateTopics requests asking for the
	// broker default.
	DefaultPartitions int `flag:"default-partitions" env:"DEFAULT_PARTITIONS" yaml:"default_partitions" usage:"partitions of topics created without a count"`
	// DataDir, when set, keeps topics, records and committed offsets in
	// this directory across restarts. Empty keeps everything in memory.
	DataDir string `flag:"data-dir" env:"DATA_DIR" yaml:"data_dir" usage:"directory that keeps the embedded broker's data across restarts (empty: memory only)"`
	// Logger receives kfake's warnings and errors. The zero value discards
	// them.
	Logger zerolog.Logger `flag:"-" env:"-" yaml:"-"`
}

// DefaultConfig listens on 127.0.0.1:9092 with three partitions per topic.
func DefaultConfig() Config {
	return Config{Addr: "127.0.0.1:9092", DefaultPartitions: 3}
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var p config.Problems
	if _, port, err := net.SplitHostPort(c.Addr); err != nil {
		p.Addf("addr", "want host:port, got %q", c.Addr)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		p.Addf("addr", "port must be a number from 0 to 65535, got %q", port)
	}
	p.Check(c.DefaultPartitions > 0, "default-partitions", "must be positive, got %d", c.DefaultPartitions)
	for name := range c.Topics {
		p.Check(name != "", "topics", "topic names must not be empty")
	}
	return p.Err()
}

// Broker is a running embedded broker.
type Broker struct {
	cluster *kfake.Cluster
	addr    string
	stop    func() bool
	once    sync.Once
}

// Start creates the topics of cfg and starts listening. The broker runs
// until Close is called or ctx is cancelled, whichever comes first.
func Start(ctx context.Context, cfg Config) (*Broker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("starting embedded broker: %w", err)
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.DefaultNumPartitions(cfg.DefaultPartitions),
		kfake.WithLogger(kfakeLogger{cfg.Logger}),
		// kfake always listens on 127.0.0.1; this puts it on the
		// configured host and port instead, and kfake advertises what
		// the listener reports.
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, cfg.Addr)
		}),
	}
	for name, partitions := range cfg.Topics {
		if partitions < 1 {
			partitions = cfg.DefaultPartitions
		}
		opts = append(opts, kfake.SeedTopics(int32(partitions), name))
	}
	if cfg.DataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.DataDir))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("starting embedded broker on %s: %w", cfg.Addr, err)
	}
	addrs := c.ListenAddrs()
	if len(addrs) != 1 {
		c.Close()
		return nil, fmt.Errorf("starting embedded broker: %w", errors.New("expected exactly one listener"))
	}
	b := &Broker{cluster: c, addr: addrs[0]}
	b.stop = context.AfterFunc(ctx, b.Close)
	return b, nil
}

// Addr is the host:port the broker listens on and advertises, with the
// actual port when Config.Addr asked for port 0.
func (b *Broker) Addr() string { return b.addr }

// Fake returns the kfake cluster behind the broker, for tests that inspect
// or alter the requests it handles (kfake's Control functions).
func (b *Broker) Fake() *kfake.Cluster { return b.cluster }

// Close stops the broker, persisting its state first when DataDir is set.
// Clients connected to it see their connections closed. Close is safe to
// call more than once.
func (b *Broker) Close() {
	b.once.Do(func() {
		b.stop()
		b.cluster.Close()
	})
}

// kfakeLogger routes kfake's log lines to zerolog. kfake logs every request
// at debug level, which is too much even for debugging a pipeline, so only
// its warnings and errors get through.
type kfakeLogger struct{ log zerolog.Logger }

func (k kfakeLogger) Logf(level kfake.LogLevel, format string, args ...any) {
	switch level {
	case kfake.LogLevelError:
		k.log.Error().Str("lib", "kfake").Msgf(format, args...)
	case kfake.LogLevelWarn:
		k.log.Warn().Str("lib", "kfake").Msgf(format, args...)
	}
}
