package queue

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"

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
// keys by their position in KEYS, so no key is sent twice. A write may
// repeat an earlier argument by reference instead of sending it again (the
// outbox entry names the complaint the same step stores).
//
// KEYS: every key the change touches (declared for Redis Cluster; they share
// one hash tag, so one slot).
// ARGV, in order:
//
//	once:   key#, value, retention ms, legacy-key#, field
//	        -- "" key#: none; else SET key value NX PX retention claims it, and
//	        -- a key already set (or, for data of older layouts, field in the
//	        -- legacy hash) makes the change a duplicate
//	guards: count, then per guard: kind, key#, a, b
//	        -- "h": HGET key a (absent = "") must equal b;
//	        -- "v": the version of the complaint stored at key (absent = "")
//	        -- must equal b (a is unused);
//	        -- "z": ZADD key NX a b must add member b (score a): it was not there;
//	        -- "b": the number in HGET key a (absent = 0) must be < b;
//	        -- "c": HINCRBY key a 1 must stay at most b (the increment is the
//	        -- change's own: the write that would make it is left out)
//	writes: the rest, per write: command, key#, count, arguments...   -- command from a fixed list;
//	        -- a count with a trailing "r" marks a write built from pieces: there
//	        -- an argument "\0<n>" stands for ARGV[n] (for an earlier argument
//	        -- that was joined, the joined text), "\0<n>:<from>:<to>" for that
//	        -- part of it, "\0s<n>" and "\0s<n>:<from>:<to>" likewise for
//	        -- source n, and "\0+<m>" for the next m items (literals or such
//	        -- references) joined; count is the number of items.
//	        -- "XRANGE key# 2 id length" is no write but a source: the data
//	        -- field of stream entry id, which must be length bytes long. Sources
//	        -- are numbered in order from 1 and read before anything else.
//
// A source lets a write copy what Redis holds already (the inbound entry
// being routed holds the customer's message the timeline stores) instead
// of its being sent again.
//
// Returns {"ok", ""}, {"duplicate", <value stored under once>} or
// {"conflict", <guard number, from 1>} (tx.run names the guard). On duplicate and conflict nothing is written
// (a claim or increment made before a failing guard is undone); a write
// that fails undoes the claim and increments too, and answers an error. A
// source that is gone (or not as long as said) answers the error
// "commit: source gone: <id>" before anything is claimed or written.
var commitScript = redis.NewScript(storedVersionLua + `
local allowed = {HSET=true, HDEL=true, HINCRBY=true, SET=true, SADD=true, SREM=true, ZADD=true, ZREM=true, RPUSH=true, XADD=true, XACK=true, XDEL=true}
local first = 7 + 4 * tonumber(ARGV[6])
local sources = {}
do
  -- Every command is checked, and every source read, before anything is
  -- claimed or written.
  local j = first
  while j <= #ARGV do
    if ARGV[j] == 'XRANGE' then
      local e = redis.call('XRANGE', KEYS[tonumber(ARGV[j + 1])], ARGV[j + 3], ARGV[j + 3])[1]
      local data
      if e then
        for q = 1, #e[2], 2 do
          if e[2][q] == 'data' then data = e[2][q + 1] end
        end
      end
      if not data or #data ~= tonumber(ARGV[j + 4]) then return redis.error_reply('commit: source gone: ' .. ARGV[j + 3]) end
      sources[#sources + 1] = data
    elseif not allowed[ARGV[j]] then return redis.error_reply('commit: command not allowed: ' .. tostring(ARGV[j])) end
    local count = ARGV[j + 2]
    if string.byte(count, -1) == 114 then count = string.sub(count, 1, -2) end
    j = j + 3 + tonumber(count)
  end
end
local once = ARGV[1] ~= '' and KEYS[tonumber(ARGV[1])]
if once then
  if ARGV[4] ~= '' then
    local v = redis.call('HGET', KEYS[tonumber(ARGV[4])], ARGV[5])
    if v then return {'duplicate', v} end
  end
  if not redis.call('SET', once, ARGV[2], 'NX', 'PX', ARGV[3]) then
    return {'duplicate', redis.call('GET', once)}
  end
end
-- undo takes back the claim and the increments made so far, so that a
-- change that does not apply can apply on its redelivery.
local incremented, added = {}, {}
local function undo()
  for _, u in ipairs(incremented) do redis.call('HINCRBY', u[1], u[2], -1) end
  for _, a in ipairs(added) do redis.call('ZREM', a[1], a[2]) end
  if once then redis.call('DEL', once) end
end
local i = 7
for g = 1, tonumber(ARGV[6]) do
  local kind, key, a, b = ARGV[i], KEYS[tonumber(ARGV[i + 1])], ARGV[i + 2], ARGV[i + 3]
  local failed
  if kind == 'c' then
    if redis.call('HINCRBY', key, a, 1) > tonumber(b) then
      redis.call('HINCRBY', key, a, -1)
      failed = true
    else
      incremented[#incremented + 1] = {key, a}
    end
  elseif kind == 'z' then
    if redis.call('ZADD', key, 'NX', a, b) == 0 then
      failed = true
    else
      added[#added + 1] = {key, b}
    end
  elseif kind == 'v' then
    failed = storedVersion(key) ~= b
  elseif kind == 'b' then
    failed = (tonumber(redis.call('HGET', key, a) or '0') or 0) >= tonumber(b)
  else
    failed = (redis.call('HGET', key, a) or '') ~= b
  end
  if failed then
    undo()
    return {'conflict', tostring(g)}
  end
  i = i + 4
end
-- joined holds the arguments built from references so far (joined by
-- "\0+", or a single reference), by their position: a later reference to
-- one copies what was built, as Go's tx.text says.
local joined = {}
local function deref(p)
  local src, k, range = string.match(p, '^%z(s?)(%d+)(.*)$')
  local v
  if src == 's' then v = sources[tonumber(k)] else v = joined[tonumber(k)] or ARGV[tonumber(k)] end
  if range == '' then return v end
  local from, to = string.match(range, '^:(%d+):(%d+)$')
  return string.sub(v, tonumber(from), tonumber(to))
end
local function apply()
  local n = #ARGV
  while i <= n do
    local cmd, key, count = ARGV[i], KEYS[tonumber(ARGV[i + 1])], ARGV[i + 2]
    local refs = string.byte(count, -1) == 114
    if refs then count = string.sub(count, 1, -2) end
    local stop = i + 2 + tonumber(count)
    local args, j = {}, i + 3
    while j <= stop do
      local a = ARGV[j]
      if refs and string.byte(a, 1) == 0 then
        if string.byte(a, 2) == 43 then
          local m, parts = tonumber(string.sub(a, 3)), {}
          for q = 1, m do
            local p = ARGV[j + q]
            if string.byte(p, 1) == 0 then p = deref(p) end
            parts[q] = p
          end
          a = table.concat(parts)
          joined[j] = a
          j = j + m
        else
          a = deref(a)
          joined[j] = a
        end
      end
      args[#args + 1] = a
      j = j + 1
    end
    if cmd ~= 'XRANGE' then redis.call(cmd, key, unpack(args)) end
    i = stop + 1
  end
end
local ok, err = pcall(apply)
if not ok then
  -- A write failed (a key of another type, say): what was written before
  -- it stays, as in any script, but the claim and increments are taken
  -- back, so the redelivery is not taken for a duplicate of a change that
  -- never fully applied.
  undo()
  if type(err) == 'table' then err = err.err or err.message end
  return redis.error_reply('commit: ' .. tostring(err))
end
return {'ok', ''}
`)

