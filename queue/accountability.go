package queue

import (
	"context"
	"encoding/json"
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
		t.fieldEquals("version", s.keys.Complaint(d.ComplaintID), "version", want)
	}
	t.write("ZREM", s.keys.Timers(), d.Member)
	_, err := t.run(ctx, s.rdb) // a conflict leaves it for the next round
	return err
}

// Absences lists the absences recorded through the API, one per owner.
func (s *Store) Absences(ctx context.Context) ([]router.Absence, error) {
	vals, err := s.rdb.HGetAll(ctx, s.keys.Absences()).Result()
	if err != nil {
		return nil, err
	}
	out := make([]router.Absence, 0, len(vals))
	for owner, v := range vals {
		var a router.Absence
		if err := json.Unmarshal([]byte(v), &a); err != nil {
			return nil, fmt.Errorf("decoding the absence of %s: %w", owner, err)
		}
		out = append(out, a)
	}
	return out, nil
}

// SetAbsence records an owner's absence, replacing their previous one.
func (s *Store) SetAbsence(ctx context.Context, a router.Absence) error {
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	err = s.rdb.HSet(ctx, s.keys.Absences(), a.Owner, string(b)).Err()
	s.absences.forget()
	return err
}

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

// EachCreated hands the complaints created in [since, until) to page, 500
// at a time, oldest first.
func (s *Store) EachCreated(ctx context.Context, since, until time.Time, page func([]router.Complaint) error) error {
	const size = 500
	for offset := int64(0); ; offset += size {
		ids, err := s.rdb.ZRangeByScore(ctx, s.keys.Complaints(), &redis.ZRangeBy{
			Min: msString(since.UnixMilli()), Max: "(" + msString(until.UnixMilli()), Offset: offset, Count: size,
		}).Result()
		if err != nil {
			return err
		}
		cs, err := s.loadComplaints(ctx, ids)
		if err != nil {
			return err
		}
		if err := page(cs); err != nil {
			return err
		}
		if len(ids) < size {
			return nil
		}
	}
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
