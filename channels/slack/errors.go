package slack

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/forgetmenot/forgetmenot/router"
	slackgo "github.com/slack-go/slack"
)

// Slack error codes that no retry fixes. The first group breaks every call
// (a bad or revoked token); the second concerns one recipient or channel.
var (
	authCodes = map[string]bool{
		"invalid_auth": true, "not_authed": true, "token_revoked": true, "token_expired": true,
		"account_inactive": true, "missing_scope": true, "no_permission": true, "team_access_not_granted": true,
		"ekm_access_denied": true, "org_login_required": true,
	}
	targetCodes = map[string]bool{
		"user_not_found": true, "users_not_found": true, "user_disabled": true, "user_not_visible": true,
		"channel_not_found": true, "not_in_channel": true, "is_archived": true, "cannot_dm_bot": true,
		"invalid_blocks": true, "invalid_blocks_format": true, "msg_too_long": true, "no_text": true,
		"restricted_action": true,
	}
)

// slackCode returns the Slack error code of err ("user_not_found"), or "".
func slackCode(err error) string {
	var se slackgo.SlackErrorResponse
	if errors.As(err, &se) {
		return se.Err
	}
	var sep *slackgo.SlackErrorResponse
	if errors.As(err, &sep) && sep != nil {
		return sep.Err
	}
	return ""
}

// classify turns a Slack call's error into what the outbox understands: a
// rate limit becomes router.RetryAfter with Slack's delay, an error no retry
// fixes becomes router.Permanent (and is recorded for /readyz); anything else
// (network, 5xx) stays retryable.
func (s *Slack) classify(what string, err error) error {
	if err == nil {
		return nil
	}
	wrapped := fmt.Errorf("slack %s: %w", what, err)
	var rl *slackgo.RateLimitedError
	if errors.As(err, &rl) {
		after := rl.RetryAfter
		if after <= 0 {
			after = time.Second
		}
		return router.RetryAfter(wrapped, after)
	}
	code := slackCode(err)
	if authCodes[code] || targetCodes[code] {
		s.health.failed(code, what, s.now())
		s.cfg.OnPermanentError(code)
		s.log.Error("slack refused for good; fix the configuration", "what", what, "code", code, "err", err)
		return router.Permanent(wrapped)
	}
	return wrapped
}

// health remembers failures that no retry fixes, for /readyz: a broken token
// until a call succeeds again, and per-recipient problems until that
// recipient is reached.
type health struct {
	mu      sync.Mutex
	auth    string
	authAt  time.Time
	targets map[string]string
}

func (h *health) failed(code, what string, at time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if authCodes[code] {
		h.auth, h.authAt = code, at
		return
	}
	if h.targets == nil {
		h.targets = map[string]string{}
	}
	h.targets[what] = code
}

// ok clears the problems of a call that went through.
func (h *health) ok(what string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.auth = ""
	delete(h.targets, what)
}

func (h *health) err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.auth != "" {
		return fmt.Errorf("slack refuses the bot token (%s since %s): no notifications reach staff; renew FORGETMENOT_SLACK_BOT_TOKEN", h.auth, h.authAt.UTC().Format(time.RFC3339))
	}
	if len(h.targets) == 0 {
		return nil
	}
	var parts []string
	for what, code := range h.targets {
		parts = append(parts, what+": "+code)
	}
	sort.Strings(parts)
	return fmt.Errorf("slack cannot reach: %s", strings.Join(parts, "; "))
}

// Check reports problems no retry fixes (for /readyz): a revoked or invalid
// token, owners without a Slack account, a lead channel the app cannot post
// in. nil means Slack works as far as we know.
func (s *Slack) Check(ctx context.Context) error { return s.health.err() }

// Verify asks Slack whether the bot token works (auth.test), so a bad token is
// reported at start rather than at the first complaint.
func (s *Slack) Verify(ctx context.Context) error {
	_, err := s.api.AuthTestContext(ctx)
	if err != nil {
		return s.classify("auth.test", err)
	}
	s.health.ok("auth.test")
	return nil
}
