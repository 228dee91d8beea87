// toolgate serve's hashes (worker/node.js NODE_SHA256) are the plain ones,
// made cheaper: a bearer token's SHA-256 as a latin1 string that
// Grants.find compares as bytes, and HMAC-SHA-256 with a KeyObject made once
// per key. Seeded property tests against node:crypto's plain calls and
// WebCrypto (the default everywhere else).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';

import { NODE_SHA256 } from '../../worker/node.js';
import { Grants } from '../../worker/grants.js';
import { grantsDocument } from './proxy-helpers.js';
import { random } from './seeded-random.js';

const SEED = Number(process.env.NODE_HASHES_SEED ?? 20261207);

function randomText(next, max) {
  const pieces = ['a', 'Z', '0', '-', '_', '.', 'é', '☃', '💥', '\u0000', '\ud800', ' ', '\u00ff', '\u0100'];
  let text = '';
  const length = Math.floor(next() * max);
  for (let i = 0; i < length; i++) text += pieces[Math.floor(next() * pieces.length)];
  return text;
}

test('property: a token finds the grant its SHA-256 names, through the latin1 digest as through WebCrypto, and no other', async () => {
  const next = random(SEED);
  for (let round = 0; round < 40; round++) {
    const tokens = {};
    for (let g = 0; g < 1 + Math.floor(next() * 5); g++) tokens[`grant-${g}`] = `${randomText(next, 40)}#${round}.${g}`;
    const grants = new Grants(grantsDocument(tokens));
    for (const [id, token] of Object.entries(tokens)) {
      const digest = NODE_SHA256.bytes(token);
      assert.equal(typeof digest, 'string');
      assert.ok(Buffer.from(digest, 'latin1').equals(createHash('sha256').update(token, 'utf8').digest()), token);
      const found = grants.find(token, NODE_SHA256.bytes);
      assert.ok(!(found instanceof Promise), 'answered at once');
      assert.equal(found?.id, id, token);
      assert.deepEqual(found, await grants.find(token), 'the same grant as through WebCrypto');
    }
    // Tokens that are not a grant's: a character changed, cut, extended, another.
    for (const token of Object.values(tokens)) {
      for (const other of [token.slice(0, -1), `${token}x`, token.replace(/.$/u, '!'), randomText(next, 20)]) {
        if (Object.values(tokens).includes(other)) continue;
        assert.equal(grants.find(other, NODE_SHA256.bytes), null, JSON.stringify(other));
        assert.equal(await grants.find(other), null, JSON.stringify(other));
      }
    }
  }
});

test('a digest of the wrong length or one byte off matches no grant', () => {
  const grants = new Grants(grantsDocument({ alice: 'alice-token' }));
  const right = NODE_SHA256.bytes('alice-token');
  assert.equal(grants.find('x', () => right)?.id, 'alice');
  for (const wrong of [right.slice(0, 31), `${right}\u0000`, `${right.slice(0, 31)}${String.fromCharCode(right.charCodeAt(31) ^ 1)}`, '',
    `${right.slice(0, 31)}${String.fromCharCode(right.charCodeAt(31) + 256)}`]) {
    assert.equal(grants.find('x', () => wrong), null, JSON.stringify(wrong));
  }
  assert.equal(grants.find('', NODE_SHA256.bytes), null);
  assert.equal(grants.find(null, NODE_SHA256.bytes), null);
});

test('property: NODE_SHA256.hmac is HMAC-SHA-256 of the key text, base64url, for any key and any number of keys', () => {
  const next = random(SEED + 1);
  const keys = Array.from({ length: 40 }, (_, i) => `${randomText(next, i % 3 === 0 ? 100 : 20)}${i}`); // more than the memo keeps; some over a block
  keys.push('', 'x'.repeat(64), 'x'.repeat(65));
  for (let i = 0; i < 600; i++) {
    const key = keys[Math.floor(next() * keys.length)];
    const text = randomText(next, 60);
    assert.equal(NODE_SHA256.hmac(key, text), createHmac('sha256', key).update(text, 'utf8').digest('base64url'), `${JSON.stringify(key)} ${JSON.stringify(text)}`);
  }
});
