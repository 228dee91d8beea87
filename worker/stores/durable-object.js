// Counter and approval stores on Cloudflare Durable Objects, for toolgate in
// a Worker: the CounterStore and ApprovalStore of wasm/index.d.ts.
//
// ToolgateCounters is a Durable Object holding the counts of one shard: one
// grant's counters (`grant:<grant id>`) or one global counter
// (`global:<counter key>`). DurableObjectCounterStore is what the Worker passes
// to policy.authorize(): it sends each call's requests to their shard with one
// RPC. ToolgateApprovals / DurableObjectApprovalStore hold approvals and the
// requests waiting for a human, in one object. Configuration: ./README.md.
//
// Storage: the SQLite backend, through the synchronous ctx.storage.sql API.
// Every method that reads and writes counts runs start to end without an
// await, so no other request to the object can interleave (an input gate
// would also guarantee that for awaits on the object's own storage, but
// synchronous code needs no such argument), and the output gate holds the
// reply until the writes are durable. SQL also gives an index on expiry times,
// so the alarm drops dead rows with one statement. It needs the class declared
// in `new_sqlite_classes` (the backend Cloudflare recommends for new classes,
// and the only one on the Workers Free plan).

import { DurableObject } from 'cloudflare:workers';

import { admits } from '../../wasm/admission.js';
import { checkApprovalId, checkApprovalRequest, checkCounterRequest, checkTime } from './checks.js';

// A planned alarm this far in the past never fired (its retries ran out):
// plan a new one instead of waiting for it.
const LOST_ALARM_MS = 60_000;

function checkCall(requests, now) {
  if (!Array.isArray(requests)) throw new TypeError('reserve() needs an array of counter requests');
  requests.forEach(checkCounterRequest);
  if (!Number.isFinite(now)) throw new TypeError('reserve() needs `now`, epoch milliseconds');
}

// A Durable Object whose rows carry a drop time on the object's own clock,
// and an alarm that drops them when due. The subclass names its tables
// (`schema`) and says what is due (`sweep(clock)`: deletes dead rows, returns
// the earliest drop time left, or null when nothing is left).
class ExpiringObject extends DurableObject {
  #ready = false;

  get sql() {
    if (!this.#ready) {
      // Created on first use, not in the constructor: an object whose data the
      // alarm deleted stays empty (and costs nothing) until it is used again.
      this.ctx.storage.sql.exec(`${this.schema}
        CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;`);
      this.#ready = true;
    }
    return this.ctx.storage.sql;
  }

  // Makes sure the alarm goes off by `at` (epoch ms). The planned time is kept
  // in a table, not asked of getAlarm(), so callers stay synchronous.
  expireBy(at, clock) {
    const planned = this.sql.exec("SELECT value FROM meta WHERE name = 'alarm_at'").toArray()[0]?.value;
    if (planned !== undefined && planned <= at && planned > clock - LOST_ALARM_MS) return;
    this.sql.exec("INSERT INTO meta (name, value) VALUES ('alarm_at', ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value", at);
    // Not awaited: the output gate holds the reply until it is stored.
    this.ctx.storage.setAlarm(at);
  }

  async alarm() {
    const clock = Date.now();
    const next = this.ctx.storage.transactionSync(() => this.sweep(clock));
    if (next === null) {
      // Nothing left: free the object's storage altogether.
      await this.ctx.storage.deleteAll();
      this.#ready = false;
      return;
    }
    this.sql.exec("INSERT INTO meta (name, value) VALUES ('alarm_at', ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value", next);
    await this.ctx.storage.setAlarm(next);
  }
}

// One bucket per counter key and fixed-window start, like the Redis store's
// keys, so the previous bucket is a plain lookup and a rollback can tell the
// bucket it charged from a newer one. A bucket is dead two windows after its
// last charge (by the object's clock; the Redis store's TTL, same rule): it is
// read as "current" for one window and as "previous" for the next.
const COUNTER_SCHEMA = `
  CREATE TABLE IF NOT EXISTS buckets (
    key TEXT NOT NULL,
    start INTEGER NOT NULL,
    count REAL NOT NULL,
    drop_at INTEGER NOT NULL,
    PRIMARY KEY (key, start)
  ) WITHOUT ROWID;
  CREATE INDEX IF NOT EXISTS buckets_by_drop_at ON buckets (drop_at);
  CREATE TABLE IF NOT EXISTS rollbacks (id TEXT PRIMARY KEY, drop_at INTEGER NOT NULL) WITHOUT ROWID;
  CREATE INDEX IF NOT EXISTS rollbacks_by_drop_at ON rollbacks (drop_at);`;

