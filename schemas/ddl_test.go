package schemas

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseServerVersion(t *testing.T) {
	for in, want := range map[string]ServerVersion{
		"18.16.1":                      {18, 16, 1},
		"26.7.2.1":                     {26, 7, 2},
		"24.8.1.2684 (official build)": {24, 8, 1},
		"18.16.1+ds-7.3+b2":            {18, 16, 1},
		" 20.3 ":                       {20, 3, 0},
	} {
		got, err := ParseServerVersion(in)
		if err != nil || got != want {
			t.Errorf("ParseServerVersion(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "18", "x.y", "version 18.16"} {
		if _, err := ParseServerVersion(bad); err == nil {
			t.Errorf("ParseServerVersion(%q) succeeded", bad)
		}
	}
	if !(ServerVersion{20, 3, 0}).Modern() || (ServerVersion{20, 2, 9}).Modern() || (ServerVersion{18, 16, 1}).Modern() || !(ServerVersion{26, 7, 2}).Modern() {
		t.Error("Modern() boundary is not 20.3")
	}
}

var (
	v18 = ServerVersion{18, 16, 1}
	v26 = ServerVersion{26, 7, 2}
)

func TestRenderDDLLegacy(t *testing.T) {
	stmts, err := RenderDDL(DDLOptions{Database: "audit", Table: "trail", ServerVersion: v18})
	if err != nil {
		t.Fatal(err)
	}
	if len(stmts) != 2 || stmts[0] != "CREATE DATABASE IF NOT EXISTS `audit`" {
		t.Fatalf("statements: %q", stmts)
	}
	table := stmts[1]
	for _, absent := range []string{"DateTime64", "LowCardinality", "CODEC", "TTL", "INDEX", "ON CLUSTER"} {
		if strings.Contains(table, absent) {
			t.Errorf("18.16 DDL contains %s:\n%s", absent, table)
		}
	}
	for _, want := range []string{
		"CREATE TABLE IF NOT EXISTS `audit`.`trail`",
		"`time` DateTime('UTC'),",
		"`step` String,",
		"`evidence` Array(String),",
		"`hash` String\n)",
		"ENGINE = ReplacingMergeTree\n",
		"PARTITION BY toYYYYMM(time)",
		"ORDER BY (user_id, time, row_id, hash)",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("18.16 DDL lacks %q:\n%s", want, table)
		}
	}
}

func TestRenderDDLModern(t *testing.T) {
	stmts, err := RenderDDL(DDLOptions{Database: "audit", Table: "trail", ServerVersion: v26, TTL: 400 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	table := stmts[1]
	for _, want := range []string{
		"`time` DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),",
		"`step` LowCardinality(String),",
		"`detail` String CODEC(ZSTD(1)),",
		"INDEX idx_command_id command_id TYPE bloom_filter(0.01) GRANULARITY 1",
		"TTL toDateTime(time) + INTERVAL 34560000 SECOND",
		"ttl_only_drop_parts = 1",
		"ORDER BY (user_id, time, row_id, hash)",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("modern DDL lacks %q:\n%s", want, table)
		}
	}
}

func TestRenderDDLCluster(t *testing.T) {
	stmts, err := RenderDDL(DDLOptions{Database: "audit", Table: "trail", ServerVersion: v26, Cluster: "main"})
	if err != nil {
		t.Fatal(err)
	}
	if len(stmts) != 3 {
		t.Fatalf("cluster variant: %d statements, want 3", len(stmts))
	}
	for i, want := range []string{
		"CREATE DATABASE IF NOT EXISTS `audit` ON CLUSTER `main`",
		"CREATE TABLE IF NOT EXISTS `audit`.`trail_local` ON CLUSTER `main`",
		"CREATE TABLE IF NOT EXISTS `audit`.`trail` ON CLUSTER `main` AS `audit`.`trail_local`\nENGINE = Distributed('main', 'audit', 'trail_local', cityHash64(row_id))",
	} {
		if !strings.HasPrefix(stmts[i], want) {
			t.Errorf("statement %d:\n%s\nwant prefix\n%s", i, stmts[i], want)
		}
	}
	if !strings.Contains(stmts[1], "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/audit/trail_local', '{replica}')") {
		t.Errorf("local table engine:\n%s", stmts[1])
	}
}

// Both variants have the same columns in the same order.
func TestRenderDDLSameColumns(t *testing.T) {
	names := func(v ServerVersion) []string {
		stmts, err := RenderDDL(DDLOptions{Database: "d", Table: "t", ServerVersion: v})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, line := range strings.Split(stmts[1], "\n") {
			if strings.HasPrefix(line, "    `") {
				out = append(out, strings.Trim(strings.Fields(line)[0], "`"))
			}
		}
		return out
	}
	if a, b := names(v18), names(v26); !reflect.DeepEqual(a, b) || !reflect.DeepEqual(a, AuditColumnNames()) {
		t.Errorf("columns differ:\n18.16: %v\n26.7:  %v", a, b)
	}
	// One column per AuditRow field, named by its JSON tag.
	rt := reflect.TypeFor[AuditRow]()
	if rt.NumField() != len(AuditColumnNames()) {
		t.Fatalf("AuditRow has %d fields, the table %d columns", rt.NumField(), len(AuditColumnNames()))
	}
	for i, name := range AuditColumnNames() {
		tag := strings.Split(rt.Field(i).Tag.Get("json"), ",")[0]
		if tag != name {
			t.Errorf("column %d is %q, AuditRow field %d is %q", i, name, i, tag)
		}
	}
}

func TestRenderDDLValidation(t *testing.T) {
	_, err := RenderDDL(DDLOptions{Database: "a-b", Table: "", Cluster: "x y", TTL: -1})
	if !errors.Is(err, ErrInvalidDDLOptions) {
		t.Fatalf("error = %v, want ErrInvalidDDLOptions", err)
	}
	for _, want := range []string{"database", "table is required", "cluster", "server version", "negative"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	_, err = RenderDDL(DDLOptions{Database: "a", Table: "b", ServerVersion: v18, TTL: 48 * time.Hour})
	if !errors.Is(err, ErrUnsupported) {
		t.Errorf("TTL on 18.16: error = %v, want ErrUnsupported", err)
	}
}
