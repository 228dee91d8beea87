// The two ways a call crosses into the engine must read the same value: the
// binary form written straight into WebAssembly memory (the default) and JSON
// text (`boundary: 'json'`). Random calls, many of them full of what
// JSON.stringify transforms, go through both; decisions, pending evaluations
// and approval ids (a SHA-256 of the call's canonical form, so any difference
// in a number's type or a string's bytes shows) must be identical.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadToolgate, MemoryApprovalStore, MemoryCounterStore } from '../../wasm/index.js';
import { encodeCall } from '../../wasm/call-encoder.js';
import { random } from './seeded-random.js';

const T0 = Date.UTC(2026, 0, 1);

const policy = {
  version: '1',
  default: 'allow',
  tools: {
    refund: {
      args: { type: 'object', properties: { amount: { type: 'number', minimum: 0 } } },
      require: [{ path: 'args.currency', op: 'in', value: ['usd', 'eur', 'é', '😀'] }],
      deny_if: [{ conditions: [{ path: 'args.amount', op: 'gt', value: 500 }] }],
      limits: [
        { counter: 'spend', window: 'hour', max: 1e12, cost_from: 'args.amount' },
        { counter: 'per_key', window: 'minute', max: 1e9, key: 'args.currency', algorithm: 'sliding' },
      ],
    },
    approve: { action: 'require_approval' },
    match: { deny_if: [{ conditions: [{ path: 'args.name', op: 'regex', value: '^a.*z$' }] }] },
    denied: { action: 'deny' },
  },
};

// Default allow, all_tools, globs and hidden tools: which arguments the engine
// decodes depends on all of them (it skips what no rule reads).
const openPolicy = {
  version: '1',
  default: 'allow',
  hide: ['secret_*'],
  all_tools: { deny_if: [{ conditions: [{ path: 'args.nested.x', op: 'eq', value: true }] }] },
  tools: {
    'ref*': { require: [{ path: 'args.amount', op: 'lte', value: 1e6 }], limits: [{ window: 'day', max: 1e9, key: 'args.name' }] },
    denied: { action: 'deny' },
    approve: { action: 'require_approval' },
  },
};


// Mostly values JSON.stringify writes unchanged (the binary path), some that
// it transforms (the text path).
const PLAIN_NUMBERS = [0, -0, 1, -1, 120, 500, 501, 0.1, 1.5e-7, -2.5, 1e21, 1e300, 2 ** 53 - 1, -(2 ** 53 - 1), Number.MIN_VALUE, 5e-324, 1767225600000];
const ODD_NUMBERS = [2 ** 53, 2 ** 60, -(2 ** 63), 9007199254740993, 123456789012345680000, NaN, Infinity, -Infinity];
const PLAIN_STRINGS = ['', 'usd', 'eur', 'é', '😀', 'a\u0000z', 'abcz', 'line\nbreak', '"quoted"', '\\', 'ü'.normalize('NFD'),
  '\u2028', 'x'.repeat(300), '日本語', '__proto__', 'toJSON'];
const ODD_STRINGS = ['a\uD800z', '\uDC00'];
const KEYS = ['amount', 'currency', 'name', 'tags', 'nested', '__proto__', '', 'é', '😀', '0', '10', '1', 'x', 'y', 'z', 'a\uD800'];

const pickFrom = (next, plain, odd) => {
  const list = next() < 0.93 ? plain : odd;
  return list[Math.floor(next() * list.length)];
};

function value(next, depth) {
  const pick = (list) => list[Math.floor(next() * list.length)];
  const r = next();
  if (depth > 4 || r < 0.3) {
    const s = next();
    if (s < 0.35) return pickFrom(next, PLAIN_NUMBERS, ODD_NUMBERS);
    if (s < 0.7) return pickFrom(next, PLAIN_STRINGS, ODD_STRINGS);
    if (s < 0.8) return next() < 0.5;
    if (s < 0.95) return null;
    if (s < 0.96) return undefined;
    if (s < 0.97) return new Date(T0);
    if (s < 0.98) return () => 1;
    if (s < 0.99) return Symbol('s');
    return 10n;
  }
  if (r < 0.55) {
    const array = [];
    const length = Math.floor(next() * 4);
    for (let i = 0; i < length; i++) array.push(value(next, depth + 1));
    if (next() < 0.02) array.length += 1; // a hole
    return array;
  }
  const object = next() < 0.05 ? Object.create(null) : {};
  const count = Math.floor(next() * 4);
  for (let i = 0; i < count; i++) object[pick(KEYS)] = value(next, depth + 1);
  if (next() < 0.1) object.x = next() < 0.5;
  if (next() < 0.01) object.toJSON = () => ({ replaced: true });
  if (next() < 0.03) Object.defineProperty(object, 'hidden', { value: 1, enumerable: false });
  if (next() < 0.01) Object.defineProperty(object, 'boom', { get() { throw new Error('getter'); }, enumerable: true });
  return object;
}

