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

// PromiseStats counts promised follow-ups; KeptPercent is kept of settled
// (kept + broken) promises.
type PromiseStats struct {
	Made        int     `json:"made"`
	Kept        int     `json:"kept"`
	Broken      int     `json:"broken"`
	Pending     int     `json:"pending"`
	KeptPercent float64 `json:"kept_percent"`
}

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

// OwnerReport is an owner's current open load and overdue complaints.
type OwnerReport struct {
	Owner   string `json:"owner"`
	Open    int    `json:"open"`
	Overdue int    `json:"overdue"`
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
	Since         time.Time     `json:"since"`
	Until         time.Time     `json:"until"`
	GeneratedAt   time.Time     `json:"generated_at"`
	Complaints    int           `json:"complaints"`
	ByChannel     []Count       `json:"by_channel"`
	ByCategory    []Count       `json:"by_category"`
	ByWeek        []Count       `json:"by_week"`
	FirstResponse Durations     `json:"first_response"`
	Resolution    Durations     `json:"resolution"`
	Promises      PromiseStats  `json:"promises"`
	Reopened      int           `json:"reopened"`
	ReopenPercent float64       `json:"reopen_percent"`
	Breaches      []Count       `json:"breaches"`
	TopCauses     []Count       `json:"top_causes"`
	Owners        []OwnerReport `json:"owners"`
	CSAT          CSATStats     `json:"csat"`
	Rates         []RateReport  `json:"rates,omitempty"`
	Overdue       int           `json:"overdue"`
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
// in [since, until) over a page at a time, so a report over many never
// holds them all.
type CreatedPager interface {
	EachCreated(ctx context.Context, since, until time.Time, page func([]Complaint) error) error
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
}

// BuildReport computes the report; it is pure, so figures can be checked
// against a hand-computed fixture.
func BuildReport(in ReportInput) Report {
	loc := in.Location
	if loc == nil {
		loc = time.UTC
	}
	t := newReportTally(loc)
	t.add(in.Complaints)
	return t.report(in)
}

// reportTally adds complaints up for a report, a page at a time, so a
// report over many complaints never holds them all.
type reportTally struct {
	loc                                           *time.Location
	rep                                           Report
	channels, categories, weeks, breaches, causes map[string]int
	first, resolution                             []float64
	csatSum, satisfied                            int
}

func newReportTally(loc *time.Location) *reportTally {
	if loc == nil {
		loc = time.UTC
	}
	t := &reportTally{loc: loc, channels: map[string]int{}, categories: map[string]int{}, weeks: map[string]int{}, breaches: map[string]int{}, causes: map[string]int{}}
	t.rep.CSAT.Scores = map[int]int{}
	return t
}

// add counts complaints opened in the report's period.
func (t *reportTally) add(cs []Complaint) {
	rep, loc := &t.rep, t.loc
	channels, categories, weeks, breaches, causes := t.channels, t.categories, t.weeks, t.breaches, t.causes
	for _, c := range cs {
		rep.Complaints++
		channels[string(c.Channel)]++
		cat := c.Category
		if cat == "" {
			cat = "(none)"
		}
		categories[cat]++
		weeks[ISOWeek(c.CreatedAt.In(loc))]++
		if !c.FirstResponseAt.IsZero() {
			t.first = append(t.first, c.FirstResponseAt.Sub(c.CreatedAt).Seconds())
		}
		if c.Status == StatusClosed {
			t.resolution = append(t.resolution, c.ClosedAt.Sub(c.CreatedAt).Seconds())
			if c.Category != "" {
				causes[c.Category]++
			}
		}
		rep.Promises.Made += c.Promises
		rep.Promises.Kept += c.PromisesKept
		rep.Promises.Broken += c.PromisesBroken
		if !c.PromisedBy.IsZero() {
			rep.Promises.Pending++
		}
		if c.Reopens > 0 {
			rep.Reopened++
		}
		for _, b := range c.Breaches {
			breaches[b]++
		}
		if c.CSAT > 0 {
			rep.CSAT.Responses++
			rep.CSAT.Scores[c.CSAT]++
			t.csatSum += c.CSAT
			if c.CSAT >= 4 {
				t.satisfied++
			}
		}
	}
}

// report completes the report with the figures of in beyond its complaints.
func (t *reportTally) report(in ReportInput) Report {
	rep := t.rep
	rep.Since, rep.Until, rep.GeneratedAt, rep.Rates = in.Since, in.Until, in.Now, in.Rates
	channels, categories, weeks, breaches, causes := t.channels, t.categories, t.weeks, t.breaches, t.causes
	first, resolution, csatSum, satisfied := t.first, t.resolution, t.csatSum, t.satisfied
	rep.ByChannel, rep.ByCategory, rep.ByWeek = counts(channels), counts(categories), counts(weeks)
	slices.SortFunc(rep.ByWeek, func(a, b Count) int { return compareStrings(a.Name, b.Name) })
	rep.Breaches, rep.TopCauses = counts(breaches), counts(causes)
	if len(rep.TopCauses) > 5 {
		rep.TopCauses = rep.TopCauses[:5]
	}
	rep.FirstResponse, rep.Resolution = summarise(first), summarise(resolution)
	if settled := rep.Promises.Kept + rep.Promises.Broken; settled > 0 {
		rep.Promises.KeptPercent = percent(rep.Promises.Kept, settled)
	}
	if rep.Complaints > 0 {
		rep.ReopenPercent = percent(rep.Reopened, rep.Complaints)
	}
	if n := rep.CSAT.Responses; n > 0 {
		rep.CSAT.Average = math.Round(float64(csatSum)/float64(n)*100) / 100
		rep.CSAT.SatisfiedPercent = percent(satisfied, n)
	}
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
	for _, o := range load {
		rep.Owners = append(rep.Owners, *o)
	}
	sort.Slice(rep.Owners, func(i, j int) bool { return rep.Owners[i].Owner < rep.Owners[j].Owner })
	return rep
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
		return Report{}, invalid("until", "must be after since")
	}
	tally := newReportTally(r.reportLocation())
	if p, ok := r.acct.(CreatedPager); ok {
		err := p.EachCreated(ctx, since, until, func(cs []Complaint) error { tally.add(cs); return nil })
		if err != nil {
			return Report{}, fmt.Errorf("reading complaints: %w", err)
		}
	} else {
		cs, err := r.acct.ComplaintsCreated(ctx, since, until)
		if err != nil {
			return Report{}, fmt.Errorf("reading complaints: %w", err)
		}
		tally.add(cs)
	}
	rates, err := r.rates(ctx, since, until)
	if err != nil {
		return Report{}, err
	}
	var owners []string
	for _, o := range r.dir.Owners() {
		owners = append(owners, o.ID)
	}
	open, err := r.acct.OpenFigures(ctx, owners, r.clock())
	if err != nil {
		return Report{}, fmt.Errorf("reading the open complaints' figures: %w", err)
	}
	return tally.report(ReportInput{Since: since, Until: until, Now: r.clock(), Location: r.reportLocation(),
		Open: open, Owners: owners, Rates: rates}), nil
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
	_, err := r.CheckComplaintRate(ctx)
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
