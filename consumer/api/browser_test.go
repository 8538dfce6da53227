package api_test

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/api"
	"github.com/revoked-dev/revoked/consumer/export"
	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/internal/testenv"
)

// browser is a headless Chromium tab with what the page reported (console
// errors, uncaught exceptions, CSP violations) collected for the test.
type browser struct {
	t        *testing.T
	ctx      context.Context
	shots    string
	mu       sync.Mutex
	problems []string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	path := testenv.ChromiumPath(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 1000),
		chromedp.Env("TZ=UTC"),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	b := &browser{t: t, shots: testenv.ArtifactDir(t, "ui")}
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithListener(b.listen))
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The first Run starts the browser; it must not carry a timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	b.ctx = ctx
	return b
}

func (b *browser) listen(ev any) {
	var p string
	switch e := ev.(type) {
	case *runtime.EventExceptionThrown:
		p = "exception: " + e.ExceptionDetails.Text
		if e.ExceptionDetails.Exception != nil {
			p += " " + e.ExceptionDetails.Exception.Description
		}
	case *runtime.EventConsoleAPICalled:
		if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeWarning {
			var args []string
			for _, a := range e.Args {
				args = append(args, string(a.Value)+a.Description)
			}
			p = fmt.Sprintf("console.%s: %s", e.Type, strings.Join(args, " "))
		}
	case *cdplog.EventEntryAdded:
		entry := e.Entry
		// The 401s that make the page ask for the token are expected.
		if entry.Level == cdplog.EntryLevelError && !(entry.Source == cdplog.EntrySourceNetwork && strings.Contains(entry.Text, "401")) {
			p = fmt.Sprintf("log (%s): %s %s", entry.Source, entry.Text, entry.URL)
		}
	}
	if p != "" {
		b.mu.Lock()
		b.problems = append(b.problems, p)
		b.mu.Unlock()
	}
}

// do runs actions with a time limit.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.screenshot("failed-" + strings.ReplaceAll(what, " ", "-"))
		b.t.Fatalf("%s: %v", what, err)
	}
}

// wait polls a JavaScript predicate until it is true.
func (b *browser) wait(what, predicate string) {
	b.t.Helper()
	b.do("waiting for "+what, void(chromedp.Poll[bool](predicate, chromedp.WithPollingTimeout(25*time.Second), chromedp.WithPollingInterval(50*time.Millisecond))))
}

// eval evaluates a JavaScript expression into T.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// screenshot saves a full-page PNG of the tab as name.png.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Errorf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(b.shots, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Errorf("saving screenshot: %v", err)
		return
	}
	b.t.Logf("screenshot: %s", path)
}

func (b *browser) checkProblems() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		b.t.Errorf("the page reported %s", p)
	}
}

// canvasInk is a JavaScript expression counting the non-transparent pixels
// of the first canvas under sel.
func canvasInk(sel string) string {
	return fmt.Sprintf(`(() => {
		const c = document.querySelector(%q);
		if (!c) return 0;
		const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
		let n = 0;
		for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
		return n;
	})()`, sel+" canvas")
}

