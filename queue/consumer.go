package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/forgetmenot/forgetmenot/internal/ctxtime"
	"github.com/forgetmenot/forgetmenot/router"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Delivery is one stream entry handed to a Handler.
type Delivery struct {
	Stream string
	Group  string
	ID     string
	Data   []byte
	// Attempt counts earlier attempts that failed or never finished: 0 on the
	// first delivery.
	Attempt int
	// AckNow is set by a handler whose work must not be done twice (a mail
	// to a customer): the entry is acknowledged before the next one is
	// handled. Otherwise the entries of a batch are acknowledged together,
	// in one round trip with the next read, and a handler must be safe to
	// run again on an entry whose acknowledgement was lost (the router's
	// commit is applied once per message; a notifier posts a notification
	// id once).
	AckNow bool
}

// deliveryKey is the context key under which a handler's context holds
// its delivery: Store.Commit copies the routed message from the inbound
// entry instead of sending it again. Nothing else looks for it, and a
// handler need not know of it.
type deliveryKey struct{}

// Handler processes one delivery. nil acknowledges it; an error marked
// router.Permanent dead-letters it at once; any other error retries it later,
// after router.RetryAfter's delay if given, and dead-letters it after
// MaxAttempts.
type Handler func(ctx context.Context, d *Delivery) error

// ConsumerConfig configures a Consumer. Zero values take the defaults.
type ConsumerConfig struct {
	Stream string
	Group  string
	// Name identifies this process in the group; workers append "-<n>".
	Name    string
	Workers int
	Handler Handler
	// MaxAttempts before an entry goes to the dead letters (default 5).
	MaxAttempts int
	// ReclaimIdle is how long an entry may stay unacknowledged with a consumer
	// before another takes it over (default 30s). A handler gets half of it.
	ReclaimIdle time.Duration
	// Backoff gives the delay before retry n (0-based); default 1s doubling to
	// 5 minutes.
	Backoff func(attempt int) time.Duration
	// OnDeadLetter is told about every entry moved to the dead letters.
	OnDeadLetter func(ctx context.Context, d *Delivery, cause error)
	Logger       *slog.Logger
	// Block is how long one read waits for new entries (default 1s); it also
	// paces the promotion of delayed retries.
	Block time.Duration
	// ExpireIdle removes consumers of the group (of any replica) idle this
	// long with no pending entries: replicas that are gone leave them
	// behind. A consumer with pending entries is never removed: its entries
	// are taken over first (ReclaimIdle). 0 keeps every consumer.
	ExpireIdle time.Duration
	// OnConsumerRemoved is told the name of every consumer removed.
	OnConsumerRemoved func(name string)
	// Linger, when set, is how long a worker waits after a read that found
	// fewer entries than a full batch, so that entries arriving meanwhile
	// share the next read and acknowledgement: fewer round trips under load
	// for at most this much more latency. 0 reads again at once.
	Linger time.Duration
}

// DefaultDeliveryLinger is the outbox consumer's Linger: a notification
// waits at most this long more, and at a few hundred complaints a second
// the outbox is read and acknowledged for several at a time.
const DefaultDeliveryLinger = 5 * time.Millisecond

// Consumer reads a stream in a consumer group: new entries, its own pending
// entries after a restart, entries other consumers left idle too long, and
// delayed retries when they fall due. Every entry ends acknowledged by its
// handler, retried, or in the dead letters; none is dropped.
type Consumer struct {
	cfg ConsumerConfig
	rdb redis.UniversalClient
	// blocking carries the workers' blocking stream reads on connections of
	// their own (one per worker), so that however many workers wait on an
	// empty stream, the shared pool stays free for the API, health checks
	// and commits. It is rdb itself when rdb's kind cannot be cloned.
	blocking redis.UniversalClient
	keys     Keys
	log      *slog.Logger
}

