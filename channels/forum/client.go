package forum

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// API is a small client of the Discourse REST API: posting replies, and
// reading categories, topics and posts the webhook does not carry.
type API struct {
	base     string
	key      string
	username string
	client   *http.Client
}

// NewAPI builds a client of the forum at baseURL. Without a key it reads
// what anonymous visitors may read and cannot post.
func NewAPI(baseURL, key, username string, client *http.Client) *API {
	if client == nil {
		client = &http.Client{Timeout: 20 * time.Second}
	}
	return &API{base: strings.TrimRight(baseURL, "/"), key: key, username: username, client: client}
}

// BaseURL is the forum's address.
func (a *API) BaseURL() string { return a.base }

// Username is the account the API acts as ("" without a key).
func (a *API) Username() string { return a.username }

// APIError is a refusal by Discourse, with its own words.
type APIError struct {
	Method, Path string
	Status       int
	Message      string
	// RetryAfter is Discourse's wait for a rate limit (Retry-After or
	// extras.wait_seconds), else 0.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	return fmt.Sprintf("Discourse answered %d to %s %s: %s", e.Status, e.Method, e.Path, e.Message)
}

// Temporary reports whether a later retry may succeed: a rate limit or a
// server error. Any other refusal (bad key, no access, validation) stays.
func (e *APIError) Temporary() bool {
	return e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// isTemporary reports whether err is worth retrying: a network failure, or
// a refusal that says so.
func isTemporary(err error) bool {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Temporary()
	}
	return err != nil
}

// maxAnswer bounds what is read of an answer (a topic view of a long topic
// is the largest).
const maxAnswer = 4 << 20

func (a *API) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if a.key != "" {
		req.Header.Set("Api-Key", a.key)
		req.Header.Set("Api-Username", a.username)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, a.base+path, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, a.base+path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := &APIError{Method: method, Path: path, Status: resp.StatusCode}
		e.Message, e.RetryAfter = discourseError(answer)
		if after := retryAfter(resp.Header.Get("Retry-After")); after > 0 {
			e.RetryAfter = after
		}
		return e
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(answer, out); err != nil {
		return fmt.Errorf("%s %s: the answer is not the JSON Discourse sends: %w", method, a.base+path, err)
	}
	return nil
}

type createPost struct {
	TopicID           int64  `json:"topic_id"`
	Raw               string `json:"raw"`
	ReplyToPostNumber int    `json:"reply_to_post_number,omitempty"`
}

// createPost calls POST /posts.json and returns the new post's id (0 when
// Discourse did not say).
func (a *API) createPost(ctx context.Context, p createPost) (int64, error) {
	var answer json.RawMessage
	if err := a.do(ctx, http.MethodPost, "/posts.json", p, &answer); err != nil {
		var syntax *json.SyntaxError
		if errors.As(err, &syntax) {
			return 0, nil // it was posted; only its id is unknown
		}
		return 0, err
	}
	var created struct {
		ID int64 `json:"id"`
	}
	_ = json.Unmarshal(answer, &created) // it was posted; a strange answer only hides its id
	return created.ID, nil
}

