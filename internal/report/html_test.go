package report_test

import (
	"bytes"
	"context"
	"image"
	_ "image/jpeg"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/forgetmenot/forgetmenot/internal/report"
	"github.com/forgetmenot/forgetmenot/router"
)

type tableData struct {
	Head []string   `json:"head"`
	Rows [][]string `json:"rows"`
}

// wantTables are the seeded week's figures, worked out by hand (see
// seededWeek): first responses 1h, 2h, 0.5h, 8h, 0.5h (median 1h, p90 the
// 5th of 5, 8h); resolutions 8h, 12h, 26h (median 12h, p90 26h); promises
// 4 made, 2 kept, 1 broken, 1 pending (2 of 3 settled = 66.7 %); 1 of 5
// reopened; satisfaction 5, 2 and 4; volume 200 at a 2.5 % threshold is 5
// complaints, reached.
var wantTables = map[string]tableData{
	"volume-table": {
		Head: []string{"Week", "chat", "email", "webhook", "Total", "Volume", "Rate %", "Threshold (complaints)"},
		Rows: [][]string{{"2026-W47", "0", "0", "0", "0", "-", "-", "-"}, {"2026-W48", "1", "3", "1", "5", "200", "2.50 (alert)", "5"}},
	},
	"first-response-table": {
		Head: []string{"Week", "Answered", "Median", "90th percentile"},
		Rows: [][]string{{"2026-W47", "0", "–", "–"}, {"2026-W48", "5", "1.0", "8.0"}, {"Whole period", "5", "1.0", "8.0"}},
	},
	"resolution-table": {
		Head: []string{"Week", "Closed", "Median", "90th percentile"},
		Rows: [][]string{{"2026-W47", "0", "–", "–"}, {"2026-W48", "3", "12.0", "26.0"}, {"Whole period", "3", "12.0", "26.0"}},
	},
	"promises-table": {
		Head: []string{"Week", "Made", "Kept", "Broken", "Pending", "Kept % of settled"},
		Rows: [][]string{{"2026-W47", "0", "0", "0", "0", "–"}, {"2026-W48", "4", "2", "1", "1", "66.7"}, {"Whole period", "4", "2", "1", "1", "66.7"}},
	},
	"reopen-table": {
		Head: []string{"Week", "Complaints", "Reopened", "Reopen %"},
		Rows: [][]string{{"2026-W47", "0", "0", "–"}, {"2026-W48", "5", "1", "20.0"}, {"Whole period", "5", "1", "20.0"}},
	},
	"csat-table": {
		Head: []string{"Score", "Answers", "Share %"},
		Rows: [][]string{{"1 Very dissatisfied", "0", "0.0"}, {"2 Dissatisfied", "1", "33.3"}, {"3 Neutral", "0", "0.0"}, {"4 Satisfied", "1", "33.3"}, {"5 Very satisfied", "1", "33.3"}},
	},
	"causes-table": {
		Head: []string{"Cause", "Total", "2026-W47", "2026-W48"},
		Rows: [][]string{{"delivery", "2", "0", "2"}, {hostileCause, "1", "0", "1"}},
	},
	// anna carries K-5 and K-0 (its promise lapsed: overdue) against a
	// capacity of 1; chloe's K-4 is past its resolution deadline.
	"owners-table": {
		Head: []string{"Owner", "Open", "Capacity", "Over capacity", "Overdue", "Promises made", "Kept", "Broken", "Kept %"},
		Rows: [][]string{{"Anna <b>de Vries</b> (anna)", "2", "1", "yes", "1", "1", "1", "0", "100.0"}, {"bas", "0", "2", "no", "0", "2", "1", "1", "50.0"},
			{"chloe", "1", "2", "no", "1", "1", "0", "0", "–"}},
	},
	"prevention-table": {
		Head: []string{"Category", "Complaint", "Owner", "Closed", "Note"},
		Rows: [][]string{{hostileCause, "K-3", "anna", "2026-11-27", hostileNote}, {"delivery", "K-1", "anna", "2026-11-24", "Use the tracked service"}},
	},
}

var charts = []string{"volume", "first-response", "resolution", "promises", "reopen", "csat", "causes", "owners"}

func render(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := report.WriteHTML(&buf, seededWeek(t), report.Options{}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// What must hold: staff and customer text is escaped wherever it appears
// (tables, SVG titles, legends); the page names its CSP and loads nothing.
func TestHTMLEscapesStaffTextAndLoadsNothing(t *testing.T) {
	page := string(render(t))
	for _, raw := range []string{"<script", "<img", "http://evil.example/p.png\">", "<b>de Vries"} {
		if strings.Contains(page, raw) {
			t.Errorf("the page contains %q unescaped", raw)
		}
	}
	if !strings.Contains(page, "&lt;script&gt;") || !strings.Contains(page, "&lt;img src=") {
		t.Error("the hostile texts are missing (escaped) from the page")
	}
	for _, loads := range []string{`src="`, `href="`, "@import", "url("} {
		if strings.Contains(page, loads) {
			t.Errorf("the page has %q: it must load nothing", loads)
		}
	}
	if !strings.Contains(page, `http-equiv="Content-Security-Policy"`) || !strings.Contains(report.CSP, "default-src 'none'") {
		t.Error("no strict Content-Security-Policy")
	}
}

func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed: the report test needs it (apt-get install chromium)")
	}
	t.Skip("chromium is not installed; set CI=1 to make this a failure")
	return ""
}

