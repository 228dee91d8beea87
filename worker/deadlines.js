// Deadlines of one fixed length (a request body's 30 s, an upstream answer's
// 120 s), many at a time, almost all cancelled long before they are due.
//
// A setTimeout per request (made, then cleared when the request is done) was
// work on every proxied call: a Timeout object and its closure, Node's timer
// list insert and `unenroll`, and for the body a promise raced against it.
// Since every deadline of a queue is "now + the same delay", deadlines are
// due in the order they were added: they wait in a doubly linked list (add
// and cancel O(1), no search), and ONE timer, armed for the oldest, serves
// them all. A cancelled deadline leaves the list at once, but the timer is
// not re-armed then (that would be a timer operation per call again): when it
// fires it runs what is due and re-arms for the oldest still waiting, so
// under steady traffic it fires about once per delay.
//
// The timer is unref'd: it never keeps a process alive by itself (a request
// waiting on a deadline has an open socket that does).
//
// Node only (./node.js gives the handler these): on Workers a timer made
// while serving one request must not act on another request's I/O, so there
// the handler keeps a timer per request (PerCallDeadlines).

/**
 * @typedef {object} Deadline
 * @property {boolean} fired it came before it was cancelled (fire has run)
 */

const MAX_TIMER_MS = 2 ** 31 - 1;

export class DeadlineQueue {
  #delayMs;
  #clock;
  #head = null;
  #tail = null;
  #timer = null;
  #size = 0;

  /**
   * @param {number} delayMs how long after add() each deadline is due
   * @param {{ clock?: () => number }} [options] clock in ms, monotonic (default performance.now)
   */
  constructor(delayMs, { clock = () => performance.now() } = {}) {
    if (!(Number.isFinite(delayMs) && delayMs >= 0)) throw new TypeError(`a deadline's delay must be a finite number of ms >= 0, not ${delayMs}`);
    this.#delayMs = delayMs;
    this.#clock = clock;
  }

  get delayMs() {
    return this.#delayMs;
  }

  /** Deadlines waiting (not fired, not cancelled). */
  get size() {
    return this.#size;
  }

  /**
   * Calls fire(target) delayMs from now, unless cancelled first. `fire` is
   * meant to be one function made once (not a closure per call); `target`
   * is what it acts on.
   * @template T
   * @param {(target: T) => void} fire
   * @param {T} target
   * @returns {Deadline}
   */
  add(fire, target) {
    const entry = { due: this.#clock() + this.#delayMs, fire, target, prev: this.#tail, next: null, fired: false, waiting: true };
    if (this.#tail) this.#tail.next = entry;
    else this.#head = entry;
    this.#tail = entry;
    this.#size += 1;
    if (this.#timer === null) this.#arm(this.#delayMs);
    return entry;
  }

  /** Drops a deadline not yet fired (fired or cancelled ones: nothing). */
  cancel(entry) {
    if (!entry.waiting) return;
    this.#unlink(entry);
  }

  #unlink(entry) {
    entry.waiting = false;
    if (entry.prev) entry.prev.next = entry.next;
    else this.#head = entry.next;
    if (entry.next) entry.next.prev = entry.prev;
    else this.#tail = entry.prev;
    entry.prev = entry.next = null;
    // The target is not kept alive by a cancelled deadline.
    entry.target = undefined;
    this.#size -= 1;
  }

  #arm(ms) {
    // Node's timers count whole milliseconds: round up, so that the timer
    // never fires before the oldest deadline is due (if it does, #tick
    // re-arms for the rest). Capped at what setTimeout takes (a longer delay
    // would fire at once): #tick re-arms until the deadline is due.
    this.#timer = setTimeout(() => this.#tick(), Math.min(MAX_TIMER_MS, Math.max(1, Math.ceil(ms))));
    this.#timer.unref?.();
  }

  #tick() {
    this.#timer = null;
    const now = this.#clock();
    // Each due entry leaves the list before it fires, so a fire that adds or
    // cancels deadlines (or throws) leaves the list whole.
    let error = null;
    while (this.#head !== null && this.#head.due <= now) {
      const entry = this.#head;
      const { fire, target } = entry;
      this.#unlink(entry);
      entry.fired = true;
      try {
        fire(target);
      } catch (thrown) {
        error ??= thrown;
      }
    }
    if (this.#head !== null) this.#arm(this.#head.due - now);
    // One fire's exception must not keep the others from firing; it is
    // still thrown (an uncaught exception, as from its own setTimeout).
    if (error !== null) throw error;
  }
}

/**
 * The same interface with a setTimeout per deadline: where a shared timer
 * must not be used (Workers), or a clock of its own is not wanted.
 */
export class PerCallDeadlines {
  #delayMs;

  constructor(delayMs) {
    this.#delayMs = delayMs;
  }

  get delayMs() {
    return this.#delayMs;
  }

  add(fire, target) {
    const entry = { fired: false, timer: null };
    entry.timer = setTimeout(() => {
      entry.fired = true;
      fire(target);
    }, this.#delayMs);
    return entry;
  }

  cancel(entry) {
    clearTimeout(entry.timer);
  }
}
