package forum

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/forgetmenot/forgetmenot/internal/ctxtime"
	"github.com/forgetmenot/forgetmenot/router"
)

// LegacyCandidate is a forum customer id that has complaints, with the
// creation time of the oldest of them.
type LegacyCandidate struct {
	ID    string
	First time.Time
}

// MigrationConfig configures MigrateLegacyCustomers.
type MigrationConfig struct {
	// API resolves usernames to user ids (GET /u/{username}.json).
	API *API
	// Customers lists the forum customer ids that have complaints.
	Customers func(ctx context.Context) ([]LegacyCandidate, error)
	// Legacy moves a customer's complaints to their user id.
	Legacy LegacyCustomers
	Logger *slog.Logger
	// Pace spaces the lookups after the first LookupBurst, so that the
	// migration leaves part of the API key's rate limit to the replies
	// posted meanwhile; 0 does not space them (DefaultLookupPace is half of
	// Discourse's default max_admin_api_reqs_per_minute).
	Pace time.Duration
	// Sleep waits d unless ctx ends first (tests replace it); nil waits.
	Sleep func(ctx context.Context, d time.Duration) error
}

// LookupBurst is how many usernames are looked up before Pace applies
// (a forum with a few legacy customers is done at once).
const LookupBurst = 20

// DefaultLookupPace: one lookup every 2 s is 30 a minute, half of
// Discourse's default limit of 60 requests a minute for an API key.
const DefaultLookupPace = 2 * time.Second

// MigrationResult says what a migration did.
type MigrationResult struct {
	// Usernames is how many customer ids were usernames (not all digits).
	Usernames int
	// Moved is how many of them were resolved and moved, Complaints how
	// many complaints moved with them.
	Moved, Complaints int
	// Unknown: usernames Discourse knows no user by (404); their
	// complaints stay where they are.
	Unknown int
	// Newer: usernames now held by an account created after their oldest
	// complaint, so someone else's; left where they are.
	Newer int
	// Refused: usernames Discourse refused to look up for another reason
	// (logged each); left where they are.
	Refused int
}

// How often a lookup that failed on the network or a 5xx is tried before
// the migration gives up for this run, and the wait after a 429 that names
// none.
const (
	lookupAttempts   = 5
	defaultRateLimit = time.Minute
)

// MigrateLegacyCustomers moves the complaints recorded under forum
// usernames (forum:<username>, as forgetmenot keyed forum customers before
// it keyed them by Discourse user id) to forum:<user_id>, for customers who
// may never post again and so are never moved by the lazy path of their
// next post; until they are moved, their history, export and erasure by
// user id miss those complaints. Each username is resolved through the
// Discourse API; a username of digits only is taken for a user id already
// (as the lazy path does), one Discourse does not know is left, and so is
// one that an account created after the customer's oldest complaint holds
// now (the username changed hands: those complaints are not that
// account's). Rate limits are waited out as Discourse asks. Moving is
// idempotent, so a run cut short is simply run again. An error means the
// run did not finish (Discourse unreachable, the key refused, Redis).
func MigrateLegacyCustomers(ctx context.Context, cfg MigrationConfig) (MigrationResult, error) {
	var res MigrationResult
	if cfg.API == nil || cfg.Customers == nil || cfg.Legacy == nil {
		return res, errors.New("forum: the migration needs the API, the customer list and the store")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Sleep == nil {
		cfg.Sleep = ctxtime.Sleep
	}
	candidates, err := cfg.Customers(ctx)
	if err != nil {
		return res, err
	}
	for _, c := range candidates {
		if !legacyUsername(c.ID) {
			continue
		}
		res.Usernames++
		if cfg.Pace > 0 && res.Usernames > LookupBurst {
			if err := cfg.Sleep(ctx, cfg.Pace); err != nil {
				return res, err
			}
		}
		u, err := lookupUser(ctx, cfg, c.ID)
		var ae *APIError
		switch {
		case errors.Is(err, ErrUnknownUser):
			res.Unknown++
			continue
		case errors.As(err, &ae) && (ae.Status == http.StatusForbidden || ae.Status == http.StatusUnauthorized):
			return res, fmt.Errorf("forum: Discourse refused to show %s the profile of a forum customer (set FORGETMENOT_DISCOURSE_API_KEY and _API_USERNAME to an account that may see user profiles): %w", cfg.API.who(), err)
		case errors.As(err, &ae) && !ae.Temporary():
			res.Refused++
			cfg.Logger.Warn("forum: Discourse refused to look up a username; its complaints stay under it", "username", c.ID, "err", err)
			continue
		case err != nil:
			return res, fmt.Errorf("looking up forum username %q: %w", c.ID, err)
		}
		switch {
		case u.ID <= 0:
			// A system account or bot: never a customer.
			res.Refused++
			cfg.Logger.Warn("forum: a username with complaints belongs to a system account now; its complaints stay under it", "username", c.ID, "user_id", u.ID)
			continue
		case !u.CreatedAt.IsZero() && u.CreatedAt.After(c.First):
			res.Newer++
			cfg.Logger.Warn("forum: a username with complaints is held by an account created after them, so they are someone else's; they stay under the username",
				"username", c.ID, "user_id", u.ID, "account_created", u.CreatedAt, "oldest_complaint", c.First)
			continue
		}
		n, err := cfg.Legacy.RekeyCustomer(ctx, router.ChannelForum, c.ID, strconv.FormatInt(u.ID, 10))
		if err != nil {
			return res, fmt.Errorf("moving the complaints of forum username %q to user id %d: %w", c.ID, u.ID, err)
		}
		res.Moved++
		res.Complaints += n
	}
	if res.Unknown > 0 {
		cfg.Logger.Info("forum: usernames with complaints that Discourse does not know (deleted or renamed accounts) are left under forum:<username>; find them by that key",
			"usernames", res.Unknown)
	}
	return res, nil
}

// lookupUser asks Discourse for a user, waiting out rate limits as told and
// retrying network failures and 5xx a few times.
func lookupUser(ctx context.Context, cfg MigrationConfig, username string) (User, error) {
	for attempt := 1; ; attempt++ {
		u, err := cfg.API.UserByUsername(ctx, username)
		var ae *APIError
		var wait time.Duration
		switch {
		case err == nil || errors.Is(err, ErrUnknownUser) || ctx.Err() != nil:
			return u, err
		case errors.As(err, &ae) && ae.Status == http.StatusTooManyRequests:
			// Discourse says when: not counted as a failed attempt.
			wait = ae.RetryAfter
			if wait <= 0 {
				wait = defaultRateLimit
			}
			attempt--
			cfg.Logger.Info("forum: Discourse rate-limits the username lookups; waiting as it asks", "wait", wait)
		case isTemporary(err) && attempt < lookupAttempts:
			wait = time.Duration(attempt) * time.Second
		default:
			return u, err
		}
		if err := cfg.Sleep(ctx, wait); err != nil {
			return User{}, err
		}
	}
}
