// Package trail verifies an audit trail end to end for auditors: every
// chain's hash links (audit.VerifyChain, page by page), and every signed
// checkpoint (schemas.Checkpoint) against the trusted keys and against the
// rows it vouches for.
//
// What each check catches:
//
//   - The hash chain catches a row edited in place, deleted from the
//     middle, inserted (as an extra copy of a Seq, or with a recomputed
//     hash: the next row's link breaks) or reordered.
//   - Checkpoints catch what the chain alone cannot: a tail cut off (a
//     checkpoint names a Seq the chain no longer reaches), and a chain
//     rewritten from some row on with every hash recomputed (the row at a
//     later checkpoint's Seq no longer has the signed hash). A checkpoint
//     altered or forged without the key fails its signature.
//   - Rows no valid checkpoint covers are unsigned. Unless the verifier
//     allows them, they break the chain: a chain rewritten wholesale and
//     its checkpoints deleted is then caught too.
//
// What the store's contents alone cannot show: someone with write access
// to both tables who removes a chain's tail and every checkpoint after the
// new end leaves a trail that is consistent and signed. Anchors the
// auditor kept from an earlier run (Options.Expect; WriteSummary prints
// them) close that gap up to the time they were taken.
// Times enter the hashes at whole seconds (see schemas.AuditRow.ComputeHash),
// so an edit of a time within its second is not detected.
package trail

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/internal/progress"
	"github.com/revoked-dev/revoked/schemas"
)

// DefaultPageRows is how many rows Verify reads per ChainRows call.
const DefaultPageRows = 10000

// ErrInvalidOptions wraps every problem Options.Validate finds.
var ErrInvalidOptions = errors.New("invalid trail verification options")

// ErrNoSuchChain: Options.Chain names a chain with neither rows nor
// checkpoints in the store.
var ErrNoSuchChain = errors.New("no such audit chain")

// Options selects what Verify checks.
type Options struct {
	// Chain verifies one chain; empty: every chain the store knows
	// (Store.Chains).
	Chain string
	// From and To, when set, verify only the part of each chain whose rows
	// have From <= time < To (at whole seconds). Rows are in Seq order and
	// their times are set by the writer's callers, so the range is found by
	// bisecting Seq on time, and the verified segment is contiguous: it
	// runs from the first row at or after From to the last before To. Both
	// ends are anchored to signatures where checkpoints allow: verification
	// starts at the row of the last valid checkpoint at or before the
	// first row (without one, the first row's link is taken on trust) and
	// goes on to the first valid checkpoint at or after the last row.
	From, To time.Time
	// Pruned accepts chains that start after Seq 1, as retention leaves
	// them (their first row is taken on trust). Without it a chain must
	// start at Seq 1 unless From is set.
	Pruned bool
	// AllowUnsigned accepts rows that no valid checkpoint covers (a chain
	// written without a signer, or the tail a running or crashed writer
	// has not signed yet); they are counted in ChainReport.Unsigned.
	// Without it such rows break the chain (audit.FaultUnsigned). Verify
	// with a nil keyring checks no checkpoint and implies it.
	AllowUnsigned bool
	// PageRows is how many rows are read at a time (default 10000).
	PageRows int
	// Progress, when set, counts the rows verified; Verify sets its total
	// from the chains' heads.
	Progress *progress.Bar
	// Expect are heads the auditor kept from an earlier verification
	// (ChainReport.LastCheckpoint, printed by WriteSummary as Anchor):
	// each chain must still hold Hash at Seq, as if a trusted checkpoint
	// said so. They catch what the store's own checkpoints cannot: a tail
	// cut off together with the checkpoints after the cut.
	Expect []Anchor
}

// Anchor is a chain position an auditor holds outside the store.
type Anchor struct {
	Chain string
	Seq   uint64
	Hash  string
}

// String is the form ParseAnchor reads: chain:seq:hash.
func (a Anchor) String() string { return fmt.Sprintf("%s:%d:%s", a.Chain, a.Seq, a.Hash) }

