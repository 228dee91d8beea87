// KvCounterStore: the CounterStore (wasm/index.d.ts) over a Workers KV
// namespace binding.
//
// !!! APPROXIMATE. KV is eventually consistent (a write can take 60 s or more
// to reach other locations, and reads are served from a cache) and has no
// atomic read-modify-write. Two calls that read a count before either writes
// it back are both admitted: calls in different isolates or locations CAN BE
// OVER-ADMITTED, by as much as the traffic in one propagation delay. KV also
// accepts one write per key per second; faster writes fail (and the call is
// denied, store_error). Use it only for soft, low-rate limits where an
// overshoot is acceptable; for limits that must hold use the Durable Object
// store (./durable-object.js) or Redis. It is never a default. !!!
//
// Within one isolate it is exact: calls touching the same counters run one
// after another, and the isolate reads its own writes (never less than it
// last wrote, whatever a stale KV cache says). See ./README.md.

import { admits } from '../../wasm/admission.js';
import { checkCounterRequest } from './checks.js';

// KV's smallest expirationTtl, in seconds.
const MIN_TTL_SECONDS = 60;
// KV's largest key, in UTF-8 bytes.
const MAX_KEY_BYTES = 512;
// How often the isolate's memory of its own writes drops expired entries.
const PRUNE_EVERY_MS = 10_000;

const utf8 = new TextEncoder();

// A bucket lives through its own window and the next (when it is read as
// "previous"); KV will not expire anything sooner than a minute.
function ttlSecondsOf(request) {
  return Math.max(MIN_TTL_SECONDS, Math.ceil((2 * request.window_ms) / 1000));
}

function countOf(text, key) {
  if (text === null) return null;
  const value = Number(text);
  if (!Number.isFinite(value)) throw new Error(`KV key ${key} holds a count that is not a number: ${JSON.stringify(text)}`);
  return value;
}

class KvTimeoutError extends Error {
  constructor(timeoutMs) {
    super(`Workers KV did not answer within ${timeoutMs} ms`);
    this.name = 'KvTimeoutError';
  }
}

export class KvCounterStore {
  #namespace;
  #prefix;
  #timeoutMs;
  #tails = new Map(); // storage key -> promise settled when its current user is done
  #written = new Map(); // storage key -> { count, until }: this isolate's last write
  #pruneAt = 0;

  /**
   * `namespace`: a KV namespace binding. `prefix`: the first segment of every
   * key. `timeoutMs`: how long one reserve() (waiting for other calls on the
   * same counters included) or one rollback() may take before rejecting.
   */
  constructor({ namespace, prefix = 'tg', timeoutMs = 1000 } = {}) {
    if (!namespace || typeof namespace.get !== 'function' || typeof namespace.put !== 'function') {
      throw new TypeError('KvCounterStore needs `namespace`, a Workers KV namespace binding');
    }
    if (typeof prefix !== 'string' || prefix === '' || utf8.encode(prefix).length > 100) {
      throw new TypeError('KvCounterStore `prefix` must be a non-empty string of at most 100 bytes');
    }
    if (!(Number.isFinite(timeoutMs) && timeoutMs > 0)) {
      throw new TypeError('KvCounterStore `timeoutMs` must be a positive number');
    }
    this.#namespace = namespace;
    this.#prefix = prefix;
    this.#timeoutMs = timeoutMs;
  }

  /**
   * The KV key of `request`'s bucket that starts at `start`:
   * `<prefix>:<request.key>:<start>`, or, when that is longer than KV allows,
   * `<prefix>:sha256:<hex of request.key>:<start>`.
   */
  async keyOf(request, start = request.bucket_start_ms) {
    const plain = `${this.#prefix}:${request.key}:${start}`;
    if (utf8.encode(plain).length <= MAX_KEY_BYTES) return plain;
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', utf8.encode(request.key)));
    const hex = Array.from(digest, (byte) => byte.toString(16).padStart(2, '0')).join('');
    return `${this.#prefix}:sha256:${hex}:${start}`;
  }

