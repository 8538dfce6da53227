package guard

import "github.com/revoked-dev/revoked/internal/killswitch"

// KillSwitch is the guards' one kill switch (internal/killswitch), with one
// HTTP shape on both components and one meaning each.
type KillSwitch = killswitch.Switch

// What engaging each component's kill switch does.
const (
	// DetectorKillSwitchMeaning: the detector turns every command into
	// dry_run.
	DetectorKillSwitchMeaning = "every command is a dry run"
	// ConsumerKillSwitchMeaning: the consumer holds every enforcing
	// command for approval.
	ConsumerKillSwitchMeaning = "enforcing commands are held for approval"
)
