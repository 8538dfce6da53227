package guard

import "github.com/revoked-dev/revoked/internal/killswitch"

// KillSwitch is the guards' one kill switch (internal/killswitch): while it
// is engaged the detector turns every command into dry_run.
type KillSwitch = killswitch.Switch

// KillSwitchMeaning is what engaging the detector's kill switch does.
const KillSwitchMeaning = "every command is a dry run"
