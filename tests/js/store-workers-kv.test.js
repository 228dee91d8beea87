// KvCounterStore (worker/stores/workers-kv.js) inside workerd, through
// Miniflare. Miniflare's KV is one local, consistent store and the fixture one
// isolate, so the conformance suite holds here: calls of one isolate on the
// same counters run one after another. That is NOT how KV behaves across
// isolates and locations; the tests after the suite show where the store is
// exact and where it is only approximate.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';

import { loadToolgate } from '../../wasm/index.js';
import { conformance, requestsFor, T0 } from './store-conformance.js';
import { remoteCounterStore, startStoresWorker } from './fixtures/stores/harness.js';

const SECOND = 1_000;

// Every top-level await comes before the first test or hook is registered:
// node:test runs registered tests while the module still awaits, and once they
// are done it runs the file's after() hooks, before the tests registered after
// the await (seen: the Redis client closed under the remaining tests).
const mf = await startStoresWorker();
const kv = await mf.getKVNamespace('COUNTS');
const toolgate = await loadToolgate();
after(() => mf.dispose());

// A generous timeout: 1 000 concurrent calls on one counter wait in line.
const newStore = (options = {}) => remoteCounterStore(mf, { store: 'kv', options: { timeoutMs: 30_000, ...options } });

conformance('KvCounterStore (workerd, one isolate)', () => newStore());


// The keys a store wrote, with their expiration (epoch seconds).
async function keysOf(store) {
  const { keys } = await kv.list({ prefix: `t-${store.space}:` });
  return keys;
}

describe('KvCounterStore: layout', () => {
  test('keys are prefix:key:bucket_start, with the count as a decimal string, expiring after max(60 s, two windows)', async () => {
    const store = newStore();
    const tools = {
      run: { rate_limit: '5/minute' },
      quick: { limits: [{ window: 10, max: 5 }] },
      pay: { limits: [{ counter: 'spend', window: 'hour', max: 10, cost_from: 'args.amount' }] },
    };
    const run = requestsFor(tools, { tool: 'run', grant: 'alice' }, T0);
    const quick = requestsFor(tools, { tool: 'quick', grant: 'alice' }, T0);
    const pay = requestsFor(tools, { tool: 'pay', arguments: { amount: 0.25 }, grant: 'alice' }, T0);
    const before = Math.floor(Date.now() / SECOND);
    for (const requests of [run, quick, pay, pay]) assert.equal((await store.reserve(requests, T0)).admitted, true);
    const after = Math.ceil(Date.now() / SECOND);

    const keys = await keysOf(store);
    const prefix = `t-${store.space}`;
    assert.deepEqual(keys.map((k) => k.name).sort(), [run, quick, pay].map(([r]) => `${prefix}:${r.key}:${T0}`).sort());
    assert.equal(await store.keyOf(run[0]), `${prefix}:${run[0].key}:${T0}`);
    assert.equal(await kv.get(`${prefix}:${pay[0].key}:${T0}`), '0.5');
    const ttl = (requests) => keys.find((k) => k.name.includes(requests[0].key)).expiration;
    for (const [requests, seconds] of [[run, 120], [quick, 60], [pay, 7200]]) {
      const expiration = ttl(requests);
      assert.ok(expiration >= before + seconds && expiration <= after + seconds, `${requests[0].key}: expires ${expiration - before} s on`);
    }
  });

  test('a counter key too long for KV is hashed', async () => {
    const store = newStore();
    const tools = { put: { limits: [{ counter: 'per_path', window: 'minute', max: 1, key: 'args.path' }] } };
    // The core already hashes long argument values into short keys; a key
    // over KV's limit can still come from another client of the store.
    const requests = requestsFor(tools, { tool: 'put', arguments: { path: '/short' }, grant: 'alice' }, T0)
      .map((request) => ({ ...request, key: `${request.key}${'x'.repeat(600)}` }));
    assert.ok(requests[0].key.length > 600);
    assert.equal((await store.reserve(requests, T0)).admitted, true);
    assert.equal((await store.reserve(requests, T0)).admitted, false);
    const [key] = await keysOf(store);
    assert.match(key.name, new RegExp(`^t-${store.space}:sha256:[0-9a-f]{64}:${T0}$`));
    assert.equal(await store.keyOf(requests[0]), key.name);
  });
});

