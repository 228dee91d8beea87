// The hot path's memory layout, as the core exports it (boundaryLayout() in
// wasm/bindings.cpp): checked once at load, then turned into a decoder with
// every heap index precomputed. No offset is written here: a core built with
// another layout either decodes correctly by the offsets it reports or fails
// the load with an EngineError naming what does not fit; it never yields a
// decision read from the wrong bytes.

import { EngineError } from './errors.js';

// What the decoder reads, and the type it reads each field as.
const U32 = 'u32';
const F64 = 'f64';
const SIZES = { [U32]: 4, [F64]: 8 };
export const OUTPUT_FIELDS = {
  kind: U32, verdict: U32, code: U32, code_length: U32, rule: U32, rule_length: U32,
  message: U32, message_length: U32, approval: U32, approval_length: U32, has_retry: U32,
  ticket: U32, retry_after_ms: F64, now_ms: F64, approval_timeout_ms: F64, counters: U32, counter_count: U32,
  code_version: U32, rule_version: U32, message_version: U32, approval_version: U32,
};
export const COUNTER_FIELDS = {
  key: U32, key_length: U32, grant: U32, grant_length: U32, scope: U32, algorithm: U32,
  cost: F64, max: F64, window_ms: F64, bucket_start_ms: F64, key_version: U32, grant_version: U32,
};
export const COUNT_FIELDS = { current: F64, previous: F64 };
export const TABLE_RECORD_FIELDS = {
  cost: F64, max: F64, window_ms: F64, bucket_start_ms: F64, current: F64, previous: F64, start: F64,
  algorithm: U32, key_length: U32,
};
// The names every code table must hold (its order, the codes, comes from the core).
const KINDS = ['decision', 'parked', 'pending_text'];
const VERDICTS = ['allow', 'deny', 'approval_required'];
const SCOPES = ['grant', 'global'];
const ALGORITHMS = ['fixed', 'sliding'];

function mismatch(what) {
  return new EngineError(`the WebAssembly core's boundary layout does not match this façade (wasm/boundary-layout.js): ${what}; rebuild the core and the façade together`);
}

const isCount = (n) => Number.isSafeInteger(n) && n >= 0;

// Checks one struct of the layout against the fields the decoder reads; returns
// { size, fields: { name: offset } }. Arrays of the struct (counters, counts)
// and every f64 field must be 8-aligned so they index a Float64Array.
function checkStruct(layout, name, expected) {
  const struct = layout?.[name];
  if (!struct || typeof struct !== 'object') throw mismatch(`no "${name}" struct`);
  const { size, align, fields } = struct;
  if (!isCount(size) || size === 0) throw mismatch(`${name}: size ${size} is not a positive whole number`);
  if (align !== 8 || size % 8 !== 0) throw mismatch(`${name}: size ${size} and alignment ${align} (expected 8-aligned, a multiple of 8 bytes)`);
  if (!fields || typeof fields !== 'object') throw mismatch(`${name}: no fields`);
  const offsets = {};
  const taken = [];
  for (const [field, type] of Object.entries(expected)) {
    const described = Object.hasOwn(fields, field) ? fields[field] : undefined;
    if (!described) throw mismatch(`${name}.${field} is missing`);
    const { offset, type: actual, size: bytes } = described;
    if (actual !== type || bytes !== SIZES[type]) throw mismatch(`${name}.${field} is ${actual} of ${bytes} bytes, the decoder reads ${type} (${SIZES[type]} bytes)`);
    if (!isCount(offset) || offset % bytes !== 0) throw mismatch(`${name}.${field} is at byte ${offset}, not aligned to ${bytes}`);
    if (offset + bytes > size) throw mismatch(`${name}.${field} (bytes ${offset}..${offset + bytes}) lies outside the ${size}-byte struct`);
    const clash = taken.find((t) => offset < t.end && t.offset < offset + bytes);
    if (clash) throw mismatch(`${name}.${field} overlaps ${name}.${clash.field}`);
    taken.push({ field, offset, end: offset + bytes });
    offsets[field] = offset;
  }
  return { size, fields: offsets };
}

