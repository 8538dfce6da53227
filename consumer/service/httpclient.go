package service

import (
	"net/http"
	"time"
)

// NewHTTPClient returns an HTTP client for the token API that keeps up to
// conns idle connections to it, enough for every command in flight to
// reuse one (Go's default keeps two per host, so concurrent commands
// would open and close a connection per request), and that does not
// follow redirects (a redirected POST would arrive as a GET without its
// body). The idp client bounds each request with its own timeout.
func NewHTTPClient(conns int) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = max(conns, t.MaxIdleConns)
	t.MaxIdleConnsPerHost = conns
	t.IdleConnTimeout = 90 * time.Second
	return &http.Client{
		Transport:     t,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
