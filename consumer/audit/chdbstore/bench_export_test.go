package chdbstore

import "context"

// ExecForTest runs a statement on s's engine and returns its output as
// TabSeparated: the benchmarks fill their table with INSERT ... SELECT.
func ExecForTest(ctx context.Context, s *Store, sql string) ([]byte, error) {
	return s.exec(ctx, sql, "TabSeparated")
}

// ReadRowsFromFilesForTest makes s insert rows of at least minBytes of
// TabSeparated text through a file (0: every Append).
func ReadRowsFromFilesForTest(s *Store, minBytes int) { s.infileMin = minBytes }

// InsertDir is the subdirectory of a data directory that holds insert
// files.
const InsertDir = insertDir
