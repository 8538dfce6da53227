package schemas

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strconv"
	"sync"
	"time"
)

// Step is one step of a command's life in the audit trail.
type Step string

// Steps of a command's life.
//
// A revocation the token API accepted ends in one of three outcomes:
// StepConfirmed when the IdP's own answer (introspection, its list of live
// tokens) shows every targeted token inactive, StepUnconfirmed when the IdP
// acknowledged and offers no way to prove it, and StepNotEffective when the
// proof shows a targeted token still active after every repeat and
// fallback the configuration allows: a failure, whose command is
// dead-lettered. StepRevoked and StepVerified are the revocation and its
// proof as trails written before the three outcomes recorded them; they
// are read, never written.
const (
	StepReceived     Step = "received"
	StepRejected     Step = "rejected"
	StepHeld         Step = "held"
	StepDryRun       Step = "dry_run"
	StepRevoked      Step = "revoked"
	StepFailed       Step = "failed"
	StepDeadLettered Step = "dead_lettered"
	StepVerified     Step = "verified"
	// StepNotified ends a command whose action is notify: nothing revoked.
	StepNotified     Step = "notified"
	StepConfirmed    Step = "confirmed"
	StepUnconfirmed  Step = "unconfirmed"
	StepNotEffective Step = "not_effective"

	// Shared Signals: what became of the Security Event Tokens that
	// announced a carried-out revocation to a receiver's stream, as the
	// transmitter (consumer/ssf/transmitter) records it on a chain of
	// its own. Neither ends a command (Terminal is false).
	//
	// StepSignalled: the receiver took the SET (push: 2xx; poll:
	// acknowledged).
	StepSignalled Step = "signalled"
	// StepSignalFailed: the receiver refused the SET (push: 400; poll:
	// setErrs) or delivery gave up; Detail says why.
	StepSignalFailed Step = "signal_failed"
)

// Steps lists every step in the order of a command's life.
var Steps = []Step{StepReceived, StepRejected, StepHeld, StepDryRun, StepRevoked, StepConfirmed, StepUnconfirmed, StepNotEffective, StepFailed, StepDeadLettered, StepVerified, StepNotified, StepSignalled, StepSignalFailed}

// Terminal reports whether a command whose trail holds this step needs no
// further execution.
func (s Step) Terminal() bool {
	switch s {
	case StepRejected, StepDryRun, StepRevoked, StepConfirmed, StepUnconfirmed, StepNotEffective, StepDeadLettered, StepHeld, StepNotified:
		return true
	}
	return false
}

// Revoked reports whether the step records a revocation the token API
// accepted and that no proof contradicted: confirmed, unconfirmed, or the
// revoked and verified steps of older trails.
func (s Step) Revoked() bool {
	switch s {
	case StepConfirmed, StepUnconfirmed, StepRevoked, StepVerified:
		return true
	}
	return false
}

// AuditRow is one append-only row of the audit trail: one step of one
// command's life. Token values never appear in it, only fingerprints.
//
// Rows are deterministic: RowID is derived from the command, the step and
// the Kafka position the command came from, so a retried insert of the same
// step is the same row and the store deduplicates it. Chain, Seq, PrevHash
// and Hash link the rows of one writer into a hash chain that makes edits,
// deletions, insertions and reorderings detectable.
type AuditRow struct {
	RowID string    `json:"row_id"`
	Chain string    `json:"chain"`
	Seq   uint64    `json:"seq"`
	Time  time.Time `json:"time"`

	CommandID string `json:"command_id"`
	Step      Step   `json:"step"`
	// Detail is why: the rejection reason, the error, the hold reason.
	Detail string `json:"detail,omitempty"`

	Issuer   string `json:"issuer"`
	Actor    string `json:"actor"`
	Approver string `json:"approver,omitempty"`

	TargetKind        TargetKind `json:"target_kind"`
	UserID            string     `json:"user_id,omitempty"`
	TokenID           string     `json:"token_id,omitempty"`
	SessionID         string     `json:"session_id,omitempty"`
	ClientID          string     `json:"client_id,omitempty"`
	IncludeDownscoped bool       `json:"include_downscoped"`
	Action            Action     `json:"action"`
	Mode              Mode       `json:"mode"`

	RuleID      string   `json:"rule_id"`
	RuleVersion uint32   `json:"rule_version"`
	Severity    Severity `json:"severity"`
	Summary     string   `json:"summary,omitempty"`
	Evidence    []string `json:"evidence,omitempty"`
	// EvidenceContext is the command's Reason.Context, one entry per
	// event whose address the detector knew, each in EncodeEventContext's
	// encoding (a JSON object: event_id, ip, country, asn, as_org,
	// network). Rows written before it existed have none.
	EvidenceContext []string  `json:"evidence_context,omitempty"`
	FirstEventTime  time.Time `json:"first_event_time,omitzero"`
	LastEventTime   time.Time `json:"last_event_time,omitzero"`
	DetectedAt      time.Time `json:"detected_at,omitzero"`
	IssuedAt        time.Time `json:"issued_at,omitzero"`
	ExpiresAt       time.Time `json:"expires_at,omitzero"`

	// The token API's answer and the proof that the revocation took.
	IdPStatus     uint16 `json:"idp_status,omitempty"`
	IdPResponse   string `json:"idp_response,omitempty"`
	TokensRevoked uint32 `json:"tokens_revoked,omitempty"`
	Proof         string `json:"proof,omitempty"`
	Attempts      uint32 `json:"attempts,omitempty"`

	// Latencies in milliseconds from LastEventTime: to detection, and to
	// this step.
	DetectLatencyMs int64 `json:"detect_latency_ms,omitempty"`
	RevokeLatencyMs int64 `json:"revoke_latency_ms,omitempty"`

	SourceTopic     string `json:"source_topic,omitempty"`
	SourcePartition int32  `json:"source_partition"`
	SourceOffset    int64  `json:"source_offset"`

	PrevHash string `json:"prev_hash"`
	Hash     string `json:"hash"`
}

