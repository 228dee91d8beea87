// worker/body-pool.js reads large request bodies on worker threads. These
// tests hold it to the inline path (worker/body-read.js readBodyMessages, what
// Workers and small bodies use): the same messages (key order, __proto__ keys,
// -0, lone surrogates) and the same errors on generated bodies; the audit
// HMACs it computes equal the gate's; its bounds (a queue per grant, round
// robin) and its failures (a thread that dies: the body refused, never a
// hang); and, through the real transport (startProxy over HTTP, an MCP SDK
// server upstream), identical answers and audit events with and without the
// pool. BODY_POOL_SEED replays a failing case.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { BodyPool } from '../../worker/body-pool.js';
import { readBodyMessages } from '../../worker/body-read.js';
import { canonicalJson, knownArgumentHmac, knownCanonicalBytes } from '../../worker/audit.js';
import { NODE_SHA256, startProxy } from '../../worker/node.js';
import { MemoryCounterStore } from '../../wasm/index.js';
import { grantsDocument, memoryAudit, postRaw, tempFile, waitFor } from './proxy-helpers.js';
import { startSdkServer } from './fixtures/sdk-http-server.js';
import { random } from './seeded-random.js';

const SEED = Number(process.env.BODY_POOL_SEED ?? 20261207);
const encoder = new TextEncoder();

// Everything about a value that a reader could tell apart: prototypes, own
// keys in order (a "__proto__" key included), -0, every code unit of strings.
function shape(value) {
  if (typeof value === 'number') return Object.is(value, -0) ? '-0' : `n:${value}`;
  if (typeof value === 'string') return `s:${[...Array(value.length).keys()].map((i) => value.charCodeAt(i).toString(16)).join('.')}`;
  if (value === null || typeof value !== 'object') return `${typeof value}:${value}`;
  const kind = Array.isArray(value) ? 'array' : Object.getPrototypeOf(value) === Object.prototype ? 'object' : 'other';
  return `${kind}{${Reflect.ownKeys(value).map((key) => `${shape(String(key))}=${shape(Object.getOwnPropertyDescriptor(value, key).value)}`).join(',')}}`;
}
const sameRead = (actual, expected, what) => {
  assert.deepEqual(Object.keys(actual).filter((k) => k !== 'messages').sort(), Object.keys(expected).filter((k) => k !== 'messages').sort(), what);
  if (expected.refused) assert.deepEqual(actual.refused, expected.refused, what);
  else {
    assert.equal(actual.batch, expected.batch, what);
    assert.equal(shape(actual.messages), shape(expected.messages), what);
  }
};

// ------------------------------------------------------------ generated bodies

const pick = (next, list) => list[Math.floor(next() * list.length)];
const STRINGS = ['a', 'tools/call', '__proto__', 'constructor', '', 'é', '💥', '\\ud800', '\\udc00x', '\\u0000', '\\"', '\\\\', '\\u0061', '\u2028', 'x'.repeat(40)];
const NUMBERS = ['0', '-0', '1e400', '-1e400', '1e-400', '123456789012345678901234567890', '0.1', '-12.5e3', '9007199254740993', '1E2'];

function jsonString(next) {
  let out = '';
  for (let n = Math.floor(next() * 4); n > 0; n--) out += pick(next, STRINGS);
  return `"${out}"`;
}

// JSON text (as JSON.stringify cannot make it: duplicate keys, escapes,
// huge numbers), sometimes nested deeper than 256.
function value(next, depth) {
  const r = next();
  if (depth > 6 || r < 0.35) return r < 0.12 ? jsonString(next) : r < 0.25 ? pick(next, NUMBERS) : pick(next, ['true', 'false', 'null']);
  if (r < 0.4) return `${'['.repeat(250 + Math.floor(next() * 12))}${']'.repeat(0)}`; // completed by the caller below
  if (r < 0.65) return `[${Array.from({ length: Math.floor(next() * 4) }, () => value(next, depth + 1)).join(', ')}]`;
  const keys = Array.from({ length: Math.floor(next() * 5) }, () => jsonString(next));
  if (keys.length > 0 && next() < 0.25) keys.push(keys[0]); // duplicate, maybe at depth
  if (keys.length > 0 && next() < 0.1) keys.push(keys[0].replace(/a/g, '\\u0061'));
  return `{${keys.map((key) => `${key}:${value(next, depth + 1)}`).join(',')}}`;
}

