// The Redis stores, for several proxy instances sharing one set of counts and
// approvals through node-redis (a plain or a Redis Cluster client):
//
// - RedisCounterStore: the CounterStore (wasm/index.d.ts). Each reserve() is
//   one Lua script per Cluster slot its keys fall in (one script, one round
//   trip, on a single Redis and for the usual call): Redis runs a script
//   atomically, so reading the counts, applying the spec's admission rule and
//   charging cannot interleave with another proxy's call.
// - RedisApprovalStore (further down): the ApprovalStore, approvals and
//   waiting requests; consume() is one script, so one approval allows one
//   call across all instances.
//
// The command layer (timeouts, cluster routing, connecting) is
// ./redis-commands.js; the scripts are ./redis-scripts.js. Key layout,
// configuration and failure behaviour: ./README.md.

import { checkApprovalId, checkApprovalRequest, checkCounterRequest, checkTime } from './checks.js';
import {
  OWNS_CLIENT,
  RedisCommands,
  checkMaxWait,
  closeRedisClient,
  connectRedisClient,
  slotOf,
} from './redis-commands.js';
import {
  APPROVAL_SCRIPTS,
  APPROVE_SCRIPT,
  CONSUME_SCRIPT,
  LIST_SCRIPT,
  REJECT_SCRIPT,
  REQUEST_SCRIPT,
  RESERVE_SCRIPT,
  ROLLBACK_SCRIPT,
} from './redis-scripts.js';

// For the importers of this module from before the split (the audit sink,
// `toolgate serve`, the package's `toolgate/stores/redis`).
export { DEFAULT_MAX_WAIT_MS, RedisCommands, closeRedisClient, connectRedisClient } from './redis-commands.js';

