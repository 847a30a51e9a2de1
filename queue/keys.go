package queue

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
)

// Keys builds every Redis key forgetmenot uses; no other code spells a key.
//
// All keys of a deployment share one hash tag, {namespace}. The routing step
// must change the inbound stream, the complaint, the owner's load, the thread
// index and the outbox in one atomic script, and Redis Cluster runs a script
// only on keys of one slot. One deployment's complaint traffic is far below
// what one Redis shard serves (see BENCHMARKS.md); several deployments
// (namespaces) spread over a cluster's shards.
type Keys struct {
	tag string
}

var namespacePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// NewKeys builds the key set of a namespace (letters, digits, '-' and '_').
func NewKeys(namespace string) (Keys, error) {
	if !namespacePattern.MatchString(namespace) {
		return Keys{}, fmt.Errorf("namespace %q: use 1-32 letters, digits, '-' or '_'", namespace)
	}
	return Keys{tag: "{" + namespace + "}"}, nil
}

// Pattern matches every key of the namespace (for tests and maintenance).
func (k Keys) Pattern() string { return k.tag + ":*" }

// Inbound is the stream of customer messages waiting to be routed.
func (k Keys) Inbound() string { return k.tag + ":stream:inbound" }

// Outbox is the stream of notifications and replies waiting to be delivered.
func (k Keys) Outbox() string { return k.tag + ":stream:outbox" }

// DeadLetters holds work that failed too often, with its last error.
func (k Keys) DeadLetters() string { return k.tag + ":stream:deadletters" }

// Delayed holds entries of stream waiting for a retry, scored by due time.
func (k Keys) Delayed(stream string) string { return stream + ":delayed" }

// ConsumersSeen is a hash of a group's consumer → when its replica last said
// it is alive (unix ms), so housekeeping removes only consumers of replicas
// that are gone.
func (k Keys) ConsumersSeen(stream, group string) string { return stream + ":group:" + group + ":seen" }

// Dedup remembers which message a (channel, source id) pair became. Long
// source ids are hashed so keys stay small; so is any id that looks like a
// hashed one, so that a literal "sha256:<hex>" cannot name the key of
// another, long id (and be taken for its duplicate).
func (k Keys) Dedup(channel, sourceID string) string {
	return k.tag + ":dedup:" + channel + ":" + shortID(sourceID)
}

// DedupPattern matches every dedup key of the namespace.
func (k Keys) DedupPattern() string { return k.tag + ":dedup:*" }

// shortID keeps an id as it is, or hashes it when it is long or looks like
// a hashed one.
func shortID(id string) string {
	if len(id) > 128 || strings.HasPrefix(id, hashedPrefix) {
		sum := sha256.Sum256([]byte(id))
		id = hashedPrefix + hex.EncodeToString(sum[:])
	}
	return id
}

const hashedPrefix = "sha256:"

// ComplaintSeq is the counter behind complaint ids.
func (k Keys) ComplaintSeq() string { return k.tag + ":seq:complaint" }

// Complaint is a string: the complaint's record, version first (see
// complaintRecord; before layout 6 the API's JSON, before layout 5 a hash
// of version and data).
func (k Keys) Complaint(id string) string { return k.tag + ":complaint:" + id }

// Timeline is a list of the complaint's messages and events, oldest first
// (entryRecord). It is read whole: an entry may leave out its time when
// the entry before has it, so a slice of it would start without one.
func (k Keys) Timeline(id string) string { return k.tag + ":complaint:" + id + ":timeline" }

// Complaints is a sorted set of every complaint id, scored by creation time.
func (k Keys) Complaints() string { return k.tag + ":complaints" }

// OpenComplaints is a sorted set of the open complaint ids, scored by
// creation time (unix ms), so the newest open complaints are one ZREVRANGE
// away however many are open.
func (k Keys) OpenComplaints() string { return k.tag + ":complaints:open-by-time" }

// LegacyOpenComplaints is the set of open complaint ids that layouts before
// OpenComplaints kept; Migrate folds it into OpenComplaints and deletes it.
func (k Keys) LegacyOpenComplaints() string { return k.tag + ":complaints:open" }

// OwnerOpen is the set of an owner's open complaints.
func (k Keys) OwnerOpen(owner string) string { return k.tag + ":owner:" + owner + ":open" }

