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
