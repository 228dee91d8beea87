// RedisCounterStore: the CounterStore (wasm/index.d.ts) for several proxy
// instances sharing one set of counts, on Redis through node-redis.
//
// Each reserve() is one Lua script per hash-tag group (one group in the usual
// call): Redis runs a script atomically, so reading the counts, applying the
// spec's admission rule and charging cannot interleave with another proxy's
// call. Key layout, configuration and failure behaviour: ./README.md.
//
// RedisApprovalStore (further down): the ApprovalStore, approvals and waiting
// requests shared by the proxy instances; consume() is one script, so one
// approval allows one call across all of them.

import { checkApprovalId, checkApprovalRequest, checkCounterRequest, checkTime } from './checks.js';

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

// Marks a store made by createRedisCounterStore or createRedisApprovalStore:
// its close() closes the client.
const OWNS_CLIENT = Symbol('ownsClient');

class RedisTimeoutError extends Error {
  constructor(timeoutMs, what = 'did not answer') {
    super(`Redis ${what} within ${timeoutMs} ms`);
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

// Rejects with `error` after `ms`, unless cancelled (connecting and closing).
function deadlineAfter(ms, error) {
  let timer;
  const promise = new Promise((_, reject) => {
    timer = setTimeout(() => reject(error()), ms);
  });
  return { promise, cancel: () => clearTimeout(timer) };
}

/**
 * Closes a node-redis client (plain or cluster) within `timeoutMs`. close()
 * waits for pending replies, which a dead server never sends; past the
 * timeout, destroy() drops them and stops node-redis from reconnecting.
 */
export async function closeRedisClient(client, timeoutMs) {
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

// Whether `client` is a node-redis cluster client (createCluster()): its
// sendCommand() takes (firstKey, isReadonly, args, options), and routes the
// command to the node serving firstKey's slot.
function isClusterClient(client) {
  return typeof client.nodeClient === 'function' && 'masters' in client;
}

// The key a command is routed by on Redis Cluster: the first key of a script
// (EVAL/EVALSHA sha numkeys key ...), none for SCRIPT (node-redis sends
// SCRIPT LOAD to every node), else the command's first argument (GET, SET, MGET).
function routingKeyOf(args) {
  const name = String(args[0]).toUpperCase();
  if (name === 'EVAL' || name === 'EVALSHA') return Number(args[2]) > 0 ? args[3] : undefined;
  if (name === 'SCRIPT') return undefined;
  return args[1];
}

// The text Redis Cluster hashes for `key` (its slot): the hash tag, the text
// between the first '{' and the next '}' when that is not empty, else the
// whole key.
function hashTagOf(key) {
  const text = String(key);
  const open = text.indexOf('{');
  const close = open < 0 ? -1 : text.indexOf('}', open + 1);
  return close > open + 1 ? text.slice(open + 1, close) : text;
}

// How often and when Redis last answered, per client and per connection
// ("channel"): a plain client has one connection, so one channel; a cluster
// client one per node, here told apart by hash tag (keys of one tag share a
// slot, so a node and its connection; finer than a node, which only means
// less evidence of life, never more). Shared by every RedisCommands over the
// same client.
const answerLogs = new WeakMap(); // client -> Map<channel, { count, at: performance.now() }>

function answersOf(client) {
  let answers = answerLogs.get(client);
  if (!answers) {
    answers = new Map();
    answerLogs.set(client, answers);
  }
  return answers;
}

// An answer from Redis, an error reply (NOSCRIPT, WRONGTYPE...) included:
// proof the connection is alive. A closed socket or an aborted command is not.
// node-redis is loaded lazily (below); its ErrorReply class is looked up as
// soon as this module loads, when node-redis is there at all (a store given
// a client has it). Until then an error counts as no answer: the cautious side.
let ErrorReply;
import('redis').then((redis) => { ErrorReply = redis.ErrorReply; }, () => {});
const isAnswer = (error) => ErrorReply !== undefined && error instanceof ErrorReply;

function checkMaxWait(maxWaitMs, owner) {
  if (maxWaitMs !== undefined && !(Number.isFinite(maxWaitMs) && maxWaitMs > 0)) {
    throw new TypeError(`${owner} \`maxWaitMs\` must be a positive number`);
  }
}

// How many loop turns in a row must read no answer from Redis, besides
// timeoutMs of silence, before a command gives up (see RedisCommands.command).
// A healthy Redis answers a burst's commands every turn or two: written in one
// turn's check phase, read in the next poll phase or the one after.
const QUIET_TURNS = 3;

/** Default of `maxWaitMs`: how long any one operation may wait, even for a Redis that is answering others. */
export const DEFAULT_MAX_WAIT_MS = 10_000;

/**
 * Sends commands and Lua scripts through a plain or a cluster node-redis
 * client (routed by key on a cluster), and gives up on a Redis that stalls.
 * Shared by the counter and approval stores and the audit stream sink
 * (../audit-redis.js), so all of them fail the same way.
 *
 * A command fails when Redis has said nothing on its connection for
 * `timeoutMs` while it waited (down, stalled, paused, partitioned), or when
 * the operation's deadline (`maxWaitMs` after deadline()) passes. It does not
 * fail because this process was too busy to read the answer or to write the
 * command (issue #12: under a burst of 300 calls a plain timer denied most of
 * them with store_error, though Redis had answered; details in command()).
 */
export class RedisCommands {
  #client;
  #timeoutMs;
  #maxWaitMs;
  #cluster;
  #answers;
  #shas = new Map(); // script -> Promise<sha1>, loaded once per store

  constructor(client, timeoutMs, maxWaitMs = Math.max(DEFAULT_MAX_WAIT_MS, timeoutMs)) {
    checkMaxWait(maxWaitMs, 'RedisCommands');
    this.#client = client;
    this.#timeoutMs = timeoutMs;
    this.#maxWaitMs = maxWaitMs;
    this.#cluster = isClusterClient(client);
    this.#answers = answersOf(client);
  }

  /** Whether the client is a cluster client (createCluster()). */
  get cluster() {
    return this.#cluster;
  }

  /**
   * The deadline (performance.now() time) of an operation starting now:
   * `maxWaitMs` from now, for all its round trips together.
   */
  deadline() {
    return performance.now() + this.#maxWaitMs;
  }

  /** Loads scripts now instead of on their first use. */
  async load(scripts) {
    const deadline = this.deadline();
    await Promise.all(scripts.map((script) => this.#sha(script, deadline)));
  }

  // EVALSHA, and EVAL when Redis lost the script (restart, failover, SCRIPT
  // FLUSH); EVAL caches it again for the next EVALSHA.
  async eval(script, keys, args, deadline, onLateReply) {
    const sha = await this.#sha(script, deadline);
    try {
      return await this.command(['EVALSHA', sha, String(keys.length), ...keys, ...args], deadline, onLateReply);
    } catch (error) {
      if (!String(error?.message).startsWith('NOSCRIPT')) throw error;
      return this.command(['EVAL', script, String(keys.length), ...keys, ...args], deadline, onLateReply);
    }
  }

  #sha(script, deadline) {
    let loading = this.#shas.get(script);
    if (!loading) {
      loading = this.command(['SCRIPT', 'LOAD', script], deadline);
      this.#shas.set(script, loading);
      loading.catch(() => this.#shas.delete(script)); // retried on the next call
    }
    return loading;
  }

  // One command: rejected once Redis has been silent on its connection for
  // timeoutMs, or at `deadline`. A command node-redis has not written yet (it
  // queues them while reconnecting) is then aborted, so it never runs late;
  // one already written may still run, and onLateReply sees its reply.
  command(args, deadline, onLateReply) {
    const sentAt = performance.now();
    if (deadline - sentAt <= 0) return Promise.reject(new RedisTimeoutError(this.#maxWaitMs, 'did not answer this operation'));
    const routingKey = this.#cluster ? routingKeyOf(args) : undefined;
    const channel = routingKey === undefined ? '' : hashTagOf(routingKey);
    const abort = new AbortController();
    const options = { abortSignal: abort.signal };
    // node-redis writes what it was given in a setImmediate (the loop's check
    // phase), maybe long after sendCommand() when the loop is busy. Silence
    // counts from then: one more setImmediate, queued after node-redis's.
    let writtenAt = Infinity;
    const reply = Promise.resolve().then(() => {
      const sending = this.#cluster
        ? this.#client.sendCommand(routingKey, false, args, options)
        : this.#client.sendCommand(args, options);
      setImmediate(() => { writtenAt = performance.now(); });
      return sending;
    });
    return new Promise((resolve, reject) => {
      let settled = false;
      let timer;
      const heard = () => {
        const log = this.#answers.get(channel);
        if (log) {
          log.count += 1;
          log.at = performance.now();
        } else {
          this.#answers.set(channel, { count: 1, at: performance.now() });
        }
      };
      reply.then((value) => {
        heard();
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(value);
      }, (error) => {
        if (isAnswer(error)) heard();
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(error);
      });
      const giveUp = (error) => {
        settled = true;
        abort.abort();
        reply.then(onLateReply ?? (() => {}), () => {});
        reject(error);
      };
      // Redis counts as silent only when both hold: no answer on this
      // connection for timeoutMs, and none read in QUIET_TURNS loop turns in a
      // row. Wall time alone misjudges a busy process: a timer runs before the
      // loop polls its sockets, maybe long after it was due, while answers sit
      // unread; and node-redis writes at most one socket buffer of commands
      // per turn (it waits for 'drain'), so under a burst a command may reach
      // Redis many turns after it was sent. Turns alone misjudge an idle
      // process, whose turns take microseconds. So, once the timer fires: look
      // after the next poll phase (setImmediate), again for each quiet turn,
      // and re-arm the timer as soon as Redis answers anything.
      const check = () => {
        let since = performance.now(); // the next poll phase begins after this
        let before = this.#answers.get(channel)?.count ?? 0;
        let quietTurns = 0;
        const look = () => setImmediate(() => {
          if (settled) return;
          const now = performance.now();
          if (now >= deadline) return giveUp(new RedisTimeoutError(this.#maxWaitMs, 'did not answer this operation'));
          const log = this.#answers.get(channel);
          const count = log?.count ?? 0;
          // Silence Redis has certainly kept: from its last answer read (or
          // from the write) until the poll phase that just read nothing.
          const silentFor = count > before ? 0 : Math.max(0, since - Math.max(writtenAt, log?.at ?? -Infinity));
          if (silentFor < this.#timeoutMs) {
            timer = setTimeout(check, Math.max(1, Math.min(this.#timeoutMs - silentFor, deadline - now)));
            return;
          }
          quietTurns += 1;
          if (quietTurns >= QUIET_TURNS) return giveUp(new RedisTimeoutError(this.#timeoutMs));
          since = now;
          before = count;
          look();
        });
        look();
      };
      timer = setTimeout(check, Math.min(this.#timeoutMs, deadline - sentAt));
    });
  }
}

export class RedisCounterStore {
  #client;
  #prefix;
  #timeoutMs;
  #owned;
  #redis;
  #cluster;
  #settled = new WeakSet(); // reservations committed or rolled back

  /**
   * `client`: a connected node-redis client (v5 or later); the caller owns it
   * (and its 'error' listener) unless the store was made by createRedisCounterStore.
   * `prefix`: the first segment of every key. `timeoutMs`: how long reserve()
   * (and each rollback) waits for Redis before failing.
   */
  constructor({ client, prefix = 'tg', timeoutMs = 250, maxWaitMs, cluster = false, [OWNS_CLIENT]: owned = false } = {}) {
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
    checkMaxWait(maxWaitMs, 'RedisCounterStore');
    this.#client = client;
    this.#prefix = prefix;
    this.#timeoutMs = timeoutMs;
    this.#owned = owned;
    this.#redis = new RedisCommands(client, timeoutMs, maxWaitMs);
    // A cluster client always needs one script per slot, whatever was asked.
    this.#cluster = cluster === true || this.#redis.cluster;
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
    await this.#redis.load([RESERVE_SCRIPT, ROLLBACK_SCRIPT]);
  }

  /** Closes the client if this store created it (createRedisCounterStore). */
  async close() {
    if (this.#owned) await closeRedisClient(this.#client, this.#timeoutMs);
  }

  // reserve() and peek(): one script for the whole call on a single Redis
  // (any keys may meet in one script there: one round trip, atomic across
  // grant and global counters). With `cluster`, one script per hash-tag
  // group, in order of first appearance, since a script's keys must share a
  // slot. A group that denies rolls back the groups charged before it;
  // the groups after it are only read, so that every state is real and the
  // core names the right limit and retry time.
  async #run(requests, now, charge) {
    if (!Array.isArray(requests)) throw new TypeError('reserve() needs an array of counter requests');
    requests.forEach(checkCounterRequest);
    if (!Number.isSafeInteger(now)) throw new TypeError('reserve() needs `now`, epoch milliseconds');
    const deadline = this.#redis.deadline();

    const groups = new Map(); // tag -> request indexes
    requests.forEach((request, i) => {
      const tag = this.#cluster ? tagOf(request) : '';
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
    const charges = requests.map((request, i) => ({ key: keys[2 * i], cost: request.cost, tag: this.#cluster ? tagOf(request) : '' }));
    // A script that ran after reserve() gave up charged a call that was denied:
    // give that charge back as soon as the late answer shows it.
    const onLateReply = (reply) => {
      if (charge && reply?.[0] === '1') this.#giveBack(charges).catch(() => {});
    };
    const reply = await this.#redis.eval(RESERVE_SCRIPT, keys, args, deadline, onLateReply);
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
      await this.#redis.eval(ROLLBACK_SCRIPT, keys, args, this.#redis.deadline());
    }
  }
}

// node-redis stops writing queued commands once the socket's buffer holds
// writableHighWaterMark bytes, and goes on after 'drain', one loop turn later.
// With Node's 16 KiB, a burst of 1 000 calls reached Redis 45 scripts per
// turn, over twenty turns of a loop busy with the requests themselves; 1 MiB
// writes such a burst at once (the bytes are queued for the socket either way).
const SOCKET_DEFAULTS = { writableHighWaterMark: 1 << 20 };

// node-redis is an optional peer dependency of the package: an installed
// toolgate that never uses Redis does not carry it, so it is imported only
// here, when a client is made, and its absence says how to add it.
async function loadNodeRedis() {
  try {
    return await import('redis');
  } catch (error) {
    if (error?.code === 'ERR_MODULE_NOT_FOUND' && /['"]redis['"]/.test(error.message)) {
      throw new Error('the Redis stores need the node-redis client, which is not installed: run `npm install redis` where toolgate is installed', { cause: error });
    }
    throw error;
  }
}

/**
 * A node-redis client for `url`, connected within `connectTimeoutMs`, its
 * 'error' events sent to `onError` (node-redis would crash the process on an
 * 'error' event nobody listens to). With `cluster`, a cluster client
 * (createCluster(), clientOptions are its options) that finds the other nodes
 * from `url` (or from clientOptions.rootNodes). Close it with closeRedisClient.
 */
export async function connectRedisClient({ url, cluster = false, connectTimeoutMs = 5000, clientOptions = {}, onError }) {
  const { createClient, createCluster } = await loadNodeRedis();
  const client = cluster === true
    ? createCluster({
      ...clientOptions,
      rootNodes: clientOptions.rootNodes ?? [{ url }],
      defaults: { ...clientOptions.defaults, socket: { ...SOCKET_DEFAULTS, ...clientOptions.defaults?.socket } },
    })
    : createClient({ ...clientOptions, url, socket: { ...SOCKET_DEFAULTS, ...clientOptions.socket } });
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
  return client;
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
  maxWaitMs,
  cluster,
  connectTimeoutMs = 5000,
  clientOptions = {},
  onError = (error) => console.warn(`toolgate: Redis counter store: ${error?.message ?? error}`),
} = {}) {
  const client = await connectRedisClient({ url, cluster, connectTimeoutMs, clientOptions, onError });
  const store = new RedisCounterStore({ client, prefix, timeoutMs, maxWaitMs, cluster, [OWNS_CLIENT]: true });
  try {
    await store.loadScripts();
  } catch (error) {
    await store.close();
    throw error;
  }
  return store;
}

// ---------------------------------------------------------------------------
// RedisApprovalStore: the ApprovalStore (wasm/index.d.ts) for several proxy
// instances sharing approvals and waiting requests, with MemoryApprovalStore's
// semantics (wasm/memory-store.js). Every time is the caller's `now`, as in the
// core; Redis's own clock only drives TTLs that collect garbage.
//
// Keys, all under the one hash tag {approvals}, so that every script may touch
// any of them on Redis Cluster (one slot: approvals come at the pace of human
// decisions, and list() needs one ordered index anyway):
//   <prefix>:{approvals}:approved:<id>  approval time (epoch ms), TTL approvalTtlMs
//   <prefix>:{approvals}:request:<id>   the waiting request's JSON, TTL until expires_at (+ slack)
//   <prefix>:{approvals}:waiting        sorted set: id by requested_at (list order)
//   <prefix>:{approvals}:expiring       sorted set: id by expires_at (what has expired)

const APPROVALS_TAG = 'approvals';

// A request key outlives its expires_at by this much: its TTL runs on Redis's
// clock, and a proxy whose clock is behind must still find the request until
// its own `now` reaches expires_at (get() and list() check expires_at).
const REQUEST_CLOCK_SLACK_MS = 60_000;

// Uses an approval up when it is valid at `now` (the rule of
// MemoryApprovalStore.isApproved), in one step, so two proxies cannot both use it.
// KEYS[1]: the approval. ARGV: now, timeout_ms.
// Returns { approved_at, pttl } when used up (for a late-reply restore), else 0.
const CONSUME_SCRIPT = `
local held = redis.call('GET', KEYS[1])
if not held then return 0 end
local at, now, timeout = tonumber(held), tonumber(ARGV[1]), tonumber(ARGV[2])
if not (at and now >= at and now - at <= timeout) then return 0 end
local ttl = redis.call('PTTL', KEYS[1])
redis.call('DEL', KEYS[1])
return { held, ttl }
`;

// KEYS: the approval, the request, waiting, expiring. ARGV: now, ttl_ms, id.
const APPROVE_SCRIPT = `
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
const REQUEST_SCRIPT = `${PURGE_FUNCTION}
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
const LIST_SCRIPT = `${PURGE_FUNCTION}
purge(KEYS[1], KEYS[2], ARGV[1], 0)
return redis.call('ZRANGE', KEYS[1], 0, -1)
`;

// Drops a request; 1 when it was waiting at `now`, else 0.
// KEYS: the request, waiting, expiring. ARGV: id, now.
const REJECT_SCRIPT = `
local held_until = redis.call('ZSCORE', KEYS[3], ARGV[1])
local held = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
if held == 1 and held_until and tonumber(held_until) > tonumber(ARGV[2]) then return 1 end
return 0
`;

const APPROVAL_SCRIPTS = [CONSUME_SCRIPT, APPROVE_SCRIPT, REQUEST_SCRIPT, LIST_SCRIPT, REJECT_SCRIPT];

// A request as stored; anything else under a request key is a corrupt store,
// and an error (the proxy then fails closed) rather than a guess.
function parseRequest(text, key) {
  let request;
  try {
    request = JSON.parse(text);
  } catch {
    throw new Error(`Redis key ${key} does not hold JSON`);
  }
  if (!request || typeof request !== 'object' || typeof request.id !== 'string' || !Number.isFinite(request.expires_at)) {
    throw new Error(`Redis key ${key} does not hold an approval request`);
  }
  return request;
}

// The list order of MemoryApprovalStore: requested_at, then id by UTF-16 code
// units (Redis orders equal scores by bytes, which differs beyond the BMP).
function oldestFirst(a, b) {
  return a.requested_at - b.requested_at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

export class RedisApprovalStore {
  #client;
  #prefix;
  #timeoutMs;
  #approvalTtlMs;
  #owned;
  #redis;

  /**
   * `client`: a connected node-redis client; the caller owns it (and its
   * 'error' listener) unless the store was made by createRedisApprovalStore.
   * `prefix`: the first segment of every key. `timeoutMs`: how long one
   * operation (all its round trips) waits for Redis before rejecting.
   * `approvalTtlMs`: how long Redis keeps an approval nobody used; at least the
   * longest approval.timeout of the policies served (an approval is valid for
   * the call's timeout only, whatever this is).
   */
  constructor({ client, prefix = 'tg', timeoutMs = 250, maxWaitMs, approvalTtlMs = 24 * 60 * 60 * 1000, [OWNS_CLIENT]: owned = false } = {}) {
    if (!client || typeof client.sendCommand !== 'function') {
      throw new TypeError('RedisApprovalStore needs `client`, a connected node-redis client');
    }
    if (typeof prefix !== 'string' || prefix === '' || /[{}]/.test(prefix)) {
      throw new TypeError('RedisApprovalStore `prefix` must be a non-empty string without "{" or "}"');
    }
    if (!(Number.isFinite(timeoutMs) && timeoutMs > 0)) {
      throw new TypeError('RedisApprovalStore `timeoutMs` must be a positive number');
    }
    checkMaxWait(maxWaitMs, 'RedisApprovalStore');
    if (!(Number.isSafeInteger(approvalTtlMs) && approvalTtlMs > 0)) {
      throw new TypeError('RedisApprovalStore `approvalTtlMs` must be a positive integer');
    }
    this.#client = client;
    this.#prefix = prefix;
    this.#timeoutMs = timeoutMs;
    this.#approvalTtlMs = approvalTtlMs;
    this.#owned = owned;
    this.#redis = new RedisCommands(client, timeoutMs, maxWaitMs);
  }

  /** The Redis key of `id`'s approval. */
  approvalKey(id) {
    return `${this.#prefix}:{${APPROVALS_TAG}}:approved:${id}`;
  }

  /** The Redis key of `id`'s waiting request. */
  requestKey(id) {
    return `${this.#prefix}:{${APPROVALS_TAG}}:request:${id}`;
  }

  #indexKeys() {
    const base = `${this.#prefix}:{${APPROVALS_TAG}}`;
    return [`${base}:waiting`, `${base}:expiring`];
  }

  async approve(id, now) {
    checkApprovalId(id);
    checkTime(now, 'now');
    await this.#redis.eval(
      APPROVE_SCRIPT,
      [this.approvalKey(id), this.requestKey(id), ...this.#indexKeys()],
      [String(now), String(this.#approvalTtlMs), id],
      this.#redis.deadline(),
    );
  }

  async isApproved(id, timeoutMs, now) {
    checkApprovalId(id);
    checkTime(timeoutMs, 'timeoutMs');
    checkTime(now, 'now');
    const key = this.approvalKey(id);
    const held = await this.#redis.command(['GET', key], this.#redis.deadline());
    if (held === null) return false;
    const at = Number(held);
    if (!Number.isFinite(at)) throw new Error(`Redis key ${key} does not hold an approval time`);
    return now >= at && now - at <= timeoutMs;
  }

  // One approval, one call: the check and the delete are one script. A script
  // that ran after consume() gave up used the approval for a call that was
  // denied (fail closed); the late reply puts it back, unless it was approved
  // again meanwhile.
  async consume(id, timeoutMs, now) {
    checkApprovalId(id);
    checkTime(timeoutMs, 'timeoutMs');
    checkTime(now, 'now');
    const key = this.approvalKey(id);
    const putBack = (reply) => {
      if (!Array.isArray(reply)) return;
      const [at, ttl] = reply;
      const keepMs = Number(ttl) > 0 ? Number(ttl) : this.#approvalTtlMs;
      this.#redis.command(['SET', key, String(at), 'PX', String(keepMs), 'NX'], this.#redis.deadline()).catch(() => {});
    };
    const reply = await this.#redis.eval(CONSUME_SCRIPT, [key], [String(now), String(timeoutMs)], this.#redis.deadline(), putBack);
    return Array.isArray(reply);
  }

  async request(request) {
    checkApprovalRequest(request);
    const json = JSON.stringify(request);
    // The key lives as long as the request waits, on Redis's clock, plus slack.
    const ttlMs = Math.ceil(Math.max(0, request.expires_at - request.requested_at)) + REQUEST_CLOCK_SLACK_MS;
    await this.#redis.eval(
      REQUEST_SCRIPT,
      [this.requestKey(request.id), ...this.#indexKeys()],
      [json, String(request.requested_at), String(request.expires_at), String(ttlMs), request.id],
      this.#redis.deadline(),
    );
  }

  async get(id, now) {
    checkApprovalId(id);
    checkTime(now, 'now');
    const key = this.requestKey(id);
    const text = await this.#redis.command(['GET', key], this.#redis.deadline());
    if (text === null) return null;
    const request = parseRequest(text, key);
    return request.expires_at <= now ? null : request;
  }

  async list(now) {
    checkTime(now, 'now');
    const deadline = this.#redis.deadline();
    const ids = await this.#redis.eval(LIST_SCRIPT, this.#indexKeys(), [String(now)], deadline);
    if (!Array.isArray(ids)) throw new Error('the Redis list script returned an unexpected reply');
    if (ids.length === 0) return [];
    const keys = ids.map((id) => this.requestKey(id));
    const texts = await this.#redis.command(['MGET', ...keys], deadline);
    const waiting = [];
    texts.forEach((text, i) => {
      // Gone: decided between the two round trips, or its key's TTL ran out
      // first (Redis's clock ahead of ours by more than the slack).
      if (text === null) return;
      const request = parseRequest(text, keys[i]);
      if (request.expires_at > now) waiting.push(request);
    });
    return waiting.sort(oldestFirst);
  }

  async reject(id, now) {
    checkApprovalId(id);
    checkTime(now, 'now');
    const reply = await this.#redis.eval(
      REJECT_SCRIPT,
      [this.requestKey(id), ...this.#indexKeys()],
      [id, String(now)],
      this.#redis.deadline(),
    );
    return reply === 1;
  }

  /** Loads the Lua scripts now instead of on their first use. */
  async loadScripts() {
    await this.#redis.load(APPROVAL_SCRIPTS);
  }

  /** Closes the client if this store created it (createRedisApprovalStore). */
  async close() {
    if (this.#owned) await closeRedisClient(this.#client, this.#timeoutMs);
  }
}

/**
 * Creates a node-redis client for `url`, connects it and returns an approval
 * store that owns it (store.close() closes it). Options as for
 * createRedisCounterStore, plus `approvalTtlMs`.
 */
export async function createRedisApprovalStore({
  url,
  prefix,
  timeoutMs,
  maxWaitMs,
  approvalTtlMs,
  cluster = false,
  connectTimeoutMs = 5000,
  clientOptions = {},
  onError = (error) => console.warn(`toolgate: Redis approval store: ${error?.message ?? error}`),
} = {}) {
  const client = await connectRedisClient({ url, cluster, connectTimeoutMs, clientOptions, onError });
  const store = new RedisApprovalStore({ client, prefix, timeoutMs, maxWaitMs, approvalTtlMs, [OWNS_CLIENT]: true });
  try {
    await store.loadScripts();
  } catch (error) {
    await store.close();
    throw error;
  }
  return store;
}