describe('KvCounterStore: exact within one isolate, approximate across isolates', () => {
  const requests = requestsFor({ run: { rate_limit: '10/minute' } }, { tool: 'run', grant: 'alice' }, T0);

  test('one isolate: 200 concurrent calls (KV slow to answer) admit exactly max', async () => {
    const store = newStore({ delayMs: 2 });
    const results = await store.burst(200, requests, T0);
    assert.equal(results.filter((r) => r.admitted).length, 10);
    assert.deepEqual(await store.peek(requests, T0), [{ current: 10, previous: 0 }]);
  });

  test('one isolate whose KV reads are stale (an edge cache): it still counts its own writes', async () => {
    const store = newStore({ staleReads: true });
    for (let i = 0; i < 10; i += 1) assert.equal((await store.reserve(requests, T0)).admitted, true, `call ${i + 1}`);
    const denied = await store.reserve(requests, T0);
    assert.equal(denied.admitted, false);
    assert.deepEqual(denied.states, [{ current: 10, previous: 0 }]);
  });

  test('APPROXIMATE: two isolates reading before either writes both admit (why it is never a default)', async () => {
    const a = newStore({ delayMs: 50 });
    const b = a.sibling('b');
    const one = requestsFor({ run: { rate_limit: '1/minute' } }, { tool: 'run', grant: 'alice' }, T0);
    const results = await Promise.all([a.reserve(one, T0), b.reserve(one, T0)]);
    assert.deepEqual(results.map((r) => r.admitted), [true, true], 'max 1, admitted twice');
    assert.deepEqual(await a.sibling('c').peek(one, T0), [{ current: 1, previous: 0 }], 'and one charge is lost');
  });

  test('APPROXIMATE: an isolate whose KV read is stale (cached) admits past max', async () => {
    const a = newStore();
    const stale = a.sibling('stale', { staleReads: true });
    assert.deepEqual(await stale.peek(requests, T0), [{ current: 0, previous: 0 }], 'caches the empty count');
    for (let i = 0; i < 10; i += 1) assert.equal((await a.reserve(requests, T0)).admitted, true);
    assert.equal((await a.sibling('fresh').reserve(requests, T0)).admitted, false, 'a fresh read sees all 10');
    const over = await stale.reserve(requests, T0);
    assert.equal(over.admitted, true, 'the 11th call of a 10/minute limit');
    assert.deepEqual(over.states, [{ current: 0, previous: 0 }]);
  });
});

describe('KvCounterStore: rollback and failures', () => {
  test('rollback subtracts what was charged, once, never below zero, and does not bring back an expired bucket', async () => {
    const store = newStore();
    const tools = { pay: { limits: [{ counter: 'spend', window: 'hour', max: 100, cost_from: 'args.amount' }] } };
    const pay = (amount) => requestsFor(tools, { tool: 'pay', arguments: { amount }, grant: 'alice' }, T0);
    await store.commit(await store.reserve(pay(10.1), T0));
    const held = await store.reserve(pay(0.2), T0);
    assert.deepEqual(JSON.parse(JSON.stringify(held)), held, 'plain data');
    await store.rollback(held);
    await store.rollback(held);
    assert.deepEqual(await store.peek(pay(0), T0), [{ current: 10.1 + 0.2 - 0.2, previous: 0 }]);

    // A bucket gone from KV (expired) stays gone; another isolate gives back,
    // one that never wrote the bucket and so knows only what KV says.
    const gone = await store.reserve(pay(1), T0);
    await kv.delete(await store.keyOf(pay(0)[0]));
    await store.sibling('b').rollback(gone);
    assert.deepEqual(await keysOf(store), []);

    // More given back than the bucket holds: zero.
    const big = await store.reserve(pay(5), T0);
    await kv.put(await store.keyOf(pay(0)[0]), '1', { expirationTtl: 7200 });
    await store.sibling('c').rollback(big);
    assert.equal(await kv.get(await store.keyOf(pay(0)[0])), '0');
  });

  test('KV that does not answer in time: reserve rejects after timeoutMs, and nothing is charged', async () => {
    // Far apart, so a loaded machine cannot reorder the timeout and the answer.
    const store = newStore({ timeoutMs: 100, delayMs: 600 });
    const requests = requestsFor({ run: { rate_limit: '3/minute' } }, { tool: 'run', grant: 'alice' }, T0);
    const started = performance.now();
    await assert.rejects(store.reserve(requests, T0), /Workers KV did not answer within 100 ms/);
    assert.ok(performance.now() - started < 600);
    await sleep(900); // the reads finish; the store gave up, so it writes nothing
    assert.deepEqual(await keysOf(store), []);
  });

  test('KV failing: reserve rejects and policy.authorize denies with store_error', async () => {
    const store = newStore({ failWith: 'KV PUT failed: 429 Too Many Requests' });
    const call = { tool: 'run', grant: 'alice' };
    await assert.rejects(store.reserve(requestsFor({ run: { rate_limit: '3/minute' } }, call, T0), T0), /429/);
    const policy = toolgate.compile({ version: '1', default: 'deny', tools: { run: { rate_limit: '3/minute' } } });
    try {
      const { decision } = await policy.authorize(call, { counters: store, now: T0 });
      assert.equal(decision.code, 'store_error');
    } finally {
      policy.dispose();
    }
  });

  test('end to end: "3/minute" through policy.decide admits exactly 3, then rate_limited', async () => {
    const policy = toolgate.compile({ version: '1', default: 'deny', tools: { run: { rate_limit: '3/minute' } } });
    try {
      const counters = newStore();
      const call = { tool: 'run', grant: 'alice' };
      const now = T0 + 15 * SECOND;
      for (let i = 0; i < 3; i += 1) assert.equal((await policy.decide(call, { counters, now })).code, 'allowed');
      const limited = await policy.decide(call, { counters, now });
      assert.equal(limited.code, 'rate_limited');
      assert.equal(limited.retry_after_ms, 45 * SECOND);
    } finally {
      policy.dispose();
    }
  });
});
