package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHealthcheck(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "kafka: failed: no brokers\n")
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	}))
	defer srv.Close()

	var out strings.Builder
	if err := run(context.Background(), []string{srv.URL + "/livez"}, &out, io.Discard); err != nil || strings.TrimSpace(out.String()) != "ok" {
		t.Fatalf("livez: err = %v, out = %q", err, out.String())
	}
	err := run(context.Background(), []string{srv.URL + "/readyz"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "no brokers") {
		t.Fatalf("readyz: err = %v, want the status and the failing check", err)
	}
	for _, args := range [][]string{nil, {"ftp://x/"}, {"a", "b"}} {
		if err := run(context.Background(), args, io.Discard, io.Discard); err == nil {
			t.Errorf("%q: accepted", args)
		}
	}
	srv.Close()
	if err := run(context.Background(), []string{srv.URL + "/livez"}, io.Discard, io.Discard); err == nil {
		t.Fatal("a closed server passed")
	}
}
