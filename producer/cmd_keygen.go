package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/revoked-dev/revoked/internal/cli"
	"github.com/revoked-dev/revoked/schemas"
)

// Key files written by keygen.
const (
	signingKeyFile = "signing.key"
	signingPubFile = "signing.pub"
	sealKeyFile    = "seal.key"
	sealPubFile    = "seal.pub"
)

// runKeygen writes a signing key pair (Ed25519, PEM) for whoever publishes
// commands and a sealing key pair (X25519, base64) for the consumer.
// Private files are 0600; existing files are never overwritten.
func runKeygen(args []string, stdout, stderr io.Writer) error {
	fset := cli.NewFlagSet("producer keygen", stderr)
	out := fset.String("out", "", "directory to write signing.key, signing.pub, seal.key and seal.pub to (created 0700 if missing)")
	if err := fset.Parse(args); err != nil {
		return err
	}
	if *out == "" || fset.NArg() > 0 {
		fset.Usage()
		return errors.New("keygen needs --out DIR and nothing else")
	}
	priv, err := schemas.GenerateSigningKey()
	if err != nil {
		return err
	}
	privPEM, err := schemas.MarshalPrivateKeyPEM(priv)
	if err != nil {
		return err
	}
	signer := schemas.NewSigner(priv)
	pubPEM, err := schemas.MarshalPublicKeyPEM(signer.Public())
	if err != nil {
		return err
	}
	seal, err := schemas.GenerateSealKey()
	if err != nil {
		return err
	}
	files := []struct {
		name string
		data []byte
		mode fs.FileMode
	}{
		{signingKeyFile, privPEM, 0o600},
		{signingPubFile, pubPEM, 0o644},
		{sealKeyFile, []byte(seal.MarshalPrivate() + "\n"), 0o600},
		{sealPubFile, []byte(seal.PublicBase64() + "\n"), 0o644},
	}
	for _, f := range files {
		if _, err := os.Stat(filepath.Join(*out, f.name)); err == nil {
			return fmt.Errorf("%s exists already; keygen never overwrites keys", filepath.Join(*out, f.name))
		}
	}
	if err := os.MkdirAll(*out, 0o700); err != nil {
		return fmt.Errorf("creating key directory: %w", err)
	}
	for _, f := range files {
		if err := writeNew(filepath.Join(*out, f.name), f.data, f.mode); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "signing key %s: %s (private), %s\nsealing key: %s (private, for the consumer), %s = %s\n",
		signer.KeyID(), filepath.Join(*out, signingKeyFile), filepath.Join(*out, signingPubFile),
		filepath.Join(*out, sealKeyFile), filepath.Join(*out, sealPubFile), seal.PublicBase64())
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