// media emulates a CSS media type ("print"; "" for the screen again).
func media(m string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Media: m})
		return err
	})
}

// A4 is 210 mm wide: 794 CSS pixels at 96 per inch.
const a4Width, a4Height = 794, 1123

// What must hold, in a real browser at A4 width: every chart is drawn, the
// tables hold the hand-computed figures, the hostile texts show as text,
// nothing is requested but the page, the console stays clean (so the
// CSP-hashed stylesheet applies), nothing is wider than the page, the
// sections do not overlap, and the page prints to an A4 PDF.
func TestHTMLReportInChromium(t *testing.T) {
	browser := chromium(t)
	page := render(t)
	// A year's report: 54 weeks of bars and table columns must still fit.
	var year bytes.Buffer
	if err := report.WriteHTML(&year, seeded(t, time.Date(2025, 11, 30, 0, 0, 0, 0, time.UTC)), report.Options{}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := map[string][]byte{"/report.html": page, "/year.html": year.Bytes()}[r.URL.Path]
		if body == nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(body)
	}))
	defer srv.Close()

	var mu sync.Mutex
	var requests, problems []string
	listener := func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		if e, ok := ev.(*network.EventRequestWillBeSent); ok {
			requests = append(requests, e.Request.URL)
		}
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.DisableGPU)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithListener(listener))
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	defer cancelTimeout()
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(a4Width, a4Height)); err != nil {
		t.Fatal(err)
	}
	consoleCtx, stopConsole := context.WithCancel(ctx)
	messages := chromedp.Console(consoleCtx)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/report.html")); err != nil {
		t.Fatal(err)
	}

	tables, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]tableData](`Object.fromEntries(Array.from(document.querySelectorAll('table')).map(t => [t.id, {
		head: Array.from(t.tHead.rows[0].cells).map(c => c.textContent),
		rows: Array.from(t.tBodies[0].rows).map(r => Array.from(r.cells).map(c => c.textContent))}]))`))
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range wantTables {
		if got := tables[id]; !reflect.DeepEqual(got, want) {
			t.Errorf("table %s:\n got %q\nwant %q", id, got, want)
		}
	}
	if len(tables) != len(wantTables) {
		t.Errorf("%d tables on the page, want %d", len(tables), len(wantTables))
	}

	type chartInfo struct {
		Title string `json:"title"`
		Bars  int    `json:"bars"`
		Table bool   `json:"table"`
	}
	drawn, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]chartInfo](`Object.fromEntries(Array.from(document.querySelectorAll('section[data-chart]')).filter(s => s.querySelector('svg')).map(s => {
		const svg = s.querySelector('svg.chart');
		return [s.dataset.chart, {title: svg.querySelector('title').textContent, bars: svg.querySelectorAll('rect[height]').length, table: !!s.querySelector('table[id$="-table"]')}];
	}))`))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range charts {
		c, ok := drawn[id]
		if !ok || c.Title == "" || c.Bars == 0 || !c.Table {
			t.Errorf("chart %s: %+v (present %v), want a titled chart with bars and its table", id, c, ok)
		}
	}

	type box struct{ Left, Right, Top, Bottom, Width, Height float64 }
	type layout struct {
		ViewWidth   float64 `json:"viewWidth"`
		ScrollWidth float64 `json:"scrollWidth"`
		Collapse    string  `json:"collapse"`
		Boxes       []box   `json:"boxes"`
		Sections    []box   `json:"sections"`
		Charts      []box   `json:"charts"`
	}
	measure := `(() => {
		const b = e => { const r = e.getBoundingClientRect(); return {Left: r.left, Right: r.right, Top: r.top + scrollY, Bottom: r.bottom + scrollY, Width: r.width, Height: r.height}; };
		return {viewWidth: document.documentElement.clientWidth, scrollWidth: document.documentElement.scrollWidth,
			collapse: getComputedStyle(document.querySelector('table')).borderCollapse,
			boxes: Array.from(document.querySelectorAll('svg, .scroll, section, h1, .kpis li')).map(b),
			sections: Array.from(document.querySelectorAll('section')).map(b),
			charts: Array.from(document.querySelectorAll('svg.chart')).map(b)};
	})()`
	check := func(media string) {
		t.Helper()
		l, err := chromedp.Run(ctx, chromedp.Evaluate[layout](measure))
		if err != nil {
			t.Fatal(err)
		}
		if l.ScrollWidth > l.ViewWidth {
			t.Errorf("%s: the page is %v px wide in a %v px (A4) window", media, l.ScrollWidth, l.ViewWidth)
		}
		if l.Collapse != "collapse" {
			t.Errorf("%s: the stylesheet did not apply (border-collapse %q): the CSP hash does not match it", media, l.Collapse)
		}
		for i, b := range l.Boxes {
			if b.Left < 0 || b.Right > l.ViewWidth+0.5 {
				t.Errorf("%s: element %d spans %v..%v, outside the page width %v", media, i, b.Left, b.Right, l.ViewWidth)
			}
		}
		for i := 1; i < len(l.Sections); i++ {
			if l.Sections[i].Top < l.Sections[i-1].Bottom-0.5 {
				t.Errorf("%s: section %d overlaps the one before it", media, i)
			}
		}
		for i, c := range l.Charts {
			// At least half the page wide and readable; on screen at the
			// viewBox's 640:260, in print at most 75 mm (283 px) high so
			// several fit on a sheet.
			bad := c.Width < l.ViewWidth/2 || c.Height < 100
			if strings.HasPrefix(media, "screen") {
				bad = bad || c.Width/c.Height < 2.2 || c.Width/c.Height > 2.8
			} else {
				bad = bad || c.Height > 284
			}
			if bad {
				t.Errorf("%s: chart %d is %vx%v", media, i, c.Width, c.Height)
			}
		}
	}
	check("screen")
	// The screenshot at A4 width: the whole page, exactly as wide as A4.
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(90))
	if err != nil {
		t.Fatal(err)
	}
	if img, _, err := image.DecodeConfig(bytes.NewReader(shot)); err != nil || img.Width != a4Width || img.Height < a4Height {
		t.Errorf("screenshot %+v %v, want %d px wide and at least a page long", img, err, a4Width)
	}
	if dir := os.Getenv("REPORT_SCREENSHOT_DIR"); dir != "" { // for people who want to look
		_ = os.WriteFile(dir+"/report-a4.jpg", shot, 0o644)
	}
	if err := chromedp.Do(ctx, media("print")); err != nil {
		t.Fatal(err)
	}
	check("print")
	if err := chromedp.Do(ctx, media(""), chromedp.Navigate(srv.URL+"/year.html")); err != nil {
		t.Fatal(err)
	}
	check("screen, a year")
	if err := chromedp.Do(ctx, media("print")); err != nil {
		t.Fatal(err)
	}
	pdf, err := chromedp.Run(ctx, chromedp.PrintToPDF(chromedp.PDFPaper(chromedp.PaperA4), chromedp.PDFPreferCSSPageSize()))
	if err != nil || !bytes.HasPrefix(pdf, []byte("%PDF")) || len(pdf) < 5000 {
		t.Errorf("printing to an A4 PDF: %d bytes, %v", len(pdf), err)
	}

	// A marker written last: once it is in the console, everything the page
	// logged before it is too.
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`console.info("report-test-done")`)); err != nil {
		t.Fatal(err)
	}
	for m, err := range messages {
		if err != nil {
			t.Fatal(err)
		}
		if m.Text == "report-test-done" {
			break
		}
		problems = append(problems, m.String())
	}
	stopConsole()
	if len(problems) > 0 {
		t.Errorf("console messages: %q", problems)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, u := range requests {
		if u != srv.URL+"/report.html" && u != srv.URL+"/year.html" {
			t.Errorf("the page requested %s: it must load nothing", u)
		}
	}
	if len(requests) == 0 {
		t.Error("no request seen at all: the listener is not working")
	}
}

