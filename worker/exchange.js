// One tools/call's life in the proxy, from the gate's decision to its
// settlement, in one object: the decision, the reservation the policy made for
// it (counters reserved, approval consumed: wasm/index.js Policy.authorize),
// the audit event, the span, and the rule that settles the reservation.
//
// The gate (./gate.js) makes one Exchange per tools/call. A call it refuses is
// closed at once (refuse()). A call it lets through is open until the
// transport (./handler.js over HTTP, ./stdio.js over a pipe) reports what
// happened to it; the transport reports facts (sent, answered, failed, the
// client left, the session ended) and never decides itself whether quota goes
// back. The rule, here and only here:
//
//   keep the quota when the call may have run; give it back only when it
//   cannot have run: it was never sent, the server refused the whole request
//   before running anything (HTTP 4xx), the connection was never made, or the
//   server answered this id with a JSON-RPC error.
//
// The first event that settles wins; every later event is ignored, so a
// JSON-RPC error after a cancel, or a stream ending after the answer, cannot
// give back quota that was kept (or keep quota given back).

/**
 * What became of a forwarded call, as written in its audit event's `outcome`
 * (and the span's `toolgate.outcome`). These strings are part of the audit
 * format: `toolgate replay` (lib/replay.js) and operators read them.
 */
export const Outcome = Object.freeze({
  // answered(message): the server's answer to this id
  RESULT: 'result',
  TOOL_ERROR: 'tool_error', // a result with isError: the tool ran
  ERROR: 'error', // a JSON-RPC error: the server did not run the tool
  // failed(reason)
  UPSTREAM_FAILED: 'upstream_failed',
  UPSTREAM_REFUSED: 'upstream_refused',
  SERVER_GONE: 'server_gone',
  INVALID_RESPONSE: 'invalid_response',
  // clientLeft()
  CLIENT_LEFT: 'client_left',
  CANCELLED: 'cancelled',
  // ended(outcome)
  NO_ANSWER: 'no_answer',
  STREAM_ENDED: 'no_answer_stream_end',
  STREAM_BROKEN: 'no_answer_stream_error',
  STREAM_CANCELLED: 'no_answer_stream_cancel',
  SERVER_EXITED: 'server_exited',
});

/**
 * Why a transport could not complete a call (failed(reason)), each with what
 * it proves. Only the first three prove that the call did not run.
 */
export const Failure = Object.freeze({
  UNREACHABLE: 'unreachable', // HTTP: the connection was never made (refused, unknown host)
  SERVER_GONE: 'server_gone', // stdio: the server's stdin was closed, nothing was written
  REFUSED: 'refused', // HTTP 4xx: the server refused the whole request before running anything
  UPSTREAM: 'upstream', // a timeout, a reset after sending, a 5xx: it may have run
  INVALID_RESPONSE: 'invalid_response', // a 2xx answer that cannot be read (cut off, not JSON): it may have run
});

// For each failure: whether it proves the server did not run the call, and
// the audit outcome (an unreachable server is audited as upstream_failed with
// upstream_status "unreachable", as it always was).
const FAILURES = Object.freeze({
  [Failure.UNREACHABLE]: { didNotRun: true, outcome: Outcome.UPSTREAM_FAILED },
  [Failure.SERVER_GONE]: { didNotRun: true, outcome: Outcome.SERVER_GONE },
  [Failure.REFUSED]: { didNotRun: true, outcome: Outcome.UPSTREAM_REFUSED },
  [Failure.UPSTREAM]: { didNotRun: false, outcome: Outcome.UPSTREAM_FAILED },
  [Failure.INVALID_RESPONSE]: { didNotRun: false, outcome: Outcome.INVALID_RESPONSE },
});

const LEFT = new Set([Outcome.CLIENT_LEFT, Outcome.CANCELLED]);
const ENDED = new Set([Outcome.NO_ANSWER, Outcome.STREAM_ENDED, Outcome.STREAM_BROKEN, Outcome.STREAM_CANCELLED, Outcome.SERVER_EXITED]);

/** Where an exchange stands. */
export const Settlement = Object.freeze({
  OPEN: 'open', // decided and forwarded (or about to be); no event has settled it yet
  REFUSED: 'refused', // answered by toolgate, never forwarded: nothing is held for it
  COMMITTED: 'committed', // the reservation is kept: the call may have run
  ROLLED_BACK: 'rolled_back', // the reservation is given back: the call cannot have run
});

/**
 * The settlement rule: what an event does to an open call, given whether the
 * transport had reported it sent. One function, so that it can be read (and
 * tested) whole. `event`: { kind: 'answered', error } | { kind: 'failed', reason }
 * | { kind: 'clientLeft' } | { kind: 'ended' }.
 */