// NewConsumer builds a consumer; Run starts it.
func NewConsumer(rdb redis.UniversalClient, keys Keys, cfg ConsumerConfig) *Consumer {
	if cfg.Workers <= 0 {
		cfg.Workers = 1
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 5
	}
	if cfg.ReclaimIdle <= 0 {
		cfg.ReclaimIdle = 30 * time.Second
	}
	if cfg.Block <= 0 {
		cfg.Block = time.Second
	}
	if cfg.Backoff == nil {
		cfg.Backoff = DefaultBackoff
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("stream", cfg.Stream, "group", cfg.Group)
	return &Consumer{cfg: cfg, rdb: rdb, blocking: blockingClient(rdb, cfg.Workers, cfg.Block), keys: keys, log: log}
}

// blockingClient builds a client with the options of rdb and a pool of
// exactly one connection per worker, for XREADGROUP BLOCK: a blocked read
// holds its connection for the whole block time, and with the shared pool
// (10 per CPU) a few dozen workers took every connection, leaving the API
// and /readyz waiting a second each. A read waits for block on the server,
// in a pipeline with the previous batch's acknowledgements (a pipeline
// waits ReadTimeout for its answers), so its read timeout is longer by that.
func blockingClient(rdb redis.UniversalClient, workers int, block time.Duration) redis.UniversalClient {
	switch c := rdb.(type) {
	case *redis.Client:
		o := *c.Options()
		o.ReadTimeout += block
		o.PoolSize, o.MinIdleConns, o.MaxIdleConns, o.MaxActiveConns = workers, 0, workers, workers
		// The copied maintenance-notification state belongs to c.
		o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
		return redis.NewClient(&o)
	case *redis.ClusterClient:
		o := *c.Options()
		o.ReadTimeout += block
		o.PoolSize, o.MinIdleConns, o.MaxIdleConns, o.MaxActiveConns = workers, 0, workers, workers
		o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
		return redis.NewClusterClient(&o)
	}
	return rdb
}

// BlockingPoolStats reports the connections of the workers' blocking reads
// (the shared client's when they could not get their own).
func (c *Consumer) BlockingPoolStats() *redis.PoolStats { return c.blocking.PoolStats() }

// DefaultBackoff doubles from one second up to five minutes.
func DefaultBackoff(attempt int) time.Duration {
	d := time.Second << min(attempt, 9)
	return min(d, 5*time.Minute)
}

const readBatch = 16

// Run consumes until ctx is cancelled. An entry being handled when ctx ends is
// finished (within the handler timeout); entries read but not started stay
// pending and are taken over after ReclaimIdle. Redis outages are waited out
// with capped backoff.
func (c *Consumer) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, name := range c.workerNames() {
		wg.Go(func() { c.readLoop(ctx, name) })
	}
	wg.Go(func() { c.maintenanceLoop(ctx, c.cfg.Name+"-0") })
	wg.Wait()
	if c.blocking != c.rdb {
		_ = c.blocking.Close()
	}
	return nil
}

func (c *Consumer) readLoop(ctx context.Context, name string) {
	var failures int
	ownPendingDone := false
	// acks are the entries handled and not yet acknowledged: they go with
	// the next read, or on their own when the loop ends.
	var acks []string
	defer func() {
		if len(acks) > 0 {
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
			defer cancel()
			if err := c.flushAcks(fctx, acks); err != nil {
				c.log.Warn("could not acknowledge handled entries at shutdown; they stay pending and are taken over (handling them again changes nothing)", "consumer", name, "entries", len(acks), "err", err)
			}
		}
	}()
	for ctx.Err() == nil {
		var err error
		if !ownPendingDone {
			err = c.drainOwnPending(ctx, name)
			ownPendingDone = err == nil
		} else {
			var n int
			n, err = c.readNew(ctx, name, &acks)
			if err == nil && n > 0 && n < readBatch && c.cfg.Linger > 0 {
				_ = ctxtime.Sleep(ctx, c.cfg.Linger)
			}
		}
		if err == nil {
			failures = 0
			continue
		}
		if ctx.Err() != nil {
			return
		}
		if isNoGroup(err) {
			// The group vanished (Redis lost its data): recreate it.
			if gerr := c.ensureGroup(ctx); gerr == nil {
				continue
			}
		}
		failures++
		wait := outageBackoff(failures)
		c.log.Warn("queue read failed; retrying", "consumer", name, "err", err, "retry_in", wait)
		_ = ctxtime.Sleep(ctx, wait)
	}
}