// Balances the deep runs of "[" value() leaves open.
function balanced(text) {
  let open = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '[' || c === '{') open++;
    else if (c === ']' || c === '}') open--;
  }
  return open;
}

function message(next) {
  const args = value(next, 1);
  const base = `{"jsonrpc":"2.0","id":${Math.floor(next() * 1000)},"method":${next() < 0.8 ? '"tools/call"' : '"tools/list"'},"params":{"name":${jsonString(next)},"arguments":${args}}}`;
  const open = balanced(base);
  return open > 0 ? base.slice(0, -2) + ']'.repeat(open) + '}}' : base;
}

// A body as bytes: one message or a batch, then maybe broken: a BOM (at the
// start or inside), invalid UTF-8 (a lone surrogate's bytes, a cut sequence),
// a cut, whitespace, an empty batch, padding to a large size.
function body(next) {
  let text = next() < 0.3 ? `[${Array.from({ length: 1 + Math.floor(next() * 4) }, () => message(next)).join(',')}]` : message(next);
  if (next() < 0.05) text = '[]';
  if (next() < 0.05) text = ` \n\t${text}\r\n`;
  if (next() < 0.15) text = text.replace('"jsonrpc"', `"pad":"${'p'.repeat(Math.floor(next() * 200_000))}","jsonrpc"`);
  let bytes = encoder.encode(text);
  const r = next();
  const splice = (insert) => {
    const at = Math.floor(next() * (bytes.length + 1));
    bytes = new Uint8Array([...bytes.subarray(0, at), ...insert, ...bytes.subarray(at)]);
  };
  if (r < 0.06) bytes = new Uint8Array([0xef, 0xbb, 0xbf, ...bytes]);
  else if (r < 0.09) splice([0xef, 0xbb, 0xbf]);
  else if (r < 0.13) splice([0xed, 0xa0, 0x80]); // a UTF-16 surrogate encoded as UTF-8: invalid
  else if (r < 0.16) splice([0xc3]); // a cut sequence
  else if (r < 0.18) splice([0xff]);
  else if (r < 0.21) bytes = bytes.subarray(0, Math.floor(next() * bytes.length)).slice();
  return bytes;
}

describe('the pool reads as the inline path does', () => {
  let pool;
  before(() => {
    pool = new BodyPool({ threads: 2, threshold: 0, maxQueuedPerGrant: 10_000 }); // every body to a thread, all at once
  });
  after(() => pool.close());

  test(`1 500 generated bodies: the same messages or the same error (seed ${SEED})`, async () => {
    const next = random(SEED);
    const kinds = new Map();
    const cases = [];
    for (let i = 0; i < 1500; i++) {
      const bytes = body(next);
      const maxBatchSize = next() < 0.2 ? 2 : 100;
      const expected = readBodyMessages(bytes, { maxBatchSize });
      const kind = expected.refused ? expected.refused.error.message.replace(/[:(].*$/s, '') : 'read';
      kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
      cases.push({ i, bytes: bytes.slice(), maxBatchSize, expected });
    }
    // Concurrently, as a loaded proxy would: each answer is its own body's.
    const answers = await Promise.all(cases.map(({ bytes, maxBatchSize }, n) => pool.read(bytes, { maxBatchSize, grant: `g${n % 3}` })));
    cases.forEach(({ i, expected }, n) => sameRead(answers[n], expected, `case ${i} (BODY_POOL_SEED=${SEED})`));
    // The generator reaches every outcome.
    for (const kind of ['read', 'Parse error', 'Invalid Request']) assert.ok((kinds.get(kind) ?? 0) >= 20, `${kind}: ${kinds.get(kind)} (${[...kinds]})`);
    const messages = cases.filter((c) => c.expected.refused).map((c) => c.expected.refused.error.message).join('\n');
    for (const pattern of [/not valid UTF-8/, /appears twice/, /deeper than 256/, /empty batch/, /at most 2 are taken/]) assert.match(messages, pattern);
    assert.equal(pool.stats.offThread, 1500);
    assert.equal(pool.stats.failed, 0);
  });

  test('the audit HMAC and the canonical length computed on the thread are the gate\'s (canonical JSON, HMAC-SHA-256 under the key, UTF-8 bytes)', async () => {
    const next = random(SEED + 1);
    let checked = 0;
    for (let i = 0; i < 600; i++) {
      const bytes = body(next);
      const expected = readBodyMessages(bytes, { maxBatchSize: 100 });
      const read = await pool.read(bytes.slice(), { maxBatchSize: 100, auditKey: 'k' });
      sameRead(read, expected, `case ${i}`);
      if (read.refused) continue;
      for (const m of read.messages) {
        const args = m?.method === 'tools/call' ? m.params?.arguments : undefined;
        if (args === null || typeof args !== 'object') continue;
        let want;
        let bytes;
        try {
          want = NODE_SHA256.hmac('k', canonicalJson(args));
          bytes = new TextEncoder().encode(canonicalJson(args)).byteLength; // the gate's approval size
        } catch {
          want = undefined; // no canonical form: nothing remembered, the gate finds that itself
        }
        assert.equal(knownArgumentHmac(args, 'k'), want, `case ${i}`);
        assert.equal(knownCanonicalBytes(args), bytes, `case ${i}`);
        assert.equal(knownArgumentHmac(args, 'another key'), undefined);
        checked++;
      }
    }
    assert.ok(checked > 80, `${checked} arguments checked`);
  });
});

// A thread that does not answer in time: a 48 MB body takes a thread far
// longer than 1 ms to decode and parse (the timer cannot win the race
// otherwise: it fires only after the event loop's turn that sent the body).
const slow = () => encoder.encode(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'slow', arguments: { a: Array.from({ length: 4_000_000 }, (_, i) => i) } } }));

