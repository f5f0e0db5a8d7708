"""The Lua scripts behind JobRecord: each write is one atomic step on one hash.

Every script starts by checking that the record exists, so no write brings back
a record that expired or was deleted, and ends by renewing its expiry from the
record's own `ttl` field (the service's setting, stored with the record).
Numbers read from the record are checked before use: a corrupt field makes a
script return an error code, never loop or fail half-way.
"""

_GUARD = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
"""
_TOUCH = """
local ttl = tonumber(redis.call('HGET', KEYS[1], 'ttl') or '')
if ttl and ttl >= 60 and ttl < 1e9 then redis.call('EXPIRE', KEYS[1], math.floor(ttl)) end
"""
_TERMINAL = "local terminal = {SUCCEEDED=1, PARTIAL=1, FAILED=1, CANCELLED=1}\n"
# An integer field, or nil (absent: 0); false when it holds anything else.
_INTEGER = """
local function integer(field)
  local v = redis.call('HGET', KEYS[1], field)
  if not v then return 0 end
  if not string.match(v, '^%-?%d+$') or string.len(v) > 15 then return false end
  return tonumber(v)
end
"""

# KEYS[1]: record, KEYS[2]: service settings. ARGV: default ttl, field/value pairs.
CREATE = """
local ttl = tonumber(redis.call('HGET', KEYS[2], 'record_ttl') or '')
if not ttl or ttl < 60 or ttl >= 1e9 then ttl = tonumber(ARGV[1]) end
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('HSET', KEYS[1], 'ttl', ttl)
redis.call('EXPIRE', KEYS[1], math.floor(ttl))
return 1
"""

# ARGV: prefix, new state, new rank, then field/value pairs written with it.
# States only move forward (QUEUED -> RUNNING -> terminal), so a redelivered or
# late task cannot drag a finished job or output backwards.
ADVANCE = (
    _GUARD
    + """
local old = redis.call('HGET', KEYS[1], ARGV[1] .. 'state')
local ranks = {QUEUED=0, RUNNING=1}
local old_rank = 0
if old then old_rank = ranks[old] or 2 end
if tonumber(ARGV[3]) <= old_rank then return 0 end
redis.call('HSET', KEYS[1], ARGV[1] .. 'state', ARGV[2])
for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
"""
    + _TOUCH
    + "return 1"
)

# Progress only rises, and only while the output is open. Every tick is a
# heartbeat (the sweep reads `updated`), even when the percentage does not
# rise, e.g. a restarted output catching up.
PROGRESS = (
    _GUARD
    + """
local state = redis.call('HGET', KEYS[1], ARGV[1] .. 'state')
if not state or (state ~= 'QUEUED' and state ~= 'RUNNING') then return 0 end
redis.call('HSET', KEYS[1], 'updated', ARGV[3])
local old = tonumber(redis.call('HGET', KEYS[1], ARGV[1] .. 'progress') or '0') or 0
if tonumber(ARGV[2]) > old then
  redis.call('HSET', KEYS[1], ARGV[1] .. 'progress', ARGV[2])
end
"""
    + _TOUCH
    + "return 1"
)

# ARGV: field, amount. Returns the new value (-1: no record, -2: not a number).
COUNT = (
    _GUARD
    + _INTEGER
    + """
if integer(ARGV[1]) == false then return -2 end
local v = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
"""
    + _TOUCH
    + "return v"
)

# ARGV: field/value pairs.
SET = (
    _GUARD
    + "for i = 1, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end\n"
    + _TOUCH
    + "return 1"
)

# ARGV: field, value. 1 when this call set it, 0 when it was set before.
SET_ONCE = (
    _GUARD + "local v = redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])\n" + _TOUCH + "return v"
)

# ARGV: output index. Counts an output as done once (a redelivery does not
# count twice); returns how many are done (-2: the counter is corrupt).
MARK_DONE = (
    _GUARD
    + _INTEGER
    + """
