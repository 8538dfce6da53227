package trail_test

import (
	"crypto/ed25519"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/revoked-dev/revoked/schemas"
)

// A mutation tampers with a copy of a trail the way someone with write
// access to the tables could, and says what it did. rows and cps are the
// whole trail (every chain), deep copies the mutation may change.
type mutation func(rng *rand.Rand, t *tamper) string

// tamper is a trail under mutation.
type tamper struct {
	rows   []schemas.AuditRow
	cps    []schemas.Checkpoint
	chains []string
}

func newTamper(rows []schemas.AuditRow, cps []schemas.Checkpoint) *tamper {
	t := &tamper{cps: slices.Clone(cps)}
	t.rows = make([]schemas.AuditRow, len(rows))
	for i, r := range rows {
		r.Evidence = slices.Clone(r.Evidence)
		r.EvidenceContext = slices.Clone(r.EvidenceContext)
		t.rows[i] = r
	}
	for _, r := range rows {
		if !slices.Contains(t.chains, r.Chain) {
			t.chains = append(t.chains, r.Chain)
		}
	}
	slices.Sort(t.chains)
	return t
}

// chain returns the indexes in t.rows of one chain's rows in Seq order.
func (t *tamper) chain(name string) []int {
	var idx []int
	for i, r := range t.rows {
		if r.Chain == name {
			idx = append(idx, i)
		}
	}
	slices.SortFunc(idx, func(a, b int) int { return int(t.rows[a].Seq) - int(t.rows[b].Seq) })
	return idx
}

func (t *tamper) pick(rng *rand.Rand) (string, []int) {
	c := t.chains[rng.IntN(len(t.chains))]
	return c, t.chain(c)
}

// relink recomputes PrevHash and Hash of the chain's rows from position
// from on, as a forger who rewrites the rest of the chain would.
func (t *tamper) relink(idx []int, from int) {
	for p := from; p < len(idx); p++ {
		r := &t.rows[idx[p]]
		if p > 0 {
			r.PrevHash = t.rows[idx[p-1]].Hash
		} else {
			r.PrevHash = ""
		}
		r.Hash = r.ComputeHash()
	}
}

// field is one editable field of a row; edit changes it to a different
// value that still hashes differently (times move by whole seconds: the
// hash covers seconds by design).
type field struct {
	name string
	edit func(rng *rand.Rand, r *schemas.AuditRow, t *tamper)
}

func secs(rng *rand.Rand) time.Duration {
	d := time.Duration(1+rng.IntN(86400)) * time.Second
	if rng.IntN(2) == 0 {
		return -d
	}
	return d
}

func shift(rng *rand.Rand, p *time.Time) {
	if p.IsZero() {
		*p = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
		return
	}
	*p = p.Add(secs(rng))
}

func str(rng *rand.Rand, s string) string {
	switch rng.IntN(4) {
	case 0:
		return s + "x"
	case 1:
		if s != "" {
			return s[:len(s)-1]
		}
		return "y"
	case 2:
		return strings.ToUpper(s) + "Z"
	}
	return "forged-" + fmt.Sprint(rng.IntN(1000))
}