export function settlementOf(event, { sent }) {
  switch (event.kind) {
    case 'answered':
      // An answer to this id is the server's own word: an error means it did
      // not run the tool (unknown tool, bad params); a result (isError too) ran.
      return event.error ? Settlement.ROLLED_BACK : Settlement.COMMITTED;
    case 'failed':
      return !sent || FAILURES[event.reason].didNotRun ? Settlement.ROLLED_BACK : Settlement.COMMITTED;
    default:
      // The client went, or the stream or session ended, without an answer:
      // once sent, the server may be running it (giving it back would let an
      // agent pass its limit by hanging up and reconnecting).
      return sent ? Settlement.COMMITTED : Settlement.ROLLED_BACK;
  }
}

// A call forwarded in monitor mode that the policy would refuse reserved nothing.
const NOTHING_RESERVED = Object.freeze({ commit: () => Promise.resolve(), rollback: () => Promise.resolve() });

/** The decision's fields as audit events and spans carry them. */
export function decisionFields(decision) {
  const fields = { decision: decision.decision, code: decision.code, rule: decision.rule };
  if (decision.retry_after_ms !== undefined) fields.retry_after_ms = decision.retry_after_ms;
  if (decision.approval_id !== undefined) fields.approval_id = decision.approval_id;
  return fields;
}

const elapsed = (started) => Math.round((performance.now() - started) * 1000) / 1000;

// The audit event of a settled exchange: the fields known at decision time
// (built for this exchange alone, written once: completed in place, not
// copied) with the decision's and the settlement's, in this order.
function completeEvent(event, decision, settled) {
  event.decision = decision.decision;
  event.code = decision.code;
  event.rule = decision.rule;
  if (decision.retry_after_ms !== undefined) event.retry_after_ms = decision.retry_after_ms;
  if (decision.approval_id !== undefined) event.approval_id = decision.approval_id;
  return Object.assign(event, settled);
}

// `complete(event)` for an event built at once (the gate builds it
// synchronously when its HMAC is), or once a promised one is there.
function whenBuilt(event, complete) {
  return typeof event?.then === 'function' ? event.then(complete) : complete(event);
}

// A promise whose failure is not an unhandled rejection (the settlement
// ignores it); anything else as it is.
function handled(value) {
  if (value !== null && typeof value === 'object' && typeof value.then === 'function') value.then(undefined, ignore);
  return value;
}
const ignore = () => {};

// The promise `settled` gives once parts are known: after the store settled
// and the audit event was written, whether either failed.
async function whenDone([written, store, settlement]) {
  await Promise.allSettled([written, store]);
  return settlement;
}

export class Exchange {
  #event;
  #write;
  #writeContext;
  #trace;
  #monitor;
  #started;
  #decision = null;
  #reservation = NOTHING_RESERVED;
  #forwardedAt = 0;
  #sent = false;
  #settlement = null;
  #outcome = null;
  // The settlement's promise (reservation settled, audit event written),
  // made only when asked for: the proxy itself never waits on it. #parts:
  // what it waits for, once settled ([store, audit] promises, the Settlement).
  #done = null;
  #parts = null;
  #waiting = null;

  /**
   * Made by the gate for each tools/call it decides.
   * @param {object} parts
   * @param {() => object | Promise<object>} parts.event the audit event's fields known at decision time (built once,
   *   lazily; the event itself when it can be built at once, else a promise of it)
   * @param {(makeEvent: () => object | Promise<object>, context: unknown) => Promise<void>} parts.write writes an audit event
   *   (later, off the answer's path: Gate#write), called with `writeContext` as its second argument
   * @param {unknown} [parts.writeContext] what `write` is told besides the event (the gate: the request's
   *   context), so that one writer serves every exchange
   * @param {{upstream?: string, end(fields: object): void} | null} [parts.trace] toolgate's span for the call
   * @param {boolean} [parts.monitor] the call runs in monitor mode (audited `enforced: false`)
   * @param {number} [parts.started] performance.now() when the decision began
   */
  constructor({ event, write, writeContext, trace = null, monitor = false, started = performance.now() }) {
    this.#event = event;
    this.#write = write;
    this.#writeContext = writeContext;
    this.#trace = trace;
    this.#monitor = monitor;
    this.#started = started;
  }

  /** The decision (null until decided). */
  get decision() {
    return this.#decision;
  }

  /** A Settlement: OPEN until an event settles a forwarded call. */
  get settlement() {
    return this.#settlement ?? Settlement.OPEN;
  }

  /** The Outcome that settled it, or null. */
  get outcome() {
    return this.#outcome;
  }

