package box_test

import (
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/rs/zerolog"

	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/kafka/kafkatest"
	"github.com/revoked-dev/revoked/producer/ingest"
	"github.com/revoked-dev/revoked/producer/ingest/box"
	"github.com/revoked-dev/revoked/producer/ingest/source"
	"github.com/revoked-dev/revoked/schemas"
)

// BenchmarkMapEvent maps one enterprise LOGIN event.
func BenchmarkMapEvent(b *testing.B) {
	raw := mustJSON(b, enterpriseEvent(b, "e1", "LOGIN", t0, "198.51.100.7"))
	m := box.Mapping{}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Event(source.Record{Raw: raw}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPollIntoKafka reads pages of 500 events from a scripted Box
// over loopback HTTP into the embedded broker, checkpointing each page;
// it reports events per second of the whole path.
func BenchmarkPollIntoKafka(b *testing.B) {
	const pages, perPage = 20, 500
	k := kafkatest.New(b, schemas.TopicAuditEvents, schemas.TopicDLQ, schemas.TopicUnmapped)
	w, err := kafkax.NewWriter(k.WriterConfig(""), zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = w.Close() })
	fb := newFakeBox(b)
	n := 0
	for p := range pages {
		var entries []map[string]any
		for range perPage {
			entries = append(entries, enterpriseEvent(b, fmt.Sprintf("e%d", n), "DOWNLOAD", t0.Add(time.Duration(n)*time.Millisecond), "198.51.100.7"))
			n++
		}
		fb.page(strconv.Itoa(p), strconv.Itoa(p+1), entries...)
	}
	sink, err := source.NewSink(ingest.DefaultConfig(), w, box.FormatEvent, box.StreamSourceName, nil)
	if err != nil {
		b.Fatal(err)
	}
	cfg := fb.config()
	poll := source.DefaultPollConfig()
	poll.UntilCaughtUp = true
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		poll.Checkpoint = filepath.Join(b.TempDir(), "box.checkpoint")
		cfg.Start = "0"
		p, err := box.NewPoller(cfg, poll, sink, zerolog.Nop(), nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := p.Run(b.Context(), ""); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(pages*perPage*b.N)/b.Elapsed().Seconds(), "events/s")
}