// queueAcks adds the acknowledgement and removal of ids to pipe, and
// returns a check that both went through (true when there were none).
func (c *Consumer) queueAcks(ctx context.Context, pipe redis.Pipeliner, ids []string) (done func() bool) {
	if len(ids) == 0 {
		return func() bool { return true }
	}
	ack := pipe.XAck(ctx, c.cfg.Stream, c.cfg.Group, ids...)
	del := pipe.XDel(ctx, c.cfg.Stream, ids...)
	return func() bool { return ack.Err() == nil && del.Err() == nil }
}

// flushAcks acknowledges and removes ids in one round trip.
func (c *Consumer) flushAcks(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	pipe := c.rdb.Pipeline()
	c.queueAcks(ctx, pipe, ids)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("acknowledging %d entries of %s: %w", len(ids), c.cfg.Stream, err)
	}
	return nil
}

// readNew acknowledges the entries handled since the last read and reads
// new ones, in one round trip, then handles them. Acknowledgements that
// fail are kept for the next try; entries read in the same round trip are
// handled all the same (leaving them would keep them from everyone until
// taken over). It returns the number of entries read.
func (c *Consumer) readNew(ctx context.Context, name string, acks *[]string) (int, error) {
	pipe := c.blocking.Pipeline()
	acked := c.queueAcks(ctx, pipe, *acks)
	read := pipe.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: c.cfg.Group, Consumer: name, Streams: []string{c.cfg.Stream, ">"}, Count: readBatch, Block: c.cfg.Block,
	})
	_, execErr := pipe.Exec(ctx)
	if acked() {
		*acks = (*acks)[:0]
	}
	res, err := read.Result()
	if errors.Is(err, redis.Nil) {
		return 0, ackError(execErr)
	}
	if err != nil {
		return 0, err
	}
	readAt := time.Now()
	n := 0
	for _, s := range res {
		n += len(s.Messages)
		if err := c.handleBatch(ctx, name, s.Messages, nil, readAt, acks); err != nil {
			return n, err
		}
	}
	return n, ackError(execErr)
}

// ackError is the error of a read round trip whose read found nothing or
// was handled: a failed acknowledgement (nil when there was none).
func ackError(err error) error {
	if err == nil || errors.Is(err, redis.Nil) {
		return nil
	}
	return err
}

// errBatchAborted stops a batch whose bookkeeping failed (Redis went away):
// handling the rest now would do work that cannot be acknowledged and is
// done again on redelivery (a second notification to staff). The rest stays
// pending and is taken over after ReclaimIdle like a crashed consumer's.
var errBatchAborted = errors.New("could not acknowledge an entry; the rest of the batch stays pending")

