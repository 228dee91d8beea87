// The call encoder (wasm/call-encoder.js): its in-place path (encodeCallInto,
// straight into WebAssembly memory, ASCII by hand, the rest through
// TextEncoder.encodeInto) writes exactly the bytes of a plain reference
// encoder and of its scratch path (encodeCall), refuses what they refuse, and
// reports OVERFLOW only when the call does not fit; and a call whose getters
// use the engine while it is being encoded is never sent with bytes that are
// not its own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { OVERFLOW, encodeCall, encodeCallInto, encodedBytes } from '../../wasm/call-encoder.js';
import { EngineError, loadToolgate, MemoryCounterStore } from '../../wasm/index.js';
import { random } from './seeded-random.js';

const T0 = Date.UTC(2026, 0, 1);

// The binary form of core/call_buffer.h written the plain way: one array of
// bytes, TextEncoder for every string. null when JSON.stringify would write
// something else (the encoder's -1).
const utf8 = new TextEncoder();
function reference(value) {
  const out = [];
  const u32 = (n) => out.push(n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255);
  const f64 = (n) => out.push(...new Uint8Array(new Float64Array([n]).buffer));
  const string = (text) => {
    if (!text.isWellFormed()) return false;
    const bytes = utf8.encode(text);
    u32(bytes.length);
    out.push(...bytes);
    return true;
  };
  const skipped = (v) => v === undefined || typeof v === 'function' || typeof v === 'symbol';
  const write = (v, depth) => {
    switch (typeof v) {
      case 'string': out.push(5); return string(v);
      case 'boolean': out.push(v ? 2 : 1); return true;
      case 'number':
        if (Number.isInteger(v)) {
          if (Math.abs(v) > Number.MAX_SAFE_INTEGER) return false;
          out.push(3);
          f64(v === 0 ? 0 : v);
          return true;
        }
        if (!Number.isFinite(v)) return false;
        out.push(4);
        f64(v);
        return true;
      case 'object': {
        if (v === null) {
          out.push(0);
          return true;
        }
        if (depth >= 64 || typeof v.toJSON === 'function') return false;
        if (Array.isArray(v)) {
          if (Object.getPrototypeOf(v) !== Array.prototype) return false;
          out.push(6);
          u32(v.length);
          for (let i = 0; i < v.length; i++) if (skipped(v[i]) || !write(v[i], depth + 1)) return false;
          return true;
        }
        const prototype = Object.getPrototypeOf(v);
        if (prototype !== Object.prototype && prototype !== null) return false;
        const keys = Object.keys(v);
        out.push(7);
        u32(keys.length);
        for (const key of keys) if (skipped(v[key]) || !string(key) || !write(v[key], depth + 1)) return false;
        return true;
      }
      default: return false;
    }
  };
  try {
    return write(value, 0) ? Uint8Array.from(out) : null;
  } catch {
    return null;
  }
}

const STRINGS = ['', 'usd', 'create_refund', 'é', 'naïve café', '😀', '日本語', 'a\u0000z', '\u007f\u0080', '\u07ff\u0800',
  '\uffff', '\ud83d\ude00x', 'a\ud800z', '\udc00', 'x\ud83d', '__proto__', 'toJSON', 'constructor'];
function randomString(next) {
  const r = next();
  if (r < 0.5) return STRINGS[Math.floor(next() * STRINGS.length)];
  // Lengths on both sides of the encoder's long-string cut (256 units) and
  // of the hand loop's exit: ASCII runs with a non-ASCII unit anywhere.
  const length = r < 0.8 ? Math.floor(next() * 20) : 240 + Math.floor(next() * 40);
  let text = '';
  for (let i = 0; i < length; i++) {
    const c = next();
    if (c < 0.85) text += String.fromCharCode(32 + Math.floor(next() * 95));
    else if (c < 0.9) text += String.fromCharCode(0x80 + Math.floor(next() * 0x780));
    else if (c < 0.95) text += String.fromCharCode(0x800 + Math.floor(next() * 0xd000));
    else if (c < 0.98) text += '😀';
    else text += String.fromCharCode(0xd800 + Math.floor(next() * 0x800)); // a lone surrogate, mostly
  }
  return text;
}
const NUMBERS = [0, -0, 1, -1, 120, 0.5, -2.5, 1e21, 1e300, 5e-324, 2 ** 53 - 1, -(2 ** 53 - 1), 2 ** 53, 2 ** 60, NaN, Infinity, -Infinity, T0];
function randomValue(next, depth) {
  const r = next();
  if (depth > 5 || r < 0.45) {
    const s = next();
    if (s < 0.3) return NUMBERS[Math.floor(next() * NUMBERS.length)];
    if (s < 0.35) return (next() - 0.5) * 10 ** Math.floor(next() * 30);
    if (s < 0.75) return randomString(next);
    if (s < 0.85) return next() < 0.5;
    if (s < 0.95) return null;
    return [undefined, () => 1, Symbol('s'), 10n, new Date(T0)][Math.floor(next() * 5)];
  }
  if (r < 0.65) {
    const array = Array.from({ length: Math.floor(next() * 5) }, () => randomValue(next, depth + 1));
    if (next() < 0.02) array.length += 1; // a hole
    return array;
  }
  const object = next() < 0.05 ? Object.create(null) : {};
  const count = Math.floor(next() * 5);
  for (let i = 0; i < count; i++) object[randomString(next)] = randomValue(next, depth + 1);
  if (next() < 0.01) object.toJSON = () => 1;
  if (next() < 0.01) Object.defineProperty(object, 'boom', { get() { throw new Error('getter'); }, enumerable: true });
  return object;
}

