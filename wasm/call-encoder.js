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

let bytes = new Uint8Array(4096);
let view = new DataView(bytes.buffer);
let at = 0;

function reserve(count) {
  if (at + count <= bytes.length) return;
  let size = bytes.length * 2;
  while (size < at + count) size *= 2;
  const larger = new Uint8Array(size);
  larger.set(bytes.subarray(0, at));
  bytes = larger;
  view = new DataView(bytes.buffer);
}

const LONG_STRING = 256;

// u32 byte length, then UTF-8. ASCII is copied by hand (most names and keys);
// the rest goes through TextEncoder.
function writeString(text) {
  const units = text.length;
  reserve(4 + units * 3);
  const start = at + 4;
  let end = start;
  let i = 0;
  // Long strings (an argument holding a document) go to TextEncoder whole:
  // a hand loop over megabytes would cost tens of milliseconds.
  if (units > LONG_STRING) {
    if (hasLoneSurrogate(text)) return false;
    end += utf8.encodeInto(text, bytes.subarray(end)).written;
    view.setUint32(at, end - start, true);
    at = end;
    return true;
  }
  for (; i < units; i++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0x80) break;
    bytes[end++] = unit;
  }
  if (i < units) {
    const rest = text.slice(i);
    if (hasLoneSurrogate(rest)) return false;
    end += utf8.encodeInto(rest, bytes.subarray(end)).written;
  }
  view.setUint32(at, end - start, true);
  at = end;
  return true;
}

// What JSON.stringify writes for a member or element: it drops (objects) or
// nulls (arrays) these, so they must go as text.
const skipped = (value) => value === undefined || typeof value === 'function' || typeof value === 'symbol';

function writeValue(value, depth) {
  switch (typeof value) {
    case 'string':
      reserve(1);
      bytes[at++] = STRING;
      return writeString(value);
    case 'number':
      reserve(9);
      if (Number.isInteger(value)) {
        // Beyond 2^53 JSON.stringify prints digits that are not the double's
        // value ("9223372036854778000"), which JSON readers take as a 64-bit integer.
        if (value > MAX_SAFE || value < -MAX_SAFE) return false;
        bytes[at] = INTEGER;
        view.setFloat64(at + 1, value === 0 ? 0 : value, true); // -0 prints as 0
      } else {
        if (!Number.isFinite(value)) return false;
        bytes[at] = NUMBER;
        view.setFloat64(at + 1, value, true);
      }
      at += 9;
      return true;
    case 'boolean':
      reserve(1);
      bytes[at++] = value ? TRUE : FALSE;
      return true;
    case 'object': {
      if (value === null) {
        reserve(1);
        bytes[at++] = NULL;
        return true;
      }
      if (depth >= MAX_DEPTH || typeof value.toJSON === 'function') return false;
      if (Array.isArray(value)) {
        if (Object.getPrototypeOf(value) !== Array.prototype) return false;
        const count = value.length;
        reserve(5);
        bytes[at] = ARRAY;
        view.setUint32(at + 1, count, true);
        at += 5;
        for (let i = 0; i < count; i++) {
          const element = value[i];
          if (skipped(element) || !writeValue(element, depth + 1)) return false;
        }
        return true;
      }
      const prototype = Object.getPrototypeOf(value);
      if (prototype !== Object.prototype && prototype !== null) return false;
      const keys = Object.keys(value);
      reserve(5);
      bytes[at] = OBJECT;
      view.setUint32(at + 1, keys.length, true);
      at += 5;
      for (let i = 0; i < keys.length; i++) {
        const member = value[keys[i]];
        if (skipped(member) || !writeString(keys[i]) || !writeValue(member, depth + 1)) return false;
      }
      return true;
    }
    default:
      return false; // undefined, function, symbol, bigint
  }
}

/**
 * Encodes `call` into the shared buffer (see encodedBytes); returns its length
 * in bytes, or -1 when it must go as JSON text instead.
 */
export function encodeCall(call) {
  at = 0;
  try {
    return writeValue(call, 0) ? at : -1;
  } catch {
    return -1; // a throwing getter or a proxy: JSON.stringify decides what happens
  }
}

/** The bytes encodeCall wrote (valid until the next call). */
export const encodedBytes = (length) => bytes.subarray(0, length);
