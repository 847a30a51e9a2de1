// Package forumtest is a test double of the Discourse API that forgetmenot
// talks to: posting replies (POST /posts.json) and reading categories, topics
// and posts. No Discourse can run in the tests, so the double refuses what
// Discourse refuses, in Discourse's words and shapes: 403 for a missing or
// wrong Api-Key, 422 {"errors": [...]} for a post without text or shorter
// than min_post_length (20), or longer than max_post_length (32,000), 429
// with Retry-After and extras.wait_seconds beyond
// max_admin_api_reqs_per_minute (60), 404/403 for topics and posts that do
// not exist or that the caller may not see. User profiles (GET
// /u/{username}.json) are shown to the API key only, as on a forum with
// hide_user_profiles_from_public: 403 without a key, 404 in Discourse's
// error shape for a username no account holds.
package forumtest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/forgetmenot/forgetmenot/channels/forum"
)

// Discourse's defaults for the site settings the double enforces.
const (
	MinPostLength           = 20
	MaxPostLength           = 32000
	MaxAdminAPIReqPerMinute = 60
)

// Category is a forum category; Parent 0 is the top level.
type Category struct {
	ID      int64
	Slug    string
	Parent  int64
	Private bool // only the API user may see it
}

// Created is a post made through the API.
type Created struct {
	ID                int64
	TopicID           int64
	PostNumber        int
	ReplyToPostNumber int
	Raw               string
	Username          string
}

type topic struct {
	id         int64
	title      string
	categoryID int64
	archetype  string
	tags       []string
	posts      []forum.Post
}

// User is a forum account.
type User struct {
	ID       int64
	Username string
	Created  time.Time
}

// Discourse is the double; URL is its base address.
type Discourse struct {
	URL      string
	Key      string
	Username string

	mu         sync.Mutex
	clock      func() time.Time
	categories []Category
	paginate   bool
	topics     map[int64]*topic
	users      []User
	nextPostID int64
	created    []Created
	script     []int
	down       bool
	requests   []string
	window     []time.Time
}

// New starts a double whose valid API key is key, for the account username.
func New(t testing.TB, key, username string) *Discourse {
	t.Helper()
	d := &Discourse{Key: key, Username: username, clock: time.Now, topics: map[int64]*topic{}, nextPostID: 95000}
	srv := httptest.NewServer(d)
	t.Cleanup(srv.Close)
	d.URL = srv.URL
	return d
}

// AddCategory adds categories.
func (d *Discourse) AddCategory(cs ...Category) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.categories = append(d.categories, cs...)
}

// AddUser adds forum accounts.
func (d *Discourse) AddUser(us ...User) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.users = append(d.users, us...)
}

// SetClock replaces the clock of the rate limit (max_admin_api_reqs_per_minute).
func (d *Discourse) SetClock(now func() time.Time) { d.mu.Lock(); d.clock = now; d.mu.Unlock() }

// Paginate makes /categories.json behave as on a forum with lazy-loaded
// categories: top-level pages, subcategories by id only.
func (d *Discourse) Paginate(on bool) { d.mu.Lock(); d.paginate = on; d.mu.Unlock() }

// AddTopic adds a topic with its posts (the first is post number 1).
func (d *Discourse) AddTopic(id int64, title string, categoryID int64, tags []string, posts ...forum.Post) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.topics[id] = &topic{id: id, title: title, categoryID: categoryID, archetype: "regular", tags: tags, posts: posts}
}

// Script makes the next POST /posts.json calls answer these statuses (429
// with Retry-After, 5xx, 404, 422) before the double accepts again.
func (d *Discourse) Script(statuses ...int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.script = append(d.script, statuses...)
}

// Down makes every request fail as a Discourse in maintenance does (503).
func (d *Discourse) Down(on bool) { d.mu.Lock(); d.down = on; d.mu.Unlock() }

// Posts lists what was posted through the API, oldest first.
func (d *Discourse) Posts() []Created {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.created)
}