// handleBatch processes entries read together at readAt. counts gives each
// entry's delivery count (nil: first delivery). An entry held longer than
// half the reclaim idle time may meanwhile have been taken over by another
// consumer (this process was paused, or a long handler ran before it): it is
// handled only if it is still pending with this consumer, so a process that
// wakes up from SIGSTOP or a long GC pause does not redo its whole batch.
// Handled entries are added to acks, to be acknowledged together.
//
// Entries are acknowledged before they could be taken for abandoned: a batch
// that has run for a quarter of the reclaim idle time has what it handled so
// far acknowledged before the next entry (a handler may take up to half of
// it), so no handled entry reaches ReclaimIdle unacknowledged.
func (c *Consumer) handleBatch(ctx context.Context, name string, msgs []redis.XMessage, counts map[string]int64, readAt time.Time, acks *[]string) error {
	for _, m := range msgs {
		if ctx.Err() != nil {
			return nil // leave the rest pending for takeover
		}
		if len(*acks) > 0 && time.Since(readAt) >= c.cfg.ReclaimIdle/4 {
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
			err := c.flushAcks(fctx, *acks)
			cancel()
			if err != nil {
				return errBatchAborted
			}
			*acks = (*acks)[:0]
		}
		if time.Since(readAt) >= c.cfg.ReclaimIdle/2 {
			mine, err := c.stillMine(ctx, name, m.ID)
			if err != nil {
				return err
			}
			if !mine {
				c.log.Info("entry was taken over by another consumer while this one held it; skipping", "consumer", name, "entry", m.ID)
				continue
			}
		}
		n := int64(1)
		if counts != nil {
			n = counts[m.ID]
		}
		if !c.process(ctx, m, n, acks) {
			return errBatchAborted
		}
	}
	return nil
}

// stillMine tells whether entry id is still pending with consumer name.
func (c *Consumer) stillMine(ctx context.Context, name, id string) (bool, error) {
	p, err := c.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream: c.cfg.Stream, Group: c.cfg.Group, Start: id, End: id, Count: 1, Consumer: name,
	}).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return false, err
	}
	return len(p) == 1, nil
}

// drainOwnPending handles entries this consumer name read before a restart.
func (c *Consumer) drainOwnPending(ctx context.Context, name string) error {
	if err := c.ensureGroup(ctx); err != nil {
		return err
	}
	start := "0"
	for ctx.Err() == nil {
		res, err := c.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: c.cfg.Group, Consumer: name, Streams: []string{c.cfg.Stream, start}, Count: readBatch,
		}).Result()
		if errors.Is(err, redis.Nil) {
			return nil
		}
		if err != nil {
			return err
		}
		if len(res) == 0 || len(res[0].Messages) == 0 {
			return nil
		}
		msgs := res[0].Messages
		if err := c.handleNow(ctx, name, msgs); err != nil {
			return err
		}
		start = msgs[len(msgs)-1].ID
	}
	return nil
}

// maintenanceLoop takes over entries left idle by dead or stuck consumers and
// moves delayed retries back onto the stream when due.
func (c *Consumer) maintenanceLoop(ctx context.Context, name string) {
	var failures int
	nextReclaim := time.Now().Add(c.cfg.ReclaimIdle / 2)
	nextExpiry := time.Now() // a new replica marks its consumers as seen at once
	for ctx.Err() == nil {
		err := c.promoteDue(ctx)
		if err == nil && !time.Now().Before(nextReclaim) {
			err = c.reclaim(ctx, name)
			if err == nil {
				nextReclaim = time.Now().Add(c.cfg.ReclaimIdle / 2)
			}
		}
		if err == nil && c.cfg.ExpireIdle > 0 && !time.Now().Before(nextExpiry) {
			_, err = c.RemoveGoneConsumers(ctx)
			if err == nil {
				nextExpiry = time.Now().Add(c.expiryEvery())
			}
		}
		if err != nil && ctx.Err() == nil {
			if isNoGroup(err) {
				_ = c.ensureGroup(ctx)
			}
			failures++
			c.log.Warn("queue maintenance failed; retrying", "err", err)
			_ = ctxtime.Sleep(ctx, outageBackoff(failures))
			continue
		}
		failures = 0
		_ = ctxtime.Sleep(ctx, c.cfg.Block)
	}
}

// expiryEvery is how often this replica marks its consumers as seen and
// looks for gone ones: several times within ExpireIdle, so a live replica
// is never taken for gone, and at most every 5 minutes.
func (c *Consumer) expiryEvery() time.Duration {
	return min(c.cfg.ExpireIdle/4, 5*time.Minute)
}

