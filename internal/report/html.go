// Package report renders the accountability report as one self-contained
// HTML page: inline SVG charts drawn here, each with its numbers as a
// table, print CSS for A4, and a strict Content-Security-Policy. Nothing on
// the page loads anything: no script, no font, no image.
package report

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"html/template"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/forgetmenot/forgetmenot/router"
)

// Options adjust the page.
type Options struct {
	// Title heads the page (default "Complaints report").
	Title string
}

// style is the page's only CSS; the CSP allows exactly this text by its
// hash, so no other style (injected or not) applies.
const style = `
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;color:#1a1a1a;margin:0 auto;padding:16px;max-width:1000px;line-height:1.4}
h1{font-size:1.5rem;margin:0 0 4px}
h2{font-size:1.15rem;margin:0 0 6px}
.meta{color:#555;margin:0 0 16px}
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(140px,1fr));gap:8px;margin:0 0 16px;padding:0;list-style:none}
.kpis li{border:1px solid #ccd;border-radius:6px;padding:8px}
.kpis b{display:block;font-size:1.3rem}
section{border-top:1px solid #dde;padding:12px 0;break-inside:avoid;page-break-inside:avoid}
figure{margin:0}
svg.chart{width:100%;height:auto;max-height:320px;display:block}
svg .grid{stroke:#e3e3ea;stroke-width:1}
svg .mark{stroke:#c0392b;stroke-width:2.5;stroke-dasharray:6 3}
svg text{font-size:11px;fill:#333}
svg .legend{font-size:11px}
table{border-collapse:collapse;width:100%;margin:8px 0 0;font-size:.85rem}
caption{text-align:left;font-weight:600;padding:2px 0}
.scroll{overflow-x:auto}
th,td{border:1px solid #dde;padding:3px 6px;text-align:right;vertical-align:top;white-space:nowrap}
th:first-child,td:first-child,td.text,th.text{text-align:left}
td.text,th.text{white-space:pre-wrap;overflow-wrap:anywhere;min-width:12em}
.none{color:#666;font-style:italic}
@page{size:A4;margin:14mm}
@media print{body{max-width:none;padding:0;font-size:10pt}section{border-top:1px solid #999}svg.chart{max-height:75mm}.scroll{overflow:visible}table{font-size:8pt}th,td{white-space:normal}}
`

// CSP is the page's Content-Security-Policy: nothing may load, and only the
// page's own stylesheet applies. The API sends it as a header too.
var CSP = "default-src 'none'; style-src '" + styleHash() + "'; img-src 'none'; script-src 'none'; base-uri 'none'; form-action 'none'"

func styleHash() string {
	sum := sha256.Sum256([]byte(style))
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}

type table struct {
	Caption string
	Head    []string
	Rows    [][]cell
}

type cell struct {
	Text string
	// Wide marks free text (left-aligned, wrapping).
	Wide bool
}

type figure struct {
	ID, Title, Intro string
	SVG              template.HTML
	Table            table
	Empty            string
}

type page struct {
	Title, Period, Generated, Basis string
	KPIs                            []kpi
	Figures                         []figure
	Prevention                      []router.PreventionNotes
	Style                           template.CSS
	CSP                             string
}

type kpi struct{ Label, Value string }

