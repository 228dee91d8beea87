// One admission rule, three places (wasm/admission.js): the JavaScript module
// every JS store uses (memory, Durable Object, Workers KV), the core's
// estimate / admits / retry_after_ms (which decide from the counts a store
// read), and the Lua the Redis store runs (worker/stores/redis-scripts.js,
// ADMISSION_LUA). A store admits and charges in one atomic step and the core
// then decides from the counts it read, so all three must agree to the last
// bit: a store that admits what the core denies makes authorize() answer
// store_error; one that denies what the core would admit refuses quota.
//
// Generated cases (seeded: a failure names its case, which replays): random
// counters, costs (integers, quarters, arbitrary doubles, tiny fractions),
// maxes, windows, times within the bucket, sliding and fixed, keys repeated
// within a call. The same case goes through
// - the JS module and the core (policy.explain: the estimate, the verdict of
//   every limit, the deciding limit's retry_after_ms), with no store rule of
//   the core's own to lean on: a store answering the module's verdict;
// - the JS module and ADMISSION_LUA on a real redis-server (the check script:
//   first denied request, every estimate and retry_after, as exact doubles);
// - the JS module and the real reserve script, through RedisCounterStore, on
//   keys holding the case's counts (admitted, states, charged only when admitted).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createClient } from 'redis';

import { loadToolgate } from '../../wasm/index.js';
import { admits, estimateCount, firstDenied, retryAfterMs } from '../../wasm/admission.js';
import { RedisCounterStore } from '../../worker/stores/redis.js';
import { ADMISSION_CHECK_SCRIPT } from '../../worker/stores/redis-scripts.js';
import { startRedis } from './redis-server.js';
import { random } from './seeded-random.js';

const toolgate = await loadToolgate();

const T0 = Date.UTC(2026, 0, 1);
const DAY = 86_400_000;

// A case generator over one seeded stream.
function generator(seed) {
  const rand = random(seed);
  const int = (n) => Math.floor(rand() * n);
  const pick = (list) => list[int(list.length)];
  // A count or cost: the shapes real counts take (integers, spend amounts that
  // add exactly, arbitrary doubles, tiny fractions, zero).
  const amount = (scale) => pick([
    () => int(scale + 1),
    () => int(4 * scale + 1) / 4,
    () => rand() * scale,
    () => rand() * 1e-6,
    () => 0,
  ])();
  return { rand, int, pick, amount };
}

// 1-5 requests of one call, over a pool of keys (so some repeat: a repeated
// key has the same window, algorithm and bucket, and the same counts, as it
// would from a core that named it twice), at one `now`; and the pool.
function callCase(seed) {
  const { rand, int, pick, amount } = generator(seed);
  const now = T0 + int(400 * DAY);
  const pool = Array.from({ length: 1 + int(4) }, (_, k) => {
    const window = pick([1_000, 7_000, 60_000, 3_600_000, DAY, 1 + int(10_000_000), 2 ** 40, 1e15]);
    const max = pick([() => 1 + int(20), () => int(80) / 4, () => rand() * 20]);
    return {
      key: `k${k}`,
      window_ms: window,
      algorithm: rand() < 0.6 ? 'sliding' : 'fixed',
      bucket_start_ms: now - (now % window),
      max: max(),
      state: { current: amount(25), previous: amount(25) },
    };
  });
  const requests = [];
  const states = [];
  for (let i = 1 + int(5); i > 0; i -= 1) {
    const counter = pick(pool);
    requests.push({
      key: counter.key, scope: 'grant', grant: 'g', cost: amount(6), max: counter.max,
      window_ms: counter.window_ms, algorithm: counter.algorithm, bucket_start_ms: counter.bucket_start_ms,
    });
    states.push(counter.state);
  }
  return { requests, states, now, pool };
}

