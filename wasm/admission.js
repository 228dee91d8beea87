// The spec's admission rule, as every JavaScript counter store applies it
// (MemoryCounterStore, the Durable Object and Workers KV stores), written
// once. The core has the same rule (core/evaluate.cpp `estimate`, `admits`,
// `retry_after_ms`): a store admits and charges in one atomic step, and the
// core then decides from the states the store read, so the two must agree to
// the last bit. The Redis store runs the same rule in Lua
// (worker/stores/redis-scripts.js, ADMISSION_LUA); tests/js/admission.test.js
// holds this module to the core and to that Lua on generated cases.
//
// A request is the core's CounterRequest ({ key, cost, max, window_ms,
// algorithm, bucket_start_ms, ... }); a state is { current, previous }, the
// counts of the request's current fixed bucket and of the one before it.

/**
 * The count a request is checked against at `now`: the current bucket's count
 * for a fixed window; for a sliding one the two-bucket estimate
 * `previous * (window - elapsed) / window + current`, in doubles, no rounding,
 * in the core's order of operations (a different order can differ in the last bit).
 */
export function estimateCount(request, state, now) {
  if (request.algorithm !== 'sliding') return state.current;
  const elapsed = now - request.bucket_start_ms;
  return (state.previous * (request.window_ms - elapsed)) / request.window_ms + state.current;
}

/**
 * The index of the first request of a call that does not fit, or -1 when the
 * call is admitted: every request must pass `estimate + cost <= max`, all or
 * nothing. A key named twice in one call (the core never does; a store counts
 * it anyway) is checked with the earlier copies' costs added, as they would
 * be charged. No allocation: this is on the memory store's hot path.
 */
export function firstDenied(requests, states, now) {
  const count = requests.length;
  for (let i = 0; i < count; i++) {
    const request = requests[i];
    let before = 0;
    for (let j = 0; j < i; j++) if (requests[j].key === request.key) before += requests[j].cost;
    if (!(estimateCount(request, states[i], now) + before + request.cost <= request.max)) return i;
  }
  return -1;
}

/** Whether a call is admitted: every request fits (see firstDenied). */
export function admits(requests, states, now) {
  return firstDenied(requests, states, now) === -1;
}

// The largest integer every JSON reader holds exactly (the core's clamp).
const MAX_WAIT_MS = 9007199254740991;

/**
 * Milliseconds until a call denied by `request` could be admitted, assuming no
 * further calls: the end of the window, or for a sliding window the moment the
 * older bucket's weight has faded enough (in this bucket, or in the next one,
 * when this bucket becomes the older). `max` is the denying limit's (the core
 * checks each limit sharing a key against its own max; the request's is the
 * tightest). Rounded up, at least 1. The core's retry_after_ms, operation for
 * operation.
 */
export function retryAfterMs(request, state, now, max = request.max) {
  const window = request.window_ms;
  const elapsed = now - request.bucket_start_ms;
  const toWindowEnd = window - elapsed;
  let wait = toWindowEnd;
  if (request.algorithm === 'sliding' && request.cost <= max) {
    if (state.current + request.cost <= max && state.previous > 0) {
      const neededElapsed = window - ((max - state.current - request.cost) * window) / state.previous;
      wait = neededElapsed - elapsed;
    } else if (state.current > 0) {
      const neededElapsed = window - ((max - request.cost) * window) / state.current;
      wait = toWindowEnd + Math.max(0, neededElapsed);
    }
  }
  return Math.min(Math.max(Math.ceil(wait), 1), MAX_WAIT_MS);
}
