package router

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"time"
)

// Volume is the operator's denominator for the complaint rate: orders or
// contacts in one ISO week ("2026-W48").
type Volume struct {
	Period string    `json:"period"`
	Count  int       `json:"count"`
	SetAt  time.Time `json:"set_at,omitzero"`
	// Alerted, in SetVolume's answer, counts the periods whose complaint
	// rate this volume brought to the threshold (each alerts once).
	Alerted int `json:"alerted,omitempty"`
}

var isoWeekPattern = regexp.MustCompile(`^(\d{4})-W(\d{2})$`)

// WeekStart returns the Monday 00:00 (in loc) that starts an ISO week such as
// "2026-W48".
func WeekStart(period string, loc *time.Location) (time.Time, error) {
	m := isoWeekPattern.FindStringSubmatch(period)
	if m == nil {
		return time.Time{}, invalid("period", "%q is not an ISO week like 2026-W48", period)
	}
	year, _ := strconv.Atoi(m[1])
	week, _ := strconv.Atoi(m[2])
	// 4 January is always in week 1.
	jan4 := time.Date(year, 1, 4, 0, 0, 0, 0, loc)
	monday := jan4.AddDate(0, 0, -((int(jan4.Weekday()) + 6) % 7))
	start := monday.AddDate(0, 0, 7*(week-1))
	if y, w := start.ISOWeek(); week < 1 || y != year || w != week {
		return time.Time{}, invalid("period", "%s has no week %d", m[1], week)
	}
	return start, nil
}

// ISOWeek names the ISO week of t: "2026-W48".
func ISOWeek(t time.Time) string {
	y, w := t.ISOWeek()
	return fmt.Sprintf("%04d-W%02d", y, w)
}

// Durations summarises how long something took.
type Durations struct {
	Count         int     `json:"count"`
	MedianSeconds float64 `json:"median_seconds"`
	P90Seconds    float64 `json:"p90_seconds"`
}

// Settled reports whether anything was timed: without, the median and
// percentile are no figure (shown as "–", null), not 0.
func (d Durations) Settled() bool { return d.Count > 0 }

// PromiseStats counts promised follow-ups; KeptPercent is kept of settled
// (kept + broken) promises.
type PromiseStats struct {
	Made        int     `json:"made"`
	Kept        int     `json:"kept"`
	Broken      int     `json:"broken"`
	Pending     int     `json:"pending"`
	KeptPercent float64 `json:"kept_percent"`
}

// Settled reports whether any promise was kept or broken: without, the kept
// rate is no figure (a 0 would read as every promise broken).
func (p PromiseStats) Settled() bool { return p.Kept+p.Broken > 0 }

// CSATStats summarises satisfaction answers; SatisfiedPercent counts 4 and 5.
type CSATStats struct {
	Responses        int         `json:"responses"`
	Average          float64     `json:"average"`
	SatisfiedPercent float64     `json:"satisfied_percent"`
	Scores           map[int]int `json:"scores"`
}

// Count is a named count.
type Count struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

// OwnerReport is an owner's current open load against their capacity and
// overdue complaints, and the promises made on their complaints of the
// period.
type OwnerReport struct {
	Owner   string `json:"owner"`
	Name    string `json:"name,omitempty"`
	Open    int    `json:"open"`
	Overdue int    `json:"overdue"`
	// Capacity is the roster's expected load (0: not set); OverCapacity
	// says Open exceeds it.
	Capacity     int          `json:"capacity,omitempty"`
	OverCapacity bool         `json:"over_capacity,omitempty"`
	Promises     PromiseStats `json:"promises"`
}

// WeekReport is one ISO week of the period: complaints opened that week and
// what became of them.
type WeekReport struct {
	Week          string       `json:"week"`
	Start         time.Time    `json:"start"`
	Complaints    int          `json:"complaints"`
	ByChannel     []Count      `json:"by_channel"`
	FirstResponse Durations    `json:"first_response"`
	Resolution    Durations    `json:"resolution"`
	Promises      PromiseStats `json:"promises"`
	Reopened      int          `json:"reopened"`
	ReopenPercent float64      `json:"reopen_percent"`
	Causes        []Count      `json:"causes"`
	// Volume is the week's orders or contacts when recorded (0: unknown);
	// RatePercent and Alert then compare the complaints with it.
	Volume      int     `json:"volume,omitempty"`
	RatePercent float64 `json:"rate_percent,omitempty"`
	Alert       bool    `json:"alert,omitempty"`
}

