// The Lua scripts of the Redis stores (./redis.js), one job each. Redis runs
// a script atomically: nothing else runs on that Redis (or Cluster node)
// between its first and last command, which is what makes a reservation or an
// approval's use one indivisible step across proxy instances.
//
// Every script takes only KEYS of one hash tag's slot when it runs on Redis
// Cluster (the stores group keys so), and returns strings where a number
// matters: Lua's own number-to-string conversion keeps 14 digits only.

// ---------------------------------------------------------------------------
// Counters

// Reads every request's current and previous bucket, admits when each one
// passes estimateCount(request, state, now) + cost <= max (wasm/memory-store.js),
// and only then charges them all.
//
// KEYS: per request, its current bucket, then its previous bucket.
// ARGV[1]: now (epoch ms); ARGV[2]: '1' to charge when admitted, '0' to only read;
// then per request: cost, max, window_ms, algorithm, bucket_start_ms, ttl_ms.
// Returns { admitted ('1'/'0'), current_1, previous_1, current_2, ... }: the
// counts as Redis holds them (strings), before this call's charge.
//
// Costs reach INCRBYFLOAT as the caller's strings, and counts go back as the
// stored strings: Lua's own number-to-string conversion keeps 14 digits only.
export const RESERVE_SCRIPT = `
local now = tonumber(ARGV[1])
local charge = ARGV[2] == '1'
local count = #KEYS / 2
local seen = { '1' }
local pending = {}
local admitted = true
for i = 1, count do
  local current_key, previous_key = KEYS[2 * i - 1], KEYS[2 * i]
  local arg = 2 + (i - 1) * 6
  local cost = tonumber(ARGV[arg + 1])
  local max = tonumber(ARGV[arg + 2])
  local window = tonumber(ARGV[arg + 3])
  local algorithm = ARGV[arg + 4]
  local start = tonumber(ARGV[arg + 5])
  local current = redis.call('GET', current_key) or '0'
  local previous = redis.call('GET', previous_key) or '0'
  seen[2 * i] = current
  seen[2 * i + 1] = previous
  -- The same arithmetic, in the same order, as the core's estimate() on doubles.
  local estimate = tonumber(current)
  if algorithm == 'sliding' then
    estimate = tonumber(previous) * (window - (now - start)) / window + tonumber(current)
  end
  -- A key repeated within the call counts what the earlier copies would add.
  local before = pending[current_key] or 0
  if not (estimate + before + cost <= max) then admitted = false end
  pending[current_key] = before + cost
end
if not admitted then seen[1] = '0' end
if admitted and charge then
  for i = 1, count do
    local arg = 2 + (i - 1) * 6
    redis.call('INCRBYFLOAT', KEYS[2 * i - 1], ARGV[arg + 1])
    -- Two windows: the bucket is still read as "previous" during the next one.
    redis.call('PEXPIRE', KEYS[2 * i - 1], ARGV[arg + 6])
  end
end
return seen
`;

// Gives charges back. KEYS: the charged buckets; ARGV: their costs, as charged.
// A bucket that expired stays gone (recreating it would start a fresh count),
// and a count never goes below zero. INCRBYFLOAT keeps the key's TTL.
export const ROLLBACK_SCRIPT = `
for i, key in ipairs(KEYS) do
  local held = redis.call('GET', key)
  if held then
    if tonumber(held) >= tonumber(ARGV[i]) then
      redis.call('INCRBYFLOAT', key, '-' .. ARGV[i])
    else
      redis.call('INCRBYFLOAT', key, '-' .. held)
    end
  end
end
return 1
`;

// ---------------------------------------------------------------------------
// Approvals (keys: ./redis.js, RedisApprovalStore)

// Uses an approval up when it is valid at `now` (the rule of
// MemoryApprovalStore.isApproved), in one step, so two proxies cannot both use it.
// KEYS[1]: the approval. ARGV: now, timeout_ms.
// Returns { approved_at, pttl } when used up (for a late-reply restore), else 0.
export const CONSUME_SCRIPT = `
local held = redis.call('GET', KEYS[1])
if not held then return 0 end
local at, now, timeout = tonumber(held), tonumber(ARGV[1]), tonumber(ARGV[2])
if not (at and now >= at and now - at <= timeout) then return 0 end
local ttl = redis.call('PTTL', KEYS[1])
redis.call('DEL', KEYS[1])
return { held, ttl }
`;

// KEYS: the approval, the request, waiting, expiring. ARGV: now, ttl_ms, id.
export const APPROVE_SCRIPT = `
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[3])
redis.call('ZREM', KEYS[4], ARGV[3])
return 1
`;

// purge(waiting, expiring, now, limit): drops the index entries of requests
// expired at `now` (their keys expire by TTL), at most `limit` of them (0: all).
const PURGE_FUNCTION = `
local function purge(waiting, expiring, now, limit)
  local expired
  if limit > 0 then
    expired = redis.call('ZRANGEBYSCORE', expiring, '-inf', now, 'LIMIT', 0, limit)
  else
    expired = redis.call('ZRANGEBYSCORE', expiring, '-inf', now)
  end
  for _, id in ipairs(expired) do
    redis.call('ZREM', waiting, id)
    redis.call('ZREM', expiring, id)
  end
end
`;

// Records a waiting request unless one is already waiting under its id (at
// the new request's requested_at). A held one that has expired is replaced:
// the agent asking again after expiry starts a new wait.
// KEYS: the request, waiting, expiring. ARGV: json, requested_at, expires_at, ttl_ms, id.
export const REQUEST_SCRIPT = `${PURGE_FUNCTION}
local held_until = redis.call('ZSCORE', KEYS[3], ARGV[5])
if held_until and tonumber(held_until) > tonumber(ARGV[2]) and redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
purge(KEYS[2], KEYS[3], ARGV[2], 100)
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[5])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[5])
return 1
`;

// The ids still waiting at `now`, in requested_at order, after dropping the
// expired ones from the index. KEYS: waiting, expiring. ARGV: now.
export const LIST_SCRIPT = `${PURGE_FUNCTION}
purge(KEYS[1], KEYS[2], ARGV[1], 0)
return redis.call('ZRANGE', KEYS[1], 0, -1)
`;

// Drops a request; 1 when it was waiting at `now`, else 0.
// KEYS: the request, waiting, expiring. ARGV: id, now.
export const REJECT_SCRIPT = `
local held_until = redis.call('ZSCORE', KEYS[3], ARGV[1])
local held = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
if held == 1 and held_until and tonumber(held_until) > tonumber(ARGV[2]) then return 1 end
return 0
`;

export const APPROVAL_SCRIPTS = [CONSUME_SCRIPT, APPROVE_SCRIPT, REQUEST_SCRIPT, LIST_SCRIPT, REJECT_SCRIPT];