// removeGoneScript marks this replica's consumers as seen, then removes the
// group's consumers that have no pending entries and have been neither seen
// by their replica nor active for ARGV[2] ms, in one step: no consumer can
// read an entry between the check and the removal, so XGROUP DELCONSUMER
// never drops pending work. Redis before 7.2 counts a consumer idle from its
// last delivery, not its last read, so a quiet live replica would look gone
// but for the seen marks. It returns the names removed.
// KEYS[1]: the stream; KEYS[2]: the hash of consumer → last seen (unix ms).
// ARGV[1]: the group; ARGV[2]: expiry in ms; ARGV[3]: now in unix ms;
// ARGV[4..]: this replica's consumers.
var removeGoneScript = redis.NewScript(`
local expire, now = tonumber(ARGV[2]), tonumber(ARGV[3])
for i = 4, #ARGV do redis.call('HSET', KEYS[2], ARGV[i], ARGV[3]) end
local removed, present = {}, {}
-- No stream or no group yet (a fresh start): nobody to remove.
local ok, consumers = pcall(redis.call, 'XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
if not ok then return removed end
for _, c in ipairs(consumers) do
  local f = {}
  for i = 1, #c, 2 do f[c[i]] = c[i + 1] end
  local name, idle = f['name'], tonumber(f['idle'])
  local seen = tonumber(redis.call('HGET', KEYS[2], name) or '0') or 0
  if tonumber(f['pending']) == 0 and idle and idle >= expire and now - seen >= expire then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], name)
    redis.call('HDEL', KEYS[2], name)
    removed[#removed + 1] = name
  else
    present[name] = true
  end
end
local marks = redis.call('HGETALL', KEYS[2])
for i = 1, #marks, 2 do
  if not present[marks[i]] and now - tonumber(marks[i + 1]) >= expire then
    redis.call('HDEL', KEYS[2], marks[i])
  end
end
return removed
`)

// workerNames are this replica's consumer names in the group.
func (c *Consumer) workerNames() []string {
	names := make([]string, c.cfg.Workers)
	for i := range names {
		names[i] = c.cfg.Name + "-" + strconv.Itoa(i)
	}
	return names
}

// RemoveGoneConsumers marks this replica's consumers as seen and removes the
// group's consumers that nobody has seen for ExpireIdle and that hold no
// pending entries; it returns their names.
func (c *Consumer) RemoveGoneConsumers(ctx context.Context) ([]string, error) {
	if c.cfg.ExpireIdle <= 0 {
		return nil, nil
	}
	args := []any{c.cfg.Group, c.cfg.ExpireIdle.Milliseconds(), time.Now().UnixMilli()}
	for _, n := range c.workerNames() {
		args = append(args, n)
	}
	names, err := removeGoneScript.Run(ctx, c.rdb, []string{c.cfg.Stream, c.keys.ConsumersSeen(c.cfg.Stream, c.cfg.Group)}, args...).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("removing gone consumers of %s: %w", c.cfg.Group, err)
	}
	for _, n := range names {
		c.log.Info("removed the consumer of a replica that is gone (not seen, nothing pending)", "consumer", n, "unseen_for_at_least", c.cfg.ExpireIdle)
		if c.cfg.OnConsumerRemoved != nil {
			c.cfg.OnConsumerRemoved(n)
		}
	}
	return names, nil
}

// promoteDueScript moves delayed retries whose time has come back onto their
// stream, keeping their attempt count.
// KEYS[1]: the delayed sorted set; KEYS[2]: the stream.
// ARGV[1]: now in unix ms; ARGV[2]: most entries to move.
var promoteDueScript = redis.NewScript(`
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, m in ipairs(due) do
  local e = cjson.decode(m)
  redis.call('XADD', KEYS[2], '*', 'data', e.data, 'attempt', e.attempt)
  redis.call('ZREM', KEYS[1], m)
end
return #due
`)

