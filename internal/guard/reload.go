package guard

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/internal/allowlist"
)

// AllowlistReloadInterval is the least time between two looks at the
// allowlist file for changes.
const AllowlistReloadInterval = 10 * time.Second

// reloadingAllowlist is the allowlist in use, reloaded when its file changes.
// A file that fails to load keeps the previous allowlist in force: an
// operator's typo must not drop every exemption at once.
type reloadingAllowlist struct {
	path string
	log  zerolog.Logger
	cur  atomic.Pointer[Allowlist]

	mu        sync.Mutex
	modTime   time.Time
	size      int64
	nextCheck time.Time
	failures  atomic.Uint64
}

func newAllowlistFile(path string, log zerolog.Logger) (*reloadingAllowlist, error) {
	f := &reloadingAllowlist{path: path, log: log}
	// Stat before reading: a change after the read then shows as a new
	// modification time.
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("reading allowlist: %w", err)
	}
	a, err := allowlist.Load(path)
	if err != nil {
		return nil, err
	}
	f.cur.Store(a)
	f.modTime, f.size = st.ModTime(), st.Size()
	return f, nil
}

// get returns the allowlist, reloading the file first when it changed and
// AllowlistReloadInterval passed since the last look.
func (f *reloadingAllowlist) get(now time.Time) *Allowlist {
	f.mu.Lock()
	defer f.mu.Unlock()
	if now.Before(f.nextCheck) {
		return f.cur.Load()
	}
	f.nextCheck = now.Add(AllowlistReloadInterval)
	st, err := os.Stat(f.path)
	if err != nil {
		f.failures.Add(1)
		f.log.Error().Err(err).Str("file", f.path).Msg("allowlist file unreadable; the previous allowlist stays in force")
		return f.cur.Load()
	}
	if st.ModTime().Equal(f.modTime) && st.Size() == f.size {
		return f.cur.Load()
	}
	a, err := allowlist.Load(f.path)
	if err != nil {
		f.failures.Add(1)
		f.log.Error().Err(err).Str("file", f.path).Msg("allowlist file invalid; the previous allowlist stays in force")
		return f.cur.Load()
	}
	f.modTime, f.size = st.ModTime(), st.Size()
	f.cur.Store(a)
	f.log.Warn().Str("file", f.path).Int("entries", a.Len()).Msg("allowlist reloaded")
	return a
}
