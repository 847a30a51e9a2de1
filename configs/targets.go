package configs

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/forgetmenot/forgetmenot/router"
)

type targetsFile struct {
	Calendars       []calendarYAML `yaml:"calendars"`
	DefaultCalendar string         `yaml:"default_calendar"`
	ReminderAt      *float64       `yaml:"reminder_at"`
	WaitingNudge    string         `yaml:"waiting_nudge"`
	Targets         []targetYAML   `yaml:"targets"`
	ComplaintRate   *rateYAML      `yaml:"complaint_rate"`
}

type calendarYAML struct {
	Name     string   `yaml:"name"`
	TimeZone string   `yaml:"time_zone"`
	Days     []string `yaml:"days"`
	Hours    string   `yaml:"hours"`
	Holidays []string `yaml:"holidays"`
}

type targetYAML struct {
	Name          string   `yaml:"name"`
	Priorities    []string `yaml:"priorities"`
	Channels      []string `yaml:"channels"`
	Teams         []string `yaml:"teams"`
	FirstResponse string   `yaml:"first_response"`
	Resolution    string   `yaml:"resolution"`
}

type rateYAML struct {
	Threshold string   `yaml:"threshold"`
	Alert     []string `yaml:"alert"`
}

var weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

// LoadTargets reads the accountability targets and calendars, and the
// calendars and planned absences of the owners file (ownersPath), checked
// against the roster.
func LoadTargets(path, ownersPath string, roster *router.Roster) (*router.Policy, error) {
	var f targetsFile
	doc, err := decodeStrict(path, &f)
	if err != nil {
		return nil, err
	}
	errAt := func(line int, format string, args ...any) error {
		return &fileError{path: path, line: line, msg: fmt.Sprintf(format, args...)}
	}
	calLines, _ := itemLines(doc, "calendars")
	targetLines, _ := itemLines(doc, "targets")
	keyLine := func(key string) int {
		if doc == nil || len(doc.Content) == 0 {
			return 0
		}
		m := doc.Content[0]
		for i := 0; i+1 < len(m.Content); i += 2 {
			if m.Content[i].Value == key {
				return m.Content[i].Line
			}
		}
		return 0
	}

	p := &router.Policy{ReminderAt: 0.75, OwnerCalendars: map[string]*router.Calendar{}}
	cals := map[string]*router.Calendar{}
	for i, c := range f.Calendars {
		line := lineAt(calLines, i)
		who := fmt.Sprintf("calendar %q", c.Name)
		if !idPattern.MatchString(c.Name) {
			return nil, errAt(line, "calendar name %q: use lower-case letters, digits, '.', '_' or '-'", c.Name)
		}
		if cals[c.Name] != nil {
			return nil, errAt(line, "%s is declared twice", who)
		}
		loc, err := time.LoadLocation(c.TimeZone)
		if err != nil || c.TimeZone == "" {
			return nil, errAt(line, "%s: time_zone %q is not an IANA zone like Europe/Amsterdam", who, c.TimeZone)
		}
		cal := &router.Calendar{Name: c.Name, Location: loc, Holidays: map[string]bool{}}
		if len(c.Days) == 0 {
			return nil, errAt(line, "%s: days are required (days: [mon, tue, wed, thu, fri])", who)
		}
		for _, d := range c.Days {
			wd, ok := weekdays[strings.ToLower(d)]
			if !ok {
				return nil, errAt(line, "%s: day %q is not one of mon, tue, wed, thu, fri, sat, sun", who, d)
			}
			cal.Days[wd] = true
		}
		from, to, ok := strings.Cut(c.Hours, "-")
		start, err1 := clockTime(from)
		end, err2 := clockTime(to)
		if !ok || err1 != nil || err2 != nil {
			return nil, errAt(line, "%s: hours %q: want \"09:00-17:00\"", who, c.Hours)
		}
		cal.Start, cal.End = start, end
		for _, h := range c.Holidays {
			if _, err := time.Parse(time.DateOnly, h); err != nil {
				return nil, errAt(line, "%s: holiday %q is not a date like 2026-12-25", who, h)
			}
			cal.Holidays[h] = true
		}
		if err := cal.Validate(); err != nil {
			return nil, errAt(line, "%s: %v", who, err)
		}
		cals[c.Name] = cal
	}
	known := func() string { return strings.Join(slices.Sorted(maps.Keys(cals)), ", ") }
	if f.DefaultCalendar != "" {
		if p.DefaultCalendar = cals[f.DefaultCalendar]; p.DefaultCalendar == nil {
			return nil, errAt(keyLine("default_calendar"), "default_calendar %q is not declared (known: %s)", f.DefaultCalendar, known())
		}
	}
	if f.ReminderAt != nil {
		if *f.ReminderAt < 0 || *f.ReminderAt >= 1 {
			return nil, errAt(keyLine("reminder_at"), "reminder_at must be a fraction from 0 (no reminders) up to 1, like 0.75")
		}
		p.ReminderAt = *f.ReminderAt
	}
	if f.WaitingNudge != "" {
		if p.WaitingNudge, err = router.ParseSpan(f.WaitingNudge); err != nil {
			return nil, errAt(keyLine("waiting_nudge"), "waiting_nudge %v", err)
		}
	}
	seen := map[string]bool{}
	for i, t := range f.Targets {
		line := lineAt(targetLines, i)
		who := fmt.Sprintf("target %q", t.Name)
		if strings.TrimSpace(t.Name) == "" {
			return nil, errAt(line, "target %d has no name", i+1)
		}
		if seen[t.Name] {
			return nil, errAt(line, "%s is declared twice", who)
		}
		seen[t.Name] = true
		tg := router.Target{Name: t.Name, Priorities: t.Priorities, Teams: t.Teams}
		for _, c := range t.Channels {
			if !slices.Contains(router.KnownChannels, router.Channel(c)) {
				return nil, errAt(line, "%s: unknown channel %q (known: email, webhook, forum, chat)", who, c)
			}
			tg.Channels = append(tg.Channels, router.Channel(c))
		}
		for _, team := range t.Teams {
			if _, ok := roster.Team(team); !ok {
				return nil, errAt(line, "%s: team %q is not a team in the owners file", who, team)
			}
		}
		if t.FirstResponse == "" && t.Resolution == "" {
			return nil, errAt(line, "%s sets neither first_response nor resolution", who)
		}
		if t.FirstResponse != "" {
			if tg.FirstResponse, err = router.ParseSpan(t.FirstResponse); err != nil {
				return nil, errAt(line, "%s: first_response %v", who, err)
			}
		}
		if t.Resolution != "" {
			if tg.Resolution, err = router.ParseSpan(t.Resolution); err != nil {
				return nil, errAt(line, "%s: resolution %v", who, err)
			}
		}
		p.Targets = append(p.Targets, tg)
	}
	if r := f.ComplaintRate; r != nil {
		line := keyLine("complaint_rate")
		v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(r.Threshold), "%")), 64)
		if err != nil || v <= 0 || v > 100 || !strings.HasSuffix(strings.TrimSpace(r.Threshold), "%") {
			return nil, errAt(line, "complaint_rate.threshold %q: want a percentage like 1%%", r.Threshold)
		}
		if len(r.Alert) == 0 {
			return nil, errAt(line, "complaint_rate.alert: name the owners (team leads) to alert")
		}
		for _, o := range r.Alert {
			if _, ok := roster.Owner(o); !ok {
				return nil, errAt(line, "complaint_rate.alert: %q is not an owner", o)
			}
		}
		p.RateThreshold, p.RateAlert = v/100, r.Alert
	}
	if err := ownerSchedules(ownersPath, roster, cals, p); err != nil {
		return nil, err
	}
	return p, nil
}

