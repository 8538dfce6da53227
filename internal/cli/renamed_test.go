package cli_test

import (
	"strings"
	"testing"

	"github.com/revoked-dev/revoked/internal/cli"
)

func TestRefuseRenamed(t *testing.T) {
	renamed := []cli.Renamed{
		{Flag: "ops.", NowFlag: "http.", Env: "REVOKED_OPS_", NowEnv: "REVOKED_HTTP_"},
		{Flag: "guard.budget-per-minute", NowFlag: "guard.budget", Env: "REVOKED_GUARD_BUDGET_PER_MINUTE", NowEnv: "REVOKED_GUARD_BUDGET"},
	}
	for _, tc := range []struct {
		args, env []string
		want      string
	}{
		{[]string{"-ops.addr", ":9091"}, nil, "-http.addr"},
		{[]string{"--ops.addr=:9091"}, nil, "-http.addr now"},
		{[]string{"-guard.budget-per-minute=60"}, nil, "-guard.budget now"},
		{nil, []string{"PATH=/bin", "REVOKED_OPS_ADDR=:9091"}, "REVOKED_HTTP_ADDR"},
		{nil, []string{"REVOKED_GUARD_BUDGET_PER_MINUTE=60"}, "REVOKED_GUARD_BUDGET now"},
	} {
		err := cli.RefuseRenamed(tc.args, tc.env, renamed...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: %v, want it to name %s", tc.args, tc.env, err, tc.want)
		}
	}
	ok := []string{"-http.addr", ":9091", "-guard.budget", "60", "-guard.budget-per-minutes", "-ops", "ops.addr"}
	if err := cli.RefuseRenamed(ok, []string{"REVOKED_HTTP_ADDR=:1", "REVOKED_GUARD_BUDGET=60"}, renamed...); err != nil {
		t.Errorf("current settings refused: %v", err)
	}
}