// A code table (names by code): exactly the names the decoder knows, each once.
function checkNames(layout, name, expected) {
  const list = layout?.[name];
  if (!Array.isArray(list) || list.length !== expected.length || !expected.every((n) => list.includes(n))) {
    throw mismatch(`"${name}" is ${JSON.stringify(list)}, expected the codes of ${JSON.stringify(expected)}`);
  }
  return Object.freeze([...list]);
}

/**
 * Checks the layout JSON text the core exported; returns it as
 * { output, counter, count, tableRecord: { size, fields: { name: byte offset } },
 *   kinds, verdicts, scopes, algorithms: names by code, maxParked }.
 * Throws EngineError on anything the decoder could misread.
 */
export function checkLayout(text) {
  let layout;
  try {
    layout = JSON.parse(text);
  } catch (error) {
    throw mismatch(`its description is not JSON (${error.message})`);
  }
  if (!layout || typeof layout !== 'object') throw mismatch('its description is not an object');
  const maxParked = layout.max_parked;
  if (!isCount(maxParked) || maxParked === 0) throw mismatch(`max_parked is ${maxParked}`);
  return {
    output: checkStruct(layout, 'output', OUTPUT_FIELDS),
    counter: checkStruct(layout, 'counter', COUNTER_FIELDS),
    count: checkStruct(layout, 'count', COUNT_FIELDS),
    tableRecord: checkStruct(layout, 'table_record', TABLE_RECORD_FIELDS),
    kinds: checkNames(layout, 'kinds', KINDS),
    verdicts: checkNames(layout, 'verdicts', VERDICTS),
    scopes: checkNames(layout, 'scopes', SCOPES),
    algorithms: checkNames(layout, 'algorithms', ALGORITHMS),
    maxParked,
  };
}

const utf8 = new TextDecoder();

// Very short ASCII is faster by hand than through TextDecoder. Longer text
// goes through TextDecoder: concatenation would build a rope, which V8
// flattens again the first time the string is hashed (a store's Map key).
function readString(heap, pointer, length) {
  if (length > 12) return utf8.decode(heap.subarray(pointer, pointer + length));
  let text = '';
  for (let i = pointer; i < pointer + length; i++) {
    const byte = heap[i];
    if (byte >= 0x80) return utf8.decode(heap.subarray(pointer, pointer + length));
    text += String.fromCharCode(byte);
  }
  return text;
}

/**
 * The codec of one core instance: `layout` from checkLayout(), `output` the
 * output area's address (toolgate_output()). Every heap index is computed
 * here, once, so decoding a decision reads no layout object.
 *   read(core): what the last toolgate_start/toolgate_finish wrote: a
 *     decision, a parked evaluation ({ ticket, now, approval?, counters }), or
 *     a pending evaluation (its JSON text, parsed).
 *   writeCounts(core, states): the store's answers into the input area, as
 *     toolgate_finish reads them; returns how many.
 *   input(core, bytes): the input area's address, holding at least `bytes`
 *     (toolgate_input, asked only when more is needed); forgetInput() after
 *     anything else may have called toolgate_input.
 */
