package privacy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/forgetmenot/forgetmenot/queue"
	"github.com/forgetmenot/forgetmenot/router"
)

// EraseRequest asks to erase one customer.
type EraseRequest struct {
	// Customer is an e-mail address or a customer key (see CustomerKey).
	Customer string `json:"customer"`
	Reason   string `json:"reason"`
	Actor    string `json:"actor"`
	// Force closes open complaints ("erased on request") instead of refusing.
	Force bool `json:"force"`
	// Category is the root cause recorded on the complaints a forced
	// erasure closes (optional: one of the configured categories, or none).
	Category string `json:"category,omitempty"`
}

// EraseResult reports an erasure.
type EraseResult struct {
	Erasure   string `json:"erasure"`
	Pseudonym string `json:"pseudonym,omitempty"`
	// Complaints are the erased complaints (ids stay), Closed those of them
	// the erasure closed.
	Complaints []string `json:"complaints"`
	Closed     []string `json:"closed,omitempty"`
	// Entries counts queued work removed (pending messages, notifications,
	// replies, dead letters); StateKeys the channel records removed or
	// redacted.
	Entries   int `json:"entries"`
	StateKeys int `json:"state_keys"`
	// Resumed says an earlier, interrupted erasure of the customer was
	// finished.
	Resumed bool `json:"resumed,omitempty"`
	// NotErased says what is beyond forgetmenot's reach.
	NotErased []string `json:"not_erased"`
}

// notErased is what no erasure here can reach.
var notErased = []string{
	"e-mails already sent to the customer (and their copies in the sending mailbox), and notifications e-mailed to staff when Slack could not be reached",
	"Slack messages outside the complaints' threads (the lead channel, replies posted before threads recorded their replies), and copies Slack users made; top messages are updated to the pseudonym and thread replies redacted",
	"forum posts the customer wrote on Discourse (erase them there)",
	"mail the customer sent that is still in the support mailbox (delete it there; a mailbox read again from the start takes in mail without the mailbox's keyword again once its dedup key is gone)",
	"Redis persistence files (AOF/RDB) until they are rewritten: run BGREWRITEAOF and BGSAVE after erasing, and mind backups",
}

// job is an erasure in progress, kept in Redis so a crash resumes it. It
// holds the identities being erased, and is deleted when the erasure ends.
type job struct {
	ID         string      `json:"id"`
	Pseudonym  string      `json:"pseudonym"`
	Actor      string      `json:"actor"`
	Reason     string      `json:"reason"`
	Force      bool        `json:"force"`
	Category   string      `json:"category,omitempty"`
	Started    time.Time   `json:"started"`
	Step       string      `json:"step"`
	Pass       int         `json:"pass"`
	Identities []string    `json:"identities"`
	Tokens     tokens      `json:"tokens"`
	Complaints []string    `json:"complaints"`
	Open       []string    `json:"open,omitempty"`
	Closed     []string    `json:"closed,omitempty"`
	Done       []string    `json:"done,omitempty"`
	Dedup      [][2]string `json:"dedup,omitempty"`
	Entries    int         `json:"entries"`
	StateKeys  int         `json:"state_keys"`
}

// Steps of an erasure, in order. Each is idempotent, and the job is saved
// after each, so a crash at any point resumes where it stopped. The channel
// records are cleaned before the complaints are rewritten: rewriting queues
// the owners' "erased" notification, whose Slack update must find the
// thread's headline already without the customer.
const (
	stepClose   = "close"
	stepState   = "state"
	stepErase   = "erase"
	stepStreams = "streams"
	stepVerify  = "verify"
)

// maxPasses bounds how often an erasure goes round again for complaints
// that arrived while it ran.
const maxPasses = 3

const (
	maxReasonLen = 1000
	maxActorLen  = 200
)