/**
 * The counts of one shard. RPC methods: reserve(requests, now),
 * rollback(charges, reservationId), peek(requests, now), size().
 */
export class ToolgateCounters extends ExpiringObject {
  get schema() {
    return COUNTER_SCHEMA;
  }

  // The rule every store shares (wasm/admission.js): states are the counts
  // before the call; a key named twice is checked with its first charge added
  // and charged twice; all or nothing.
  reserve(requests, now) {
    checkCall(requests, now);
    const clock = Date.now();
    const result = this.ctx.storage.transactionSync(() => {
      const states = requests.map((request) => this.#state(request, clock));
      const admitted = admits(requests, states, now);
      if (!admitted) return { admitted, states, charges: [], dropAt: null };
      let dropAt = clock;
      const charges = requests.map((request) => {
        const until = clock + 2 * request.window_ms;
        // A dead row not yet swept starts again from this charge.
        this.sql.exec(
          `INSERT INTO buckets (key, start, count, drop_at) VALUES (?1, ?2, ?3, ?4)
           ON CONFLICT (key, start) DO UPDATE SET
             count = CASE WHEN drop_at <= ?5 THEN excluded.count ELSE count + excluded.count END,
             drop_at = max(drop_at, excluded.drop_at)`,
          request.key, request.bucket_start_ms, request.cost, until, clock,
        );
        dropAt = Math.max(dropAt, until);
        return { key: request.key, start: request.bucket_start_ms, cost: request.cost };
      });
      return { admitted, states, charges, dropAt };
    });
    if (result.dropAt !== null) this.expireBy(result.dropAt, clock);
    return { admitted: result.admitted, states: result.states, charges: result.charges };
  }

  // Gives back what reserve() charged, never below zero, and only to buckets
  // still alive (a dead one is not brought back). With `reservationId`, once
  // only: a copy of the reservation rolled back again gives nothing back.
  rollback(charges, reservationId) {
    if (!Array.isArray(charges)) throw new TypeError('rollback() needs the charges of a reservation');
    const clock = Date.now();
    this.ctx.storage.transactionSync(() => {
      if (reservationId !== undefined) {
        const seen = this.sql.exec('SELECT 1 FROM rollbacks WHERE id = ? AND drop_at > ?', String(reservationId), clock).toArray();
        if (seen.length > 0) return;
      }
      let dropAt = null;
      for (const { key, start, cost } of charges) {
        const rows = this.sql.exec(
          'UPDATE buckets SET count = max(0, count - ?) WHERE key = ? AND start = ? AND drop_at > ? RETURNING drop_at',
          Number(cost), String(key), Number(start), clock,
        ).toArray();
        if (rows.length > 0) dropAt = Math.max(dropAt ?? 0, rows[0].drop_at);
      }
      // Remembered as long as a bucket it touched lives; after that a repeat
      // finds nothing to give back anyway. The buckets' alarm covers it.
      if (reservationId !== undefined && dropAt !== null) {
        this.sql.exec(
          'INSERT INTO rollbacks (id, drop_at) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET drop_at = excluded.drop_at',
          String(reservationId), dropAt,
        );
      }
    });
  }

  /** The counts `requests` would see, without charging. */
  peek(requests, now) {
    checkCall(requests, now);
    const clock = Date.now();
    return requests.map((request) => this.#state(request, clock));
  }

  /** How many bucket rows the object holds (dead ones not yet swept included). */
  size() {
    return this.sql.exec('SELECT count(*) AS n FROM buckets').one().n;
  }

  #state(request, clock) {
    const previousStart = request.bucket_start_ms - request.window_ms;
    const state = { current: 0, previous: 0 };
    const rows = this.sql.exec(
      'SELECT start, count FROM buckets WHERE key = ? AND start IN (?, ?) AND drop_at > ?',
      request.key, request.bucket_start_ms, previousStart, clock,
    );
    for (const { start, count } of rows) {
      if (start === request.bucket_start_ms) state.current = count;
      else state.previous = count;
    }
    return state;
  }

  sweep(clock) {
    this.sql.exec('DELETE FROM buckets WHERE drop_at <= ?', clock);
    this.sql.exec('DELETE FROM rollbacks WHERE drop_at <= ?', clock);
    return this.sql.exec(
      'SELECT min(drop_at) AS next FROM (SELECT drop_at FROM buckets UNION ALL SELECT drop_at FROM rollbacks)',
    ).one().next;
  }
}

// Rejects with the error `make()` returns once `ms` pass, unless settled first.
// A result that arrives after that goes to `onLate`; the promise of that
// handling goes to `waitUntil`, so that a Worker keeps running until it is done
// (the request may have been answered by then).
function within(ms, promise, make, { onLate, waitUntil } = {}) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => {
      const late = promise.then((value) => onLate?.(value), () => {});
      waitUntil?.(late);
      reject(make());
    }, Math.max(0, ms));
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

