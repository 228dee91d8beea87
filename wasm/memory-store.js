// In-memory counter and approval stores: the embedded default, and the
// reference every other store adapter's conformance suite is held to.
//
// A counter store keeps, per counter key, the count of the current fixed
// bucket and of the one before it. reserve() is atomic (JS runs it without
// interleaving) and all-or-nothing across the call's counters.

import { estimateCount, firstDenied } from './admission.js';

// Re-exported: the package's index.js (and so the playground) take it from here.
export { estimateCount };

// What reserve() returns. The private field marks reservations this store
// made, and settles each once: a copy or a forgery can never roll back quota.
class MemoryReservation {
  #settled = false;

  constructor(admitted, states, charges) {
    this.admitted = admitted;
    this.states = states;
    this.charges = charges;
  }

  // True the first time only, and only for a reservation made by this module.
  static settle(reservation) {
    if (!reservation || typeof reservation !== 'object' || !(#settled in reservation) || reservation.#settled) return false;
    reservation.#settled = true;
    return true;
  }
}

// reserveNow()'s buckets of the call being reserved (see there); null while
// a reservation holds it.
let scratchEntries = [];

// Where a store's counts live. A new store keeps them in a Map (#buckets).
// The first time the JS API's decide() uses a store that has never reserved
// anything, the store is bound to that engine instance: its counts move into
// a table in the core (core/counter_table.h), which decide() on a policy of
// that same instance reserves, finishes and commits in ONE call into the
// engine. Every other use of a bound store (its own methods, authorize(),
// explain(), preview(), another engine instance, this one after it was
// restarted) reaches the same table through `port` (boundary-layout.js
// createTableCodec): one count per key, whichever way it is charged. A
// store that reserved before it was bound stays a Map for good (its
// reservations could still be rolled back there).
const tables = typeof FinalizationRegistry === 'function'
  ? new FinalizationRegistry(({ port, table }) => port.destroy(table))
  : null;

/**
 * The table of `store` in the engine instance `port` serves (wasm/index.js
 * decide()): its address when the store is a MemoryCounterStore bound to
 * that instance, binding it now if it has never been used; 0 when the store
 * is anything else or lives elsewhere (a Map, another instance).
 */
export let memoryTableIn;

export class MemoryCounterStore {
  #buckets = new Map(); // key -> { start, window, current, previous }
  #sweepAt = 0;
  #used = false; // reserved at least once in #buckets: never bound then
  #port = null; // bound: the engine instance's table codec, and the table's address
  #table = 0;

  static {
    // Only a store that behaves as this class does: decide() would call its
    // reserveNow and commitNow, so a subclass or an instance that replaced
    // either (to log, to fail, to lie) keeps that path and never binds.
    const { reserveNow, commitNow } = MemoryCounterStore.prototype;
    memoryTableIn = (store, port) => {
      if (typeof store !== 'object' || store === null || !(#port in store)) return 0;
      if (store.reserveNow !== reserveNow || store.commitNow !== commitNow) return 0;
      if (store.#port !== null) return store.#port === port ? store.#table : 0;
      if (store.#used) return 0;
      store.#table = port.create();
      store.#port = port;
      tables?.register(store, { port, table: store.#table });
      return store.#table;
    };
  }

  // The counts for `request` at its bucket, rolling the window forward.
  #state(request, entry) {
    if (!entry) return { current: 0, previous: 0 };
    const start = request.bucket_start_ms;
    if (entry.start === start) return { current: entry.current, previous: entry.previous };
    if (entry.start === start - request.window_ms) return { current: 0, previous: entry.current };
    if (entry.start > start) return { current: entry.current, previous: entry.previous }; // clock went back: keep counts
    return { current: 0, previous: 0 };
  }

  async reserve(requests, now) {
    return this.reserveNow(requests, now);
  }

  // reserve() without the promise, for callers in this package that can use
  // the answer at once (the JS API's authorize()).
  reserveNow(requests, now) {
    if (this.#port !== null) {
      // The charges name the keys and costs the table charged, as read once.
      const { admitted, states, charges } = this.#port.reserve(this.#table, requests, now);
      return new MemoryReservation(admitted, states, charges);
    }
    this.#used = true;
    const count = requests.length;
    // The buckets read, in a scratch array kept between calls: one array less
    // per call. A reservation takes it until it returns; one made meanwhile
    // (a caller's request object whose getter reserves again) gets an array of
    // its own, as does the next one after a reservation that threw. Emptied
    // when given back, so it holds no bucket alive.
    const entries = scratchEntries ?? [];
    scratchEntries = null;
    const states = new Array(count);
    for (let i = 0; i < count; i++) {
      entries[i] = this.#buckets.get(requests[i].key);
      states[i] = this.#state(requests[i], entries[i]);
    }
    // The rule every store shares (./admission.js). A key named twice in one
    // call is charged twice, and its second check sees the first charge.
    const admitted = firstDenied(requests, states, now) === -1;
    const charges = [];
    if (admitted) {
      for (let i = 0; i < count; i++) {
        const request = requests[i];
        let charged = false;
        for (let j = 0; j < charges.length; j++) if (charges[j].key === request.key) charged = true;
        // Only a charge of the same key earlier in this call can have changed
        // the entry read above: otherwise it is still the one held.
        const entry = charged ? this.#buckets.get(request.key) : entries[i];
        const start = Math.max(request.bucket_start_ms, entry?.start ?? -Infinity);
        const current = entry && entry.start === start && charged
          ? entry.current + request.cost // already charged by this call
          : states[i].current + request.cost;
        if (entry && entry === entries[i] && !charged) {
          // Update in place: no new object per call for a key already held.
          entry.start = start;
          entry.window = request.window_ms;
          entry.current = current;
          entry.previous = states[i].previous;
        } else {
          this.#buckets.set(request.key, { start, window: request.window_ms, current, previous: states[i].previous });
        }
        charges.push({ key: request.key, start, cost: request.cost });
      }
    }
    for (let i = 0; i < count; i++) entries[i] = undefined;
    scratchEntries = entries;
    this.#sweep(now);
    return new MemoryReservation(admitted, states, charges);
  }

  // Makes the charge final: a later rollback() gives nothing back.
  async commit(reservation) {
    this.commitNow(reservation);
  }

  commitNow(reservation) {
    MemoryReservation.settle(reservation);
  }

  // Gives back what reserve() charged, if its bucket is still held. Once only:
  // a second rollback (or one after commit) must not refund other calls' quota.
  async rollback(reservation) {
    if (!MemoryReservation.settle(reservation)) return;
    if (this.#port !== null) {
      // Made by this store while bound (a store reserves in its Map only
      // while it is not bound, and never binds after that).
      this.#port.rollback(this.#table, reservation.charges ?? []);
      return;
    }
    for (const charge of reservation.charges ?? []) {
      const entry = this.#buckets.get(charge.key);
      if (entry && entry.start === charge.start) entry.current = Math.max(0, entry.current - charge.cost);
    }
  }

  // Current counts without charging (for playgrounds and tests).
  async peek(requests) {
    if (this.#port !== null) return this.#port.peek(this.#table, requests);
    return requests.map((request) => this.#state(request, this.#buckets.get(request.key)));
  }

  get size() {
    if (this.#port !== null) return this.#port.size(this.#table);
    return this.#buckets.size;
  }

  // Drops buckets too old to matter, at most once per second of call time,
  // and only once the map is large: small runs with out-of-order simulated
  // clocks (policy tests) keep every count.
  #sweep(now) {
    if (this.#buckets.size < 10_000 || now < this.#sweepAt) return;
    this.#sweepAt = now + 1000;
    for (const [key, entry] of this.#buckets) {
      if (entry.start + 2 * entry.window <= now) this.#buckets.delete(key);
    }
  }
}

export class MemoryApprovalStore {
  #approvals = new Map(); // id -> approved-at (ms)
  #requests = new Map(); // id -> ApprovalRequest waiting for a human

  async approve(id, now) {
    this.#approvals.set(id, now);
    this.#requests.delete(id);
  }

  async isApproved(id, timeoutMs, now) {
    const at = this.#approvals.get(id);
    return at !== undefined && now >= at && now - at <= timeoutMs;
  }

  // Uses an approval up (it allows one call). False when it was not valid.
  // Checked and used in one synchronous step: two calls racing for one
  // approval must not both get it.
  async consume(id, timeoutMs, now) {
    const at = this.#approvals.get(id);
    if (!(at !== undefined && now >= at && now - at <= timeoutMs)) return false;
    this.#approvals.delete(id);
    return true;
  }

  // Records a call waiting for a human. The first request of an id is kept:
  // an agent retrying the same call does not move it down the list.
  async request(request) {
    const held = this.#requests.get(request.id);
    if (!held || held.expires_at <= request.requested_at) this.#requests.set(request.id, structuredClone(request));
  }

  async get(id, now) {
    const request = this.#requests.get(id);
    if (!request) return null;
    if (request.expires_at <= now) {
      this.#requests.delete(id);
      return null;
    }
    return structuredClone(request);
  }

  // Requests still waiting, oldest first.
  async list(now) {
    const waiting = [];
    for (const [id, request] of this.#requests) {
      if (request.expires_at <= now) this.#requests.delete(id);
      else waiting.push(structuredClone(request));
    }
    return waiting.sort((a, b) => a.requested_at - b.requested_at || (a.id < b.id ? -1 : 1));
  }

  // A human said no: the request leaves the list. False when it was not waiting.
  async reject(id, now) {
    const request = await this.get(id, now);
    this.#requests.delete(id);
    return request !== null;
  }
}
