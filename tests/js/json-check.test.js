// worker/json-check.js finds duplicate keys and runaway nesting in JSON text
// that JSON.parse accepted. It skips string contents with indexOf (a
// multi-megabyte argument is most of a large body); this property test holds
// it to the plain character-by-character scan it replaced, on generated JSON
// full of escapes, quotes and backslashes, and on every prefix-free mutation.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { findJsonProblem } from '../../worker/json-check.js';
import { findJsonProblem as reference } from './fixtures/json-check-reference.js';
import { random } from './seeded-random.js';


const PIECES = ['a', 'b', '"', '\\', '\\\\', '\\"', 'é', '💥', '\u2028', '/', '{', '}', '[', ']', ',', ':', 'x'.repeat(300)];

function text(next) {
  let out = '';
  const n = Math.floor(next() * 6);
  for (let i = 0; i < n; i++) out += PIECES[Math.floor(next() * PIECES.length)];
  return out;
}

// JSON text with duplicate keys now and then (JSON.stringify cannot make those).
function value(next, depth) {
  const r = next();
  if (depth > 4 || r < 0.3) return JSON.stringify(r < 0.15 ? text(next) : Math.floor(next() * 100));
  if (r < 0.6) {
    const items = Array.from({ length: Math.floor(next() * 4) }, () => value(next, depth + 1));
    return `[${items.join(',')}]`;
  }
  const keys = Array.from({ length: Math.floor(next() * 4) }, () => text(next));
  if (keys.length > 0 && next() < 0.3) keys.push(keys[0]);
  if (keys.length > 0 && next() < 0.2) keys.push(keys[0].replace(/a/g, '\\u0061'));
  return `{${keys.map((k) => `${JSON.stringify(k).replace(/\\\\u0061/g, '\\u0061')}:${value(next, depth + 1)}`).join(',')}}`;
}

test('the indexOf scan agrees with the character scan on 20 000 generated documents', () => {
  const next = random(12345);
  let duplicates = 0;
  for (let i = 0; i < 20_000; i++) {
    const document = value(next, 0);
    try {
      JSON.parse(document);
    } catch {
      continue; // the proxy only checks what JSON.parse accepted
    }
    const expected = reference(document);
    if (expected) duplicates++;
    assert.deepEqual(findJsonProblem(document), expected, document);
    assert.deepEqual(findJsonProblem(document, { maxDepth: 3 }), reference(document, { maxDepth: 3 }), document);
  }
  assert.ok(duplicates > 1000, `the generator makes duplicate keys (${duplicates})`);
});

test('a megabyte string full of escaped quotes and backslashes is skipped correctly and fast', () => {
  const inner = '\\"\\\\'.repeat(250_000);
  const document = `{"a":"${inner}","b":1,"a":2}`;
  const found = findJsonProblem(document);
  assert.equal(found.problem, 'duplicate_key');
  assert.equal(found.key, 'a');
  assert.deepEqual(findJsonProblem(document), reference(document));
});

// Objects keep their first keys in an array and switch to a Set past 16:
// duplicates are found on both sides of the switch, and across it.
test('duplicate keys are found in objects of 1 to 60 keys, wherever the two copies stand (seeded)', () => {
  const next = random(4242);
  for (let i = 0; i < 3000; i++) {
    const count = 1 + Math.floor(next() * 60);
    const keys = Array.from({ length: count }, (_, k) => `k${k}${next() < 0.1 ? '\\u0061' : ''}`);
    let duplicate = null;
    if (count > 1 && next() < 0.5) {
      const first = Math.floor(next() * count);
      let second = Math.floor(next() * count);
      if (second === first) second = (first + 1) % count;
      keys[Math.max(first, second)] = keys[Math.min(first, second)];
      duplicate = JSON.parse(`"${keys[Math.min(first, second)]}"`);
    }
    const document = `{"outer":{${keys.map((k, n) => `"${k}":${n}`).join(',')}},"outer2":1}`;
    const found = findJsonProblem(document);
    assert.deepEqual(found, reference(document), document);
    if (duplicate === null) assert.equal(found, null, document);
    else assert.equal(found.key, duplicate, document);
  }
});

// The scan keeps its containers and keys as offsets in typed arrays shared by
// every call, and compares a key without escapes where it stands in the text.
// Hostile JSON against the character scan: keys that are the same once
// unescaped ("a", "\u0061", "\/" and "/", escaped and raw lone surrogates),
// keys that are prefixes of others, objects on both sides of the switch to a
// Set, big numbers, nesting around maxDepth, and documents one after the
// other (a scan that stopped at a problem must leave nothing to the next).
const HOSTILE_KEYS = ['a', '\\u0061', 'ab', 'a\\u0062', '/', '\\/', '\\ud800', '\ud800', '\\uD800', '\udc00\ud800', '\\udc00\\ud800',
  '', '\\u0000', '\\"', '\\\\', 'é', '\\u00e9', '💥', '\\ud83d\\udca5', 'k', 'kk', 'k\\u006b'];
