package schemas

import (
	"encoding/binary"
	"fmt"
	"strings"
	"time"
)

// Checkpoint is a signed statement by an audit chain's writer: "chain
// Chain held Hash at Seq at Time". The hash chain makes any change to a
// chain's rows visible against the chain itself; checkpoints make it
// visible against the writer's key: a chain rewritten by someone without
// the key no longer holds the checkpointed hashes, and a chain cut short
// no longer reaches the last checkpointed Seq.
//
// Checkpoints live beside the rows, in the audit_checkpoints table (see
// RenderCheckpointDDL), not in the chain: a checkpoint in the chain would
// be cut off with the tail it is meant to vouch for.
type Checkpoint struct {
	Chain string    `json:"chain"`
	Seq   uint64    `json:"seq"`
	Hash  string    `json:"hash"`
	Time  time.Time `json:"time"`
	// KeyID names the signing key (KeyID of its public key).
	KeyID string `json:"key_id"`
	// Signature is the base64 Ed25519 signature over SignedBytes.
	Signature string `json:"signature"`
}

// SignedBytes is the canonical encoding a checkpoint's signature covers: a
// version tag, then Chain, Seq, Hash, Time (whole Unix seconds, the
// precision every backend stores) and KeyID, each length-prefixed or
// fixed-width, so no two checkpoints share an encoding.
func (c *Checkpoint) SignedBytes() []byte {
	var b []byte
	str := func(s string) {
		b = binary.BigEndian.AppendUint64(b, uint64(len(s)))
		b = append(b, s...)
	}
	str("audit-checkpoint/v1")
	str(c.Chain)
	b = binary.BigEndian.AppendUint64(b, c.Seq)
	str(c.Hash)
	var secs int64
	if !c.Time.IsZero() {
		secs = c.Time.Unix()
	}
	b = binary.BigEndian.AppendUint64(b, uint64(secs))
	str(c.KeyID)
	return b
}

// NewCheckpoint returns the checkpoint of (chain, seq, hash) at t, signed
// by s. t is kept in UTC at whole seconds, the precision the signature
// covers and every backend stores.
func NewCheckpoint(s *Signer, chain string, seq uint64, hash string, t time.Time) Checkpoint {
	c := Checkpoint{Chain: chain, Seq: seq, Hash: hash, Time: t.UTC().Truncate(time.Second), KeyID: s.KeyID()}
	c.Signature = s.Sign(c.SignedBytes())
	return c
}

// Verify checks the signature against the trusted keys: nil, or an error
// wrapping ErrUnsigned, ErrUnknownKey or ErrBadSignature.
func (c *Checkpoint) Verify(k *Keyring) error {
	return k.Verify(c.KeyID, c.Signature, c.SignedBytes())
}

// CheckpointTable names the checkpoint table that belongs to an audit
// table: audit_trail_checkpoints for audit_trail, audit_checkpoints for
// audit.
func CheckpointTable(auditTable string) string { return auditTable + "_checkpoints" }

// CheckpointColumns lists the checkpoint table's columns in Checkpoint's
// field order, typed like the audit table's (see AuditColumns).
func CheckpointColumns() []AuditColumn {
	return []AuditColumn{
		{Name: "chain", Legacy: "String", Modern: "LowCardinality(String)"},
		{Name: "seq", Legacy: "UInt64", Modern: "UInt64", Codec: "Delta, ZSTD(1)"},
		{Name: "hash", Legacy: "String", Modern: "String", Codec: "ZSTD(1)"},
		{Name: "time", Legacy: "DateTime('UTC')", Modern: "DateTime64(3, 'UTC')", Codec: "Delta, ZSTD(1)"},
		{Name: "key_id", Legacy: "String", Modern: "LowCardinality(String)"},
		{Name: "signature", Legacy: "String", Modern: "String", Codec: "ZSTD(1)"},
	}
}

// CheckpointColumnNames lists the names of CheckpointColumns in order.
func CheckpointColumnNames() []string { return columnNames(CheckpointColumns()) }

// RenderCheckpointDDL returns the statements that create the checkpoint
// table (CheckpointTable of opts.Table) beside the audit table, for the
// same options as RenderDDL, each idempotent, to run after RenderDDL's.
//
// The table is small (one row per checkpoint) and read per chain in Seq
// order, so it is a ReplacingMergeTree ordered by (chain, seq, key_id,
// signature) with no partitioning: Ed25519 signatures are deterministic,
// so a retried insert is byte-identical and merges away, while two
// different checkpoints of one Seq are both kept for the verifier to see.
// It has no TTL even when the audit table has one: a checkpoint whose rows
// retention dropped costs a few bytes and is ignored by verification,
// while one dropped too early would leave rows unsigned.
func RenderCheckpointDDL(opts DDLOptions) ([]string, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	modern := opts.ServerVersion.Modern()
	onCluster := ""
	if opts.Cluster != "" {
		onCluster = " ON CLUSTER " + quoteIdent(opts.Cluster)
	}
	db := quoteIdent(opts.Database)
	table := CheckpointTable(opts.Table)
	local := table
	if opts.Cluster != "" {
		local = table + "_local"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE TABLE IF NOT EXISTS %s.%s%s\n", db, quoteIdent(local), onCluster)
	writeColumns(&b, CheckpointColumns(), modern)
	if opts.Cluster != "" {
		fmt.Fprintf(&b, "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/%s/%s', '{replica}')\n", opts.Database, local)
	} else {
		b.WriteString("ENGINE = ReplacingMergeTree\n")
	}
	b.WriteString("ORDER BY (chain, seq, key_id, signature)\n")
	b.WriteString("SETTINGS index_granularity = 8192")
	stmts := []string{b.String()}
	if opts.Cluster != "" {
		stmts = append(stmts, fmt.Sprintf(
			"CREATE TABLE IF NOT EXISTS %s.%s%s AS %s.%s\nENGINE = Distributed('%s', '%s', '%s', cityHash64(chain))",
			db, quoteIdent(table), onCluster, db, quoteIdent(local),
			opts.Cluster, opts.Database, local))
	}
	return stmts, nil
}