// PreventionNote is what staff said, at a close, would prevent the next
// complaint like it.
type PreventionNote struct {
	Complaint string    `json:"complaint"`
	Owner     string    `json:"owner"`
	ClosedAt  time.Time `json:"closed_at"`
	Note      string    `json:"note"`
}

// PreventionNotes are a category's notes of the period, oldest first.
type PreventionNotes struct {
	Category string           `json:"category"`
	Notes    []PreventionNote `json:"notes"`
}

// RateReport is the complaint rate of one period with a volume.
type RateReport struct {
	Period     string  `json:"period"`
	Volume     int     `json:"volume"`
	Complaints int     `json:"complaints"`
	Percent    float64 `json:"percent"`
	Alert      bool    `json:"alert"`
}

// Report is the accountability report over complaints opened in [Since,
// Until); owner load and overdue counts are as of GeneratedAt.
type Report struct {
	Since       time.Time `json:"since"`
	Until       time.Time `json:"until"`
	GeneratedAt time.Time `json:"generated_at"`
	Complaints  int       `json:"complaints"`
	ByChannel   []Count   `json:"by_channel"`
	ByCategory  []Count   `json:"by_category"`
	ByWeek      []Count   `json:"by_week"`
	// WeeksLeftOut counts the earliest weeks of a long period that the
	// weekly series leave out (they hold the latest maxReportWeeks, two
	// years); every total covers the whole period.
	WeeksLeftOut  int          `json:"weeks_left_out,omitempty"`
	FirstResponse Durations    `json:"first_response"`
	Resolution    Durations    `json:"resolution"`
	Promises      PromiseStats `json:"promises"`
	Reopened      int          `json:"reopened"`
	ReopenPercent float64      `json:"reopen_percent"`
	// Breaches are the deadlines missed in the period, by kind, whenever
	// their complaints were opened (with a store that indexes breaches;
	// else those of the complaints opened in the period).
	Breaches  []Count       `json:"breaches"`
	TopCauses []Count       `json:"top_causes"`
	Owners    []OwnerReport `json:"owners"`
	CSAT      CSATStats     `json:"csat"`
	Rates     []RateReport  `json:"rates,omitempty"`
	Overdue   int           `json:"overdue"`
	// BusinessTime says the durations count working time of the owners'
	// calendars (as the deadlines do), not wall-clock time.
	BusinessTime bool `json:"business_time"`
	// RateThresholdPercent is the complaint rate that alerts (0: no watch).
	RateThresholdPercent float64           `json:"rate_threshold_percent,omitempty"`
	Weeks                []WeekReport      `json:"weeks"`
	Prevention           []PreventionNotes `json:"prevention,omitempty"`
}

// Overdue reports whether an open complaint has missed a deadline that is
// still running: an answer, its resolution (unless waiting on the customer),
// or a promise.
func (c Complaint) Overdue(now time.Time) bool {
	at, ok := c.OverdueFrom()
	return ok && now.After(at)
}

// OverdueFrom is the moment an open complaint becomes overdue: the earliest
// of its running deadlines. ok is false for a closed complaint or one with
// no running deadline. The store indexes open complaints by it, so overdue
// counts come from the index (ZCOUNT) instead of every open complaint.
func (c Complaint) OverdueFrom() (at time.Time, ok bool) {
	if c.Status != StatusOpen {
		return time.Time{}, false
	}
	consider := func(t time.Time) {
		if !t.IsZero() && (!ok || t.Before(at)) {
			at, ok = t, true
		}
	}
	consider(c.RespondBy)
	if c.WaitingSince.IsZero() {
		consider(c.ResolveBy)
	}
	consider(c.PromisedBy)
	return at, ok
}

// PromisePending reports whether an open complaint has a promised follow-up
// not yet kept or broken.
func (c Complaint) PromisePending() bool {
	return c.Status == StatusOpen && !c.PromisedBy.IsZero()
}

