// One lane per grant for the proxy's CPU work on a request: decoding,
// parsing and deciding its messages. A grant's requests take their lane one
// at a time, and a waiting request is handed the lane in a later task, so
// whatever other grants' requests are ready (their sockets read, their
// bodies arrived) run in between. One grant flooding the proxy with
// large batches then delays another grant's call by about one of its own
// requests' work, not by all of them. The upstream call is made outside the
// lane: a grant's calls still run in parallel upstream.
//
// Runtime-neutral: setImmediate where there is one (Node), else a 0 ms timer
// (workerd).

const later = typeof setImmediate === 'function' ? (fn) => setImmediate(fn) : (fn) => setTimeout(fn, 0);

export class GrantLanes {
  // grant id -> { waiting: resolve[] } while some request of that grant holds its lane
  #busy = new Map();

  /**
   * Waits for `grant`'s lane; resolves with the function that gives it back.
   * @param {string} grant
   * @returns {Promise<() => void>}
   */
  async enter(grant) {
    const lane = this.#busy.get(grant);
    if (lane) await new Promise((resolve) => lane.waiting.push(resolve));
    else this.#busy.set(grant, { waiting: [] });
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const held = this.#busy.get(grant);
      // Nobody waits: the lane is free at once, at no cost.
      if (held.waiting.length === 0) {
        this.#busy.delete(grant);
        return;
      }
      later(() => held.waiting.shift()());
    };
  }

  /** Grants whose lane is held now (for tests and metrics). */
  get size() {
    return this.#busy.size;
  }
}