// ParseAnchor reads chain:seq:hash (the chain may itself hold colons).
func ParseAnchor(s string) (Anchor, error) {
	i := strings.LastIndexByte(s, ':')
	if i <= 0 {
		return Anchor{}, fmt.Errorf("anchor %q: want chain:seq:hash", s)
	}
	j := strings.LastIndexByte(s[:i], ':')
	if j <= 0 {
		return Anchor{}, fmt.Errorf("anchor %q: want chain:seq:hash", s)
	}
	seq, err := strconv.ParseUint(s[j+1:i], 10, 64)
	if err != nil || seq == 0 || s[i+1:] == "" {
		return Anchor{}, fmt.Errorf("anchor %q: want chain:seq:hash with seq > 0", s)
	}
	return Anchor{Chain: s[:j], Seq: seq, Hash: s[i+1:]}, nil
}

// Validate reports every problem with the options at once.
func (o Options) Validate() error {
	var errs []error
	if !o.From.IsZero() && !o.To.IsZero() && !o.From.Before(o.To) {
		errs = append(errs, fmt.Errorf("%w: from %s is not before to %s", ErrInvalidOptions, o.From.Format(time.RFC3339), o.To.Format(time.RFC3339)))
	}
	for _, a := range o.Expect {
		if a.Chain == "" || a.Seq == 0 || a.Hash == "" {
			errs = append(errs, fmt.Errorf("%w: anchor %q needs a chain, a seq > 0 and a hash", ErrInvalidOptions, a.String()))
		}
	}
	if o.PageRows < 0 {
		errs = append(errs, fmt.Errorf("%w: page rows %d is negative", ErrInvalidOptions, o.PageRows))
	}
	return errors.Join(errs...)
}

// ChainReport is what Verify found in one chain.
type ChainReport struct {
	Chain string
	// FirstSeq and LastSeq bound the rows verified (both 0 when none).
	FirstSeq, LastSeq uint64
	// Rows is how many rows were verified.
	Rows int64
	// Checkpoints is how many valid checkpoints were matched against
	// verified rows.
	Checkpoints int
	// LastCheckpoint is the valid checkpoint with the highest Seq among
	// them, if any: the one to keep elsewhere.
	LastCheckpoint *schemas.Checkpoint
	// Unsigned is how many verified rows come after LastCheckpoint.
	Unsigned int64
	// Broken is the chain's first broken link, nil if it holds. Its Index
	// is -1 (it names a row of the store, not of a slice); its RowID is
	// empty when the link is a missing row.
	Broken *audit.ChainError
}

// Report is what Verify found.
type Report struct {
	Chains []ChainReport
	// Rows and Checkpoints sum the chains'.
	Rows        int64
	Checkpoints int
	// SignaturesChecked is false when Verify had no keys.
	SignaturesChecked bool
	// Broken is the first broken link of the first chain (in name order)
	// that has one; nil when the whole trail verified.
	Broken *audit.ChainError
}

