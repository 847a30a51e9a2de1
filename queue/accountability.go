package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/forgetmenot/forgetmenot/router"
	"github.com/redis/go-redis/v9"
)

var _ router.AccountabilityStore = (*Store)(nil)

// timerMember names a complaint's timer in the due index. The due time is
// part of the name, so a timer set again for another moment is a new member.
func timerMember(complaintID string, t router.Timer) string {
	return complaintID + "|" + string(t.Kind) + "|" + strconv.FormatInt(t.Due.UnixMilli(), 10)
}

func parseTimerMember(m string) (router.DueTimer, bool) {
	parts := strings.Split(m, "|")
	if len(parts) != 3 {
		return router.DueTimer{}, false
	}
	ms, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return router.DueTimer{}, false
	}
	return router.DueTimer{Member: m, ComplaintID: parts[0], Timer: router.Timer{Kind: router.TimerKind(parts[1]), Due: time.UnixMilli(ms).UTC()}}, true
}

// syncTimers keeps the due index in step with the complaint's timers in the
// same commit: timers the change removed (answered, closed, fired) leave the
// index, new ones enter it.
func syncTimers(t *tx, k Keys, before *router.Complaint, after router.Complaint) {
	had := map[string]bool{}
	if before != nil {
		for _, tm := range before.Timers {
			had[timerMember(before.ID, tm)] = true
		}
	}
	has := map[string]bool{}
	for _, tm := range after.Timers {
		m := timerMember(after.ID, tm)
		has[m] = true
		if !had[m] {
			t.write("ZADD", k.Timers(), msString(tm.Due.UnixMilli()), m)
		}
	}
	for m := range had {
		if !has[m] {
			t.write("ZREM", k.Timers(), m)
		}
	}
}

// syncBreaches indexes the breaches a change records by its time (a breach
// is recorded by the change of the timer that found it missed).
func syncBreaches(t *tx, k Keys, before *router.Complaint, after router.Complaint) {
	had := 0
	if before != nil {
		had = len(before.Breaches)
	}
	for i := had; i < len(after.Breaches); i++ {
		t.write("ZADD", k.Breaches(), msString(after.UpdatedAt.UnixMilli()), breachMember(after.ID, i, after.Breaches[i]))
	}
}

// breachMember names the i-th breach (from 0) of a complaint in the index.
func breachMember(id string, i int, kind string) string {
	return id + ":" + strconv.Itoa(i) + ":" + kind
}

// BreachesBetween counts the deadlines missed in [since, until), by kind.
func (s *Store) BreachesBetween(ctx context.Context, since, until time.Time) (map[string]int, error) {
	const page = 5000
	out := map[string]int{}
	for offset := int64(0); ; offset += page {
		ms, err := s.rdb.ZRangeByScore(ctx, s.keys.Breaches(), &redis.ZRangeBy{
			Min: msString(since.UnixMilli()), Max: "(" + msString(until.UnixMilli()), Offset: offset, Count: page,
		}).Result()
		if err != nil {
			return nil, fmt.Errorf("reading the breaches of the period: %w", err)
		}
		for _, m := range ms {
			if i := strings.LastIndexByte(m, ':'); i >= 0 && i < len(m)-1 {
				out[m[i+1:]]++
			}
		}
		if len(ms) < page {
			return out, nil
		}
	}
}

// DueTimers lists timers due at or before now, oldest first. Unreadable
// members are returned with an empty complaint id so they get dropped.
func (s *Store) DueTimers(ctx context.Context, now time.Time, limit int) ([]router.DueTimer, error) {
	ms, err := s.rdb.ZRangeByScore(ctx, s.keys.Timers(), &redis.ZRangeBy{
		Min: "-inf", Max: msString(now.UnixMilli()), Count: int64(limit),
	}).Result()
	if err != nil {
		return nil, err
	}
	out := make([]router.DueTimer, 0, len(ms))
	for _, m := range ms {
		d, ok := parseTimerMember(m)
		if !ok {
			d = router.DueTimer{Member: m}
		}
		out = append(out, d)
	}
	return out, nil
}

// DropTimer removes a stale timer, guarded by the complaint's version (-1:
// the complaint does not exist), so a timer set again meanwhile is kept.
func (s *Store) DropTimer(ctx context.Context, d router.DueTimer, version int64) error {
	t := &tx{}
	if d.ComplaintID != "" {
		want := ""
		if version >= 0 {
			want = strconv.FormatInt(version, 10)
		}
		t.versionIs("version", s.keys.Complaint(d.ComplaintID), want)
	}
	t.write("ZREM", s.keys.Timers(), d.Member)
	_, err := t.run(ctx, s.rdb) // a conflict leaves it for the next round
	return err
}

// Absences lists the absences recorded through the API: each owner's in
// force, planned, and the marks of their returns.
func (s *Store) Absences(ctx context.Context) ([]router.Absence, error) {
	vals, err := s.rdb.HGetAll(ctx, s.keys.Absences()).Result()
	if err != nil {
		return nil, err
	}
	out := make([]router.Absence, 0, len(vals))
	for owner, v := range vals {
		list, err := decodeAbsences(v)
		if err != nil {
			return nil, fmt.Errorf("decoding the absences of %s: %w", owner, err)
		}
		out = append(out, list...)
	}
	return out, nil
}

