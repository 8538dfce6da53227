// Command producer puts things onto Kafka: audit events from files, standard
// input or an HTTP endpoint, manual revoke commands, and simulated traffic.
//
//	producer ingest   --file F [--file G ...] | --stdin | --listen ADDR  [--format auditevent|ocsf]
//	producer ingest box-events  --checkpoint FILE [--box.from-position P] [...]
//	producer ingest box-webhook [--listen ADDR] [--path /box/webhook] [...]
//	producer ingest okta-logs   --checkpoint FILE --okta.org-url URL [--okta.from T] [...]
//	producer ocsf     [--from auditevent|ocsf] [--file F ...]
//	producer revoke   --operator NAME (--user U | --token-id T | --token-file F | --session S | --client C) [...]
//	producer simulate [--users N] [--duration D | --events N] [--rate R] [--seed S] [--ground-truth FILE] [--tokenapi URL ...]
//	producer keygen   --out DIR [--checkpoint] [--secrets a,b] [--if-missing]
//	producer campaign [run|status] --id ID (--users-file F | --cohort-file F | --from-audit | --client C) [--rate R] [...]
//	producer ssf      push|poll|gtr [flags]   Shared Signals receiver, global token revocation endpoint
//
// Settings come from flags, REVOKED_* environment variables and an optional
// YAML file (--config or REVOKED_CONFIG), in that order of precedence; run
// "producer <command> -h" for the list. Secrets never come from flag values,
// which show in the process list: the signing key comes from the file named
// by --signing-key-file or REVOKED_SIGNING_KEY_FILE, or from
// REVOKED_SIGNING_KEY; tokens and passwords from *_FILE variables or files.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/revoked-dev/revoked/internal/cli"
)

func main() {
	cli.Exit("producer", run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

const usage = `usage: producer <command> [flags]

commands:
  ingest    validate JSONL audit events (or OCSF, -format ocsf) from files, stdin or HTTP and publish them
            ingest box-events: poll Box's enterprise event stream
            ingest box-webhook: receive Box webhooks (v2, signed)
            ingest okta-logs: poll the Okta System Log
  ocsf      convert JSONL AuditEvents to OCSF events, or OCSF to AuditEvents (-from ocsf)
  revoke    publish one signed manual revoke command
  simulate  generate user traffic with labelled attacks
  keygen    write a signing key pair and a sealing key pair
  campaign  mass revocation: every user, a cohort or a client, paced and resumable
  ssf       Shared Signals receiver (push, poll) and global token revocation endpoint (gtr)

Run "producer <command> -h" for a command's flags.
`

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "ingest":
		return runIngest(ctx, args, stdin, stdout, stderr)
	case "revoke":
		return runRevoke(ctx, args, stdin, stdout, stderr)
	case "simulate":
		return runSimulate(ctx, args, stdout, stderr)
	case "keygen":
		return runKeygen(args, stdout, stderr)
	case "campaign":
		return runCampaign(ctx, args, stdout, stderr)
	case "ocsf":
		return runOCSF(ctx, args, stdin, stdout, stderr)
	case "ssf":
		return runSSF(ctx, args, stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}