// AuditRowID is the deterministic id of one step of a command received at
// a Kafka position.
func AuditRowID(commandID string, step Step, topic string, partition int32, offset int64) string {
	h := sha256.New()
	for _, p := range []string{commandID, string(step), topic, strconv.Itoa(int(partition)), strconv.FormatInt(offset, 10)} {
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(p))))
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// ComputeHash returns the chain hash of the row: SHA-256 over PrevHash and
// a canonical, length-prefixed encoding of every other field except Hash.
// Timestamps enter at second precision, the precision every supported
// ClickHouse version stores (latencies keep milliseconds in their own
// fields), so a row read back from any backend hashes the same.
//
// Fields added after the first version (EvidenceContext) enter after all
// the others, tagged with their name, and only when they are not empty: a
// row without them hashes exactly as before they existed, so chains
// written by earlier versions keep verifying, and a row with them cannot
// hash like one without (its encoding is longer).
//
// The encoding is built in one pooled buffer and hashed in one call: a
// write per field through hash.Hash copied every string to the heap.
func (r *AuditRow) ComputeHash() string {
	bp := hashBuffers.Get().(*[]byte)
	b := (*bp)[:0]
	str := func(s string) {
		b = binary.BigEndian.AppendUint64(b, uint64(len(s)))
		b = append(b, s...)
	}
	num := func(n int64) {
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	ts := func(t time.Time) {
		if t.IsZero() {
			num(0)
			return
		}
		num(t.Unix())
	}
	str("audit-row/v1")
	str(r.PrevHash)
	str(r.RowID)
	str(r.Chain)
	num(int64(r.Seq))
	ts(r.Time)
	str(r.CommandID)
	str(string(r.Step))
	str(r.Detail)
	str(r.Issuer)
	str(r.Actor)
	str(r.Approver)
	str(string(r.TargetKind))
	str(r.UserID)
	str(r.TokenID)
	str(r.SessionID)
	str(r.ClientID)
	if r.IncludeDownscoped {
		num(1)
	} else {
		num(0)
	}
	str(string(r.Action))
	str(string(r.Mode))
	str(r.RuleID)
	num(int64(r.RuleVersion))
	str(string(r.Severity))
	str(r.Summary)
	num(int64(len(r.Evidence)))
	for _, e := range r.Evidence {
		str(e)
	}
	ts(r.FirstEventTime)
	ts(r.LastEventTime)
	ts(r.DetectedAt)
	ts(r.IssuedAt)
	ts(r.ExpiresAt)
	num(int64(r.IdPStatus))
	str(r.IdPResponse)
	num(int64(r.TokensRevoked))
	str(r.Proof)
	num(int64(r.Attempts))
	num(r.DetectLatencyMs)
	num(r.RevokeLatencyMs)
	str(r.SourceTopic)
	num(int64(r.SourcePartition))
	num(r.SourceOffset)
	if len(r.EvidenceContext) > 0 {
		str("evidence_context")
		num(int64(len(r.EvidenceContext)))
		for _, e := range r.EvidenceContext {
			str(e)
		}
	}
	sum := sha256.Sum256(b)
	*bp = b
	hashBuffers.Put(bp)
	return hex.EncodeToString(sum[:])
}

// hashBuffers are ComputeHash's encoding buffers.
var hashBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// RowFromCommand fills the command's fields of an audit row.
func RowFromCommand(c *RevokeCommand) AuditRow {
	return AuditRow{
		CommandID:         c.CommandID,
		Issuer:            c.Issuer,
		TargetKind:        c.Target.Kind,
		UserID:            c.Target.UserID,
		TokenID:           c.Target.TokenID,
		SessionID:         c.Target.SessionID,
		ClientID:          c.Target.ClientID,
		IncludeDownscoped: c.Target.IncludeDownscoped,
		Action:            c.Action,
		Mode:              c.Mode,
		RuleID:            c.Reason.RuleID,
		RuleVersion:       uint32(max(c.Reason.RuleVersion, 0)),
		Severity:          c.Reason.Severity,
		Summary:           c.Reason.Summary,
		Evidence:          c.Reason.Evidence,
		EvidenceContext:   EncodeEventContexts(c.Reason.Context),
		FirstEventTime:    c.Reason.FirstEventTime,
		LastEventTime:     c.Reason.LastEventTime,
		DetectedAt:        c.Reason.DetectedAt,
		IssuedAt:          c.IssuedAt,
		ExpiresAt:         c.ExpiresAt,
	}
}