test('the in-place path writes the reference bytes, as the scratch path does (seeded property test)', () => {
  const seed = Number(process.env.ENCODER_SEED ?? 20261207);
  const next = random(seed);
  // A stand-in for WebAssembly memory: the area at a random offset, guard
  // bytes around it that must stay untouched.
  const memory = new Uint8Array(1 << 16);
  let encoded = 0;
  let overflowed = 0;
  for (let i = 0; i < 4000; i++) {
    const value = next() < 0.7 ? { tool: randomString(next), arguments: randomValue(next, 1), grant: randomValue(next, 1) } : randomValue(next, 0);
    const expected = reference(value);
    const scratch = encodeCall(value);
    const what = `case ${i} (ENCODER_SEED=${seed})`;
    if (expected === null) {
      assert.equal(scratch, -1, `${what}: scratch path refuses`);
    } else {
      assert.deepEqual(encodedBytes(scratch), expected, `${what}: scratch path bytes`);
    }
    const start = Math.floor(next() * 1024);
    const capacity = next() < 0.2 ? Math.floor(next() * 64) : memory.length - start - 1024;
    memory.fill(0xa5);
    const length = encodeCallInto(value, memory, start, capacity);
    const end = start + capacity;
    assert.ok(memory.subarray(0, start).every((b) => b === 0xa5) && memory.subarray(end).every((b) => b === 0xa5), `${what}: nothing written outside the area`);
    if (length === OVERFLOW) {
      overflowed += 1;
      assert.ok(expected === null || expected.length > capacity, `${what}: OVERFLOW only when the call does not fit`);
    } else if (expected === null) {
      assert.equal(length, -1, `${what}: in-place path refuses`);
    } else {
      encoded += 1;
      assert.ok(expected.length <= capacity, `${what}: fits`);
      assert.deepEqual(memory.subarray(start, start + length), expected, `${what}: in-place bytes`);
    }
  }
  assert.ok(encoded > 500 && overflowed > 50, `both outcomes exercised (${encoded} encoded, ${overflowed} overflowed)`);
});

test('a call larger than the input area still goes binary, and the area grows for the next', async () => {
  const toolgate = await loadToolgate();
  const text = await loadToolgate({ boundary: 'json' });
  const document = { version: '1', default: 'deny', tools: { run: { require: [{ path: 'args.doc', op: 'contains', value: 'needle' }] } } };
  const policies = [toolgate.compile(document), text.compile(document)];
  const calls = [
    { tool: 'run', arguments: { doc: 'needle' } },
    { tool: 'run', arguments: { doc: `${'é'.repeat(50000)}needle` } },
    { tool: 'run', arguments: { doc: `${'x'.repeat(300000)}` } },
    { tool: 'run', arguments: { doc: `needle ${'日'.repeat(100000)}` } },
    { tool: 'run', arguments: { doc: 'nothing' } },
  ];
  for (const [i, call] of calls.entries()) {
    const [a, b] = policies.map((p) => p.evaluate(call, { now: T0 }));
    assert.deepEqual(a, b, `call ${i}`);
  }
  for (const p of policies) p.dispose();
});