  async reserve(requests, now) {
    if (!Array.isArray(requests)) throw new TypeError('reserve() needs an array of counter requests');
    requests.forEach(checkCounterRequest);
    if (!Number.isFinite(now)) throw new TypeError('reserve() needs `now`, epoch milliseconds');
    if (requests.length === 0) return { admitted: true, states: [], charges: [], settled: false };

    const keys = await Promise.all(
      requests.map(async (request) => ({
        current: await this.keyOf(request),
        previous: await this.keyOf(request, request.bucket_start_ms - request.window_ms),
      })),
    );
    let abandoned = false;
    const work = this.#exclusive(keys.flatMap((k) => [k.current, k.previous]), async () => {
      const counts = await this.#read(keys.flatMap((k) => [k.current, k.previous]));
      const states = keys.map((k) => ({ current: counts.get(k.current) ?? 0, previous: counts.get(k.previous) ?? 0 }));
      // The rule every store shares (wasm/admission.js): a key named twice is
      // checked with its first charge added, and charged twice.
      const admitted = admits(requests, states, now);
      // Gave up on while reading: the caller has denied the call already.
      if (!admitted || abandoned) return { admitted, states, charges: [] };
      const charges = requests.map((request, i) => ({ key: keys[i].current, cost: request.cost, ttl: ttlSecondsOf(request) }));
      await this.#add(charges, counts);
      return { admitted, states, charges };
    });
    const result = await this.#within(work, () => {
      abandoned = true;
    }, (late) => {
      // Written after reserve() gave up: the call was denied, give it back.
      if (late.charges.length > 0) this.#giveBack(late.charges).catch(() => {});
    });
    return { ...result, settled: false };
  }

  // The count is written once reserve() returns: commit only marks the
  // reservation so that a later rollback() gives nothing back. The mark is on
  // the reservation itself (plain data), so it survives being passed around.
  async commit(reservation) {
    if (reservation && typeof reservation === 'object') reservation.settled = true;
  }

  // Best effort, once: marked settled before KV is asked, so a lost answer
  // never leads to a second refund that would take quota from other calls.
  async rollback(reservation) {
    if (!reservation || typeof reservation !== 'object' || reservation.settled) return;
    reservation.settled = true;
    await this.#giveBack(reservation.charges ?? []);
  }

  /** The counts `requests` would see, without charging. */
  async peek(requests, now = Date.now()) {
    if (!Array.isArray(requests)) throw new TypeError('peek() needs an array of counter requests');
    requests.forEach(checkCounterRequest);
    const keys = await Promise.all(requests.map(async (request) => [await this.keyOf(request), await this.keyOf(request, request.bucket_start_ms - request.window_ms)]));
    const counts = await this.#within(this.#read(keys.flat()));
    return keys.map(([current, previous]) => ({ current: counts.get(current) ?? 0, previous: counts.get(previous) ?? 0 }));
  }

  // Subtracts each charge, never below zero; a bucket KV no longer holds
  // (expired) is not written again.
  async #giveBack(charges) {
    if (charges.length === 0) return;
    const work = this.#exclusive(charges.map((c) => c.key), async () => {
      const counts = await this.#read(charges.map((c) => c.key));
      const refunds = new Map(); // key -> { cost, ttl }
      for (const { key, cost, ttl } of charges) {
        if (!counts.has(key)) continue;
        const refund = refunds.get(key) ?? { cost: 0, ttl: MIN_TTL_SECONDS };
        refunds.set(key, { cost: refund.cost + cost, ttl: Math.max(refund.ttl, ttl) });
      }
      await Promise.all(
        [...refunds].map(([key, { cost, ttl }]) => this.#write(key, Math.max(0, counts.get(key) - cost), ttl)),
      );
    });
    await this.#within(work);
  }

  // Adds the charges to the counts read, one write per key.
  async #add(charges, counts) {
    const totals = new Map(); // key -> { count, ttl }
    for (const { key, cost, ttl } of charges) {
      const total = totals.get(key) ?? { count: counts.get(key) ?? 0, ttl };
      totals.set(key, { count: total.count + cost, ttl: Math.max(total.ttl, ttl) });
    }
    await Promise.all([...totals].map(([key, { count, ttl }]) => this.#write(key, count, ttl)));
  }

  async #write(key, count, ttl) {
    await this.#namespace.put(key, String(count), { expirationTtl: ttl });
    this.#written.set(key, { count, until: Date.now() + ttl * 1000 });
  }

  // key -> count for the keys KV (or this isolate's memory) holds. A count
  // is never below what this isolate last wrote: a stale cached read must not
  // hand out quota this isolate already used.
  async #read(keys) {
    this.#prune();
    const unique = [...new Set(keys)];
    const texts = await Promise.all(unique.map((key) => this.#namespace.get(key)));
    const counts = new Map();
    unique.forEach((key, i) => {
      const stored = countOf(texts[i], key);
      const mine = this.#written.get(key);
      const local = mine && mine.until > Date.now() ? mine.count : null;
      if (stored !== null || local !== null) counts.set(key, Math.max(stored ?? 0, local ?? 0));
    });
    return counts;
  }

  #prune() {
    const clock = Date.now();
    if (clock < this.#pruneAt) return;
    this.#pruneAt = clock + PRUNE_EVERY_MS;
    for (const [key, { until }] of this.#written) if (until <= clock) this.#written.delete(key);
  }

  // Runs `fn` once no earlier call of this isolate uses any of `keys`. A user
  // is waited for at most `timeoutMs` (after that it gave up on its own
  // writes, or its request was cancelled and will never release the keys).
  async #exclusive(keys, fn) {
    const unique = [...new Set(keys)];
    let release;
    const done = new Promise((resolve) => {
      release = resolve;
    });
    const earlier = unique.map((key) => this.#tails.get(key)).filter(Boolean);
    for (const key of unique) this.#tails.set(key, done);
    let timer;
    try {
      if (earlier.length > 0) {
        await Promise.race([
          Promise.all(earlier),
          new Promise((resolve) => {
            timer = setTimeout(resolve, this.#timeoutMs);
          }),
        ]);
      }
      return await fn();
    } finally {
      clearTimeout(timer);
      release();
      for (const key of unique) if (this.#tails.get(key) === done) this.#tails.delete(key);
    }
  }

  // Rejects after timeoutMs; `onTimeout` runs then, `onLate` with a result
  // that arrives after it.
  #within(promise, onTimeout, onLate) {
    let timer;
    let late = false;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => {
        late = true;
        onTimeout?.();
        reject(new KvTimeoutError(this.#timeoutMs));
      }, this.#timeoutMs);
    });
    promise.then(
      (value) => {
        if (late) onLate?.(value);
      },
      () => {},
    );
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
  }
}