// OwnerFigures are an owner's open and overdue complaints now.
type OwnerFigures struct {
	Open    int
	Overdue int
}

// OpenFigures are the figures over all open complaints that reports and
// gauges need, read from indexes the store keeps with every commit.
type OpenFigures struct {
	// Owners has every owner asked for (zero included) and every other
	// owner with open complaints.
	Owners map[string]OwnerFigures
	// PromisesPending counts open complaints with a pending promise;
	// PromisesBroken sums the broken promises of open complaints.
	PromisesPending int
	PromisesBroken  int
}

// Overdue is the total of overdue open complaints.
func (f OpenFigures) Overdue() int {
	n := 0
	for _, o := range f.Owners {
		n += o.Overdue
	}
	return n
}

// FiguresOf computes OpenFigures from open complaints themselves: the
// definition the store's indexes must agree with (tests compare them).
func FiguresOf(open []Complaint, owners []string, now time.Time) OpenFigures {
	f := OpenFigures{Owners: map[string]OwnerFigures{}}
	for _, o := range owners {
		f.Owners[o] = OwnerFigures{}
	}
	for _, c := range open {
		if c.Status != StatusOpen {
			continue
		}
		o := f.Owners[c.Owner]
		o.Open++
		if c.Overdue(now) {
			o.Overdue++
		}
		f.Owners[c.Owner] = o
		if c.PromisePending() {
			f.PromisesPending++
		}
		f.PromisesBroken += c.PromisesBroken
	}
	return f
}

// CreatedPager is an AccountabilityStore that hands the complaints created
// in [since, until) over a page at a time, oldest first, so a report over
// many never holds them all; it hands only what the report reads.
type CreatedPager interface {
	EachCreated(ctx context.Context, since, until time.Time, page func([]ReportView) error) error
}

// ReportInput is what BuildReport works from.
type ReportInput struct {
	Since, Until, Now time.Time
	// Location names the ISO weeks.
	Location *time.Location
	// Complaints opened in [Since, Until); Open are the figures over all
	// open complaints now.
	Complaints []Complaint
	Open       OpenFigures
	Owners     []string
	Rates      []RateReport
	// Calendar gives an owner's working calendar; durations count its
	// working time, like the deadlines. Nil (or a nil calendar): wall clock.
	Calendar func(owner string) *Calendar
	// Capacity is each owner's expected open load; Names their names.
	Capacity map[string]int
	Names    map[string]string
	// RateThreshold is the alerting complaint rate (a fraction; 0: none).
	RateThreshold float64
	// Breaches, when known, are the deadlines missed in [Since, Until)
	// by kind, whenever their complaints were opened; nil: the breaches of
	// the complaints opened in the period are counted.
	Breaches map[string]int
}

// BreachCounter is a store that indexes breaches by when they happened.
type BreachCounter interface {
	BreachesBetween(ctx context.Context, since, until time.Time) (map[string]int, error)
}

// maxReportWeeks bounds the weekly series of one report (two years).
const maxReportWeeks = 106

// tally sums one group of complaints (the period, or one week).
type tally struct {
	channels, causes map[string]int
	first, resolve   []float64
	promises         PromiseStats
	reopened, n      int
}

func newTally() *tally { return &tally{channels: map[string]int{}, causes: map[string]int{}} }

// durations are a complaint's working time to its first response and to
// its close, in seconds, when it has them: worked out once for the period's
// tally and its week's.
type durations struct {
	first, resolve float64
}

func durationsOf(c ReportView, cal *Calendar) durations {
	var d durations
	if !c.FirstResponseAt.IsZero() {
		d.first = cal.Between(c.CreatedAt, c.FirstResponseAt).Seconds()
	}
	if c.Status == StatusClosed {
		d.resolve = cal.Between(c.CreatedAt, c.ClosedAt).Seconds()
	}
	return d
}

func (t *tally) add(c ReportView, d durations) {
	t.n++
	t.channels[string(c.Channel)]++
	if !c.FirstResponseAt.IsZero() {
		t.first = append(t.first, d.first)
	}
	if c.Status == StatusClosed {
		t.resolve = append(t.resolve, d.resolve)
		if c.Category != "" {
			t.causes[c.Category]++
		}
	}
	t.promises.add(c)
	if c.Reopens > 0 {
		t.reopened++
	}
}