class DurableObjectTimeoutError extends Error {
  constructor(what, timeoutMs) {
    super(`${what} did not answer within ${timeoutMs} ms`);
    this.name = 'DurableObjectTimeoutError';
  }
}

// key -> items, in first-seen order (Map.groupBy, which Node 20 lacks).
function groupBy(items, keyOf) {
  const groups = new Map();
  for (const item of items) {
    const key = keyOf(item);
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(item);
  }
  return groups;
}

function checkNamespace(namespace, who) {
  if (!namespace || typeof namespace.idFromName !== 'function' || typeof namespace.get !== 'function') {
    throw new TypeError(`${who} needs \`namespace\`, a Durable Object namespace binding`);
  }
}

function checkTimeout(timeoutMs, who) {
  if (!(Number.isFinite(timeoutMs) && timeoutMs > 0)) throw new TypeError(`${who} \`timeoutMs\` must be a positive number`);
}

/**
 * The CounterStore over ToolgateCounters objects. The reservation is plain
 * data: { admitted, states, charges: [{ shard, key, start, cost }], id, settled }.
 */
export class DurableObjectCounterStore {
  #namespace;
  #timeoutMs;
  #waitUntil;

  /**
   * `namespace`: the binding of a ToolgateCounters class. `timeoutMs`: how long
   * one reserve() (all its round trips) or one rollback() waits before rejecting.
   * `waitUntil`: receives the work the store leaves running when it gives up
   * (giving back a charge whose answer came late): pass
   * `(promise) => ctx.waitUntil(promise)` of the request, so that the Worker
   * is not stopped before it is done. The store holds no other state, so one
   * per request is fine.
   */
  constructor({ namespace, timeoutMs = 1000, waitUntil } = {}) {
    checkNamespace(namespace, 'DurableObjectCounterStore');
    checkTimeout(timeoutMs, 'DurableObjectCounterStore');
    if (waitUntil !== undefined && typeof waitUntil !== 'function') {
      throw new TypeError('DurableObjectCounterStore `waitUntil` must be a function');
    }
    this.#namespace = namespace;
    this.#timeoutMs = timeoutMs;
    this.#waitUntil = waitUntil;
  }

  /**
   * The object a request's counts live in. Grant-scoped counters stay with
   * their grant, so the usual call (grant limits only) is one object, one
   * round trip; each global counter has its own object, so global traffic is
   * not funnelled through one.
   */
  static shardOf(request) {
    return request.scope === 'grant' ? `grant:${request.grant}` : `global:${request.key}`;
  }

