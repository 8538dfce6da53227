package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/revoked-dev/revoked/internal/cli"
	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/internal/enrich"
	"github.com/revoked-dev/revoked/internal/ops"
	"github.com/revoked-dev/revoked/internal/progress"
	"github.com/revoked-dev/revoked/producer/ingest"
)

// ingestConfig is everything "producer ingest" reads.
type ingestConfig struct {
	Common kafkaConfig
	// Ingest's settings sit at the top level: -topic, -batch-size,
	// REVOKED_INGEST_TOPIC.
	Ingest ingest.Config `env:"REVOKED_INGEST" yaml:"ingest"`
	// HTTP gives -listen and REVOKED_INGEST_LISTEN; the bearer token comes
	// from REVOKED_INGEST_BEARER_TOKEN or the file named by
	// REVOKED_INGEST_BEARER_TOKEN_FILE.
	HTTP ingest.HTTPConfig `env:"REVOKED_INGEST" yaml:"http"`
	// GeoIP enriches events before they are published: -geoip.dir,
	// REVOKED_GEOIP_DIR.
	GeoIP    enrich.Config `flag:"geoip" env:"REVOKED_GEOIP" yaml:"geoip"`
	Stdin    bool          `flag:"stdin" usage:"read events from standard input"`
	Progress bool          `flag:"progress" usage:"draw a progress bar on stderr even when it is not a terminal"`
}

// stringsFlag is a repeatable string flag.
type stringsFlag []string

func (s *stringsFlag) String() string     { return strings.Join(*s, ",") }
func (s *stringsFlag) Set(v string) error { *s = append(*s, v); return nil }

func runIngest(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	cfg := ingestConfig{Common: defaultKafkaConfig(), Ingest: ingest.DefaultConfig(), HTTP: ingest.DefaultHTTPConfig(), GeoIP: enrich.DefaultConfig()}
	// Listening is chosen by giving an address.
	cfg.HTTP.Addr = ""
	// Batches of the ingester go to Kafka whole.
	cfg.Common.Kafka.BatchSize = cfg.Ingest.BatchSize

	fs := cli.NewFlagSet("producer ingest", stderr)
	var files stringsFlag
	fs.Var(&files, "file", "JSONL file of audit events (repeatable)")
	if err := cli.Load(fs, args, &cfg); err != nil {
		return err
	}

	var p config.Problems
	cfg.Common.validate(&p)
	p.Nest("", cfg.Ingest.Validate())
	modes := 0
	for _, on := range []bool{len(files) > 0, cfg.Stdin, cfg.HTTP.Addr != ""} {
		if on {
			modes++
		}
	}
	p.Check(modes == 1, "file", "give exactly one source: --file (repeatable), --stdin or --listen")
	if cfg.HTTP.Addr != "" {
		p.Nest("", cfg.HTTP.Validate())
	}
	if err := p.Err(); err != nil {
		return err
	}
	if err := cfg.Common.TokenIDs.Apply(); err != nil {
		return err
	}

	log, err := ops.NewLogger(cfg.Common.Log, stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	w, err := cfg.Common.writer(ctx, log, cfg.Ingest.Topic, cfg.Ingest.DLQTopic)
	if err != nil {
		return err
	}
	defer func() { _ = w.Close() }()
	if cfg.HTTP.Addr != "" {
		ep, err := ingest.NewEndpoint(ingest.EndpointConfig{Ingest: cfg.Ingest, HTTP: cfg.HTTP, GeoIP: cfg.GeoIP, Kafka: cfg.Common.Kafka},
			w, log, ops.NewRegistry())
		if err != nil {
			return err
		}
		return ep.Run(ctx)
	}
	enricher, err := enrich.NewLogged(cfg.GeoIP, log)
	if err != nil {
		return err
	}
	defer func() { _ = enricher.Close() }()
	var opts []ingest.Option
	if enricher != nil {
		opts = append(opts, ingest.WithEnrich(enricher.Enrich))
	}
	in, err := ingest.New(cfg.Ingest, w, log, opts...)
	if err != nil {
		return err
	}

	if cfg.Stdin {
		bar := newBar(stderr, cfg.Progress, progress.Config{Label: "stdin", Unit: "lines"})
		res, err := in.Ingest(ctx, stdin, "stdin", func(_, lines int64) { bar.Set(lines) })
		bar.Finish()
		report(stdout, res)
		return ingestErr(err, res)
	}

	var total ingest.Result
	for _, f := range files {
		bar := newBar(stderr, cfg.Progress, progress.Config{Label: filepath.Base(f), Total: ingest.FileSize(f), Format: progress.FormatBytes})
		res, err := in.IngestFile(ctx, f, func(bytes, _ int64) { bar.Set(bytes) })
		bar.Finish()
		report(stdout, res)
		if err != nil {
			return ingestErr(err, res)
		}
		total.Lines += res.Lines
		total.Accepted += res.Accepted
		total.RejectedTotal += res.RejectedTotal
	}
	if len(files) > 1 {
		fmt.Fprintf(stdout, "total: %d lines, %d accepted, %d rejected\n", total.Lines, total.Accepted, total.RejectedTotal)
	}
	return nil
}

// report prints what an ingestion did, with the rejected lines.
func report(w io.Writer, res ingest.Result) {
	fmt.Fprintf(w, "%s: %d lines, %d accepted, %d rejected (dead-lettered)", res.Source, res.Lines, res.Accepted, res.RejectedTotal)
	if res.Blank > 0 {
		fmt.Fprintf(w, ", %d blank", res.Blank)
	}
	fmt.Fprintln(w)
	for _, r := range res.Rejected {
		fmt.Fprintf(w, "  line %d: %s\n", r.Line, r.Error)
	}
	if n := res.RejectedTotal - int64(len(res.Rejected)); n > 0 {
		fmt.Fprintf(w, "  ... and %d more rejected lines (see the dead-letter topic)\n", n)
	}
}

// ingestErr adds where to resume to a failed ingestion's error.
func ingestErr(err error, res ingest.Result) error {
	if err == nil {
		return nil
	}
	if stopped(err) {
		return fmt.Errorf("interrupted; every line through %d of %s is published: %w", res.PublishedThrough, res.Source, err)
	}
	return errors.Join(err, fmt.Errorf("every line through %d of %s is published; resume after it", res.PublishedThrough, res.Source))
}
