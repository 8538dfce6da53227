package testenv

import (
	"regexp"
	"strings"
	"sync"
	"testing"
)

func TestRequired(t *testing.T) {
	for _, tc := range []struct {
		ci, require string
		name        string
		want        bool
	}{
		{"", "", ClickHouse, false},
		{"true", "", ChDB, true},
		{"TRUE", "", ChDB, true},
		{"false", "chdb", ChDB, true},
		{"", "clickhouse,chdb", ClickHouse, true},
		{"", "clickhouse chdb", ChDB, true},
		{"", "clickhouse", ChDB, false},
		{"", "all", ClickHouse, true},
		{"", "chdbx", ChDB, false},
		{"", "clickhouse,chdb,chromium,geoip", GeoIP, true},
		{"", "clickhouse,chdb", GeoIP, false},
		{"", "clickhouse,chdb,chromium,geoip,hydra", Hydra, true},
		{"", "clickhouse,chdb,chromium,geoip", Hydra, false},
	} {
		t.Setenv(EnvCI, tc.ci)
		t.Setenv(EnvRequire, tc.require)
		if got := Required(tc.name); got != tc.want {
			t.Errorf("CI=%q REVOKED_TEST_REQUIRE=%q: Required(%s) = %t, want %t", tc.ci, tc.require, tc.name, got, tc.want)
		}
	}
}

func TestUniqueName(t *testing.T) {
	a, b := UniqueName(t, "revoked_test"), UniqueName(t, "revoked_test")
	if a == b {
		t.Errorf("two names alike: %s", a)
	}
	ident := regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)
	for _, n := range []string{a, b} {
		if !ident.MatchString(n) || len(n) > 128 {
			t.Errorf("%q is not a plain identifier", n)
		}
	}
	t.Run("sub/test with spaces & Ünïcode", func(t *testing.T) {
		if n := UniqueName(t, "x"); !ident.MatchString(n) {
			t.Errorf("%q is not a plain identifier", n)
		}
	})
}

func TestMissingServiceSkips(t *testing.T) {
	t.Setenv(EnvCI, "")
	t.Setenv(EnvRequire, "")
	t.Setenv(EnvClickHouseDSN, "")
	t.Setenv(EnvChDBLibPath, "/nonexistent/libchdb.so")
	t.Setenv(EnvGeoIPDir, "/nonexistent/geoip")
	t.Setenv(EnvHydraPublic, "http://127.0.0.1:4444")
	t.Setenv(EnvHydraAdmin, "")
	geoip := func(t testing.TB) string { return GeoIPDir(t, "asn-ipv4.csv") }
	hydra := func(t testing.TB) string { _, admin := HydraURLs(t); return admin }
	for name, f := range map[string]func(testing.TB) string{"clickhouse": ClickHouseDSN, "chdb": ChDBLibPath, "geoip": geoip, "hydra": hydra} {
		ok := t.Run(name, func(t *testing.T) {
			f(t)
			t.Error("did not skip")
		})
		if !ok {
			t.Errorf("%s: the subtest failed instead of skipping", name)
		}
	}
}

func TestLogBufferConcurrentWriters(t *testing.T) {
	var logs LogBuffer
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				_, _ = logs.Write([]byte("line\n"))
				_ = logs.String()
			}
		}()
	}
	wg.Wait()
	if got := strings.Count(logs.String(), "line\n"); got != 400 {
		t.Errorf("%d lines, want 400", got)
	}
}
