package audit

import (
	"fmt"

	"github.com/revoked-dev/revoked/schemas"
)

// ChainFault classifies a broken link.
type ChainFault string

// The ways a chain breaks.
const (
	// FaultEdited: the row's Hash is not the hash of its contents.
	FaultEdited ChainFault = "edited"
	// FaultGap: Seq jumps; rows are missing (deleted, or never written).
	FaultGap ChainFault = "gap"
	// FaultOrder: Seq does not increase; rows are duplicated with different
	// contents (a fork or an insertion) or out of order.
	FaultOrder ChainFault = "order"
	// FaultLink: PrevHash is not the previous row's Hash (a row was replaced
	// or inserted with a recomputed hash).
	FaultLink ChainFault = "link"
	// FaultGenesis: the first row of the chain (Seq 1) has a PrevHash.
	FaultGenesis ChainFault = "genesis"
	// FaultChain: a row of another chain is in the slice.
	FaultChain ChainFault = "chain"

	// The faults below are found against a chain's signed checkpoints
	// (see package trail), not by VerifyChain.

	// FaultSignature: a checkpoint's signature does not verify, or its key
	// is not trusted: it was forged or altered.
	FaultSignature ChainFault = "signature"
	// FaultCheckpoint: the row at a checkpoint's Seq does not have the
	// checkpointed hash: the chain was rewritten after it was signed.
	FaultCheckpoint ChainFault = "checkpoint"
	// FaultTruncated: a checkpoint names a Seq the chain no longer
	// reaches: rows were removed from the chain's tail.
	FaultTruncated ChainFault = "truncated"
	// FaultUnsigned: rows that no valid checkpoint covers, where the
	// verifier was told to require one.
	FaultUnsigned ChainFault = "unsigned"
)

// ChainError names the first broken link VerifyChain found.
type ChainError struct {
	Chain string
	// Index is the position of the offending row in the verified slice.
	Index int
	Seq   uint64
	RowID string
	Fault ChainFault
	// Detail says what was expected and what was found.
	Detail string
}

func (e *ChainError) Error() string {
	return fmt.Sprintf("chain %q broken at seq %d (row %s, index %d): %s: %s", e.Chain, e.Seq, e.RowID, e.Index, e.Fault, e.Detail)
}

// Unwrap makes errors.Is(err, ErrChainBroken) hold.
func (e *ChainError) Unwrap() error { return ErrChainBroken }

// VerifyChain checks a contiguous segment of one chain, in Seq order (as
// Store.ChainRows returns it): every row's Hash is the hash of its
// contents, Seqs follow one another without gaps or repeats, and every
// PrevHash is the previous row's Hash. It returns nil for an intact
// segment and otherwise a *ChainError for the first broken link.
//
// A segment that starts at Seq 1 must start with an empty PrevHash; one
// that starts later (the trail's beginning was dropped by retention, or
// the caller pages through a long chain) is verified from its first row,
// whose PrevHash is taken on trust: to verify a chain completely, verify
// it from Seq 1, carrying the last row of each page over into the next.
func VerifyChain(rows []schemas.AuditRow) error {
	if len(rows) == 0 {
		return nil
	}
	chain := rows[0].Chain
	for i := range rows {
		r := &rows[i]
		fail := func(f ChainFault, format string, args ...any) error {
			return &ChainError{Chain: chain, Index: i, Seq: r.Seq, RowID: r.RowID, Fault: f, Detail: fmt.Sprintf(format, args...)}
		}
		if r.Chain != chain {
			return fail(FaultChain, "row belongs to chain %q", r.Chain)
		}
		if i == 0 {
			if r.Seq == 0 {
				return fail(FaultOrder, "seq 0 (chains start at 1)")
			}
			if r.Seq == 1 && r.PrevHash != "" {
				return fail(FaultGenesis, "first row of the chain has prev_hash %.16s…", r.PrevHash)
			}
		} else {
			prev := &rows[i-1]
			switch {
			case r.Seq <= prev.Seq:
				return fail(FaultOrder, "seq %d follows seq %d", r.Seq, prev.Seq)
			case r.Seq != prev.Seq+1:
				return fail(FaultGap, "seq %d follows seq %d: %d row(s) missing", r.Seq, prev.Seq, r.Seq-prev.Seq-1)
			case r.PrevHash != prev.Hash:
				return fail(FaultLink, "prev_hash %.16s… is not the hash %.16s… of seq %d", r.PrevHash, prev.Hash, prev.Seq)
			}
		}
		if h := r.ComputeHash(); h != r.Hash {
			return fail(FaultEdited, "hash %.16s… does not match the contents (%.16s…)", r.Hash, h)
		}
	}
	return nil
}