describe('bounds and failures', () => {
  const big = (tag) => encoder.encode(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: tag, arguments: { blob: 'x'.repeat(200_000) } } }));

  test('small bodies are read inline (no thread), large ones on a thread', async () => {
    const pool = new BodyPool({ threshold: 1000 });
    try {
      const small = pool.read(encoder.encode('{"jsonrpc":"2.0","id":1,"method":"ping"}'));
      assert.ok(!(small instanceof Promise));
      assert.equal(small.messages[0].method, 'ping');
      assert.equal(pool.stats.threads, 0);
      const large = await pool.read(big('t'));
      assert.equal(large.messages[0].params.name, 't');
      assert.deepEqual([pool.stats.inline, pool.stats.offThread, pool.stats.threads], [1, 1, 1]);
    } finally {
      await pool.close();
    }
  });

  test('one grant\'s waiting bodies are bounded (429) and taken in turn with another grant\'s', async () => {
    const pool = new BodyPool({ threads: 1, threshold: 0, maxQueuedPerGrant: 3 });
    try {
      const order = [];
      const send = (grant, n) => pool.read(big(`${grant}${n}`), { grant }).then((read) => {
        order.push(read.refused ? `${grant}${n}:${read.status}` : read.messages[0].params.name);
        return read;
      });
      // A: one being read and 3 waiting; the 5th is refused at once.
      const a = [1, 2, 3, 4].map((n) => send('A', n));
      const refused = pool.read(big('A5'), { grant: 'A' });
      assert.equal(refused.status, 429);
      assert.match(refused.refused.error.message, /Too many large request bodies of this grant are waiting to be read \(at most 3\); nothing was forwarded/);
      // B comes after all of A's, and is read second of those waiting.
      const b = send('B', 1);
      await Promise.all([...a, b]);
      assert.deepEqual(order, ['A1', 'A2', 'B1', 'A3', 'A4']);
      assert.equal(pool.stats.refusedBusy, 1);
    } finally {
      await pool.close();
    }
  });

  test('a thread that does not answer in time is stopped and its body refused (503, a clear error); the next body gets a new thread', async () => {
    const log = [];
    const pool = new BodyPool({ threads: 1, threshold: 0, timeoutMs: 1, log: (level, text, fields) => log.push({ level, text, fields }) });
    try {
      const read = await pool.read(slow());
      assert.equal(read.status, 503);
      assert.equal(read.refused.error.message, 'Internal error: the request body could not be read (the thread took longer than 1 ms); nothing was forwarded.');
      assert.equal(read.refused.error.code, -32603);
      assert.equal(read.refused.id, null);
      assert.equal(log[0]?.level, 'error');
      assert.equal(pool.stats.failed, 1);
      assert.equal(pool.stats.threads, 0, 'the stalled thread is gone');
      // The next body gets a new thread (and, as slow, the same answer).
      const again = await pool.read(slow());
      assert.deepEqual(again, read);
      assert.deepEqual([pool.stats.threadsStarted, pool.stats.failed], [2, 2]);
    } finally {
      await pool.close();
    }
  });

  test('close() refuses what waits and what is being read (503), and later bodies', async () => {
    const pool = new BodyPool({ threads: 1, threshold: 0 });
    const reads = [1, 2, 3].map((n) => pool.read(big(`c${n}`)));
    await pool.close();
    for (const read of await Promise.all(reads)) {
      // The first may have been answered before close; none is left hanging.
      if (read.refused) {
        assert.equal(read.status, 503);
        assert.match(read.refused.error.message, /shutting down/);
      }
    }
    const later = await pool.read(big('late'));
    assert.equal(later.status, 503);
  });

  test('bad options are refused', () => {
    for (const options of [{ threads: 0 }, { threads: 1.5 }, { threshold: -1 }, { maxQueuedPerGrant: 0 }, { timeoutMs: Infinity }, { threshold: 1.5 }, { threads: '2' }]) {
      assert.throws(() => new BodyPool(options), TypeError, JSON.stringify(options));
    }
  });
});

