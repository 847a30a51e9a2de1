package faults_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/api"
)

// loadRate is the steady webhook load in messages per second: enough that
// every fault hits work in flight, little enough for two shared CPU cores
// with the race detector.
const loadRate = 40

func cycles() int {
	switch {
	case *cyclesFlag > 0:
		return *cyclesFlag
	case testing.Short():
		return 2
	}
	return 3
}

// Scenario 1: kill -9 a replica at random moments under a steady load, and
// restart it under the same consumer name (a StatefulSet pod). Staff reassign
// complaints meanwhile. Nothing acknowledged is lost or duplicated, every
// complaint keeps exactly one owner, changed only by its audited
// reassignments.
func TestKillReplicasUnderLoad(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	s := h.newSender("kill")
	s.start(loadRate)
	n := cycles()
	owners := []string{"anna", "bas", "chloe", "joost", "fatima"}
	for i := range n {
		time.Sleep(time.Duration(300+rand.IntN(900)) * time.Millisecond)
		reassignSome(h, owners)
		r := h.replicas[rand.IntN(len(h.replicas))]
		r.kill()
		time.Sleep(time.Duration(rand.IntN(500)) * time.Millisecond)
		r.start()
		r.waitReady()
		if (i+1)%25 == 0 {
			t.Logf("%d/%d kills", i+1, n)
		}
	}
	time.Sleep(500 * time.Millisecond)
	s.stop()
	t.Logf("%d kill -9 cycles; %s", n, s.summary())
	t.Log(h.checkInvariants(s.acknowledged(), expectations{
		// A replica killed after notifying and before acknowledging notifies
		// again when it resumes its pending entries: at most its delivery
		// workers' in-flight entries per kill.
		maxDuplicateNotifications: n * deliveryWorkers,
	}))
}

// reassignSome reassigns one open complaint, as staff do all day; under faults
// it may fail, which is fine, but a success must be on the timeline.
func reassignSome(h *harness, owners []string) {
	var list api.ComplaintList
	if code, err := h.apiGet("/v1/complaints?status=open&limit=20", &list); err != nil || code != http.StatusOK || len(list.Complaints) == 0 {
		return
	}
	c := list.Complaints[rand.IntN(len(list.Complaints))]
	to := owners[rand.IntN(len(owners))]
	if to == c.Owner {
		return
	}
	_, _ = h.apiPost("/v1/complaints/"+c.ID+"/reassign", map[string]string{
		"owner": to, "reason": fmt.Sprintf("fault suite: %s takes over", to), "actor": "faults",
	})
}

// Scenario 4: a replica paused (SIGSTOP) for longer than the reclaim idle
// time has its entries taken over; when it continues (SIGCONT) it must not
// create a second complaint or a second owner for what it was holding.
func TestPausedReplicaCannotCreateASecondOwner(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	s := h.newSender("pause")
	s.start(loadRate)
	time.Sleep(1500 * time.Millisecond)
	a := h.replicas[0]
	a.signal(syscall.SIGSTOP)
	time.Sleep(2*reclaimIdle + time.Second)
	a.signal(syscall.SIGCONT)
	time.Sleep(2 * time.Second)
	s.stop()
	t.Log(s.summary())
	t.Log(h.checkInvariants(s.acknowledged(), expectations{
		// Only what the paused replica was notifying at the very moment it
		// stopped can be notified twice.
		maxDuplicateNotifications: deliveryWorkers,
	}))
}

