package slack

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"

	slackgo "github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
)

// maxRequestBytes bounds what Slack may send us; its payloads are far smaller.
const maxRequestBytes = 1 << 20

// Routes are the HTTP-mode endpoints (Events API, interactivity, slash
// command), each verifying Slack's request signature.
func (s *Slack) Routes() map[string]http.Handler {
	return map[string]http.Handler{
		"POST /slack/events":        s.verified(s.serveEvents),
		"POST /slack/interactivity": s.verified(s.serveInteractivity),
		"POST /slack/commands":      s.verified(s.serveCommand),
	}
}

// verified admits only requests signed with the signing secret
// (X-Slack-Signature, HMAC-SHA256 over "v0:timestamp:body", compared in
// constant time) and at most five minutes old, so a captured request cannot
// be replayed later.
func (s *Slack) verified(h func(w http.ResponseWriter, r *http.Request, body []byte)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBytes))
		if err != nil {
			http.Error(w, "request body too large or unreadable", http.StatusRequestEntityTooLarge)
			return
		}
		sv, err := slackgo.NewSecretsVerifier(r.Header, s.cfg.SigningSecret)
		if err == nil {
			_, _ = sv.Write(body)
			err = sv.Ensure()
		}
		if err != nil {
			s.log.Warn("slack request refused: bad or stale signature", "path", r.URL.Path, "remote", r.RemoteAddr, "err", err)
			http.Error(w, "invalid or expired Slack signature", http.StatusUnauthorized)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		h(w, r, body)
	})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	if v == nil {
		w.WriteHeader(http.StatusOK)
		return
	}
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Slack) serveEvents(w http.ResponseWriter, r *http.Request, body []byte) {
	ev, err := slackevents.ParseEvent(json.RawMessage(body), slackevents.OptionNoVerifyToken())
	if err != nil {
		http.Error(w, "not an Events API payload", http.StatusBadRequest)
		return
	}
	switch ev.Type {
	case slackevents.URLVerification:
		var ch slackevents.ChallengeResponse
		_ = json.Unmarshal(body, &ch)
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte(ch.Challenge))
		return
	case slackevents.CallbackEvent:
		// Slack retries an event it thinks we missed (X-Slack-Retry-Num):
		// the event id recognises it.
		if cb, ok := ev.Data.(*slackevents.EventsAPICallbackEvent); ok && !s.once(r.Context(), "event:"+cb.EventID) {
			w.WriteHeader(http.StatusOK)
			return
		}
		s.Event(r.Context(), ev)
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Slack) serveInteractivity(w http.ResponseWriter, r *http.Request, body []byte) {
	form, err := url.ParseQuery(string(body))
	if err != nil || form.Get("payload") == "" {
		http.Error(w, "missing payload", http.StatusBadRequest)
		return
	}
	var cb slackgo.InteractionCallback
	if err := json.Unmarshal([]byte(form.Get("payload")), &cb); err != nil {
		http.Error(w, "payload is not an interaction", http.StatusBadRequest)
		return
	}
	writeJSON(w, s.Interaction(r.Context(), cb))
}

func (s *Slack) serveCommand(w http.ResponseWriter, r *http.Request, body []byte) {
	cmd, err := slackgo.SlashCommandParse(r)
	if err != nil {
		http.Error(w, "not a slash command", http.StatusBadRequest)
		return
	}
	writeJSON(w, s.Command(r.Context(), cmd))
}