// Verify reads the trail from store and verifies it (see the package
// documentation). It returns the report and, when a link is broken,
// Report.Broken as the error (errors.Is(err, audit.ErrChainBroken));
// any other error is the store's or ctx's, and the report then covers the
// chains verified before it. Every chain is verified even after one is
// found broken.
func Verify(ctx context.Context, store audit.Store, keyring *schemas.Keyring, opts Options) (*Report, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.PageRows == 0 {
		opts.PageRows = DefaultPageRows
	}
	if keyring == nil {
		opts.AllowUnsigned = true
	}
	rep := &Report{SignaturesChecked: keyring != nil}
	chains, err := store.Chains(ctx)
	if err != nil {
		return rep, fmt.Errorf("listing the audit chains: %w", err)
	}
	// A chain the auditor expects is verified even when the store has
	// nothing left of it.
	for _, a := range opts.Expect {
		if !slices.Contains(chains, a.Chain) {
			chains = append(chains, a.Chain)
		}
	}
	slices.Sort(chains)
	if opts.Chain != "" {
		if !slices.Contains(chains, opts.Chain) {
			return rep, fmt.Errorf("%w: %q", ErrNoSuchChain, opts.Chain)
		}
		chains = []string{opts.Chain}
	}
	if opts.Progress != nil {
		var total int64
		for _, c := range chains {
			seq, _, err := store.ChainHead(ctx, c)
			if err != nil {
				return rep, fmt.Errorf("reading the head of audit chain %q: %w", c, err)
			}
			total += int64(seq)
		}
		opts.Progress.SetTotal(total)
	}
	for _, c := range chains {
		v := &verifier{store: store, keyring: keyring, opts: opts, chain: c}
		cr, err := v.run(ctx)
		rep.Chains = append(rep.Chains, cr)
		rep.Rows += cr.Rows
		rep.Checkpoints += cr.Checkpoints
		if err != nil {
			return rep, err
		}
		if cr.Broken != nil && rep.Broken == nil {
			rep.Broken = cr.Broken
		}
	}
	opts.Progress.Finish()
	if rep.Broken != nil {
		return rep, rep.Broken
	}
	return rep, nil
}

type verifier struct {
	store   audit.Store
	keyring *schemas.Keyring
	opts    Options
	chain   string

	rep     ChainReport
	broken  *audit.ChainError
	badSigs []badSig
}

// fail records a broken link, keeping the one with the lowest Seq.
func (v *verifier) fail(seq uint64, rowID string, f audit.ChainFault, format string, args ...any) {
	if v.broken != nil && v.broken.Seq <= seq {
		return
	}
	v.broken = &audit.ChainError{Chain: v.chain, Index: -1, Seq: seq, RowID: rowID, Fault: f, Detail: fmt.Sprintf(format, args...)}
}

