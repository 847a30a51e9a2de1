// Package privacy exports and erases what forgetmenot stores about one
// customer (GDPR articles 15 and 17), and erases closed complaints older than
// the retention period (article 5(1)(e)).
//
// A customer is found through every identity they used: an e-mail address, a
// chat session, a webhook customer id, a forum user, and every identity the
// router proved for their complaints (Reply-To addresses, merges). An erasure
// replaces their personal data with a pseudonym and keeps what the business
// may keep (complaint ids, owners, teams, dates, categories, deadline and
// promise outcomes, CSAT scores), so reports stay correct. Which key holds
// what, and how an erasure covers it, is the erasure map in package queue.
package privacy

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/forgetmenot/forgetmenot/queue"
	"github.com/forgetmenot/forgetmenot/router"
)

// Store is what privacy needs of the queue.
type Store interface {
	Complaint(ctx context.Context, id string) (router.Complaint, error)
	Timeline(ctx context.Context, id string) ([]router.Entry, error)
	Complaints(ctx context.Context, f router.Filter) ([]router.Complaint, error)
	ThreadComplaints(ctx context.Context, keys []string) (map[string]string, error)
	IndexedFields(ctx context.Context, ids []string) (threads, once map[string][]string, err error)
	WhichErased(ctx context.Context, ids []string) (map[string]bool, error)
	PendingMessages(ctx context.Context, match func(router.Message) bool) ([]router.Message, error)
	ReplacePseudonymised(ctx context.Context, e queue.Pseudonymised) error
	PurgeStreams(ctx context.Context, p *queue.PersonalData) (dedup [][2]string, n int, err error)
	PurgeOutgoing(ctx context.Context, p *queue.PersonalData) (n int, err error)
	DeleteDedup(ctx context.Context, pairs [][2]string) error
	CleanState(ctx context.Context, p *queue.PersonalData) (int, error)
	SaveErasure(ctx context.Context, id string, data []byte) error
	CreateErasure(ctx context.Context, id string, data []byte) (bool, error)
	Erasure(ctx context.Context, id string) (string, bool, error)
	Erasures(ctx context.Context) (map[string]string, error)
	FinishErasure(ctx context.Context, id string, audit map[string]string) error
	DropErasure(ctx context.Context, id string) error
	ComplaintsCreatedBefore(ctx context.Context, t time.Time, offset, limit int64) ([]string, error)
	EachComplaint(ctx context.Context, fn func(router.Complaint) error) error
	PrivacyLog(ctx context.Context, limit int64) ([]map[string]string, error)
	DeadLettersAbout(ctx context.Context, p *queue.PersonalData) ([]queue.DeadLetter, error)
	ScrubMentions(ctx context.Context, id, from string) (int, error)
}

// Closer closes an open complaint (the router).
type Closer interface {
	CloseWith(ctx context.Context, id, actor string, closing router.Closing) (router.Complaint, error)
}

// Event and notification of an erasure.
const (
	// EventErased is recorded on every erased complaint's timeline.
	EventErased = router.EventErased
	// NotifyErased tells the complaint's owners; their Slack top message is
	// re-rendered with the pseudonym by the notifier's usual update, and the
	// thread's replies are redacted.
	NotifyErased = router.NotifyErased
	// ErasedResolution closes an open complaint whose customer is erased.
	ErasedResolution = "erased on request"
	// ErasedKeyPrefix starts the customer key of an erased customer.
	ErasedKeyPrefix = router.ErasedKeyPrefix
)

// Errors of this package.
var (
	// ErrOpen refuses an erasure without force while the customer has open
	// complaints their owner has not closed.
	ErrOpen = fmt.Errorf("the customer has open complaints: close them first or erase with force: %w", router.ErrInvalidState)
	// ErrCrash is returned by a test's crash point.
	errCrash = errors.New("crash point")
)

// Config wires a Service.
type Config struct {
	Store  Store
	Closer Closer
	Clock  func() time.Time
	Logger *slog.Logger
	// crashAfter, in tests, stops an erasure after the named step as a crash
	// would (its state stays in Redis for a resume).
	crashAfter func(step string) bool
}

// Service exports and erases customers.
type Service struct {
	store  Store
	closer Closer
	clock  func() time.Time
	log    *slog.Logger
	crash  func(string) bool
}

// New builds a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Closer == nil {
		return nil, errors.New("privacy: store and closer are required")
	}
	s := &Service{store: cfg.Store, closer: cfg.Closer, clock: cfg.Clock, log: cfg.Logger, crash: cfg.crashAfter}
	// To the millisecond, like the router's times (a store keeps them
	// compact that way).
	clock := s.clock
	if clock == nil {
		clock = time.Now
	}
	s.clock = func() time.Time { return clock().Truncate(time.Millisecond) }
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.crash == nil {
		s.crash = func(string) bool { return false }
	}
	return s, nil
}