// OpenCounts is a hash of owner id → the number of their open complaints
// (the size of their OwnerOpen set, kept by the same commits), and of
// LastAssignedField(owner) → unix milliseconds of their last new
// complaint: every owner's load in one HMGET, and a capacity guard that
// reads one field (SCARD is O(1) in Redis but not in the embedded server).
func (k Keys) OpenCounts() string { return k.tag + ":owners:open-count" }

// LastAssignedField is the field of OpenCounts that holds when owner last
// got a new complaint. Owner ids have no colon, so it is no owner's count.
func LastAssignedField(owner string) string { return lastAssignedPrefix + owner }

const lastAssignedPrefix = "last:"

// OwnerDue is a sorted set of an owner's open complaints that have a running
// deadline, scored by the moment they become overdue (unix ms; see
// router.Complaint.OverdueFrom): overdue now is a ZCOUNT.
func (k Keys) OwnerDue(owner string) string { return k.tag + ":owner:" + owner + ":due" }

// PromisesPending is a sorted set of open complaints with a pending promise,
// scored by the promised time (unix ms).
func (k Keys) PromisesPending() string { return k.tag + ":promises:pending" }

// PromisesBroken is a sorted set of open complaints with broken promises,
// scored by how many.
func (k Keys) PromisesBroken() string { return k.tag + ":promises:broken" }

// Layout records which key layout the namespace's data has been migrated
// to (see Store.Migrate).
func (k Keys) Layout() string { return k.tag + ":layout" }

// LegacyOwnerLastAssigned is the hash of owner id → unix milliseconds of
// their last new complaint that layouts before 4 kept beside OpenCounts;
// Migrate folds it into OpenCounts (LastAssignedField).
func (k Keys) LegacyOwnerLastAssigned() string { return k.tag + ":owners:last-assigned" }

// Threads is a hash of thread key → complaint id.
func (k Keys) Threads() string { return k.tag + ":threads" }

// State is the prefix of a scope's channel state (IMAP checkpoints, Slack
// timestamps, leases): "<prefix><key>" for each of its keys.
func (k Keys) State(scope string) string { return k.tag + ":state:" + scope + ":" }

// Once is the once-key of an applied change that no inbound message caused
// (a delivery report, a note, a rate alert): a string holding its complaint,
// kept for the once retention (ONCE_RETENTION), so the keys do not grow for
// ever. Long keys are hashed like Dedup's.
func (k Keys) Once(key string) string { return k.tag + ":once:" + shortID(key) }

// MessageComplaint is a string holding the complaint a routed message landed
// on, kept for the once retention: it makes routing idempotent (a
// redelivered message is only acknowledged) and answers "where did my
// message go" (GET /v1/messages/{id}) for that long.
func (k Keys) MessageComplaint(messageID string) string {
	return k.tag + ":message:" + shortID(messageID)
}

// OncePrefix starts every once-key; what follows is the key as Once wrote
// it (hashed when long).
func (k Keys) OncePrefix() string { return k.tag + ":once:" }

// LegacyOnce and LegacyMessageComplaints are the hashes that layouts before
// Once and MessageComplaint kept without bound; Migrate moves their fields
// to those keys and deletes them.
func (k Keys) LegacyOnce() string { return k.tag + ":once" }

// LegacyMessageComplaints: see LegacyOnce.
func (k Keys) LegacyMessageComplaints() string { return k.tag + ":messages" }

// Customer is a sorted set of a customer's complaint ids by creation time.
func (k Keys) Customer(customerKey string) string { return k.tag + ":customer:" + customerKey }

// Timers is a sorted set of pending complaint timers (member
// "complaint|kind|due-ms"), scored by due time in unix milliseconds.
func (k Keys) Timers() string { return k.tag + ":timers" }

// Absences is a hash of owner id → their latest absence recorded through the
// API, as JSON.
func (k Keys) Absences() string { return k.tag + ":absences" }

// Volumes is a hash of period ("2026-W48") → the operator's volume, as JSON.
func (k Keys) Volumes() string { return k.tag + ":volumes" }

// Breaches indexes every deadline missed by when it was missed (score:
// unix ms; member: complaint id, the breach's place in its list, and its
// kind), so a report counts the breaches of its period whenever their
// complaints were opened.
func (k Keys) Breaches() string { return k.tag + ":breaches" }

// Mentions counts, per complaint id, the "mentioned" lines messages of
// other senders added to its timeline (routing caps them).
func (k Keys) Mentions() string { return k.tag + ":mentions" }

// Migration is a string holding when a one-time data migration finished
// (RFC 3339), so replicas that start later do not run it again.
func (k Keys) Migration(name string) string { return k.tag + ":migration:" + name }