func (v *verifier) run(ctx context.Context) (ChainReport, error) {
	v.rep.Chain = v.chain
	valid, err := v.checkpoints(ctx)
	if err != nil {
		return v.rep, err
	}

	// The segment to verify: rows with after < Seq <= end.
	after, end := uint64(0), uint64(math.MaxUint64)
	if !v.opts.From.IsZero() {
		first, err := v.firstAtOrAfter(ctx, v.opts.From)
		if err != nil {
			return v.rep, err
		}
		after = first - 1
		// Anchor the segment's first row to a signature if one vouches for
		// a row at or before it.
		if i := lastAtOrBefore(valid, first); i >= 0 {
			after = valid[i].Seq - 1
		}
	}
	if !v.opts.To.IsZero() {
		stop, err := v.firstAtOrAfter(ctx, v.opts.To)
		if err != nil {
			return v.rep, err
		}
		end = stop - 1
		if end <= after {
			v.finish()
			return v.rep, nil
		}
		// Anchor the end too: go on to the first valid checkpoint at or
		// after it, which vouches for the rows up to it.
		if i := slices.IndexFunc(valid, func(c schemas.Checkpoint) bool { return c.Seq >= end }); i >= 0 {
			end = valid[i].Seq
		}
	}
	// Bad signatures count only for checkpoints in the segment.
	v.checkSignaturesInRange(after, end)

	byseq := make(map[uint64][]schemas.Checkpoint)
	for _, c := range valid {
		if c.Seq > after && c.Seq <= end {
			byseq[c.Seq] = append(byseq[c.Seq], c)
		}
	}

	var (
		carry       *schemas.AuditRow
		cur         = after
		firstUnsign *schemas.AuditRow // first row after the last matched checkpoint
		done        bool              // no rows left in the segment
		halt        bool              // the rows broke: stop reading
	)
	for !done && !halt {
		if err := ctx.Err(); err != nil {
			return v.rep, fmt.Errorf("verifying audit chain %q: %w", v.chain, err)
		}
		page, err := v.store.ChainRows(ctx, v.chain, cur, v.opts.PageRows)
		if err != nil {
			return v.rep, fmt.Errorf("reading audit chain %q after seq %d: %w", v.chain, cur, err)
		}
		if len(page) < v.opts.PageRows {
			done = true
		} else if last := page[len(page)-1].Seq; page[0].Seq != last {
			// Copies of the last Seq may go on in the next page: read them
			// all together there, so a duplicate cannot hide at a page
			// boundary.
			page = page[:slices.IndexFunc(page, func(r schemas.AuditRow) bool { return r.Seq == last })]
		}
		if i := slices.IndexFunc(page, func(r schemas.AuditRow) bool { return r.Seq > end }); i >= 0 {
			page, done = page[:i], true
		}
		if len(page) == 0 {
			break
		}
		if carry == nil {
			v.rep.FirstSeq = page[0].Seq
			if page[0].Seq != 1 && after == 0 && v.opts.From.IsZero() && !v.opts.Pruned {
				halt = true
				v.fail(page[0].Seq, page[0].RowID, audit.FaultGap, "the chain starts at seq %d: rows 1 to %d are missing", page[0].Seq, page[0].Seq-1)
			}
			if after > 0 && page[0].Seq != after+1 {
				halt = true
				v.fail(after+1, "", audit.FaultGap, "the segment should start at seq %d, the chain has seq %d next", after+1, page[0].Seq)
			}
		}
		seg, off := page, 0
		if carry != nil {
			seg, off = append([]schemas.AuditRow{*carry}, page...), 1
		}
		if err := audit.VerifyChain(seg); err != nil {
			var ce *audit.ChainError
			if !errors.As(err, &ce) {
				return v.rep, err
			}
			halt = true
			v.fail(ce.Seq, ce.RowID, ce.Fault, "%s", ce.Detail)
			// The rows before the broken link still count as verified.
			page = page[:max(ce.Index-off, 0)]
		}
		for i := range page {
			r := &page[i]
			v.rep.Rows++
			v.rep.LastSeq = r.Seq
			cps := byseq[r.Seq]
			for j := range cps {
				if cps[j].Hash != r.Hash {
					halt = true
					v.fail(r.Seq, r.RowID, audit.FaultCheckpoint, "%s has hash %.16s…, the row has %.16s…", describe(cps[j]), cps[j].Hash, r.Hash)
				}
			}
			if len(cps) > 0 {
				v.rep.Checkpoints += len(cps)
				v.rep.LastCheckpoint = &cps[len(cps)-1]
				firstUnsign = nil
			} else if firstUnsign == nil {
				firstUnsign = r
			}
		}
		v.opts.Progress.Add(int64(len(page)))
		if len(page) > 0 {
			carry = &page[len(page)-1]
			cur = carry.Seq
		}
	}

	if !halt {
		// A checkpoint beyond the last row: the tail was cut off.
		for _, c := range valid {
			if c.Seq > v.rep.LastSeq && c.Seq > after && c.Seq <= end {
				v.fail(v.rep.LastSeq+1, "", audit.FaultTruncated, "%s vouches for seq %d, the chain ends at seq %d", describe(c), c.Seq, v.rep.LastSeq)
				break
			}
		}
	}
	signed := after
	if v.rep.LastCheckpoint != nil {
		signed = v.rep.LastCheckpoint.Seq
	}
	if v.rep.LastSeq > signed {
		v.rep.Unsigned = int64(v.rep.LastSeq - signed)
	}
	// Unsigned rows are reported only when nothing else broke: a forged
	// or cut-off checkpoint leaves rows unsigned as a consequence.
	if v.broken == nil && firstUnsign != nil && !v.opts.AllowUnsigned {
		v.fail(firstUnsign.Seq, firstUnsign.RowID, audit.FaultUnsigned, "%d row(s) from seq %d on are covered by no valid checkpoint", v.rep.Unsigned, firstUnsign.Seq)
	}
	v.finish()
	return v.rep, nil
}

