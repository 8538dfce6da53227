package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/revoked-dev/revoked/internal/cli"
	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/producer/ingest"
	"github.com/revoked-dev/revoked/producer/ingest/ocsf"
	"github.com/revoked-dev/revoked/schemas"
)

// ocsfConfig is everything "producer ocsf" reads.
type ocsfConfig struct {
	// From is the input's format; the output is the other one.
	From    string `flag:"from" usage:"what the input lines are: auditevent (written out as OCSF) or ocsf (written out as AuditEvents)"`
	UserKey string `flag:"user-key" usage:"with -from ocsf: the user attribute that becomes user_id: uid, name or email_addr"`
}

// maxConvertLine bounds one input line of "producer ocsf".
const maxConvertLine = 4 << 20

// runOCSF converts JSONL between AuditEvents and OCSF: the files given
// (or standard input) to standard output, one line out per line in.
// Lines that do not convert are listed on stderr with their line number
// and left out; OCSF records of a class that is not read are listed as
// unmapped. It fails when a line was rejected.
func runOCSF(_ context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	cfg := ocsfConfig{From: formatAuditEvent, UserKey: ocsf.UserKeyUID}
	fs := cli.NewFlagSet("producer ocsf", stderr)
	var files stringsFlag
	fs.Var(&files, "file", "JSONL file to convert (repeatable; none: standard input)")
	if err := cli.Load(fs, args, &cfg); err != nil {
		return err
	}
	var p config.Problems
	p.Check(cfg.From == formatAuditEvent || cfg.From == formatOCSF, "from", "want auditevent or ocsf, got %q", cfg.From)
	p.Check(cfg.UserKey == ocsf.UserKeyUID || cfg.UserKey == ocsf.UserKeyName || cfg.UserKey == ocsf.UserKeyEmail,
		"user-key", "want uid, name or email_addr, got %q", cfg.UserKey)
	if err := p.Err(); err != nil {
		return err
	}
	convert := toOCSF
	if cfg.From == formatOCSF {
		convert = fromOCSF(ocsf.Decoder{UserKey: cfg.UserKey})
	}
	out := bufio.NewWriter(stdout)
	var rejected int
	run := func(r io.Reader, name string) error {
		n, err := convertLines(r, name, convert, out, stderr)
		rejected += n
		return err
	}
	var err error
	if len(files) == 0 {
		err = run(stdin, "stdin")
	}
	for _, path := range files {
		if err != nil {
			break
		}
		f, oerr := os.Open(path)
		if oerr != nil {
			err = oerr
			break
		}
		err = run(f, path)
		_ = f.Close()
	}
	if ferr := out.Flush(); err == nil {
		err = ferr
	}
	if err == nil && rejected > 0 {
		err = fmt.Errorf("lines rejected: %d (listed above)", rejected)
	}
	return err
}

// convertLines converts each non-blank line of r, writing results to out
// and rejections to report; it returns the rejections counted.
func convertLines(r io.Reader, name string, convert func([]byte) ([]byte, error), out io.Writer, report io.Writer) (int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxConvertLine)
	rejected, n := 0, 0
	for sc.Scan() {
		n++
		line := sc.Bytes()
		if len(bytesTrim(line)) == 0 {
			continue
		}
		b, err := convert(line)
		switch {
		case errors.Is(err, ingest.ErrUnmapped):
			fmt.Fprintf(report, "%s line %d: unmapped: %v\n", name, n, err)
		case err != nil:
			rejected++
			fmt.Fprintf(report, "%s line %d: %s\n", name, n, ingest.Describe(err))
		default:
			if _, err := out.Write(append(b, '\n')); err != nil {
				return rejected, err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return rejected, fmt.Errorf("reading %s after line %d: %w", name, n, err)
	}
	return rejected, nil
}

func bytesTrim(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\r') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// toOCSF renders an AuditEvent line as an OCSF line.
func toOCSF(line []byte) ([]byte, error) {
	ev, err := schemas.DecodeEvent(line)
	if err != nil {
		return nil, err
	}
	o, err := ocsf.FromAuditEvent(&ev)
	if err != nil {
		return nil, err
	}
	return json.Marshal(o)
}

// fromOCSF reads an OCSF line as an AuditEvent line.
func fromOCSF(d ocsf.Decoder) func([]byte) ([]byte, error) {
	return func(line []byte) ([]byte, error) {
		ev, err := d.Decode(line)
		if err != nil {
			return nil, err
		}
		if err := ev.Validate(); err != nil {
			return nil, err
		}
		return ev.AppendJSON(nil)
	}
}
