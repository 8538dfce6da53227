package campaign_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/revoked-dev/revoked/producer/campaign"
	"github.com/revoked-dev/revoked/producer/revoke"
	"github.com/revoked-dev/revoked/schemas"
)

type timed struct {
	pub revoke.Publisher
	d   atomic.Int64
}

func (p *timed) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	s := time.Now()
	err := p.pub.WriteMessages(ctx, msgs...)
	p.d.Add(int64(time.Since(s)))
	return err
}

func TestZZTiming(t *testing.T) {
	for _, c := range [][2]int{{1000, 100}, {1000, 1000}, {5000, 100}, {5000, 500}, {5000, 5000}, {10000, 100}} {
		batch := c[0]
		f := newFixtureW(t, 4, c[1])
		cfg := f.config("t")
		cfg.BatchSize = batch
		p := &timed{pub: f.w}
		s := time.Now()
		_, err := f.runner(t, cfg, p).Run(t.Context(), &campaign.Targets{Kind: schemas.TargetUser, IDs: userIDs(50000)})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("wbatch %d batch %d: total %s, writes %s", c[1], batch, time.Since(s), time.Duration(p.d.Load()))
	}
}