func (v *verifier) finish() {
	v.rep.Broken = v.broken
}

// checkpoints reads the chain's checkpoints and returns those whose
// signature verifies, in Seq order; the ones that do not are kept in
// v.badSigs for checkSignaturesInRange.
func (v *verifier) checkpoints(ctx context.Context) ([]schemas.Checkpoint, error) {
	var expected []schemas.Checkpoint
	for _, a := range v.opts.Expect {
		if a.Chain == v.chain {
			expected = append(expected, schemas.Checkpoint{Chain: a.Chain, Seq: a.Seq, Hash: a.Hash, KeyID: expectedKeyID})
		}
	}
	sortCheckpoints := func(cps []schemas.Checkpoint) []schemas.Checkpoint {
		slices.SortStableFunc(cps, func(a, b schemas.Checkpoint) int { return cmp.Compare(a.Seq, b.Seq) })
		return cps
	}
	if v.keyring == nil {
		return sortCheckpoints(expected), nil
	}
	var (
		all []schemas.Checkpoint
		cur uint64
	)
	for {
		page, err := v.store.Checkpoints(ctx, v.chain, cur, v.opts.PageRows)
		if err != nil {
			return nil, fmt.Errorf("reading the checkpoints of audit chain %q: %w", v.chain, err)
		}
		if len(page) < v.opts.PageRows {
			all = append(all, page...)
			break
		}
		last := page[len(page)-1].Seq
		if page[0].Seq == last {
			// More checkpoints of one Seq than a page holds: take them all.
			rest, err := v.store.Checkpoints(ctx, v.chain, last-1, 0)
			if err != nil {
				return nil, fmt.Errorf("reading the checkpoints of audit chain %q: %w", v.chain, err)
			}
			all = append(all, rest...)
			var more []schemas.Checkpoint
			if more, err = v.store.Checkpoints(ctx, v.chain, last, 0); err != nil {
				return nil, fmt.Errorf("reading the checkpoints of audit chain %q: %w", v.chain, err)
			}
			all = append(all, more...)
			break
		}
		i := slices.IndexFunc(page, func(c schemas.Checkpoint) bool { return c.Seq == last })
		all = append(all, page[:i]...)
		cur = page[i-1].Seq
	}
	var valid []schemas.Checkpoint
	for _, c := range all {
		if c.Chain != v.chain {
			v.badSigs = append(v.badSigs, badSig{c, fmt.Errorf("checkpoint of chain %q among chain %q's", c.Chain, v.chain)})
			continue
		}
		if err := c.Verify(v.keyring); err != nil {
			// The schemas errors speak of commands; say it of checkpoints.
			switch {
			case errors.Is(err, schemas.ErrUnknownKey):
				err = errors.New("signed with a key that is not trusted")
			case errors.Is(err, schemas.ErrUnsigned):
				err = errors.New("not signed")
			default:
				err = errors.New("signature does not verify")
			}
			v.badSigs = append(v.badSigs, badSig{c, err})
			continue
		}
		valid = append(valid, c)
	}
	return sortCheckpoints(append(valid, expected...)), nil
}

// describe names a checkpoint in a broken link's detail.
func describe(c schemas.Checkpoint) string {
	if c.KeyID == expectedKeyID {
		return "the expected anchor"
	}
	return fmt.Sprintf("the checkpoint signed by %s at %s", c.KeyID, c.Time.Format(time.RFC3339))
}

// expectedKeyID marks an Options.Expect anchor among the checkpoints.
const expectedKeyID = "(expected)"

type badSig struct {
	cp  schemas.Checkpoint
	err error
}

func (v *verifier) checkSignaturesInRange(after, end uint64) {
	for _, b := range v.badSigs {
		if b.cp.Seq > after && b.cp.Seq <= end {
			v.fail(b.cp.Seq, "", audit.FaultSignature, "checkpoint of seq %d (key %q, %s): %v", b.cp.Seq, b.cp.KeyID, b.cp.Time.Format(time.RFC3339), b.err)
			return
		}
	}
}

