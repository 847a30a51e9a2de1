package queue

import (
	"context"
	"errors"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// commitScript applies one guarded state change atomically. Every multi-key
// change of a complaint (routing, lifecycle changes) and every retry and
// dead letter is a tx built in Go and run by this one script, so there is
// one place where their atomicity is implemented. (Ingest, the hottest and
// simplest step, has its own two-command script: ingestScript.)
//
// The change travels flat, as plain arguments (no JSON to encode in Go and
// decode in Lua, and no complaint JSON escaped inside it), and names its
// keys by their position in KEYS, so no key is sent twice.
//
// KEYS: every key the change touches (declared for Redis Cluster; they share
// one hash tag, so one slot).
// ARGV, in order:
//
//	ack:    stream-key#, group, entry id         -- "" stream-key#: no ack; else XACK then XDEL
//	once:   kind, key#, field, legacy-key#       -- kind "": none; "s": string key (legacy-key#: a hash
//	                                             -- of older layouts, checked for field too)
//	newid:  seq-key#, provisional, base          -- "" seq-key#: none; else INCR seq, and the new id
//	                                             -- "C-<base+n>" replaces provisional in every key and argument
//	guards: count, then per guard: kind, name, key#, a, b
//	        -- "h": HGET key a (absent = "") must equal b;
//	        -- "c": the number in HGET key a (absent = 0) must be < b
//	writes: the rest, per write: command, key#, count, arguments...   -- command from a fixed list
//
// Returns {"ok", new id or ""}, {"duplicate", <value stored under once>} or
// {"conflict", <guard name>}. On duplicate only the ack runs (a redelivery is
// acknowledged, nothing is written twice); on conflict nothing runs.
var commitScript = redis.NewScript(`
local function ack()
  if ARGV[1] ~= '' then
    local s = KEYS[tonumber(ARGV[1])]
    redis.call('XACK', s, ARGV[2], ARGV[3])
    redis.call('XDEL', s, ARGV[3])
  end
end
local okind = ARGV[4]
if okind ~= '' then
  local v = redis.call('GET', KEYS[tonumber(ARGV[5])])
  if not v and ARGV[7] ~= '' then v = redis.call('HGET', KEYS[tonumber(ARGV[7])], ARGV[6]) end
  if v then
    ack()
    return {'duplicate', v}
  end
end
local ng = tonumber(ARGV[11])
local i = 12
for _ = 1, ng do
  local kind, name, key = ARGV[i], ARGV[i + 1], KEYS[tonumber(ARGV[i + 2])]
  if kind == 'c' then
    if (tonumber(redis.call('HGET', key, ARGV[i + 3]) or '0') or 0) >= tonumber(ARGV[i + 4]) then return {'conflict', name} end
  elseif (redis.call('HGET', key, ARGV[i + 3]) or '') ~= ARGV[i + 4] then
    return {'conflict', name}
  end
  i = i + 5
end
local newid, prov = '', nil
local function subst(s)
  local i, j = string.find(s, prov, 1, true)
  if not i then return s end
  local parts, pos = {}, 1
  while i do
    parts[#parts + 1] = string.sub(s, pos, i - 1)
    parts[#parts + 1] = newid
    pos = j + 1
    i, j = string.find(s, prov, pos, true)
  end
  parts[#parts + 1] = string.sub(s, pos)
  return table.concat(parts)
end
if ARGV[8] ~= '' then
  newid = 'C-' .. (tonumber(ARGV[10]) + redis.call('INCR', KEYS[tonumber(ARGV[8])]))
  prov = ARGV[9]
end
local allowed = {HSET=true, HDEL=true, HINCRBY=true, SET=true, SADD=true, SREM=true, ZADD=true, ZREM=true, RPUSH=true, XADD=true}
local n = #ARGV
while i <= n do
  local cmd, key, count = ARGV[i], KEYS[tonumber(ARGV[i + 1])], tonumber(ARGV[i + 2])
  if not allowed[cmd] then return redis.error_reply('commit: command not allowed: ' .. tostring(cmd)) end
  local args = {}
  for j = 1, count do args[j] = ARGV[i + 2 + j] end
  if prov then
    key = subst(key)
    for j = 1, count do args[j] = subst(args[j]) end
  end
  redis.call(cmd, key, unpack(args))
  i = i + 3 + count
end
ack()
return {'ok', newid}
`)

// tx is a change under construction for commitScript.
type tx struct {
	onceKind, onceKey, onceField, onceLegacy string
	newID                                    *txNewID
	guards                                   []txGuard
	Writes                                   []txWrite
	ack                                      *txAck
	keys                                     []string
	index                                    map[string]int
}

type txNewID struct {
	seqKey, provisional string
	base                int64
}

type txGuard struct {
	kind, name, key, a, b string
}

// txWrite is one command of a transaction. The commit sends writes flat;
// the erasure script takes them as JSON, hence the tags.
type txWrite struct {
	Cmd  string   `json:"cmd"`
	Key  string   `json:"key"`
	Args []string `json:"args"`
}

type txAck struct {
	Stream string
	Group  string
	ID     string
}

// touch declares key and returns its position in KEYS (1-based) as text.
func (t *tx) touch(key string) string {
	if t.index == nil {
		t.index = map[string]int{}
	}
	i, ok := t.index[key]
	if !ok {
		t.keys = append(t.keys, key)
		i = len(t.keys)
		t.index[key] = i
	}
	return strconv.Itoa(i)
}

// onceString makes the tx apply at most once per string key, and (for data
// of older layouts) per field of the legacy hash, when legacy is not "".
func (t *tx) onceString(key, legacy, field string) {
	t.touch(key)
	t.onceKind, t.onceKey, t.onceField, t.onceLegacy = "s", key, field, ""
	if legacy != "" {
		t.touch(legacy)
		t.onceLegacy = legacy
	}
}

// drawID has the script draw a new complaint id from the counter at seqKey
// (C-<base+n>) and put it wherever provisional appears in keys and
// arguments; the id comes back in txResult.value.
func (t *tx) drawID(seqKey, provisional string, base int64) {
	t.touch(seqKey)
	t.newID = &txNewID{seqKey: seqKey, provisional: provisional, base: base}
}

// fieldEquals guards that hash field key/field still holds want ("" = absent).
func (t *tx) fieldEquals(name, key, field, want string) {
	t.touch(key)
	t.guards = append(t.guards, txGuard{kind: "h", name: name, key: key, a: field, b: want})
}

// countBelow guards that the number in hash field key/field (absent: 0) is
// below limit.
func (t *tx) countBelow(name, key, field string, limit int) {
	t.touch(key)
	t.guards = append(t.guards, txGuard{kind: "c", name: name, key: key, a: field, b: strconv.Itoa(limit)})
}

// mergeable commands take any number of members or values: consecutive
// writes of one to the same key are sent as one command.
var mergeable = map[string]bool{"RPUSH": true, "ZADD": true, "ZREM": true, "SADD": true, "SREM": true, "HSET": true, "HDEL": true}

func (t *tx) write(cmd, key string, args ...string) {
	t.touch(key)
	if n := len(t.Writes); n > 0 && mergeable[cmd] && t.Writes[n-1].Cmd == cmd && t.Writes[n-1].Key == key {
		t.Writes[n-1].Args = append(t.Writes[n-1].Args, args...)
		return
	}
	t.Writes = append(t.Writes, txWrite{Cmd: cmd, Key: key, Args: args})
}

func (t *tx) ackDelivery(d *Delivery) {
	t.touch(d.Stream)
	t.ack = &txAck{Stream: d.Stream, Group: d.Group, ID: d.ID}
}

// txResult is what commitScript answered.
type txResult struct {
	status string // ok, duplicate, conflict
	value  string
}

// args encodes the tx as commitScript's ARGV.
func (t *tx) args() []any {
	n := 11 + 5*len(t.guards)
	for _, w := range t.Writes {
		n += 3 + len(w.Args)
	}
	out := make([]any, 0, n)
	if a := t.ack; a != nil {
		out = append(out, strconv.Itoa(t.index[a.Stream]), a.Group, a.ID)
	} else {
		out = append(out, "", "", "")
	}
	pos := func(key string) string {
		if key == "" {
			return ""
		}
		return strconv.Itoa(t.index[key])
	}
	out = append(out, t.onceKind, pos(t.onceKey), t.onceField, pos(t.onceLegacy))
	if id := t.newID; id != nil {
		out = append(out, pos(id.seqKey), id.provisional, strconv.FormatInt(id.base, 10))
	} else {
		out = append(out, "", "", "")
	}
	out = append(out, strconv.Itoa(len(t.guards)))
	for _, g := range t.guards {
		out = append(out, g.kind, g.name, pos(g.key), g.a, g.b)
	}
	for _, w := range t.Writes {
		out = append(out, w.Cmd, pos(w.Key), strconv.Itoa(len(w.Args)))
		for _, a := range w.Args {
			out = append(out, a)
		}
	}
	return out
}

func (t *tx) run(ctx context.Context, rdb redis.Scripter) (txResult, error) {
	res, err := commitScript.Run(ctx, rdb, t.keys, t.args()...).StringSlice()
	if err != nil {
		return txResult{}, err
	}
	if len(res) != 2 {
		return txResult{}, errors.New("commit script: unexpected reply")
	}
	return txResult{status: res[0], value: res[1]}, nil
}

// queue adds the tx to a pipeline; the script must be loaded already.
func (t *tx) queue(ctx context.Context, pipe redis.Pipeliner) {
	pipe.EvalSha(ctx, commitScript.Hash(), t.keys, t.args()...)
}

func msString(ms int64) string { return strconv.FormatInt(ms, 10) }
