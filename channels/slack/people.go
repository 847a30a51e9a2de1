package slack

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/forgetmenot/forgetmenot/router"
	slackgo "github.com/slack-go/slack"
	"golang.org/x/sync/singleflight"
)

var (
	errNotOnRoster = errors.New("not on the roster")
	errNoAddress   = errors.New("neither slack_user_id nor email on the roster")
)

// people maps owners to Slack users and back: by the roster's slack_user_id,
// else by e-mail address (users.lookupByEmail, users.info). Lookups are
// cached, so a busy day does not spend Slack's rate limit on them.
type people struct {
	api *slackgo.Client
	dir router.Directory
	now func() time.Time

	mu      sync.Mutex
	byOwner map[string]cached // owner id → Slack user id
	bySlack map[string]cached // Slack user id → owner id ("" when not on the roster)
	// lookups shares one users.info call among the requests of a user
	// Slack does not know yet (a burst of clicks), per Slack user id.
	lookups singleflight.Group
}

type cached struct {
	id  string
	exp time.Time
}

// How long a lookup is trusted: long for a match, short for "not on the
// roster", so someone added to Slack or the roster is found soon.
const (
	peopleTTL   = 6 * time.Hour
	strangerTTL = 5 * time.Minute
)

func newPeople(api *slackgo.Client, dir router.Directory, now func() time.Time) *people {
	return &people{api: api, dir: dir, now: now, byOwner: map[string]cached{}, bySlack: map[string]cached{}}
}

func (p *people) get(m map[string]cached, k string) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := m[k]
	if !ok || p.now().After(c.exp) {
		return "", false
	}
	return c.id, true
}

func (p *people) put(m map[string]cached, k, v string, ttl time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	m[k] = cached{id: v, exp: p.now().Add(ttl)}
}

// slackUser returns the Slack user id of an owner. The error is Slack's (for
// classification) or a plain one when the owner is not on the roster.
func (p *people) slackUser(ctx context.Context, ownerID string) (string, error) {
	o, ok := p.dir.Owner(ownerID)
	if !ok {
		return "", fmt.Errorf("owner %q: %w", ownerID, errNotOnRoster)
	}
	if o.SlackUserID != "" {
		return o.SlackUserID, nil
	}
	if id, ok := p.get(p.byOwner, ownerID); ok {
		return id, nil
	}
	if o.Email == "" {
		return "", fmt.Errorf("owner %q: %w", ownerID, errNoAddress)
	}
	u, err := p.api.GetUserByEmailContext(ctx, o.Email)
	if err != nil {
		return "", err
	}
	p.put(p.byOwner, ownerID, u.ID, peopleTTL)
	p.put(p.bySlack, u.ID, ownerID, peopleTTL)
	return u.ID, nil
}

// owner returns the roster owner who is the Slack user, or ok=false when the
// user is not on the roster.
func (p *people) owner(ctx context.Context, slackUserID string) (router.Owner, bool, error) {
	if id, ok := p.get(p.bySlack, slackUserID); ok {
		o, found := p.dir.Owner(id)
		return o, found && id != "", nil
	}
	for _, o := range p.dir.Owners() {
		if o.SlackUserID == slackUserID {
			return o, true, nil
		}
	}
	// Asked while Slack waits for an answer (3 s): a slow users.info is
	// waited for only so long, and goes on in the background, so the
	// user's next try finds it known.
	type found struct {
		o  router.Owner
		ok bool
	}
	done := p.lookups.DoChan(slackUserID, func() (any, error) {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), userLookupTimeout)
		defer cancel()
		u, err := p.api.GetUserInfoContext(lctx, slackUserID)
		if err != nil {
			return nil, fmt.Errorf("looking up Slack user %s: %w", slackUserID, err)
		}
		o, ok := p.learn(slackUserID, strings.TrimSpace(u.Profile.Email))
		return found{o: o, ok: ok}, nil
	})
	t := time.NewTimer(userLookupWait)
	defer t.Stop()
	select {
	case r := <-done:
		if r.Err != nil {
			return router.Owner{}, false, r.Err
		}
		f := r.Val.(found)
		return f.o, f.ok, nil
	case <-t.C:
		return router.Owner{}, false, fmt.Errorf("looking up Slack user %s: Slack did not answer within %s", slackUserID, userLookupWait)
	case <-ctx.Done():
		return router.Owner{}, false, ctx.Err()
	}
}

// userLookupWait is how long a request waits for users.info (Slack wants
// its answer within 3 s); userLookupTimeout how long the lookup goes on.
const (
	userLookupWait    = 2 * time.Second
	userLookupTimeout = 15 * time.Second
)

// learn remembers which owner, if any, the Slack user with this e-mail is.
func (p *people) learn(slackUserID, email string) (router.Owner, bool) {
	for _, o := range p.dir.Owners() {
		// An owner with a slack_user_id is that user only: the same address on
		// another Slack account does not make it theirs.
		if o.SlackUserID == "" && email != "" && strings.EqualFold(o.Email, email) {
			p.put(p.bySlack, slackUserID, o.ID, peopleTTL)
			return o, true
		}
	}
	p.put(p.bySlack, slackUserID, "", strangerTTL)
	return router.Owner{}, false
}

// name is an owner's display name, or the id for actors that are not owners
// ("api", "router").
func (p *people) name(id string) string {
	if o, ok := p.dir.Owner(id); ok && o.Name != "" {
		return o.Name
	}
	switch id {
	case router.ActorRouter:
		return "forgetmenot"
	case "api", "":
		return "the API"
	}
	return id
}
