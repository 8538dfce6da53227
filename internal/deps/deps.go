// Package deps pins the modules the project builds on so that go.mod keeps
// them while packages that use them are being written.
package deps

import (
	_ "github.com/ClickHouse/clickhouse-go/v2"
	_ "github.com/chdb-io/chdb-go/chdb"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/rs/zerolog"
	_ "github.com/segmentio/kafka-go"
	_ "github.com/segmentio/kafka-go/sasl/scram"
	_ "github.com/twmb/franz-go/pkg/kfake"
	_ "golang.org/x/crypto/nacl/box"
	_ "gopkg.in/yaml.v3"
)
