package api

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/forgetmenot/forgetmenot/internal/httpx"
	"github.com/forgetmenot/forgetmenot/internal/report"
	"github.com/forgetmenot/forgetmenot/router"
)

// Accountability is the router's side of reports, volumes, away/cover and
// satisfaction answers.
type Accountability interface {
	Report(ctx context.Context, since, until time.Time) (router.Report, error)
	SetVolume(ctx context.Context, v router.Volume) (router.Volume, error)
	SetAway(ctx context.Context, a router.Absence, actor string) (router.Absence, error)
	Back(ctx context.Context, owner, actor string) error
	RecordCSAT(ctx context.Context, id string, score int, sig string) (router.Complaint, error)
}

// AccountabilityRoutes are the /v1 routes of issue 6, mounted by the
// daemon: every route needs the API token except the customers' one-click
// satisfaction links, which carry their own signature, and the weekly
// digest's report links (links, when given), signed for one period's HTML
// report. GET /v1/report is GET /v1/reports under the name the links use.
func AccountabilityRoutes(access Access, svc Accountability, clock func() time.Time, log *slog.Logger, links ...report.Links) map[string]http.Handler {
	if log == nil {
		log = slog.Default()
	}
	if clock == nil {
		clock = time.Now
	}
	a := &acct{svc: svc, s: &server{log: log}, clock: clock}
	if len(links) > 0 {
		a.links = &links[0]
	}
	withToken := access.Require(http.HandlerFunc(a.report))
	return map[string]http.Handler{
		"GET /v1/reports": withToken,
		"GET " + report.ReportPath: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if report.Signed(r.URL.Query()) {
				a.signedReport(w, r)
				return
			}
			withToken.ServeHTTP(w, r)
		}),
		"POST /v1/volume":            access.Require(http.HandlerFunc(a.volume)),
		"POST /v1/owners/{id}/away":  access.Require(http.HandlerFunc(a.away)),
		"POST /v1/owners/{id}/back":  access.Require(http.HandlerFunc(a.back)),
		"GET /v1/csat/{id}/{score}":  http.HandlerFunc(a.csat),
		"POST /v1/csat/{id}/{score}": http.HandlerFunc(a.csat),
	}
}

type acct struct {
	svc   Accountability
	s     *server
	clock func() time.Time
	links *report.Links
}

func (a *acct) report(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	// To the millisecond in UTC, as the report's generated_at and every
	// stored time: one moment does not print two ways in one answer.
	until, since := a.clock().UTC().Truncate(time.Millisecond), time.Time{}
	// A date is midnight where the report counts its weeks (the default
	// calendar's zone): 2026-11-30 in Amsterdam starts at 23:00 UTC the
	// day before, and a UTC midnight would split the week's first hour off.
	loc := time.UTC
	if l, ok := a.svc.(interface{ ReportLocation() *time.Location }); ok && l.ReportLocation() != nil {
		loc = l.ReportLocation()
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"until", &until}, {"since", &since}} {
		if v := q.Get(p.name); v != "" {
			t, err := router.ParseWhenIn(v, loc)
			if err != nil {
				httpx.WriteError(w, http.StatusBadRequest, p.name+" must be a date (2026-11-01) or an RFC 3339 time", p.name)
				return
			}
			*p.dst = t
		}
	}
	if since.IsZero() {
		since = until.AddDate(0, 0, -28)
	}
	format := q.Get("format")
	if format == "" {
		format = "json"
	}
	if format != "json" && format != "csv" && format != "text" && format != "html" {
		httpx.WriteError(w, http.StatusBadRequest, "format must be json, csv, text or html", "format")
		return
	}
	rep, err := a.svc.Report(r.Context(), since, until)
	if err != nil {
		a.s.fail(w, err)
		return
	}
	switch format {
	case "html":
		writeHTMLReport(w, rep, a.s.log)
	case "csv":
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		_ = WriteReportCSV(w, rep)
	case "text":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		WriteReportText(w, rep)
	default:
		httpx.WriteJSON(w, http.StatusOK, ReportJSON(rep))
	}
}