// Erase removes the customer's personal data everywhere forgetmenot wrote
// it, keeping their complaints under a pseudonym. Asking again for the same
// customer resumes an interrupted erasure, or finds nothing left to erase.
func (s *Service) Erase(ctx context.Context, req EraseRequest) (EraseResult, error) {
	key, err := CustomerKey(req.Customer)
	if err != nil {
		return EraseResult{}, err
	}
	req.Reason, req.Actor = strings.TrimSpace(req.Reason), strings.TrimSpace(req.Actor)
	switch {
	case req.Reason == "":
		return EraseResult{}, &router.ValidationError{Field: "reason", Problem: "is required: say why (a request by the customer, on date …)"}
	case len(req.Reason) > maxReasonLen:
		return EraseResult{}, &router.ValidationError{Field: "reason", Problem: fmt.Sprintf("is longer than %d bytes", maxReasonLen)}
	case req.Actor == "":
		return EraseResult{}, &router.ValidationError{Field: "actor", Problem: "is required: who erases (an owner id)"}
	case len(req.Actor) > maxActorLen || strings.ContainsFunc(req.Actor, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return EraseResult{}, &router.ValidationError{Field: "actor", Problem: "is not a name (too long or control characters)"}
	}
	id := erasureID(key)
	raw, found, err := s.store.Erasure(ctx, id)
	if err != nil {
		return EraseResult{}, fmt.Errorf("reading erasure %s: %w", id, err)
	}
	if found {
		var j job
		if err := json.Unmarshal([]byte(raw), &j); err != nil {
			return EraseResult{}, fmt.Errorf("reading erasure %s: %w", id, err)
		}
		s.log.Info("resuming an interrupted erasure", "erasure", id, "step", j.Step)
		res, err := s.run(ctx, &j)
		res.Resumed = true
		return res, err
	}
	cu, err := s.find(ctx, []string{key})
	if err != nil {
		return EraseResult{}, err
	}
	j := &job{ID: id, Pseudonym: newPseudonym(), Actor: req.Actor, Reason: req.Reason, Force: req.Force, Category: strings.TrimSpace(req.Category),
		Started: s.clock().UTC(), Step: stepClose, Identities: cu.identities}
	j.absorb(cu)
	if len(j.Complaints) == 0 && len(cu.pending) == 0 {
		return EraseResult{Erasure: id, Complaints: []string{}, NotErased: notErased}, nil
	}
	if len(j.Open) > 0 && !req.Force {
		return EraseResult{}, fmt.Errorf("%s: %w", strings.Join(j.Open, ", "), ErrOpen)
	}
	b, err := json.Marshal(j)
	if err != nil {
		return EraseResult{}, err
	}
	created, err := s.store.CreateErasure(ctx, j.ID, b)
	if err != nil {
		return EraseResult{}, fmt.Errorf("recording erasure %s: %w", j.ID, err)
	}
	if !created {
		// Asked at the same moment elsewhere: join that erasure.
		return s.Erase(ctx, req)
	}
	return s.run(ctx, j)
}

// absorb adds what was found to the job.
func (j *job) absorb(cu customer) {
	for _, c := range cu.complaints {
		if strings.HasPrefix(c.CustomerKey, ErasedKeyPrefix) {
			continue // erased before: nothing of the customer left in it
		}
		if !slices.Contains(j.Complaints, c.ID) {
			j.Complaints = append(j.Complaints, c.ID)
		}
		if c.Status == router.StatusOpen && !slices.Contains(j.Open, c.ID) {
			j.Open = append(j.Open, c.ID)
		}
	}
	for _, id := range cu.identities {
		if !slices.Contains(j.Identities, id) {
			j.Identities = append(j.Identities, id)
		}
	}
	j.Tokens.add(tokensOf(cu.identities, cu.complaints, cu.timelines, cu.pending))
}

func (s *Service) save(ctx context.Context, j *job) error {
	b, err := json.Marshal(j)
	if err != nil {
		return err
	}
	if err := s.store.SaveErasure(ctx, j.ID, b); err != nil {
		return fmt.Errorf("recording erasure %s: %w", j.ID, err)
	}
	return nil
}

// resultOf is the result of a finished erasure (by this runner, or by
// another that worked on it at the same time).
func resultOf(j *job) EraseResult {
	return EraseResult{Erasure: j.ID, Pseudonym: j.Pseudonym, Complaints: j.Complaints, Closed: j.Closed,
		Entries: j.Entries, StateKeys: j.StateKeys, NotErased: notErased}
}

// advance saves the job at its next step, then passes the test's crash point.
func (s *Service) advance(ctx context.Context, j *job, step string) error {
	done := j.Step
	j.Step = step
	if err := s.save(ctx, j); err != nil {
		return err
	}
	if s.crash(done) {
		return fmt.Errorf("after %s: %w", done, errCrash)
	}
	return nil
}

// Resume finishes every interrupted erasure (at start, and on the
// background round).
func (s *Service) Resume(ctx context.Context) (int, error) {
	all, err := s.store.Erasures(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for id, raw := range all {
		var j job
		if err := json.Unmarshal([]byte(raw), &j); err != nil {
			s.log.Error("unreadable erasure in progress", "erasure", id, "err", err)
			continue
		}
		if _, err := s.run(ctx, &j); err != nil {
			return n, fmt.Errorf("resuming erasure %s: %w", id, err)
		}
		n++
	}
	return n, nil
}

func (s *Service) run(ctx context.Context, j *job) (EraseResult, error) {
	res, err := s.steps(ctx, j)
	if errors.Is(err, queue.ErrErasureFinished) {
		return resultOf(j), nil
	}
	return res, err
}

func (s *Service) steps(ctx context.Context, j *job) (EraseResult, error) {
	for {
		switch j.Step {
		case stepClose:
			for _, id := range j.Open {
				if slices.Contains(j.Closed, id) {
					continue
				}
				_, err := s.closer.CloseWith(ctx, id, closeActor(j.Actor), router.Closing{Resolution: ErasedResolution, Category: j.Category, Quiet: true})
				var invalid *router.ValidationError
				switch {
				case err == nil:
					j.Closed = append(j.Closed, id)
				case errors.Is(err, router.ErrInvalidState):
					// Closed meanwhile (or by this erasure before a crash).
				case errors.As(err, &invalid) && len(j.Closed) == 0 && j.Pass == 0:
					// The router refuses the actor or the category: nothing
					// changed yet, so the erasure is refused as a whole rather
					// than left pending.
					if derr := s.store.DropErasure(ctx, j.ID); derr != nil {
						return EraseResult{}, fmt.Errorf("%w (and forgetting the refused erasure failed: %v)", err, derr)
					}
					return EraseResult{}, err
				default:
					return EraseResult{}, fmt.Errorf("closing %s before erasing it: %w", id, err)
				}
			}
			if err := s.advance(ctx, j, stepState); err != nil {
				return EraseResult{}, err
			}
		case stepErase:
			p := j.Tokens.personal(j.Complaints)
			var todo []string
			for _, id := range j.Complaints {
				if !slices.Contains(j.Done, id) {
					todo = append(todo, id)
				}
			}
			// One scan of the indexes for all the complaints left, not one
			// per complaint (a resume reads them again for those left).
			idx, err := s.readIndexes(ctx, todo)
			if err != nil {
				return EraseResult{}, err
			}
			for _, id := range todo {
				dedup, err := s.eraseComplaint(ctx, id, p, j.Identities, erasure{pseudonym: j.Pseudonym, actor: j.Actor, reason: j.Reason, id: j.ID}, idx)
				if errors.Is(err, errAlreadyErased) {
					err = nil
				}
				if err != nil {
					return EraseResult{}, err
				}
				j.Done = append(j.Done, id)
				j.Dedup = append(j.Dedup, dedup...)
				if err := s.save(ctx, j); err != nil {
					return EraseResult{}, err
				}
				if s.crash("complaint") {
					return EraseResult{}, fmt.Errorf("after erasing %s: %w", id, errCrash)
				}
			}
			if err := s.advance(ctx, j, stepStreams); err != nil {
				return EraseResult{}, err
			}
		case stepStreams:
			p := j.Tokens.personal(j.Complaints)
			p.Pseudonym = j.Pseudonym
			dedup, n, err := s.store.PurgeStreams(ctx, p)
			if err != nil {
				return EraseResult{}, fmt.Errorf("removing queued work: %w", err)
			}
			if err := s.store.DeleteDedup(ctx, append(j.Dedup, dedup...)); err != nil {
				return EraseResult{}, fmt.Errorf("removing dedup keys: %w", err)
			}
			j.Entries += n
			j.Dedup = nil
			if err := s.advance(ctx, j, stepVerify); err != nil {
				return EraseResult{}, err
			}
		case stepState:
			n, err := s.store.CleanState(ctx, j.Tokens.personal(j.Complaints))
			if err != nil {
				return EraseResult{}, fmt.Errorf("cleaning channel state: %w", err)
			}
			j.StateKeys += n
			if err := s.advance(ctx, j, stepErase); err != nil {
				return EraseResult{}, err
			}
		case stepVerify:
			// Complaints that arrived while the erasure ran: go round again.
			cu, err := s.find(ctx, j.Identities)
			if err != nil {
				return EraseResult{}, err
			}
			before := len(j.Complaints)
			j.absorb(cu)
			if (len(j.Complaints) > before || len(cu.pending) > 0) && j.Pass < maxPasses {
				j.Pass++
				if err := s.advance(ctx, j, stepClose); err != nil {
					return EraseResult{}, err
				}
				continue
			}
			// Deliveries that were in flight may have written channel
			// records (an acknowledgement's rate-limit key) since the state
			// step: clean once more.
			n, err := s.store.CleanState(ctx, j.Tokens.personal(j.Complaints))
			if err != nil {
				return EraseResult{}, fmt.Errorf("cleaning channel state: %w", err)
			}
			j.StateKeys += n
			audit := map[string]string{
				"kind": "request", "erasure": j.ID, "pseudonym": j.Pseudonym, "actor": j.Actor,
				"reason":     j.Tokens.personal(nil).WithNameParts().Redact(j.Reason, queue.RedactedMark),
				"complaints": strconv.Itoa(len(j.Complaints)), "ids": strings.Join(j.Complaints, ","),
				"closed": strings.Join(j.Closed, ","), "entries": strconv.Itoa(j.Entries), "state_keys": strconv.Itoa(j.StateKeys),
				"started": j.Started.Format(time.RFC3339), "finished": s.clock().UTC().Format(time.RFC3339),
			}
			if err := s.store.FinishErasure(ctx, j.ID, audit); err != nil {
				return EraseResult{}, fmt.Errorf("finishing erasure %s: %w", j.ID, err)
			}
			s.log.Info("customer erased", "erasure", j.ID, "pseudonym", j.Pseudonym, "actor", j.Actor, "complaints", len(j.Complaints))
			return resultOf(j), nil
		default:
			return EraseResult{}, fmt.Errorf("erasure %s is at an unknown step %q", j.ID, j.Step)
		}
	}
}

// erasure is what one complaint's erasure records.
type erasure struct {
	pseudonym, actor, reason, id string
	// audit, for a retention erasure, is recorded with the complaint.
	audit map[string]string
}

// maxEraseAttempts bounds retries of a complaint that keeps changing.
const maxEraseAttempts = 10

// errAlreadyErased: the complaint was erased before (by another replica, or
// an attempt before a crash).
var errAlreadyErased = errors.New("erased already")

// indexes is what the thread index and the once-keys held for complaints,
// read in one scan for all of them, with each complaint's version read
// before that scan.
type indexes struct {
	threads, once map[string][]string
	version       map[string]int64
}

// readIndexes reads the complaints' versions, then the index fields that
// point at them. A complaint still at the version read holds no index field
// the scan missed, as when its fields are read after the complaint itself.
func (s *Service) readIndexes(ctx context.Context, ids []string) (*indexes, error) {
	idx := &indexes{version: make(map[string]int64, len(ids))}
	if len(ids) == 0 {
		return idx, nil
	}
	for _, id := range ids {
		c, err := s.store.Complaint(ctx, id)
		if errors.Is(err, router.ErrNotFound) {
			continue // eraseComplaint finds it gone
		}
		if err != nil {
			return nil, err
		}
		idx.version[id] = c.Version
	}
	return s.scanIndexes(ctx, idx.version)
}

// scanIndexes reads, in one scan, the index fields pointing at the
// complaints whose versions (read before) are given.
func (s *Service) scanIndexes(ctx context.Context, version map[string]int64) (*indexes, error) {
	idx := &indexes{version: version}
	if len(version) == 0 {
		return idx, nil
	}
	ids := make([]string, 0, len(version))
	for id := range version {
		ids = append(ids, id)
	}
	var err error
	if idx.threads, idx.once, err = s.store.IndexedFields(ctx, ids); err != nil {
		return nil, err
	}
	return idx, nil
}

// fieldsOf returns the index fields of c: from idx when c is still at the
// version read before idx's scan, else (c changed since, or no idx) from a
// scan for c alone.
func (s *Service) fieldsOf(ctx context.Context, id string, c router.Complaint, idx *indexes) (threads, once []string, err error) {
	if idx != nil {
		if v, ok := idx.version[id]; ok && v == c.Version {
			return idx.threads[id], idx.once[id], nil
		}
	}
	th, on, err := s.store.IndexedFields(ctx, []string{id})
	if err != nil {
		return nil, nil, err
	}
	return th[id], on[id], nil
}

// eraseComplaint pseudonymises one complaint in one atomic step (retried
// while it changes under it). It returns the dedup keys of its messages, or
// errAlreadyErased. idx, if not nil, holds the complaint's index fields as
// read for a batch.
func (s *Service) eraseComplaint(ctx context.Context, id string, p *queue.PersonalData, identities []string, e erasure, idx *indexes) ([][2]string, error) {
	for attempt := 1; ; attempt++ {
		erased, err := s.store.WhichErased(ctx, []string{id})
		if err != nil {
			return nil, err
		}
		if erased[id] {
			return nil, errAlreadyErased
		}
		c, err := s.store.Complaint(ctx, id)
		if errors.Is(err, router.ErrNotFound) {
			return nil, errAlreadyErased
		}
		if err != nil {
			return nil, err
		}
		tl, err := s.store.Timeline(ctx, id)
		if err != nil {
			return nil, err
		}
		threads, once, err := s.fieldsOf(ctx, id, c, idx)
		if err != nil {
			return nil, err
		}
		// This complaint's own traces too (a Reply-To only it knew).
		mine := tokensOf(complaintIdentities(c, tl), []router.Complaint{c}, map[string][]router.Entry{id: tl}, nil)
		mine.add(tokens{Strong: p.Strong(), Names: p.Names()})
		own := mine.personal(nil)
		now := s.clock().UTC()
		ps := pseudonymise(c, tl, own, e, now)
		ps.ThreadKeys = threads
		for _, f := range once {
			if own.Identifies(f) {
				ps.OnceKeys = append(ps.OnceKeys, f)
			}
		}
		// The lines this complaint left on the complaints its first message
		// mentioned named its sender before they were worded without: they
		// go first, so that a retry after a failure here still finds them.
		for _, other := range mentionedBy(tl) {
			if _, err := s.store.ScrubMentions(ctx, other, id); err != nil {
				return nil, fmt.Errorf("removing the sender from the mention line on %s: %w", other, err)
			}
		}
		ps.CustomerKeys = append(complaintIdentities(c, tl), identities...)
		for _, en := range tl {
			if m := en.Message; m != nil && m.SourceID != "" {
				ps.DedupKeys = append(ps.DedupKeys, [2]string{string(m.Channel), m.SourceID})
			}
		}
		err = s.store.ReplacePseudonymised(ctx, ps)
		switch {
		case err == nil:
			return ps.DedupKeys, nil
		case errors.Is(err, router.ErrDuplicate):
			return nil, errAlreadyErased
		case errors.Is(err, router.ErrConflict) && attempt < maxEraseAttempts:
			time.Sleep(time.Duration(attempt*20) * time.Millisecond)
		default:
			return nil, err
		}
	}
}

// mentionedBy lists the complaints on which the complaint of timeline tl
// left a "mentioned" line: its "opened" event lists them, or, written
// before it did, says "mentions C-1001 (by …)" for each.
func mentionedBy(tl []router.Entry) []string {
	var out []string
	for _, e := range tl {
		ev := e.Event
		if ev == nil || ev.Type != router.EventOpened {
			continue
		}
		if list := ev.Details[router.DetailMentions]; list != "" {
			out = append(out, strings.Split(list, ",")...)
			continue
		}
		for _, m := range legacyMention.FindAllStringSubmatch(ev.Reason, -1) {
			out = append(out, m[1])
		}
	}
	return out
}

var legacyMention = regexp.MustCompile(`mentions (\S+) \(by `)

// closeActor is who closes an open complaint for a forced erasure: the
// erasure on behalf of whoever asked for it. A data protection officer who
// is no owner on the roster may ask ("erasure:dpo"), as without --force.
func closeActor(actor string) string {
	if strings.Contains(actor, ":") {
		return actor
	}
	return "erasure:" + actor
}

// pseudonymise computes a complaint's erased form: the customer becomes the
// pseudonym; what the business keeps for its reports stays (ids, owner,
// team, channel, dates, category, deadlines, breaches, promise counts, CSAT
// score); resolutions, prevention notes and reasons are kept without the
// customer's names and addresses; what the customer wrote, and the texts of
// staff replies, notes and promises (which quote and address them), are gone.
func pseudonymise(c router.Complaint, tl []router.Entry, p *queue.PersonalData, e erasure, now time.Time) queue.Pseudonymised {
	// This complaint's own texts are the customer's: a first or last name
	// alone names them here.
	own := p.WithNameParts()
	redact := func(s string) string { return redactText(own, s) }
	after := c
	after.Customer = router.Customer{Name: e.pseudonym}
	after.CustomerKey = ErasedKeyPrefix + e.pseudonym
	after.Subject = ""
	after.Identities = nil
	after.PromiseNote = redact(c.PromiseNote)
	after.Resolution = redact(c.Resolution)
	after.Prevention = redact(c.Prevention)
	after.RoutingReason = redact(c.RoutingReason)
	after.Unreachable = redact(c.Unreachable)
	after.Timers = nil // nothing more is sent about an erased complaint
	after.Version = c.Version + 1
	after.UpdatedAt = now

	out := make([]router.Entry, 0, len(tl)+1)
	owners := []string{c.Owner}
	for _, en := range tl {
		ne := router.Entry{At: en.At}
		if m := en.Message; m != nil {
			nm := router.Message{ID: m.ID, Channel: m.Channel, Customer: router.Customer{Name: e.pseudonym},
				Body: queue.RedactedMark, Language: m.Language, ComplaintID: m.ComplaintID, DefaultTeam: m.DefaultTeam,
				NoAutoReply: redact(m.NoAutoReply), Unreachable: redact(m.Unreachable), ReceivedAt: m.ReceivedAt}
			if m.DeliveryReport != nil {
				nm.DeliveryReport = &router.DeliveryReport{Status: redact(m.DeliveryReport.Status)}
			}
			ne.Message = &nm
		}
		if ev := en.Event; ev != nil {
			ne2 := router.Event{Type: ev.Type, Actor: ev.Actor, Owner: ev.Owner, PreviousOwner: ev.PreviousOwner, Reason: redact(ev.Reason)}
			if ev.Type == router.EventMentioned {
				// Written before these lines were worded without their
				// sender, it names someone else, kept here no longer.
				ne2.Reason = router.MentionReason(ev.Details)
			}
			if ev.Text != "" {
				ne2.Text = queue.RedactedMark
			}
			if len(ev.Details) > 0 {
				ne2.Details = make(map[string]string, len(ev.Details))
				for k, v := range ev.Details {
					ne2.Details[k] = redact(v)
				}
			}
			ne.Event = &ne2
			for _, o := range []string{ev.Owner, ev.PreviousOwner} {
				if o != "" && !slices.Contains(owners, o) {
					owners = append(owners, o)
				}
			}
		}
		out = append(out, ne)
	}
	ev := router.Event{Type: EventErased, Actor: e.actor, Owner: c.Owner,
		Reason: "customer data erased: " + redact(e.reason), Details: map[string]string{"erasure": e.id, "pseudonym": e.pseudonym}}
	out = append(out, router.Entry{At: now, Event: &ev})
	ps := queue.Pseudonymised{Before: c, TimelineLen: len(tl), After: after, Timeline: out, Audit: e.audit}
	for _, o := range owners {
		ps.Notifications = append(ps.Notifications, router.Notification{
			ID: "erased:" + c.ID + ":" + o, Kind: NotifyErased, Recipient: o, At: now, Complaint: after, Event: &ev})
	}
	return ps
}

// redactText removes the customer's tokens and any e-mail address from a
// text that is kept.
func redactText(p *queue.PersonalData, s string) string {
	if s == "" {
		return s
	}
	return addressPattern.ReplaceAllString(p.Redact(s, queue.RedactedMark), queue.RedactedMark)
}