var fields = []field{
	{"row_id", func(rng *rand.Rand, r *schemas.AuditRow, _ *tamper) { r.RowID = str(rng, r.RowID) }},
	{"chain", func(rng *rand.Rand, r *schemas.AuditRow, t *tamper) {
		// Move the row to another chain, or to a new one.
		for _, c := range t.chains {
			if c != r.Chain && rng.IntN(2) == 0 {
				r.Chain = c
				return
			}
		}
		r.Chain = r.Chain + "-moved"
	}},
	{"seq", func(rng *rand.Rand, r *schemas.AuditRow, _ *tamper) {
		if r.Seq > 1 && rng.IntN(2) == 0 {
			r.Seq -= uint64(1 + rng.IntN(int(r.Seq-1)))
		} else {
			r.Seq += uint64(1 + rng.IntN(5))
		}
	}},
	{"time", func(rng *rand.Rand, r *schemas.AuditRow, _ *tamper) { shift(rng, &r.Time) }},
	{"command_id", func(rng *rand.Rand, r *schemas.AuditRow, _ *tamper) { r.CommandID = str(rng, r.CommandID) }},
	{"step", func(rng *rand.Rand, r *schemas.AuditRow, _ *tamper) {
		for {
			if s := schemas.Steps[rng.IntN(len(schemas.Steps))]; s != r.Step {
				r.Step = s
				return
			}
		}
	}},
	{"detail", func(rng *rand.Rand, r *schemas.AuditRow, _ *tamper) { r.Detail = str(rng, r.Detail) }},
	{"issuer", func(rng *rand.Rand, r *schemas.AuditRow, _ *tamper) { r.Issuer = str(rng, r.Issuer) }},
	{"actor", func(rng *rand.Rand, r *schemas.AuditRow, _ *tamper) { r.Actor = str(rng, r.Actor) }},
	{"approver", func(rng *rand.Rand, r *schemas.AuditRow, _ *tamper) { r.Approver = str(rng, r.Approver) }},
	{"target_kind", func(rng *rand.Rand, r *schemas.AuditRow, _ *tamper) {
		r.TargetKind = schemas.TargetKind(str(rng, string(r.TargetKind)))
	}},
	{"user_id", func(rng *rand.Rand, r *schemas.AuditRow, _ *tamper) { r.UserID = str(rng, r.UserID) }},
	{"token_id", func(rng *rand.Rand, r *schemas.AuditRow, _ *tamper) { r.TokenID = str(rng, r.TokenID) }},
	{"session_id", func(rng *rand.Rand, r *schemas.AuditRow, _ *tamper) { r.SessionID = str(rng, r.SessionID) }},
	{"client_id", func(rng *rand.Rand, r *schemas.AuditRow, _ *tamper) { r.ClientID = str(rng, r.ClientID) }},
	{"include_downscoped", func(_ *rand.Rand, r *schemas.AuditRow, _ *tamper) { r.IncludeDownscoped = !r.IncludeDownscoped }},
	{"action", func(rng *rand.Rand, r *schemas.AuditRow, _ *tamper) {
		r.Action = schemas.Action(str(rng, string(r.Action)))
	}},
	{"mode", func(rng *rand.Rand, r *schemas.AuditRow, _ *tamper) { r.Mode = schemas.Mode(str(rng, string(r.Mode))) }},
	{"rule_id", func(rng *rand.Rand, r *schemas.AuditRow, _ *tamper) { r.RuleID = str(rng, r.RuleID) }},
	{"rule_version", func(rng *rand.Rand, r *schemas.AuditRow, _ *tamper) { r.RuleVersion += uint32(1 + rng.IntN(3)) }},
	{"severity", func(rng *rand.Rand, r *schemas.AuditRow, _ *tamper) {
		r.Severity = schemas.Severity(str(rng, string(r.Severity)))
	}},
	{"summary", func(rng *rand.Rand, r *schemas.AuditRow, _ *tamper) { r.Summary = str(rng, r.Summary) }},
	{"evidence", func(rng *rand.Rand, r *schemas.AuditRow, _ *tamper) {
		switch {
		case len(r.Evidence) == 0 || rng.IntN(4) == 0:
			r.Evidence = append(r.Evidence, "forged-event")
		case rng.IntN(3) == 0:
			r.Evidence = r.Evidence[:len(r.Evidence)-1]
		case rng.IntN(2) == 0 && len(r.Evidence) > 1 && r.Evidence[0] != r.Evidence[1]:
			r.Evidence[0], r.Evidence[1] = r.Evidence[1], r.Evidence[0]
		default:
			i := rng.IntN(len(r.Evidence))
			r.Evidence[i] = str(rng, r.Evidence[i])
		}
	}},
	{"evidence_context", func(rng *rand.Rand, r *schemas.AuditRow, _ *tamper) {
		switch {
		case len(r.EvidenceContext) > 0 && rng.IntN(3) == 0:
			// Dropped, as if the row predated the column.
			r.EvidenceContext = nil
		case len(r.EvidenceContext) == 0 || rng.IntN(2) == 0:
			r.EvidenceContext = append(r.EvidenceContext, `{"event_id":"forged-event","ip":"192.0.2.66","country":"KP"}`)
		default:
			i := rng.IntN(len(r.EvidenceContext))
			r.EvidenceContext[i] = strings.Replace(r.EvidenceContext[i], `"ip":"`, `"ip":"1`, 1)
			if !strings.Contains(r.EvidenceContext[i], `"ip":"1`) {
				r.EvidenceContext[i] = str(rng, r.EvidenceContext[i])
			}
		}
	}},
	{"first_event_time", func(rng *rand.Rand, r *schemas.AuditRow, _ *tamper) { shift(rng, &r.FirstEventTime) }},
	{"last_event_time", func(rng *rand.Rand, r *schemas.AuditRow, _ *tamper) { shift(rng, &r.LastEventTime) }},
	{"detected_at", func(rng *rand.Rand, r *schemas.AuditRow, _ *tamper) { shift(rng, &r.DetectedAt) }},
	{"issued_at", func(rng *rand.Rand, r *schemas.AuditRow, _ *tamper) { shift(rng, &r.IssuedAt) }},
	{"expires_at", func(rng *rand.Rand, r *schemas.AuditRow, _ *tamper) { shift(rng, &r.ExpiresAt) }},
	{"idp_status", func(rng *rand.Rand, r *schemas.AuditRow, _ *tamper) { r.IdPStatus += uint16(1 + rng.IntN(300)) }},
	{"idp_response", func(rng *rand.Rand, r *schemas.AuditRow, _ *tamper) { r.IdPResponse = str(rng, r.IdPResponse) }},
	{"tokens_revoked", func(rng *rand.Rand, r *schemas.AuditRow, _ *tamper) { r.TokensRevoked += uint32(1 + rng.IntN(9)) }},
	{"proof", func(rng *rand.Rand, r *schemas.AuditRow, _ *tamper) { r.Proof = str(rng, r.Proof) }},
	{"attempts", func(rng *rand.Rand, r *schemas.AuditRow, _ *tamper) { r.Attempts += uint32(1 + rng.IntN(9)) }},
	{"detect_latency_ms", func(rng *rand.Rand, r *schemas.AuditRow, _ *tamper) { r.DetectLatencyMs += int64(1 + rng.IntN(999)) }},
	{"revoke_latency_ms", func(rng *rand.Rand, r *schemas.AuditRow, _ *tamper) { r.RevokeLatencyMs -= int64(1 + rng.IntN(999)) }},
	{"source_topic", func(rng *rand.Rand, r *schemas.AuditRow, _ *tamper) { r.SourceTopic = str(rng, r.SourceTopic) }},
	{"source_partition", func(rng *rand.Rand, r *schemas.AuditRow, _ *tamper) { r.SourcePartition += int32(1 + rng.IntN(9)) }},
	{"source_offset", func(rng *rand.Rand, r *schemas.AuditRow, _ *tamper) { r.SourceOffset += int64(1 + rng.IntN(9)) }},
	{"prev_hash", func(rng *rand.Rand, r *schemas.AuditRow, _ *tamper) { r.PrevHash = str(rng, r.PrevHash) }},
	{"hash", func(rng *rand.Rand, r *schemas.AuditRow, _ *tamper) { r.Hash = str(rng, r.Hash) }},
}