var tmpl = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{{.CSP}}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{{.Title}} · {{.Period}}</title>
<style>{{.Style}}</style>
</head>
<body>
<header>
<h1>{{.Title}}</h1>
<p class="meta">Complaints opened {{.Period}} · generated {{.Generated}} · {{.Basis}}</p>
<ul class="kpis" aria-label="Key figures">{{range .KPIs}}<li>{{.Label}}<b>{{.Value}}</b></li>{{end}}</ul>
</header>
<main>
{{range .Figures}}<section id="{{.ID}}" data-chart="{{.ID}}">
<h2>{{.Title}}</h2>
{{if .Intro}}<p>{{.Intro}}</p>{{end}}
<figure aria-describedby="{{.ID}}-table">
{{.SVG}}
<div class="scroll"><table id="{{.ID}}-table">
<caption>{{.Table.Caption}}</caption>
<thead><tr>{{range .Table.Head}}<th scope="col">{{.}}</th>{{end}}</tr></thead>
<tbody>{{range .Table.Rows}}<tr>{{range $i, $c := .}}{{if eq $i 0}}<th scope="row"{{if $c.Wide}} class="text"{{end}}>{{$c.Text}}</th>{{else}}<td{{if $c.Wide}} class="text"{{end}}>{{$c.Text}}</td>{{end}}{{end}}</tr>{{end}}</tbody>
</table></div>
{{if .Empty}}<p class="none">{{.Empty}}</p>{{end}}
</figure>
</section>
{{end}}<section id="prevention" data-chart="prevention">
<h2>What would prevent the next one</h2>
<p>Notes staff left when closing, by root cause.</p>
{{if .Prevention}}<div class="scroll"><table id="prevention-table">
<caption>Prevention notes by category</caption>
<thead><tr><th scope="col">Category</th><th scope="col">Complaint</th><th scope="col">Owner</th><th scope="col">Closed</th><th scope="col" class="text">Note</th></tr></thead>
<tbody>{{range .Prevention}}{{$cat := .Category}}{{range .Notes}}<tr><th scope="row" class="text">{{$cat}}</th><td>{{.Complaint}}</td><td>{{.Owner}}</td><td>{{.ClosedAt.Format "2006-01-02"}}</td><td class="text">{{.Note}}</td></tr>{{end}}{{end}}</tbody>
</table></div>{{else}}<p class="none">No prevention notes in this period.</p>{{end}}
</section>
</main>
</body>
</html>
`))

// Hours formats seconds as hours with one decimal, the unit of the
// duration tables.
func Hours(secs float64) string { return strconv.FormatFloat(secs/3600, 'f', 1, 64) }

func pct(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

// none stands for a figure nothing settled yet: a 0 would read as a
// result (0 % of promises kept: every one broken).
const none = "–"

// hoursOf is a median or percentile of d in hours, or none.
func hoursOf(d router.Durations, secs float64) string {
	if !d.Settled() {
		return none
	}
	return Hours(secs)
}

// pctIf is v as a percentage, or none when nothing is settled.
func pctIf(v float64, settled bool) string {
	if !settled {
		return none
	}
	return pct(v)
}

// pctTile is pctIf for a tile, with its sign.
func pctTile(v float64, settled bool) string {
	if !settled {
		return none
	}
	return pct(v) + "%"
}

func itoa(n int) string { return strconv.Itoa(n) }

func row(cells ...string) []cell {
	out := make([]cell, len(cells))
	for i, c := range cells {
		out[i] = cell{Text: c}
	}
	return out
}

// WriteHTML renders the report as one HTML page.
func WriteHTML(w io.Writer, rep router.Report, opts Options) error {
	if opts.Title == "" {
		opts.Title = "Complaints report"
	}
	basis := "durations in business hours of the owners' working calendars"
	if !rep.BusinessTime {
		basis = "durations in hours (no working calendar configured: around the clock)"
	}
	period := rep.Since.Format(time.DateOnly) + " to " + rep.Until.Format(time.DateOnly)
	if rep.WeeksLeftOut > 0 {
		period += fmt.Sprintf(" (weekly charts and tables: the last %d weeks; the %d weeks before are in the totals only)", len(rep.Weeks), rep.WeeksLeftOut)
	}
	p := page{Title: opts.Title, Basis: basis, Style: template.CSS(style), CSP: CSP,
		Period:    period,
		Generated: rep.GeneratedAt.Format("2006-01-02 15:04 MST"), Prevention: rep.Prevention}
	p.KPIs = []kpi{
		{"Complaints", itoa(rep.Complaints)},
		{"First response, median (h)", hoursOf(rep.FirstResponse, rep.FirstResponse.MedianSeconds)},
		{"Resolution, median (h)", hoursOf(rep.Resolution, rep.Resolution.MedianSeconds)},
		{"Promises kept", pctTile(rep.Promises.KeptPercent, rep.Promises.Settled())},
		{"Reopened", pctTile(rep.ReopenPercent, rep.Complaints > 0)},
		{"Overdue now", itoa(rep.Overdue)},
		// As the weekly digest says it, whose button opens this page.
		{"Deadlines missed", itoa(missed(rep))},
	}
	if rep.CSAT.Responses > 0 {
		p.KPIs = append(p.KPIs, kpi{"Satisfied (4-5)", pct(rep.CSAT.SatisfiedPercent) + "%"})
	}
	weeks := make([]string, len(rep.Weeks))
	for i, w := range rep.Weeks {
		weeks[i] = w.Week
	}
	p.Figures = []figure{volumeFigure(rep, weeks), durationFigure(rep, weeks, "first-response", "First response", func(w router.WeekReport) router.Durations { return w.FirstResponse }, "answered"),
		durationFigure(rep, weeks, "resolution", "Resolution", func(w router.WeekReport) router.Durations { return w.Resolution }, "closed"),
		promiseFigure(rep, weeks), reopenFigure(rep, weeks), csatFigure(rep), causesFigure(rep, weeks), ownersFigure(rep)}
	return tmpl.Execute(w, p)
}

// missed counts the deadlines missed in the period (every kind).
func missed(rep router.Report) int {
	n := 0
	for _, b := range rep.Breaches {
		n += b.Count
	}
	return n
}

func volumeFigure(rep router.Report, weeks []string) figure {
	var names []string
	for _, c := range rep.ByChannel {
		names = append(names, c.Name)
	}
	slices.Sort(names)
	c := chart{ID: "volume-chart", Whole: true, Title: "Complaints per week by channel", Unit: "complaints", Categories: weeks, Stacked: true,
		MarkLabel: "threshold at the week's volume"}
	for _, name := range names {
		s := series{Name: name, Values: make([]float64, len(weeks))}
		for i, w := range rep.Weeks {
			for _, bc := range w.ByChannel {
				if bc.Name == name {
					s.Values[i] = float64(bc.Count)
				}
			}
		}
		c.Series = append(c.Series, s)
	}
	head := append([]string{"Week"}, names...)
	head = append(head, "Total", "Volume", "Rate %", "Threshold (complaints)")
	t := table{Caption: "Complaints per week by channel, with the week's volume and complaint rate", Head: head}
	for i, w := range rep.Weeks {
		r := []string{w.Week}
		for _, s := range c.Series {
			r = append(r, itoa(int(s.Values[i])))
		}
		vol, rate, limit := "-", "-", "-"
		if w.Volume > 0 {
			vol, rate = itoa(w.Volume), strconv.FormatFloat(w.RatePercent, 'f', 2, 64)
			if rep.RateThresholdPercent > 0 {
				at := rep.RateThresholdPercent / 100 * float64(w.Volume)
				limit = num(at)
				c.Marks = append(c.Marks, mark{Index: i, Value: at})
			}
			if w.Alert {
				rate += " (alert)"
			}
		}
		r = append(r, itoa(w.Complaints), vol, rate, limit)
		t.Rows = append(t.Rows, row(r...))
	}
	intro := "Each bar is a week's complaints, by channel."
	if rep.RateThresholdPercent > 0 {
		intro += fmt.Sprintf(" The dashed line is the alert threshold of %s%% of the week's volume (weeks with a recorded volume).", strconv.FormatFloat(rep.RateThresholdPercent, 'f', -1, 64))
	} else {
		intro += " No complaint-rate threshold is configured."
	}
	return figure{ID: "volume", Title: "Complaints per week", Intro: intro, SVG: template.HTML(c.svg()), Table: t}
}

func durationFigure(rep router.Report, weeks []string, id, title string, pick func(router.WeekReport) router.Durations, counted string) figure {
	unit := "business hours"
	if !rep.BusinessTime {
		unit = "hours"
	}
	c := chart{ID: id + "-chart", Title: title + " per week: median and 90th percentile (" + unit + ")", Unit: unit, Categories: weeks,
		Series: []series{{Name: "median"}, {Name: "90th percentile"}}}
	t := table{Caption: title + " in " + unit + " by week of opening", Head: []string{"Week", strCap(counted), "Median", "90th percentile"}}
	for _, w := range rep.Weeks {
		d := pick(w)
		c.Series[0].Values = append(c.Series[0].Values, d.MedianSeconds/3600)
		c.Series[1].Values = append(c.Series[1].Values, d.P90Seconds/3600)
		t.Rows = append(t.Rows, row(w.Week, itoa(d.Count), hoursOf(d, d.MedianSeconds), hoursOf(d, d.P90Seconds)))
	}
	all := rep.FirstResponse
	if id == "resolution" {
		all = rep.Resolution
	}
	t.Rows = append(t.Rows, row("Whole period", itoa(all.Count), hoursOf(all, all.MedianSeconds), hoursOf(all, all.P90Seconds)))
	return figure{ID: id, Title: title + " (" + unit + ")", SVG: template.HTML(c.svg()), Table: t}
}

func strCap(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func promiseFigure(rep router.Report, weeks []string) figure {
	c := chart{ID: "promises-chart", Whole: true, Title: "Promised follow-ups per week: made, kept, broken", Unit: "promises", Categories: weeks,
		Series: []series{{Name: "made"}, {Name: "kept"}, {Name: "broken"}}}
	t := table{Caption: "Promises on the complaints opened each week", Head: []string{"Week", "Made", "Kept", "Broken", "Pending", "Kept % of settled"}}
	for _, w := range rep.Weeks {
		p := w.Promises
		c.Series[0].Values = append(c.Series[0].Values, float64(p.Made))
		c.Series[1].Values = append(c.Series[1].Values, float64(p.Kept))
		c.Series[2].Values = append(c.Series[2].Values, float64(p.Broken))
		t.Rows = append(t.Rows, row(w.Week, itoa(p.Made), itoa(p.Kept), itoa(p.Broken), itoa(p.Pending), pctIf(p.KeptPercent, p.Settled())))
	}
	p := rep.Promises
	t.Rows = append(t.Rows, row("Whole period", itoa(p.Made), itoa(p.Kept), itoa(p.Broken), itoa(p.Pending), pctIf(p.KeptPercent, p.Settled())))
	return figure{ID: "promises", Title: "Promises made, kept and broken", SVG: template.HTML(c.svg()), Table: t}
}

func reopenFigure(rep router.Report, weeks []string) figure {
	c := chart{ID: "reopen-chart", Title: "Reopen rate per week (%)", Unit: "%", Categories: weeks, Series: []series{{Name: "reopened %"}}}
	t := table{Caption: "Complaints reopened after a close, by week of opening", Head: []string{"Week", "Complaints", "Reopened", "Reopen %"}}
	for _, w := range rep.Weeks {
		c.Series[0].Values = append(c.Series[0].Values, w.ReopenPercent)
		t.Rows = append(t.Rows, row(w.Week, itoa(w.Complaints), itoa(w.Reopened), pctIf(w.ReopenPercent, w.Complaints > 0)))
	}
	t.Rows = append(t.Rows, row("Whole period", itoa(rep.Complaints), itoa(rep.Reopened), pctIf(rep.ReopenPercent, rep.Complaints > 0)))
	return figure{ID: "reopen", Title: "Reopen rate", SVG: template.HTML(c.svg()), Table: t}
}

func csatFigure(rep router.Report) figure {
	labels := []string{}
	s := series{Name: "answers"}
	t := table{Caption: "Satisfaction answers by score", Head: []string{"Score", "Answers", "Share %"}}
	for score := 1; score <= 5; score++ {
		label := strconv.Itoa(score)
		for _, l := range router.CSATScores {
			if l.Score == score {
				label += " " + l.Label
			}
		}
		labels = append(labels, strconv.Itoa(score))
		n := rep.CSAT.Scores[score]
		s.Values = append(s.Values, float64(n))
		share := 0.0
		if rep.CSAT.Responses > 0 {
			share = float64(n) / float64(rep.CSAT.Responses) * 100
		}
		t.Rows = append(t.Rows, row(label, itoa(n), pct(share)))
	}
	c := chart{ID: "csat-chart", Whole: true, Title: "Satisfaction answers by score (1 very dissatisfied, 5 very satisfied)", Unit: "answers", Categories: labels, Series: []series{s}}
	f := figure{ID: "csat", Title: "Customer satisfaction", SVG: template.HTML(c.svg()), Table: t,
		Intro: fmt.Sprintf("%d answers, average %s of 5, %s%% satisfied (4 or 5).", rep.CSAT.Responses, strconv.FormatFloat(rep.CSAT.Average, 'f', 2, 64), pct(rep.CSAT.SatisfiedPercent))}
	if rep.CSAT.Responses == 0 {
		f.Intro, f.Empty = "", "No satisfaction answers in this period."
	}
	return f
}

func causesFigure(rep router.Report, weeks []string) figure {
	c := chart{ID: "causes-chart", Whole: true, Title: "Top root causes per week", Unit: "closed complaints", Categories: weeks}
	head := []string{"Cause", "Total"}
	head = append(head, weeks...)
	t := table{Caption: "Top root causes of the closed complaints, with their count per week of opening", Head: head}
	for _, cause := range rep.TopCauses {
		s := series{Name: cause.Name, Values: make([]float64, len(weeks))}
		r := []string{cause.Name, itoa(cause.Count)}
		for i, w := range rep.Weeks {
			n := 0
			for _, wc := range w.Causes {
				if wc.Name == cause.Name {
					n = wc.Count
				}
			}
			s.Values[i] = float64(n)
			r = append(r, itoa(n))
		}
		c.Series = append(c.Series, s)
		cells := row(r...)
		cells[0].Wide = true
		t.Rows = append(t.Rows, cells)
	}
	f := figure{ID: "causes", Title: "Top causes and their trend", SVG: template.HTML(c.svg()), Table: t}
	if len(rep.TopCauses) == 0 {
		f.Empty = "No closed complaints with a root cause in this period."
	}
	return f
}

func ownersFigure(rep router.Report) figure {
	c := chart{ID: "owners-chart", Whole: true, Title: "Open complaints per owner now, against capacity", Unit: "open complaints", MarkLabel: "capacity",
		Series: []series{{Name: "open"}, {Name: "overdue"}}}
	t := table{Caption: "Per owner: open load now against capacity, overdue now, and the promises on the period's complaints",
		Head: []string{"Owner", "Open", "Capacity", "Over capacity", "Overdue", "Promises made", "Kept", "Broken", "Kept %"}}
	for i, o := range rep.Owners {
		who := o.Owner
		if o.Name != "" && o.Name != o.Owner {
			who = o.Name + " (" + o.Owner + ")"
		}
		c.Categories = append(c.Categories, who)
		c.Series[0].Values = append(c.Series[0].Values, float64(o.Open))
		c.Series[1].Values = append(c.Series[1].Values, float64(o.Overdue))
		capacity, over := "-", "no"
		if o.Capacity > 0 {
			capacity = itoa(o.Capacity)
			c.Marks = append(c.Marks, mark{Index: i, Value: float64(o.Capacity)})
		}
		if o.OverCapacity {
			over = "yes"
		}
		t.Rows = append(t.Rows, row(who, itoa(o.Open), capacity, over, itoa(o.Overdue),
			itoa(o.Promises.Made), itoa(o.Promises.Kept), itoa(o.Promises.Broken), pctIf(o.Promises.KeptPercent, o.Promises.Settled())))
	}
	return figure{ID: "owners", Title: "Owners: load, overdue and promises kept", SVG: template.HTML(c.svg()), Table: t}
}
