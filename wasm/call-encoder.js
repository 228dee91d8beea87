// Writes a call in the binary form the core reads without lexing
// (core/call_buffer.h), so a decision does not pay for JSON.stringify, the
// glue's UTF-8 encoding and a JSON parse of the whole call.
//
// It encodes exactly the values JSON.stringify writes unchanged: plain objects
// and arrays, strings without lone surrogates, finite numbers (integers only
// when safe), booleans and null. Anything JSON.stringify would transform or
// reject (toJSON, undefined members, NaN, 2^60, a class instance, a cycle,
// deep nesting, a throwing getter) makes encodeCall return -1, and the caller
// sends JSON text instead: the two paths always read the same value.

const NULL = 0;
const FALSE = 1;
const TRUE = 2;
const INTEGER = 3;
const NUMBER = 4;
const STRING = 5;
const ARRAY = 6;
const OBJECT = 7;

// Deeper calls go as JSON text, whose reader reports nesting past its limit
// with the same message as every other host.
const MAX_DEPTH = 64;
const MAX_SAFE = Number.MAX_SAFE_INTEGER;

const utf8 = new TextEncoder();
const hasLoneSurrogate = typeof ''.isWellFormed === 'function'
  ? (text) => !text.isWellFormed()
  : (text) => /\p{Cs}/u.test(text);

// The state of the encoding, in one object of fixed shape rather than
// module-level `let`s (which V8 reaches through the module's context, with a
// check that each is initialised): measured, the encoder about 5 % faster and
// a typical decide() about 3 %.
//
// Where the encoder writes: the engine's input area in WebAssembly memory
// (encodeCallInto: no copy, no intermediate array), or its own scratch buffer
// (encodeCall), which grows as needed. `limit` bounds the writes; a write past
// it grows the scratch buffer, or stops an encoding into memory (OVERFLOW),
// whose caller then encodes into the scratch buffer and asks for room.
const firstScratch = new Uint8Array(4096);
const state = {
  scratch: firstScratch,
  scratchView: new DataView(firstScratch.buffer),
  heapView: null, // a DataView over the last WebAssembly memory written
  heapViewOf: null, // the Uint8Array heapView was made for
  out: firstScratch,
  view: null, // DataView over `out`
  at: 0,
  limit: 0,
  growable: true,
  overflowed: false,
  // Whether the last encoding's top-level object wrote a "now" member: then
  // the host's clock is not needed for it (the core uses its default time
  // only for a call without one), and the façade does not read it.
  wroteNow: false,
  // A getter or proxy trap of the call being encoded may decide another call
  // (reentrancy): that one is refused here (it goes as JSON text), so it
  // never moves the cursor of the encoding under way.
  busy: false,
  // Set by abandonEncodingInto(): the encoding under way no longer writes
  // into the engine's memory, and answers -1 (JSON text).
  abandoned: false,
};
state.view = state.scratchView;

/**
 * Stops an encoding into the engine's memory that is under way (a getter or
 * proxy trap of the call being encoded is using the engine): from here on it
 * writes nowhere that matters and answers -1, so the call goes as JSON text.
 * The engine may move or free its input area while that code runs (a larger
 * call, a decision with many counters, callCore growing it), and the encoder
 * would otherwise go on writing the rest of the call at the old address:
 * into freed memory of the engine's heap. The façade calls this on every use
 * of the engine (Toolgate #ready); outside an encoding it does nothing.
 */
export function abandonEncodingInto() {
  if (!state.busy || state.out === state.scratch) return;
  state.abandoned = true;
  state.out = state.scratch;
  state.view = state.scratchView;
  state.limit = 0; // every further write overflows: nothing more is written
  state.growable = false;
}

// Room for `count` more bytes at `at`; false (overflowed) when the area is
// the engine's and full.
function room(count) {
  if (state.at + count <= state.limit) return true;
  if (!state.growable) {
    state.overflowed = true;
    return false;
  }
  let size = state.scratch.length * 2;
  while (size < state.at + count) size *= 2;
  const larger = new Uint8Array(size);
  larger.set(state.scratch.subarray(0, state.at));
  state.scratch = larger;
  state.scratchView = new DataView(state.scratch.buffer);
  state.out = state.scratch;
  state.view = state.scratchView;
  state.limit = size;
  return true;
}

const LONG_STRING = 256;

// The UTF-8 of text.slice(from) at `end`; the new end, or -1 when it must go
// as text (a lone surrogate) or does not fit (overflowed).
function writeRest(text, from, end) {
  const rest = from === 0 ? text : text.slice(from);
  if (hasLoneSurrogate(rest)) return -1;
  for (;;) {
    const { read, written } = utf8.encodeInto(rest, state.out.subarray(end, state.limit));
    if (read === rest.length) return end + written;
    // Not enough room: at most 3 bytes per UTF-16 unit is always enough.
    const offset = end - state.at;
    if (!room(offset + rest.length * 3)) return -1;
    end = state.at + offset;
  }
}