// TestBrowserUI loads the web UI in headless Chromium against a trail of
// 3,000 commands behind a bearer token: it answers the token prompt,
// checks that both charts rendered with data, searches a user, opens their
// timeline, and exports the search as CSV. Screenshots of every stage go
// to $REVOKED_TEST_ARTIFACTS/ui.
func TestBrowserUI(t *testing.T) {
	b := newBrowser(t)

	end := time.Now().UTC().Truncate(time.Minute).Add(-10 * time.Minute)
	tr := buildTrail(t, 3000, end, 72*time.Hour)
	const token = "ui-test-token-4f7d2c"
	mux := http.NewServeMux()
	api.New(tr.store, zerolog.Nop()).Mount(mux, config.NewSecret(token))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Logf("trail: %d commands, %d rows; UI at %s/ui/", tr.commands, tr.rows, srv.URL)

	// The page is public; its data is not: it asks for the token.
	b.do("loading the UI", chromedp.Navigate(srv.URL+"/"))
	b.wait("the token prompt", `document.querySelector("#token-dialog").open`)
	if loc := eval[string](b, `location.pathname`); loc != "/ui/" {
		t.Errorf("/ redirected to %s, want /ui/", loc)
	}
	// A wrong token is refused and asked for again.
	b.do("typing a wrong token",
		chromedp.SendKeys(chromedp.CSS("#token-input"), "not-the-token"),
		chromedp.Click(chromedp.CSS("#token-submit")),
	)
	b.wait("the prompt again", `document.querySelector("#token-dialog").open &&
		!document.querySelector("#token-error").hidden && document.querySelector("#token-input").value === ""`)
	b.do("typing the token",
		chromedp.SendKeys(chromedp.CSS("#token-input"), token),
	)
	b.screenshot("01-token-prompt")
	b.do("submitting the token", chromedp.Click(chromedp.CSS("#token-submit")))

	// The overview: KPIs, both charts and the first page of rows.
	b.wait("the charts", `document.body.dataset.ready === "true" &&
		+document.querySelector("#chart-outcomes").dataset.points > 0 &&
		+document.querySelector("#chart-latency").dataset.points > 0 &&
		document.querySelectorAll("#rows tbody tr").length > 0`)
	if got := eval[string](b, `sessionStorage.getItem("revoked.apiToken")`); got != token {
		t.Errorf("token kept in session storage: %q", got)
	}
	points := eval[int](b, `+document.querySelector("#chart-outcomes").dataset.points`)
	total := eval[int](b, `+document.querySelector("#chart-outcomes").dataset.total`)
	series := eval[int](b, `+document.querySelector("#chart-outcomes").dataset.series`)
	if points < 24 || series != len(trailRules) || total < tr.commands*9/10 || total > tr.commands*11/10 {
		t.Errorf("outcome chart: %d buckets with data, %d series, %d commands; want ≥24 buckets, %d series (one per rule), about %d commands",
			points, series, total, len(trailRules), tr.commands)
	}
	for _, sel := range []string{"#chart-outcomes", "#chart-latency"} {
		if ink := eval[int](b, canvasInk(sel)); ink < 2000 {
			t.Errorf("%s: only %d pixels drawn on its canvas", sel, ink)
		}
	}
	if n := eval[int](b, `document.querySelectorAll("#rows tbody tr").length`); n != 25 {
		t.Errorf("first page has %d rows, want 25", n)
	}
	if kpi := eval[string](b, `document.querySelector("#k-total").textContent`); kpi == "–" || kpi == "0" {
		t.Errorf("commands KPI shows %q", kpi)
	}
	b.screenshot("02-overview")

	b.do("stacking by outcome", chromedp.Click(chromedp.CSS("#by-outcome")))
	b.wait("the outcome series", `+document.querySelector("#chart-outcomes").dataset.series >= 5`)
	b.screenshot("03-by-outcome")

	// Search one user.
	b.do("searching a user",
		chromedp.SendKeys(chromedp.CSS("#f-user"), tr.focus),
		chromedp.Click(chromedp.CSS("#f-submit")),
	)
	b.wait("the user's rows", fmt.Sprintf(`document.body.dataset.loading === "false" && (() => {
		const users = [...document.querySelectorAll("#rows tbody tr td button.user")].map((e) => e.textContent);
		return users.length > 0 && users.every((u) => u === %q);
	})()`, tr.focus))
	want := min(25, tr.byUser[tr.focus])
	if n := eval[int](b, `document.querySelectorAll("#rows tbody tr").length`); n != want {
		t.Errorf("search for %s shows %d rows, want %d", tr.focus, n, want)
	}
	if q := eval[string](b, `location.search`); !strings.Contains(q, "user_id="+tr.focus) {
		t.Errorf("the search is not in the URL: %q", q)
	}
	b.screenshot("04-search")

	// The user's timeline.
	b.do("opening the timeline", chromedp.Click(chromedp.CSS("#rows tbody button.tl-open")))
	b.wait("the timeline", `+document.querySelector("#timeline").dataset.entries > 0`)
	if n := eval[int](b, `+document.querySelector("#tl-chart").dataset.total`); n != tr.focusCommands {
		t.Errorf("the user's chart shows %d commands, want %d", n, tr.focusCommands)
	}
	kinds := eval[[]string](b, `[...new Set([...document.querySelectorAll("#tl-body .entry")].map((e) => e.dataset.kind))]`)
	for _, k := range []string{"events", "detection", "command", "execution", "proof"} {
		if !strings.Contains(strings.Join(kinds, " "), k) {
			t.Errorf("timeline has no %q entry (kinds %v)", k, kinds)
		}
	}
	if n := eval[int](b, `document.querySelectorAll("#tl-body .cmd").length`); n != tr.focusCommands {
		t.Errorf("timeline shows %d commands, want %d", n, tr.focusCommands)
	}
	b.screenshot("05-timeline")
	b.do("closing the timeline", chromedp.Click(chromedp.CSS("#tl-close")))
	b.wait("the timeline to close", `document.querySelector("#timeline").hidden`)

	// Export: the button downloads the current search; its URL, fetched
	// with the token, is a CSV of every row of the user.
	b.do("exporting", chromedp.Click(chromedp.CSS("#export-csv")))
	b.wait("the export", `document.querySelector("#status").textContent.startsWith("Exported")`)
	href := eval[string](b, `document.querySelector("#export-csv").dataset.url`)
	rows := fetchCSV(t, srv.URL+href, token)
	if len(rows) != tr.byUser[tr.focus] {
		t.Errorf("export has %d rows, want the user's %d", len(rows), tr.byUser[tr.focus])
	}
	for _, r := range rows {
		if r["user_id"] != tr.focus {
			t.Fatalf("export row of user %q", r["user_id"])
		}
	}
	b.screenshot("06-exported")
	b.checkProblems()
}

func fetchCSV(t *testing.T, url, token string) []map[string]string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("export %s: %s %s", url, resp.Status, body)
	}
	r := csv.NewReader(resp.Body)
	header, err := r.Read()
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]string
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for i, h := range header {
			m[h] = export.UnescapeCell(rec[i])
		}
		out = append(out, m)
	}
}

// void drops an action's value.
func void[T any](a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := a(ctx, t)
		return chromedp.Void{}, err
	}
}
