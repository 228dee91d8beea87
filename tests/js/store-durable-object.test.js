// DurableObjectCounterStore and DurableObjectApprovalStore
// (worker/stores/durable-object.js) inside workerd, through Miniflare: the
// conformance suites, driven over fetch (tests/js/fixtures/stores/), then what
// is particular to Durable Objects: sharding, multi-shard rollback, atomicity
// under concurrent RPCs, persistence across a restart, expiry by alarm, and
// failing closed.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { loadToolgate } from '../../wasm/index.js';
import { approvalConformance } from './approval-conformance.js';
import { conformance, requestsFor, T0 } from './store-conformance.js';
import { freshSpace, objectCall, remoteApprovalStore, remoteCounterStore, rpcsOf, startStoresWorker } from './fixtures/stores/harness.js';

const SECOND = 1_000;
const MINUTE = 60 * SECOND;

// Every top-level await comes before the first test or hook is registered:
// node:test runs registered tests while the module still awaits, and once they
// are done it runs the file's after() hooks, before the tests registered after
// the await (seen: the Redis client closed under the remaining tests).
const mf = await startStoresWorker();
const toolgate = await loadToolgate();
after(() => mf.dispose());

// A generous timeout: 1 000 concurrent RPCs queue at one object.
const newStore = (options = {}) => remoteCounterStore(mf, { store: 'do', options: { timeoutMs: 10_000, ...options } });

conformance('DurableObjectCounterStore (workerd)', () => newStore());
approvalConformance('DurableObjectApprovalStore (workerd)', () => remoteApprovalStore(mf, { options: { timeoutMs: 10_000 } }));


// Polls `read` until `done(value)`; returns the last value. `ms` only guards
// against a hang: what is waited for (an alarm, a late answer) comes when a
// loaded machine gets to it, and the caller asserts the value.
async function eventually(read, done, ms = 60_000) {
  let value = await read();
  for (let waited = 0; !done(value) && waited < ms; waited += 50) {
    await sleep(50);
    value = await read();
  }
  return value;
}

