package audit_test

import (
	"errors"
	"testing"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/consumer/audit/audittest"
	"github.com/revoked-dev/revoked/schemas"
)

func chain(n int) []schemas.AuditRow {
	rows := make([]schemas.AuditRow, n)
	for i := range rows {
		rows[i] = audittest.Row(i)
	}
	return audittest.Link("v", 0, "", rows)
}

func TestVerifyChain(t *testing.T) {
	t.Parallel()
	rows := chain(6)
	cases := []struct {
		name  string
		rows  func() []schemas.AuditRow
		fault audit.ChainFault
		seq   uint64
	}{
		{"intact", func() []schemas.AuditRow { return rows }, "", 0},
		{"empty", func() []schemas.AuditRow { return nil }, "", 0},
		{"segment from seq 3", func() []schemas.AuditRow { return rows[2:] }, "", 0},
		{"genesis with prev hash", func() []schemas.AuditRow {
			r := append([]schemas.AuditRow(nil), rows...)
			r[0].PrevHash = "x"
			return r
		}, audit.FaultGenesis, 1},
		{"other chain", func() []schemas.AuditRow {
			r := append([]schemas.AuditRow(nil), rows...)
			r[4].Chain = "w"
			return r
		}, audit.FaultChain, 5},
		{"duplicate seq", func() []schemas.AuditRow {
			r := append([]schemas.AuditRow(nil), rows[:3]...)
			return append(r, rows[2:]...)
		}, audit.FaultOrder, 3},
		{"edited evidence", func() []schemas.AuditRow {
			r := append([]schemas.AuditRow(nil), rows...)
			r[1].Evidence = []string{"other"}
			return r
		}, audit.FaultEdited, 2},
		{"inserted", func() []schemas.AuditRow {
			extra := audittest.Link("v", 2, rows[1].Hash, []schemas.AuditRow{audittest.Row(99)})
			r := append([]schemas.AuditRow(nil), rows[:2]...)
			r = append(r, extra...)
			return append(r, rows[2:]...)
		}, audit.FaultOrder, 3},
	}
	for _, tc := range cases {
		err := audit.VerifyChain(tc.rows())
		if tc.fault == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		var ce *audit.ChainError
		if !errors.As(err, &ce) || !errors.Is(err, audit.ErrChainBroken) || ce.Fault != tc.fault || ce.Seq != tc.seq {
			t.Errorf("%s: %v, want %s at seq %d", tc.name, err, tc.fault, tc.seq)
		}
	}
}