  async reserve(requests, now) {
    checkCall(requests, now);
    const id = crypto.randomUUID();
    const shards = groupBy(requests.keys(), (i) => DurableObjectCounterStore.shardOf(requests[i]));

    // Shards one after another, in sorted order: a later shard that denies
    // gives the earlier shards' charges back; the shards after it are only
    // read, so that every state is real and the core names the right limit.
    const deadline = Date.now() + this.#timeoutMs;
    const states = new Array(requests.length);
    const charges = [];
    let admitted = true;
    try {
      for (const shard of [...shards.keys()].sort()) {
        const indexes = shards.get(shard);
        const part = indexes.map((i) => requests[i]);
        const stub = this.#stub(shard);
        const result = admitted
          ? await this.#within(deadline, `Durable Object ${shard}`, () => stub.reserve(part, now), (late) =>
            // Charged after reserve() gave up on it: the call was denied.
            late?.admitted ? this.#giveBack(late.charges.map((c) => ({ shard, ...c })), id).catch(() => {}) : undefined)
          : { admitted: false, states: await this.#within(deadline, `Durable Object ${shard}`, () => stub.peek(part, now)), charges: [] };
        indexes.forEach((i, j) => {
          states[i] = result.states[j];
        });
        if (result.admitted) charges.push(...result.charges.map((c) => ({ shard, ...c })));
        else admitted = false;
      }
    } catch (error) {
      // Not awaited: the call is denied either way.
      this.#waitUntil?.(this.#giveBack(charges, id).catch(() => {}));
      throw error;
    }
    if (!admitted && charges.length > 0) {
      await this.#giveBack(charges, id);
      charges.length = 0;
    }
    return { admitted, states, charges, id, settled: false };
  }

  // The charge is in place once reserve() returns: no round trip, only a mark
  // that makes a later rollback() give nothing back. The mark is on the
  // reservation itself, so it survives being passed around as data.
  async commit(reservation) {
    if (reservation && typeof reservation === 'object') reservation.settled = true;
  }

  // Gives back what reserve() charged, once: marked settled before the objects
  // are asked (a lost answer must not lead to a second refund), and each
  // object remembers the reservation id, so a copy rolled back again refunds
  // nothing either.
  async rollback(reservation) {
    if (!reservation || typeof reservation !== 'object' || reservation.settled) return;
    reservation.settled = true;
    await this.#giveBack(reservation.charges ?? [], reservation.id);
  }

  /** The counts `requests` would see, without charging. */
  async peek(requests, now = Date.now()) {
    checkCall(requests, now);
    const deadline = Date.now() + this.#timeoutMs;
    const states = new Array(requests.length);
    const shards = groupBy(requests.keys(), (i) => DurableObjectCounterStore.shardOf(requests[i]));
    for (const [shard, indexes] of shards) {
      const part = await this.#within(deadline, `Durable Object ${shard}`, () => this.#stub(shard).peek(indexes.map((i) => requests[i]), now));
      indexes.forEach((i, j) => {
        states[i] = part[j];
      });
    }
    return states;
  }

  #stub(shard) {
    return this.#namespace.get(this.#namespace.idFromName(shard));
  }

  // Makes the RPC `call()` unless the deadline has passed already (then it is
  // not sent at all), and rejects when the deadline passes before its answer.
  #within(deadline, what, call, onLate) {
    const remaining = deadline - Date.now();
    if (remaining <= 0) return Promise.reject(new DurableObjectTimeoutError(what, this.#timeoutMs));
    return within(remaining, Promise.resolve().then(call), () => new DurableObjectTimeoutError(what, this.#timeoutMs), {
      onLate,
      waitUntil: this.#waitUntil,
    });
  }

  // One rollback RPC per shard, all at once.
  async #giveBack(charges, id) {
    if (charges.length === 0) return;
    const deadline = Date.now() + this.#timeoutMs;
    const shards = groupBy(charges, (charge) => charge.shard);
    await Promise.all(
      [...shards].map(([shard, list]) =>
        this.#within(deadline, `Durable Object ${shard}`, () => this.#stub(shard).rollback(list.map(({ key, start, cost }) => ({ key, start, cost })), id)),
      ),
    );
  }
}

// Approvals and waiting requests. Both tables are read with the caller's
// `now`, as in MemoryApprovalStore; drop_at is only garbage collection, on the
// object's clock (an approval nobody used: `keepMs` after approve(); a request:
// once it expired, measured from when it was recorded, plus slack for clock skew).
const APPROVAL_SCHEMA = `
  CREATE TABLE IF NOT EXISTS approvals (id TEXT PRIMARY KEY, approved_at REAL NOT NULL, drop_at INTEGER NOT NULL) WITHOUT ROWID;
  CREATE INDEX IF NOT EXISTS approvals_by_drop_at ON approvals (drop_at);
  CREATE TABLE IF NOT EXISTS requests (
    id TEXT PRIMARY KEY,
    requested_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    body TEXT NOT NULL,
    drop_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX IF NOT EXISTS requests_by_drop_at ON requests (drop_at);`;

