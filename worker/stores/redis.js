// RedisCounterStore: the CounterStore (wasm/index.d.ts) for several proxy
// instances sharing one set of counts, on Redis through node-redis.
//
// Each reserve() is one Lua script per hash-tag group (one group in the usual
// call): Redis runs a script atomically, so reading the counts, applying the
// spec's admission rule and charging cannot interleave with another proxy's
// call. Key layout, configuration and failure behaviour: ./README.md.

import { createClient } from 'redis';

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
const RESERVE_SCRIPT = `
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
const ROLLBACK_SCRIPT = `
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

// Marks a store made by createRedisCounterStore: its close() closes the client.
const OWNS_CLIENT = Symbol('ownsClient');

class RedisTimeoutError extends Error {
  constructor(timeoutMs) {
    super(`Redis did not answer within ${timeoutMs} ms`);
    this.name = 'RedisTimeoutError';
  }
}

// A grant id as it goes between the braces of the hash tag: Redis Cluster hashes
// the text up to the first '}', and an empty tag ('{}') would hash the whole
// key, sending one call's keys to different slots. '%' is escaped as well, so
// that distinct ids stay distinct tags.
function tagOf(request) {
  if (request.scope === 'global') return 'global';
  const escaped = String(request.grant).replace(/[%{}]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return escaped === '' ? '%' : escaped;
}

// A malformed request must not reach Redis as "NaN" or "undefined": that would
// be a Lua error at best and a wrong key at worst. Throwing denies the call.
function checkRequest(request, i) {
  const problem =
    typeof request?.key !== 'string' ? 'key is not a string'
    : !['grant', 'global'].includes(request.scope) ? 'scope is neither "grant" nor "global"'
    : !(Number.isFinite(request.cost) && request.cost >= 0) ? 'cost is not a finite non-negative number'
    : !Number.isFinite(request.max) ? 'max is not a finite number'
    : !(Number.isSafeInteger(request.window_ms) && request.window_ms > 0) ? 'window_ms is not a positive integer'
    : !Number.isSafeInteger(request.bucket_start_ms) ? 'bucket_start_ms is not an integer'
    : null;
  if (problem) throw new TypeError(`counter request ${i}: ${problem}`);
}

// Rejects with `error` after `ms`, unless cancelled.
function deadlineAfter(ms, error) {
  let timer;
  const promise = new Promise((_, reject) => {
    timer = setTimeout(() => reject(error()), ms);
  });
  return { promise, cancel: () => clearTimeout(timer) };
}

// close() waits for pending replies, which a dead server never sends; destroy()
// drops them and stops node-redis from reconnecting.
async function closeClient(client, timeoutMs) {
  const deadline = deadlineAfter(timeoutMs, () => new RedisTimeoutError(timeoutMs));
  try {
    await Promise.race([(client.close ?? client.quit).call(client), deadline.promise]);
  } catch {
    destroyClient(client);
  } finally {
    deadline.cancel();
  }
}

function destroyClient(client) {
  try {
    (client.destroy ?? client.disconnect).call(client);
  } catch {
    // already closed
  }
}

function countOf(text) {
  const value = Number(text);
  if (!Number.isFinite(value)) throw new Error(`Redis holds a count that is not a number: ${JSON.stringify(text)}`);
  return value;
}

export class RedisCounterStore {
  #client;
  #prefix;
  #timeoutMs;
  #owned;
  #shas = new Map(); // script -> Promise<sha1>, loaded once per store
  #settled = new WeakSet(); // reservations committed or rolled back

  /**
   * `client`: a connected node-redis client (v5 or later); the caller owns it
   * (and its 'error' listener) unless the store was made by createRedisCounterStore.
   * `prefix`: the first segment of every key. `timeoutMs`: how long reserve()
   * (and each rollback) waits for Redis before failing.
   */
  constructor({ client, prefix = 'tg', timeoutMs = 250, [OWNS_CLIENT]: owned = false } = {}) {
    if (!client || typeof client.sendCommand !== 'function') {
      throw new TypeError('RedisCounterStore needs `client`, a connected node-redis client');
    }
    if (typeof prefix !== 'string' || prefix === '' || /[{}]/.test(prefix)) {
      // A brace in the prefix would move the hash tag, and the Cluster slot with it.
      throw new TypeError('RedisCounterStore `prefix` must be a non-empty string without "{" or "}"');
    }
    if (!(Number.isFinite(timeoutMs) && timeoutMs > 0)) {
      throw new TypeError('RedisCounterStore `timeoutMs` must be a positive number');
    }
    this.#client = client;
    this.#prefix = prefix;
    this.#timeoutMs = timeoutMs;
    this.#owned = owned;
  }

  /** The Redis key of `request`'s bucket that starts at `start` (epoch ms). */
  keyOf(request, start = request.bucket_start_ms) {
    return `${this.#prefix}:{${tagOf(request)}}:${request.key}:${start}`;
  }

  async reserve(requests, now) {
    return this.#run(requests, now, true);
  }

  // Charges are final once reserve() returns: nothing to do but to make a
  // later rollback() a no-op.
  async commit(reservation) {
    if (reservation && typeof reservation === 'object') this.#settled.add(reservation);
  }

  // Gives back what reserve() charged, once. Marked settled before Redis is
  // asked: if the answer is lost, a retry could refund twice, taking quota
  // from other calls; giving back nothing is the fail-closed side.
  async rollback(reservation) {
    if (!reservation || typeof reservation !== 'object' || this.#settled.has(reservation)) return;
    this.#settled.add(reservation);
    await this.#giveBack(reservation.charges ?? []);
  }

  /** The counts `requests` would see, without charging. */
  async peek(requests, now = Date.now()) {
    return (await this.#run(requests, now, false)).states;
  }

  /** Loads the Lua scripts now instead of on the first call. */
  async loadScripts() {
    const deadline = performance.now() + this.#timeoutMs;
    await Promise.all([RESERVE_SCRIPT, ROLLBACK_SCRIPT].map((script) => this.#sha(script, deadline)));
  }

  /** Closes the client if this store created it (createRedisCounterStore). */
  async close() {
    if (this.#owned) await closeClient(this.#client, this.#timeoutMs);
  }

  // reserve() and peek(): one script per hash-tag group, in order of first
  // appearance. A group that denies rolls back the groups charged before it;
  // the groups after it are only read, so that every state is real and the
  // core names the right limit and retry time.
  async #run(requests, now, charge) {
    if (!Array.isArray(requests)) throw new TypeError('reserve() needs an array of counter requests');
    requests.forEach(checkRequest);
    if (!Number.isSafeInteger(now)) throw new TypeError('reserve() needs `now`, epoch milliseconds');
    const deadline = performance.now() + this.#timeoutMs;

    const groups = new Map(); // tag -> request indexes
    requests.forEach((request, i) => {
      const tag = tagOf(request);
      if (!groups.has(tag)) groups.set(tag, []);
      groups.get(tag).push(i);
    });

    const states = new Array(requests.length);
    const charges = [];
    let admitted = true;
    try {
      for (const indexes of groups.values()) {
        const group = indexes.map((i) => requests[i]);
        const result = await this.#reserveGroup(group, now, charge && admitted, deadline);
        indexes.forEach((i, j) => {
          states[i] = result.states[j];
        });
        if (!result.admitted) admitted = false;
        charges.push(...result.charges);
      }
    } catch (error) {
      // Best effort, and not awaited: the call is denied either way, and the
      // caller should not wait on a Redis that just failed.
      this.#giveBack(charges).catch(() => {});
      throw error;
    }
    if (!admitted && charges.length > 0) {
      await this.#giveBack(charges);
      charges.length = 0;
    }
    return { admitted, states, charges };
  }

  async #reserveGroup(requests, now, charge, deadline) {
    const keys = [];
    const args = [String(now), charge ? '1' : '0'];
    for (const request of requests) {
      keys.push(this.keyOf(request), this.keyOf(request, request.bucket_start_ms - request.window_ms));
      args.push(
        String(request.cost),
        String(request.max),
        String(request.window_ms),
        request.algorithm === 'sliding' ? 'sliding' : 'fixed',
        String(request.bucket_start_ms),
        String(2 * request.window_ms),
      );
    }
    const charges = requests.map((request, i) => ({ key: keys[2 * i], cost: request.cost, tag: tagOf(request) }));
    // A script that ran after reserve() gave up charged a call that was denied:
    // give that charge back as soon as the late answer shows it.
    const onLateReply = (reply) => {
      if (charge && reply?.[0] === '1') this.#giveBack(charges).catch(() => {});
    };
    const reply = await this.#eval(RESERVE_SCRIPT, keys, args, deadline, onLateReply);
    if (!Array.isArray(reply) || reply.length !== 1 + keys.length) {
      throw new Error('the Redis reserve script returned an unexpected reply');
    }
    const admitted = reply[0] === '1';
    const states = requests.map((_, i) => ({ current: countOf(reply[1 + 2 * i]), previous: countOf(reply[2 + 2 * i]) }));
    return { admitted, states, charges: admitted && charge ? charges : [] };
  }

  // One rollback script per hash-tag group.
  async #giveBack(charges) {
    const groups = new Map();
    for (const { key, cost, tag } of charges) {
      if (!groups.has(tag)) groups.set(tag, { keys: [], args: [] });
      groups.get(tag).keys.push(key);
      groups.get(tag).args.push(String(cost));
    }
    for (const { keys, args } of groups.values()) {
      await this.#eval(ROLLBACK_SCRIPT, keys, args, performance.now() + this.#timeoutMs);
    }
  }

  // EVALSHA, and EVAL when Redis lost the script (restart, failover, SCRIPT
  // FLUSH); EVAL caches it again for the next EVALSHA.
  async #eval(script, keys, args, deadline, onLateReply) {
    const sha = await this.#sha(script, deadline);
    try {
      return await this.#command(['EVALSHA', sha, String(keys.length), ...keys, ...args], deadline, onLateReply);
    } catch (error) {
      if (!String(error?.message).startsWith('NOSCRIPT')) throw error;
      return this.#command(['EVAL', script, String(keys.length), ...keys, ...args], deadline, onLateReply);
    }
  }

  #sha(script, deadline) {
    let loading = this.#shas.get(script);
    if (!loading) {
      loading = this.#command(['SCRIPT', 'LOAD', script], deadline);
      this.#shas.set(script, loading);
      loading.catch(() => this.#shas.delete(script)); // retried on the next call
    }
    return loading;
  }

  // One command, rejected once `deadline` passes. A command node-redis has not
  // written yet (it queues them while reconnecting) is aborted, so it never
  // runs late; one already written may still run, and onLateReply sees it.
  async #command(args, deadline, onLateReply) {
    const remaining = deadline - performance.now();
    if (remaining <= 0) throw new RedisTimeoutError(this.#timeoutMs);
    const abort = new AbortController();
    const reply = Promise.resolve().then(() => this.#client.sendCommand(args, { abortSignal: abort.signal }));
    const timeout = deadlineAfter(remaining, () => {
      abort.abort();
      return new RedisTimeoutError(this.#timeoutMs);
    });
    try {
      return await Promise.race([reply, timeout.promise]);
    } catch (error) {
      if (error instanceof RedisTimeoutError) reply.then(onLateReply ?? (() => {}), () => {});
      throw error;
    } finally {
      timeout.cancel();
    }
  }
}

/**
 * Creates a node-redis client for `url`, connects it and returns a store that
 * owns it (store.close() closes it). `onError` receives the client's
 * connection errors (node-redis would crash the process on an 'error' event
 * nobody listens to); meanwhile reserve() fails and calls are denied.
 */
export async function createRedisCounterStore({
  url,
  prefix,
  timeoutMs,
  connectTimeoutMs = 5000,
  clientOptions = {},
  onError = (error) => console.warn(`toolgate: Redis counter store: ${error?.message ?? error}`),
} = {}) {
  const client = createClient({ ...clientOptions, url });
  client.on('error', onError);
  const deadline = deadlineAfter(connectTimeoutMs, () => new Error(`could not connect to Redis at ${url} within ${connectTimeoutMs} ms`));
  const connecting = client.connect();
  connecting.catch(() => {}); // settled below, or moot once destroyed
  try {
    await Promise.race([connecting, deadline.promise]);
  } catch (error) {
    // node-redis would keep reconnecting in the background.
    destroyClient(client);
    throw error;
  } finally {
    deadline.cancel();
  }
  const store = new RedisCounterStore({ client, prefix, timeoutMs, [OWNS_CLIENT]: true });
  try {
    await store.loadScripts();
  } catch (error) {
    await store.close();
    throw error;
  }
  return store;
}