// Scenario 2: Redis is killed (kill -9) and restarted under load, with
// appendonly yes and appendfsync always. Nothing acknowledged is lost; while
// Redis is down the webhook answers 503, never 2xx; the replicas recover by
// themselves and do not hammer Redis in a busy loop meanwhile.
func TestRedisRestartUnderLoad(t *testing.T) {
	h := newHarness(t, harnessOptions{redisArgs: []string{"--appendonly", "yes", "--appendfsync", "always"}})
	s := h.newSender("restart")
	s.start(loadRate)
	time.Sleep(1500 * time.Millisecond)

	h.redis.Stop() // SIGKILL: no chance to flush anything not yet on disk
	down := time.Now()
	time.Sleep(1500 * time.Millisecond) // the load goes on against a dead Redis
	s.pause()
	time.Sleep(3500 * time.Millisecond) // in-flight requests end (3s client timeout)
	// Quiet period: no load, so every connection attempt is the replicas'
	// own reconnecting.
	quiet := 3 * time.Second
	before := attempts(h)
	time.Sleep(quiet)
	after := attempts(h)
	restart := time.Now()
	for i, r := range h.replicas {
		rate := float64(after[i]-before[i]) / quiet.Seconds()
		t.Logf("%s: %.1f connection attempts/s to the dead Redis", r.name, rate)
		// Backoff grows to 5s per loop; a busy loop would make thousands.
		if rate > 50 {
			t.Errorf("%s reconnects in a busy loop: %.0f connection attempts per second while Redis is down", r.name, rate)
		}
	}
	for _, a := range s.answersBetween(down, restart) {
		if a.status >= 200 && a.status < 300 {
			t.Errorf("a request sent %s after Redis died was answered %d", a.sent.Sub(down).Round(time.Millisecond), a.status)
		}
	}

	if err := h.redis.Start(); err != nil {
		t.Fatal(err)
	}
	s.resume()
	up := time.Now()
	for _, r := range h.replicas {
		r.waitReady()
		t.Logf("%s ready again %s after Redis came back", r.name, time.Since(up).Round(time.Millisecond))
	}
	time.Sleep(2 * time.Second)
	s.stop()
	t.Log(s.summary())
	t.Log(h.checkInvariants(s.acknowledged(), expectations{
		// A notification delivered while Redis died cannot be acknowledged,
		// so it is delivered again: each replica's in-flight deliveries.
		maxDuplicateNotifications: len(h.replicas) * deliveryWorkers,
	}))
}

func attempts(h *harness) []int64 {
	out := make([]int64, len(h.replicas))
	for i, r := range h.replicas {
		out[i] = r.proxy.attempts.Load()
	}
	return out
}

// Scenario 3: the network between the replicas and Redis fails. First one
// replica's connection stalls (bytes held back, then delivered late, after
// the sender gave up) for longer than the reclaim idle time, while the other
// replica carries on; then every connection is dropped for a while.
func TestRedisUnreachableThroughProxy(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	s := h.newSender("proxy")
	s.start(loadRate)
	time.Sleep(1500 * time.Millisecond)

	a := h.replicas[0]
	a.proxy.set(proxyStall)
	time.Sleep(2*reclaimIdle + time.Second)
	a.proxy.set(proxyPass)
	time.Sleep(1500 * time.Millisecond)

	dropped := time.Now()
	for _, r := range h.replicas {
		r.proxy.set(proxyDrop)
	}
	time.Sleep(2 * time.Second)
	healed := time.Now()
	for _, r := range h.replicas {
		r.proxy.set(proxyPass)
	}
	for _, an := range s.answersBetween(dropped, healed) {
		if an.got.Before(healed) && an.status >= 200 && an.status < 300 {
			t.Errorf("a request sent while Redis was unreachable was answered %d", an.status)
		}
	}
	for _, r := range h.replicas {
		r.waitReady()
	}
	t.Logf("replicas ready again %s after the network healed", time.Since(healed).Round(time.Millisecond))
	time.Sleep(2 * time.Second)
	s.stop()
	t.Log(s.summary())
	t.Log(h.checkInvariants(s.acknowledged(), expectations{
		// Deliveries in flight when a connection stalled or dropped could be
		// notified and not acknowledged: twice (stall, drop) per replica.
		maxDuplicateNotifications: 2 * len(h.replicas) * deliveryWorkers,
	}))
}