describe('wasm/admission.js and the core', () => {
  const WINDOWS = ['second', 'minute', 'hour', 'day', '10s', '5m', '2h', '3d', 7, 90, 86_400 * 400];

  // A random policy of one tool with 1-4 limits (some sharing a counter), a
  // call to it, and the counts a store holds for the call's counters.
  function policyCase(seed) {
    const { rand, int, pick, amount } = generator(seed);
    const limits = Array.from({ length: 1 + int(4) }, () => {
      const limit = { window: pick(WINDOWS), max: 1 + int(20) };
      if (rand() < 0.5) limit.algorithm = 'sliding';
      if (rand() < 0.3) limit.scope = 'global';
      if (rand() < 0.4) limit.counter = pick(['a', 'b']);
      const cost = rand();
      if (cost < 0.3) limit.cost_from = 'args.amount';
      else if (cost < 0.5) limit.cost = 1 + int(3);
      return limit;
    });
    const now = T0 + int(30 * DAY);
    const call = { tool: 'run', grant: pick(['alice', 'bob']), arguments: { amount: amount(12) } };
    return { tools: { run: { limits } }, call, now, state: () => ({ current: amount(25), previous: amount(25) }) };
  }

  test('property: every limit\'s estimate and verdict, the decision and retry_after_ms are the module\'s (3 000 cases)', async () => {
    let denials = 0;
    let sliding = 0;
    for (let seed = 1; seed <= 3000; seed += 1) {
      const { tools, call, now, state } = policyCase(seed);
      const policy = toolgate.compile({ version: '1', default: 'deny', tools });
      try {
        const pending = policy.evaluate(call, { now });
        assert.equal(pending.pending, true, `case ${seed}: ${JSON.stringify(pending)}`);
        const requests = pending.counters;
        const states = requests.map(state);
        // A store that applies the module's rule and nothing else.
        const counters = {
          async reserve(asked, at) {
            assert.deepEqual(asked, requests);
            return { admitted: admits(asked, states, at), states, charges: [] };
          },
          async commit() {},
          async rollback() {},
        };
        const decision = await policy.explain(call, { now, counters });
        const where = `case ${seed}: ${JSON.stringify({ tools, call, now, states })} -> ${JSON.stringify(decision)}`;

        // What the module says, limit by limit, in the core's order (first
        // denial wins; each limit against its own max).
        const steps = decision.trace.filter((step) => step.step === 'limit');
        let denying = null;
        for (const [i, limit] of pending.limits.entries()) {
          const request = requests[limit.counter];
          const estimate = estimateCount(request, states[limit.counter], now);
          const fits = estimate + request.cost <= limit.max;
          assert.equal(steps[i].counter, request.key, where);
          assert.equal(steps[i].count, estimate, `${where}: limit ${i}'s estimate`);
          assert.equal(steps[i].admitted, fits, `${where}: limit ${i}'s verdict`);
          if (request.algorithm === 'sliding') sliding += 1;
          if (!fits) {
            denying = { limit, request, state: states[limit.counter] };
            break;
          }
        }
        assert.equal(steps.length, denying ? pending.limits.indexOf(denying.limit) + 1 : pending.limits.length, where);
        // The store-level rule (the tightest max per counter) agrees with the
        // limits one by one, or the core would have answered store_error.
        assert.equal(admits(requests, states, now), denying === null, where);
        if (denying) {
          denials += 1;
          assert.equal(decision.code, 'rate_limited', where);
          assert.equal(decision.rule, denying.limit.rule, where);
          assert.equal(decision.retry_after_ms, retryAfterMs(denying.request, denying.state, now, denying.limit.max), `${where}: retry_after_ms`);
        } else {
          assert.equal(decision.code, 'allowed', where);
        }
      } finally {
        policy.dispose();
      }
    }
    // The generator reaches both outcomes and both algorithms often.
    assert.ok(denials > 600 && denials < 2400, `${denials} denials`);
    assert.ok(sliding > 1000, `${sliding} sliding checks`);
  });

  test('the spec\'s worked examples: estimate 5 at half a minute, retry when the old bucket has faded', () => {
    const request = { key: 'k', cost: 1, max: 10, window_ms: 60_000, algorithm: 'sliding', bucket_start_ms: T0 };
    assert.equal(estimateCount(request, { current: 0, previous: 10 }, T0 + 30_000), 5);
    assert.equal(estimateCount({ ...request, algorithm: 'fixed' }, { current: 3, previous: 10 }, T0 + 30_000), 3);
    // Full (previous 10, current 5 at 30 s: estimate 10): one more fits once
    // the previous bucket weighs 4, at 36 s.
    assert.equal(retryAfterMs(request, { current: 5, previous: 10 }, T0 + 30_000), 6_000);
    // A fixed window: the rest of the window.
    assert.equal(retryAfterMs({ ...request, algorithm: 'fixed' }, { current: 10, previous: 0 }, T0 + 45_000), 15_000);
    assert.equal(firstDenied([request, { ...request, key: 'j', max: 0 }], [{ current: 0, previous: 0 }, { current: 0, previous: 0 }], T0), 1);
    // A key named twice: the second copy is checked with the first one's cost.
    assert.equal(firstDenied([{ ...request, max: 1 }, { ...request, max: 1 }], [{ current: 0, previous: 0 }, { current: 0, previous: 0 }], T0), 1);
  });
});

