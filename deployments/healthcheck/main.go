// Command healthcheck asks a service's HTTP endpoint whether it is
// healthy, for the container healthchecks of images that have no shell
// and no HTTP client (distroless):
//
//	healthcheck [-timeout 3s] http://127.0.0.1:9091/readyz
//
// It exits 0 when a GET of the URL answers 2xx within the timeout, and 1
// otherwise, printing the status and the first lines of the answer (a
// /readyz answer names the failing checks).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/revoked-dev/revoked/internal/cli"
)

func main() {
	cli.Exit("healthcheck", run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("healthcheck", stderr)
	timeout := fs.Duration("timeout", 3*time.Second, "how long the request may take")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("want one URL, e.g. http://127.0.0.1:9091/readyz")
	}
	u, err := url.Parse(fs.Arg(0))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", fs.Arg(0))
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	text := strings.TrimSpace(string(body))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s: %s: %s", u.Redacted(), resp.Status, text)
	}
	fmt.Fprintln(stdout, text)
	return nil
}