// The kinds of mutation, by name.
var mutations = []struct {
	kind string
	fn   mutation
}{
	// A field of one row edited in place.
	{"edit", func(rng *rand.Rand, t *tamper) string {
		c, idx := t.pick(rng)
		p := rng.IntN(len(idx))
		f := fields[rng.IntN(len(fields))]
		f.edit(rng, &t.rows[idx[p]], t)
		return fmt.Sprintf("%s seq %d: %s edited", c, p+1, f.name)
	}},
	// A field edited and the row's own hash recomputed.
	{"edit+rehash", func(rng *rand.Rand, t *tamper) string {
		c, idx := t.pick(rng)
		p := rng.IntN(len(idx))
		f := fields[rng.IntN(len(fields)-1)] // not the hash itself
		r := &t.rows[idx[p]]
		f.edit(rng, r, t)
		r.Hash = r.ComputeHash()
		return fmt.Sprintf("%s seq %d: %s edited, hash recomputed", c, p+1, f.name)
	}},
	// A field edited and the rest of the chain relinked after it.
	{"edit+relink", func(rng *rand.Rand, t *tamper) string {
		c, idx := t.pick(rng)
		p := rng.IntN(len(idx))
		f := fields[3+rng.IntN(len(fields)-5)] // content fields: not row_id, chain, seq, prev_hash, hash
		f.edit(rng, &t.rows[idx[p]], t)
		t.relink(idx, p)
		return fmt.Sprintf("%s seq %d: %s edited, chain relinked from it", c, p+1, f.name)
	}},
	// One row deleted.
	{"delete", func(rng *rand.Rand, t *tamper) string {
		c, idx := t.pick(rng)
		p := rng.IntN(len(idx))
		t.rows = slices.Delete(t.rows, idx[p], idx[p]+1)
		return fmt.Sprintf("%s seq %d deleted", c, p+1)
	}},
	// A forged row with a recomputed hash inserted: as a second copy of a
	// Seq, linked to its predecessor; or with the rest of the chain
	// renumbered and relinked; or appended after the head.
	{"insert", func(rng *rand.Rand, t *tamper) string {
		c, idx := t.pick(rng)
		p := rng.IntN(len(idx))
		forged := t.rows[idx[p]]
		forged.Evidence = slices.Clone(forged.Evidence)
		forged.EvidenceContext = slices.Clone(forged.EvidenceContext)
		forged.RowID = fmt.Sprintf("forged-%d", rng.IntN(1<<30))
		forged.Detail = "forged row"
		switch rng.IntN(3) {
		case 0:
			forged.Hash = forged.ComputeHash()
			t.rows = append(t.rows, forged)
			return fmt.Sprintf("%s: forged copy of seq %d inserted", c, p+1)
		case 1:
			for _, i := range idx[p:] {
				t.rows[i].Seq++
			}
			t.rows = append(t.rows, forged)
			idx = slices.Insert(idx, p, len(t.rows)-1)
			t.relink(idx, p)
			return fmt.Sprintf("%s: forged row inserted at seq %d, the rest renumbered and relinked", c, p+1)
		}
		last := t.rows[idx[len(idx)-1]]
		forged.Seq, forged.PrevHash = last.Seq+1, last.Hash
		forged.Hash = forged.ComputeHash()
		t.rows = append(t.rows, forged)
		return fmt.Sprintf("%s: forged row appended at seq %d", c, forged.Seq)
	}},
	// Two rows swapped: their Seqs exchanged, with the hashes left, with
	// both recomputed, or with the chain relinked from the first.
	{"reorder", func(rng *rand.Rand, t *tamper) string {
		c, idx := t.pick(rng)
		a := rng.IntN(len(idx) - 1)
		b := a + 1 + rng.IntN(min(len(idx)-a-1, 4))
		ra, rb := &t.rows[idx[a]], &t.rows[idx[b]]
		ra.Seq, rb.Seq = rb.Seq, ra.Seq
		idx[a], idx[b] = idx[b], idx[a]
		switch rng.IntN(3) {
		case 0:
			return fmt.Sprintf("%s: seqs %d and %d swapped", c, a+1, b+1)
		case 1:
			ra.PrevHash, rb.PrevHash = rb.PrevHash, ra.PrevHash
			ra.Hash, rb.Hash = ra.ComputeHash(), rb.ComputeHash()
			return fmt.Sprintf("%s: seqs %d and %d swapped, hashes recomputed", c, a+1, b+1)
		}
		t.relink(idx, a)
		return fmt.Sprintf("%s: seqs %d and %d swapped, chain relinked", c, a+1, b+1)
	}},
	// The chain's last k rows removed, checkpoints left alone.
	{"truncate", func(rng *rand.Rand, t *tamper) string {
		c, idx := t.pick(rng)
		k := 1 + rng.IntN(len(idx))
		cut := idx[len(idx)-k:]
		slices.Sort(cut)
		for i := len(cut) - 1; i >= 0; i-- {
			t.rows = slices.Delete(t.rows, cut[i], cut[i]+1)
		}
		return fmt.Sprintf("%s: last %d of %d rows removed", c, k, len(idx))
	}},
	// A checkpoint altered, or one forged with a key the verifier does
	// not trust.
	{"checkpoint", func(rng *rand.Rand, t *tamper) string {
		i := rng.IntN(len(t.cps))
		cp := &t.cps[i]
		switch rng.IntN(4) {
		case 0:
			cp.Hash = str(rng, cp.Hash)
			return fmt.Sprintf("%s checkpoint %d: hash altered", cp.Chain, cp.Seq)
		case 1:
			cp.Seq += uint64(1 + rng.IntN(3))
			return fmt.Sprintf("%s checkpoint %d: seq altered", cp.Chain, cp.Seq)
		case 2:
			cp.Time = cp.Time.Add(secs(rng))
			return fmt.Sprintf("%s checkpoint %d: time altered", cp.Chain, cp.Seq)
		}
		f := schemas.NewCheckpoint(attacker, cp.Chain, cp.Seq+uint64(1+rng.IntN(3)), "forged", cp.Time)
		t.cps = append(t.cps, f)
		return fmt.Sprintf("%s: checkpoint of seq %d forged with an untrusted key", f.Chain, f.Seq)
	}},
	// A whole chain rewritten (one field of every row changed, every hash
	// recomputed), its checkpoints kept, deleted, or replaced by ones
	// signed with an untrusted key.
	{"rewrite", func(rng *rand.Rand, t *tamper) string {
		c, idx := t.pick(rng)
		f := fields[3+rng.IntN(len(fields)-5)]
		for _, i := range idx {
			f.edit(rng, &t.rows[i], t)
		}
		t.relink(idx, 0)
		switch rng.IntN(3) {
		case 0:
			return fmt.Sprintf("%s rewritten (%s of every row), checkpoints kept", c, f.name)
		case 1:
			t.cps = slices.DeleteFunc(t.cps, func(cp schemas.Checkpoint) bool { return cp.Chain == c })
			return fmt.Sprintf("%s rewritten (%s of every row), its checkpoints deleted", c, f.name)
		}
		var kept []schemas.Checkpoint
		for _, cp := range t.cps {
			if cp.Chain != c {
				kept = append(kept, cp)
				continue
			}
			kept = append(kept, schemas.NewCheckpoint(attacker, c, cp.Seq, t.rows[idx[cp.Seq-1]].Hash, cp.Time))
		}
		t.cps = kept
		return fmt.Sprintf("%s rewritten (%s of every row), checkpoints re-signed with an untrusted key", c, f.name)
	}},
}

// attacker signs forgeries; the verifier does not trust it.
var attacker = schemas.NewSigner(ed25519.NewKeyFromSeed([]byte("an attacker's key, not trusted..")))
