// Package cli is what the commands' main packages share: turning a
// command's error into the process's exit status, choosing a subcommand,
// loading a service's configuration and its logger, and running the ops
// server beside a service.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/internal/ops"
)

// Exit ends the process as a command that returned err should: it returns
// (status 0) when err is nil or flag.ErrHelp, since the flag set has then
// printed the usage that was asked for; otherwise it prints "name: err" to
// standard error and exits with status 1.
func Exit(name string, err error) {
	if code := report(os.Stderr, name, err); code != 0 {
		os.Exit(code)
	}
}

// report writes what Exit prints to w and returns the exit status.
func report(w io.Writer, name string, err error) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintln(w, name+":", err)
	return 1
}

// Subcommand splits args into a subcommand and its arguments. The first
// argument names the subcommand unless there is none or it is a flag; then
// the subcommand is def, with all of args.
func Subcommand(args []string, def string) (string, []string) {
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		return args[0], args[1:]
	}
	return def, args
}

// NewFlagSet returns a flag set named name that returns its errors instead
// of exiting, and prints them and its usage to out.
func NewFlagSet(name string, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	return fs
}

// Load fills cfg, a pointer to a configuration struct, as config.Load does
// from args, the environment and the YAML file named by -config or
// REVOKED_CONFIG, and refuses arguments left over after the flags. Flags
// the caller defined on fs before stay its own.
func Load(fs *flag.FlagSet, args []string, cfg any) error {
	if err := config.Load(fs, args, cfg, config.WithFileFlag("config", "REVOKED_CONFIG")); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return nil
}

// Validator is a configuration that reports its problems, every one at
// once.
type Validator interface {
	Validate() error
}

// Configure is how a service command starts: it loads cfg (see Load),
// validates it, and returns a logger writing to stderr as log says. log
// points into cfg, so it holds the loaded settings.
func Configure(fs *flag.FlagSet, args []string, cfg Validator, log *ops.LogConfig, stderr io.Writer) (zerolog.Logger, error) {
	if err := Load(fs, args, cfg); err != nil {
		return zerolog.Nop(), err
	}
	if err := cfg.Validate(); err != nil {
		return zerolog.Nop(), err
	}
	return ops.NewLogger(*log, stderr)
}

// RunWithOps runs service and, beside it, the ops server srv, both on ctx,
// and returns their errors joined. stop must cancel ctx (the stop function
// of signal.NotifyContext, say): RunWithOps calls it when service returns,
// so that a service that stops on its own, after a fatal error say, takes
// its ops server down with it.
func RunWithOps(ctx context.Context, stop context.CancelFunc, srv *ops.Server, service func(context.Context) error) error {
	opsDone := make(chan error, 1)
	go func() { opsDone <- srv.Run(ctx) }()
	err := service(ctx)
	stop()
	return errors.Join(err, <-opsDone)
}