// Figures that nothing settled yet (no answered complaint for a median, no
// settled promise for a kept rate, no complaint for a reopen rate, no
// satisfaction answer for an average) are not 0: the text report shows "–"
// for them, the CSV leaves the value empty and the JSON has null.
func unsettled(rep router.Report) map[string]bool {
	return map[string]bool{
		"first_response": !rep.FirstResponse.Settled(),
		"resolution":     !rep.Resolution.Settled(),
		"kept_percent":   !rep.Promises.Settled(),
		"reopen_percent": rep.Complaints == 0,
		"csat":           rep.CSAT.Responses == 0,
	}
}

// ReportJSON is the report as GET /v1/reports?format=json answers it: the
// router's report, with null for figures nothing settled yet.
func ReportJSON(rep router.Report) json.RawMessage {
	raw, err := json.Marshal(rep)
	if err != nil {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return raw
	}
	un := unsettled(rep)
	null := func(obj map[string]any, section string, keys ...string) {
		if sec, ok := obj[section].(map[string]any); ok {
			for _, k := range keys {
				sec[k] = nil
			}
		}
	}
	if un["first_response"] {
		null(m, "first_response", "median_seconds", "p90_seconds")
	}
	if un["resolution"] {
		null(m, "resolution", "median_seconds", "p90_seconds")
	}
	if un["kept_percent"] {
		null(m, "promises", "kept_percent")
	}
	if un["reopen_percent"] {
		m["reopen_percent"] = nil
	}
	if un["csat"] {
		null(m, "csat", "average", "satisfied_percent")
	}
	// The same figures of each week and each owner: a week or an owner
	// with nothing settled reads null too, not 0.
	at := func(list string, i int) map[string]any {
		items, _ := m[list].([]any)
		if i >= len(items) {
			return nil
		}
		item, _ := items[i].(map[string]any)
		return item
	}
	for i, wk := range rep.Weeks {
		week := at("weeks", i)
		if week == nil {
			continue
		}
		if !wk.FirstResponse.Settled() {
			null(week, "first_response", "median_seconds", "p90_seconds")
		}
		if !wk.Resolution.Settled() {
			null(week, "resolution", "median_seconds", "p90_seconds")
		}
		if !wk.Promises.Settled() {
			null(week, "promises", "kept_percent")
		}
		if wk.Complaints == 0 {
			week["reopen_percent"] = nil
		}
	}
	for i, o := range rep.Owners {
		if owner := at("owners", i); owner != nil && !o.Promises.Settled() {
			null(owner, "promises", "kept_percent")
		}
	}
	out, err := json.Marshal(m)
	if err != nil {
		return raw
	}
	return out
}

// signedReport serves the HTML report of the period a digest's link was
// signed for, without a token: the signature is the permission, for that
// period and until the link expires.
func (a *acct) signedReport(w http.ResponseWriter, r *http.Request) {
	if a.links == nil {
		httpx.WriteError(w, http.StatusForbidden, "report links are not enabled on this daemon (FORGETMENOT_REPORT_LINK_SECRET); use the API token", "sig")
		return
	}
	since, until, err := a.links.Verify(r.URL.Query(), a.clock())
	if err != nil {
		httpx.WriteError(w, http.StatusForbidden, err.Error()+"; ask for a new link, or use the API token", "sig")
		return
	}
	rep, err := a.svc.Report(r.Context(), since, until)
	if err != nil {
		a.s.fail(w, err)
		return
	}
	w.Header().Set("Cache-Control", "private, no-store")
	writeHTMLReport(w, rep, a.s.log)
}

// writeHTMLReport sends the self-contained HTML page with its CSP also as a
// header (where frame-ancestors works).
func writeHTMLReport(w http.ResponseWriter, rep router.Report, log *slog.Logger) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", report.CSP+"; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	if err := report.WriteHTML(w, rep, report.Options{}); err != nil {
		log.Error("api: writing the HTML report", "err", err)
	}
}