// Requests counts the requests whose "METHOD path" starts with prefix.
func (d *Discourse) Requests(prefix string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, r := range d.requests {
		if strings.HasPrefix(r, prefix) {
			n++
		}
	}
	return n
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func refuse(w http.ResponseWriter, status int, errorType string, msgs ...string) {
	writeJSON(w, status, map[string]any{"errors": msgs, "error_type": errorType})
}

var (
	topicPath = regexp.MustCompile(`^/t/(\d+)\.json$`)
	postPath  = regexp.MustCompile(`^/posts/(\d+)\.json$`)
	userPath  = regexp.MustCompile(`^/u/([^/]+)\.json$`)
)

func (d *Discourse) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.requests = append(d.requests, r.Method+" "+r.URL.Path)
	if d.down {
		w.Header().Set("Retry-After", "30")
		http.Error(w, "Discourse is being upgraded", http.StatusServiceUnavailable)
		return
	}
	key, user := r.Header.Get("Api-Key"), r.Header.Get("Api-Username")
	authed := false
	if key != "" || user != "" {
		if key != d.Key || !strings.EqualFold(user, d.Username) {
			refuse(w, http.StatusForbidden, "invalid_access", "You are not permitted to view the requested resource. The API username or key is invalid.")
			return
		}
		authed = true
		if wait := d.limit(); wait > 0 {
			s := int(wait.Seconds()) + 1
			w.Header().Set("Retry-After", strconv.Itoa(s))
			writeJSON(w, http.StatusTooManyRequests, map[string]any{
				"errors":     []string{"You’ve performed this action too many times. Please wait " + strconv.Itoa(s) + " seconds before trying again."},
				"error_type": "rate_limit", "extras": map[string]any{"wait_seconds": s, "time_left": strconv.Itoa(s) + " seconds"}})
			return
		}
	}
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/posts.json":
		if !authed {
			refuse(w, http.StatusForbidden, "not_logged_in", "You need to be logged in to do that.")
			return
		}
		d.createPost(w, r)
	case r.Method == http.MethodGet && r.URL.Path == "/categories.json":
		d.listCategories(w, r, authed)
	case r.Method == http.MethodGet && topicPath.MatchString(r.URL.Path):
		id, _ := strconv.ParseInt(topicPath.FindStringSubmatch(r.URL.Path)[1], 10, 64)
		d.showTopic(w, id, authed)
	case r.Method == http.MethodGet && postPath.MatchString(r.URL.Path):
		id, _ := strconv.ParseInt(postPath.FindStringSubmatch(r.URL.Path)[1], 10, 64)
		d.showPost(w, id, authed)
	case r.Method == http.MethodGet && userPath.MatchString(r.URL.Path):
		d.showUser(w, userPath.FindStringSubmatch(r.URL.Path)[1], authed)
	default:
		refuse(w, http.StatusNotFound, "not_found", "The requested URL or resource could not be found.")
	}
}

// showUser answers GET /u/{username}.json (usernames match whatever their
// case), to the API key only.
func (d *Discourse) showUser(w http.ResponseWriter, username string, authed bool) {
	if !authed {
		refuse(w, http.StatusForbidden, "invalid_access", "You are not permitted to view the requested resource.")
		return
	}
	for _, u := range d.users {
		if strings.EqualFold(u.Username, username) {
			created := u.Created
			if created.IsZero() {
				created = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
			}
			writeJSON(w, http.StatusOK, map[string]any{"user_badges": []any{}, "user": map[string]any{
				"id": u.ID, "username": u.Username, "name": "", "created_at": created.UTC().Format("2006-01-02T15:04:05.000Z"),
				"trust_level": 1, "admin": false, "moderator": false}})
			return
		}
	}
	refuse(w, http.StatusNotFound, "not_found", "The requested URL or resource could not be found.")
}

