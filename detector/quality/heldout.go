package quality

import (
	"time"

	"github.com/revoked-dev/revoked/producer/simulate"
)

// HeldOut is the held-out family: profiles that differ from the default
// one in seed, size, activity, the shares of the benign classes and the
// mix of attacks, for measuring rules that were tuned on DefaultConfig.
// Tuning must never look at them. Each runs in well under a minute on two
// cores: a week of attack-free baseline (six days in one) and three days
// of attacks, at a lighter activity than the default profile's, with about
// a dozen victims of every kind per profile (more of the kinds a profile
// leans to), so that the family holds fifty or more of each and most users
// stay untouched by any attack.
func HeldOut() []Config {
	// base is a profile whose attack rates give each kind of attack about
	// perKind victims (at weight 1) in its three days of attacks: a
	// session has about 16 events.
	base := func(name string, seed int64, users int, perDay float64, baseline time.Duration, perKind float64) Config {
		c := DefaultConfig()
		c.Name, c.Seed, c.Users, c.EventsPerUserDay = name, seed, users, perDay
		c.Sim.AttacksAfter = baseline
		c.Duration = baseline + 3*24*time.Hour
		sessions := float64(users) * perDay / 16 * 3
		c.Sim.BruteForceProb = 2 * perKind / sessions
		c.Sim.ReplayProb = perKind / sessions
		c.Sim.AttackProb = 15 * perKind / sessions
		c.Sim.AttackMix = nil
		return c
	}

	// A university-heavy tenant: many students behind campus NAT, phones
	// everywhere, weekend work, frequent outages; attacks lean to the
	// quiet, distributed kinds.
	campus := base("heldout-campus", 7101, 3000, 40, 6*24*time.Hour, 12)
	campus.Sim.OfficeShare = 0.2
	campus.Sim.SharedNATShare = 0.3
	campus.Sim.HandoffShare = 0.45
	campus.Sim.VPNShare = 0.05
	campus.Sim.SyncShare = 0.02
	campus.Sim.TravellerShare = 0.04
	campus.Sim.ServiceShare = 0.005
	campus.Sim.WeekendShare = 0.35
	campus.Sim.OutageRate = 0.5
	campus.Sim.MistypeProb = 0.08
	campus.Sim.AttackMix = []string{
		simulate.AttackLowAndSlow + "=2", simulate.AttackDistributedStuffing + "=0.6",
		simulate.AttackPasswordSpraying + "=1", simulate.AttackMFAFatigue + "=1.5",
	}

	// An enterprise: offices, the corporate VPN for a third of the staff,
	// frequent travellers, more service accounts; attacks lean to session
	// theft and takeover.
	enterprise := base("heldout-enterprise", 7202, 4500, 25, 7*24*time.Hour, 12)
	enterprise.Sim.OfficeShare = 0.65
	enterprise.Sim.SharedNATShare = 0.02
	enterprise.Sim.HandoffShare = 0.2
	enterprise.Sim.VPNShare = 0.35
	enterprise.Sim.SyncShare = 0.03
	enterprise.Sim.TravellerShare = 0.15
	enterprise.Sim.TravelProb = 0.05
	enterprise.Sim.ServiceShare = 0.008
	enterprise.Sim.WeekendShare = 0.05
	enterprise.Sim.OutageRate = 0.15
	enterprise.Sim.AttackMix = []string{
		simulate.AttackSessionHijack + "=2.5", simulate.AttackPasswordResetTakeover + "=2",
		simulate.AttackTokenAfterPassword + "=1.5", simulate.AttackImpossibleTravel + "=1.5",
		simulate.AttackNewLocationAction + "=1.5", simulate.AttackPasswordSpraying + "=0.5",
		simulate.AttackDistributedStuffing + "=0.3",
	}

	// A small, mobile-first company: most people on phones, no offices to
	// speak of, new laptops being rolled out; attacks lean to data theft.
	mobile := base("heldout-mobile", 7303, 2500, 45, 7*24*time.Hour, 12)
	mobile.Sim.OfficeShare = 0.1
	mobile.Sim.SharedNATShare = 0.05
	mobile.Sim.HandoffShare = 0.6
	mobile.Sim.VPNShare = 0.1
	mobile.Sim.SyncShare = 0.04
	mobile.Sim.TravellerShare = 0.1
	mobile.Sim.ServiceShare = 0.01
	mobile.Sim.WeekendShare = 0.2
	mobile.Sim.OutageRate = 0.3
	mobile.Sim.ExchangeProb = 0.3
	mobile.Sim.AttackMix = []string{
		simulate.AttackMassDownload + "=2", simulate.AttackDownscopedMinting + "=2",
		simulate.AttackDownscopedMisuse + "=2", simulate.AttackEscalationSharing + "=2",
		simulate.AttackPrivilegeEscalation + "=1.5", simulate.AttackPasswordSpraying + "=0.5",
		simulate.AttackDistributedStuffing + "=0.3",
	}

	// A large, quiet tenant: little activity per user, integrations
	// (chatty: hundreds of calls a day each), the default mix of attacks.
	large := base("heldout-large", 7404, 5000, 16, 7*24*time.Hour, 14)
	large.Sim.OfficeShare = 0.4
	large.Sim.SharedNATShare = 0.06
	large.Sim.HandoffShare = 0.3
	large.Sim.VPNShare = 0.2
	large.Sim.SyncShare = 0.02
	large.Sim.TravellerShare = 0.06
	large.Sim.ServiceShare = 0.008
	large.Sim.WeekendShare = 0.1
	large.Sim.OutageRate = 0.25
	large.Sim.AttackMix = []string{simulate.AttackPasswordSpraying + "=0.5", simulate.AttackDistributedStuffing + "=0.3"}

	return []Config{campus, enterprise, mobile, large}
}
