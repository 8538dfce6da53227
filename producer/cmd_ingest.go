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
	"github.com/revoked-dev/revoked/producer/ingest/ocsf"
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
	// Format is what the lines are: AuditEvents, or OCSF events read
	// with ocsf.Decoder (whose unmapped classes go to the unmapped
	// topic).
	Format string `flag:"format" env:"REVOKED_INGEST_FORMAT" yaml:"format" usage:"what the lines are: auditevent (AuditEvent v1 JSON) or ocsf (OCSF Authentication, Account Change, API Activity)"`
	// OCSFUserKey is which attribute of an OCSF user becomes user_id.
	OCSFUserKey string `flag:"ocsf.user-key" env:"REVOKED_INGEST_OCSF_USER_KEY" yaml:"ocsf_user_key" usage:"with -format ocsf: the user attribute that becomes user_id: uid, name or email_addr"`
}

// Formats of -format.
const (
	formatAuditEvent = "auditevent"
	formatOCSF       = "ocsf"
)

// stringsFlag is a repeatable string flag.
type stringsFlag []string

func (s *stringsFlag) String() string     { return strings.Join(*s, ",") }
func (s *stringsFlag) Set(v string) error { *s = append(*s, v); return nil }

func runIngest(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "box-events":
			return runBoxEvents(ctx, args[1:], stdout, stderr)
		case "box-webhook":
			return runBoxWebhook(ctx, args[1:], stderr)
		case "okta-logs":
			return runOktaLogs(ctx, args[1:], stdout, stderr)
		}
	}
	cfg := ingestConfig{Common: defaultKafkaConfig(), Ingest: ingest.DefaultConfig(), HTTP: ingest.DefaultHTTPConfig(), GeoIP: enrich.DefaultConfig(),
		Format: formatAuditEvent, OCSFUserKey: ocsf.UserKeyUID}
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
	p.Check(cfg.Format == formatAuditEvent || cfg.Format == formatOCSF, "format", "want auditevent or ocsf, got %q", cfg.Format)
	p.Check(cfg.OCSFUserKey == ocsf.UserKeyUID || cfg.OCSFUserKey == ocsf.UserKeyName || cfg.OCSFUserKey == ocsf.UserKeyEmail,
		"ocsf.user-key", "want uid, name or email_addr, got %q", cfg.OCSFUserKey)
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
	topics := []string{cfg.Ingest.Topic, cfg.Ingest.DLQTopic}
	var opts []ingest.Option
	if cfg.Format == formatOCSF {
		topics = append(topics, cfg.Ingest.UnmappedTopic)
		opts = append(opts, ingest.WithDecoder(ocsf.Format, ocsf.Decoder{UserKey: cfg.OCSFUserKey}.Decode))
	}
	w, err := cfg.Common.writer(ctx, log, topics...)
	if err != nil {
		return err
	}
	defer func() { _ = w.Close() }()
	if cfg.HTTP.Addr != "" {
		ep, err := ingest.NewEndpoint(ingest.EndpointConfig{Ingest: cfg.Ingest, HTTP: cfg.HTTP, GeoIP: cfg.GeoIP, Kafka: cfg.Common.Kafka},
			w, log, ops.NewRegistry(), opts...)
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
		total.Unmapped += res.Unmapped
	}
	if len(files) > 1 {
		fmt.Fprintf(stdout, "total: %d lines, %d accepted, %d rejected", total.Lines, total.Accepted, total.RejectedTotal)
		if total.Unmapped > 0 {
			fmt.Fprintf(stdout, ", %d unmapped", total.Unmapped)
		}
		fmt.Fprintln(stdout)
	}
	return nil
}

// report prints what an ingestion did, with the rejected lines.
func report(w io.Writer, res ingest.Result) {
	fmt.Fprintf(w, "%s: %d lines, %d accepted, %d rejected (dead-lettered)", res.Source, res.Lines, res.Accepted, res.RejectedTotal)
	if res.Unmapped > 0 {
		fmt.Fprintf(w, ", %d unmapped (kept on the unmapped topic)", res.Unmapped)
	}
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
