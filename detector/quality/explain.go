package quality

import (
	"encoding/json"
	"io"
	"slices"
	"time"

	"github.com/revoked-dev/revoked/producer/simulate"
	"github.com/revoked-dev/revoked/schemas"
)

// benignCase is a benign user who was revoked, and when first.
type benignCase struct {
	user    string
	at      time.Time
	classes []string
}

// seenEvent is what Config.Explain keeps of an event: enough to see
// where, from what and in which session a user was.
type seenEvent struct {
	Time      time.Time `json:"time"`
	Type      string    `json:"type"`
	SessionID string    `json:"session_id,omitempty"`
	TokenID   string    `json:"token_id,omitempty"`
	DeviceID  string    `json:"device_id,omitempty"`
	UserAgent string    `json:"user_agent,omitempty"`
	IP        string    `json:"ip,omitempty"`
	ASN       uint32    `json:"asn,omitempty"`
	Network   string    `json:"network,omitempty"`
	Country   string    `json:"country,omitempty"`
	City      string    `json:"city,omitempty"`
	Bytes     int64     `json:"bytes,omitempty"`
}

func keep(ev *schemas.AuditEvent) seenEvent {
	e := seenEvent{Time: ev.Time, Type: string(ev.Type), SessionID: ev.SessionID, TokenID: ev.TokenID,
		DeviceID: ev.DeviceID, UserAgent: ev.UserAgent, IP: ev.IP, Bytes: ev.Bytes}
	if g := ev.Geo; g != nil {
		e.ASN, e.Network, e.Country, e.City = g.ASN, g.Network, g.Country, g.City
	}
	return e
}

// explained is one line Config.Explain writes: a missed attack or a
// benign user revoked, the user's events around it and the commands that
// targeted them.
type explained struct {
	Profile  string                  `json:"profile"`
	Case     string                  `json:"case"` // "missed" or "benign_revoked"
	UserID   string                  `json:"user_id"`
	Attack   *simulate.GroundTruth   `json:"attack,omitempty"`
	Classes  []string                `json:"classes,omitempty"`
	At       time.Time               `json:"at"`
	Events   []seenEvent             `json:"events"`
	Commands []schemas.RevokeCommand `json:"commands"`
}

// Around a case: the user's events from two hours before to half an hour
// after, and the commands from a day before to the scorer's slack after.
const (
	explainBefore = 2 * time.Hour
	explainAfter  = 30 * time.Minute
)

// explain writes one JSON line per missed attack and per benign user
// revoked.
func explain(w io.Writer, cfg Config, r *Report, events map[string][]seenEvent, dets []detection) error {
	enc := json.NewEncoder(w)
	write := func(x explained, from, to time.Time) error {
		for _, e := range events[x.UserID] {
			if !e.Time.Before(from.Add(-explainBefore)) && !e.Time.After(to.Add(explainAfter)) {
				x.Events = append(x.Events, e)
			}
		}
		for _, d := range dets {
			if at := d.cmd.Reason.LastEventTime; d.user == x.UserID && !at.Before(from.Add(-24*time.Hour)) && !at.After(to.Add(cfg.Slack)) {
				x.Commands = append(x.Commands, d.cmd)
			}
		}
		return enc.Encode(x)
	}
	for i := range r.missed {
		g := r.missed[i]
		if err := write(explained{Profile: r.Profile, Case: "missed", UserID: g.UserID, Attack: &g, At: g.Start}, g.Start, g.End); err != nil {
			return err
		}
	}
	for _, b := range r.benign {
		x := explained{Profile: r.Profile, Case: "benign_revoked", UserID: b.user, Classes: slices.Clone(b.classes), At: b.at}
		if err := write(x, b.at, b.at); err != nil {
			return err
		}
	}
	return nil
}