const NUMBERS = ['0', '-0', '1e400', '-1e-400', '123456789012345678901234567890', '1.5E+2', '9007199254740993'];

function hostileValue(next, depth) {
  const r = next();
  if (depth > 5 || r < 0.35) return r < 0.1 ? NUMBERS[Math.floor(next() * NUMBERS.length)] : r < 0.2 ? `"${HOSTILE_KEYS[Math.floor(next() * HOSTILE_KEYS.length)]}"` : 'null';
  if (r < 0.5) return `[${Array.from({ length: Math.floor(next() * 4) }, () => hostileValue(next, depth + 1)).join(',')}]`;
  // Mostly a few keys; sometimes 14 to 20 of them, across the switch to a Set.
  const count = depth < 2 && next() < 0.2 ? 14 + Math.floor(next() * 7) : Math.floor(next() * 4);
  const keys = Array.from({ length: count }, (_, k) => (next() < 0.5 ? HOSTILE_KEYS[Math.floor(next() * HOSTILE_KEYS.length)] : `n${k}`));
  const space = next() < 0.2 ? ' \n\t' : '';
  return `{${space}${keys.map((k) => `"${k}"${space}:${space}${hostileValue(next, depth + 1)}`).join(`,${space}`)}${space}}`;
}

test('hostile JSON: the typed-array scan agrees with the character scan on 30 000 documents, one after the other (seeded)', () => {
  const next = random(20261207);
  let problems = 0;
  let checked = 0;
  for (let i = 0; i < 30_000; i++) {
    const document = hostileValue(next, 0);
    try {
      JSON.parse(document);
    } catch {
      continue;
    }
    checked++;
    const expected = reference(document);
    if (expected) problems++;
    assert.deepEqual(findJsonProblem(document), expected, document);
    assert.deepEqual(findJsonProblem(document, { maxDepth: 2 }), reference(document, { maxDepth: 2 }), document);
  }
  assert.ok(checked > 20_000, `most documents are JSON (${checked})`);
  assert.ok(problems > 2_000 && problems < checked - 2_000, `both answers are common (${problems} of ${checked})`);
});

test('keys that are equal only once unescaped are duplicates; keys that differ in one code unit are not', () => {
  const cases = [
    ['{"a":1,"\\u0061":2}', 'a'],
    ['{"\\u0061":1,"a":2}', 'a'],
    ['{"/":1,"\\/":2}', '/'],
    ['{"\\ud800":1,"\ud800":2}', '\ud800'],
    ['{"\\ud800":1,"\\uD800":2}', '\ud800'],
    ['{"\\ud83d\\udca5":1,"💥":2}', '💥'],
    ['{"x":{"y":[{"k":1,"k\\u0000":2,"k":3}]}}', 'k'],
  ];
  for (const [document, key] of cases) {
    const found = findJsonProblem(document);
    assert.equal(found?.key, key, document);
    assert.deepEqual(found, reference(document), document);
  }
  for (const document of ['{"a":1,"ab":2,"b":3}', '{"\\ud800":1,"\\udc00":2}', '{"a":1,"A":2}', '{"ab":1,"ba":2}', '{"a":{"a":{"a":1}},"b":{"a":2}}']) {
    assert.equal(findJsonProblem(document), null, document);
  }
});

test('nesting at, past and far past the limit, in objects and arrays, and a huge flat object', () => {
  for (const depth of [255, 256, 257, 1000, 5000]) {
    for (const open of ['[', '{"k":']) {
      const close = open === '[' ? ']' : '}';
      const document = `${open.repeat(depth)}1${close.repeat(depth)}`;
      assert.deepEqual(findJsonProblem(document), reference(document), `${open} × ${depth}`);
      assert.equal(findJsonProblem(document) === null, depth <= 256);
    }
  }
  const keys = Array.from({ length: 50_000 }, (_, k) => `"key${k}":${k}`);
  assert.equal(findJsonProblem(`{${keys.join(',')}}`), null);
  const document = `{${keys.join(',')},"key\\u0034\\u0032":1}`;
  assert.deepEqual(findJsonProblem(document), { problem: 'duplicate_key', pointer: '/key42', key: 'key42' });
  // After the arrays grew for it (and went back to their first size), small documents read as before.
  for (const small of ['{"a":{"b":1,"c":[{"b":2}],"b":3}}', '[{"x":1},{"x":2,"y":{"x":3}}]']) {
    assert.deepEqual(findJsonProblem(small), reference(small), small);
  }
});