export function createCodec(layout, output) {
  if (!isCount(output) || output % 8 !== 0) throw mismatch(`the output area is at ${output}, not 8-aligned`);
  const o = layout.output.fields;
  const c = layout.counter.fields;
  const w = output >> 2; // u32 index of the output area
  const d = output >> 3; // f64 index
  const KIND = w + o.kind / 4;
  const VERDICT = w + o.verdict / 4;
  const CODE = w + o.code / 4;
  const CODE_LENGTH = w + o.code_length / 4;
  const RULE = w + o.rule / 4;
  const RULE_LENGTH = w + o.rule_length / 4;
  const MESSAGE = w + o.message / 4;
  const MESSAGE_LENGTH = w + o.message_length / 4;
  const APPROVAL = w + o.approval / 4;
  const APPROVAL_LENGTH = w + o.approval_length / 4;
  const HAS_RETRY = w + o.has_retry / 4;
  const TICKET = w + o.ticket / 4;
  const RETRY_AFTER = d + o.retry_after_ms / 8;
  const NOW = d + o.now_ms / 8;
  const APPROVAL_TIMEOUT = d + o.approval_timeout_ms / 8;
  const CODE_VERSION = w + o.code_version / 4;
  const RULE_VERSION = w + o.rule_version / 4;
  const MESSAGE_VERSION = w + o.message_version / 4;
  const APPROVAL_VERSION = w + o.approval_version / 4;
  const COUNTERS = w + o.counters / 4;
  const COUNTER_COUNT = w + o.counter_count / 4;
  const COUNTER_SIZE = layout.counter.size;
  const C_KEY = c.key / 4;
  const C_KEY_LENGTH = c.key_length / 4;
  const C_GRANT = c.grant / 4;
  const C_GRANT_LENGTH = c.grant_length / 4;
  const C_SCOPE = c.scope / 4;
  const C_ALGORITHM = c.algorithm / 4;
  const C_COST = c.cost / 8;
  const C_MAX = c.max / 8;
  const C_WINDOW = c.window_ms / 8;
  const C_BUCKET = c.bucket_start_ms / 8;
  const C_KEY_VERSION = c.key_version / 4;
  const C_GRANT_VERSION = c.grant_version / 4;
  const KIND_DECISION = layout.kinds.indexOf('decision');
  const KIND_PARKED = layout.kinds.indexOf('parked');
  const KIND_PENDING_TEXT = layout.kinds.indexOf('pending_text');
  const { verdicts, scopes, algorithms } = layout;
  const COUNT_SIZE = layout.count.size;
  const COUNT_STRIDE = COUNT_SIZE / 8;
  const COUNT_CURRENT = layout.count.fields.current / 8;
  const COUNT_PREVIOUS = layout.count.fields.previous / 8;
  // Strings up to 256 bytes, remembered by where they stand: the core writes
  // a decision's code, rule and message, and a parked call's counter keys and
  // grant, into storage it reuses (or static storage), so the same text keeps
  // coming from the same place. A hit is checked byte for byte (cheaper than
  // decoding, and it builds no string: short text by hand would concatenate a
  // new one per call), so a stale entry can never be returned; a miss at a
  // known place overwrites its entry; the cache is dropped whole when it
  // holds too many places.
  const remembered = new Map(); // pointer -> { bytes, text }
  function text(heap, pointer, length) {
    if (length === 0) return '';
    if (length > 256) return readString(heap, pointer, length);
    const known = remembered.get(pointer);
    if (known !== undefined && known.bytes.length === length) {
      const bytes = known.bytes;
      let same = true;
      for (let i = 0; i < length; i++) {
        if (heap[pointer + i] !== bytes[i]) {
          same = false;
          break;
        }
      }
      if (same) return known.text;
      // The same place holding other text of the same length (a grant id):
      // the entry takes it, no new object.
      known.bytes.set(heap.subarray(pointer, pointer + length));
      known.text = readString(heap, pointer, length);
      return known.text;
    }
    const decoded = readString(heap, pointer, length);
    if (remembered.size >= 64) remembered.clear();
    remembered.set(pointer, { bytes: heap.slice(pointer, pointer + length), text: decoded });
    return decoded;
  }

  // The core numbers the text published in each place of the output (a
  // decision's code, rule, message and approval id; the key and grant of a
  // parked call's first counters) with a version that changes whenever the
  // text does (FastOutput::code_version in wasm/bindings.cpp; 0: not
  // versioned). A version seen before, at the same address and length, is
  // the same text: the string built for it then is returned without reading
  // a byte. Anything else is decoded (through the memo above) and becomes
  // the place's known version.
  const CODE_SLOT = 0;
  const RULE_SLOT = 1;
  const MESSAGE_SLOT = 2;
  const APPROVAL_SLOT = 3;
  const COUNTER_SLOTS = 16; // counters 0..15: slots 4 + 2i (key) and 5 + 2i (grant)
  const SLOTS = 4 + 2 * COUNTER_SLOTS;
  const seenVersion = new Uint32Array(SLOTS);
  const seenPointer = new Uint32Array(SLOTS);
  const seenLength = new Uint32Array(SLOTS);
  const seenText = new Array(SLOTS).fill('');
  function versioned(slot, version, heap, pointer, length) {
    if (version !== 0 && seenVersion[slot] === version && seenPointer[slot] === pointer && seenLength[slot] === length) {
      return seenText[slot];
    }
    const decoded = text(heap, pointer, length);
    seenVersion[slot] = version;
    seenPointer[slot] = pointer;
    seenLength[slot] = length;
    seenText[slot] = decoded;
    return decoded;
  }

  // A code outside a table means the core and this codec disagree after all:
  // fail the call (the façade turns it into an EngineError), never guess.
  const unknown = (what, code) => mismatch(`the core wrote ${what} code ${code}`);

  // The glue's heap views, read from its Module (a dictionary-mode object,
  // about 7 ns a property) once per memory: the glue replaces all three
  // together when the memory grows, so a new HEAPU8 means new views.
  let heapU8 = null;
  let heapU32 = null;
  let heapF64 = null;

  function read(core) {
    const heap = core.HEAPU8;
    if (heap !== heapU8) {
      heapU8 = heap;
      heapU32 = core.HEAPU32;
      heapF64 = core.HEAPF64;
    }
    const u32 = heapU32;
    const f64 = heapF64;
    const kind = u32[KIND];
    if (kind === KIND_PENDING_TEXT) return JSON.parse(readString(heap, u32[MESSAGE], u32[MESSAGE_LENGTH]));
    if (kind === KIND_DECISION) {
      const verdict = verdicts[u32[VERDICT]];
      if (verdict === undefined) throw unknown('verdict', u32[VERDICT]);
      const decision = {
        decision: verdict,
        code: versioned(CODE_SLOT, u32[CODE_VERSION], heap, u32[CODE], u32[CODE_LENGTH]),
        rule: versioned(RULE_SLOT, u32[RULE_VERSION], heap, u32[RULE], u32[RULE_LENGTH]),
        message: versioned(MESSAGE_SLOT, u32[MESSAGE_VERSION], heap, u32[MESSAGE], u32[MESSAGE_LENGTH]),
      };
      if (u32[HAS_RETRY]) decision.retry_after_ms = f64[RETRY_AFTER];
      if (u32[APPROVAL_LENGTH]) decision.approval_id = versioned(APPROVAL_SLOT, u32[APPROVAL_VERSION], heap, u32[APPROVAL], u32[APPROVAL_LENGTH]);
      return decision;
    }
    if (kind !== KIND_PARKED) throw unknown('output kind', kind);
    // Every field the façade gives a parked call (wasm/index.js #start:
    // address, handle) is here from the start: one shape, and no property
    // store to grow when they are added.
    const parked = { ticket: u32[TICKET], now: f64[NOW], approval: undefined, counters: null, address: 0, handle: null };
    if (u32[APPROVAL_LENGTH]) {
      parked.approval = { id: readString(heap, u32[APPROVAL], u32[APPROVAL_LENGTH]), timeout_ms: f64[APPROVAL_TIMEOUT] };
    }
    const counters = [];
    const first = u32[COUNTERS];
    const count = u32[COUNTER_COUNT];
    for (let i = 0; i < count; i++) {
      const base = first + i * COUNTER_SIZE;
      const cw = base >> 2;
      const cd = base >> 3;
      const scope = scopes[u32[cw + C_SCOPE]];
      const algorithm = algorithms[u32[cw + C_ALGORITHM]];
      if (scope === undefined || algorithm === undefined) throw unknown('counter scope or algorithm', `${u32[cw + C_SCOPE]}/${u32[cw + C_ALGORITHM]}`);
      const keyVersion = i < COUNTER_SLOTS ? u32[cw + C_KEY_VERSION] : 0;
      const grantVersion = i < COUNTER_SLOTS ? u32[cw + C_GRANT_VERSION] : 0;
      const slot = i < COUNTER_SLOTS ? 4 + 2 * i : 0;
      counters.push({
        key: keyVersion === 0 ? text(heap, u32[cw + C_KEY], u32[cw + C_KEY_LENGTH]) : versioned(slot, keyVersion, heap, u32[cw + C_KEY], u32[cw + C_KEY_LENGTH]),
        scope,
        grant: grantVersion === 0 ? text(heap, u32[cw + C_GRANT], u32[cw + C_GRANT_LENGTH]) : versioned(slot + 1, grantVersion, heap, u32[cw + C_GRANT], u32[cw + C_GRANT_LENGTH]),
        cost: f64[cd + C_COST],
        max: f64[cd + C_MAX],
        window_ms: f64[cd + C_WINDOW],
        algorithm,
        bucket_start_ms: f64[cd + C_BUCKET],
      });
    }
    parked.counters = counters;
    return parked;
  }

  // The input area's address, asked of the core (toolgate_input, a call into
  // WebAssembly) only when more bytes are needed than it was last asked for:
  // the area only moves when it grows, and only toolgate_input grows it, so
  // the address holds until a larger request. Every caller of toolgate_input
  // must come through here; forgetInput() after code that may have called it
  // directly (the façade's callCore).
  let inputCore = null;
  let inputAddress = 0;
  let inputBytes = 0;
  function input(core, bytes) {
    if (core !== inputCore || bytes > inputBytes) {
      inputAddress = core._toolgate_input(bytes); // may grow memory: read the heap views after
      inputCore = core;
      inputBytes = bytes;
    }
    return inputAddress;
  }
  function forgetInput() {
    inputCore = null;
  }

  // Counts JS cannot read as finite numbers go as -1, which the core refuses
  // (store_error): a store's garbage never becomes a count.
  function writeCounts(core, states) {
    const count = states.length;
    const address = input(core, count * COUNT_SIZE); // may grow memory: read HEAPF64 after
    if (address % 8 !== 0) throw mismatch(`the input area is at ${address}, not 8-aligned`);
    const first = address / 8;
    const f64 = core.HEAPF64;
    for (let i = 0; i < count; i++) {
      const current = Number(states[i]?.current);
      const previous = Number(states[i]?.previous);
      const at = first + i * COUNT_STRIDE;
      f64[at + COUNT_CURRENT] = Number.isFinite(current) ? current : -1;
      f64[at + COUNT_PREVIOUS] = Number.isFinite(previous) ? previous : -1;
    }
    return count;
  }

  return { read, writeCounts, input, forgetInput };
}