// CustomerKey normalises what names a customer: an e-mail address
// ("jan@voorbeeld.nl" or "email:jan@voorbeeld.nl"), or a channel identity
// ("chat:<session>", "webhook:<id>", "forum:<user id>").
func CustomerKey(s string) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", &router.ValidationError{Field: "customer", Problem: "is required: an e-mail address or a customer key such as chat:<session>"}
	case len(s) > 512 || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return "", &router.ValidationError{Field: "customer", Problem: "is not a customer key (too long or control characters)"}
	case strings.HasPrefix(s, "email:"):
		s = strings.TrimPrefix(s, "email:")
		fallthrough
	case strings.Contains(s, "@") && !strings.Contains(s, ":"):
		if _, err := mail.ParseAddress(s); err != nil {
			return "", &router.ValidationError{Field: "customer", Problem: fmt.Sprintf("%q is not an e-mail address", s)}
		}
		return router.EmailIdentity(s), nil
	}
	ch, id, ok := strings.Cut(s, ":")
	if ok && id != "" && (slices.Contains(router.KnownChannels, router.Channel(ch)) || ch+":" == ErasedKeyPrefix) {
		return s, nil
	}
	return "", &router.ValidationError{Field: "customer", Problem: fmt.Sprintf("%q is neither an e-mail address nor a customer key (email:, chat:, webhook:, forum:)", s)}
}

// customer is everything found about one customer.
type customer struct {
	identities []string
	complaints []router.Complaint
	timelines  map[string][]router.Entry
	pending    []router.Message
}

// maxComplaints bounds how far one customer's identities are followed.
const maxComplaints = 5000

// maxRounds bounds the rounds of reading every complaint for identities no
// index holds.
const maxRounds = 4

// find follows the customer's identities: the complaints indexed under each,
// the chat sessions' thread keys, and every identity those complaints and
// their messages prove, until nothing new turns up. Identities that no index
// holds (a webhook id beside an address, one joined by a merge) are found by
// reading every complaint once per round.
func (s *Service) find(ctx context.Context, start []string) (customer, error) {
	cu := customer{timelines: map[string][]router.Entry{}}
	seen := map[string]bool{}
	have := map[string]bool{}
	take := func(c router.Complaint) ([]string, error) {
		if have[c.ID] {
			return nil, nil
		}
		if len(have) >= maxComplaints {
			return nil, fmt.Errorf("more than %d complaints: erase in parts", maxComplaints)
		}
		have[c.ID] = true
		tl, err := s.store.Timeline(ctx, c.ID)
		if err != nil {
			return nil, err
		}
		cu.complaints = append(cu.complaints, c)
		cu.timelines[c.ID] = tl
		return complaintIdentities(c, tl), nil
	}
	pending := slices.Clone(start)
	for round := 0; len(pending) > 0 && round < maxRounds; round++ {
		for len(pending) > 0 {
			id := pending[0]
			pending = pending[1:]
			if id == "" || seen[id] {
				continue
			}
			seen[id] = true
			cu.identities = append(cu.identities, id)
			cs, err := s.store.Complaints(ctx, router.Filter{Customer: id})
			if err != nil {
				return customer{}, fmt.Errorf("complaints of %s: %w", id, err)
			}
			if strings.HasPrefix(id, string(router.ChannelChat)+":") {
				// A chat session is also the thread key of its conversations.
				byThread, err := s.store.ThreadComplaints(ctx, []string{id})
				if err != nil {
					return customer{}, err
				}
				if cid, ok := byThread[id]; ok {
					c, err := s.store.Complaint(ctx, cid)
					if err != nil && !errors.Is(err, router.ErrNotFound) {
						return customer{}, err
					}
					if err == nil {
						cs = append(cs, c)
					}
				}
			}
			for _, c := range cs {
				more, err := take(c)
				if err != nil {
					return customer{}, err
				}
				pending = append(pending, more...)
			}
		}
		err := s.store.EachComplaint(ctx, func(c router.Complaint) error {
			if have[c.ID] || !slices.ContainsFunc(complaintIdentities(c, nil), func(id string) bool { return seen[id] }) {
				return nil
			}
			more, err := take(c)
			pending = append(pending, more...)
			return err
		})
		if err != nil {
			return customer{}, fmt.Errorf("reading complaints: %w", err)
		}
		pending = slices.DeleteFunc(pending, func(id string) bool { return seen[id] })
	}
	found, err := s.store.PendingMessages(ctx, func(m router.Message) bool {
		return slices.ContainsFunc(messageIdentities(m), func(id string) bool { return seen[id] })
	})
	if err != nil {
		return customer{}, err
	}
	cu.pending = found
	sort.Slice(cu.complaints, func(i, j int) bool { return cu.complaints[i].CreatedAt.Before(cu.complaints[j].CreatedAt) })
	return cu, nil
}