// storedVersionLua defines, for the scripts that guard a complaint's
// version, storedVersion(key): the version of the complaint stored at key,
// a string of JSON that starts with it (see complaintHead), "" when there
// is none, and "?" for a string that is not a stored complaint (no guard
// takes a corrupt complaint for a missing one). A complaint that a layout
// before 5 stored as a hash, not yet migrated, has it in a field.
const storedVersionLua = `
local function storedVersion(key)
  local head = redis.pcall('GETRANGE', key, 0, 31)
  if type(head) == 'table' then return redis.call('HGET', key, 'version') or '' end
  if head == '' then return '' end
  return string.match(head, '^{"v":(%d+)[,}]') or string.match(head, '^{"version":(%d+)[,}]') or '?'
end
`

// tx is a change under construction for commitScript.
type tx struct {
	once   *txOnce
	guards []txGuard
	// sources are stream entries whose data pieces may copy.
	sources []txSource
	Writes  []txWrite
	keys    []string
	index   map[string]int
}

// txSource is the data field of a stream entry: data, as Go has it.
type txSource struct {
	key, id, data string
}

// txOnce makes a tx apply at most once: it claims key (a string under a
// retention) with value, and for data of older layouts also looks for field
// in the legacy hash.
type txOnce struct {
	key, value, ttlms, legacy, field string
}