// decodeAbsences reads one owner's field of the absences hash: a list, or
// (written before an owner could have more than one) a single absence.
func decodeAbsences(v string) ([]router.Absence, error) {
	if strings.HasPrefix(v, "[") {
		var list []router.Absence
		err := json.Unmarshal([]byte(v), &list)
		return list, err
	}
	var a router.Absence
	if err := json.Unmarshal([]byte(v), &a); err != nil {
		return nil, err
	}
	return []router.Absence{a}, nil
}

// UpdateAbsences replaces owner's recorded absences with what update makes
// of them, unless another change to the absences came in between (then it
// reads them again).
func (s *Store) UpdateAbsences(ctx context.Context, owner string, update func(current []router.Absence) []router.Absence) error {
	key := s.keys.Absences()
	defer s.absences.forget()
	for attempt := 1; ; attempt++ {
		err := s.rdb.Watch(ctx, func(tx *redis.Tx) error {
			v, err := tx.HGet(ctx, key, owner).Result()
			var current []router.Absence
			switch {
			case errors.Is(err, redis.Nil):
			case err != nil:
				return err
			default:
				if current, err = decodeAbsences(v); err != nil {
					return fmt.Errorf("decoding the absences of %s: %w", owner, err)
				}
			}
			next := update(current)
			_, err = tx.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
				if len(next) == 0 {
					pipe.HDel(ctx, key, owner)
					return nil
				}
				b, err := json.Marshal(next)
				if err != nil {
					return err
				}
				pipe.HSet(ctx, key, owner, string(b))
				return nil
			})
			return err
		}, key)
		if !errors.Is(err, redis.TxFailedErr) || attempt == maxAbsenceAttempts {
			return err
		}
	}
}

// maxAbsenceAttempts bounds the tries of an absence change that others'
// changes keep overtaking.
const maxAbsenceAttempts = 5

// ComplaintsCreated lists the complaints created in [since, until).
func (s *Store) ComplaintsCreated(ctx context.Context, since, until time.Time) ([]router.Complaint, error) {
	ids, err := s.rdb.ZRangeByScore(ctx, s.keys.Complaints(), &redis.ZRangeBy{
		Min: msString(since.UnixMilli()), Max: "(" + msString(until.UnixMilli()),
	}).Result()
	if err != nil {
		return nil, err
	}
	return s.loadComplaints(ctx, ids)
}

var _ router.CreatedPager = (*Store)(nil)

// createdPageSize is how many complaints EachCreated reads at a time: one
// round trip for the ids and one for their data per page.
const createdPageSize = 500

// EachCreated hands the complaints created in [since, until) to page,
// createdPageSize at a time, oldest first, decoding only what the report
// reads. The next page is read from Redis while page works on this one, and
// never more than that one page ahead, so memory stays bounded.
func (s *Store) EachCreated(ctx context.Context, since, until time.Time, page func([]router.ReportView) error) error {
	ctx, cancel := context.WithCancel(ctx)
	pages := make(chan createdPage) // unbuffered: the reader waits with its one page
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(pages)
		s.readCreated(ctx, since, until, pages)
	}()
	// Stop the reader on an early return and wait for it, so no read
	// outlives the call.
	defer func() { cancel(); <-done }()
	for p := range pages {
		if p.err != nil {
			return p.err
		}
		views, err := decodeReportViews(p.ids, p.data)
		if err != nil {
			return err
		}
		if err := page(views); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// createdPage is one page of EachCreated as read from Redis: the ids and
// their stored data (nil: the complaint is gone), or the error that ended
// the reading.
type createdPage struct {
	ids  []string
	data []*redis.StringCmd
	err  error
}

// readCreated reads the pages of complaints created in [since, until) into
// pages until the last one, an error or ctx's end.
func (s *Store) readCreated(ctx context.Context, since, until time.Time, pages chan<- createdPage) {
	cur := createdCursor{min: msString(since.UnixMilli())}
	upTo := "(" + msString(until.UnixMilli())
	for {
		ids, last, err := cur.next(ctx, s.rdb, s.keys.Complaints(), upTo)
		var data []*redis.StringCmd
		if err == nil {
			data, err = s.complaintData(ctx, ids)
		}
		select {
		case pages <- createdPage{ids: ids, data: data, err: err}:
		case <-ctx.Done():
			return
		}
		if err != nil || last {
			return
		}
	}
}

// createdCursor pages through the complaints index by score (creation
// millisecond) instead of by offset: an offset makes Redis walk past every
// earlier member again on each page, which over 100,000 complaints cost
// more than all else in the report. Complaints created in the same
// millisecond share a score; skip counts those already read at the cursor's
// score, and seen drops any read again because one was added in between.
type createdCursor struct {
	min  string
	skip int64
	seen map[string]bool
}

// next returns the ids of the next page and whether it is the last.
func (c *createdCursor) next(ctx context.Context, rdb redis.UniversalClient, key, upTo string) ([]string, bool, error) {
	zs, err := rdb.ZRangeByScoreWithScores(ctx, key, &redis.ZRangeBy{
		Min: c.min, Max: upTo, Offset: c.skip, Count: createdPageSize,
	}).Result()
	if err != nil {
		return nil, false, fmt.Errorf("reading the complaints index: %w", err)
	}
	ids := make([]string, 0, len(zs))
	for _, z := range zs {
		id, _ := z.Member.(string)
		if !c.seen[id] {
			ids = append(ids, id)
		}
	}
	c.advance(zs)
	return ids, len(zs) < createdPageSize, nil
}

// advance moves the cursor past a page (in index order).
func (c *createdCursor) advance(zs []redis.Z) {
	if len(zs) == 0 {
		return
	}
	score := msString(int64(zs[len(zs)-1].Score))
	if score != c.min || c.seen == nil {
		c.min, c.skip, c.seen = score, 0, map[string]bool{}
	}
	for _, z := range zs {
		if msString(int64(z.Score)) == score {
			c.skip++
			id, _ := z.Member.(string)
			c.seen[id] = true
		}
	}
}

// complaintData reads the stored data of the complaints ids in one round
// trip.
func (s *Store) complaintData(ctx context.Context, ids []string) ([]*redis.StringCmd, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.Get(ctx, s.keys.Complaint(id))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) && !isWrongType(err) {
		return nil, fmt.Errorf("reading the complaints' data: %w", err)
	}
	// Complaints a layout before 5 stored as hashes, not yet migrated.
	var legacy redis.Pipeliner
	var read map[int]*redis.Cmd
	for i, cmd := range cmds {
		if isWrongType(cmd.Err()) {
			if legacy == nil {
				legacy, read = s.rdb.Pipeline(), map[int]*redis.Cmd{}
			}
			read[i] = legacyComplaintScript.Eval(ctx, legacy, []string{s.keys.Complaint(ids[i])})
		}
	}
	if legacy != nil {
		if _, err := legacy.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("reading the complaints' data: %w", err)
		}
		for i, cmd := range read {
			cmds[i] = redis.NewStringResult(cmd.Text())
		}
	}
	return cmds, nil
}