function call(next) {
  const pick = (list) => list[Math.floor(next() * list.length)];
  const c = {
    tool: next() < 0.9 ? pick(['refund', 'approve', 'match', 'denied', 'other', 'Refund', '', 'secret_a', 'ref']) : value(next, 3),
    arguments: next() < 0.9
      ? { amount: pickFrom(next, PLAIN_NUMBERS, ODD_NUMBERS), currency: pickFrom(next, PLAIN_STRINGS, ODD_STRINGS), name: pickFrom(next, PLAIN_STRINGS, ODD_STRINGS) }
      : value(next, 2),
  };
  if (next() < 0.9 && c.arguments && typeof c.arguments === 'object') {
    try {
      Object.assign(c.arguments, value(next, 2));
    } catch {
      // a throwing getter: keep the call as it is
    }
  }
  const g = next();
  if (g < 0.4) c.grant = pick(['alice', 'bob', '', 'é']);
  else if (g < 0.8) c.grant = { id: pick(['alice', 'bob', '']), role: pickFrom(next, PLAIN_STRINGS, ODD_STRINGS), level: pickFrom(next, PLAIN_NUMBERS, ODD_NUMBERS) };
  else if (g < 0.85) c.grant = value(next, 3);
  if (next() < 0.5) c.now = next() < 0.8 ? T0 + Math.floor(next() * 1e7) : pick([...PLAIN_NUMBERS, ...PLAIN_STRINGS, '2026-01-01T00:00:00Z']);
  if (next() < 0.03) c.extra = 1;
  if (next() < 0.02) return value(next, 0);
  return c;
}

// A structured-clone-free comparison that tells -0 from 0 and NaN from null.
const same = (a, b) => assert.deepStrictEqual(a, b);

test('binary and JSON-text boundaries decide every call identically', async () => {
  const binary = await loadToolgate();
  const json = await loadToolgate({ boundary: 'json' });
  assert.equal(binary.binaryCalls, true);
  assert.equal(json.binaryCalls, false);
  let encoded = 0;
  const cases = Number(process.env.BOUNDARY_CASES ?? 4000);
  for (const [which, document] of [['policy', policy], ['openPolicy', openPolicy]]) {
    const policies = [binary.compile(document), json.compile(document)];
    const stores = policies.map(() => ({ counters: new MemoryCounterStore(), approvals: new MemoryApprovalStore() }));
    for (let seed = 1; seed <= cases / 2; seed++) {
      const next = random(seed);
      const c = call(next);
      if (encodeCall(c) >= 0) encoded += 1;
      const now = T0 + seed * 1000;
      const [a, b] = policies.map((p) => {
        try {
          return p.evaluate(c, { now });
        } catch (error) {
          return { threw: String(error) };
        }
      });
      same(a, b, `evaluate, ${which}, seed ${seed}`);
      const [d, e] = await Promise.all(policies.map(async (p, i) => {
        try {
          return await p.decide(c, { ...stores[i], now });
        } catch (error) {
          return { threw: String(error) };
        }
      }));
      try {
        same(d, e);
      } catch (error) {
        error.message = `decide differs for ${which}, seed ${seed}: ${error.message}`;
        throw error;
      }
    }
  }
  // Most calls must take the binary path, or this test compares text with text.
  assert.ok(encoded > cases * 0.35, `only ${encoded} of ${cases} calls were encoded`);
});

// The engine reads binary calls in place through an index it keeps between
// calls, and lets it go after a call far larger than usual: calls of every
// size, in any order, decide as the text path does (wide and deep read
// arguments under a schema, which reads them all, and an approval, which
// hashes them all).
test('calls far larger than usual, between small ones, decide as the text path does', async () => {
  const binary = await loadToolgate();
  const json = await loadToolgate({ boundary: 'json' });
  const document = {
    version: '1',
    default: 'deny',
    tools: {
      wide: { args: { type: 'object', additionalProperties: { type: 'integer', maximum: 1e9 } } },
      approve: { action: 'require_approval' },
      typical: { require: [{ path: 'args.currency', op: 'in', value: ['usd'] }] },
    },
  };
  const policies = [binary.compile(document), json.compile(document)];
  const wide = (count, bad) => {
    const args = {};
    for (let i = 0; i < count; i++) args[`k${(i * 7919) % count}`] = i === bad ? 'x' : i;
    return args;
  };
  const calls = [
    { tool: 'typical', arguments: { currency: 'usd' } },
    { tool: 'wide', arguments: wide(60000, -1) },
    { tool: 'typical', arguments: { currency: 'eur' } },
    { tool: 'wide', arguments: wide(60000, 59999) },
    { tool: 'approve', arguments: { list: Array.from({ length: 30000 }, (_, i) => [i, `v${i}`]) } },
    { tool: 'typical', arguments: { currency: 'usd' } },
    { tool: 'wide', arguments: wide(20, 3) },
  ];
  for (const [i, c] of calls.entries()) {
    assert.ok(encodeCall(c) >= 0, `call ${i} takes the binary path`);
    const [a, b] = policies.map((p) => p.evaluate(c, { now: T0 }));
    same(a, b, `call ${i}`);
  }
  for (const p of policies) p.dispose();
});

test('what JSON.stringify would transform goes as text', () => {
  const plain = { tool: 'run', arguments: { n: 1, s: 'x', a: [1, null, true], o: {} } };
  assert.ok(encodeCall(plain) > 0);
  for (const odd of [
    { tool: 'run', arguments: { n: NaN } },
    { tool: 'run', arguments: { n: 2 ** 60 } },
    { tool: 'run', arguments: { n: undefined } },
    { tool: 'run', arguments: { d: new Date(0) } },
    { tool: 'run', arguments: { a: [undefined] } },
    { tool: 'run', arguments: { a: new Array(2) } },
    { tool: 'run', arguments: { s: 'a\uD800' } },
    { tool: 'run', arguments: { toJSON: () => 1 } },
    { tool: 'run', arguments: new Map() },
    { tool: 'run', arguments: { n: 1n } },
    { tool: 'run', get arguments() { throw new Error('no'); } },
  ]) {
    assert.equal(encodeCall(odd), -1);
  }
  let deep = {};
  const root = { tool: 'run', arguments: deep };
  for (let i = 0; i < 100; i++) deep = deep.next = {};
  assert.equal(encodeCall(root), -1, 'deep calls go as text, whose reader reports the depth limit');
});