func (p *PromiseStats) add(c ReportView) {
	p.Made += c.Promises
	p.Kept += c.PromisesKept
	p.Broken += c.PromisesBroken
	if !c.PromisedBy.IsZero() {
		p.Pending++
	}
	p.KeptPercent = 0
	if settled := p.Kept + p.Broken; settled > 0 {
		p.KeptPercent = percent(p.Kept, settled)
	}
}

func (t *tally) reopenPercent() float64 {
	if t.n == 0 {
		return 0
	}
	return percent(t.reopened, t.n)
}

// BuildReport computes the report; it is pure, so figures can be checked
// against a hand-computed fixture.
func BuildReport(in ReportInput) Report {
	b := newReportBuilder(in)
	b.add(reportViews(in.Complaints))
	return b.report()
}

// reportBuilder adds complaints up for a report a page at a time, so a
// report over many complaints never holds them all: only their durations
// and prevention notes.
type reportBuilder struct {
	in                           ReportInput
	loc                          *time.Location
	rep                          Report
	all                          *tally
	categories, breaches, byWeek map[string]int
	weeks                        []time.Time
	weekIndex                    map[string]int
	weekTallies                  []*tally
	ownerPromises                map[string]*PromiseStats
	prevention                   map[string][]PreventionNote
	csatSum, satisfied           int
	// lastDay and lastWeek are the creation date (in loc) of the complaint
	// added last and its ISO week: complaints come oldest first, so the
	// next one is mostly of the same day.
	lastDay  [3]int
	lastWeek string
}

func newReportBuilder(in ReportInput) *reportBuilder {
	b := &reportBuilder{in: in, loc: in.Location, all: newTally(),
		categories: map[string]int{}, breaches: map[string]int{}, byWeek: map[string]int{},
		ownerPromises: map[string]*PromiseStats{}, prevention: map[string][]PreventionNote{}}
	if b.loc == nil {
		b.loc = time.UTC
	}
	b.rep = Report{Since: in.Since, Until: in.Until, GeneratedAt: in.Now, Rates: in.Rates,
		RateThresholdPercent: math.Round(in.RateThreshold*10000) / 100}
	b.rep.CSAT.Scores = map[int]int{}
	// The basis holds for the report even without a complaint to measure.
	b.calendar("")
	for _, o := range in.Owners {
		b.calendar(o)
	}
	b.weeks, b.weekIndex, b.rep.WeeksLeftOut = reportWeeks(in.Since, in.Until, b.loc)
	b.weekTallies = make([]*tally, len(b.weeks))
	for i := range b.weekTallies {
		b.weekTallies[i] = newTally()
	}
	return b
}

// calendar is the working calendar durations of owner's complaints count.
func (b *reportBuilder) calendar(owner string) *Calendar {
	if b.in.Calendar == nil {
		return nil
	}
	cal := b.in.Calendar(owner)
	if cal != nil {
		b.rep.BusinessTime = true
	}
	return cal
}

// add counts complaints opened in the report's period.
func (b *reportBuilder) add(cs []ReportView) {
	rep := &b.rep
	for _, c := range cs {
		rep.Complaints++
		d := durationsOf(c, b.calendar(c.Owner))
		b.all.add(c, d)
		week := b.week(c.CreatedAt)
		b.byWeek[week]++
		if i, ok := b.weekIndex[week]; ok {
			b.weekTallies[i].add(c, d)
		}
		cat := c.Category
		if cat == "" {
			cat = "(none)"
		}
		b.categories[cat]++
		if b.ownerPromises[c.Owner] == nil {
			b.ownerPromises[c.Owner] = &PromiseStats{}
		}
		b.ownerPromises[c.Owner].add(c)
		if c.Status == StatusClosed && c.Prevention != "" {
			b.prevention[cat] = append(b.prevention[cat], PreventionNote{Complaint: c.ID, Owner: c.Owner, ClosedAt: c.ClosedAt, Note: c.Prevention})
		}
		for _, br := range c.Breaches {
			b.breaches[br]++
		}
		if c.CSAT > 0 {
			rep.CSAT.Responses++
			rep.CSAT.Scores[c.CSAT]++
			b.csatSum += c.CSAT
			if c.CSAT >= 4 {
				b.satisfied++
			}
		}
	}
}