// txGuard is a guard; its name (what a conflict reports) stays in Go.
type txGuard struct {
	kind, name, key, a, b string
}

// txWrite is one command of a transaction. The commit sends writes flat;
// the erasure script takes them as JSON, hence the tags.
type txWrite struct {
	Cmd  string   `json:"cmd"`
	Key  string   `json:"key"`
	Args []string `json:"args"`
	// pieces, when set, replaces Args: each argument is joined from literal
	// text and parts of earlier writes' arguments, which the script copies
	// instead of their being sent twice.
	pieces [][]txPiece
}

// txPiece is literal text, or (ref set) an argument of an earlier write or
// a source: the whole of it, or bytes [from, to) of it when to > 0. Literal
// text never starts with a NUL byte (the script would take it for a
// reference): it is JSON or a command's word.
type txPiece struct {
	lit string
	ref *txRef
}

// txRef names an argument of an earlier write of the tx, or (source > 0)
// the tx's source of that number.
type txRef struct{ write, arg, from, to, source int }

// source declares the data field of stream entry id of key, which holds
// data, as a source pieces may copy, and returns its reference. (The
// script checks the length; data is for building references into it.)
func (t *tx) source(key, id, data string) txRef {
	t.touch(key)
	t.sources = append(t.sources, txSource{key: key, id: id, data: data})
	return txRef{source: len(t.sources)}
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

// onceString makes the tx apply at most once per string key, which it sets
// to value for ttl ms, and (for data of older layouts) per field of the
// legacy hash, when legacy is not "".
func (t *tx) onceString(key, value, ttlms, legacy, field string) {
	t.touch(key)
	if legacy != "" {
		t.touch(legacy)
	}
	t.once = &txOnce{key: key, value: value, ttlms: ttlms, legacy: legacy, field: field}
}

// fieldEquals guards that hash field key/field still holds want ("" = absent).
func (t *tx) fieldEquals(name, key, field, want string) {
	t.touch(key)
	t.guards = append(t.guards, txGuard{kind: "h", name: name, key: key, a: field, b: want})
}

// addNew adds member to the sorted set key with score as a guard: the change
// applies only if member was not in it. The guards run before the writes,
// so the writes must not add it again.
func (t *tx) addNew(name, key, score, member string) {
	t.touch(key)
	t.guards = append(t.guards, txGuard{kind: "z", name: name, key: key, a: score, b: member})
}

// countBelow guards that the number in hash field key/field (absent: 0) is
// below limit.
func (t *tx) countBelow(name, key, field string, limit int) {
	t.touch(key)
	t.guards = append(t.guards, txGuard{kind: "b", name: name, key: key, a: field, b: strconv.Itoa(limit)})
}

// versionIs guards that the complaint stored at key still has version want
// ("" = absent).
func (t *tx) versionIs(name, key, want string) {
	t.touch(key)
	t.guards = append(t.guards, txGuard{kind: "v", name: name, key: key, b: want})
}

// incrementAtMost adds one to the number in hash field key/field (absent: 0)
// as a guard: the change applies only if the result is at most limit. The
// guards run before the writes, so the writes must not add the one again.
func (t *tx) incrementAtMost(name, key, field string, limit int) {
	t.touch(key)
	t.guards = append(t.guards, txGuard{kind: "c", name: name, key: key, a: field, b: strconv.Itoa(limit)})
}

// mergeable commands take any number of members or values: consecutive
// writes of one to the same key are sent as one command.
var mergeable = map[string]bool{"RPUSH": true, "ZADD": true, "ZREM": true, "SADD": true, "SREM": true, "HSET": true, "HDEL": true}

// write adds a command and returns the position of its first argument
// among the write's arguments (a merged write grows an earlier one).
func (t *tx) write(cmd, key string, args ...string) txRef {
	t.touch(key)
	if n := len(t.Writes); n > 0 && mergeable[cmd] && t.Writes[n-1].Cmd == cmd && t.Writes[n-1].Key == key {
		last := &t.Writes[n-1]
		if last.pieces == nil {
			at := len(last.Args)
			last.Args = append(last.Args, args...)
			return txRef{write: n - 1, arg: at}
		}
		if !slices.ContainsFunc(args, startsWithNUL) {
			at := len(last.pieces)
			for _, a := range args {
				last.pieces = append(last.pieces, []txPiece{{lit: a}})
			}
			return txRef{write: n - 1, arg: at}
		}
	}
	t.Writes = append(t.Writes, txWrite{Cmd: cmd, Key: key, Args: args})
	return txRef{write: len(t.Writes) - 1}
}

func startsWithNUL(a string) bool { return a != "" && a[0] == 0 }

// writePieces adds a command whose arguments are joined from pieces
// (references must name sources, or arguments of earlier writes that are
// plain text), merged into the write before as write merges plain ones. It
// returns the position of its first argument.
func (t *tx) writePieces(cmd, key string, args [][]txPiece) txRef {
	t.touch(key)
	if n := len(t.Writes); n > 0 && mergeable[cmd] && t.Writes[n-1].Cmd == cmd && t.Writes[n-1].Key == key &&
		(t.Writes[n-1].pieces != nil || !slices.ContainsFunc(t.Writes[n-1].Args, startsWithNUL)) {
		last := &t.Writes[n-1]
		if last.pieces == nil {
			for _, a := range last.Args {
				last.pieces = append(last.pieces, []txPiece{{lit: a}})
			}
			last.Args = nil
		}
		at := len(last.pieces)
		last.pieces = append(last.pieces, args...)
		return txRef{write: n - 1, arg: at}
	}
	t.Writes = append(t.Writes, txWrite{Cmd: cmd, Key: key, pieces: args})
	return txRef{write: len(t.Writes) - 1}
}

// text is what r names (an argument, joined or not, or a source, or part
// of one), as the script makes it.
func (t *tx) text(r txRef) string {
	var s string
	switch {
	case r.source > 0:
		s = t.sources[r.source-1].data
	case t.Writes[r.write].pieces == nil:
		s = t.Writes[r.write].Args[r.arg]
	default:
		var b strings.Builder
		for _, p := range t.Writes[r.write].pieces[r.arg] {
			if p.ref == nil {
				b.WriteString(p.lit)
			} else {
				b.WriteString(t.text(*p.ref))
			}
		}
		s = b.String()
	}
	if r.to > 0 {
		s = s[r.from:r.to]
	}
	return s
}

// items is the number of ARGV items w's arguments take.
func (w txWrite) items() int {
	if w.pieces == nil {
		return len(w.Args)
	}
	n := 0
	for _, a := range w.pieces {
		n++
		if len(a) != 1 {
			n += len(a)
		}
	}
	return n
}

// ackDelivery acknowledges and removes d's stream entry in the same step.
func (t *tx) ackDelivery(d *Delivery) {
	t.write("XACK", d.Stream, d.Group, d.ID)
	t.write("XDEL", d.Stream, d.ID)
}

// txResult is what commitScript answered.
type txResult struct {
	status string // ok, duplicate, conflict
	value  string
}

// args encodes the tx as commitScript's ARGV.
func (t *tx) args() []any {
	n := 6 + 4*len(t.guards) + 5*len(t.sources)
	for _, w := range t.Writes {
		n += 3 + w.items()
	}
	out := make([]any, 0, n)
	pos := func(key string) string {
		if key == "" {
			return ""
		}
		return strconv.Itoa(t.index[key])
	}
	if o := t.once; o != nil {
		out = append(out, pos(o.key), o.value, o.ttlms, pos(o.legacy), o.field)
	} else {
		out = append(out, "", "", "", "", "")
	}
	out = append(out, strconv.Itoa(len(t.guards)))
	for _, g := range t.guards {
		out = append(out, g.kind, pos(g.key), g.a, g.b)
	}
	for _, src := range t.sources {
		out = append(out, "XRANGE", pos(src.key), "2", src.id, strconv.Itoa(len(src.data)))
	}
	// ARGV position (1-based) of each write's first argument, for references.
	var starts []int
	if slices.ContainsFunc(t.Writes, func(w txWrite) bool { return w.pieces != nil }) {
		starts = make([]int, len(t.Writes))
		at := len(out) + 1
		for j, w := range t.Writes {
			starts[j] = at + 3
			at += 3 + w.items()
		}
	}
	// argAt is the ARGV position of argument a of write j (of its "\0+"
	// when it is joined).
	argAt := func(j, a int) int {
		w := t.Writes[j]
		if w.pieces == nil {
			return starts[j] + a
		}
		at := starts[j]
		for _, p := range w.pieces[:a] {
			at++
			if len(p) != 1 {
				at += len(p)
			}
		}
		return at
	}
	piece := func(p txPiece) string {
		r := p.ref
		if r == nil {
			return p.lit
		}
		var k string
		if r.source > 0 {
			k = "s" + strconv.Itoa(r.source)
		} else {
			k = strconv.Itoa(argAt(r.write, r.arg))
		}
		if r.to > 0 {
			return "\x00" + k + ":" + strconv.Itoa(r.from+1) + ":" + strconv.Itoa(r.to)
		}
		return "\x00" + k
	}
	for _, w := range t.Writes {
		if w.pieces == nil {
			out = append(out, w.Cmd, pos(w.Key), strconv.Itoa(len(w.Args)))
			for _, a := range w.Args {
				out = append(out, a)
			}
			continue
		}
		out = append(out, w.Cmd, pos(w.Key), strconv.Itoa(w.items())+"r")
		for _, a := range w.pieces {
			if len(a) == 1 {
				out = append(out, piece(a[0]))
				continue
			}
			out = append(out, "\x00+"+strconv.Itoa(len(a)))
			for _, p := range a {
				out = append(out, piece(p))
			}
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
	if res[0] == "conflict" {
		// The guard's number: its name is not sent.
		g, err := strconv.Atoi(res[1])
		if err != nil || g < 1 || g > len(t.guards) {
			return txResult{}, errors.New("commit script: unexpected reply")
		}
		res[1] = t.guards[g-1].name
	}
	return txResult{status: res[0], value: res[1]}, nil
}

// queue adds the tx to a pipeline; the script must be loaded already.
func (t *tx) queue(ctx context.Context, pipe redis.Pipeliner) {
	pipe.EvalSha(ctx, commitScript.Hash(), t.keys, t.args()...)
}

func msString(ms int64) string { return strconv.FormatInt(ms, 10) }
