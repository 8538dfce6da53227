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

	// The family's profiles were written, with their seeds, before any of
	// them was run, and none has been run to change a rule. Earlier
	// families (seeds 7101 to 7404, then 8101 to 8404) were each run and
	// then rules changed, so they are no longer held out; the README
	// quotes their results. This one leans on what those changes touched:
	// password changes, new laptops and devices, travel, phones.

	// A hospital: shifts round the clock and at weekends, shared
	// workstations behind the hospital's NAT, tired typing, forced
	// password rotation, outages; attacks lean to phishing kits, MFA
	// fatigue and takeovers.
	hospital := base("heldout-hospital", 9101, 5000, 30, 7*24*time.Hour, 12)
	hospital.Sim.OfficeShare = 0.4
	hospital.Sim.SharedNATShare = 0.25
	hospital.Sim.HandoffShare = 0.35
	hospital.Sim.VPNShare = 0.05
	hospital.Sim.SyncShare = 0.03
	hospital.Sim.TravellerShare = 0.02
	hospital.Sim.ServiceShare = 0.01
	hospital.Sim.WeekendShare = 0.6
	hospital.Sim.OutageRate = 0.3
	hospital.Sim.MistypeProb = 0.08
	hospital.Sim.PasswordChangeProb = 0.02
	hospital.Sim.AttackMix = []string{
		simulate.AttackMFAFatigue + "=2", simulate.AttackSessionHijack + "=2",
		simulate.AttackPasswordResetTakeover + "=1.5", simulate.AttackNewLocationAction + "=1.5",
		simulate.AttackDistributedStuffing + "=0.4",
	}

	// A university: students and staff on phones and home broadband, a
	// campus NAT, new laptops at the start of term, travel, weekends;
	// attacks lean to password attacks, data theft and stolen tokens.
	university := base("heldout-university", 9202, 6000, 25, 7*24*time.Hour, 12)
	university.Sim.OfficeShare = 0.15
	university.Sim.SharedNATShare = 0.3
	university.Sim.HandoffShare = 0.6
	university.Sim.VPNShare = 0.1
	university.Sim.SyncShare = 0.1
	university.Sim.TravellerShare = 0.15
	university.Sim.TravelProb = 0.05
	university.Sim.ServiceShare = 0.005
	university.Sim.WeekendShare = 0.5
	university.Sim.OutageRate = 0.15
	university.Sim.ExchangeProb = 0.2
	university.Sim.AttackMix = []string{
		simulate.AttackPasswordSpraying + "=1", simulate.AttackMassDownload + "=2",
		simulate.AttackImpossibleTravel + "=2", simulate.AttackDistributedStuffing + "=0.5",
	}
	university.Sim.ReplayProb *= 1.5

	// A bank: offices and the VPN, strict rotation of passwords, frequent
	// grants of access, some travel, integrations; attacks lean to
	// escalation and to taking over accounts.
	bank := base("heldout-bank", 9303, 3000, 40, 7*24*time.Hour, 12)
	bank.Sim.OfficeShare = 0.6
	bank.Sim.SharedNATShare = 0.02
	bank.Sim.HandoffShare = 0.2
	bank.Sim.VPNShare = 0.7
	bank.Sim.SyncShare = 0.04
	bank.Sim.TravellerShare = 0.1
	bank.Sim.ServiceShare = 0.02
	bank.Sim.WeekendShare = 0.05
	bank.Sim.OutageRate = 0.1
	bank.Sim.PasswordChangeProb = 0.03
	bank.Sim.PermissionChangeProb = 0.05
	bank.Sim.AttackMix = []string{
		simulate.AttackPrivilegeEscalation + "=2", simulate.AttackEscalationSharing + "=2",
		simulate.AttackTokenAfterPassword + "=2", simulate.AttackNewLocationAction + "=1.5",
		simulate.AttackDistributedStuffing + "=0.3",
	}

	// Field services: technicians and drivers on phones all day, on the
	// road between cities, new devices issued often, a small office;
	// attacks lean to stolen tokens, travel and data theft.
	field := base("heldout-field", 9404, 2500, 35, 6*24*time.Hour, 12)
	field.Sim.OfficeShare = 0.1
	field.Sim.SharedNATShare = 0.05
	field.Sim.HandoffShare = 0.8
	field.Sim.VPNShare = 0.05
	field.Sim.SyncShare = 0.08
	field.Sim.TravellerShare = 0.25
	field.Sim.TravelProb = 0.08
	field.Sim.ServiceShare = 0.01
	field.Sim.WeekendShare = 0.4
	field.Sim.OutageRate = 0.2
	field.Sim.AttackMix = []string{
		simulate.AttackImpossibleTravel + "=2", simulate.AttackMassDownload + "=1.5",
		simulate.AttackNewLocationAction + "=1.5", simulate.AttackSessionHijack + "=1.5",
		simulate.AttackDistributedStuffing + "=0.4",
	}
	field.Sim.ReplayProb *= 1.5

	return []Config{hospital, university, bank, field}
}