// Text as it goes between the braces of a hash tag: Redis Cluster hashes the
// text up to the first '}', so '{' and '}' are percent-encoded, and '%' as
// well, so that distinct texts stay distinct tags.
// Most texts hold none of the three (grant ids, counter keys): they are used
// as they are, without a regular expression's replace per call.
function tagText(text) {
  const string = String(text);
  if (!string.includes('%') && !string.includes('{') && !string.includes('}')) return string;
  return string.replace(/[%{}]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

// The hash tag of a request's keys, which decides its Cluster slot: the grant
// id for a grant-scoped counter (every counter of one grant in one slot, so a
// call with grant limits only is one script), and for a global counter
// `global:` and its own counter key, so that global counters (one per
// counter, window and `key` value) spread over the masters instead of all
// sitting in one slot. An empty grant id would make the empty tag '{}', which
// Redis ignores (hashing the whole key): it is '%'.
function tagOf(request) {
  if (request.scope === 'global') return `global:${tagText(request.key)}`;
  const tag = tagText(request.grant);
  return tag === '' ? '%' : tag;
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
    return `${this.#bucketsOf(request)}${start}`;
  }

  // What every bucket key of `request`'s counter starts with (the tag and the
  // counter key, escaped once for both buckets a call reads).
  #bucketsOf(request) {
    return `${this.#prefix}:{${tagOf(request)}}:${request.key}:`;
  }

  // Not an async function, and #run() and #reserveGroup() neither on a single
  // Redis: each async layer between the reply and authorize() added promise
  // jobs to every call's wait for its round trip (issue #17). Bad input still
  // rejects, never throws.
  reserve(requests, now) {
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

  // reserve() and peek(). On a single Redis, one script for the whole call:
  // any keys may meet in one script there (one round trip, atomic across
  // grant and global counters). On a Cluster a script's keys must share a
  // slot, so one script per slot the call's keys fall in (one for the usual
  // call: a grant's counters share its tag's slot), run one after another in
  // ascending slot order. Each script admits and charges its part atomically,
  // and a charge stays in place until every part has admitted: a part that
  // denies gives back the charges of the parts before it, and the parts after
  // it are only read, so every state is real and the core names the right
  // limit. The order is the same for every call (slots, not first
  // appearance): two calls contending for the same two counters meet on the
  // lower slot first, so one of them gets both, instead of each holding one
  // charge that denies the other. Why not one atomic step across slots, and
  // what the charges in flight cost: ./README.md, "Redis Cluster".
  #run(requests, now, charge) {
    let buckets;
    let keys;
    try {
      if (!Array.isArray(requests)) throw new TypeError('reserve() needs an array of counter requests');
      requests.forEach(checkCounterRequest);
      if (!Number.isSafeInteger(now)) throw new TypeError('reserve() needs `now`, epoch milliseconds');
      if (requests.length === 0) return Promise.resolve({ admitted: true, states: [], charges: [] }); // nothing to ask Redis
      buckets = requests.map((request) => this.#bucketsOf(request));
      keys = requests.map((request, i) => `${buckets[i]}${request.bucket_start_ms}`);
    } catch (error) {
      return Promise.reject(error);
    }
    const deadline = this.#redis.deadline();
    // One script: its result is the reservation, as it is.
    if (!this.#cluster) return this.#reserveGroup(requests, keys, buckets, -1, now, charge, deadline);
    return this.#runSlots(requests, keys, buckets, now, charge, deadline);
  }

  // #run() on a Cluster: one script per slot, in ascending slot order.
  async #runSlots(requests, keys, buckets, now, charge, deadline) {
    const groups = new Map(); // slot -> request indexes
    keys.forEach((key, i) => {
      const slot = slotOf(key);
      if (!groups.has(slot)) groups.set(slot, []);
      groups.get(slot).push(i);
    });
    const slots = [...groups.keys()].sort((a, b) => a - b);

    const states = new Array(requests.length);
    const charges = [];
    let admitted = true;
    const part = (slot, chargeIt) => {
      const indexes = groups.get(slot);
      return this.#reserveGroup(indexes.map((i) => requests[i]), indexes.map((i) => keys[i]), indexes.map((i) => buckets[i]), slot, now, chargeIt, deadline)
        .then((result) => {
          indexes.forEach((i, j) => {
            states[i] = result.states[j];
          });
          charges.push(...result.charges);
          return result.admitted;
        });
    };
    try {
      let next = 0;
      while (next < slots.length && admitted) admitted = await part(slots[next++], charge);
      if (!admitted) {
        // Denied: the parts left are only read (all at once: nothing of them
        // is charged), while the parts charged so far are given back.
        const given = charges.splice(0);
        await Promise.all([...slots.slice(next).map((slot) => part(slot, false)), this.#giveBack(given)]);
      }
    } catch (error) {
      // Best effort, and not awaited: the call is denied either way, and the
      // caller should not wait on a Redis that just failed.
      this.#giveBack(charges).catch(() => {});
      throw error;
    }
    return { admitted, states, charges };
  }

  // One script over `requests`, whose current buckets are `keys` and whose
  // bucket keys start with `buckets` (all in `slot` on a Cluster; -1 on a
  // single Redis).
  // Resolves to the reservation { admitted, states, charges }.
  #reserveGroup(requests, keys, buckets, slot, now, charge, deadline) {
    const count = requests.length;
    const scriptKeys = new Array(2 * count);
    const args = new Array(2 + 6 * count);
    args[0] = String(now);
    args[1] = charge ? '1' : '0';
    for (let i = 0; i < count; i++) {
      const request = requests[i];
      scriptKeys[2 * i] = keys[i];
      scriptKeys[2 * i + 1] = `${buckets[i]}${request.bucket_start_ms - request.window_ms}`;
      const a = 2 + 6 * i;
      args[a] = String(request.cost);
      args[a + 1] = String(request.max);
      args[a + 2] = String(request.window_ms);
      args[a + 3] = request.algorithm === 'sliding' ? 'sliding' : 'fixed';
      args[a + 4] = String(request.bucket_start_ms);
      args[a + 5] = String(2 * request.window_ms);
    }
    const chargesOf = () => requests.map((request, i) => ({ key: keys[i], cost: request.cost, slot }));
    // A script that ran after reserve() gave up charged a call that was denied:
    // give that charge back as soon as the late answer shows it.
    const onLateReply = charge
      ? (reply) => {
        if (reply?.[0] === '1') this.#giveBack(chargesOf()).catch(() => {});
      }
      : undefined;
    return this.#redis.eval(RESERVE_SCRIPT, scriptKeys, args, deadline, onLateReply).then((reply) => {
      if (!Array.isArray(reply) || reply.length !== 1 + 2 * count) {
        throw new Error('the Redis reserve script returned an unexpected reply');
      }
      const admitted = reply[0] === '1';
      const states = new Array(count);
      for (let i = 0; i < count; i++) states[i] = { current: countOf(reply[1 + 2 * i]), previous: countOf(reply[2 + 2 * i]) };
      return { admitted, states, charges: admitted && charge ? chargesOf() : [] };
    });
  }

  // One rollback script per slot, all at once (each is independent).
  async #giveBack(charges) {
    if (charges.length === 0) return;
    const groups = new Map();
    for (const { key, cost, slot } of charges) {
      if (!groups.has(slot)) groups.set(slot, { keys: [], args: [] });
      groups.get(slot).keys.push(key);
      groups.get(slot).args.push(String(cost));
    }
    const deadline = this.#redis.deadline();
    await Promise.all([...groups.values()].map(({ keys, args }) => this.#redis.eval(ROLLBACK_SCRIPT, keys, args, deadline)));
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
  maxWaitMs,
  cluster,
  connectTimeoutMs = 5000,
  clientOptions = {},
  onError = (error) => console.warn(`toolgate: Redis counter store: ${error?.message ?? error}`),
} = {}) {
  return openOwnedStore({ url, cluster, connectTimeoutMs, clientOptions, onError },
    (client) => new RedisCounterStore({ client, prefix, timeoutMs, maxWaitMs, cluster, [OWNS_CLIENT]: true }));
}

// Connects a client, makes the store that owns it and loads its scripts; a
// store whose scripts cannot load closes its client before the error goes on,
// so a failed start leaves no socket behind.
async function openOwnedStore(connection, makeStore) {
  const store = makeStore(await connectRedisClient(connection));
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
  return openOwnedStore({ url, cluster, connectTimeoutMs, clientOptions, onError },
    (client) => new RedisApprovalStore({ client, prefix, timeoutMs, maxWaitMs, approvalTtlMs, [OWNS_CLIENT]: true }));
}
