package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// commitScript applies one guarded state change atomically. Every multi-key
// step of forgetmenot (ingest, routing, lifecycle changes, retries, dead
// letters) is a tx built in Go and run by this one script, so there is exactly
// one place where atomicity is implemented.
//
// KEYS: every key the change touches (declared for Redis Cluster; they share
// one hash tag, so one slot).
// ARGV[1]: JSON
//
//	{
//	  "once":   {"key": K, "field": F?},           -- if K (hash field F, or string K) exists: duplicate
//	  "guards": [{"name": N, "key": K, "field": F, "equals": V}     -- HGET K F (absent = "") must equal V
//	            |{"name": N, "key": K, "below": L}],                -- SCARD K must be < L
//	  "writes": [{"cmd": C, "key": K, "args": [...]}],              -- C from a fixed list
//	  "ack":    {"stream": S, "group": G, "id": I}                  -- XACK then XDEL
//	}
//
// Returns {"ok", ""}, {"duplicate", <value stored under once>} or
// {"conflict", <guard name>}. On duplicate only the ack runs (a redelivery is
// acknowledged, nothing is written twice); on conflict nothing runs.
var commitScript = redis.NewScript(`
local tx = cjson.decode(ARGV[1])
local function ack()
  local a = tx.ack
  if a then
    redis.call('XACK', a.stream, a.group, a.id)
    redis.call('XDEL', a.stream, a.id)
  end
end
local once = tx.once
if once then
  local v
  if once.field then v = redis.call('HGET', once.key, once.field) else v = redis.call('GET', once.key) end
  if v then
    ack()
    return {'duplicate', v}
  end
end
for _, g in ipairs(tx.guards or {}) do
  if g.below then
    if redis.call('SCARD', g.key) >= tonumber(g.below) then return {'conflict', g.name} end
  else
    local v = redis.call('HGET', g.key, g.field) or ''
    if v ~= g.equals then return {'conflict', g.name} end
  end
end
local allowed = {HSET=true, HDEL=true, SET=true, SADD=true, SREM=true, ZADD=true, ZREM=true, RPUSH=true, XADD=true}
for _, w in ipairs(tx.writes or {}) do
  if not allowed[w.cmd] then return redis.error_reply('commit: command not allowed: ' .. tostring(w.cmd)) end
  redis.call(w.cmd, w.key, unpack(w.args))
end
ack()
return {'ok', ''}
`)

// tx is a change under construction for commitScript.
type tx struct {
	Once   *txOnce   `json:"once,omitempty"`
	Guards []txGuard `json:"guards,omitempty"`
	Writes []txWrite `json:"writes,omitempty"`
	Ack    *txAck    `json:"ack,omitempty"`
	keys   []string
	seen   map[string]bool
}

type txOnce struct {
	Key   string `json:"key"`
	Field string `json:"field,omitempty"`
}

type txGuard struct {
	Name   string `json:"name"`
	Key    string `json:"key"`
	Field  string `json:"field,omitempty"`
	Equals string `json:"equals"`
	Below  int    `json:"below,omitempty"`
}

type txWrite struct {
	Cmd  string   `json:"cmd"`
	Key  string   `json:"key"`
	Args []string `json:"args"`
}

type txAck struct {
	Stream string `json:"stream"`
	Group  string `json:"group"`
	ID     string `json:"id"`
}

func (t *tx) touch(key string) {
	if t.seen == nil {
		t.seen = map[string]bool{}
	}
	if !t.seen[key] {
		t.seen[key] = true
		t.keys = append(t.keys, key)
	}
}

// once makes the tx apply at most once: if key (or hash field) exists, the tx
// is a duplicate.
func (t *tx) once(key, field string) {
	t.touch(key)
	t.Once = &txOnce{Key: key, Field: field}
}

// fieldEquals guards that hash field key/field still holds want ("" = absent).
func (t *tx) fieldEquals(name, key, field, want string) {
	t.touch(key)
	t.Guards = append(t.Guards, txGuard{Name: name, Key: key, Field: field, Equals: want})
}

// setBelow guards that the set at key has fewer than limit members.
func (t *tx) setBelow(name, key string, limit int) {
	t.touch(key)
	t.Guards = append(t.Guards, txGuard{Name: name, Key: key, Below: limit})
}

func (t *tx) write(cmd, key string, args ...string) {
	t.touch(key)
	if args == nil {
		args = []string{}
	}
	t.Writes = append(t.Writes, txWrite{Cmd: cmd, Key: key, Args: args})
}

func (t *tx) ack(d *Delivery) {
	t.touch(d.Stream)
	t.Ack = &txAck{Stream: d.Stream, Group: d.Group, ID: d.ID}
}

// txResult is what commitScript answered.
type txResult struct {
	status string // ok, duplicate, conflict
	value  string
}

func (t *tx) run(ctx context.Context, rdb redis.Scripter) (txResult, error) {
	arg, err := json.Marshal(t)
	if err != nil {
		return txResult{}, fmt.Errorf("encoding change: %w", err)
	}
	res, err := commitScript.Run(ctx, rdb, t.keys, arg).StringSlice()
	if err != nil {
		return txResult{}, err
	}
	if len(res) != 2 {
		return txResult{}, errors.New("commit script: unexpected reply")
	}
	return txResult{status: res[0], value: res[1]}, nil
}

func msString(ms int64) string { return strconv.FormatInt(ms, 10) }
