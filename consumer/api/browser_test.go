package api_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/api"
	"github.com/revoked-dev/revoked/consumer/audit"
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

// newBrowser starts headless Chromium with a window width px wide; its
// screenshots go to $REVOKED_TEST_ARTIFACTS/ui/<width>px.
func newBrowser(t *testing.T, width int) *browser {
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
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, 1000),
		chromedp.Env("TZ=UTC"),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	// Each test keeps its screenshots in a directory of its own (ui for
	// TestBrowserUI, ui-evidence for TestBrowserEvidenceContext), since
	// ArtifactDir clears the directory it hands out.
	sub := "ui"
	if name := strings.SplitN(t.Name(), "/", 2)[0]; name != "TestBrowserUI" {
		sub = "ui-" + strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(name, "TestBrowser"), "Context"))
	}
	b := &browser{t: t, shots: testenv.ArtifactDir(t, filepath.Join(sub, fmt.Sprintf("%dpx", width)))}
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

// fitJS measures horizontal overflow: the document's scroll width against
// the viewport's, the visible elements whose box ends right of the
// viewport (the innermost ones), and the controls that must be on screen
// whatever the width (search, reset, the summary cards, both charts, the
// exports, the table's last column) that are not.
const fitJS = `(() => {
	const vw = document.documentElement.clientWidth;
	const out = {scrollWidth: document.documentElement.scrollWidth, clientWidth: vw, outside: [], missing: []};
	const name = (e) => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") +
		(typeof e.className === "string" && e.className.trim() ? "." + e.className.trim().split(/\s+/).join(".") : "");
	const visible = (e) => { const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0 && !e.closest("[hidden]"); };
	for (const e of document.querySelectorAll("body *")) {
		if (!visible(e) || e.getBoundingClientRect().right <= vw + 0.5) continue;
		if ([...e.children].some((c) => visible(c) && c.getBoundingClientRect().right > vw + 0.5)) continue;
		out.outside.push(name(e) + " ends at " + Math.round(e.getBoundingClientRect().right) + " px");
	}
	const must = document.body.dataset.view === "timeline"
		? ["#tl-close", "#tl-body", ".presets"]
		: ["#f-submit", "#f-reset", "#f-q", ".kpi", "#chart-outcomes canvas", "#chart-latency canvas", "button.export", "#rows thead th:last-child", ".presets"];
	for (const sel of must) {
		const all = [...document.querySelectorAll(sel)];
		if (all.length === 0) out.missing.push(sel + " is not on the page");
		for (const e of all) {
			const r = e.getBoundingClientRect();
			if (r.left < -0.5 || r.right > vw + 0.5) out.missing.push(name(e) + " spans " + Math.round(r.left) + "–" + Math.round(r.right) + " px");
		}
	}
	out.outside = out.outside.slice(0, 20);
	return JSON.stringify(out);
})()`

// checkFits fails the test when the page overflows the window
// horizontally or a control is off screen.
func (b *browser) checkFits(stage string) {
	b.t.Helper()
	var fit struct {
		ScrollWidth, ClientWidth int
		Outside, Missing         []string
	}
	if err := json.Unmarshal([]byte(eval[string](b, fitJS)), &fit); err != nil {
		b.t.Fatal(err)
	}
	if fit.ScrollWidth > fit.ClientWidth || len(fit.Outside) > 0 || len(fit.Missing) > 0 {
		b.screenshot("overflow-" + stage)
		b.t.Errorf("%s at %d px: the page is %d px wide; outside the window: %v; off screen: %v",
			stage, fit.ClientWidth, fit.ScrollWidth, fit.Outside, fit.Missing)
	}
}

// widths are the window widths the UI must fit: a 13" laptop and a
// desktop screen.
var widths = []int{1280, 1920}

