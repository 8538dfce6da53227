package guard

import (
	"errors"
	"os"
	"sync/atomic"
)

// KillSwitch turns every command into dry_run while it is on. It is on
// while its file exists or while an operator has turned it on (Set); the
// file is the operator's hard switch, which Set(false) does not override.
// It is safe for concurrent use.
type KillSwitch struct {
	file string
	set  atomic.Bool
}

// NewKillSwitch returns a kill switch watching file ("" for none), off.
func NewKillSwitch(file string) *KillSwitch { return &KillSwitch{file: file} }

// Set turns the runtime switch on or off.
func (k *KillSwitch) Set(on bool) { k.set.Store(on) }

// State reports the runtime switch and whether the file exists. The switch
// is on when either is. A file that cannot be checked (permission denied,
// say) counts as present: when in doubt, do not enforce.
func (k *KillSwitch) State() (runtime, file bool) {
	runtime = k.set.Load()
	if k.file != "" {
		_, err := os.Stat(k.file)
		file = err == nil || !errors.Is(err, os.ErrNotExist)
	}
	return runtime, file
}

// On reports whether the switch is on.
func (k *KillSwitch) On() bool {
	r, f := k.State()
	return r || f
}
