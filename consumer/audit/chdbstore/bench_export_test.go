package chdbstore

import "context"

// ExecForTest runs a statement on s's engine and returns its output as
// TabSeparated: the benchmarks fill their table with INSERT ... SELECT.
func ExecForTest(ctx context.Context, s *Store, sql string) ([]byte, error) {
	return s.exec(ctx, sql, "TabSeparated")
}