// TestBrowserUI drives the web UI in headless Chromium at each of widths
// against a trail of 3,000 commands whose newest is three hours old,
// behind a bearer token, and fails when a page overflows the window
// horizontally. It answers the token prompt; checks that the default
// range is the hour up to the trail's latest activity and that times show
// the store's milliseconds; picks the 7-day preset and checks both charts;
// zooms by dragging across the chart and goes back; searches a user by a
// prefix of their id; exports the search as CSV; opens a user's timeline
// by its address, a command's timeline from it, and goes back through
// both; and checks a store that keeps seconds shows no milliseconds.
// Screenshots of every stage go to $REVOKED_TEST_ARTIFACTS/ui/<width>px.
func TestBrowserUI(t *testing.T) {
	end := time.Now().UTC().Truncate(time.Minute).Add(-3 * time.Hour)
	tr := buildTrail(t, 3000, end, 72*time.Hour)
	const token = "ui-test-token-4f7d2c"
	mux := http.NewServeMux()
	api.New(tr.store, zerolog.Nop()).Mount(mux, config.NewSecret(token))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	// The same trail from a store that keeps seconds (ClickHouse before
	// 20.3), without a token.
	seconds := httptest.NewServer(api.New(precisionStore{tr.store, time.Second}, zerolog.Nop()).Handler())
	t.Cleanup(seconds.Close)
	latest, err := tr.store.Latest(context.Background(), audit.Query{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("trail: %d commands, %d rows, the newest at %s; UI at %s/ui/", tr.commands, tr.rows, latest.Format(time.RFC3339), srv.URL)
	for _, w := range widths {
		t.Run(fmt.Sprintf("%dpx", w), func(t *testing.T) {
			b := newBrowser(t, w)
			uiFlow(t, b, tr, srv.URL, token, latest)
			secondsFlow(t, b, seconds.URL)
			b.checkProblems()
		})
	}
}

func uiFlow(t *testing.T, b *browser, tr *trail, base, token string, latest time.Time) {
	// The page is public; its data is not: it asks for the token.
	b.do("loading the UI", chromedp.Navigate(base+"/"))
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
	b.do("typing the token", chromedp.SendKeys(chromedp.CSS("#token-input"), token))
	b.screenshot("01-token-prompt")
	b.do("submitting the token", chromedp.Click(chromedp.CSS("#token-submit")))
	idle := `document.body.dataset.ready === "true" && document.body.dataset.loading === "false"`
	b.wait("the overview", idle+` && document.querySelectorAll("#rows tbody tr").length > 0`)
	if got := eval[string](b, `sessionStorage.getItem("revoked.apiToken")`); got != token {
		t.Errorf("token kept in session storage: %q", got)
	}

	// Nothing in the last hour: the default range is the hour up to the
	// newest row, and says so.
	from, to := rangeShown(b)
	if eval[string](b, `document.body.dataset.anchored`) != "true" || to.Sub(from) != time.Hour || to.Before(latest) || to.Sub(latest) > time.Minute {
		t.Errorf("default range %s → %s (anchored %s); want the hour up to the newest row at %s",
			from.Format(time.RFC3339), to.Format(time.RFC3339), eval[string](b, `document.body.dataset.anchored`), latest.Format(time.RFC3339))
	}
	if note := eval[string](b, `document.querySelector("#range-note").textContent`); !strings.Contains(note, "latest activity") {
		t.Errorf("the range does not say why it ends at the latest activity: %q", note)
	}
	// The memstore keeps milliseconds: the table shows them.
	if cell := eval[string](b, `document.querySelector("#rows tbody td").textContent`); !regexp.MustCompile(`^\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$`).MatchString(cell) {
		t.Errorf("time cell %q, want MM-DD hh:mm:ss.mmm", cell)
	}
	b.checkFits("default")
	b.screenshot("02-default-range")

	// The 7-day preset: the whole trail, both charts.
	b.do("picking 7 days", chromedp.Click(chromedp.CSS(`.presets button[data-range="7d"]`)))
	b.wait("the 7-day range", idle+` && document.querySelector("#rangebar").dataset.range === "7d" && document.body.dataset.anchored === "false" &&
		+document.querySelector("#chart-outcomes").dataset.points > 0 && +document.querySelector("#chart-latency").dataset.points > 0`)
	if q := eval[string](b, `location.search`); q != "?range=7d" {
		t.Errorf("the preset is not in the address: %q", q)
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
	// The outcome column: the three outcomes of a revocation, and the
	// older trail's revoked and verified read as unconfirmed and confirmed.
	b.checkFits("7d")
	b.screenshot("03-7-days")

	b.do("stacking by outcome", chromedp.Click(chromedp.CSS("#by-outcome")))
	b.wait("the outcome series", `+document.querySelector("#chart-outcomes").dataset.series >= 5`)
	b.screenshot("04-by-outcome")

	// Drag across the middle fifth of the chart: the range narrows to it.
	weekFrom, weekTo := rangeShown(b)
	box := eval[[]float64](b, `(() => {
		const o = document.querySelector("#chart-outcomes .u-over");
		o.scrollIntoView({block: "center"});
		const r = o.getBoundingClientRect();
		return [r.left, r.top, r.width, r.height];
	})()`)
	y := box[1] + box[3]/2
	b.do("dragging across the chart", chromedp.DragAndDropXY(box[0]+box[2]*0.4, y, box[0]+box[2]*0.6, y))
	b.wait("the zoomed range", idle+` && document.querySelector("#rangebar").dataset.range === "custom" &&
		document.querySelector("#chart-outcomes").dataset.from === document.body.dataset.from`)
	zFrom, zTo := rangeShown(b)
	span := weekTo.Sub(weekFrom)
	if zFrom.Before(weekFrom) || zTo.After(weekTo) || zTo.Sub(zFrom) < span/8 || zTo.Sub(zFrom) > span/3 ||
		zFrom.Before(weekFrom.Add(span*3/10)) || zTo.After(weekFrom.Add(span*7/10)) {
		t.Errorf("zoomed from %s–%s to %s–%s; want about the middle fifth", weekFrom, weekTo, zFrom, zTo)
	}
	q, _ := url.ParseQuery(strings.TrimPrefix(eval[string](b, `location.search`), "?"))
	if q.Get("from") != zFrom.Format(time.RFC3339) || q.Get("to") != zTo.Format(time.RFC3339) || q.Get("by") != "outcome" {
		t.Errorf("the zoomed range is not in the address: %v", q)
	}
	b.checkFits("zoomed")
	b.screenshot("05-zoomed")
	b.do("going back", void(chromedp.Evaluate[any](`history.back()`)))
	b.wait("the 7 days again", idle+` && document.querySelector("#rangebar").dataset.range === "7d"`)
	if f, to := rangeShown(b); !f.Equal(weekFrom) || !to.Equal(weekTo) {
		t.Errorf("back from the zoom: %s–%s, want %s–%s", f, to, weekFrom, weekTo)
	}

	// Search by the first letters of a user's id.
	b.do("searching a prefix",
		chromedp.SendKeys(chromedp.CSS("#f-q"), tr.focus[:5]),
		chromedp.Click(chromedp.CSS("#f-submit")),
	)
	b.wait("the user's rows", idle+fmt.Sprintf(` && (() => {
		const users = [...document.querySelectorAll("#rows tbody a.user")].map((e) => e.textContent);
		return users.length > 0 && users.every((u) => u === %q);
	})()`, tr.focus))
	if n := eval[int](b, `document.querySelectorAll("#rows tbody tr").length`); n != min(25, tr.byUser[tr.focus]) {
		t.Errorf("search for %s… shows %d rows, want %d", tr.focus[:5], n, min(25, tr.byUser[tr.focus]))
	}
	if q := eval[string](b, `location.search`); !strings.Contains(q, "q="+tr.focus[:5]) {
		t.Errorf("the search is not in the address: %q", q)
	}
	outcomes := eval[[]string](b, `[...new Set([...document.querySelectorAll("#rows tbody tr")].map((r) => r.dataset.outcome))].sort()`)
	if strings.Join(outcomes, " ") != " confirmed not_effective unconfirmed" {
		t.Errorf("outcomes of the user's rows: %q, want none (steps that are no revocation), confirmed, not_effective, unconfirmed", outcomes)
	}
	b.checkFits("search")
	b.screenshot("06-search")

	// Export: the button downloads the current search; its address,
	// fetched with the token, is a CSV of every row of the user.
	b.do("exporting", chromedp.Click(chromedp.CSS("#export-csv")))
	b.wait("the export", `document.querySelector("#status").textContent.startsWith("Exported")`)
	rows := fetchCSV(t, base+eval[string](b, `document.querySelector("#export-csv").dataset.url`), token)
	if len(rows) != tr.byUser[tr.focus] {
		t.Errorf("export has %d rows, want the user's %d", len(rows), tr.byUser[tr.focus])
	}
	for _, r := range rows {
		if r["user_id"] != tr.focus {
			t.Fatalf("export row of user %q", r["user_id"])
		}
	}

	// A user's timeline by its address.
	b.do("opening a timeline by its address", chromedp.Navigate(base+"/ui/timeline?user_id="+url.QueryEscape(tr.focus)+"&range=7d"))
	b.wait("the timeline", idle+` && document.body.dataset.view === "timeline" && +document.querySelector("#timeline").dataset.entries > 0`)
	if n := eval[int](b, `+document.querySelector("#tl-chart").dataset.total`); n != tr.focusCommands {
		t.Errorf("the user's chart shows %d commands, want %d", n, tr.focusCommands)
	}
	kinds := eval[[]string](b, `[...new Set([...document.querySelectorAll("#tl-body .entry")].map((e) => e.dataset.kind))]`)
	for _, k := range []string{"events", "detection", "command", "execution", "proof"} {
		if !slices.Contains(kinds, k) {
			t.Errorf("timeline has no %q entry (kinds %v)", k, kinds)
		}
	}
	if n := eval[int](b, `document.querySelectorAll("#tl-body .cmd").length`); n != tr.focusCommands {
		t.Errorf("timeline shows %d commands, want %d", n, tr.focusCommands)
	}
	cmdOutcomes := eval[[]string](b, `[...new Set([...document.querySelectorAll("#tl-body .cmd")].map((e) => e.dataset.outcome))]`)
	for _, o := range []string{"confirmed", "unconfirmed", "not_effective"} {
		if !slices.Contains(cmdOutcomes, o) {
			t.Errorf("no command of the timeline ends %s (outcomes %v)", o, cmdOutcomes)
		}
	}
	if when := eval[string](b, `document.querySelector("#tl-body .entry .when").firstChild.textContent`); !regexp.MustCompile(`^\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$`).MatchString(when) {
		t.Errorf("timeline time %q, want MM-DD hh:mm:ss.mmm", when)
	}
	b.checkFits("timeline")
	b.screenshot("07-timeline")

	// One of its commands, then back to the user, then back to the
	// overview (the timeline was opened by its address).
	cmd := eval[string](b, `document.querySelector("#tl-body .cmd").dataset.commandId`)
	b.do("opening a command", chromedp.Click(chromedp.CSS(`#tl-body .cmd a.cmd-id`)))
	b.wait("the command's timeline", idle+fmt.Sprintf(` && document.querySelector("#timeline").dataset.subject === %q && +document.querySelector("#timeline").dataset.entries > 0`, cmd))
	if got := eval[string](b, `location.pathname + location.search`); got != "/ui/timeline?command_id="+url.QueryEscape(cmd)+"&range=7d" {
		t.Errorf("a command's timeline is at %s", got)
	}
	if n := eval[int](b, `document.querySelectorAll("#tl-body .cmd").length`); n != 1 {
		t.Errorf("a command's timeline shows %d commands", n)
	}
	b.checkFits("command")
	b.screenshot("08-command")
	b.do("going back", void(chromedp.Evaluate[any](`history.back()`)))
	b.wait("the user's timeline again", idle+fmt.Sprintf(` && document.querySelector("#timeline").dataset.subject === %q && document.querySelectorAll("#tl-body .cmd").length > 1`, tr.focus))
	b.do("closing the timeline", chromedp.Click(chromedp.CSS("#tl-close")))
	b.wait("the overview", idle+` && document.body.dataset.view === "overview" && !document.querySelector("#overview").hidden`)
	if got := eval[string](b, `location.pathname + location.search`); got != "/ui/?range=7d" {
		t.Errorf("closing a timeline opened by its address went to %s, want /ui/?range=7d", got)
	}
	// A user's link opens their timeline; Back returns to the same page.
	before := eval[string](b, `location.search`)
	user := eval[string](b, `document.querySelector("#rows tbody a.user").textContent`)
	b.do("opening a user's timeline", chromedp.Click(chromedp.CSS("#rows tbody a.user")))
	b.wait("their timeline", idle+fmt.Sprintf(` && document.querySelector("#timeline").dataset.subject === %q && document.querySelector("#timeline").dataset.entries !== ""`, user))
	b.do("closing the timeline", chromedp.Click(chromedp.CSS("#tl-close")))
	b.wait("the overview", idle+` && document.body.dataset.view === "overview"`)
	if got := eval[string](b, `location.search`); got != before {
		t.Errorf("back from a timeline at %s, want %s", got, before)
	}
}

// secondsFlow opens the UI of a store that keeps seconds: no time shows
// milliseconds.
func secondsFlow(t *testing.T, b *browser, base string) {
	idle := `document.body.dataset.ready === "true" && document.body.dataset.loading === "false"`
	b.do("loading the UI of a store that keeps seconds", chromedp.Navigate(base+"/ui/?range=7d"))
	b.wait("its rows", idle+` && document.querySelectorAll("#rows tbody tr").length > 0`)
	times := eval[[]string](b, `[...document.querySelectorAll("#rows tbody tr td:first-child")].map((e) => e.textContent)`)
	for _, s := range times {
		if !regexp.MustCompile(`^\d\d-\d\d \d\d:\d\d:\d\d$`).MatchString(s) {
			t.Errorf("time cell %q of a store that keeps seconds, want MM-DD hh:mm:ss", s)
		}
	}
	b.checkFits("seconds")
	b.screenshot("09-seconds")
}

// rangeShown is the range on screen.
func rangeShown(b *browser) (from, to time.Time) {
	b.t.Helper()
	var err1, err2 error
	from, err1 = time.Parse(time.RFC3339, eval[string](b, `document.body.dataset.from`))
	to, err2 = time.Parse(time.RFC3339, eval[string](b, `document.body.dataset.to`))
	if err := errors.Join(err1, err2); err != nil {
		b.t.Fatalf("the range on screen: %v", err)
	}
	return from, to
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