describe('wasm/admission.js and the Redis store\'s Lua, on redis-server', () => {
  let server;
  let client;
  before(async () => {
    server = await startRedis();
    client = createClient({ url: server.url });
    client.on('error', () => {});
    await client.connect();
  });
  after(async () => {
    await client?.close();
    await server?.stop();
  });


  test('property: the same first denial, estimates and retry_after, bit for bit (5 000 cases)', async () => {
    let denied = 0;
    for (let seed = 1; seed <= 5000; seed += 1) {
      const { requests, states, now } = callCase(seed);
      const args = [String(now)];
      requests.forEach((r, i) => args.push(r.key, String(r.cost), String(r.max), String(r.window_ms), r.algorithm,
        String(r.bucket_start_ms), String(states[i].current), String(states[i].previous)));
      const reply = await client.sendCommand(['EVAL', ADMISSION_CHECK_SCRIPT, '0', ...args]);
      const where = `case ${seed}: ${JSON.stringify({ requests, states, now })} -> ${JSON.stringify(reply)}`;
      const first = firstDenied(requests, states, now);
      assert.equal(Number(reply[0]), first + 1, `${where}: first denied`);
      if (first >= 0) denied += 1;
      requests.forEach((request, i) => {
        assert.equal(Number(reply[1 + 2 * i]), estimateCount(request, states[i], now), `${where}: estimate ${i}`);
        assert.equal(Number(reply[2 + 2 * i]), retryAfterMs(request, states[i], now), `${where}: retry_after ${i}`);
      });
    }
    assert.ok(denied > 1000 && denied < 4000, `${denied} denied`);
  });

  test('property: the reserve script admits, reads and charges as the module says (1 500 cases)', async () => {
    let admitted = 0;
    for (let seed = 1; seed <= 1500; seed += 1) {
      const { requests, states, now } = callCase(10_000 + seed);
      const store = new RedisCounterStore({ client, prefix: `adm${seed}`, timeoutMs: 5000 });
      // The case's counts, as Redis would hold them.
      const held = new Map();
      requests.forEach((request, i) => {
        held.set(store.keyOf(request), String(states[i].current));
        held.set(store.keyOf(request, request.bucket_start_ms - request.window_ms), String(states[i].previous));
      });
      await client.mSet([...held]);
      const where = `case ${seed}: ${JSON.stringify({ requests, states, now })}`;
      const reservation = await store.reserve(requests, now);
      const expected = admits(requests, states, now);
      assert.equal(reservation.admitted, expected, `${where}: admitted`);
      assert.deepEqual(reservation.states, states, `${where}: states`);
      const after = new Map();
      for (const request of requests) after.set(store.keyOf(request), Number(await client.get(store.keyOf(request))));
      for (const [key, before] of held) {
        if (!after.has(key)) continue; // a previous bucket: never charged
        const charged = requests.filter((r) => store.keyOf(r) === key).reduce((sum, r) => sum + r.cost, 0);
        const want = expected ? Number(before) + charged : Number(before);
        // INCRBYFLOAT adds in long double and writes the sum with 17 decimal
        // places (%.17Lf): equal to the double sum but for its last bits, or
        // for what lies beyond 1e-17 (worker/stores/README.md, key layout).
        assert.ok(Math.abs(after.get(key) - want) <= 1e-17 + Math.abs(want) * 1e-15, `${where}: ${key} holds ${after.get(key)}, not ${want}`);
      }
      if (expected) admitted += 1;
    }
    assert.ok(admitted > 300 && admitted < 1200, `${admitted} admitted`);
  });
});

// The fourth place: the memory store's counter table in the core
// (core/counter_table.cpp), which a MemoryCounterStore bound to an engine
// instance reserves in (decide() in one crossing). It re-implements the rule
// in C++, so it is held to the module on the same kind of generated calls:
// the table first holds each counter's counts (charged into its previous and
// current buckets), then reserves the call.
describe('wasm/admission.js and the core\'s counter table (a bound MemoryCounterStore)', () => {
  test('property: the table admits, reads and charges as the module and the Map store say (3 000 cases)', async () => {
    const { MemoryCounterStore } = await import('../../wasm/index.js');
    const open = toolgate.compile({ version: '1', default: 'allow' });
    let admitted = 0;
    for (let seed = 1; seed <= 3000; seed += 1) {
      const { requests, states, now, pool } = callCase(20_000 + seed);
      const table = new MemoryCounterStore();
      await open.decide({ tool: 'x', arguments: {}, now }, { counters: table }); // binds it
      const map = new MemoryCounterStore();
      for (const store of [table, map]) {
        for (const { key, window_ms, algorithm, bucket_start_ms, state } of pool) {
          const hold = (start, cost) => store.reserveNow([{ key, cost, max: Infinity, window_ms, algorithm, bucket_start_ms: start }], now);
          hold(bucket_start_ms - window_ms, state.previous);
          hold(bucket_start_ms, state.current);
        }
      }
      const where = `case ${seed}: ${JSON.stringify({ requests, states, now })}`;
      const expected = admits(requests, states, now);
      const reservation = table.reserveNow(requests, now);
      const reference = map.reserveNow(requests, now);
      assert.equal(reservation.admitted, expected, `${where}: admitted`);
      assert.deepEqual(reservation.states, states, `${where}: states`);
      assert.deepEqual(reservation.charges, reference.charges, `${where}: charges`);
      for (const counter of pool) {
        assert.deepEqual(await table.peek([counter]), await map.peek([counter]), `${where}: ${counter.key} after`);
      }
      if (expected) admitted += 1;
    }
    assert.ok(admitted > 600 && admitted < 2400, `${admitted} admitted`);
    open.dispose();
  });
});
