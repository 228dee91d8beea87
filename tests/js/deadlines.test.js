// worker/deadlines.js: one timer per deadline length for every request's body
// and upstream deadline (toolgate serve), instead of a setTimeout per request.
// Proved on its own (a seeded property test: every deadline not cancelled
// fires once, never early; no cancelled one fires) and through the real
// transport: `toolgate serve`'s handler (startProxy) still answers 408 to a
// trickled body and 502 to an upstream that does not answer, while other
// requests add and cancel deadlines around them, and again after the shared
// timer has fired once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';

import { MemoryCounterStore } from '../../wasm/index.js';
import { DeadlineQueue } from '../../worker/deadlines.js';
import { startProxy } from '../../worker/node.js';
import { echoResults, grantsDocument, memoryAudit, postRaw, startFakeUpstream, tempFile } from './proxy-helpers.js';
import { random } from './seeded-random.js';

const TOKEN = 'deadline-token-0123456789';
const POLICY = { version: '1', default: 'deny', tools: { note: {}, hang: {} } };
const call = (id, name) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: {} } });

test('DeadlineQueue: every deadline not cancelled fires once and never early; cancelled ones never fire (seeded)', async () => {
  for (let seed = 1; seed <= 5; seed++) {
    const next = random(seed);
    const delayMs = 5 + Math.floor(next() * 20);
    const queue = new DeadlineQueue(delayMs);
    const fired = new Map();
    const expected = new Set();
    const entries = [];
    const fire = (target) => {
      fired.set(target.id, (fired.get(target.id) ?? 0) + 1);
      target.firedAt = performance.now();
    };
    let id = 0;
    // Bursts of adds and cancels (some after a pause, so the timer has fired
    // and re-armed in between).
    for (let round = 0; round < 6; round++) {
      for (let i = 0; i < 40; i++) {
        const target = { id: id++, addedAt: performance.now() };
        entries.push({ target, entry: queue.add(fire, target) });
        expected.add(target.id);
        if (next() < 0.6) {
          const pick = entries[Math.floor(next() * entries.length)];
          if (!pick.entry.fired) {
            queue.cancel(pick.entry);
            expected.delete(pick.target.id);
          }
        }
      }
      if (next() < 0.5) await new Promise((resolve) => setImmediate(resolve));
      else await new Promise((resolve) => setTimeout(resolve, Math.floor(next() * delayMs * 2)));
    }
    // Wait on state: each expected deadline fired (the queue empties).
    while (queue.size > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
    for (const { target, entry } of entries) {
      if (expected.has(target.id)) {
        assert.equal(fired.get(target.id), 1, `seed ${seed}: deadline ${target.id} fires exactly once`);
        assert.equal(entry.fired, true);
        // performance.now() and Node's millisecond timers: never before due.
        assert.ok(target.firedAt - target.addedAt >= delayMs, `seed ${seed}: deadline ${target.id} fired after ${target.firedAt - target.addedAt} ms, before its ${delayMs} ms`);
      } else {
        assert.equal(fired.has(target.id), false, `seed ${seed}: cancelled deadline ${target.id} never fires`);
        assert.equal(entry.fired, false);
      }
    }
  }
});

test('DeadlineQueue: a deadline longer than setTimeout takes is not fired at once', async () => {
  const queue = new DeadlineQueue(2 ** 32);
  let fired = false;
  const entry = queue.add(() => {
    fired = true;
  });
  // A longer setTimeout than 2^31-1 ms would fire after 1 ms: give it ten turns of timers.
  for (let i = 0; i < 10; i++) await new Promise((resolve) => setTimeout(resolve, 2));
  assert.equal(fired, false);
  queue.cancel(entry);
  assert.equal(queue.size, 0);
});

// A POST that sends its headers and part of its body, then nothing: the
// proxy's status, once it answers.
function trickle(url) {
  const target = new URL(url);
  const req = httpRequest({ host: target.hostname, port: target.port, path: target.pathname, method: 'POST', headers: {
    'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${TOKEN}`, 'content-length': '1000',
  } });
  const status = new Promise((resolve, reject) => {
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('error', reject);
  });
  req.write('{"jsonrpc":"2.0",');
  return { req, status };
}

// Long enough that 30 quick calls through the proxy finish inside it on a
// loaded CI machine (400 ms was missed once at load 12), short enough that
// the two rounds' hanging calls keep the test a few seconds long.
const DEADLINE_MS = 1500;

test('toolgate serve: the shared body and upstream deadlines fire through the real transport, among calls that cancel theirs', { timeout: 60_000 }, async () => {
  // The upstream answers every call but "hang", which it holds (until the test ends).
  const held = [];
  const upstream = await startFakeUpstream((req, body, res) => {
    if (JSON.parse(body).params?.name === 'hang') {
      held.push(res);
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(echoResults(body)));
  });
  const audit = memoryAudit();
  const proxy = await startProxy({
    servers: { default: { upstream: upstream.url, policy: await tempFile('deadline-policy.json', POLICY) } },
    grants: await tempFile('deadline-grants.json', grantsDocument({ agent: TOKEN })), port: 0, counters: new MemoryCounterStore(),
    audit, log: () => {}, watch: false, bodyTimeoutMs: DEADLINE_MS, upstreamTimeoutMs: DEADLINE_MS, maxConcurrentPerGrant: 1000,
  });
  const mcp = `${proxy.url}/mcp`;
  const trickled = [];
  try {
    for (let round = 0; round < 2; round++) {
      // A body that never completes, then a hanging call, then quick calls
      // whose deadlines are added after theirs and cancelled before theirs
      // are due (a cancelled deadline ahead of or behind a live one).
      const slow = trickle(mcp);
      trickled.push(slow);
      const hanging = postRaw(mcp, call(1000 + round, 'hang'), { token: TOKEN });
      const quick = [];
      for (let i = 0; i < 30; i++) quick.push(postRaw(mcp, call(i, 'note'), { token: TOKEN }));
      for (const answer of await Promise.all(quick)) assert.equal(answer.status, 200, answer.text);
      assert.equal(await slow.status, 408, 'the trickled body is refused at its deadline');
      const timedOut = await hanging;
      assert.equal(timedOut.status, 502, timedOut.text);
      assert.match(timedOut.json.error.message, new RegExp(`no answer within ${DEADLINE_MS} ms`));
      // The upstream received the hanging call (so its quota stays spent) and nothing of the trickled body.
      assert.equal(upstream.requests.filter((r) => r.body.includes('"hang"')).length, round + 1);
    }
    assert.equal(upstream.requests.length, 2 * 31, 'every quick call and each hanging call reached the upstream; no trickled body did');
  } finally {
    for (const { req } of trickled) req.destroy();
    for (const res of held) res.destroy();
    await proxy.close();
    await upstream.stop();
  }
});