// What must hold: a period where nothing was answered, closed, kept or
// broken shows "–" for those figures, never 0 (0 % of promises kept reads as
// every promise broken).
func TestHTMLShowsNoFigureForWhatNothingSettled(t *testing.T) {
	since := time.Date(2020, 1, 6, 0, 0, 0, 0, time.UTC)
	rep := router.BuildReport(router.ReportInput{Since: since, Until: since.AddDate(0, 0, 14), Now: since.AddDate(0, 0, 14)})
	var b bytes.Buffer
	if err := report.WriteHTML(&b, rep, report.Options{}); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, label := range []string{"First response, median (h)", "Resolution, median (h)", "Promises kept", "Reopened"} {
		if !strings.Contains(page, "<li>"+label+"<b>–</b></li>") {
			t.Errorf("tile %q does not show –", label)
		}
	}
	if strings.Contains(page, "<b>0.0%</b>") || strings.Contains(page, "<b>0.0</b>") {
		t.Error("an empty period shows 0.0 for a figure nothing settled")
	}
}

// What must hold: the page says how many deadlines were missed in the
// period, as the weekly digest does (its button opens this page).
func TestHTMLSaysHowManyDeadlinesWereMissed(t *testing.T) {
	if page := string(render(t)); !strings.Contains(page, "<li>Deadlines missed<b>2</b></li>") {
		t.Error("the page does not show the fixture's 2 missed deadlines (a promise and a response)")
	}
}
