package main

import (
	"context"
	"os"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/detector/quality"
	"github.com/revoked-dev/revoked/internal/enrich"
)

func main() {
	enr, _ := enrich.New(enrich.DefaultConfig())
	c := quality.DefaultConfig()
	c.Name = "tuning-stress"
	c.Users = 5000
	c.Seed = 42
	c.EventsPerUserDay = 40
	c.Sim.HandoffShare = 0.5
	c.Sim.VPNShare = 0.3
	c.Sim.SharedNATShare = 0.2
	c.Sim.TravellerShare = 0.1
	c.Enrich = enr.Enrich
	r, err := quality.Run(context.Background(), c, zerolog.Nop())
	if err != nil {
		panic(err)
	}
	r.Print(os.Stdout)
}