// VolumeRequest is the body of POST /v1/volume.
type VolumeRequest struct {
	// Period is an ISO week: "2026-W48".
	Period string `json:"period"`
	Count  int    `json:"count"`
}

func (a *acct) volume(w http.ResponseWriter, r *http.Request) {
	var req VolumeRequest
	if !decodeBody(w, r, &req) {
		return
	}
	v, err := a.svc.SetVolume(r.Context(), router.Volume{Period: req.Period, Count: req.Count})
	if err != nil {
		a.s.fail(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, v)
}

// AwayRequest is the body of POST /v1/owners/{id}/away.
type AwayRequest struct {
	// From (optional, default now) and Until are RFC 3339 times or dates;
	// Until is when they are back.
	From  string `json:"from"`
	Until string `json:"until"`
	Cover string `json:"cover"`
	Note  string `json:"note"`
	Actor string `json:"actor"`
}

func (a *acct) away(w http.ResponseWriter, r *http.Request) {
	var req AwayRequest
	if !decodeBody(w, r, &req) {
		return
	}
	ab := router.Absence{Owner: r.PathValue("id"), Cover: req.Cover, Note: req.Note}
	// A date is the start of that day where the owner works, as in the
	// roster (owners.yaml): "until 2026-12-21" is the same moment both ways.
	loc := time.UTC
	if z, ok := a.svc.(interface{ OwnerTimeZone(string) *time.Location }); ok {
		loc = z.OwnerTimeZone(ab.Owner)
	}
	for _, p := range []struct {
		name, v string
		dst     *time.Time
	}{{"from", req.From, &ab.From}, {"until", req.Until, &ab.Until}} {
		if p.v == "" {
			continue
		}
		t, err := router.ParseWhenIn(p.v, loc)
		if err != nil {
			httpx.WriteError(w, http.StatusBadRequest, p.name+" must be a date (2026-12-21) or an RFC 3339 time", p.name)
			return
		}
		*p.dst = t
	}
	res, err := a.svc.SetAway(r.Context(), ab, req.Actor)
	if err != nil {
		a.s.fail(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, res)
}

func (a *acct) back(w http.ResponseWriter, r *http.Request) {
	var req ActorRequest
	if r.ContentLength != 0 && !decodeBody(w, r, &req) {
		return
	}
	id := r.PathValue("id")
	if err := a.svc.Back(r.Context(), id, req.Actor); err != nil {
		a.s.fail(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"back": id})
}

// csat records a one-click satisfaction answer and thanks the customer. A
// repeated click changes nothing; a different answer replaces the first.
// csat serves the customers' one-click satisfaction links. A GET only shows
// a page that submits the answer itself (a POST to the same signed URL):
// mail security scanners fetch every link in a mail, and must not answer
// five times for the customer; a person's click still needs nothing more.
func (a *acct) csat(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")
	lang := r.URL.Query().Get("lang")
	words, ok := csatPageWords[lang]
	if !ok {
		lang, words = "en", csatPageWords["en"]
	}
	page := func(status int, title, body string) {
		w.WriteHeader(status)
		fmt.Fprintf(w, "<!doctype html><html lang=\"%s\"><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>%s</title><body style=\"font-family:sans-serif;max-width:32em;margin:3em auto\"><h1>%s</h1>%s</body></html>\n",
			lang, html.EscapeString(title), html.EscapeString(title), body)
	}
	para := func(text string) string { return "<p>" + html.EscapeString(text) + "</p>" }
	score, err := strconv.Atoi(r.PathValue("score"))
	if err != nil {
		score = 0
	}
	if r.Method == http.MethodGet {
		label := router.CSATLabel(lang, score)
		if label == "" {
			page(http.StatusBadRequest, words.invalid, para(words.useLink))
			return
		}
		page(http.StatusOK, words.yourAnswer+label,
			`<form id="answer" method="post" action="`+html.EscapeString(r.URL.RequestURI())+`"><button type="submit">`+html.EscapeString(words.record)+`</button></form>`+
				`<script>document.getElementById("answer").submit()</script>`)
		return
	}
	_, err = a.svc.RecordCSAT(r.Context(), r.PathValue("id"), score, r.URL.Query().Get("sig"))
	if err != nil {
		var v *router.ValidationError
		if errors.As(err, &v) {
			why := csatProblems[lang][v.Code]
			if why == "" {
				why = words.sorry + v.Problem + "."
			}
			page(http.StatusBadRequest, words.cannot, para(why)+para(words.tellUs))
			return
		}
		if errors.Is(err, router.ErrNotFound) {
			page(http.StatusNotFound, words.notFound, para(words.notFoundText))
			return
		}
		a.s.log.Error("api: recording a satisfaction answer failed", "err", err)
		page(http.StatusServiceUnavailable, words.again, para(words.againText))
		return
	}
	page(http.StatusOK, words.thanks, para(words.thanksText))
}

// csatProblems word, in the customer's language, why a satisfaction link
// cannot record the answer (by the router's problem code).
var csatProblems = map[string]map[string]string{
	"en": {
		router.ProblemCSATScore:     "This is not one of the answers we asked for.",
		router.ProblemCSATSignature: "This link is not the one we sent: please use the link from our message exactly as it was sent.",
		router.ProblemCSATReopened:  "Your complaint is being handled again. We will ask you once more when it is resolved.",
		router.ProblemCSATExpired:   "This link has expired.",
		router.ProblemCSATChanged:   "You have changed your answer several times already; the last one stands.",
	},
	"nl": {
		router.ProblemCSATScore:     "Dit is geen van de antwoorden waar we om vroegen.",
		router.ProblemCSATSignature: "Dit is niet de link die we stuurden: gebruik de link uit ons bericht precies zoals die is verstuurd.",
		router.ProblemCSATReopened:  "Uw klacht wordt opnieuw behandeld. We vragen het u nog eens als die is opgelost.",
		router.ProblemCSATExpired:   "Deze link is verlopen.",
		router.ProblemCSATChanged:   "U heeft uw antwoord al een paar keer gewijzigd; het laatste blijft staan.",
	},
	"de": {
		router.ProblemCSATScore:     "Das ist keine der Antworten, nach denen wir gefragt haben.",
		router.ProblemCSATSignature: "Das ist nicht der Link, den wir geschickt haben: Bitte verwenden Sie den Link aus unserer Nachricht genau so, wie er verschickt wurde.",
		router.ProblemCSATReopened:  "Ihre Beschwerde wird erneut bearbeitet. Wir fragen Sie noch einmal, wenn sie gelöst ist.",
		router.ProblemCSATExpired:   "Dieser Link ist abgelaufen.",
		router.ProblemCSATChanged:   "Sie haben Ihre Antwort bereits mehrmals geändert; die letzte gilt.",
	},
	"fr": {
		router.ProblemCSATScore:     "Ce n'est pas l'une des réponses proposées.",
		router.ProblemCSATSignature: "Ce lien n'est pas celui que nous avons envoyé : veuillez utiliser le lien de notre message tel qu'il a été envoyé.",
		router.ProblemCSATReopened:  "Votre réclamation est de nouveau en cours de traitement. Nous vous reposerons la question une fois qu'elle sera résolue.",
		router.ProblemCSATExpired:   "Ce lien a expiré.",
		router.ProblemCSATChanged:   "Vous avez déjà modifié votre réponse plusieurs fois ; la dernière est retenue.",
	},
}

// csatPageWords word the satisfaction page in the languages the question
// is sent in (the link names the language).
var csatPageWords = map[string]struct {
	invalid, useLink, yourAnswer, record, cannot, sorry, tellUs, notFound, notFoundText, again, againText, thanks, thanksText string
}{
	"en": {"This link is not valid", "Please use the link from our message exactly as it was sent.", "Your answer: ", "Record my answer",
		"This link cannot record an answer", "Sorry: ", "If you want to tell us more, simply answer our message.",
		"Not found", "We could not find this complaint.", "Please try again", "We could not record your answer just now; please click the link again in a minute.",
		"Thank you", "Your answer has been recorded. Thank you for letting us know."},
	"nl": {"Deze link is niet geldig", "Gebruik de link uit ons bericht precies zoals die is verstuurd.", "Uw antwoord: ", "Mijn antwoord vastleggen",
		"Met deze link kan geen antwoord worden vastgelegd", "Sorry: ", "Wilt u ons meer vertellen? Beantwoord dan gewoon ons bericht.",
		"Niet gevonden", "We konden deze klacht niet vinden.", "Probeer het nog eens", "We konden uw antwoord nu niet vastleggen; klik over een minuut nog eens op de link.",
		"Dank u wel", "Uw antwoord is vastgelegd. Dank u dat u het ons laat weten."},
	"de": {"Dieser Link ist ungültig", "Bitte verwenden Sie den Link aus unserer Nachricht genau so, wie er verschickt wurde.", "Ihre Antwort: ", "Meine Antwort speichern",
		"Mit diesem Link kann keine Antwort gespeichert werden", "Entschuldigung: ", "Wenn Sie uns mehr sagen möchten, antworten Sie einfach auf unsere Nachricht.",
		"Nicht gefunden", "Wir konnten diese Beschwerde nicht finden.", "Bitte versuchen Sie es erneut", "Wir konnten Ihre Antwort gerade nicht speichern; bitte klicken Sie in einer Minute erneut auf den Link.",
		"Vielen Dank", "Ihre Antwort wurde gespeichert. Danke, dass Sie uns Bescheid geben."},
	"fr": {"Ce lien n'est pas valide", "Veuillez utiliser le lien de notre message tel qu'il a été envoyé.", "Votre réponse : ", "Enregistrer ma réponse",
		"Ce lien ne permet pas d'enregistrer une réponse", "Désolés : ", "Si vous souhaitez nous en dire plus, répondez simplement à notre message.",
		"Introuvable", "Nous n'avons pas trouvé cette réclamation.", "Veuillez réessayer", "Nous n'avons pas pu enregistrer votre réponse pour le moment ; veuillez cliquer à nouveau sur le lien dans une minute.",
		"Merci", "Votre réponse a été enregistrée. Merci de nous l'avoir fait savoir."},
}

// reportBound shows a bound of the report's period: its date when it is
// midnight (the usual case), else with its time, so a period within one day
// does not read "2026-12-02 to 2026-12-02".
func reportBound(t time.Time) string {
	if h, m, s := t.Clock(); h == 0 && m == 0 && s == 0 && t.Nanosecond() == 0 {
		return t.Format(time.DateOnly)
	}
	return t.Format("2006-01-02 15:04:05 MST")
}

// WriteReportText renders the report for people.
func WriteReportText(w io.Writer, rep router.Report) {
	un := unsettled(rep)
	const none = "–" // nothing settled: no figure, rather than a misleading 0
	dur := func(s float64, settled bool) string {
		d := time.Duration(s * float64(time.Second))
		switch {
		case !settled:
			return none
		case d >= 48*time.Hour:
			return fmt.Sprintf("%.1fd", d.Hours()/24)
		case d < time.Minute:
			return d.Round(time.Second).String() // a 16 s answer is not "0s"
		default:
			return d.Round(time.Minute).String()
		}
	}
	fmt.Fprintf(w, "Complaints opened %s to %s: %d\n", reportBound(rep.Since), reportBound(rep.Until), rep.Complaints)
	if rep.WeeksLeftOut > 0 {
		fmt.Fprintf(w, "Weekly figures: the last %d weeks; the %d weeks before are in the totals only.\n", len(rep.Weeks), rep.WeeksLeftOut)
	}
	counts := func(title string, cs []router.Count) {
		if len(cs) == 0 {
			return
		}
		fmt.Fprintf(w, "\n%s:\n", title)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, c := range cs {
			fmt.Fprintf(tw, "  %s\t%d\n", c.Name, c.Count)
		}
		tw.Flush()
	}
	counts("By channel", rep.ByChannel)
	counts("By category", rep.ByCategory)
	counts("By week", rep.ByWeek)
	basis := "wall-clock time (no working calendar)"
	if rep.BusinessTime {
		basis = "business time of the owners' working calendars"
	}
	fmt.Fprintf(w, "\nDurations in %s.\n", basis)
	fmt.Fprintf(w, "First response: median %s, 90th percentile %s (%d answered)\n", dur(rep.FirstResponse.MedianSeconds, !un["first_response"]), dur(rep.FirstResponse.P90Seconds, !un["first_response"]), rep.FirstResponse.Count)
	fmt.Fprintf(w, "Resolution:     median %s, 90th percentile %s (%d closed)\n", dur(rep.Resolution.MedianSeconds, !un["resolution"]), dur(rep.Resolution.P90Seconds, !un["resolution"]), rep.Resolution.Count)
	p := rep.Promises
	percent := func(v float64, settled bool) string {
		if !settled {
			return none
		}
		return fmt.Sprintf("%.1f%%", v)
	}
	fmt.Fprintf(w, "Promises:       %d made, %d kept, %d broken, %d pending (%s of settled kept)\n", p.Made, p.Kept, p.Broken, p.Pending, percent(p.KeptPercent, !un["kept_percent"]))
	fmt.Fprintf(w, "Reopened:       %d (%s)\n", rep.Reopened, percent(rep.ReopenPercent, !un["reopen_percent"]))
	fmt.Fprintf(w, "Overdue now:    %d\n", rep.Overdue)
	counts("Breaches (deadlines missed in the period, whenever opened)", rep.Breaches)
	counts("Top root causes", rep.TopCauses)
	if c := rep.CSAT; c.Responses > 0 {
		fmt.Fprintf(w, "\nSatisfaction: %d answers, average %.2f of 5, %.1f%% satisfied (4-5)\n", c.Responses, c.Average, c.SatisfiedPercent)
	} else {
		fmt.Fprintf(w, "\nSatisfaction: no answers (average %s)\n", none)
	}
	if len(rep.Rates) > 0 {
		fmt.Fprintln(w, "\nComplaint rate:")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, r := range rep.Rates {
			alert := ""
			if r.Alert {
				alert = "  ALERT"
			}
			fmt.Fprintf(tw, "  %s\t%d of %d\t%.2f%%%s\n", r.Period, r.Complaints, r.Volume, r.Percent, alert)
		}
		tw.Flush()
	}
	fmt.Fprintln(w, "\nOwners (now):")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  OWNER\tOPEN\tCAPACITY\tOVERDUE\tPROMISES KEPT")
	for _, o := range rep.Owners {
		capacity := "-"
		if o.Capacity > 0 {
			capacity = strconv.Itoa(o.Capacity)
			if o.OverCapacity {
				capacity += " (over)"
			}
		}
		fmt.Fprintf(tw, "  %s\t%d\t%s\t%d\t%d of %d\n", o.Owner, o.Open, capacity, o.Overdue, o.Promises.Kept, o.Promises.Kept+o.Promises.Broken)
	}
	tw.Flush()
	if len(rep.Prevention) > 0 {
		fmt.Fprintln(w, "\nWhat would prevent the next one:")
		for _, p := range rep.Prevention {
			fmt.Fprintf(w, "  %s:\n", p.Category)
			for _, n := range p.Notes {
				fmt.Fprintf(w, "    - %s (%s, %s)\n", n.Note, n.Complaint, n.Owner)
			}
		}
	}
}

// WriteReportCSV renders the report as section,name,value rows, one figure
// per row, for spreadsheets.
func WriteReportCSV(w io.Writer, rep router.Report) error {
	cw := csv.NewWriter(w)
	row := func(section, name string, value any) { _ = cw.Write([]string{section, name, fmt.Sprint(value)}) }
	un := unsettled(rep)
	// maybe leaves the value empty (not 0) when nothing settled it.
	maybe := func(section, name string, value any, none bool) {
		if none {
			_ = cw.Write([]string{section, name, ""})
			return
		}
		row(section, name, value)
	}
	row("section", "name", "value")
	row("period", "since", rep.Since.Format(time.RFC3339))
	row("period", "until", rep.Until.Format(time.RFC3339))
	row("total", "complaints", rep.Complaints)
	for _, s := range []struct {
		name string
		cs   []router.Count
	}{{"channel", rep.ByChannel}, {"category", rep.ByCategory}, {"week", rep.ByWeek}, {"breach", rep.Breaches}, {"root_cause", rep.TopCauses}} {
		for _, c := range s.cs {
			row(s.name, c.Name, c.Count)
		}
	}
	basis := "wall_clock"
	if rep.BusinessTime {
		basis = "business"
	}
	row("durations", "basis", basis)
	maybe("first_response", "median_seconds", rep.FirstResponse.MedianSeconds, un["first_response"])
	maybe("first_response", "p90_seconds", rep.FirstResponse.P90Seconds, un["first_response"])
	maybe("resolution", "median_seconds", rep.Resolution.MedianSeconds, un["resolution"])
	maybe("resolution", "p90_seconds", rep.Resolution.P90Seconds, un["resolution"])
	row("promises", "made", rep.Promises.Made)
	row("promises", "kept", rep.Promises.Kept)
	row("promises", "broken", rep.Promises.Broken)
	row("promises", "pending", rep.Promises.Pending)
	maybe("promises", "kept_percent", rep.Promises.KeptPercent, un["kept_percent"])
	row("reopen", "count", rep.Reopened)
	maybe("reopen", "percent", rep.ReopenPercent, un["reopen_percent"])
	row("csat", "responses", rep.CSAT.Responses)
	maybe("csat", "average", rep.CSAT.Average, un["csat"])
	maybe("csat", "satisfied_percent", rep.CSAT.SatisfiedPercent, un["csat"])
	for _, r := range rep.Rates {
		row("complaint_rate", r.Period, strconv.FormatFloat(r.Percent, 'f', 2, 64))
	}
	for _, o := range rep.Owners {
		row("owner_open", o.Owner, o.Open)
		row("owner_overdue", o.Owner, o.Overdue)
		row("owner_capacity", o.Owner, o.Capacity)
		row("owner_promises_kept", o.Owner, o.Promises.Kept)
		row("owner_promises_broken", o.Owner, o.Promises.Broken)
	}
	for _, wk := range rep.Weeks {
		row("week_complaints", wk.Week, wk.Complaints)
		maybe("week_first_response_median_seconds", wk.Week, wk.FirstResponse.MedianSeconds, !wk.FirstResponse.Settled())
		maybe("week_first_response_p90_seconds", wk.Week, wk.FirstResponse.P90Seconds, !wk.FirstResponse.Settled())
		maybe("week_resolution_median_seconds", wk.Week, wk.Resolution.MedianSeconds, !wk.Resolution.Settled())
		maybe("week_resolution_p90_seconds", wk.Week, wk.Resolution.P90Seconds, !wk.Resolution.Settled())
		row("week_promises_kept", wk.Week, wk.Promises.Kept)
		row("week_promises_broken", wk.Week, wk.Promises.Broken)
		maybe("week_reopen_percent", wk.Week, wk.ReopenPercent, wk.Complaints == 0)
	}
	for _, p := range rep.Prevention {
		for _, n := range p.Notes {
			row("prevention", spreadsheetSafe(p.Category), spreadsheetSafe(n.Note))
		}
	}
	row("total", "overdue", rep.Overdue)
	cw.Flush()
	return cw.Error()
}

// spreadsheetSafe keeps staff text from being read as a formula by a
// spreadsheet that opens the CSV (=, +, -, @ lead a formula).
func spreadsheetSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