// u32 byte length, then UTF-8. ASCII (most names and keys) is copied by hand
// straight into place; the rest, and long strings (an argument holding a
// document: a hand loop over megabytes would cost tens of milliseconds), go
// through TextEncoder.encodeInto, also in place.
function writeString(text) {
  const units = text.length;
  if (state.at + 4 + units > state.limit && !room(4 + units)) return false;
  const start = state.at + 4;
  let end = start;
  if (units > LONG_STRING) {
    end = writeRest(text, 0, end);
  } else {
    let i = 0;
    for (; i < units; i++) {
      const unit = text.charCodeAt(i);
      if (unit >= 0x80) break;
      state.out[end++] = unit;
    }
    if (i < units) end = writeRest(text, i, end);
  }
  if (end < 0) return false;
  state.view.setUint32(state.at, end - start, true);
  state.at = end;
  return true;
}

// What JSON.stringify writes for a member or element: it drops (objects) or
// nulls (arrays) these, so they must go as text.
const skipped = (value) => value === undefined || typeof value === 'function' || typeof value === 'symbol';

function writeValue(value, depth) {
  switch (typeof value) {
    case 'string':
      if (!room(1)) return false;
      state.out[state.at++] = STRING;
      return writeString(value);
    case 'number':
      if (!room(9)) return false;
      if (Number.isInteger(value)) {
        // Beyond 2^53 JSON.stringify prints digits that are not the double's
        // value ("9223372036854778000"), which JSON readers take as a 64-bit integer.
        if (value > MAX_SAFE || value < -MAX_SAFE) return false;
        state.out[state.at] = INTEGER;
        state.view.setFloat64(state.at + 1, value === 0 ? 0 : value, true); // -0 prints as 0
      } else {
        if (!Number.isFinite(value)) return false;
        state.out[state.at] = NUMBER;
        state.view.setFloat64(state.at + 1, value, true);
      }
      state.at += 9;
      return true;
    case 'boolean':
      if (!room(1)) return false;
      state.out[state.at++] = value ? TRUE : FALSE;
      return true;
    case 'object': {
      if (value === null) {
        if (!room(1)) return false;
        state.out[state.at++] = NULL;
        return true;
      }
      if (depth >= MAX_DEPTH || typeof value.toJSON === 'function') return false;
      if (Array.isArray(value)) {
        if (Object.getPrototypeOf(value) !== Array.prototype) return false;
        const count = value.length;
        if (!room(5)) return false;
        state.out[state.at] = ARRAY;
        state.view.setUint32(state.at + 1, count, true);
        state.at += 5;
        for (let i = 0; i < count; i++) {
          const element = value[i];
          if (skipped(element) || !writeValue(element, depth + 1)) return false;
        }
        return true;
      }
      const prototype = Object.getPrototypeOf(value);
      if (prototype !== Object.prototype && prototype !== null) return false;
      const keys = Object.keys(value);
      if (!room(5)) return false;
      state.out[state.at] = OBJECT;
      state.view.setUint32(state.at + 1, keys.length, true);
      state.at += 5;
      for (let i = 0; i < keys.length; i++) {
        const member = value[keys[i]];
        if (skipped(member) || !writeString(keys[i]) || !writeValue(member, depth + 1)) return false;
        if (depth === 0 && keys[i] === 'now') state.wroteNow = true;
      }
      return true;
    }
    default:
      return false; // undefined, function, symbol, bigint
  }
}

// One encoding, into `out` from `from` up to `to`: its length, -1 when the
// call must go as JSON text, OVERFLOW when it did not fit in the engine's area.
function encode(call, from, to) {
  if (state.busy) return -1;
  state.busy = true;
  state.at = from;
  state.limit = to;
  state.overflowed = false;
  state.wroteNow = false;
  state.abandoned = false;
  try {
    const written = writeValue(call, 0);
    if (state.abandoned) return -1;
    if (written) return state.at - from;
    return state.overflowed ? OVERFLOW : -1;
  } catch {
    return -1; // a throwing getter or a proxy: JSON.stringify decides what happens
  } finally {
    state.busy = false;
    state.abandoned = false;
  }
}

/**
 * Whether the call the last successful encodeCall/encodeCallInto wrote has a
 * top-level "now" member (so its decision does not depend on the host's clock).
 */
export const encodedCallHasNow = () => state.wroteNow;

/** encodeCallInto's answer for a call that did not fit in `capacity` bytes. */
export const OVERFLOW = -2;

/**
 * Encodes `call` into the shared scratch buffer (see encodedBytes); returns
 * its length in bytes, or -1 when it must go as JSON text instead.
 */
export function encodeCall(call) {
  if (state.busy) return -1;
  state.out = state.scratch;
  state.view = state.scratchView;
  state.growable = true;
  return encode(call, 0, state.scratch.length);
}

/** The bytes encodeCall wrote (valid until the next call). */
export const encodedBytes = (length) => state.scratch.subarray(0, length);

/**
 * Encodes `call` straight into `heap` (a WebAssembly memory's Uint8Array) at
 * byte `start`, writing at most `capacity` bytes: the same bytes encodeCall
 * writes. Returns the length, -1 when the call must go as JSON text, or
 * OVERFLOW when it needs more room (then encode it with encodeCall, ask the
 * engine for that much and copy it). Bytes past what it returns are garbage.
 */
export function encodeCallInto(call, heap, start, capacity) {
  if (state.busy) return -1;
  // A new memory comes with a new view object (the glue replaces its views
  // when the memory grows): comparing the view is cheaper than reading
  // both objects' .buffer.
  if (heap !== state.heapViewOf) {
    state.heapView = new DataView(heap.buffer);
    state.heapViewOf = heap;
  }
  state.out = heap;
  state.view = state.heapView;
  state.growable = false;
  return encode(call, start, start + capacity);
}