func (c *Consumer) promoteDue(ctx context.Context) error {
	for {
		n, err := promoteDueScript.Run(ctx, c.rdb, []string{c.keys.Delayed(c.cfg.Stream), c.cfg.Stream},
			time.Now().UnixMilli(), 100).Int()
		if err != nil || n < 100 {
			return err
		}
	}
}

func (c *Consumer) reclaim(ctx context.Context, name string) error {
	start := "0-0"
	for ctx.Err() == nil {
		msgs, next, err := c.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
			Stream: c.cfg.Stream, Group: c.cfg.Group, Consumer: name,
			MinIdle: c.cfg.ReclaimIdle, Start: start, Count: readBatch,
		}).Result()
		if err != nil {
			return err
		}
		if len(msgs) > 0 {
			c.log.Info("taking over entries left idle by another consumer", "consumer", name, "count", len(msgs))
			if err := c.handleNow(ctx, name, msgs); err != nil {
				return err
			}
		}
		if next == "0-0" || next == "" {
			return nil
		}
		start = next
	}
	return nil
}

// handleNow handles entries taken outside the read loop (this consumer's
// own pending ones after a restart, or those claimed from a consumer gone
// idle) and acknowledges the ones it finished at once: there is no next
// read here to carry the acknowledgements.
func (c *Consumer) handleNow(ctx context.Context, name string, msgs []redis.XMessage) error {
	readAt := time.Now()
	counts, err := c.deliveryCounts(ctx, name, msgs)
	if err != nil {
		return err
	}
	var acks []string
	berr := c.handleBatch(ctx, name, msgs, counts, readAt, &acks)
	if err := c.flushAcks(context.WithoutCancel(ctx), acks); err != nil {
		return err
	}
	return berr
}