test('a getter that uses the engine while its call is encoded never sends another call\'s bytes', async () => {
  const toolgate = await loadToolgate();
  const other = await loadToolgate({ wasmBinary: undefined, warm: true });
  const document = {
    version: '1',
    default: 'deny',
    tools: {
      refund: { require: [{ path: 'args.currency', op: 'in', value: ['usd'] }], limits: [{ window: 'minute', max: 1000 }] },
      other: {},
    },
  };
  const policy = toolgate.compile(document);
  const elsewhere = other.compile(document);
  const counters = new MemoryCounterStore();
  const inner = [];
  // Each getter does something else with an engine in the middle of the
  // outer call's arguments: decides another call (same policy, binary and
  // text; the other engine), compiles a large policy (memory may grow).
  const meddlers = [
    () => policy.evaluate({ tool: 'other', arguments: { a: 'x'.repeat(5000) } }, { now: T0 }),
    () => policy.decide({ tool: 'refund', arguments: { currency: 'usd' }, grant: 'mallory' }, { counters, now: T0 }),
    () => policy.evaluate(JSON.stringify({ tool: 'other', arguments: {} }), { now: T0 }),
    () => elsewhere.evaluate({ tool: 'refund', arguments: { currency: 'eur' } }, { now: T0 }),
    () => {
      const tools = {};
      for (let i = 0; i < 20000; i++) tools[`t${i}`] = { rate_limit: '10/minute', deny_if: [{ conditions: [{ path: 'args.n', op: 'gt', value: i }] }] };
      toolgate.compile({ version: '1', default: 'deny', tools }).dispose();
    },
  ];
  for (const [i, meddle] of meddlers.entries()) {
    for (const currency of ['usd', 'eur']) {
      const call = {
        tool: 'refund',
        arguments: {
          before: 'y'.repeat(100),
          get currency() {
            inner.push(meddle());
            return currency;
          },
          after: 'z'.repeat(100),
        },
        grant: 'alice',
      };
      const expected = policy.evaluate({ tool: 'refund', arguments: { before: 'y'.repeat(100), currency, after: 'z'.repeat(100) }, grant: 'alice' }, { now: T0 });
      const evaluated = policy.evaluate(call, { now: T0 });
      assert.deepEqual({ ...evaluated, ticket: undefined }, { ...expected, ticket: undefined }, `meddler ${i}, ${currency}: evaluate`);
      const decided = await policy.decide(call, { counters, now: T0 });
      assert.equal(decided.code, currency === 'usd' ? 'allowed' : 'requirement_failed', `meddler ${i}, ${currency}: decide (${decided.message})`);
    }
  }
  await Promise.all(inner);
  policy.dispose();
  elsewhere.dispose();
});

test('a getter that moves the input area stops the encoding: nothing of its call is written at the old address', async () => {
  // The engine frees its input area when it grows it (a larger call, a
  // decision with many counters, callCore). A getter of the call being
  // encoded can make it grow; the encoder must not go on writing the rest of
  // the call at the old address, which is then free memory of the engine's
  // heap (malloc's own bookkeeping may live there). Memory is grown first so
  // that growing the area moves it without replacing the heap (a replaced
  // heap would detach the old view, which writes nothing).
  // What grows the area synchronously inside a getter: code given the core
  // (callCore) asking for more. (A decision with many counters grows it too,
  // but a decision made in a getter goes as JSON text and finishes after the
  // getter has returned.)
  const growers = ['callCore'];
  const marker = 'MARKER-'.repeat(40);
  const markerBytes = new TextEncoder().encode(marker);
  const wasmBinary = await readFile(new URL('../../wasm/dist/toolgate_core.wasm', import.meta.url));
  for (const name of growers) {
    for (let round = 0; round < 3; round++) {
      const engine = await loadToolgate({ wasmBinary }); // an instance of its own: its area is small
      const fresh = engine.compile({ version: '1', default: 'deny', tools: { run: {} } });
      engine.compile({ version: '1', default: 'deny', tools: Object.fromEntries(Array.from({ length: 3000 }, (_, i) => [`t${i}`, {}])) }).dispose();
      let c;
      engine.callCore((x) => { c = x; });
      await fresh.decide({ tool: 'run', arguments: {} }, { now: T0 }); // the area, at its first size
      const oldArea = engine.callCore((x) => x._toolgate_input(0));
      const grows = () => engine.callCore((x) => x._toolgate_input((1 << 20) << round));
      let moved;
      let heapAfter;
      let found;
      const heapBefore = c.HEAPU8;
      const call = {
        tool: 'run',
        arguments: {
          get first() {
            // The first read only (encoding into the area); the JSON text the
            // call then goes as reads it again.
            if (moved === undefined) {
              grows();
              moved = engine.callCore((x) => x._toolgate_input(0)) !== oldArea;
              heapAfter = c.HEAPU8;
            }
            return 'a';
          },
          second: marker,
          get third() {
            // Read while the call is still being encoded (before it goes as
            // JSON text, whose copy may land in the freed area legitimately).
            if (found === undefined && heapAfter === heapBefore) {
              found = Buffer.from(heapAfter.buffer, heapAfter.byteOffset + oldArea, 4096).indexOf(Buffer.from(markerBytes));
            }
            return 'b';
          },
        },
      };
      const decided = await fresh.decide(call, { now: T0 });
      assert.equal(decided.code, 'allowed', `${name}: the call itself is decided (${decided.message})`);
      assert.ok(moved, `${name}: the getter moved the input area`);
      if (heapAfter !== heapBefore) continue; // the heap was replaced: the old view writes nothing
      assert.equal(found, -1, `${name}, round ${round}: the rest of the call was written into the freed area`);
      fresh.dispose();
    }
  }
});