local n = integer('done')
if n == false then return -2 end
if redis.call('HSETNX', KEYS[1], 'done.' .. ARGV[1], 1) == 1 then
  n = redis.call('HINCRBY', KEYS[1], 'done', 1)
end
"""
    + _TOUCH
    + "return n"
)

# The end of a job, and its `job.finished` event in the same step (no end
# without its event). KEYS[2]: the event stream, KEYS[3] and [4]: the sets of
# the tenant's open jobs and of its priority's jobs in flight (left), KEYS[5]:
# the tenant's window of output units. ARGV: state, error code, error
# message, time, the state that outputs still open end in (with the same
# error; '' for none), the stream's approximate length cap, the most outputs
# a record can have, the job key prefix, the time in seconds, how long the
# record of a job that ran nothing is kept. Returns 1 when this call ended the
# job, 0 when it had ended before.
# A job that fails or is cancelled before any output was sent to the GPUs
# (`fanned` unset: held and cancelled, or refused at intake) gives back its
# units scored in the future (a costly job's, spread over the minutes ahead
# at admission), so a huge job refused at intake does not lock its tenant
# out for hours. Once outputs were sent it keeps them all: the GPUs may run
# them at once, and a refund on cancel would let a tenant run a costly job
# for most of a minute, cancel and start the next, paying one minute each.
FINISH = (
    _GUARD
    + _TERMINAL
    + _INTEGER
    + """
local job = string.sub(KEYS[1], string.len(ARGV[8]) + 1)
redis.call('SREM', KEYS[3], job)
redis.call('SREM', KEYS[4], job)
local old = redis.call('HGET', KEYS[1], 'state')
if old and terminal[old] then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'finished', ARGV[4], 'updated', ARGV[4])
local unsent = redis.call('HEXISTS', KEYS[1], 'fanned') == 0
if unsent and (ARGV[1] == 'FAILED' or ARGV[1] == 'CANCELLED') then
  -- The admitted minute stays paid whatever this caller's clock says (the
  -- gateway scored it by its own): only members scored after it go.
  local mine = job .. ':'
  local first = tonumber(redis.call('ZSCORE', KEYS[5], mine .. '0') or '0')
  local ahead = redis.call('ZRANGEBYSCORE', KEYS[5], '(' .. ARGV[9], '+inf', 'WITHSCORES')
  for k = 1, #ahead, 2 do
    local m = ahead[k]
    if tonumber(ahead[k + 1]) > first and string.sub(m, 1, string.len(mine)) == mine then
      redis.call('ZREM', KEYS[5], m)
    end
  end
end
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[1], 'error_code', ARGV[2], 'error_message', ARGV[3])
end
local n = integer('outputs')
if ARGV[5] ~= '' and n and n > 0 and n <= tonumber(ARGV[7]) then
  for i = 0, n - 1 do
    local p = 's' .. i .. '.'
    local s = redis.call('HGET', KEYS[1], p .. 'state')
    if not s or not terminal[s] then
      redis.call('HSET', KEYS[1], p .. 'state', ARGV[5], p .. 'error_code', ARGV[2],
                 p .. 'error_message', ARGV[3])
    end
  end
end
"""
    + _TOUCH
    + """
if unsent and (ARGV[1] == 'FAILED' or ARGV[1] == 'CANCELLED') then
  -- Nothing ran: its record is a status to read, kept ARGV[10] s at most
  -- (a tenant submitting and cancelling at its quota's rate filled Redis
  -- with week-long records of nothing). Its `ttl` too: every later write
  -- (a second cancel, the webhook's) renews the expiry from it.
  local kept = tonumber(redis.call('HGET', KEYS[1], 'ttl') or '')
  if not kept or kept > tonumber(ARGV[10]) then redis.call('HSET', KEYS[1], 'ttl', ARGV[10]) end
  local left = redis.call('TTL', KEYS[1])
  if left < 0 or left > tonumber(ARGV[10]) then redis.call('EXPIRE', KEYS[1], ARGV[10]) end
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*', 'type', 'job.finished',
           'job_id', job, 'state', ARGV[1], 'at', ARGV[4])
return 1
"""
)