// week names the ISO week of t in the report's zone.
func (b *reportBuilder) week(t time.Time) string {
	local := t.In(b.loc)
	y, m, d := local.Date()
	if day := [3]int{y, int(m), d}; day != b.lastDay || b.lastWeek == "" {
		b.lastDay, b.lastWeek = day, ISOWeek(local)
	}
	return b.lastWeek
}

// report completes the report with the figures beyond its complaints.
func (b *reportBuilder) report() Report {
	in, rep, all := b.in, b.rep, b.all
	categories, breaches, byWeek := b.categories, b.breaches, b.byWeek
	weeks, weekTallies, ownerPromises, prevention := b.weeks, b.weekTallies, b.ownerPromises, b.prevention
	csatSum, satisfied := b.csatSum, b.satisfied
	rep.ByChannel, rep.ByCategory = counts(all.channels), counts(categories)
	if in.Breaches != nil {
		breaches = in.Breaches
	}
	rep.Breaches, rep.TopCauses = counts(breaches), counts(all.causes)
	if len(rep.TopCauses) > 5 {
		rep.TopCauses = rep.TopCauses[:5]
	}
	rep.FirstResponse, rep.Resolution = summarise(all.first), summarise(all.resolve)
	rep.Promises = all.promises
	rep.Reopened, rep.ReopenPercent = all.reopened, all.reopenPercent()
	if n := rep.CSAT.Responses; n > 0 {
		rep.CSAT.Average = math.Round(float64(csatSum)/float64(n)*100) / 100
		rep.CSAT.SatisfiedPercent = percent(satisfied, n)
	}
	rates := map[string]RateReport{}
	for _, rr := range in.Rates {
		rates[rr.Period] = rr
	}
	rep.Weeks = make([]WeekReport, len(weeks))
	for i, w := range weeks {
		t := weekTallies[i]
		wr := WeekReport{Week: ISOWeek(w), Start: w, Complaints: t.n, ByChannel: counts(t.channels),
			FirstResponse: summarise(t.first), Resolution: summarise(t.resolve), Promises: t.promises,
			Reopened: t.reopened, ReopenPercent: t.reopenPercent(), Causes: counts(t.causes)}
		if rr, ok := rates[wr.Week]; ok {
			wr.Volume, wr.RatePercent, wr.Alert = rr.Volume, rr.Percent, rr.Alert
		}
		rep.Weeks[i] = wr
	}
	rep.ByWeek = counts(byWeek)
	slices.SortFunc(rep.ByWeek, func(a, b Count) int { return compareStrings(a.Name, b.Name) })
	for cat, notes := range prevention {
		slices.SortFunc(notes, func(a, b PreventionNote) int { return a.ClosedAt.Compare(b.ClosedAt) })
		rep.Prevention = append(rep.Prevention, PreventionNotes{Category: cat, Notes: notes})
	}
	slices.SortFunc(rep.Prevention, func(a, b PreventionNotes) int {
		if len(a.Notes) != len(b.Notes) {
			return len(b.Notes) - len(a.Notes)
		}
		return compareStrings(a.Category, b.Category)
	})
	load := map[string]*OwnerReport{}
	for _, o := range in.Owners {
		load[o] = &OwnerReport{Owner: o}
	}
	for owner, fig := range in.Open.Owners {
		o := load[owner]
		if o == nil {
			if fig.Open == 0 {
				continue
			}
			o = &OwnerReport{Owner: owner}
			load[owner] = o
		}
		o.Open, o.Overdue = fig.Open, fig.Overdue
		rep.Overdue += fig.Overdue
	}
	for id := range ownerPromises {
		if load[id] == nil {
			load[id] = &OwnerReport{Owner: id}
		}
	}
	for id, o := range load {
		o.Capacity, o.Name = in.Capacity[id], in.Names[id]
		o.OverCapacity = o.Capacity > 0 && o.Open > o.Capacity
		if p := ownerPromises[id]; p != nil {
			o.Promises = *p
		}
		rep.Owners = append(rep.Owners, *o)
	}
	sort.Slice(rep.Owners, func(i, j int) bool { return rep.Owners[i].Owner < rep.Owners[j].Owner })
	return rep
}

