package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/revoked-dev/revoked/internal/cli"
	"github.com/revoked-dev/revoked/schemas"
)

// Key files written by keygen.
const (
	signingKeyFile    = "signing.key"
	signingPubFile    = "signing.pub"
	sealKeyFile       = "seal.key"
	sealPubFile       = "seal.pub"
	checkpointKeyFile = "checkpoint.key"
	checkpointPubFile = "checkpoint.pub"
)

// keyFile is one file keygen writes.
type keyFile struct {
	name string
	data []byte
	mode fs.FileMode
}

// keySet is files that belong together (a private key and its public
// key): written whole or not at all.
type keySet []keyFile

// runKeygen writes a signing key pair (Ed25519, PEM) for whoever publishes
// commands and a sealing key pair (X25519, base64) for the consumer; on
// request also a checkpoint key pair (Ed25519, PEM) for the consumer's
// audit checkpoints and random secrets (bearer tokens, client secrets).
// Private files are 0600; existing files are never overwritten: keygen
// refuses, or with -if-missing writes only what is missing, so a
// deployment can run it at every start.
func runKeygen(args []string, stdout, stderr io.Writer) error {
	fset := cli.NewFlagSet("producer keygen", stderr)
	out := fset.String("out", "", "directory to write signing.key, signing.pub, seal.key and seal.pub to (created 0700 if missing)")
	checkpoint := fset.Bool("checkpoint", false, "also write checkpoint.key and checkpoint.pub, the consumer's audit checkpoint key pair")
	var secrets listFlag
	fset.Var(&secrets, "secrets", "also write a random secret (32 bytes, base64url) to each of these files in the directory, comma-separated (bearer tokens, client secrets)")
	ifMissing := fset.Bool("if-missing", false, "write only the files that are missing instead of refusing when any exists (a key pair is written whole or not at all)")
	if err := fset.Parse(args); err != nil {
		return err
	}
	if *out == "" || fset.NArg() > 0 {
		fset.Usage()
		return errors.New("keygen needs --out DIR and nothing else")
	}
	for _, s := range secrets {
		if s == "" || s != filepath.Base(s) || strings.HasPrefix(s, ".") {
			return fmt.Errorf("-secrets: %q is not a plain file name", s)
		}
	}

	signing, signer, err := signingKeySet(signingKeyFile, signingPubFile)
	if err != nil {
		return err
	}
	seal, err := schemas.GenerateSealKey()
	if err != nil {
		return err
	}
	sets := []keySet{signing, {
		{sealKeyFile, []byte(seal.MarshalPrivate() + "\n"), 0o600},
		{sealPubFile, []byte(seal.PublicBase64() + "\n"), 0o644},
	}}
	if *checkpoint {
		cp, _, err := signingKeySet(checkpointKeyFile, checkpointPubFile)
		if err != nil {
			return err
		}
		sets = append(sets, cp)
	}
	for _, name := range secrets {
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			return fmt.Errorf("random secret: %w", err)
		}
		sets = append(sets, keySet{{name, []byte(base64.RawURLEncoding.EncodeToString(b[:]) + "\n"), 0o600}})
	}

	// Decide what to write before writing anything.
	var write []keyFile
	for _, set := range sets {
		var have []string
		for _, f := range set {
			if _, err := os.Stat(filepath.Join(*out, f.name)); err == nil {
				have = append(have, f.name)
			}
		}
		switch {
		case len(have) == 0:
			write = append(write, set...)
		case !*ifMissing:
			return fmt.Errorf("%s exists already; keygen never overwrites keys", filepath.Join(*out, have[0]))
		case len(have) < len(set):
			return fmt.Errorf("%s has %s without the rest of its key pair; remove it or restore the pair", *out, strings.Join(have, ", "))
		}
	}
	if err := os.MkdirAll(*out, 0o700); err != nil {
		return fmt.Errorf("creating key directory: %w", err)
	}
	for _, f := range write {
		if err := writeNew(filepath.Join(*out, f.name), f.data, f.mode); err != nil {
			return err
		}
	}
	if len(write) == 0 {
		fmt.Fprintf(stdout, "every key and secret exists already in %s; nothing written\n", *out)
		return nil
	}
	for _, f := range write {
		switch f.name {
		case signingKeyFile:
			fmt.Fprintf(stdout, "signing key %s: %s (private), %s\n", signer.KeyID(),
				filepath.Join(*out, signingKeyFile), filepath.Join(*out, signingPubFile))
		case sealKeyFile:
			fmt.Fprintf(stdout, "sealing key: %s (private, for the consumer), %s = %s\n",
				filepath.Join(*out, sealKeyFile), filepath.Join(*out, sealPubFile), seal.PublicBase64())
		case checkpointKeyFile:
			fmt.Fprintf(stdout, "checkpoint key: %s (private, for the consumer), %s (for consumer verify)\n",
				filepath.Join(*out, checkpointKeyFile), filepath.Join(*out, checkpointPubFile))
		case signingPubFile, sealPubFile, checkpointPubFile:
		default:
			fmt.Fprintf(stdout, "secret: %s\n", filepath.Join(*out, f.name))
		}
	}
	return nil
}

// signingKeySet is a new Ed25519 key pair as PEM files.
func signingKeySet(privName, pubName string) (keySet, *schemas.Signer, error) {
	priv, err := schemas.GenerateSigningKey()
	if err != nil {
		return nil, nil, err
	}
	privPEM, err := schemas.MarshalPrivateKeyPEM(priv)
	if err != nil {
		return nil, nil, err
	}
	signer := schemas.NewSigner(priv)
	pubPEM, err := schemas.MarshalPublicKeyPEM(signer.Public())
	if err != nil {
		return nil, nil, err
	}
	return keySet{{privName, privPEM, 0o600}, {pubName, pubPEM, 0o644}}, signer, nil
}

// listFlag is a comma-separated list flag.
type listFlag []string

var _ flag.Value = (*listFlag)(nil)

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	for item := range strings.SplitSeq(s, ",") {
		*l = append(*l, strings.TrimSpace(item))
	}
	return nil
}

// writeNew creates path with mode (never replacing a file) and syncs it.
func writeNew(path string, data []byte, mode fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("syncing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", path, err)
	}
	// The umask may have narrowed the mode; private files must be exactly 0600.
	return os.Chmod(path, mode)
}
