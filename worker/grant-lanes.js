// Fair shares of the proxy's event loop between grants.
//
// Lanes: a grant's requests are decoded, parsed and decided one at a time,
// and a waiting request is handed the lane in a later task, so whatever
// other grants' requests are ready run in between. The upstream call is made
// outside the lane: a grant's calls still run in parallel upstream.
//
// Shares: while other grants are active (sent a request within `activeMs`),
// a grant's work (its lane time, and the audit work charged to it) is held
// to `share` of each `windowMs`; past that its next request waits for the
// next window, inside its own lane. Alone, a grant may use the whole loop.
// A grant flooding the proxy with big batches or big bodies then delays
// another grant's call by a bounded factor (bench/proxy/fairness.bench.js),
// not by all of its own work.
//
// Runtime-neutral: setImmediate where there is one (Node), else a 0 ms timer
// (workerd).

const later = typeof setImmediate === 'function' ? (fn) => setImmediate(fn) : (fn) => setTimeout(fn, 0);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export class GrantLanes {
  // grant id -> { waiting: resolve[] } while some request of that grant holds its lane
  #busy = new Map();
  // grant id -> { used, since }: work (ms) in the window that began at `since`
  #work = new Map();
  // grant id -> when it last asked for its lane
  #seen = new Map();
  #share;
  #windowMs;
  #activeMs;
  #clock;

  /**
   * @param {{ share?: number, windowMs?: number, activeMs?: number, clock?: () => number }} [options]
   *   share: the part of each window one grant's work may take while others are active (default 0.25)
   */
  constructor({ share = 0.25, windowMs = 1000, activeMs = 1000, clock = () => performance.now() } = {}) {
    this.#share = share;
    this.#windowMs = windowMs;
    this.#activeMs = activeMs;
    this.#clock = clock;
  }

  /**
   * Waits for `grant`'s lane (and its share); resolves with the function
   * that gives the lane back, charging the time it was held.
   * @param {string} grant
   * @returns {Promise<() => void>}
   */
  async enter(grant) {
    this.#seen.set(grant, this.#clock());
    const lane = this.#busy.get(grant);
    if (lane) await new Promise((resolve) => lane.waiting.push(resolve));
    else this.#busy.set(grant, { waiting: [] });
    for (let wait = this.#overShare(grant); wait > 0; wait = this.#overShare(grant)) await sleep(wait);
    return this.#held(grant);
  }

  /**
   * The lane at once, when it is free and `grant` within its share: the
   * function that gives it back, as enter() resolves with; else null, and
   * nothing changes but the grant being seen (then wait with enter()). The
   * common case, a grant with no request being decided, without a promise.
   * @param {string} grant
   * @returns {(() => void) | null}
   */
  tryEnter(grant) {
    this.#seen.set(grant, this.#clock());
    if (this.#busy.has(grant) || this.#overShare(grant) > 0) return null;
    this.#busy.set(grant, { waiting: [] });
    return this.#held(grant);
  }

  // The lane is `grant`'s from now: the function that gives it back.
  #held(grant) {
    const started = this.#clock();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.charge(grant, this.#clock() - started);
      const held = this.#busy.get(grant);
      // Nobody waits: the lane is free at once, at no cost.
      if (held.waiting.length === 0) {
        this.#busy.delete(grant);
        return;
      }
      later(() => held.waiting.shift()());
    };
  }

  /** Adds `ms` of work done for `grant` (its lane time; audit work done later). */
  charge(grant, ms) {
    const now = this.#clock();
    let work = this.#work.get(grant);
    if (!work || now - work.since >= this.#windowMs) {
      work = { used: 0, since: now };
      this.#work.set(grant, work);
    }
    work.used += ms;
  }

  // How long `grant` must wait before more work, 0 when it may go on.
  #overShare(grant) {
    const now = this.#clock();
    const work = this.#work.get(grant);
    if (!work || now - work.since >= this.#windowMs || work.used < this.#share * this.#windowMs) return 0;
    if (!this.#othersActive(grant, now)) return 0;
    return Math.max(1, Math.ceil(work.since + this.#windowMs - now));
  }

  #othersActive(grant, now) {
    let active = false;
    for (const [other, at] of this.#seen) {
      if (now - at > this.#activeMs) {
        this.#seen.delete(other);
        this.#work.delete(other);
      } else if (other !== grant) {
        active = true;
      }
    }
    return active;
  }

  /** Grants whose lane is held now (for tests and metrics). */
  get size() {
    return this.#busy.size;
  }
}
