package api_test

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/revoked-dev/revoked/consumer/api"
)

// TestVendoredFiles checks every file web/vendor.sh copied from npm
// against the SHA256SUMS it wrote, and that nothing under vendor/ is
// missing from the list: a hand-edited or added vendored file fails here.
// Run consumer/api/web/vendor.sh to regenerate both.
func TestVendoredFiles(t *testing.T) {
	files := api.StaticFiles()
	sums, err := fs.ReadFile(files, "vendor/SHA256SUMS")
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(string(sums)))
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			t.Fatalf("SHA256SUMS line %q is not '<sum>  <file>'", sc.Text())
		}
		listed[name] = true
		b, err := fs.ReadFile(files, "vendor/"+name)
		if err != nil {
			t.Errorf("%s is listed but missing: %v", name, err)
			continue
		}
		got := sha256.Sum256(b)
		if hex.EncodeToString(got[:]) != sum {
			t.Errorf("vendor/%s does not match SHA256SUMS: edited by hand? run consumer/api/web/vendor.sh", name)
		}
	}
	if len(listed) == 0 {
		t.Fatal("SHA256SUMS lists nothing")
	}
	err = fs.WalkDir(files, "vendor", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || p == "vendor/SHA256SUMS" {
			return err
		}
		if !listed[strings.TrimPrefix(p, "vendor/")] {
			t.Errorf("%s is not in vendor/SHA256SUMS: run consumer/api/web/vendor.sh", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, lic := range []string{"uplot/LICENSE"} {
		if !listed[lic] {
			t.Errorf("%s is not vendored", lic)
		}
	}
}

func TestUIServesFiles(t *testing.T) {
	srv := httptest.NewServer(api.UIHandler())
	t.Cleanup(srv.Close)
	for path, ctype := range map[string]string{
		"/ui/":                           "text/html; charset=utf-8",
		"/ui/index.html":                 "text/html; charset=utf-8",
		"/ui/timeline":                   "text/html; charset=utf-8",
		"/ui/app.js":                     "text/javascript; charset=utf-8",
		"/ui/app.css":                    "text/css; charset=utf-8",
		"/ui/favicon.svg":                "image/svg+xml",
		"/ui/vendor/uplot/uPlot.esm.js":  "text/javascript; charset=utf-8",
		"/ui/vendor/uplot/uPlot.min.css": "text/css; charset=utf-8",
		"/ui/vendor/uplot/LICENSE":       "text/plain; charset=utf-8",
	} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		h := resp.Header
		if resp.StatusCode != 200 || len(body) == 0 || h.Get("Content-Type") != ctype {
			t.Errorf("%s: %s, %d bytes, Content-Type %q (want %q)", path, resp.Status, len(body), h.Get("Content-Type"), ctype)
		}
		if h.Get("Content-Security-Policy") != api.ContentSecurityPolicy || h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: CSP %q, nosniff %q", path, h.Get("Content-Security-Policy"), h.Get("X-Content-Type-Options"))
		}
		etag := h.Get("ETag")
		if etag == "" || h.Get("Cache-Control") != "no-cache" {
			t.Errorf("%s: ETag %q, Cache-Control %q", path, etag, h.Get("Cache-Control"))
			continue
		}
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		req.Header.Set("If-None-Match", etag)
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotModified {
			t.Errorf("%s with its ETag: %s, want 304", path, resp.Status)
		}
	}
	for _, path := range []string{"/ui/nope.js", "/ui/../api.go", "/ui/vendor/", "/ui/timeline/", "/ui/timeline/x"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %s, want 404", path, resp.Status)
		}
	}
}

// TestUIIsSelfContained checks what the Content-Security-Policy relies
// on and the "no CDN" rule: the page loads only its own files, with no
// inline script, style or event handler, and nothing refers to another
// host.
func TestUIIsSelfContained(t *testing.T) {
	files := api.StaticFiles()
	index, err := fs.ReadFile(files, "index.html")
	if err != nil {
		t.Fatal(err)
	}
	html := string(index)
	if m := regexp.MustCompile(`<script[^>]*>\s*[^<\s]`).FindString(html); m != "" {
		t.Errorf("inline script: %s", m)
	}
	if m := regexp.MustCompile(`(?i)<style|\sstyle=|\son[a-z]+=`).FindString(html); m != "" {
		t.Errorf("inline style or event handler: %s", m)
	}
	for _, m := range regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(html, -1) {
		if _, err := fs.Stat(files, m[1]); err != nil {
			t.Errorf("index.html refers to %s, which is not embedded", m[1])
		}
	}
	app, _ := fs.ReadFile(files, "app.js")
	for _, m := range regexp.MustCompile(`(?m)^import .* from "([^"]+)";`).FindAllStringSubmatch(string(app), -1) {
		if _, err := fs.Stat(files, strings.TrimPrefix(m[1], "./")); err != nil || !strings.HasPrefix(m[1], "./") {
			t.Errorf("app.js imports %s, which is not an embedded file", m[1])
		}
	}
	for _, name := range []string{"index.html", "app.js", "app.css"} {
		b, _ := fs.ReadFile(files, name)
		if m := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/|cdn`).Find(b); m != nil {
			t.Errorf("%s refers to another host: %s", name, m)
		}
	}
	for _, name := range []string{"vendor/uplot/uPlot.esm.js", "vendor/uplot/uPlot.min.css"} {
		b, _ := fs.ReadFile(files, name)
		if m := regexp.MustCompile(`(?:import|@import|url\()\s*["']?https?:`).Find(b); m != nil {
			t.Errorf("%s loads from another host: %s", name, m)
		}
	}
}