// A key's bytes as the core holds counter keys: UTF-8, so that a key the
// core wrote and the same key from JS name one count. A JS string can also
// hold a lone surrogate (no UTF-8): it goes as the three bytes WTF-8 gives
// it, which no UTF-8 text contains, so no two strings share bytes. Returns
// the bytes written (at most 3 per UTF-16 unit).
const utf8Encoder = new TextEncoder();
// A time the core's int64 holds: whole (every double past 2^53 is), within
// its range. The core's own windows can pass 2^53 ms.
const wholeMs = (n) => Number.isInteger(n) && n >= -(2 ** 63) && n < 2 ** 63;
function writeKey(heap, at, key) {
  let i = 0;
  const length = key.length;
  for (; i < length; i++) { // ASCII by hand: most keys are
    const unit = key.charCodeAt(i);
    if (unit >= 0x80) break;
    heap[at + i] = unit;
  }
  if (i === length) return length;
  if (key.isWellFormed()) return i + utf8Encoder.encodeInto(key.slice(i), heap.subarray(at + i)).written;
  let n = at + i;
  for (; i < length; i++) {
    let unit = key.charCodeAt(i);
    if (unit < 0x80) {
      heap[n++] = unit;
      continue;
    }
    if (unit < 0x800) {
      heap[n++] = 0xc0 | (unit >> 6);
      heap[n++] = 0x80 | (unit & 0x3f);
      continue;
    }
    const next = key.charCodeAt(i + 1);
    if (unit >= 0xd800 && unit <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
      unit = 0x10000 + ((unit - 0xd800) << 10) + (next - 0xdc00);
      i += 1;
      heap[n++] = 0xf0 | (unit >> 18);
      heap[n++] = 0x80 | ((unit >> 12) & 0x3f);
      heap[n++] = 0x80 | ((unit >> 6) & 0x3f);
      heap[n++] = 0x80 | (unit & 0x3f);
      continue;
    }
    heap[n++] = 0xe0 | (unit >> 12); // a lone surrogate too (WTF-8)
    heap[n++] = 0x80 | ((unit >> 6) & 0x3f);
    heap[n++] = 0x80 | (unit & 0x3f);
  }
  return n - at;
}

