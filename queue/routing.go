package queue

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/forgetmenot/forgetmenot/router"
	"github.com/redis/go-redis/v9"
)

var _ router.RoutingReader = (*Store)(nil)

// routingInputsScript reads everything routing a message needs in one
// round trip (it only reads). The complaints it reads are named from the
// prefix, so not declared in KEYS; they carry the namespace's hash tag, so
// in a cluster they are in the slot of the declared keys.
// KEYS[1]: thread index; KEYS[2]: the customer's complaints ("" none);
// KEYS[3]: absences; KEYS[4]: owners' open counts and last assignments.
// ARGV[1]: complaint key prefix; ARGV[2]: "1" to read the absences (they
// are cached for a moment); ARGV[3]: the number of thread keys; then the
// thread keys, then the owners.
// Returns {thread ids, latest id, complaints (id, data, ...), loads (per
// owner: open count, last assignment), absences (owner, json, ...; empty
// when not read)}.
var routingInputsScript = redis.NewScript(storedComplaintLua + `
local nt = tonumber(ARGV[3])
local threads, fields = {}, {}
for i = 1, nt do threads[i] = ARGV[3 + i] end
-- Each owner's load fields (Go's loadFields): their count, then their
-- last assignment.
for i = 4 + nt, #ARGV do
  fields[#fields + 1] = ARGV[i]
  fields[#fields + 1] = 'last:' .. ARGV[i]
end
local ids = {}
if nt > 0 then ids = redis.call('HMGET', KEYS[1], unpack(threads)) end
local latest = false
if KEYS[2] ~= '' then
  local l = redis.call('ZREVRANGE', KEYS[2], 0, 0)
  if #l > 0 then latest = l[1] end
end
local want, seen = {}, {}
for i = 1, nt do
  local id = ids[i]
  if id and not seen[id] then seen[id] = true; want[#want + 1] = id end
end
if latest and not seen[latest] then want[#want + 1] = latest end
local complaints = {}
for _, id in ipairs(want) do
  local data = storedComplaint(ARGV[1] .. id)
  if data then complaints[#complaints + 1] = id; complaints[#complaints + 1] = data end
end
-- In parts: Lua unpacks at most some 8,000 values at once, and a big
-- roster's two teams may name more owners than half that.
local loads, nl = {}, 0
for from = 1, #fields, 2000 do
  local part = redis.call('HMGET', KEYS[4], unpack(fields, from, math.min(from + 1999, #fields)))
  for q = 1, #part do
    nl = nl + 1
    loads[nl] = part[q]
  end
end
local absences = {}
if ARGV[2] == '1' then absences = redis.call('HGETALL', KEYS[3]) end
return {ids, latest, complaints, loads, absences}
`)

// RoutingInputs reads what routing one message needs in one round trip:
// the thread keys' complaints, the customer's latest complaint, the loads
// and last assignments of owners, and the absences.
func (s *Store) RoutingInputs(ctx context.Context, threadKeys []string, customerKey string, owners []string) (router.RoutingInputs, error) {
	k := s.keys
	customer := ""
	if customerKey != "" {
		customer = k.Customer(customerKey)
	}
	cached, fresh, gen := s.absences.get(time.Now())
	readAbsences := "1"
	if fresh {
		readAbsences = ""
	}
	args := make([]any, 0, 3+len(threadKeys)+len(owners))
	args = append(args, k.Complaint(""), readAbsences, len(threadKeys))
	for _, t := range threadKeys {
		args = append(args, t)
	}
	for _, o := range owners {
		args = append(args, o)
	}
	res, err := routingInputsScript.Run(ctx, s.rdb, []string{k.Threads(), customer, k.Absences(), k.OpenCounts()}, args...).Slice()
	if err != nil {
		return router.RoutingInputs{}, err
	}
	if len(res) != 5 {
		return router.RoutingInputs{}, fmt.Errorf("routing inputs: unexpected reply of %d parts", len(res))
	}
	in := router.RoutingInputs{Threads: map[string]string{}, Complaints: map[string]router.Complaint{}, Loads: make(map[string]router.OwnerLoad, len(owners))}
	ids, _ := res[0].([]any)
	for i, v := range ids {
		if id, ok := v.(string); ok && i < len(threadKeys) {
			in.Threads[threadKeys[i]] = id
		}
	}
	in.Latest, _ = res[1].(string)
	cs, _ := res[2].([]any)
	for i := 0; i+1 < len(cs); i += 2 {
		id, _ := cs[i].(string)
		data, _ := cs[i+1].(string)
		c, err := decodeComplaint(data)
		if err != nil {
			return router.RoutingInputs{}, fmt.Errorf("complaint %s: %w", id, err)
		}
		in.Complaints[id] = c
	}
	loads, _ := res[3].([]any)
	for i, o := range owners {
		in.Loads[o] = ownerLoad(loads, i)
	}
	if fresh {
		in.Absences = cached
		return in, nil
	}
	abs, _ := res[4].([]any)
	for i := 0; i+1 < len(abs); i += 2 {
		owner, _ := abs[i].(string)
		v, _ := abs[i+1].(string)
		list, err := decodeAbsences(v)
		if err != nil {
			return router.RoutingInputs{}, fmt.Errorf("decoding the absences of %s: %w", owner, err)
		}
		in.Absences = append(in.Absences, list...)
	}
	s.absences.keep(in.Absences, time.Now(), gen)
	return in, nil
}

// absenceCacheTTL is how long routing uses the absences it read: they
// change when an owner goes away or comes back, a few times a day, and
// every new complaint reads them. An absence set through this process is
// seen at once; one set through another replica within this time.
const absenceCacheTTL = time.Second

// absenceCache holds the absences routing read last.
type absenceCache struct {
	mu   sync.Mutex
	list []router.Absence
	read time.Time
	// gen counts forgets: a read that began before a forget must not be
	// kept after it (it may predate the change).
	gen uint64
}

// get returns the cached absences and whether they are fresh at now, and
// the generation a read begun now belongs to.
func (c *absenceCache) get(now time.Time) ([]router.Absence, bool, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.read.IsZero() || now.Sub(c.read) >= absenceCacheTTL || now.Before(c.read) {
		return nil, false, c.gen
	}
	return slices.Clone(c.list), true, c.gen
}

// keep caches list, read at now, unless the cache was forgotten since the
// read began (gen).
func (c *absenceCache) keep(list []router.Absence, now time.Time, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	c.list, c.read = slices.Clone(list), now
}

// forget drops the cache: this process changed an absence.
func (c *absenceCache) forget() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.list, c.read = nil, time.Time{}
	c.gen++
}