// firstPost reads a topic's first post with its text: GET /t/{id}.json for
// the first post's id and the topic's current title, category and tags,
// then GET /posts/{id}.json, which alone carries the raw text.
func (a *API) firstPost(ctx context.Context, topicID int64) (Post, error) {
	var view struct {
		ID         int64  `json:"id"`
		Title      string `json:"title"`
		CategoryID int64  `json:"category_id"`
		Archetype  string `json:"archetype"`
		PostStream struct {
			Posts []struct {
				ID         int64 `json:"id"`
				PostNumber int   `json:"post_number"`
			} `json:"posts"`
			Stream []int64 `json:"stream"`
		} `json:"post_stream"`
	}
	if err := a.do(ctx, http.MethodGet, "/t/"+strconv.FormatInt(topicID, 10)+".json", nil, &view); err != nil {
		return Post{}, err
	}
	var postID int64
	for _, p := range view.PostStream.Posts {
		if p.PostNumber == 1 {
			postID = p.ID
		}
	}
	if postID == 0 && len(view.PostStream.Stream) > 0 {
		postID = view.PostStream.Stream[0]
	}
	if postID == 0 {
		return Post{}, fmt.Errorf("topic %d has no first post that %s may read", topicID, a.who())
	}
	var p Post
	if err := a.do(ctx, http.MethodGet, "/posts/"+strconv.FormatInt(postID, 10)+".json", nil, &p); err != nil {
		return Post{}, err
	}
	if p.TopicID == 0 {
		p.TopicID = topicID
	}
	if p.TopicID != topicID || p.PostNumber != 1 {
		return Post{}, fmt.Errorf("post %d is not the first post of topic %d", postID, topicID)
	}
	// The topic view is the authority on the topic; a single post does not
	// carry these.
	p.TopicTitle, p.CategoryID, p.TopicArchetype = view.Title, view.CategoryID, view.Archetype
	return p, nil
}

// category is one entry of GET /categories.json.
type category struct {
	ID               int64      `json:"id"`
	Slug             string     `json:"slug"`
	ParentCategoryID int64      `json:"parent_category_id"`
	SubcategoryIDs   []int64    `json:"subcategory_ids"`
	SubcategoryList  []category `json:"subcategory_list"`
}

// categories reads one page of GET /categories.json with subcategories, of
// the top level or under a parent.
func (a *API) categories(ctx context.Context, parent int64, page int) ([]category, error) {
	q := url.Values{"include_subcategories": {"true"}, "page": {strconv.Itoa(page)}}
	if parent > 0 {
		q.Set("parent_category_id", strconv.FormatInt(parent, 10))
	}
	var list struct {
		CategoryList struct {
			Categories []category `json:"categories"`
		} `json:"category_list"`
	}
	if err := a.do(ctx, http.MethodGet, "/categories.json?"+q.Encode(), nil, &list); err != nil {
		return nil, err
	}
	return list.CategoryList.Categories, nil
}

// User is the part of GET /u/{username}.json that matters here.
type User struct {
	ID        int64     `json:"id"`
	Username  string    `json:"username"`
	CreatedAt time.Time `json:"created_at"`
}

// ErrUnknownUser is Discourse's 404 for a username no account holds (any
// more): deleted, renamed, or never there.
var ErrUnknownUser = errors.New("no Discourse user has this username")

// UserByUsername reads a user's id by their username (GET
// /u/{username}.json); ErrUnknownUser when Discourse answers 404.
func (a *API) UserByUsername(ctx context.Context, username string) (User, error) {
	if username == "" {
		return User{}, ErrUnknownUser
	}
	var answer struct {
		User User `json:"user"`
	}
	err := a.do(ctx, http.MethodGet, "/u/"+url.PathEscape(username)+".json", nil, &answer)
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		return User{}, fmt.Errorf("%q: %w", username, ErrUnknownUser)
	}
	if err != nil {
		return User{}, err
	}
	if answer.User.ID == 0 {
		return User{}, fmt.Errorf("GET /u/%s.json: the answer names no user id", url.PathEscape(username))
	}
	return answer.User, nil
}

func (a *API) who() string {
	if a.key == "" {
		return "an anonymous visitor"
	}
	return a.username
}

// discourseError extracts Discourse's {"errors": [...]} text and its
// rate-limit wait (extras.wait_seconds).
func discourseError(body []byte) (string, time.Duration) {
	var e struct {
		Errors    []string `json:"errors"`
		ErrorType string   `json:"error_type"`
		Extras    struct {
			WaitSeconds float64 `json:"wait_seconds"`
		} `json:"extras"`
	}
	if json.Unmarshal(body, &e) == nil && len(e.Errors) > 0 {
		return strings.Join(e.Errors, "; "), time.Duration(e.Extras.WaitSeconds * float64(time.Second))
	}
	s := strings.TrimSpace(string(body))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	if s == "" {
		return "(no details)", 0
	}
	return s, 0
}

func retryAfter(v string) time.Duration {
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	return 0
}
