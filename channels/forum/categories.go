package forum

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// categoryFilter decides whether a category is one of the configured
// complaint categories or below one of them, at any depth.
//
// Post events carry the category's id and slug, topic events only its id,
// and neither says whose subcategory it is. So slugs and subcategories are
// resolved through GET /categories.json: once at the first event that needs
// it, again every refresh period, and again (at most once per minGap) when
// an unknown category shows up, which is what a category created since looks
// like. When Discourse cannot be asked, the last answer it gave is used; with
// none yet, the event is refused so that Discourse retries it.
type categoryFilter struct {
	api     *API
	ids     map[int64]bool
	slugs   map[string]bool
	refresh time.Duration
	minGap  time.Duration
	clock   func() time.Time
	log     *slog.Logger

	mu       sync.Mutex
	matching map[int64]bool
	missing  []string
	loaded   bool
	loadedAt time.Time
	triedAt  time.Time
	lastErr  error
}

// Bounds on reading the category tree: pages of one list, and requests in
// all (a forum large enough that Discourse pages its categories lists
// subcategories by id only, and each parent is then read on its own).
const (
	maxCategoryPages    = 50
	maxCategoryRequests = 200
)

func newCategoryFilter(entries []string, api *API, refresh time.Duration, clock func() time.Time, log *slog.Logger) *categoryFilter {
	f := &categoryFilter{api: api, ids: map[int64]bool{}, slugs: map[string]bool{}, refresh: refresh, minGap: time.Minute, clock: clock, log: log}
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if id, err := strconv.ParseInt(e, 10, 64); err == nil && id > 0 {
			f.ids[id] = true
		} else if e != "" {
			f.slugs[strings.ToLower(e)] = true
		}
	}
	return f
}

func (f *categoryFilter) empty() bool { return len(f.ids) == 0 && len(f.slugs) == 0 }

// match reports whether the category (id, and slug when the event has it) is
// a complaint category.
func (f *categoryFilter) match(ctx context.Context, id int64, slug string) (bool, error) {
	if f.ids[id] || (slug != "" && f.slugs[strings.ToLower(slug)]) {
		return true, nil
	}
	if f.api == nil || id <= 0 {
		return false, nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.clock()
	if !f.loaded || now.Sub(f.loadedAt) >= f.refresh {
		if err := f.load(ctx, now); err != nil && !f.loaded {
			return false, err
		}
	}
	if f.matching[id] {
		return true, nil
	}
	// Unknown to the last answer: perhaps created since.
	if now.Sub(f.triedAt) >= f.minGap {
		_ = f.load(ctx, now)
	}
	return f.matching[id], nil
}

// load reads the category tree; on failure the previous answer stays. It
// does not ask again within minGap of a failure, so a Discourse that is down
// is not asked once per webhook event.
func (f *categoryFilter) load(ctx context.Context, now time.Time) error {
	if f.lastErr != nil && now.Sub(f.triedAt) < f.minGap {
		return f.lastErr
	}
	f.triedAt = now
	matching, missing, err := f.read(ctx)
	if err != nil {
		f.lastErr = fmt.Errorf("resolving the complaint categories through %s/categories.json: %w", f.api.BaseURL(), err)
		f.log.Warn("forum: could not read the categories; using the last known ones", "err", f.lastErr, "have", f.loaded)
		return f.lastErr
	}
	if len(missing) > 0 && !slices.Equal(missing, f.missing) {
		f.log.Warn("forum: complaint categories not found in Discourse (check the slugs, and that the API user may see them)", "slugs", missing)
	}
	f.matching, f.missing, f.loaded, f.loadedAt, f.lastErr = matching, missing, true, now, nil
	return nil
}

type categoryNode struct {
	slug     string
	children []int64
}

// read walks the category tree and returns the configured categories with
// all their descendants, and the configured slugs that matched nothing.
func (f *categoryFilter) read(ctx context.Context) (map[int64]bool, []string, error) {
	nodes := map[int64]*categoryNode{}
	node := func(id int64) *categoryNode {
		n := nodes[id]
		if n == nil {
			n = &categoryNode{}
			nodes[id] = n
		}
		return n
	}
	link := func(parent, child int64) {
		if parent > 0 && parent != child && !slices.Contains(node(parent).children, child) {
			node(parent).children = append(node(parent).children, child)
		}
	}
	var walk func(cs []category, parent int64)
	walk = func(cs []category, parent int64) {
		for _, c := range cs {
			if c.ID <= 0 {
				continue
			}
			node(c.ID).slug = c.Slug
			p := parent
			if c.ParentCategoryID > 0 {
				p = c.ParentCategoryID
			}
			link(p, c.ID)
			for _, sub := range c.SubcategoryIDs {
				node(sub)
				link(c.ID, sub)
			}
			walk(c.SubcategoryList, c.ID)
		}
	}
	requests := 0
	readList := func(parent int64) error {
		for page := 1; page <= maxCategoryPages && requests < maxCategoryRequests; page++ {
			requests++
			cs, err := f.api.categories(ctx, parent, page)
			if err != nil {
				return err
			}
			before := len(nodes)
			walk(cs, parent)
			// A forum that does not page answers every page but the first
			// with nothing; one that does, with new categories.
			if len(cs) == 0 || len(nodes) == before {
				return nil
			}
		}
		return nil
	}
	if err := readList(0); err != nil {
		return nil, nil, err
	}
	// Subcategories known only by id: read them under their parent.
	read := map[int64]bool{}
	for progress := true; progress && requests < maxCategoryRequests; {
		progress = false
		for _, id := range slices.Sorted(maps.Keys(nodes)) {
			n := nodes[id]
			if read[id] || !slices.ContainsFunc(n.children, func(c int64) bool { return nodes[c].slug == "" }) {
				continue
			}
			read[id], progress = true, true
			if err := readList(id); err != nil {
				return nil, nil, err
			}
		}
	}
	roots := map[int64]bool{}
	for id := range f.ids {
		roots[id] = true
	}
	var missing []string
	for slug := range f.slugs {
		found := false
		for id, n := range nodes {
			if strings.EqualFold(n.slug, slug) {
				roots[id], found = true, true
			}
		}
		if !found {
			missing = append(missing, slug)
		}
	}
	slices.Sort(missing)
	matching := map[int64]bool{}
	var mark func(id int64)
	mark = func(id int64) {
		if matching[id] {
			return
		}
		matching[id] = true
		if n := nodes[id]; n != nil {
			for _, c := range n.children {
				mark(c)
			}
		}
	}
	for id := range roots {
		mark(id)
	}
	return matching, missing, nil
}
