package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/api"
	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/schemas"
)

// evidenceCommand picks a command of the trail whose evidence has both
// events with context and one without.
func evidenceCommand(t *testing.T, tr *trail) string {
	t.Helper()
	var ids []string
	for cmd := range tr.context {
		ids = append(ids, cmd)
	}
	slices.Sort(ids)
	for _, cmd := range ids {
		if n := len(tr.context[cmd]); n > 1 && n < len(tr.evidence[cmd]) {
			return cmd
		}
	}
	t.Fatal("the trail has no command with evidence both with and without context")
	return ""
}

// The timeline of a command says, for its evidence events, where each
// came from: the rows' evidence_context, decoded, as the detector wrote it.
func TestTimelineEvidenceContext(t *testing.T) {
	end := time.Now().UTC().Truncate(time.Minute)
	tr := buildTrail(t, 600, end, 24*time.Hour)
	srv := httptest.NewServer(api.New(tr.store, zerolog.Nop()).Handler())
	t.Cleanup(srv.Close)
	cmd := evidenceCommand(t, tr)
	resp, err := http.Get(srv.URL + "/api/v1/timeline?command_id=" + url.QueryEscape(cmd))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tl api.Timeline
	if err := json.NewDecoder(resp.Body).Decode(&tl); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v1/timeline: %d, %v", resp.StatusCode, err)
	}
	var events []audit.TimelineEntry
	for _, e := range tl.Entries {
		if e.Kind == audit.TimelineEvents {
			events = append(events, e)
		}
	}
	if len(events) != 1 {
		t.Fatalf("%d events entries, want 1", len(events))
	}
	if got, want := events[0].EvidenceContext, tr.context[cmd]; !slices.Equal(got, want) {
		t.Errorf("evidence context\n%+v\nwant\n%+v", got, want)
	}
	if !slices.Equal(events[0].Evidence, tr.evidence[cmd]) {
		t.Errorf("evidence %q, want %q", events[0].Evidence, tr.evidence[cmd])
	}
}

// TestBrowserEvidenceContext opens, at each of widths, the timeline of a
// command whose evidence has events with context and one without: the
// evidence lists every event, with the address, country and autonomous
// system of those the detector knew, says the others have none, and
// fits the window. Screenshots go to $REVOKED_TEST_ARTIFACTS/ui/<width>px.
func TestBrowserEvidenceContext(t *testing.T) {
	end := time.Now().UTC().Truncate(time.Minute)
	tr := buildTrail(t, 600, end, 24*time.Hour)
	srv := httptest.NewServer(api.New(tr.store, zerolog.Nop()).Handler())
	t.Cleanup(srv.Close)
	cmd := evidenceCommand(t, tr)
	type shown struct {
		ID, IP, Country, ASN, Text string
	}
	for _, w := range widths {
		t.Run(fmt.Sprintf("%dpx", w), func(t *testing.T) {
			b := newBrowser(t, w)
			idle := `document.body.dataset.ready === "true" && document.body.dataset.loading === "false"`
			b.do("opening the command's timeline", chromedp.Navigate(srv.URL+"/ui/timeline?command_id="+url.QueryEscape(cmd)+"&range=7d"))
			b.wait("the timeline", idle+` && +document.querySelector("#timeline").dataset.entries > 0`)
			summary := eval[string](b, `document.querySelector("#tl-body .entry[data-kind=events] details.evidence summary").textContent`)
			var countries []string
			for _, c := range tr.context[cmd] {
				if !slices.Contains(countries, c.Country) {
					countries = append(countries, c.Country)
				}
			}
			slices.Sort(countries)
			if want := fmt.Sprintf("%d events of evidence", len(tr.evidence[cmd])); !strings.HasPrefix(summary, want) || !strings.HasSuffix(summary, strings.Join(countries, ", ")) {
				t.Errorf("evidence summary %q, want %q … %s", summary, want, strings.Join(countries, ", "))
			}
			b.do("opening the evidence", chromedp.Click(chromedp.CSS(`#tl-body .entry[data-kind=events] details.evidence summary`)))
			b.wait("the evidence", `document.querySelector("#tl-body details.evidence").open`)
			var rows []shown
			raw := eval[string](b, `JSON.stringify([...document.querySelectorAll("#tl-body details.evidence tr.ev")].map((r) => ({
				ID: r.dataset.eventId, IP: r.dataset.ip || "", Country: r.dataset.country || "", ASN: r.dataset.asn || "", Text: r.innerText})))`)
			if err := json.Unmarshal([]byte(raw), &rows); err != nil {
				t.Fatal(err)
			}
			if len(rows) != len(tr.evidence[cmd]) {
				t.Fatalf("%d evidence rows shown, want %d", len(rows), len(tr.evidence[cmd]))
			}
			byID := map[string]schemas.EventContext{}
			for _, c := range tr.context[cmd] {
				byID[c.EventID] = c
			}
			for i, r := range rows {
				if r.ID != tr.evidence[cmd][i] {
					t.Errorf("row %d is event %s, want %s", i, r.ID, tr.evidence[cmd][i])
				}
				c, ok := byID[r.ID]
				if !ok {
					if r.IP != "" || !strings.Contains(r.Text, "no address recorded") {
						t.Errorf("event %s without context shows %+v", r.ID, r)
					}
					continue
				}
				if r.IP != c.IP || r.Country != c.Country || r.ASN != fmt.Sprint(c.ASN) {
					t.Errorf("event %s shows %+v, want %+v", r.ID, r, c)
				}
				for _, want := range []string{c.IP, "(" + c.Country + ")", fmt.Sprintf("AS%d %s", c.ASN, c.ASOrg)} {
					if !strings.Contains(r.Text, want) {
						t.Errorf("event %s's row %q does not show %q", r.ID, r.Text, want)
					}
				}
			}
			b.checkFits("evidence")
			b.screenshot("10-evidence")
			b.checkProblems()
		})
	}
}