/**
 * The memory store's side of one core instance (toolgate_table in
 * wasm/bindings.cpp): `core` the glue's Module, `layout` from checkLayout(),
 * `use()` run before every call into the engine (the façade counts it: a
 * call being encoded meanwhile is not sent). Each method takes the table's
 * address; `requests` are CounterRequests ({ key, cost, max, window_ms,
 * bucket_start_ms, algorithm }), `charges` { key, start, cost }.
 *   create() -> address; destroy(table)
 *   reserve(table, requests, now) -> { admitted, states, charges: [{ key, start, cost }] }
 *   rollback(table, charges); peek(table, requests) -> states; size(table)
 * A request whose fields are not a string key and numbers is refused with
 * `fail(message)`'s error before anything is written or charged.
 */
export function createTableCodec(core, layout, use, fail, trapped) {
  const { size: RECORD, fields: r } = layout.tableRecord;
  const COST = r.cost / 8;
  const MAX = r.max / 8;
  const WINDOW = r.window_ms / 8;
  const BUCKET = r.bucket_start_ms / 8;
  const CURRENT = r.current / 8;
  const PREVIOUS = r.previous / 8;
  const START = r.start / 8;
  const ALGORITHM = r.algorithm / 4;
  const KEY_LENGTH = r.key_length / 4;
  const SLIDING = layout.algorithms.indexOf('sliding');
  const FIXED = layout.algorithms.indexOf('fixed');
  const RESERVE = 0;
  const ROLLBACK = 1;
  const PEEK = 2;
  // A trap (out of memory) is the store's failure: `trapped(error)` lets the
  // façade restart its engine if this is its instance, and the store throws.
  // The table itself stays as it was (core/counter_table.cpp allocates
  // before it changes anything).
  const table = (op, address, count, now) => {
    try {
      return core._toolgate_table(op, address, count, now) >>> 0;
    } catch (error) {
      trapped(error);
      throw fail(`the memory store's table in the WebAssembly engine failed: ${error?.message ?? error}`);
    }
  };

  // Reads every field first (a getter runs here, before anything is
  // written), then writes the records into the table's area.
  // `mode`: RESERVE, ROLLBACK (charges: key, start, cost) or PEEK (key,
  // window_ms and bucket_start_ms only, as MemoryCounterStore.peek reads).
  function write(address, requests, mode) {
    const charges = mode === ROLLBACK;
    const count = requests.length;
    const keys = new Array(count);
    const numbers = new Float64Array(count * 4);
    const sliding = new Uint8Array(count);
    let bytes = 0;
    for (let i = 0; i < count; i++) {
      const request = requests[i];
      const key = request?.key;
      // A peek reserves what cannot be admitted: cost 0 against max NaN.
      const cost = mode === PEEK ? 0 : request?.cost;
      const first = charges ? request?.start : mode === PEEK ? NaN : request?.max;
      const window = charges ? 0 : request?.window_ms;
      const bucket = charges ? 0 : request?.bucket_start_ms;
      if (typeof key !== 'string') throw fail(`a counter key must be a string (got ${typeof key})`);
      if (typeof cost !== 'number' || typeof first !== 'number' || typeof window !== 'number' || typeof bucket !== 'number') {
        throw fail(`counter ${JSON.stringify(key)} has a field that is not a number`);
      }
      // The core's times are whole milliseconds in the int64 range; so must these be.
      if (!wholeMs(window) || !wholeMs(bucket)) {
        throw fail(`counter ${JSON.stringify(key)}: window_ms and bucket_start_ms must be whole milliseconds (got ${window}, ${bucket})`);
      }
      keys[i] = key;
      numbers[i * 4] = cost;
      numbers[i * 4 + 1] = first;
      numbers[i * 4 + 2] = window;
      numbers[i * 4 + 3] = bucket;
      sliding[i] = charges ? 0 : request.algorithm === 'sliding' ? 1 : 0;
      bytes += RECORD + ((key.length * 3 + 7) & ~7);
    }
    use();
    const io = table(2, address, bytes, 0); // may grow memory: read the views after
    const heap = core.HEAPU8;
    const u32 = core.HEAPU32;
    const f64 = core.HEAPF64;
    let at = io;
    for (let i = 0; i < count; i++) {
      const d = at >> 3;
      const w = at >> 2;
      f64[d + COST] = numbers[i * 4];
      if (charges) {
        f64[d + BUCKET] = numbers[i * 4 + 1]; // the charge's bucket
        f64[d + MAX] = 0;
        f64[d + WINDOW] = 0;
      } else {
        f64[d + MAX] = numbers[i * 4 + 1];
        f64[d + WINDOW] = numbers[i * 4 + 2];
        f64[d + BUCKET] = numbers[i * 4 + 3];
      }
      u32[w + ALGORITHM] = sliding[i] ? SLIDING : FIXED;
      const length = writeKey(heap, at + RECORD, keys[i]);
      u32[w + KEY_LENGTH] = length;
      at += RECORD + ((length + 7) & ~7);
    }
    lastKeys = keys;
    lastNumbers = numbers;
    return io;
  }
  // The keys and numbers write() read last, as read (a getter is not asked twice).
  let lastKeys = null;
  let lastNumbers = null;

  // The states (and starts) the core wrote back into the records.
  function states(io, count, starts) {
    const u32 = core.HEAPU32;
    const f64 = core.HEAPF64;
    const out = new Array(count);
    let at = io;
    for (let i = 0; i < count; i++) {
      const d = at >> 3;
      out[i] = { current: f64[d + CURRENT], previous: f64[d + PREVIOUS] };
      if (starts) starts[i] = f64[d + START];
      at += RECORD + ((u32[(at >> 2) + KEY_LENGTH] + 7) & ~7);
    }
    return out;
  }

  const malformed = () => fail('the memory store\'s table refused its records (a bug)');
  return {
    core,
    create() {
      use();
      return table(0, 0, 0, 0);
    },
    destroy(address) {
      table(1, address, 0, 0);
    },
    reserve(address, requests, now) {
      if (typeof now !== 'number') throw fail(`the reservation's time is not a number (got ${typeof now})`);
      const io = write(address, requests, RESERVE);
      const answer = table(3, address, requests.length, now);
      if (answer === 2) throw malformed();
      const count = requests.length;
      const starts = new Array(count);
      const read = states(io, count, starts);
      // The charges, from the keys and costs the table was given.
      const charges = [];
      if (answer === 1) for (let i = 0; i < count; i++) charges.push({ key: lastKeys[i], start: starts[i], cost: lastNumbers[i * 4] });
      return { admitted: answer === 1, states: read, charges };
    },
    rollback(address, charges) {
      const io = write(address, charges, ROLLBACK);
      if (table(4, address, charges.length, 0) === 2) throw malformed();
      return io;
    },
    // A reservation never admitted (max NaN), at a time before any sweep
    // could run (-Infinity): the states read, nothing charged or swept.
    peek(address, requests) {
      const io = write(address, requests, PEEK);
      if (table(3, address, requests.length, -Infinity) !== 0) throw malformed();
      return states(io, requests.length, null);
    },
    size(address) {
      use();
      return table(6, address, 0, 0);
    },
  };
}

/** The checked layout and codec of a loaded core (the glue's Module). */
export function coreCodec(core) {
  let text;
  try {
    text = core.boundaryLayout();
  } catch (error) {
    throw mismatch(`it does not describe its layout (${error?.message ?? error})`);
  }
  const layout = checkLayout(text);
  return { layout, ...createCodec(layout, core._toolgate_output()) };
}
