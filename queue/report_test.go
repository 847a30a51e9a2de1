package queue_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/queue"
	"github.com/forgetmenot/forgetmenot/router"
	"github.com/redis/go-redis/v9"
)

// TestEachCreatedHandsEveryComplaintOnce pages through complaints of which
// most share a creation millisecond, across page boundaries and at the
// start of the period, while one more is indexed: each must come exactly
// once, in the index's order.
func TestEachCreatedHandsEveryComplaintOnce(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	base := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	var now atomic.Int64
	r := e.clockRouter(func() time.Time { return base.Add(time.Duration(now.Load()) * time.Millisecond) })
	// 700 at the period's first millisecond (over one page), 3 a
	// millisecond later, 1,100 in the one after (over two pages, starting
	// mid-page), 1 at the period's end (outside it).
	for _, batch := range []struct{ ms, n int }{{0, 700}, {1, 3}, {2, 1100}, {3, 1}} {
		now.Store(int64(batch.ms))
		for i := range batch.n {
			m := webhookMsg(fmt.Sprintf("same-ms-%d-%d", batch.ms, i), fmt.Sprintf("c%d-%d@example.com", batch.ms, i), "The parcel never came.")
			if _, err := r.Route(ctx, routable(m)); err != nil {
				t.Fatal(err)
			}
		}
	}
	since, until := base, base.Add(3*time.Millisecond)
	want, err := e.store.ComplaintsCreated(ctx, since, until)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != 1803 {
		t.Fatalf("%d complaints created in the period, want 1803", len(want))
	}
	ids := make([]string, len(want))
	for i, c := range want {
		ids[i] = c.ID
	}
	var got []string
	pages := 0
	err = e.store.EachCreated(ctx, since, until, func(vs []router.ReportView) error {
		pages++
		for _, v := range vs {
			got = append(got, v.ID)
		}
		if pages == 2 {
			// A complaint of the third millisecond indexed while the report
			// reads it, ordered before the others of that millisecond: the
			// members after it move up one, and the next page must not hand
			// the last one read again. (It has no data yet: not counted.)
			late := redis.Z{Score: float64(base.Add(2 * time.Millisecond).UnixMilli()), Member: "0-late"}
			if err := e.rdb.ZAdd(ctx, e.keys.Complaints(), late).Err(); err != nil {
				return err
			}
		}
		if len(got) > len(ids) || pages > 20 { // a cursor that does not advance would never end
			return fmt.Errorf("%d complaints in %d pages: more than the period has", len(got), pages)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, ids) {
		t.Errorf("EachCreated handed %d complaints (%d distinct), want the %d of the index in its order", len(got), len(distinct(got)), len(ids))
	}
	if pages < 4 {
		t.Errorf("%d pages, want at least 4 (500 at a time)", pages)
	}
}

// TestEachCreatedStopsOnThePagesError returns the page function's error and
// reads no further.
func TestEachCreatedStopsOnThePagesError(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r := e.testRouter(2)
	for i := range 1200 {
		if _, err := r.Route(ctx, routable(webhookMsg(fmt.Sprint("stop-", i), fmt.Sprintf("s%d@example.com", i), "Broken."))); err != nil {
			t.Fatal(err)
		}
	}
	stop := errors.New("enough")
	calls := 0
	err := e.store.EachCreated(ctx, time.Now().Add(-time.Hour), time.Now().Add(time.Hour), func([]router.ReportView) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("EachCreated = %v after %d pages, want the page's error after 1", err, calls)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	err = e.store.EachCreated(cancelled, time.Now().Add(-time.Hour), time.Now().Add(time.Hour), func([]router.ReportView) error { return nil })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("EachCreated on a cancelled context = %v, want context.Canceled", err)
	}
}

// TestEachCreatedAgreesWithTheComplaints checks that the report views
// EachCreated decodes are those of the stored complaints.
func TestEachCreatedAgreesWithTheComplaints(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r := e.testRouter(3)
	var ids []string
	for i := range 30 {
		out, err := r.Route(ctx, routable(webhookMsg(fmt.Sprint("agree-", i), fmt.Sprintf("a%d@example.com", i), "The <lid> & the \"handle\" broke.")))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, out.ComplaintID)
	}
	for i, id := range ids[:10] {
		if _, err := r.CloseWith(ctx, id, "api", router.Closing{Resolution: "Sent a new one", Category: "damaged", Prevention: fmt.Sprintf("Pack it better ✓ %d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	since, until := time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	full, err := e.store.ComplaintsCreated(ctx, since, until)
	if err != nil {
		t.Fatal(err)
	}
	var views []router.ReportView
	if err := e.store.EachCreated(ctx, since, until, func(vs []router.ReportView) error { views = append(views, vs...); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(views) != len(full) {
		t.Fatalf("%d views, want %d", len(views), len(full))
	}
	for i, c := range full {
		if want := c.ReportView(); !viewsEqual(views[i], want) {
			t.Errorf("view of %s = %+v, want %+v", c.ID, views[i], want)
		}
	}
}

// routable gives a message the id ingest would.
func routable(m router.Message) router.Message {
	m.ID = queue.NewMessageID(time.Now())
	return m
}

func viewsEqual(a, b router.ReportView) bool {
	return a.ID == b.ID && a.Status == b.Status && a.Owner == b.Owner && a.Channel == b.Channel &&
		a.CreatedAt.Equal(b.CreatedAt) && a.ClosedAt.Equal(b.ClosedAt) && a.Category == b.Category && a.Prevention == b.Prevention &&
		a.Reopens == b.Reopens && a.FirstResponseAt.Equal(b.FirstResponseAt) && a.PromisedBy.Equal(b.PromisedBy) &&
		slices.Equal(a.Breaches, b.Breaches) && a.Promises == b.Promises && a.PromisesKept == b.PromisesKept &&
		a.PromisesBroken == b.PromisesBroken && a.CSAT == b.CSAT
}

func distinct(ids []string) map[string]bool {
	m := map[string]bool{}
	for _, id := range ids {
		m[id] = true
	}
	return m
}

// clockRouter is testRouter(3) with the given clock.
func (e *env) clockRouter(clock func() time.Time) *router.Router {
	e.t.Helper()
	var os []router.Owner
	for i := range 3 {
		os = append(os, router.Owner{ID: fmt.Sprintf("owner%02d", i), Name: "Owner", Email: "o@example.com", Teams: []string{"support"}, Capacity: 1000, Active: true})
	}
	roster, err := router.NewRoster([]router.Team{{ID: "support"}}, os)
	if err != nil {
		e.t.Fatal(err)
	}
	r, err := router.New(router.Config{Store: e.store, Directory: roster, Rules: &router.Rules{DefaultTeam: "support"}, ReopenWindow: time.Hour, Clock: clock})
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

var _ router.CreatedPager = (*queue.Store)(nil)