// lastAtOrBefore returns the index of the last checkpoint with Seq <= seq,
// or -1.
func lastAtOrBefore(cps []schemas.Checkpoint, seq uint64) int {
	i := -1
	for j, c := range cps {
		if c.Seq <= seq {
			i = j
		}
	}
	return i
}

// firstAtOrAfter returns the Seq of the first row (in Seq order) whose
// time is at or after t (at whole seconds), bisecting on the assumption
// that times grow with Seq; head+1 when there is none.
func (v *verifier) firstAtOrAfter(ctx context.Context, t time.Time) (uint64, error) {
	t = t.Truncate(time.Second)
	head, _, err := v.store.ChainHead(ctx, v.chain)
	if err != nil {
		return 0, fmt.Errorf("reading the head of audit chain %q: %w", v.chain, err)
	}
	lo, hi := uint64(1), head+1 // the answer is in [lo, hi]
	for lo < hi {
		mid := lo + (hi-lo)/2
		rows, err := v.store.ChainRows(ctx, v.chain, mid-1, 1)
		if err != nil {
			return 0, fmt.Errorf("reading audit chain %q at seq %d: %w", v.chain, mid, err)
		}
		if len(rows) == 0 || !rows[0].Time.Before(t) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo, nil
}

// WriteSummary writes the report for people: one line per chain (rows and
// Seqs verified, checkpoints matched, unsigned rows, the last checkpoint
// to keep elsewhere, and the first broken link), then the totals.
func (r *Report) WriteSummary(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHAIN\tROWS\tSEQS\tCHECKPOINTS\tUNSIGNED\tLAST CHECKPOINT\tSTATUS")
	for _, c := range r.Chains {
		seqs := "-"
		if c.Rows > 0 {
			seqs = fmt.Sprintf("%d-%d", c.FirstSeq, c.LastSeq)
		}
		last := "-"
		if c.LastCheckpoint != nil {
			last = fmt.Sprintf("seq %d %.16s… %s %s", c.LastCheckpoint.Seq, c.LastCheckpoint.Hash,
				c.LastCheckpoint.Time.UTC().Format(time.RFC3339), c.LastCheckpoint.KeyID)
		}
		status := "ok"
		if c.Broken != nil {
			status = fmt.Sprintf("BROKEN at seq %d: %s", c.Broken.Seq, c.Broken.Fault)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%s\t%s\n", c.Chain, c.Rows, seqs, c.Checkpoints, c.Unsigned, last, status)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	broken := 0
	for _, c := range r.Chains {
		if c.Broken != nil {
			broken++
		}
	}
	fmt.Fprintf(w, "%d rows in %d chain(s) verified, %d checkpoint(s) matched", r.Rows, len(r.Chains), r.Checkpoints)
	if !r.SignaturesChecked {
		fmt.Fprint(w, " (no verification keys: signatures not checked)")
	}
	fmt.Fprintln(w)
	if r.Broken != nil {
		b := r.Broken
		row := b.RowID
		if row == "" {
			row = "(missing)"
		}
		_, err := fmt.Fprintf(w, "%d chain(s) broken; first broken link: chain %q seq %d row %s: %s: %s\n", broken, b.Chain, b.Seq, row, b.Fault, b.Detail)
		return err
	}
	if _, err := fmt.Fprintln(w, "the trail is intact"); err != nil {
		return err
	}
	var anchors []string
	for _, c := range r.Chains {
		if c.LastCheckpoint != nil {
			anchors = append(anchors, Anchor{Chain: c.Chain, Seq: c.LastCheckpoint.Seq, Hash: c.LastCheckpoint.Hash}.String())
		}
	}
	if len(anchors) > 0 {
		_, err := fmt.Fprintf(w, "keep these anchors to catch a later cut of a tail and its checkpoints: -expect %s\n", strings.Join(anchors, ","))
		return err
	}
	return nil
}