// decodeReportViews decodes the report's fields of each stored complaint,
// skipping those gone since the index was read.
func decodeReportViews(ids []string, data []*redis.StringCmd) ([]router.ReportView, error) {
	out := make([]router.ReportView, 0, len(data))
	for i, cmd := range data {
		raw, err := cmd.Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading complaint %s: %w", ids[i], err)
		}
		v, err := decodeReportView(raw)
		if err != nil {
			return nil, fmt.Errorf("decoding stored complaint %s: %w", ids[i], err)
		}
		out = append(out, v)
	}
	return out, nil
}

// CountCreated counts the complaints created in [since, until).
func (s *Store) CountCreated(ctx context.Context, since, until time.Time) (int, error) {
	n, err := s.rdb.ZCount(ctx, s.keys.Complaints(), msString(since.UnixMilli()), "("+msString(until.UnixMilli())).Result()
	return int(n), err
}

// OpenComplaints lists every open complaint. It loads them all: for
// maintenance and tests; figures come from OpenFigures.
func (s *Store) OpenComplaints(ctx context.Context) ([]router.Complaint, error) {
	ids, err := s.rdb.ZRange(ctx, s.keys.OpenComplaints(), 0, -1).Result()
	if err != nil {
		return nil, err
	}
	return s.loadComplaints(ctx, ids)
}

// SetVolume records a period's volume, replacing an earlier figure.
func (s *Store) SetVolume(ctx context.Context, v router.Volume) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.rdb.HSet(ctx, s.keys.Volumes(), v.Period, string(b)).Err()
}

// Volumes lists every recorded volume.
func (s *Store) Volumes(ctx context.Context) ([]router.Volume, error) {
	vals, err := s.rdb.HGetAll(ctx, s.keys.Volumes()).Result()
	if err != nil {
		return nil, err
	}
	out := make([]router.Volume, 0, len(vals))
	for p, v := range vals {
		var vol router.Volume
		if err := json.Unmarshal([]byte(v), &vol); err != nil {
			return nil, fmt.Errorf("decoding the volume of %s: %w", p, err)
		}
		out = append(out, vol)
	}
	return out, nil
}

// NotifyOnce queues the notifications in the outbox unless key was used
// before, in one atomic step; it reports whether it queued them.
func (s *Store) NotifyOnce(ctx context.Context, key string, ns []router.Notification) (bool, error) {
	t := &tx{}
	s.onceGuard(t, s.keys.Once("notify:"+key), "sent", s.keys.LegacyOnce(), "notify:"+key)
	for _, n := range ns {
		b, err := json.Marshal(router.Outgoing{Notification: &n})
		if err != nil {
			return false, fmt.Errorf("encoding notification: %w", err)
		}
		t.write("XADD", s.keys.Outbox(), "*", fieldData, string(b), fieldAttempt, "0")
	}
	res, err := t.run(ctx, s.rdb)
	if err != nil {
		return false, err
	}
	return res.status == "ok", nil
}
