// What every store checks before its backend sees a value. A malformed
// request must not reach storage as NaN, "undefined" or a wrong key; throwing
// denies the call (authorize fails closed with store_error).

/** Throws TypeError when counter request `i` is not what the core produces. */
export function checkCounterRequest(request, i) {
  const problem =
    typeof request?.key !== 'string' ? 'key is not a string'
    : !['grant', 'global'].includes(request.scope) ? 'scope is neither "grant" nor "global"'
    : request.scope === 'grant' && typeof request.grant !== 'string' ? 'grant is not a string'
    : !(Number.isFinite(request.cost) && request.cost >= 0) ? 'cost is not a finite non-negative number'
    : !Number.isFinite(request.max) ? 'max is not a finite number'
    : !(Number.isSafeInteger(request.window_ms) && request.window_ms > 0) ? 'window_ms is not a positive integer'
    : !Number.isSafeInteger(request.bucket_start_ms) ? 'bucket_start_ms is not an integer'
    : null;
  if (problem) throw new TypeError(`counter request ${i}: ${problem}`);
}

export function checkApprovalId(id) {
  if (typeof id !== 'string' || id === '') throw new TypeError('an approval id must be a non-empty string');
}

export function checkTime(value, name) {
  if (!Number.isFinite(value)) throw new TypeError(`\`${name}\` must be a finite number (epoch milliseconds)`);
}

/** Throws TypeError when `request` is not an ApprovalRequest a store can keep. */
export function checkApprovalRequest(request) {
  if (!request || typeof request !== 'object') throw new TypeError('request() needs an ApprovalRequest object');
  checkApprovalId(request.id);
  checkTime(request.requested_at, 'requested_at');
  checkTime(request.expires_at, 'expires_at');
}