describe('DurableObjectCounterStore: shards', () => {
  const tools = {
    run: {
      limits: [
        { counter: 'per_minute', window: 'minute', max: 10 },
        { counter: 'per_hour', window: 'hour', max: 100 },
      ],
    },
    mixed: {
      limits: [
        { counter: 'mine', window: 'minute', max: 1 },
        { counter: 'all', window: 'minute', max: 2, scope: 'global' },
        { counter: 'all_day', window: 'day', max: 100, scope: 'global' },
      ],
    },
  };

  test('a call with only grant limits is one RPC to grant:<id>; another grant has its own object', async () => {
    const store = newStore();
    const alice = requestsFor(tools, { tool: 'run', grant: 'alice' }, T0);
    assert.equal(alice.length, 2);
    assert.equal((await store.reserve(alice, T0)).admitted, true);
    assert.deepEqual(await rpcsOf(mf, store.space), [{ shard: 'grant:alice', method: 'reserve' }], 'two counters, one round trip');

    await store.reserve(requestsFor(tools, { tool: 'run', grant: 'bob' }, T0), T0);
    assert.deepEqual(await rpcsOf(mf, store.space), [{ shard: 'grant:bob', method: 'reserve' }]);
    // The counts are where the shard name says, and nowhere else.
    assert.deepEqual(await objectCall(mf, store.space, 'grant:alice', 'peek', alice, T0), [{ current: 1, previous: 0 }, { current: 1, previous: 0 }]);
    assert.deepEqual(await objectCall(mf, store.space, 'grant:bob', 'peek', alice, T0), [{ current: 0, previous: 0 }, { current: 0, previous: 0 }]);
    await store.commit(await store.reserve([], T0));
    assert.deepEqual(await rpcsOf(mf, store.space), [], 'no counters, no RPC; commit makes none');
  });

  test('each global counter lives in its own global:<counter key> object; shards go in sorted order', async () => {
    const store = newStore();
    const requests = requestsFor(tools, { tool: 'mixed', grant: 'alice' }, T0);
    const [all, allDay] = ['"all"', '"all_day"'].map((name) => requests.find((r) => r.key.includes(name)));
    assert.equal(all.scope, 'global');
    assert.equal((await store.reserve(requests, T0)).admitted, true);
    const shards = [`global:${all.key}`, `global:${allDay.key}`, 'grant:alice'].sort();
    assert.deepEqual(await rpcsOf(mf, store.space), shards.map((shard) => ({ shard, method: 'reserve' })));
    assert.deepEqual(await objectCall(mf, store.space, `global:${all.key}`, 'peek', [all], T0), [{ current: 1, previous: 0 }]);
    assert.deepEqual(await objectCall(mf, store.space, 'grant:alice', 'peek', [all], T0), [{ current: 0, previous: 0 }]);
    for (const shard of shards) assert.equal(await objectCall(mf, store.space, shard, 'size'), 1, `${shard} holds one bucket`);
  });

  test('a later shard that denies gives the earlier shards their charge back; shards after a denial are only read', async () => {
    const store = newStore();
    const parts = (grant) => {
      const requests = requestsFor(tools, { tool: 'mixed', grant }, T0);
      return [requests.find((r) => r.key.includes('"all"')), requests.find((r) => r.scope === 'grant')];
    };
    const [all] = parts('alice');
    const allShard = `global:${all.key}`;
    assert.ok(allShard < 'grant:alice', 'the global shard is reserved first');

    assert.equal((await store.reserve(parts('alice'), T0)).admitted, true);
    await rpcsOf(mf, store.space);
    // Alice again: the global shard admits and is charged, her grant's denies.
    const denied = await store.reserve(parts('alice'), T0);
    assert.equal(denied.admitted, false);
    assert.deepEqual(denied.states, [{ current: 1, previous: 0 }, { current: 1, previous: 0 }]);
    assert.deepEqual(denied.charges, []);
    assert.deepEqual(await rpcsOf(mf, store.space), [
      { shard: allShard, method: 'reserve' },
      { shard: 'grant:alice', method: 'reserve' },
      { shard: allShard, method: 'rollback' },
    ]);
    assert.deepEqual(await objectCall(mf, store.space, allShard, 'peek', [all], T0), [{ current: 1, previous: 0 }], 'charged, then given back');

    assert.equal((await store.reserve(parts('bob'), T0)).admitted, true, 'global 2 of 2');
    await rpcsOf(mf, store.space);
    // Carol: the global shard denies first; her grant's object is only read.
    const carol = await store.reserve(parts('carol'), T0);
    assert.equal(carol.admitted, false);
    assert.deepEqual(carol.states, [{ current: 2, previous: 0 }, { current: 0, previous: 0 }]);
    assert.deepEqual(await rpcsOf(mf, store.space), [{ shard: allShard, method: 'reserve' }, { shard: 'grant:carol', method: 'peek' }]);

    // Through the policy: the states let the core name the limit that denied.
    const policy = toolgate.compile({ version: '1', default: 'deny', tools });
    try {
      const counters = newStore();
      assert.equal((await policy.decide({ tool: 'mixed', grant: 'alice' }, { counters, now: T0 })).code, 'allowed');
      const again = await policy.decide({ tool: 'mixed', grant: 'alice' }, { counters, now: T0 });
      assert.equal(again.code, 'rate_limited');
      assert.equal(again.rule, '/tools/mixed/limits/0');
      assert.equal((await policy.decide({ tool: 'mixed', grant: 'bob' }, { counters, now: T0 })).code, 'allowed');
      const full = await policy.decide({ tool: 'mixed', grant: 'carol' }, { counters, now: T0 });
      assert.equal(full.code, 'rate_limited');
      assert.equal(full.rule, '/tools/mixed/limits/1');
    } finally {
      policy.dispose();
    }
  });
});

