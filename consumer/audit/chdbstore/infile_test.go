package chdbstore_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/consumer/audit/audittest"
	"github.com/revoked-dev/revoked/consumer/audit/chdbstore"
	"github.com/revoked-dev/revoked/schemas"
)

// insertFiles lists what the insert directory of dir holds.
func insertFiles(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, chdbstore.InsertDir))
	if err != nil {
		t.Fatalf("reading the insert directory: %v", err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// TestContractThroughFiles runs the whole store contract with every
// Append read from a file, and checks that each run leaves no file.
func TestContractThroughFiles(t *testing.T) {
	audittest.Run(t, func(tb testing.TB) audit.Store {
		dir := tb.TempDir()
		s := openAt(tb, dir)
		chdbstore.ReadRowsFromFilesForTest(s, 0)
		tb.Cleanup(func() {
			if left := insertFiles(tb, dir); len(left) > 0 {
				tb.Errorf("insert files left behind: %v", left)
			}
		})
		return s
	})
}

// TestInsertFileRemovedOnFailure: a statement the engine refuses (no
// table yet) leaves no file behind, and the error names the rows.
func TestInsertFileRemovedOnFailure(t *testing.T) {
	dir := t.TempDir()
	s := openAt(t, dir)
	chdbstore.ReadRowsFromFilesForTest(s, 0)
	rows := audittest.Link("c", 0, "", []schemas.AuditRow{audittest.Row(1), audittest.Row(2)})
	err := s.Append(context.Background(), rows)
	if err == nil {
		t.Fatal("Append into a table that does not exist succeeded")
	}
	t.Logf("Append: %v", err)
	if left := insertFiles(t, dir); len(left) > 0 {
		t.Errorf("insert files left behind: %v", left)
	}
}

// TestInsertFilesOfACrashRemovedAtOpen: a file a crashed process left in
// the insert directory is gone once the directory is opened again.
func TestInsertFilesOfACrashRemovedAtOpen(t *testing.T) {
	dir := t.TempDir()
	left := filepath.Join(dir, chdbstore.InsertDir, "append-1.tsv")
	if err := os.MkdirAll(filepath.Dir(left), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(left, []byte("rows\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := openAt(t, dir)
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(left); !os.IsNotExist(err) {
		t.Errorf("the crashed insert's file is still there (stat: %v)", err)
	}
	fi, err := os.Stat(filepath.Dir(left))
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("insert directory: %v, mode %v; want 0700", err, fi.Mode().Perm())
	}
}
