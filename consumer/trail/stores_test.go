package trail_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/consumer/audit/chdbstore"
	"github.com/revoked-dev/revoked/consumer/audit/chstore"
	"github.com/revoked-dev/revoked/consumer/trail"
	"github.com/revoked-dev/revoked/internal/testenv"
	"github.com/revoked-dev/revoked/schemas"
)

// The mutation test through the real stores: a trail written by signing
// Writers to ClickHouse (18.16 in CI: times at seconds) or chDB, copied
// with one mutation each into fresh tables through the Store port, and
// verified there.

func TestMutationsOnChDB(t *testing.T) {
	lib := testenv.ChDBLibPath(t)
	dir := t.TempDir()
	n := 0
	storeMutations(t, func(t *testing.T) audit.Store {
		n++
		s, err := chdbstore.Open(ctx(t), chdbstore.Config{Path: dir, Table: fmt.Sprintf("trail_%d", n), LibPath: lib}, zerolog.Nop())
		if err != nil {
			t.Fatalf("chdbstore.Open: %v", err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

func TestMutationsOnClickHouse(t *testing.T) {
	dsn := testenv.ClickHouseDSN(t)
	db := testenv.UniqueName(t, "revoked_trail")
	t.Cleanup(func() { testenv.DropClickHouseDatabase(t, dsn, db) })
	n := 0
	storeMutations(t, func(t *testing.T) audit.Store {
		n++
		s, err := chstore.Open(ctx(t), chstore.Config{DSN: dsn, Database: db, Table: fmt.Sprintf("trail_%d", n)}, zerolog.Nop())
		if err != nil {
			t.Fatalf("chstore.Open: %v", err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

// readTrail reads every chain's rows and checkpoints through the port.
func readTrail(t *testing.T, s audit.Store) ([]schemas.AuditRow, []schemas.Checkpoint) {
	t.Helper()
	c := ctx(t)
	chains, err := s.Chains(c)
	if err != nil {
		t.Fatalf("Chains: %v", err)
	}
	var rows []schemas.AuditRow
	var cps []schemas.Checkpoint
	for _, ch := range chains {
		r, err := s.ChainRows(c, ch, 0, 0)
		if err != nil {
			t.Fatalf("ChainRows: %v", err)
		}
		cp, err := s.Checkpoints(c, ch, 0, 0)
		if err != nil {
			t.Fatalf("Checkpoints: %v", err)
		}
		rows, cps = append(rows, r...), append(cps, cp...)
	}
	return rows, cps
}

func storeMutations(t *testing.T, open func(t *testing.T) audit.Store) {
	src := open(t)
	c := ctx(t)
	if err := src.Migrate(c); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	rng := rand.New(rand.NewPCG(5, 8))
	write(t, src, "consumer-a", 0, 30, 7, rng)
	write(t, src, "consumer-b", 0, 20, 7, rng)
	rep, err := trail.Verify(c, src, keyring, trail.Options{PageRows: 8})
	if err != nil || rep.Rows != 50 || rep.Checkpoints < 5 {
		t.Fatalf("Verify of the untouched trail: %+v, %v", rep, err)
	}
	rows, cps := readTrail(t, src)

	// Each mutation keeps every row valid for Append (ValidateRow), as
	// anyone inserting through the driver must.
	cases := []struct {
		name string
		fn   func(tm *tamper)
	}{
		{"untouched", nil},
		{"detail edited in place", func(tm *tamper) {
			tm.rows[tm.chain("consumer-a")[12]].Detail = "nothing happened"
		}},
		{"time edited by a second, hash recomputed", func(tm *tamper) {
			r := &tm.rows[tm.chain("consumer-a")[5]]
			r.Time = r.Time.Add(time.Second)
			r.Hash = r.ComputeHash()
		}},
		{"evidence edited, hash recomputed", func(tm *tamper) {
			r := &tm.rows[tm.chain("consumer-b")[3]]
			r.Evidence = append(slices.Clone(r.Evidence), "planted")
			r.Hash = r.ComputeHash()
		}},
		{"middle row deleted", func(tm *tamper) {
			i := tm.chain("consumer-a")[14]
			tm.rows = slices.Delete(tm.rows, i, i+1)
		}},
		{"forged copy of a seq inserted", func(tm *tamper) {
			f := tm.rows[tm.chain("consumer-b")[9]]
			f.RowID, f.Detail = "forged", "forged"
			f.Hash = f.ComputeHash()
			tm.rows = append(tm.rows, f)
		}},
		{"two rows swapped, hashes recomputed", func(tm *tamper) {
			idx := tm.chain("consumer-a")
			a, b := &tm.rows[idx[10]], &tm.rows[idx[11]]
			a.Seq, b.Seq = b.Seq, a.Seq
			a.PrevHash, b.PrevHash = b.PrevHash, a.PrevHash
			a.Hash, b.Hash = a.ComputeHash(), b.ComputeHash()
		}},
		{"rewritten from a row on, checkpoints kept", func(tm *tamper) {
			idx := tm.chain("consumer-b")
			tm.rows[idx[4]].Summary = "rewritten"
			tm.relink(idx, 4)
		}},
		{"tail truncated", func(tm *tamper) {
			idx := tm.chain("consumer-a")
			cut := slices.Clone(idx[len(idx)-3:])
			slices.Sort(cut)
			for i := len(cut) - 1; i >= 0; i-- {
				tm.rows = slices.Delete(tm.rows, cut[i], cut[i]+1)
			}
		}},
		{"checkpoint forged with an untrusted key", func(tm *tamper) {
			tm.cps = append(tm.cps, schemas.NewCheckpoint(attacker, "consumer-b", 20, "forged", time.Now()))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tm := newTamper(rows, cps)
			if tc.fn != nil {
				tc.fn(tm)
			}
			dst := open(t)
			c := ctx(t)
			if err := dst.Migrate(c); err != nil {
				t.Fatalf("Migrate: %v", err)
			}
			if err := dst.Append(c, tm.rows); err != nil {
				t.Fatalf("Append: %v", err)
			}
			if err := dst.AppendCheckpoints(c, tm.cps); err != nil {
				t.Fatalf("AppendCheckpoints: %v", err)
			}
			rep, err := trail.Verify(c, dst, keyring, trail.Options{PageRows: 8})
			if tc.fn == nil {
				if err != nil || rep.Rows != 50 {
					t.Fatalf("the copied untouched trail: %+v, %v", rep, err)
				}
				return
			}
			var ce *audit.ChainError
			if !errors.As(err, &ce) {
				t.Fatalf("not caught: %v", err)
			}
			t.Logf("caught: %v", ce)
		})
	}
}