const REQUEST_CLOCK_SLACK_MS = 60_000;

/**
 * Approvals and the requests waiting for a human. RPC methods as the
 * ApprovalStore interface (approve takes a third argument, how long to keep
 * an unused approval), each one atomic; and take/restore, consume() for a
 * caller that may have to undo it.
 */
export class ToolgateApprovals extends ExpiringObject {
  get schema() {
    return APPROVAL_SCHEMA;
  }

  approve(id, now, keepMs) {
    checkApprovalId(id);
    checkTime(now, 'now');
    checkTime(keepMs, 'keepMs');
    const dropAt = Date.now() + keepMs;
    this.ctx.storage.transactionSync(() => {
      this.sql.exec(
        'INSERT INTO approvals (id, approved_at, drop_at) VALUES (?1, ?2, ?3) ON CONFLICT (id) DO UPDATE SET approved_at = ?2, drop_at = ?3',
        id, now, dropAt,
      );
      this.sql.exec('DELETE FROM requests WHERE id = ?', id);
    });
    this.expireBy(dropAt, Date.now());
  }

  isApproved(id, timeoutMs, now) {
    checkApprovalId(id);
    checkTime(timeoutMs, 'timeoutMs');
    checkTime(now, 'now');
    return this.#approvedAt(id, timeoutMs, now) !== null;
  }

  consume(id, timeoutMs, now) {
    return this.take(id, timeoutMs, now) !== null;
  }

  // consume(), answering the approval time used up (or null), so that a
  // caller that gave up waiting can put it back (restore).
  // The check and the delete in one synchronous step: one approval, one call.
  take(id, timeoutMs, now) {
    checkApprovalId(id);
    checkTime(timeoutMs, 'timeoutMs');
    checkTime(now, 'now');
    const at = this.#approvedAt(id, timeoutMs, now);
    if (at !== null) this.sql.exec('DELETE FROM approvals WHERE id = ?', id);
    return at;
  }

  // Puts back an approval take() used up for a call that was then denied,
  // unless the id was approved again meanwhile.
  restore(id, approvedAt, keepMs) {
    checkApprovalId(id);
    checkTime(approvedAt, 'approvedAt');
    checkTime(keepMs, 'keepMs');
    const dropAt = Date.now() + keepMs;
    this.sql.exec('INSERT INTO approvals (id, approved_at, drop_at) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING', id, approvedAt, dropAt);
    this.expireBy(dropAt, Date.now());
  }

  // Keeps the first request of an id while it waits; one that expired by the
  // new request's time is replaced (it could never be listed again).
  request(request) {
    checkApprovalRequest(request);
    const body = JSON.stringify(request);
    const dropAt = Date.now() + Math.max(0, request.expires_at - request.requested_at) + REQUEST_CLOCK_SLACK_MS;
    this.ctx.storage.transactionSync(() => {
      this.sql.exec('DELETE FROM requests WHERE expires_at <= ?', request.requested_at);
      this.sql.exec(
        'INSERT INTO requests (id, requested_at, expires_at, body, drop_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING',
        request.id, request.requested_at, request.expires_at, body, dropAt,
      );
    });
    this.expireBy(dropAt, Date.now());
  }

  get(id, now) {
    checkApprovalId(id);
    checkTime(now, 'now');
    const row = this.sql.exec('SELECT body, expires_at FROM requests WHERE id = ?', id).toArray()[0];
    if (!row) return null;
    if (row.expires_at <= now) {
      this.sql.exec('DELETE FROM requests WHERE id = ?', id);
      return null;
    }
    return JSON.parse(row.body);
  }

