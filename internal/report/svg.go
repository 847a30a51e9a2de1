package report

import (
	"fmt"
	"html"
	"math"
	"strconv"
	"strings"
)

// The charts are drawn here as inline SVG, server-side: no script, no font
// and no request leaves the page. Every text that reaches the SVG goes
// through esc; numbers are formatted, never interpolated as text.

func esc(s string) string { return html.EscapeString(s) }

func num(v float64) string { return strconv.FormatFloat(math.Round(v*100)/100, 'f', -1, 64) }

// palette colours series in a fixed order; the colours keep their contrast
// on white and in greyscale print (light to dark alternating).
var palette = []string{"#1f5fa8", "#e08a1e", "#2e8b57", "#a83262", "#6b4fa8", "#7a7a7a", "#1e9ea8", "#b5651d"}

// series is one named row of values, one per category on the x axis.
type series struct {
	Name   string
	Values []float64
}

// mark is a short horizontal line over one category (the threshold).
type mark struct {
	Index int
	Value float64
}

// chart is a bar chart over categories: grouped or stacked bars, with
// optional marks.
type chart struct {
	ID, Title, Unit string
	Categories      []string
	Series          []series
	Stacked         bool
	Marks           []mark
	MarkLabel       string
	// Whole says the values are counts: gridlines fall on whole numbers.
	Whole bool
}

const (
	chartW, chartH                  = 640.0, 260.0
	padLeft, padRight, padTop, padB = 48.0, 12.0, 24.0, 52.0
)

// niceMax rounds the axis maximum up so that its four gridline steps are 1,
// 2 or 5 times a power of ten (counts get whole-number ticks).
func niceMax(v float64) float64 {
	if v <= 0 {
		return 4
	}
	raw := v / 4
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return 4 * m * p
		}
	}
	return 40 * p
}

func (c chart) max() float64 {
	m := 0.0
	for i := range c.Categories {
		sum := 0.0
		for _, s := range c.Series {
			if i < len(s.Values) {
				if c.Stacked {
					sum += s.Values[i]
				} else {
					sum = math.Max(sum, s.Values[i])
				}
			}
		}
		m = math.Max(m, sum)
	}
	for _, k := range c.Marks {
		m = math.Max(m, k.Value)
	}
	top := niceMax(m)
	if c.Whole && top < 4 {
		top = 4
	}
	return top
}

// svg renders the chart. The picture is labelled by its title; the numbers
// are in the table beside it, which screen readers read instead.
func (c chart) svg() string {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %s %s" role="img" aria-labelledby="%s-title" preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg">`,
		num(chartW), num(chartH), esc(c.ID))
	fmt.Fprintf(&b, `<title id="%s-title">%s</title>`, esc(c.ID), esc(c.Title))
	plotW, plotH := chartW-padLeft-padRight, chartH-padTop-padB
	top := c.max()
	y := func(v float64) float64 { return padTop + plotH - v/top*plotH }
	// Axis with five gridlines.
	for i := 0; i <= 4; i++ {
		v := top * float64(i) / 4
		fmt.Fprintf(&b, `<line class="grid" x1="%s" x2="%s" y1="%s" y2="%s"/>`, num(padLeft), num(chartW-padRight), num(y(v)), num(y(v)))
		fmt.Fprintf(&b, `<text class="tick" x="%s" y="%s" text-anchor="end">%s</text>`, num(padLeft-4), num(y(v)+4), esc(num(v)))
	}
	if c.Unit != "" {
		fmt.Fprintf(&b, `<text class="tick" x="4" y="12">%s</text>`, esc(c.Unit))
	}
	n := max(len(c.Categories), 1)
	slot := plotW / float64(n)
	groups := 1
	if !c.Stacked {
		groups = max(len(c.Series), 1)
	}
	barW := slot * 0.8 / float64(groups)
	for i, cat := range c.Categories {
		x0 := padLeft + slot*float64(i) + slot*0.1
		base := 0.0
		for si, s := range c.Series {
			v := 0.0
			if i < len(s.Values) {
				v = s.Values[i]
			}
			if v <= 0 {
				continue
			}
			x := x0 + barW*float64(si)
			lo := base
			if c.Stacked {
				x = x0
				base += v
			}
			hi := lo + v
			fmt.Fprintf(&b, `<rect x="%s" y="%s" width="%s" height="%s" fill="%s"><title>%s %s: %s</title></rect>`,
				num(x), num(y(hi)), num(barW), num(y(lo)-y(hi)), palette[si%len(palette)], esc(cat), esc(s.Name), esc(num(v)))
		}
		// At most about 8 labels fit under the axis; the table has them all.
		if i%labelEvery(n) != 0 {
			continue
		}
		label := cat
		if len([]rune(label)) > 14 {
			label = string([]rune(label)[:13]) + "…"
		}
		fmt.Fprintf(&b, `<text class="cat" x="%s" y="%s" text-anchor="middle">%s</text>`, num(x0+slot*0.4), num(padTop+plotH+14), esc(label))
	}
	for _, k := range c.Marks {
		x0 := padLeft + slot*float64(k.Index) + slot*0.05
		fmt.Fprintf(&b, `<line class="mark" x1="%s" x2="%s" y1="%s" y2="%s"><title>%s: %s</title></line>`,
			num(x0), num(x0+slot*0.9), num(y(k.Value)), num(y(k.Value)), esc(c.MarkLabel), esc(num(k.Value)))
	}
	// Legend below the axis labels.
	lx := padLeft
	items := make([]string, 0, len(c.Series)+1)
	for _, s := range c.Series {
		items = append(items, s.Name)
	}
	for i, name := range items {
		fmt.Fprintf(&b, `<rect x="%s" y="%s" width="10" height="10" fill="%s"/>`, num(lx), num(chartH-22), palette[i%len(palette)])
		label := name
		if len([]rune(label)) > 24 {
			label = string([]rune(label)[:23]) + "…"
		}
		fmt.Fprintf(&b, `<text class="legend" x="%s" y="%s">%s</text>`, num(lx+14), num(chartH-13), esc(label))
		lx += 24 + 7*float64(len([]rune(label)))
	}
	if len(c.Marks) > 0 {
		fmt.Fprintf(&b, `<line class="mark" x1="%s" x2="%s" y1="%s" y2="%s"/>`, num(lx), num(lx+14), num(chartH-17), num(chartH-17))
		fmt.Fprintf(&b, `<text class="legend" x="%s" y="%s">%s</text>`, num(lx+18), num(chartH-13), esc(c.MarkLabel))
	}
	b.WriteString(`</svg>`)
	return b.String()
}

func labelEvery(n int) int { return max(1, (n+7)/8) }