test('after an engine restart calls are written into the new instance\'s input area, large and small', async () => {
  const own = await loadToolgate({ wasmBinary: await readFile(new URL('../../wasm/dist/toolgate_core.wasm', import.meta.url)) });
  const text = await loadToolgate({ boundary: 'json' });
  const document = { version: '1', default: 'deny', tools: { run: { require: [{ path: 'args.doc', op: 'starts_with', value: 'ok' }] } } };
  const policies = [own.compile(document), text.compile(document)];
  const same = (call, what) => {
    const [a, b] = policies.map((p) => p.evaluate(call, { now: T0 }));
    assert.deepEqual(a, b, what);
    return a;
  };
  assert.equal(same({ tool: 'run', arguments: { doc: `ok${'x'.repeat(200000)}` } }, 'large, before').code, 'allowed');
  // A trap: the hot path handed an address outside memory.
  assert.throws(() => own.callCore((core) => core._toolgate_finish(0xfffffff0, 1, 1, 0)), EngineError);
  await own.ready();
  assert.equal(own.generation, 1, 'the engine was restarted');
  assert.equal(same({ tool: 'run', arguments: { doc: 'ok' } }, 'small, after').code, 'allowed');
  assert.equal(same({ tool: 'run', arguments: { doc: 'no' } }, 'small, refused, after').code, 'requirement_failed');
  assert.equal(same({ tool: 'run', arguments: { doc: `ok${'é'.repeat(100000)}` } }, 'large, after').code, 'allowed');
  for (const p of policies) p.dispose();
});

// The input area's address is cached by the codec (wasm/boundary-layout.js
// input()): asked again only for a larger request. Every way the area can
// move (a call larger than it; the store's counts of a call with hundreds
// of counters; callCore() code growing it directly, also with decisions in
// between inside callCore) is followed by calls whose answers must be the
// JSON-text boundary's, byte for byte.
test('the input area moves (larger calls, many counters, callCore) and every next call is written where the core reads', async () => {
  const toolgate = await loadToolgate({ wasmBinary: await readFile(new URL('../../wasm/dist/toolgate_core.wasm', import.meta.url)) });
  const text = await loadToolgate({ boundary: 'json' });
  const limits = [];
  for (let i = 0; i < 400; i++) limits.push({ counter: `c${i}`, window: 'minute', max: 1000 });
  const document = {
    version: '1',
    default: 'deny',
    tools: {
      run: { require: [{ path: 'args.doc', op: 'starts_with', value: 'ok' }] },
      many: { limits },
    },
  };
  const policies = [toolgate.compile(document), text.compile(document)];
  const stores = [new MemoryCounterStore(), new MemoryCounterStore()];
  const next = random(77);
  const same = async (call, what) => {
    const [a, b] = await Promise.all(policies.map((p, i) => p.decide(call, { counters: stores[i], now: T0 })));
    assert.deepEqual(a, b, what);
    return a;
  };
  let core;
  toolgate.callCore((c) => { core = c; });
  for (let i = 0; i < 60; i++) {
    const r = next();
    if (r < 0.25) {
      assert.equal((await same({ tool: 'many', arguments: {}, grant: `g${i}` }, `${i}: 400 counters`)).code, 'allowed');
    } else if (r < 0.45) {
      await same({ tool: 'run', arguments: { doc: `${next() < 0.5 ? 'ok' : 'no'}${'x'.repeat(Math.floor(next() * 20000))}` } }, `${i}: a large call`);
    } else if (r < 0.6) {
      // Code given the core grows the area itself, deciding in between.
      const bytes = 4096 + Math.floor(next() * 1_000_000);
      const answers = toolgate.callCore((c) => {
        const before = c._toolgate_input(bytes);
        c.HEAPU8.fill(0xEE, before, before + bytes); // garbage where the next call would go if misplaced
        return [policies[0].evaluate({ tool: 'run', arguments: { doc: 'ok' } }, { now: T0 }), policies[0].evaluate({ tool: 'run', arguments: { doc: 'no' } }, { now: T0 })];
      });
      assert.deepEqual(answers.map((a) => a.code), ['allowed', 'requirement_failed'], `${i}: inside callCore`);
    } else {
      const doc = next() < 0.5 ? 'ok' : 'nope';
      assert.equal((await same({ tool: 'run', arguments: { doc } }, `${i}: small`)).code, doc === 'ok' ? 'allowed' : 'requirement_failed');
    }
  }
  assert.ok(core);
  for (const p of policies) p.dispose();
});