describe('DurableObjectCounterStore: counts', () => {
  test('1 000 concurrent reserves inside the worker against one grant\'s limit admit exactly max', async () => {
    const store = newStore();
    const requests = requestsFor({ run: { rate_limit: '137/minute' } }, { tool: 'run', grant: 'alice' }, T0);
    const results = await store.burst(1000, requests, T0);
    const admitted = results.filter((r) => r.admitted);
    assert.equal(admitted.length, 137);
    assert.deepEqual(admitted.map((r) => r.states[0].current).sort((a, b) => a - b), Array.from({ length: 137 }, (_, i) => i));
    assert.deepEqual(await objectCall(mf, store.space, 'grant:alice', 'peek', requests, T0), [{ current: 137, previous: 0 }]);
  });

  test('rollback restores the count exactly, once per reservation (copies included), never below zero', async () => {
    const store = newStore();
    const tools = { pay: { limits: [{ counter: 'spend', window: 'hour', max: 100, cost_from: 'args.amount' }] } };
    const pay = (amount) => requestsFor(tools, { tool: 'pay', arguments: { amount }, grant: 'alice' }, T0);
    await store.commit(await store.reserve(pay(10.1), T0));
    const held = await store.reserve(pay(0.2), T0);
    const copy = structuredClone(held); // the reservation is plain data
    assert.deepEqual(Object.keys(held).sort(), ['admitted', 'charges', 'id', 'settled', 'states']);
    assert.deepEqual(JSON.parse(JSON.stringify(held)), held);
    assert.deepEqual(await store.peek(pay(0), T0), [{ current: 10.1 + 0.2, previous: 0 }]);

    await store.rollback(held);
    assert.equal(held.settled, true);
    assert.deepEqual(await store.peek(pay(0), T0), [{ current: 10.1 + 0.2 - 0.2, previous: 0 }], 'the same doubles as in JS');
    await store.rollback(copy);
    assert.deepEqual(await store.peek(pay(0), T0), [{ current: 10.1 + 0.2 - 0.2, previous: 0 }], 'the object remembers the reservation id');

    // More given back than the bucket holds (a forged charge): it stops at zero.
    const [request] = pay(0);
    await objectCall(mf, store.space, 'grant:alice', 'rollback', [{ key: request.key, start: request.bucket_start_ms, cost: 1000 }]);
    assert.deepEqual(await store.peek(pay(0), T0), [{ current: 0, previous: 0 }]);
  });

  test('counts survive a restart of workerd (kept in the objects\' SQLite storage)', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'toolgate-do-'));
    try {
      const requests = requestsFor({ run: { rate_limit: '3/minute' } }, { tool: 'run', grant: 'alice' }, T0);
      const first = await startStoresWorker({ durableObjectsPersist: dir });
      const space = freshSpace();
      try {
        const store = remoteCounterStore(first, { store: 'do', space });
        for (let i = 0; i < 2; i += 1) assert.equal((await store.reserve(requests, T0)).admitted, true);
      } finally {
        await first.dispose();
      }
      const second = await startStoresWorker({ durableObjectsPersist: dir });
      try {
        const store = remoteCounterStore(second, { store: 'do', space });
        const third = await store.reserve(requests, T0);
        assert.equal(third.admitted, true);
        assert.deepEqual(third.states, [{ current: 2, previous: 0 }], 'the counts from before the restart');
        assert.equal((await store.reserve(requests, T0)).admitted, false);
      } finally {
        await second.dispose();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a bucket is dropped by the alarm two windows after its last charge; a longer-lived one stays', async () => {
    const store = newStore();
    // A hand-made request with a 1.5 s window: dead 3 s after the charge. (With
    // 250 ms, a loaded CI machine once took longer than the bucket's life to
    // get from the charge to the first size() below.)
    const request = { key: 'short', scope: 'grant', grant: 'alice', cost: 1, max: 5, window_ms: 1500, algorithm: 'fixed', bucket_start_ms: T0 };
    const day = requestsFor({ run: { limits: [{ window: 'day', max: 5 }] } }, { tool: 'run', grant: 'bob' }, T0);
    const charging = performance.now();
    assert.equal((await store.reserve([request], T0)).admitted, true);
    assert.equal((await store.reserve(day, T0)).admitted, true);
    const held = await objectCall(mf, store.space, 'grant:alice', 'size');
    // The bucket is there until its alarm, 3 s after the charge: a read that
    // came back sooner than that after the charge began must have seen it. (A
    // machine slow enough to take longer cannot tell, and only then is the
    // read not checked.)
    if (performance.now() - charging < 3000) assert.equal(held, 1, 'the bucket is there before its alarm');
    const size = await eventually(() => objectCall(mf, store.space, 'grant:alice', 'size'), (n) => n === 0);
    assert.equal(size, 0, 'swept by the alarm');
    assert.deepEqual(await store.peek([request], T0), [{ current: 0, previous: 0 }]);
    assert.equal(await objectCall(mf, store.space, 'grant:bob', 'size'), 1, 'a day bucket stays');
  });
});

