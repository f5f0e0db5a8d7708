"""The Lua scripts behind JobRecord: each write is one atomic step on one hash.

Every script starts by checking that the record exists, so no write brings back
a record that expired or was deleted, and ends by renewing its expiry from the
record's own `ttl` field (the service's setting, stored with the record).
"""

_GUARD = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
"""
_TOUCH = """
local ttl = tonumber(redis.call('HGET', KEYS[1], 'ttl') or '')
if ttl and ttl > 0 and ttl < 1e9 then redis.call('EXPIRE', KEYS[1], math.floor(ttl)) end
"""
_TERMINAL = "local terminal = {SUCCEEDED=1, PARTIAL=1, FAILED=1, CANCELLED=1}\n"

# KEYS[1]: record, KEYS[2]: service settings. ARGV: default ttl, field/value pairs.
CREATE = """
local ttl = tonumber(redis.call('HGET', KEYS[2], 'record_ttl') or '') or tonumber(ARGV[1])
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

# ARGV: field, amount. Returns the new value (-1: no record).
COUNT = (
    _GUARD + "local v = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])\n" + _TOUCH + "return v"
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
    + """
local n = tonumber(redis.call('HGET', KEYS[1], 'done') or '0')
if not n then return -2 end
if redis.call('HSETNX', KEYS[1], 'done.' .. ARGV[1], 1) == 1 then
  n = redis.call('HINCRBY', KEYS[1], 'done', 1)
end
"""
    + _TOUCH
    + "return n"
)

# The end of a job. ARGV: state, error code, error message, time, and the
# state that outputs still open end in (with the same error; '' for none).
# Returns 1 when this call ended the job, 0 when it had ended before.
FINISH = (
    _GUARD
    + _TERMINAL
    + """
local old = redis.call('HGET', KEYS[1], 'state')
if old and terminal[old] then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'finished', ARGV[4], 'updated', ARGV[4])
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[1], 'error_code', ARGV[2], 'error_message', ARGV[3])
end
if ARGV[5] ~= '' then
  local n = tonumber(redis.call('HGET', KEYS[1], 'outputs') or '0') or 0
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
    + "return 1"
)