// deliveryCounts reads how often each entry has been delivered: a handler that
// crashed the process never reported its failure, but the count still rises.
func (c *Consumer) deliveryCounts(ctx context.Context, name string, msgs []redis.XMessage) (map[string]int64, error) {
	pipe := c.rdb.Pipeline()
	cmds := make([]*redis.XPendingExtCmd, len(msgs))
	for i, m := range msgs {
		cmds[i] = pipe.XPendingExt(ctx, &redis.XPendingExtArgs{
			Stream: c.cfg.Stream, Group: c.cfg.Group, Start: m.ID, End: m.ID, Count: 1, Consumer: name,
		})
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	out := make(map[string]int64, len(msgs))
	for i, m := range msgs {
		if p := cmds[i].Val(); len(p) == 1 {
			out[m.ID] = p[0].RetryCount
		} else {
			out[m.ID] = 1
		}
	}
	return out, nil
}

// finishTimeout bounds the bookkeeping after a handler (ack, retry, dead
// letter), which runs even while shutting down so in-flight work completes.
const finishTimeout = 5 * time.Second

// process handles one entry and reports whether its bookkeeping (ack, retry
// or dead letter) reached Redis or, for an entry handled without AckNow,
// was added to acks.
func (c *Consumer) process(ctx context.Context, m redis.XMessage, deliveries int64, acks *[]string) bool {
	// In-flight work is finished even when shutdown begins; only new reads stop.
	work := context.WithoutCancel(ctx)
	d := &Delivery{Stream: c.cfg.Stream, Group: c.cfg.Group, ID: m.ID}
	data, hasData := m.Values[fieldData].(string)
	if !hasData {
		// Deleted under us (already handled elsewhere): just clear it.
		*acks = append(*acks, m.ID)
		return true
	}
	d.Data = []byte(data)
	attempt, _ := m.Values[fieldAttempt].(string)
	prior, _ := strconv.Atoi(attempt)
	d.Attempt = prior + int(max(deliveries-1, 0))
	// Built only when something goes wrong: most entries log nothing here.
	log := func() *slog.Logger { return c.log.With("entry", m.ID, "attempt", d.Attempt+1) }
	if d.Attempt >= c.cfg.MaxAttempts {
		return c.deadLetter(work, d, fmt.Errorf("gave up after %d deliveries that never finished (crash or timeout)", d.Attempt))
	}
	hctx, cancel := context.WithTimeout(work, c.cfg.ReclaimIdle/2)
	if d.Attempt+1 >= c.cfg.MaxAttempts {
		hctx = router.WithLastAttempt(hctx)
	}
	// The entry stays in the stream until after the handler: its batch is
	// acknowledged with the next read.
	err := c.cfg.Handler(context.WithValue(hctx, deliveryKey{}, d), d)
	cancel()
	switch {
	case err == nil:
		if d.AckNow {
			return c.finish(work, d, func(t *tx) {})
		}
		*acks = append(*acks, m.ID)
		return true
	case router.IsPermanent(err):
		log().Warn("handler failed permanently; dead-lettering", "err", err)
		return c.deadLetter(work, d, err)
	case d.Attempt+1 >= c.cfg.MaxAttempts:
		log().Warn("handler failed too often; dead-lettering", "err", err, "max_attempts", c.cfg.MaxAttempts)
		return c.deadLetter(work, d, err)
	default:
		delay := c.cfg.Backoff(d.Attempt)
		var ra *router.RetryAfterError
		if errors.As(err, &ra) && ra.After > delay {
			delay = ra.After
		}
		log().Warn("handler failed; will retry", "err", err, "retry_in", delay)
		return c.retryLater(work, d, delay)
	}
}

// finish acknowledges d together with whatever extra writes add makes.
func (c *Consumer) finish(ctx context.Context, d *Delivery, add func(*tx)) bool {
	ctx, cancel := context.WithTimeout(ctx, finishTimeout)
	defer cancel()
	t := &tx{}
	add(t)
	t.ackDelivery(d)
	if _, err := t.run(ctx, c.rdb); err != nil {
		// Still pending: another consumer takes it over after ReclaimIdle.
		c.log.Warn("could not acknowledge entry; it stays pending", "entry", d.ID, "err", err)
		return false
	}
	return true
}

type delayedEntry struct {
	ID      string `json:"id"`
	Attempt string `json:"attempt"`
	Data    string `json:"data"`
}

func (c *Consumer) retryLater(ctx context.Context, d *Delivery, delay time.Duration) bool {
	member, _ := json.Marshal(delayedEntry{ID: d.ID, Attempt: strconv.Itoa(d.Attempt + 1), Data: string(d.Data)})
	due := time.Now().Add(delay).UnixMilli()
	return c.finish(ctx, d, func(t *tx) {
		t.write("ZADD", c.keys.Delayed(c.cfg.Stream), msString(due), string(member))
	})
}

func (c *Consumer) deadLetter(ctx context.Context, d *Delivery, cause error) bool {
	ok := c.finish(ctx, d, func(t *tx) {
		t.write("XADD", c.keys.DeadLetters(), "*",
			"stream", d.Stream, "group", d.Group, "entry", d.ID,
			"attempts", strconv.Itoa(d.Attempt+1), "error", cause.Error(),
			"failed_at", time.Now().UTC().Format(time.RFC3339Nano), fieldData, string(d.Data))
	})
	if ok && c.cfg.OnDeadLetter != nil {
		c.cfg.OnDeadLetter(ctx, d, cause)
	}
	return ok
}

func (c *Consumer) ensureGroup(ctx context.Context) error {
	err := c.rdb.XGroupCreateMkStream(ctx, c.cfg.Stream, c.cfg.Group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("creating consumer group %s on %s: %w", c.cfg.Group, c.cfg.Stream, err)
	}
	return nil
}

func isNoGroup(err error) bool { return err != nil && strings.Contains(err.Error(), "NOGROUP") }

// outageBackoff waits longer the longer Redis is away: 100ms doubling to 5s,
// with jitter so replicas do not reconnect in lockstep.
func outageBackoff(failures int) time.Duration {
	d := min(100*time.Millisecond<<min(failures-1, 6), 5*time.Second)
	return d/2 + rand.N(d/2+1)
}
