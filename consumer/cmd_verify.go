package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/consumer/trail"
	"github.com/revoked-dev/revoked/internal/cli"
	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/internal/progress"
	"github.com/revoked-dev/revoked/schemas"
)

// verifyConfig is what "consumer verify" reads.
type verifyConfig struct {
	Store storeConfig `yaml:"-"`
	Chain string      `flag:"chain" usage:"verify only this hash chain (default: every chain)"`
	From  string      `flag:"from" usage:"verify the rows from this time on (RFC 3339)"`
	To    string      `flag:"to" usage:"verify the rows before this time (RFC 3339)"`
	// VerifyKeyFiles are the public keys of the audit writers'
	// checkpoint-signing keys: not the command-signing keys, whose holders
	// must not be able to vouch for the trail.
	VerifyKeyFiles []string `flag:"verify-key-files" env:"REVOKED_CHECKPOINT_VERIFY_KEY_FILES" yaml:"verify_key_files" usage:"files holding the public keys that sign audit checkpoints (PKIX PEM), comma-separated; without them signatures are not checked"`
	AllowUnsigned  bool     `flag:"allow-unsigned" usage:"accept rows no valid checkpoint covers (a writer without a signing key, or the last rows of a running one)"`
	Pruned         bool     `flag:"pruned" usage:"accept chains whose first rows were dropped by retention"`
	PageRows       int      `flag:"page-rows" usage:"rows read per query"`
	NoProgress     bool     `flag:"no-progress" usage:"do not draw a progress bar on stderr"`
	Expect         []string `flag:"expect" usage:"chain heads kept from an earlier run, chain:seq:hash, comma-separated: each chain must still hold them"`
	// AllowUnanchored accepts a verification with neither checkpoint keys
	// nor expected heads: hash chains alone cannot tell a trail whose last
	// rows were deleted from one that ends there.
	AllowUnanchored bool `flag:"allow-unanchored" usage:"accept a verification with neither -verify-key-files nor -expect (the chains' ends are then unproven)"`
}

// ErrUnanchored is returned by "consumer verify" when nothing anchors the
// chains' ends and -allow-unanchored was not given.
var ErrUnanchored = errors.New("unanchored: the hash chains hold together, but with neither -verify-key-files nor -expect nothing proves their last rows are the last written (deleting them would go unnoticed); give one, or -allow-unanchored to accept this")

func parseTimeFlag(p *config.Problems, name, v string) time.Time {
	if v == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, v)
	p.Check(err == nil, name, "must be an RFC 3339 time, e.g. 2026-01-02T15:04:05Z")
	return t
}

// verifyTrail runs "consumer verify": it prints a summary of the audit
// trail's verification to stdout and fails naming the first broken link.
func verifyTrail(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := verifyConfig{Store: defaultStoreConfig(), PageRows: trail.DefaultPageRows}
	fs := cli.NewFlagSet("consumer verify", stderr)
	if err := config.Load(fs, args, &cfg, config.WithFileFlag("config", "REVOKED_CONFIG")); err != nil {
		return err
	}
	var p config.Problems
	p.Nest("audit", cfg.Store.Audit.Validate())
	p.Nest("log", cfg.Store.Log.Validate())
	from := parseTimeFlag(&p, "from", cfg.From)
	to := parseTimeFlag(&p, "to", cfg.To)
	p.Check(cfg.PageRows > 0 && cfg.PageRows <= 1_000_000, "page-rows", "must be in [1, 1000000]")
	opts := trail.Options{Chain: cfg.Chain, From: from, To: to, Pruned: cfg.Pruned, AllowUnsigned: cfg.AllowUnsigned, PageRows: cfg.PageRows}
	for _, e := range cfg.Expect {
		a, err := trail.ParseAnchor(e)
		p.Check(err == nil, "expect", "%v", err)
		opts.Expect = append(opts.Expect, a)
	}
	p.Nest("", opts.Validate())
	if err := p.Err(); err != nil {
		return err
	}
	var keyring *schemas.Keyring
	if len(cfg.VerifyKeyFiles) > 0 {
		var err error
		if keyring, err = schemas.LoadPublicKeyFiles(cfg.VerifyKeyFiles...); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(stderr, "consumer verify: no -verify-key-files: checkpoint signatures are not checked, only the hash chains")
	}
	unanchored := keyring == nil && len(opts.Expect) == 0
	sess, err := cfg.Store.session(ctx, stderr)
	if err != nil {
		return err
	}
	defer sess.Close()
	ctx, store := sess.ctx, sess.store
	if !cfg.NoProgress {
		opts.Progress = progress.New(stderr, progress.Config{Label: "verifying", Unit: "rows"})
	}
	rep, err := trail.Verify(ctx, store, keyring, opts)
	if rep != nil {
		if werr := rep.WriteSummary(stdout); werr != nil {
			return errors.Join(err, werr)
		}
	}
	var ce *audit.ChainError
	if errors.As(err, &ce) {
		row := ce.RowID
		if row == "" {
			row = "(missing)"
		}
		return fmt.Errorf("audit trail broken: chain %q seq %d row %s: %s", ce.Chain, ce.Seq, row, ce.Fault)
	}
	if err != nil {
		return fmt.Errorf("verifying the audit trail: %w", err)
	}
	if unanchored {
		if !cfg.AllowUnanchored {
			return ErrUnanchored
		}
		fmt.Fprintln(stdout, "unanchored: the chains' ends are not proven (-allow-unanchored)")
	}
	return nil
}