// ------------------------------------------------------------ real transport

describe('through toolgate serve (startProxy, HTTP, an MCP SDK server)', () => {
  const TOKENS = { alice: 'alice-token-body-pool', bob: 'bob-token-body-pool' };
  const POLICY = { version: '1', default: 'deny', tools: { echo: { action: 'allow' }, drop: { action: 'deny', on_deny: 'no' }, review: { action: 'require_approval' } } };
  let server;
  const proxies = {};
  const audits = {};

  before(async () => {
    server = await startSdkServer({ tools: ['echo', 'drop'] });
    const policy = await tempFile('body-pool-policy.json', POLICY);
    const grants = await tempFile('body-pool-grants.json', grantsDocument(TOKENS));
    for (const [name, bodyPool] of [['pool', { threshold: 16 * 1024 }], ['inline', false]]) {
      audits[name] = memoryAudit();
      proxies[name] = await startProxy({
        servers: { default: { upstream: server.url, policy } }, grants, port: 0, counters: new MemoryCounterStore(),
        audit: audits[name], auditKey: 'same-audit-key', log: () => {}, watch: false, bodyPool,
      });
    }
  });
  after(async () => {
    for (const proxy of Object.values(proxies)) await proxy.close();
    await server?.stop();
  });

  const blob = (n) => 'é💥"\\'.repeat(Math.ceil(n / 4)).slice(0, n);
  const bodies = {
    // (the SDK server takes bodies up to 100 kB)
    'a large allowed call': JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { text: blob(30_000) } } }),
    'a large denied call': JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'drop', arguments: { z: 1, a: [blob(200_000), -0, 1e300] } } }),
    'a large batch': JSON.stringify(Array.from({ length: 5 }, (_, i) => ({ jsonrpc: '2.0', id: i + 10, method: 'tools/call', params: { name: i % 2 ? 'drop' : 'echo', arguments: { text: blob(8_000) } } }))),
    'a large call needing approval (over the reviewer\'s 64 KiB)': JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'review', arguments: { text: blob(100_000), n: [1e21, -0, 0.1] } } }),
    'a duplicate key deep inside': `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"text":"${'x'.repeat(100_000)}","deep":[{"a":1,"\\u0061":2}]}}}`,
    'a duplicate name': `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"drop","arguments":{"text":"${'x'.repeat(100_000)}"},"name":"echo"}}`,
    'nesting over 256': `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"echo","arguments":{"text":"${'x'.repeat(100_000)}","d":${'['.repeat(300)}${']'.repeat(300)}}}}`,
    'not JSON': `{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"echo","arguments":{"text":"${'x'.repeat(100_000)}"}}`,
  };

  for (const [what, text] of Object.entries(bodies)) {
    test(`${what}: the same answer with and without the pool`, async () => {
      const before = server.bodies.length;
      const pooled = await postRaw(`${proxies.pool.url}/mcp`, text, { token: TOKENS.alice });
      const forwarded = server.bodies.length - before;
      const inline = await postRaw(`${proxies.inline.url}/mcp`, text, { token: TOKENS.alice });
      assert.equal(pooled.status, inline.status);
      assert.deepEqual(pooled.json, inline.json);
      assert.equal(server.bodies.length - before, 2 * forwarded, 'each proxy forwarded the same');
      if (what.includes('approval')) {
        assert.equal(pooled.json.result.structuredContent.code, 'approval_limit');
        assert.match(pooled.json.result.structuredContent.message, /arguments \(\d+ bytes\) are over the 65536 bytes/);
      }
      if (what.startsWith('a duplicate') || what.startsWith('nesting') || what === 'not JSON') {
        assert.equal(pooled.status, 400);
        assert.equal(forwarded, 0, 'nothing forwarded');
      }
    });
  }

  test('every large body went to a thread; audit events (argument_hmac included) are identical', async () => {
    assert.ok(proxies.pool.bodyPool.stats.offThread >= Object.keys(bodies).length, JSON.stringify(proxies.pool.bodyPool.stats));
    assert.equal(proxies.pool.bodyPool.stats.failed, 0);
    const count = audits.inline.events.length;
    assert.ok(count >= 7, `${count} events`);
    await audits.pool.waitFor(count);
    const strip = ({ time, latency_ms: latency, upstream_ms: upstream, ...event }) => event; // what the clock says differs
    assert.deepEqual(audits.pool.events.map(strip), audits.inline.events.map(strip));
    assert.ok(audits.pool.events.every((event) => typeof event.argument_hmac === 'string'));
  });

  test('a thread that does not answer in time fails the request closed (503, nothing forwarded); the proxy goes on', async () => {
    const proxy = await startProxy({
      servers: { default: { upstream: server.url, policy: await tempFile('body-pool-policy.json', POLICY) } },
      grants: await tempFile('body-pool-grants.json', grantsDocument(TOKENS)), port: 0, counters: new MemoryCounterStore(),
      audit: memoryAudit(), log: () => {}, watch: false, maxBodyBytes: 64 * 1024 * 1024, bodyPool: { threshold: 1024, timeoutMs: 1, threads: 1 },
    });
    try {
      const before = server.bodies.length;
      const refused = await postRaw(`${proxy.url}/mcp`, new TextDecoder().decode(slow()), { token: TOKENS.alice });
      assert.equal(refused.status, 503);
      assert.equal(refused.json.error.message, 'Internal error: the request body could not be read (the thread took longer than 1 ms); nothing was forwarded.');
      const fine = await postRaw(`${proxy.url}/mcp`, '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"small"}}}', { token: TOKENS.alice });
      assert.equal(fine.status, 200);
      assert.equal(server.bodies.length - before, 1, 'only the second call reached the server');
      assert.equal(proxy.bodyPool.stats.failed, 1);
    } finally {
      await proxy.close();
    }
  });

  // What the pool is for: while one grant's large body is being read (seconds
  // of work here: 4 M numbers parsed, canonicalised and hashed on the thread),
  // another grant's small call is decided and answered. Read inline, the small
  // call would wait behind that work on the one event loop.
  test('while grant A\'s large body is read on a thread, grant B\'s small call is answered', async () => {
    const proxy = await startProxy({
      servers: { default: { upstream: server.url, policy: await tempFile('body-pool-policy.json', POLICY) } },
      grants: await tempFile('body-pool-grants.json', grantsDocument(TOKENS)), port: 0, counters: new MemoryCounterStore(),
      audit: memoryAudit(), auditKey: 'k', log: () => {}, watch: false, maxBodyBytes: 64 * 1024 * 1024, bodyPool: { threshold: 1024, threads: 1 },
    });
    try {
      const large = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'drop', arguments: { a: Array.from({ length: 4_000_000 }, (_, i) => i) } } });
      let largeAnswered = false;
      const a = postRaw(`${proxy.url}/mcp`, large, { token: TOKENS.alice }).then((answer) => {
        largeAnswered = true;
        return answer;
      }, (error) => ({ error }));
      await waitFor(() => proxy.bodyPool.stats.reading === 1, 'grant A\'s body on the thread', { interval: 1 });
      const b = await postRaw(`${proxy.url}/mcp`, '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}', { token: TOKENS.bob });
      assert.equal(b.status, 200);
      assert.equal(b.json.result.content[0].text, 'echo ran: hi');
      assert.equal(largeAnswered, false, 'B was answered while A\'s body was still being read');
      assert.equal(proxy.bodyPool.stats.reading, 1);
      const answer = await a;
      assert.equal(answer.error, undefined);
      assert.equal(answer.status, 200);
      assert.equal(answer.json.result.structuredContent.code, 'tool_denied');
    } finally {
      await proxy.close();
    }
  });
});
