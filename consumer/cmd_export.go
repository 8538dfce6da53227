package main

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	"github.com/revoked-dev/revoked/consumer/export"
	"github.com/revoked-dev/revoked/internal/cli"
	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/internal/progress"
	"github.com/revoked-dev/revoked/schemas"
)

// exportConfig is what "consumer export" reads.
type exportConfig struct {
	Store  storeConfig `yaml:"-"`
	From   string      `flag:"from" usage:"export the rows from this time on (RFC 3339)"`
	To     string      `flag:"to" usage:"export the rows before this time (RFC 3339)"`
	Format string      `flag:"format" usage:"data file format: csv, jsonl or parquet"`
	Out    string      `flag:"out" usage:"directory to write the export to (created if missing; must not hold an export)"`
	User   string      `flag:"user" usage:"export only this user's rows"`
	Rule   string      `flag:"rule" usage:"export only this rule's rows"`
	// SigningKey signs SHA256SUMS (an Ed25519 key, PKCS #8 PEM or base64
	// seed).
	SigningKey config.Secret `env:"REVOKED_EXPORT_SIGNING_KEY" yaml:"-"`
	PageRows   int           `flag:"page-rows" usage:"rows read per query"`
	NoProgress bool          `flag:"no-progress" usage:"do not draw a progress bar on stderr"`
}

// verifyExportConfig is what "consumer verify-export" reads.
type verifyExportConfig struct {
	VerifyKeyFiles []string `flag:"verify-key-files" env:"REVOKED_EXPORT_VERIFY_KEY_FILES" yaml:"verify_key_files" usage:"files holding the public keys that sign exports (PKIX PEM), comma-separated; without them the signature is not checked"`
}

func toolVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		v := bi.Main.Version
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				v += " " + s.Value
			}
		}
		return strings.TrimSpace(v)
	}
	return "unknown"
}

// exportTrail runs "consumer export": it writes the audit rows of a time
// range, their manifest, SHA256SUMS and its signature to a directory.
func exportTrail(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := exportConfig{Store: defaultStoreConfig(), Format: string(export.CSV), PageRows: export.DefaultPageRows}
	fs := cli.NewFlagSet("consumer export", stderr)
	if err := config.Load(fs, args, &cfg, config.WithFileFlag("config", "REVOKED_CONFIG")); err != nil {
		return err
	}
	var p config.Problems
	p.Nest("audit", cfg.Store.Audit.Validate())
	p.Nest("log", cfg.Store.Log.Validate())
	from := parseTimeFlag(&p, "from", cfg.From)
	to := parseTimeFlag(&p, "to", cfg.To)
	p.Check(cfg.From != "" && cfg.To != "", "from", "name the range with -from and -to")
	p.Check(from.IsZero() || to.IsZero() || from.Before(to), "to", "must be after -from")
	format, err := export.ParseFormat(cfg.Format)
	p.Check(err == nil, "format", "%v", err)
	p.Check(cfg.Out != "", "out", "name the output directory")
	p.Check(cfg.PageRows > 0 && cfg.PageRows <= 1_000_000, "page-rows", "must be in [1, 1000000]")
	p.Check(cfg.SigningKey.IsSet(), "REVOKED_EXPORT_SIGNING_KEY", "set REVOKED_EXPORT_SIGNING_KEY or REVOKED_EXPORT_SIGNING_KEY_FILE: exports are signed")
	p.Check(fs.NArg() == 0, "args", "unexpected arguments %q", fs.Args())
	if err := p.Err(); err != nil {
		return err
	}
	priv, err := schemas.ParsePrivateKey([]byte(cfg.SigningKey.Reveal()))
	if err != nil {
		return fmt.Errorf("REVOKED_EXPORT_SIGNING_KEY: %w", err)
	}
	sess, err := cfg.Store.session(ctx, stderr)
	if err != nil {
		return err
	}
	defer sess.Close()
	ctx, store := sess.ctx, sess.store
	opts := export.Options{
		Dir: cfg.Out, Format: format, From: from, To: to, UserID: cfg.User, RuleID: cfg.Rule,
		Signer: schemas.NewSigner(priv), ToolVersion: toolVersion(), PageRows: cfg.PageRows,
	}
	if !cfg.NoProgress {
		opts.Progress = progress.New(stderr, progress.Config{Label: "exporting", Unit: "rows"})
	}
	m, err := export.Export(ctx, store, opts)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "exported %d rows of %d chains to %s (%s, %s), signed by %s\n",
		m.Rows, len(m.Chains), cfg.Out, m.DataFile, progress.FormatBytes(m.DataBytes), m.KeyID)
	return err
}

// verifyExport runs "consumer verify-export DIR": it checks the sums, the
// signature and the manifest's row count and chain heads.
func verifyExport(_ context.Context, args []string, stdout, stderr io.Writer) error {
	var dir string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		dir, args = args[0], args[1:]
	}
	var cfg verifyExportConfig
	fs := cli.NewFlagSet("consumer verify-export", stderr)
	if err := config.Load(fs, args, &cfg); err != nil {
		return err
	}
	rest := fs.Args()
	if dir == "" && len(rest) > 0 {
		dir, rest = rest[0], rest[1:]
	}
	if dir == "" || len(rest) > 0 {
		return fmt.Errorf("usage: consumer verify-export DIR [-verify-key-files pub.pem]")
	}
	var keyring *schemas.Keyring
	if len(cfg.VerifyKeyFiles) > 0 {
		var err error
		if keyring, err = schemas.LoadPublicKeyFiles(cfg.VerifyKeyFiles...); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(stderr, "consumer verify-export: no -verify-key-files: the signature is not checked, only the sums and the rows")
	}
	res, err := export.Verify(dir, keyring)
	if err != nil {
		return fmt.Errorf("export %s does not verify: %w", dir, err)
	}
	sig := "signature not checked"
	if res.Signed {
		sig = "signature by " + res.Manifest.KeyID + " verified"
	}
	_, err = fmt.Fprintf(stdout, "export %s: sums OK, %s, %d rows as the manifest says\n", dir, sig, res.Rows)
	return err
}

// exportCommand runs "consumer export" or "consumer verify-export".
func exportCommand(ctx context.Context, cmd string, args []string, stdout, stderr io.Writer) error {
	if cmd == "verify-export" {
		return verifyExport(ctx, args, stdout, stderr)
	}
	return exportTrail(ctx, args, stdout, stderr)
}
