package main

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/internal/cli"
	"github.com/revoked-dev/revoked/internal/config"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/ops"
	"github.com/revoked-dev/revoked/internal/progress"
)

// kafkaConfig is the Kafka side every publishing command shares:
// -kafka.brokers, REVOKED_KAFKA_BROKERS, kafka.brokers in YAML.
type kafkaConfig struct {
	Kafka kafkax.WriterConfig `flag:"kafka" env:"REVOKED_KAFKA" yaml:"kafka"`
	// CreateTopics creates missing topics before publishing, for local
	// runs; production topics are created by their owners.
	CreateTopics bool          `flag:"create-topics" env:"REVOKED_CREATE_TOPICS" yaml:"create_topics" usage:"create the topics this command writes to if they are missing"`
	Log          ops.LogConfig `flag:"log" env:"REVOKED_LOG" yaml:"log"`
	// TokenIDs gives -token-id-pattern and REVOKED_TOKEN_ID_PATTERN: what
	// the events and commands this command publishes may carry as token
	// ids.
	TokenIDs cli.TokenIDs
}

func defaultKafkaConfig() kafkaConfig {
	w := kafkax.DefaultWriterConfig()
	w.Brokers = []string{"localhost:9092"}
	w.ClientID = "revoked-producer"
	return kafkaConfig{Kafka: w, Log: ops.DefaultLogConfig()}
}

func (c kafkaConfig) validate(p *config.Problems) {
	p.Nest("kafka", c.Kafka.Validate())
	// Every message names its topic; a writer topic would make kafka-go
	// refuse them all.
	p.Check(c.Kafka.Topic == "", "kafka.topic", "not used by the producer: set the command's topic settings instead")
	p.Nest("log", c.Log.Validate())
	p.Nest("", c.TokenIDs.Validate())
}

// writer creates the topics if asked, then the Kafka writer.
func (c kafkaConfig) writer(ctx context.Context, log zerolog.Logger, topics ...string) (*kafkax.Writer, error) {
	if c.CreateTopics {
		want := make(map[string]int, len(topics))
		for _, t := range topics {
			want[t] = 0
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := kafkax.EnsureTopics(cctx, c.Kafka.Brokers, c.Kafka.Security, want); err != nil {
			return nil, err
		}
	}
	return kafkax.NewWriter(c.Kafka, log)
}

// readSecretFile reads a secret from path ("-" for stdin), trimmed of
// surrounding white space.
func readSecretFile(path string, stdin io.Reader) (string, error) {
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(io.LimitReader(stdin, 1<<20))
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(data))
	if s == "" {
		return "", errors.New("empty")
	}
	return s, nil
}

// newBar returns a progress bar on stderr when it is a terminal or force
// is set, and nil (no bar) otherwise.
func newBar(stderr io.Writer, force bool, cfg progress.Config) *progress.Bar {
	if !force && !progress.IsTerminal(stderr) {
		return nil
	}
	return progress.New(stderr, cfg)
}

// stopped reports whether err only says that the command was interrupted.
func stopped(err error) bool {
	return errors.Is(err, context.Canceled)
}