// complaintIdentities is every identity a complaint proves for its customer.
func complaintIdentities(c router.Complaint, tl []router.Entry) []string {
	out := []string{c.CustomerKey, router.EmailIdentity(c.Customer.Email)}
	if c.Customer.ID != "" && c.Channel != router.ChannelEmail && c.Channel != "" {
		out = append(out, string(c.Channel)+":"+c.Customer.ID)
	}
	out = append(out, c.Identities...)
	for _, e := range tl {
		if e.Message != nil {
			out = append(out, messageIdentities(*e.Message)...)
		}
	}
	return slices.DeleteFunc(out, func(s string) bool { return s == "" || strings.HasPrefix(s, ErasedKeyPrefix) })
}

func messageIdentities(m router.Message) []string {
	var out []string
	if e := router.EmailIdentity(m.Customer.Email); e != "" {
		out = append(out, e)
	}
	if m.Customer.ID != "" && m.Channel != router.ChannelEmail && m.Channel != "" {
		out = append(out, string(m.Channel)+":"+m.Customer.ID)
	}
	return out
}

var addressPattern = regexp.MustCompile(`[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}`)

// tokens are the strings that name a customer: strong ones identify them
// (addresses, identity keys, session and user ids, usernames), names only
// mention them (see queue.NewPersonalData).
type tokens struct {
	Strong []string `json:"strong"`
	Names  []string `json:"names"`
}

func (t *tokens) add(o tokens) {
	for _, v := range o.Strong {
		if !slices.Contains(t.Strong, v) {
			t.Strong = append(t.Strong, v)
		}
	}
	for _, v := range o.Names {
		if !slices.Contains(t.Names, v) {
			t.Names = append(t.Names, v)
		}
	}
}

func (t tokens) personal(complaintIDs []string) *queue.PersonalData {
	return queue.NewPersonalData(t.Strong, t.Names, complaintIDs)
}

// tokensOf lists the strings that name the customer in what was found.
func tokensOf(identities []string, cs []router.Complaint, timelines map[string][]router.Entry, pending []router.Message) tokens {
	var strong, names []string
	addID := func(id string) {
		// Short ids ("42") name nobody in particular as a bare word; their
		// identity key ("webhook:42") does.
		if len(id) >= 6 {
			strong = append(strong, id)
		}
	}
	for _, id := range identities {
		strong = append(strong, id)
		if _, v, ok := strings.Cut(id, ":"); ok {
			if strings.HasPrefix(id, "email:") {
				strong = append(strong, v)
			} else {
				addID(v)
			}
		}
	}
	addCustomer := func(c router.Customer) {
		names = append(names, c.Name)
		strong = append(strong, c.Email)
		addID(c.ID)
	}
	addMessage := func(m router.Message) {
		addCustomer(m.Customer)
		for k, v := range m.Metadata {
			switch k {
			case "from", "reply_to":
				strong = append(strong, addressPattern.FindAllString(v, -1)...)
				if a, err := mail.ParseAddress(v); err == nil {
					names = append(names, a.Name)
				}
			case "forum_username", "chat_session":
				strong = append(strong, v)
			}
		}
	}
	for _, c := range cs {
		addCustomer(c.Customer)
		for _, e := range timelines[c.ID] {
			if e.Message != nil {
				addMessage(*e.Message)
			}
		}
	}
	for _, m := range pending {
		addMessage(m)
	}
	clean := func(v []string) []string {
		return slices.Compact(slices.Sorted(slices.Values(slices.DeleteFunc(v, func(s string) bool { return strings.TrimSpace(s) == "" }))))
	}
	return tokens{Strong: clean(strong), Names: clean(names)}
}

// newPseudonym is "erased-" and 10 random Crockford base32 characters.
func newPseudonym() string {
	const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	var b [10]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = crockford[b[i]&31]
	}
	return "erased-" + string(b[:])
}

// erasureID names an erasure by what was asked, so asking again resumes it
// (the id is a hash: the hash field holds no address).
func erasureID(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "E-" + hex.EncodeToString(sum[:10])
}

// Log returns the audit of erasures, newest first: who erased, why
// (redacted), when, the pseudonym and the complaint ids; no personal data.
func (s *Service) Log(ctx context.Context, limit int64) ([]map[string]string, error) {
	return s.store.PrivacyLog(ctx, limit)
}
