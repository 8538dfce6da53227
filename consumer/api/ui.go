package api

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// The web UI: static files only, built into the binary. web/static/vendor
// holds the npm packages web/vendor.sh copies there (no CDN at run time).
//
//go:embed web/static
var webFiles embed.FS

// StaticFiles returns the UI's files, rooted at web/static.
func StaticFiles() fs.FS {
	sub, err := fs.Sub(webFiles, "web/static")
	if err != nil {
		panic(err) // the embedded directory is always there
	}
	return sub
}

// ContentSecurityPolicy is sent with every UI file: scripts and styles
// only from the consumer itself (no inline script, no eval), data only
// from its own API, and no framing.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".json": "application/json",
}

type uiFile struct {
	data  []byte
	ctype string
	etag  string
}

// TimelinePage is the path under /ui/ of a timeline's own address,
// /ui/timeline?user_id=U or ?command_id=C (with the range's range, from
// and to): the page itself, which opens on the timeline the query names.
const TimelinePage = "timeline"

// UIHandler serves the UI's files under /ui/ (index.html for /ui/ and
// /ui/timeline). Every
// answer has an exact Content-Type, nosniff, the Content-Security-Policy,
// and a strong ETag from the file's SHA-256 with "Cache-Control: no-cache",
// so browsers keep the files and revalidate them cheaply (a 304) and a new
// binary's files are never served stale.
func UIHandler() http.Handler {
	files := map[string]uiFile{}
	root := StaticFiles()
	err := fs.WalkDir(root, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(root, p)
		if err != nil {
			return err
		}
		ctype, ok := contentTypes[path.Ext(p)]
		if !ok {
			ctype = "text/plain; charset=utf-8" // LICENSE, VERSION, SHA256SUMS
		}
		sum := sha256.Sum256(b)
		files[p] = uiFile{data: b, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:16]) + `"`}
		return nil
	})
	if err != nil {
		panic(err) // embedded files are always readable
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutPrefix(r.URL.Path, "/ui/")
		if !ok {
			http.NotFound(w, r)
			return
		}
		if name == "" || name == TimelinePage {
			name = "index.html"
		}
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		f, ok := files[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h.Set("Content-Type", f.ctype)
		h.Set("ETag", f.etag)
		h.Set("Cache-Control", "no-cache")
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(f.data))
	})
}
