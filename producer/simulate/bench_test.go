package simulate_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/deployments/tokenapi/server/servertest"
	"github.com/revoked-dev/revoked/internal/config"

	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/kafka/kafkatest"
	"github.com/revoked-dev/revoked/producer/simulate"
	"github.com/revoked-dev/revoked/schemas"
)

// BenchmarkRunKafka is BenchmarkGenerate writing to the embedded Kafka
// broker through the project's writer, as the local run does: the cost of
// an event generated and written (the broker, in process, included). Run
// it with -cpu 1 for the events one core generates and writes.
func BenchmarkRunKafka(b *testing.B) {
	cfg := simulate.DefaultConfig()
	cfg.Users = 1000
	cfg.Events = int64(b.N)
	runToKafka(b, cfg, nil)
}

// BenchmarkRunKafkaIssuer is BenchmarkRunKafka with real tokens from the
// reference token API over HTTP (in process, as in the local run): the
// cost of an event with its share of token issuing.
func BenchmarkRunKafkaIssuer(b *testing.B) {
	env := servertest.Start(b)
	icfg := simulate.DefaultHTTPIssuerConfig()
	icfg.URL = env.URL
	icfg.AdminToken = config.NewSecret(servertest.AdminToken)
	icfg.ExchangeClientID = servertest.AppID
	icfg.ExchangeClientSecret = config.NewSecret(servertest.AppSecret)
	issuer, err := simulate.NewHTTPIssuer(icfg, env.HTTP.Client())
	if err != nil {
		b.Fatal(err)
	}
	cfg := simulate.DefaultConfig()
	cfg.Users = 1000
	cfg.Events = int64(b.N)
	cfg.ClientIDs = []string{servertest.AppID, "web-app"}
	cfg.Scopes = servertest.AppScopes
	cfg.DownscopedScopes = []string{"files.read"}
	runToKafka(b, cfg, issuer)
}

// BenchmarkRunLive paces b.N events on the live clock at 30,000 events/s
// (one user per event a second, as the local bench's latency part) into
// the embedded broker, and reports the CPU time the process spent per
// event (cpu-ns/event) and the events per second of CPU (events/cpu-s):
// a simulator that keeps up at 10,000 events/s on a third of a core
// needs 30,000 events/cpu-s.
func BenchmarkRunLive(b *testing.B) {
	const rate = 30_000
	cfg := simulate.DefaultConfig()
	cfg.Clock = simulate.ClockLive
	cfg.Rate = rate
	cfg.Users = rate
	cfg.Events = int64(b.N)
	st, cpu := runToKafka(b, cfg, nil)
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(st.Events), "cpu-ns/event")
	b.ReportMetric(float64(st.Events)/cpu.Seconds(), "events/cpu-s")
}

// runToKafka runs a simulation of cfg, with issuer (nil: none), into an
// embedded broker through the project's writer, timing the run alone,
// reports events per second, and returns the run's stats and the CPU
// time the process spent during the run.
func runToKafka(b *testing.B, cfg simulate.Config, issuer simulate.TokenIssuer) (simulate.Stats, time.Duration) {
	b.Helper()
	c := kafkatest.NewWithPartitions(b, map[string]int{schemas.TopicAuditEvents: 8})
	w, err := kafkax.NewWriter(c.WriterConfig(""), zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = w.Close() }()
	sim, err := simulate.New(cfg, issuer, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime(b)
	st, err := sim.Run(context.Background(), w, simulate.Options{})
	if err != nil {
		b.Fatal(err)
	}
	cpu := cpuTime(b) - cpu0
	b.StopTimer()
	b.ReportMetric(float64(st.Events)/b.Elapsed().Seconds(), "events/s")
	return st, cpu
}

// cpuTime is the user and system CPU time the process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