// limit applies max_admin_api_reqs_per_minute and returns the wait when over.
func (d *Discourse) limit() time.Duration {
	now := d.clock()
	d.window = slices.DeleteFunc(d.window, func(t time.Time) bool { return now.Sub(t) >= time.Minute })
	if len(d.window) >= MaxAdminAPIReqPerMinute {
		return time.Minute - now.Sub(d.window[0])
	}
	d.window = append(d.window, now)
	return 0
}

var whitespace = regexp.MustCompile(`\s+`)

func (d *Discourse) createPost(w http.ResponseWriter, r *http.Request) {
	var p struct {
		TopicID           json.Number `json:"topic_id"`
		Raw               *string     `json:"raw"`
		ReplyToPostNumber json.Number `json:"reply_to_post_number"`
	}
	dec := json.NewDecoder(r.Body)
	dec.UseNumber()
	if err := dec.Decode(&p); err != nil {
		refuse(w, http.StatusBadRequest, "invalid_parameters", "The body is not JSON: "+err.Error())
		return
	}
	if len(d.script) > 0 {
		status := d.script[0]
		d.script = d.script[1:]
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "7")
			writeJSON(w, status, map[string]any{"errors": []string{"You’ve performed this action too many times. Please wait 7 seconds before trying again."},
				"error_type": "rate_limit", "extras": map[string]any{"wait_seconds": 7, "time_left": "7 seconds"}})
			return
		}
		refuse(w, status, "scripted", "scripted failure")
		return
	}
	topicID, _ := p.TopicID.Int64()
	t := d.topics[topicID]
	var errs []string
	switch {
	case p.TopicID == "":
		errs = append(errs, "Title can't be blank")
	case t == nil:
		errs = append(errs, "Something has gone wrong. Perhaps this topic was closed or deleted while you were looking at it?")
	}
	raw := ""
	if p.Raw != nil {
		raw = *p.Raw
	}
	stripped := utf8.RuneCountInString(strings.TrimSpace(whitespace.ReplaceAllString(raw, " ")))
	switch {
	case strings.TrimSpace(raw) == "":
		errs = append(errs, "Body can't be blank")
	case stripped < MinPostLength:
		errs = append(errs, "Body is too short (minimum is "+strconv.Itoa(MinPostLength)+" characters)")
	case stripped > MaxPostLength:
		errs = append(errs, "Body is too long (maximum is "+strconv.Itoa(MaxPostLength)+" characters)")
	}
	if len(errs) > 0 {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"action": "create_post", "errors": errs})
		return
	}
	replyTo, _ := p.ReplyToPostNumber.Int64()
	d.nextPostID++
	post := forum.Post{ID: d.nextPostID, Username: d.Username, UserID: 2, Raw: raw, PostNumber: len(t.posts) + 1, PostType: 1,
		TopicID: t.id, TopicTitle: t.title, CategoryID: t.categoryID, Staff: true, Moderator: true}
	if replyTo > 0 {
		n := int(replyTo)
		post.ReplyToPostNumber = &n
	}
	t.posts = append(t.posts, post)
	d.created = append(d.created, Created{ID: post.ID, TopicID: t.id, PostNumber: post.PostNumber, ReplyToPostNumber: int(replyTo), Raw: raw, Username: d.Username})
	writeJSON(w, http.StatusOK, serializePost(post, true))
}

// serializePost words a post as PostSerializer does for /posts/{id}.json
// (with raw) and for a topic view's post stream (without): neither carries
// the topic title, category or archetype that the webhook serializer adds.
func serializePost(p forum.Post, raw bool) map[string]any {
	b, _ := json.Marshal(p)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	for _, k := range []string{"topic_title", "category_id", "category_slug", "topic_archetype", "email"} {
		delete(m, k)
	}
	if !raw {
		delete(m, "raw")
	}
	m["cooked"] = "<p>" + p.Raw + "</p>"
	return m
}

