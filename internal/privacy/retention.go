package privacy

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/forgetmenot/forgetmenot/queue"
	"github.com/forgetmenot/forgetmenot/router"
)

// ActorRetention is the actor recorded for erasures by the retention period.
const ActorRetention = "privacy:retention"

// retentionPage is how many complaint ids one look at the index reads.
const retentionPage = 500

// EraseExpired pseudonymises, in one small batch, closed complaints whose
// close lies more than olderThan before now: at most batch of them. Every
// replica may run it at once: each complaint's erasure is one guarded step
// that also records its audit entry, so a complaint two replicas find at once
// is erased, and audited, once. It returns how many it erased.
func (s *Service) EraseExpired(ctx context.Context, olderThan time.Duration, batch int) (int, error) {
	if olderThan <= 0 || batch <= 0 {
		return 0, nil
	}
	now := s.clock().UTC()
	cutoff := now.Add(-olderThan)
	n := 0
	// A complaint closed before the cutoff was created before it too, so
	// only the index up to the cutoff is read.
	for offset := int64(0); ; offset += retentionPage {
		ids, err := s.store.ComplaintsCreatedBefore(ctx, cutoff, offset, retentionPage)
		if err != nil {
			return n, fmt.Errorf("retention: reading the complaint index: %w", err)
		}
		erased, err := s.store.WhichErased(ctx, ids)
		if err != nil {
			return n, err
		}
		// The page's expired complaints, as many as the batch has room
		// for, then one scan of the indexes for all of them; again from
		// where that stopped while another replica's work left room.
		for next := 0; next < len(ids) && n < batch; {
			var expired []router.Complaint
			var expiredIDs []string
			version := map[string]int64{}
			for ; next < len(ids) && n+len(expired) < batch; next++ {
				id := ids[next]
				if erased[id] {
					continue
				}
				c, err := s.store.Complaint(ctx, id)
				if err != nil {
					return n, err
				}
				if c.Status != router.StatusClosed || c.ClosedAt.IsZero() || !c.ClosedAt.Before(cutoff) {
					continue
				}
				expired, expiredIDs = append(expired, c), append(expiredIDs, id)
				version[id] = c.Version
			}
			// What is still queued about them (an acknowledgement in the
			// dead letters, a retry) goes first: a crash after this step
			// repeats it, one after the erasure would leave it for good (an
			// erased complaint is not looked at again), and a dead letter
			// retried later would mail the customer whose data is gone.
			if len(expiredIDs) > 0 {
				if _, err := s.store.PurgeOutgoing(ctx, queue.NewPersonalData(nil, nil, expiredIDs)); err != nil {
					return n, fmt.Errorf("retention: removing queued work: %w", err)
				}
			}
			idx, err := s.scanIndexes(ctx, version)
			if err != nil {
				return n, fmt.Errorf("retention: reading the indexes: %w", err)
			}
			for i, c := range expired {
				id := expiredIDs[i]
				pseudonym := newPseudonym()
				e := erasure{pseudonym: pseudonym, actor: ActorRetention, id: "retention",
					reason: "closed more than " + FormatRetention(olderThan) + " ago (FORGETMENOT_RETENTION)",
					audit: map[string]string{"kind": "retention", "complaint": id, "pseudonym": pseudonym, "actor": ActorRetention,
						"closed_at": c.ClosedAt.UTC().Format(time.RFC3339), "finished": now.Format(time.RFC3339), "complaints": "1", "ids": id,
						"retention": FormatRetention(olderThan)}}
				dedup, err := s.eraseComplaint(ctx, id, queue.NewPersonalData(nil, nil, []string{id}), nil, e, idx)
				if errors.Is(err, errAlreadyErased) {
					continue // another replica was quicker
				}
				if err != nil {
					return n, fmt.Errorf("retention: erasing %s: %w", id, err)
				}
				if err := s.store.DeleteDedup(ctx, dedup); err != nil {
					return n, fmt.Errorf("retention: dedup keys of %s: %w", id, err)
				}
				n++
			}
		}
		if n >= batch {
			return n, nil
		}
		if len(ids) < retentionPage {
			return n, nil
		}
	}
}

// RetentionLoop erases expired complaints every poll, in batches, and
// finishes interrupted erasures, until ctx ends. Run it under a lease so one
// replica does the work at a time (each step is safe to repeat anyway).
func (s *Service) RetentionLoop(ctx context.Context, olderThan time.Duration, batch int, poll time.Duration) {
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		if n, err := s.Resume(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("resuming interrupted erasures; retrying next round", "err", err)
		} else if n > 0 {
			s.log.Info("interrupted erasures finished", "count", n)
		}
		for olderThan > 0 && ctx.Err() == nil {
			n, err := s.EraseExpired(ctx, olderThan, batch)
			if err != nil {
				if ctx.Err() == nil {
					s.log.Error("retention round failed; retrying next round", "err", err)
				}
				break
			}
			if n > 0 {
				s.log.Info("closed complaints past retention pseudonymised", "count", n, "retention", FormatRetention(olderThan))
			}
			if n < batch {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// FormatRetention words a retention period for people ("730d").
func FormatRetention(d time.Duration) string {
	if d <= 0 {
		return "off"
	}
	if d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	return d.String()
}