// reportWeeks lists the starts of the ISO weeks that overlap [since, until),
// at most maxReportWeeks of them (the latest), and indexes them by name.
func reportWeeks(since, until time.Time, loc *time.Location) (weeks []time.Time, index map[string]int, leftOut int) {
	if since.IsZero() || !until.After(since) {
		return nil, map[string]int{}, 0
	}
	s := since.In(loc)
	start := time.Date(s.Year(), s.Month(), s.Day()-(int(s.Weekday())+6)%7, 0, 0, 0, 0, loc)
	var out []time.Time
	for w := start; w.Before(until); w = w.AddDate(0, 0, 7) {
		out = append(out, w)
	}
	if len(out) > maxReportWeeks {
		leftOut = len(out) - maxReportWeeks
		out = out[leftOut:]
	}
	idx := make(map[string]int, len(out))
	for i, w := range out {
		idx[ISOWeek(w)] = i
	}
	return out, idx, leftOut
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// counts sorts a tally by count, largest first, then by name.
func counts(m map[string]int) []Count {
	out := make([]Count, 0, len(m))
	for k, v := range m {
		out = append(out, Count{Name: k, Count: v})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// summarise gives the median (the middle value, or the mean of the two
// middle values) and the 90th percentile by the nearest-rank method.
func summarise(secs []float64) Durations {
	d := Durations{Count: len(secs)}
	if len(secs) == 0 {
		return d
	}
	s := slices.Sorted(slices.Values(secs))
	n := len(s)
	if n%2 == 1 {
		d.MedianSeconds = s[n/2]
	} else {
		d.MedianSeconds = (s[n/2-1] + s[n/2]) / 2
	}
	d.P90Seconds = s[int(math.Ceil(0.9*float64(n)))-1]
	return d
}

func percent(part, whole int) float64 {
	return math.Round(float64(part)/float64(whole)*1000) / 10
}

// reportLocation is the zone in which weeks are counted.
// ReportLocation is the time zone reports count weeks in (the default
// calendar's): a date given for a report's period means midnight there.
func (r *Router) ReportLocation() *time.Location { return r.reportLocation() }

func (r *Router) reportLocation() *time.Location {
	if c := r.policy().DefaultCalendar; c != nil {
		return c.Location
	}
	return time.UTC
}

// Report builds the accountability report for complaints opened in [since,
// until).
func (r *Router) Report(ctx context.Context, since, until time.Time) (Report, error) {
	if r.acct == nil {
		return Report{}, errNoAccountability
	}
	if !until.After(since) {
		if now := r.clock(); !since.Before(now) && !until.Before(now) {
			// until was left to its default, now: say what is wrong.
			return Report{}, invalid("since", "%s is not in the past", since.UTC().Format(time.RFC3339))
		}
		return Report{}, invalid("until", "%s is not after since (%s)", until.UTC().Format(time.RFC3339), since.UTC().Format(time.RFC3339))
	}
	rates, err := r.rates(ctx, since, until)
	if err != nil {
		return Report{}, err
	}
	var owners []string
	capacity, names := map[string]int{}, map[string]string{}
	for _, o := range r.dir.Owners() {
		owners = append(owners, o.ID)
		capacity[o.ID], names[o.ID] = o.Capacity, o.Name
	}
	open, err := r.acct.OpenFigures(ctx, owners, r.clock())
	if err != nil {
		return Report{}, fmt.Errorf("reading the open complaints' figures: %w", err)
	}
	var breaches map[string]int
	if bc, ok := r.acct.(BreachCounter); ok {
		if breaches, err = bc.BreachesBetween(ctx, since, until); err != nil {
			return Report{}, err
		}
	}
	policy := r.policy()
	b := newReportBuilder(ReportInput{Since: since, Until: until, Now: r.clock(), Location: r.reportLocation(),
		Open: open, Owners: owners, Rates: rates, Breaches: breaches,
		Calendar: policy.CalendarOf, Capacity: capacity, Names: names, RateThreshold: policy.RateThreshold})
	if p, ok := r.acct.(CreatedPager); ok {
		if err := p.EachCreated(ctx, since, until, func(cs []ReportView) error { b.add(cs); return nil }); err != nil {
			return Report{}, fmt.Errorf("reading complaints: %w", err)
		}
	} else {
		cs, err := r.acct.ComplaintsCreated(ctx, since, until)
		if err != nil {
			return Report{}, fmt.Errorf("reading complaints: %w", err)
		}
		b.add(reportViews(cs))
	}
	return b.report(), nil
}

// rates computes the complaint rate of every period with a volume that
// overlaps [since, until) (zero times: all).
func (r *Router) rates(ctx context.Context, since, until time.Time) ([]RateReport, error) {
	vols, err := r.acct.Volumes(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading volumes: %w", err)
	}
	loc := r.reportLocation()
	var out []RateReport
	for _, v := range vols {
		start, err := WeekStart(v.Period, loc)
		if err != nil || v.Count <= 0 {
			continue
		}
		end := start.AddDate(0, 0, 7)
		if (!until.IsZero() && !start.Before(until)) || (!since.IsZero() && !end.After(since)) {
			continue
		}
		n, err := r.acct.CountCreated(ctx, start, end)
		if err != nil {
			return nil, fmt.Errorf("counting complaints of %s: %w", v.Period, err)
		}
		rr := RateReport{Period: v.Period, Volume: v.Count, Complaints: n, Percent: math.Round(float64(n)/float64(v.Count)*10000) / 100}
		rr.Alert = r.policy().RateThreshold > 0 && float64(n)/float64(v.Count) >= r.policy().RateThreshold
		out = append(out, rr)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Period < out[j].Period })
	return out, nil
}

// SetVolume records a period's volume (orders, contacts) and checks the
// complaint rate at once.
func (r *Router) SetVolume(ctx context.Context, v Volume) (Volume, error) {
	if r.acct == nil {
		return Volume{}, errNoAccountability
	}
	if _, err := WeekStart(v.Period, r.reportLocation()); err != nil {
		return Volume{}, err
	}
	if v.Count < 1 {
		return Volume{}, invalid("count", "must be at least 1")
	}
	v.SetAt = r.clock()
	if err := r.acct.SetVolume(ctx, v); err != nil {
		return Volume{}, fmt.Errorf("recording the volume of %s: %w", v.Period, err)
	}
	n, err := r.CheckComplaintRate(ctx)
	v.Alerted = n
	return v, err
}

// CheckComplaintRate alerts RateAlert once per period whose complaint rate
// reached the threshold; it returns how many periods alerted now.
func (r *Router) CheckComplaintRate(ctx context.Context) (int, error) {
	if r.acct == nil || r.policy().RateThreshold <= 0 || len(r.policy().RateAlert) == 0 {
		return 0, nil
	}
	// Only recent periods can still cross the threshold.
	rates, err := r.rates(ctx, r.clock().AddDate(0, 0, -8*7), time.Time{})
	if err != nil {
		return 0, err
	}
	alerted := 0
	now := r.clock()
	for _, rr := range rates {
		if !rr.Alert {
			continue
		}
		ev := Event{Type: EventBreached, Actor: ActorRouter,
			Reason: fmt.Sprintf("complaint rate %s: %d complaints on %d (%.2f%%) reached the threshold of %.2f%%",
				rr.Period, rr.Complaints, rr.Volume, rr.Percent, r.policy().RateThreshold*100),
			Details: map[string]string{"period": rr.Period, "complaints": strconv.Itoa(rr.Complaints), "volume": strconv.Itoa(rr.Volume)}}
		var ns []Notification
		for _, to := range r.policy().RateAlert {
			ns = append(ns, Notification{ID: "complaint-rate:" + rr.Period + ":" + to, Kind: NotifyComplaintRate, Recipient: to, At: now, Event: &ev})
		}
		ok, err := r.acct.NotifyOnce(ctx, "complaint-rate:"+rr.Period, ns)
		if err != nil {
			return alerted, fmt.Errorf("alerting the complaint rate of %s: %w", rr.Period, err)
		}
		if ok {
			alerted++
			r.log.Warn("complaint rate threshold reached", "period", rr.Period, "percent", rr.Percent)
		}
	}
	return alerted, nil
}