describe('DurableObjectCounterStore: failing closed', () => {
  const policy = toolgate.compile({ version: '1', default: 'deny', tools: { run: { rate_limit: '3/minute' } } });
  after(() => policy.dispose());
  const call = { tool: 'run', grant: 'alice' };

  test('an object that does not answer in time: reserve rejects after timeoutMs; a late charge is given back', async () => {
    const slow = newStore({ timeoutMs: 100, delayMs: 1000 });
    const [request] = requestsFor({ run: { rate_limit: '3/minute' } }, call, T0);
    const started = performance.now();
    await assert.rejects(slow.reserve([request], T0), /Durable Object grant:alice did not answer within 100 ms/);
    const waited = performance.now() - started;
    assert.ok(waited < 1000, `rejected after ${Math.round(waited)} ms`);
    // The RPC still runs when the delay ends, and charges (the bucket appears);
    // the store sees the late answer and gives the charge back.
    const bucket = async () => ({
      rows: await objectCall(mf, slow.space, 'grant:alice', 'size'),
      state: (await objectCall(mf, slow.space, 'grant:alice', 'peek', [request], T0))[0],
    });
    assert.deepEqual(await eventually(bucket, (b) => b.rows === 1 && b.state.current === 0), { rows: 1, state: { current: 0, previous: 0 } });

    const { decision } = await policy.authorize(call, { counters: slow, now: T0 });
    assert.equal(decision.code, 'store_error');
  });

  test('an RPC that fails: reserve rejects and policy.authorize denies with store_error', async () => {
    const broken = newStore({ failWith: 'Durable Object reset because its code was updated.' });
    await assert.rejects(broken.reserve(requestsFor({ run: { rate_limit: '3/minute' } }, call, T0), T0), /code was updated/);
    const { decision } = await policy.authorize(call, { counters: broken, now: T0 });
    assert.equal(decision.decision, 'deny');
    assert.equal(decision.code, 'store_error');
    assert.match(decision.message, /fail closed/);
  });

  test('end to end: "3/minute" admits exactly 3, then rate_limited with retry_after_ms; rollback gives one back', async () => {
    const counters = newStore();
    const now = T0 + 15 * SECOND;
    for (let i = 0; i < 3; i += 1) assert.equal((await policy.decide(call, { counters, now: now + i })).code, 'allowed');
    const limited = await policy.decide(call, { counters, now: now + 3 });
    assert.equal(limited.code, 'rate_limited');
    assert.equal(limited.retry_after_ms, 45 * SECOND - 3);
    const bob = { tool: 'run', grant: 'bob' };
    const held = await Promise.all([1, 2, 3].map(() => policy.authorize(bob, { counters, now })));
    assert.ok(held.every((a) => a.decision.code === 'allowed'));
    await held[0].rollback();
    await held[0].rollback();
    assert.equal((await policy.decide(bob, { counters, now })).code, 'allowed');
    assert.equal((await policy.decide(bob, { counters, now })).code, 'rate_limited');
    assert.equal((await policy.decide(bob, { counters, now: T0 + MINUTE })).code, 'allowed', 'the next window');
  });

  test('malformed requests are refused before any RPC', async () => {
    const store = newStore();
    const [request] = requestsFor({ run: { rate_limit: '3/minute' } }, call, T0);
    await assert.rejects(store.reserve([{ ...request, cost: 'NaN' }], T0), /cost is not a finite/);
    await assert.rejects(store.reserve([{ ...request, window_ms: 0 }], T0), /window_ms/);
    await assert.rejects(store.reserve([request], 'now'), /epoch milliseconds/);
    assert.deepEqual(await rpcsOf(mf, store.space), []);
  });
});

describe('DurableObjectApprovalStore', () => {
  const id = 'a'.repeat(64);

  test('every operation is one RPC to the object named "approvals"', async () => {
    const store = remoteApprovalStore(mf);
    await store.approve(id, T0);
    assert.equal(await store.consume(id, MINUTE, T0), true);
    assert.deepEqual(await rpcsOf(mf, store.space), [
      { shard: 'approvals', method: 'approve' },
      { shard: 'approvals', method: 'take' },
    ]);
  });

  test('an approval nobody used is dropped after approvalTtlMs (by the alarm)', async () => {
    const store = remoteApprovalStore(mf, { options: { approvalTtlMs: 200 } });
    await store.approve(id, T0);
    assert.equal(await store.isApproved(id, MINUTE, T0), true);
    const approved = await eventually(() => store.isApproved(id, MINUTE, T0), (ok) => !ok);
    assert.equal(approved, false);
  });

  test('a consume answered too late puts the approval back (the call it was for was denied)', async () => {
    const store = remoteApprovalStore(mf);
    const slow = remoteApprovalStore(mf, { space: store.space, options: { timeoutMs: 100, delayMs: 1000 } });
    await store.approve(id, T0);
    await assert.rejects(slow.consume(id, MINUTE, T0), /did not answer within 100 ms/);
    // The late take() runs and uses the approval up; its answer starts restore().
    const log = [];
    await eventually(async () => log.push(...(await rpcsOf(mf, store.space))), () => log.some((r) => r.method === 'restore'));
    assert.deepEqual(log.map((r) => r.method), ['approve', 'take', 'restore']);
    assert.equal(await eventually(() => store.isApproved(id, MINUTE, T0), (ok) => ok), true, 'put back');
    assert.equal(await store.consume(id, MINUTE, T0), true);
    assert.equal(await store.consume(id, MINUTE, T0), false, 'still one call');
  });

  test('an object that does not answer in time: the call rejects, and authorize denies with store_error', async () => {
    const slow = remoteApprovalStore(mf, { options: { timeoutMs: 100, delayMs: 1000 } });
    await assert.rejects(slow.isApproved(id, MINUTE, T0), /did not answer within 100 ms/);
    const policy = toolgate.compile({ version: '1', default: 'deny', tools: { run: { action: 'require_approval' } } });
    try {
      const { decision } = await policy.authorize({ tool: 'run', grant: 'alice' }, { approvals: slow, now: T0 });
      assert.equal(decision.code, 'store_error');
    } finally {
      policy.dispose();
    }
  });
});