func (d *Discourse) category(id int64) (Category, bool) {
	for _, c := range d.categories {
		if c.ID == id {
			return c, true
		}
	}
	return Category{}, false
}

func (d *Discourse) visible(categoryID int64, authed bool) bool {
	for id := categoryID; id != 0; {
		c, ok := d.category(id)
		if !ok {
			return true
		}
		if c.Private && !authed {
			return false
		}
		id = c.Parent
	}
	return true
}

func (d *Discourse) listCategories(w http.ResponseWriter, r *http.Request, authed bool) {
	q := r.URL.Query()
	page, _ := strconv.Atoi(q.Get("page"))
	page = max(page, 1)
	var parent int64
	if p := q.Get("parent_category_id"); p != "" {
		for _, c := range d.categories {
			if c.Slug == p || strconv.FormatInt(c.ID, 10) == p {
				parent = c.ID
			}
		}
	}
	children := func(of int64) []Category {
		var out []Category
		for _, c := range d.categories {
			if c.Parent == of && d.visible(c.ID, authed) {
				out = append(out, c)
			}
		}
		return out
	}
	ids := func(cs []Category) []int64 {
		out := []int64{}
		for _, c := range cs {
			out = append(out, c.ID)
		}
		return out
	}
	var render func(c Category, nested bool) map[string]any
	render = func(c Category, nested bool) map[string]any {
		m := map[string]any{"id": c.ID, "name": strings.ToUpper(c.Slug[:1]) + c.Slug[1:], "slug": c.Slug, "subcategory_ids": ids(children(c.ID))}
		if c.Parent != 0 {
			m["parent_category_id"] = c.Parent
		}
		if nested {
			var subs []map[string]any
			for _, s := range children(c.ID) {
				subs = append(subs, render(s, true))
			}
			m["subcategory_list"] = subs
		}
		return m
	}
	var out []map[string]any
	top := children(parent)
	switch {
	case d.paginate:
		// Twenty top-level categories per page, each followed by up to five
		// of its subcategories as entries of their own; no subcategory_list.
		from := min((page-1)*20, len(top))
		for _, c := range top[from:min(from+20, len(top))] {
			out = append(out, render(c, false))
			for i, s := range children(c.ID) {
				if i < 5 {
					out = append(out, render(s, false))
				}
			}
		}
	case page == 1:
		for _, c := range top {
			out = append(out, render(c, q.Get("include_subcategories") == "true"))
		}
	}
	if out == nil {
		out = []map[string]any{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"category_list": map[string]any{"can_create_category": false, "categories": out}})
}

func (d *Discourse) showTopic(w http.ResponseWriter, id int64, authed bool) {
	t := d.topics[id]
	if t == nil {
		refuse(w, http.StatusNotFound, "not_found", "The requested URL or resource could not be found.")
		return
	}
	if !d.visible(t.categoryID, authed) {
		refuse(w, http.StatusForbidden, "invalid_access", "You are not permitted to view the requested resource.")
		return
	}
	posts, stream := []map[string]any{}, []int64{}
	for _, p := range t.posts {
		posts = append(posts, serializePost(p, false))
		stream = append(stream, p.ID)
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"id": t.id, "title": t.title, "fancy_title": t.title, "category_id": t.categoryID, "archetype": t.archetype,
		"tags": t.tags, "posts_count": len(t.posts), "post_stream": map[string]any{"posts": posts, "stream": stream},
	})
}

func (d *Discourse) showPost(w http.ResponseWriter, id int64, authed bool) {
	for _, t := range d.topics {
		for _, p := range t.posts {
			if p.ID != id {
				continue
			}
			if !d.visible(t.categoryID, authed) {
				refuse(w, http.StatusForbidden, "invalid_access", "You are not permitted to view the requested resource.")
				return
			}
			writeJSON(w, http.StatusOK, serializePost(p, true))
			return
		}
	}
	refuse(w, http.StatusNotFound, "not_found", "The requested URL or resource could not be found.")
}
