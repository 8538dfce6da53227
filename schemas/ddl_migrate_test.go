package schemas

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// withoutAddedColumns is stmts without the definitions of the columns
// added since the audit table first shipped.
func withoutAddedColumns(stmts []string) []string {
	out := make([]string, len(stmts))
	for i, st := range stmts {
		lines := strings.Split(st, "\n")
		kept := lines[:0]
		for _, l := range lines {
			drop := false
			for _, c := range AddedAuditColumns() {
				drop = drop || strings.HasPrefix(l, "    `"+c+"` ")
			}
			if !drop {
				kept = append(kept, l)
			}
		}
		out[i] = strings.Join(kept, "\n")
	}
	return out
}

// testdata/ddl/v1-*.sql is the DDL of the first release (database audit,
// table trail): today's DDL without the added columns is exactly that, so
// a test that creates a table with withoutAddedColumns (or
// audittest.PreviousDDL) creates the table an earlier release created.
func TestDDLWithoutAddedColumnsIsTheFirstRelease(t *testing.T) {
	for name, opts := range map[string]DDLOptions{
		"legacy":         {Database: "audit", Table: "trail", ServerVersion: v18},
		"modern":         {Database: "audit", Table: "trail", ServerVersion: v26},
		"legacy-cluster": {Database: "audit", Table: "trail", ServerVersion: v18, Cluster: "main"},
		"modern-cluster": {Database: "audit", Table: "trail", ServerVersion: v26, Cluster: "main"},
	} {
		want, err := os.ReadFile("testdata/ddl/v1-" + name + ".sql")
		if err != nil {
			t.Fatal(err)
		}
		stmts, err := RenderDDL(opts)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(stmts, ";\n\n")+";\n" == string(want) {
			t.Errorf("%s: today's DDL is the first release's: the added columns are missing", name)
		}
		if got := strings.Join(withoutAddedColumns(stmts), ";\n\n") + ";\n"; got != string(want) {
			t.Errorf("%s: today's DDL without the added columns:\n%s\nthe first release's:\n%s", name, got, want)
		}
	}
}

func TestRenderAddColumns(t *testing.T) {
	ctx := []string{"evidence_context"}
	for _, tc := range []struct {
		name        string
		opts        DDLOptions
		distributed bool
		want        string
	}{
		{"legacy", DDLOptions{Database: "audit", Table: "trail", ServerVersion: v18}, false,
			"ALTER TABLE `audit`.`trail` ADD COLUMN `evidence_context` Array(String) AFTER `evidence`"},
		{"modern", DDLOptions{Database: "audit", Table: "trail", ServerVersion: v26}, false,
			"ALTER TABLE `audit`.`trail` ADD COLUMN IF NOT EXISTS `evidence_context` Array(String) CODEC(ZSTD(1)) AFTER `evidence`"},
		{"legacy cluster, local", DDLOptions{Database: "audit", Table: "trail", ServerVersion: v18, Cluster: "main"}, false,
			"ALTER TABLE `audit`.`trail_local` ON CLUSTER `main` ADD COLUMN `evidence_context` Array(String) AFTER `evidence`"},
		{"legacy cluster, distributed", DDLOptions{Database: "audit", Table: "trail", ServerVersion: v18, Cluster: "main"}, true,
			"ALTER TABLE `audit`.`trail` ADD COLUMN `evidence_context` Array(String) AFTER `evidence`"},
		{"modern cluster, local", DDLOptions{Database: "audit", Table: "trail", ServerVersion: v26, Cluster: "main"}, false,
			"ALTER TABLE `audit`.`trail_local` ON CLUSTER `main` ADD COLUMN IF NOT EXISTS `evidence_context` Array(String) CODEC(ZSTD(1)) AFTER `evidence`"},
		{"modern cluster, distributed", DDLOptions{Database: "audit", Table: "trail", ServerVersion: v26, Cluster: "main"}, true,
			"ALTER TABLE `audit`.`trail` ON CLUSTER `main` ADD COLUMN IF NOT EXISTS `evidence_context` Array(String) AFTER `evidence`"},
	} {
		got, err := RenderAddColumns(tc.opts, tc.distributed, ctx)
		if err != nil || got != tc.want {
			t.Errorf("%s:\n%s (%v)\nwant\n%s", tc.name, got, err, tc.want)
		}
	}
	opts := DDLOptions{Database: "audit", Table: "trail", ServerVersion: v26}
	for name, cols := range map[string][]string{"none": nil, "an original column": {"evidence"}, "unknown": {"x"}} {
		if _, err := RenderAddColumns(opts, false, cols); !errors.Is(err, ErrInvalidDDLOptions) {
			t.Errorf("%s: error %v, want ErrInvalidDDLOptions", name, err)
		}
	}
	if _, err := RenderAddColumns(opts, true, ctx); !errors.Is(err, ErrInvalidDDLOptions) {
		t.Errorf("a Distributed table without a cluster: error %v, want ErrInvalidDDLOptions", err)
	}
}