  /** Resolves to the Settlement once the reservation is settled and the audit event written. */
  get settled() {
    if (this.#done) return this.#done;
    if (this.#parts) return (this.#done = whenDone(this.#parts));
    if (!this.#waiting) {
      let resolve;
      this.#waiting = { promise: new Promise((done) => { resolve = done; }), resolve };
    }
    return this.#waiting.promise;
  }

  #finished(parts) {
    this.#parts = parts;
    if (this.#waiting) this.#waiting.resolve(this.settled);
  }

  /** The traceparent sent upstream with this call, or null. */
  get traceparent() {
    return this.#trace?.upstream ?? null;
  }

  /**
   * The call is answered by toolgate and not forwarded (denied, needs
   * approval, malformed, engine error): audited now. Nothing stays reserved
   * (Policy.authorize gives back what a refused call reserved).
   */
  refuse(decision) {
    if (this.#decision) throw new Error('this exchange is already decided');
    this.#decision = decision;
    this.#settlement = Settlement.REFUSED;
    const latency = elapsed(this.#started);
    this.#trace?.end({ ...decisionFields(decision), enforced: true, forwarded: false });
    const written = handled(this.#write(() => whenBuilt(this.#event(), (event) => completeEvent(event, decision, { upstream_status: null, latency_ms: latency })), this.#writeContext));
    this.#finished([written, undefined, Settlement.REFUSED]);
  }

  /**
   * The call goes upstream: `reservation` ({ commit(), rollback() }, from
   * Policy.authorize; omitted for a would-be refusal forwarded in monitor
   * mode, which reserved nothing) is held until an event settles it.
   */
  forward(decision, reservation = NOTHING_RESERVED) {
    if (this.#decision) throw new Error('this exchange is already decided');
    this.#decision = decision;
    this.#reservation = reservation;
    this.#forwardedAt = performance.now();
  }

  // --- what transports report -------------------------------------------

  /**
   * The request carrying the call is handed to the server (reported before
   * the first byte of it may leave: before fetch, before the write to the
   * pipe). From now on the server may run it.
   */
  sent() {
    if (this.#settlement === null) this.#sent = true;
  }

  // The methods below report facts; they return nothing (wait on `settled`).

  /** The server's answer to this call's id. */
  answered(message, { status } = {}) {
    const error = message !== null && typeof message === 'object' && 'error' in message;
    const outcome = error ? Outcome.ERROR : message?.result?.isError === true ? Outcome.TOOL_ERROR : Outcome.RESULT;
    return this.#settle({ kind: 'answered', error }, outcome, status);
  }

  /** The transport could not complete the call; `reason` is a Failure. */
  failed(reason, { status } = {}) {
    if (!Object.hasOwn(FAILURES, reason)) throw new TypeError(`not a Failure: ${String(reason)}`);
    return this.#settle({ kind: 'failed', reason }, FAILURES[reason].outcome, status);
  }

  /**
   * The client went away before the answer, or (outcome CANCELLED) cancelled
   * the call (notifications/cancelled).
   */
  clientLeft({ status, outcome = Outcome.CLIENT_LEFT } = {}) {
    if (!LEFT.has(outcome)) throw new TypeError(`not a way for a client to leave: ${String(outcome)}`);
    return this.#settle({ kind: 'clientLeft' }, outcome, status);
  }

  /**
   * The answer, stream or session ended without an answer to this call;
   * `outcome` says how (NO_ANSWER, STREAM_*, SERVER_EXITED).
   */
  ended(outcome, { status } = {}) {
    if (!ENDED.has(outcome)) throw new TypeError(`not a way for an exchange to end: ${String(outcome)}`);
    return this.#settle({ kind: 'ended' }, outcome, status);
  }

  #settle(event, outcome, status) {
    // Only a forwarded call is settled, once: the first event wins.
    if (this.#settlement !== null || this.#decision === null) return;
    this.#settlement = settlementOf(event, { sent: this.#sent });
    this.#outcome = outcome;
    const latency = elapsed(this.#forwardedAt);
    const decision = this.#decision;
    // Settled now, in this turn (the memory store does it synchronously, so
    // the next call of the grant already sees it). A store failing to settle
    // changes nothing for this call, which is answered.
    let settledStore;
    try {
      settledStore = handled(this.#settlement === Settlement.COMMITTED ? this.#reservation.commit() : this.#reservation.rollback());
    } catch {
      settledStore = undefined;
    }
    this.#trace?.end({ ...decisionFields(decision), enforced: !this.#monitor, forwarded: true, upstream_status: status, outcome });
    // `quota` says what the settlement did, so that a reader of the audit log
    // (toolgate replay) need not guess it from the outcome: "kept" (the call
    // may have run) or "returned" (it cannot have). A call forwarded in monitor
    // mode that the policy would refuse reserved nothing: no field.
    const settled = { upstream_status: status, outcome, latency_ms: latency };
    if (this.#reservation !== NOTHING_RESERVED) settled.quota = this.#settlement === Settlement.COMMITTED ? 'kept' : 'returned';
    const written = handled(this.#write(() => whenBuilt(this.#event(), (event) => completeEvent(event, decision, settled)), this.#writeContext));
    this.#finished([written, settledStore, this.#settlement]);
  }
}