  list(now) {
    checkTime(now, 'now');
    this.sql.exec('DELETE FROM requests WHERE expires_at <= ?', now);
    // Sorted here, not by SQL: SQLite compares UTF-8 bytes, JavaScript (and
    // MemoryApprovalStore) UTF-16 code units, and they disagree past U+FFFF.
    return this.sql
      .exec('SELECT body FROM requests')
      .toArray()
      .map((row) => JSON.parse(row.body))
      .sort((a, b) => a.requested_at - b.requested_at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  reject(id, now) {
    const waiting = this.get(id, now) !== null;
    this.sql.exec('DELETE FROM requests WHERE id = ?', id);
    return waiting;
  }

  #approvedAt(id, timeoutMs, now) {
    const row = this.sql.exec('SELECT approved_at FROM approvals WHERE id = ?', id).toArray()[0];
    if (!row) return null;
    const at = row.approved_at;
    return now >= at && now - at <= timeoutMs ? at : null;
  }

  sweep(clock) {
    this.sql.exec('DELETE FROM approvals WHERE drop_at <= ?', clock);
    this.sql.exec('DELETE FROM requests WHERE drop_at <= ?', clock);
    return this.sql.exec(
      'SELECT min(drop_at) AS next FROM (SELECT drop_at FROM approvals UNION ALL SELECT drop_at FROM requests)',
    ).one().next;
  }
}

/**
 * The ApprovalStore over one ToolgateApprovals object: approvals are a few per
 * human decision, far below what one object serves, and one object makes
 * consume() atomic and list() one query.
 */
export class DurableObjectApprovalStore {
  #stubOf;
  #timeoutMs;
  #approvalTtlMs;
  #waitUntil;

  /**
   * `namespace`: the binding of a ToolgateApprovals class. `name`: the object's
   * name. `timeoutMs`: how long one operation waits before rejecting.
   * `approvalTtlMs`: how long an approval nobody used is kept; at least the
   * longest approval.timeout of the policies served. `waitUntil`: as for
   * DurableObjectCounterStore (putting back an approval a late consume used).
   */
  constructor({ namespace, name = 'approvals', timeoutMs = 1000, approvalTtlMs = 24 * 60 * 60 * 1000, waitUntil } = {}) {
    checkNamespace(namespace, 'DurableObjectApprovalStore');
    checkTimeout(timeoutMs, 'DurableObjectApprovalStore');
    if (typeof name !== 'string' || name === '') throw new TypeError('DurableObjectApprovalStore `name` must be a non-empty string');
    if (!(Number.isSafeInteger(approvalTtlMs) && approvalTtlMs > 0)) {
      throw new TypeError('DurableObjectApprovalStore `approvalTtlMs` must be a positive integer');
    }
    this.#stubOf = () => namespace.get(namespace.idFromName(name));
    if (waitUntil !== undefined && typeof waitUntil !== 'function') {
      throw new TypeError('DurableObjectApprovalStore `waitUntil` must be a function');
    }
    this.#timeoutMs = timeoutMs;
    this.#approvalTtlMs = approvalTtlMs;
    this.#waitUntil = waitUntil;
  }

  async approve(id, now) {
    await this.#call('approve', [id, now, this.#approvalTtlMs]);
  }

  async isApproved(id, timeoutMs, now) {
    return this.#call('isApproved', [id, timeoutMs, now]);
  }

  // A consume that lands after the timeout used the approval up for a call
  // that was denied (fail closed): it is put back when the late answer comes.
  async consume(id, timeoutMs, now) {
    const onLate = (at) => (at === null ? undefined : this.#call('restore', [id, at, this.#approvalTtlMs]).catch(() => {}));
    return (await this.#call('take', [id, timeoutMs, now], onLate)) !== null;
  }

  async request(request) {
    // Plain data only: what an RPC can carry and JSON can store.
    await this.#call('request', [JSON.parse(JSON.stringify(request))]);
  }

  async get(id, now) {
    return this.#call('get', [id, now]);
  }

  async list(now) {
    return this.#call('list', [now]);
  }

  async reject(id, now) {
    return this.#call('reject', [id, now]);
  }

  #call(method, args, onLate) {
    const rpc = Promise.resolve().then(() => this.#stubOf()[method](...args));
    return within(this.#timeoutMs, rpc, () => new DurableObjectTimeoutError(`the approvals Durable Object (${method})`, this.#timeoutMs), {
      onLate,
      waitUntil: this.#waitUntil,
    });
  }
}