// ownerSchedules reads the owners' calendars and planned absences.
func ownerSchedules(path string, roster *router.Roster, cals map[string]*router.Calendar, p *router.Policy) error {
	var f ownersFile
	doc, err := decodeStrict(path, &f)
	if err != nil {
		return err
	}
	lines, _ := itemLines(doc, "owners")
	for i, o := range f.Owners {
		line := lineAt(lines, i)
		errAt := func(format string, args ...any) error {
			return &fileError{path: path, line: line, msg: fmt.Sprintf("owner %q: ", o.ID) + fmt.Sprintf(format, args...)}
		}
		cal := p.DefaultCalendar
		if o.Calendar != "" {
			if cal = cals[o.Calendar]; cal == nil {
				return errAt("calendar %q is not declared in the targets file (known: %s)", o.Calendar, strings.Join(slices.Sorted(maps.Keys(cals)), ", "))
			}
			p.OwnerCalendars[o.ID] = cal
		}
		loc := time.UTC
		if cal != nil {
			loc = cal.Location
		}
		for _, a := range o.Away {
			from, err1 := dayOrTime(a.From, loc)
			until, err2 := dayOrTime(a.Until, loc)
			switch {
			case err1 != nil || err2 != nil:
				return errAt("away from %q until %q: want dates like 2026-12-21 (until is the day they are back) or RFC 3339 times", a.From, a.Until)
			case !until.After(from):
				return errAt("away until %s is not after %s", a.Until, a.From)
			case a.Cover == o.ID:
				return errAt("cannot cover for themselves")
			}
			if a.Cover != "" {
				if _, ok := roster.Owner(a.Cover); !ok {
					return errAt("away cover %q is not an owner", a.Cover)
				}
			}
			p.Absences = append(p.Absences, router.Absence{Owner: o.ID, From: from, Until: until, Cover: a.Cover, Note: a.Note})
		}
	}
	return nil
}

func clockTime(v string) (time.Duration, error) {
	t, err := time.Parse("15:04", strings.TrimSpace(v))
	if err != nil {
		if strings.TrimSpace(v) == "24:00" {
			return 24 * time.Hour, nil
		}
		return 0, err
	}
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, nil
}

func dayOrTime(v string, loc *time.Location) (time.Time, error) {
	if t, err := time.ParseInLocation(time.DateOnly, v, loc); err == nil {
		return t, nil
	}
	return time.Parse(time.RFC3339, v)
}
