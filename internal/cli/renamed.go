package cli

import (
	"fmt"
	"strings"
)

// Renamed is a setting's earlier name and the one that replaced it: a
// flag name and an environment variable. A name ending in "." (flags) or
// "_" (variables) stands for every setting under it.
type Renamed struct {
	Flag, NowFlag string
	Env, NowEnv   string
}

// RefuseRenamed returns an error naming the replacement for the first
// argument or environment variable (KEY=value items) that uses an earlier
// name, so that an old setting neither passes unnoticed (a variable) nor
// fails as an unknown flag without saying what to write instead.
func RefuseRenamed(args, environ []string, renamed ...Renamed) error {
	for _, a := range args {
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if name == a || name == "" {
			continue
		}
		for _, r := range renamed {
			if rest, ok := under(name, r.Flag, "."); ok {
				return fmt.Errorf("-%s: the setting is -%s%s now", name, r.NowFlag, rest)
			}
		}
	}
	for _, kv := range environ {
		key, _, _ := strings.Cut(kv, "=")
		for _, r := range renamed {
			if rest, ok := under(key, r.Env, "_"); ok && r.Env != "" {
				return fmt.Errorf("%s: the setting is %s%s now", key, r.NowEnv, rest)
			}
		}
	}
	return nil
}

// under reports whether name is old, or lies under old when old ends in
// sep, and returns what follows old.
func under(name, old, sep string) (string, bool) {
	if old == "" || !strings.HasPrefix(name, old) {
		return "", false
	}
	rest := name[len(old):]
	return rest, rest == "" || strings.HasSuffix(old, sep)
}
