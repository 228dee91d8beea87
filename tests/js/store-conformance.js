// The CounterStore conformance suite (wasm/index.d.ts): what every counter
// store must do for the core's decisions to hold, whatever it keeps counts in.
//
//   import { conformance } from './store-conformance.js';
//   conformance('MyStore', async () => new MyStore(), { cleanup: async (store) => store.close() });
//
// makeStore is called before each test and must return an empty store (or one
// whose counts no other test sees); cleanup(store), if given, runs after each.
// The requests are the ones the core produces (policy.evaluate(...).counters),
// so a store is tested on real keys, windows and bucket starts.
import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { estimateCount, loadToolgate } from '../../wasm/index.js';
import { admits } from '../../wasm/admission.js';
import { random } from './seeded-random.js';

const toolgate = await loadToolgate();

const SECOND = 1_000;
const MINUTE = 60 * SECOND;
export const T0 = Date.UTC(2026, 0, 1); // aligned to every window

/** The counter requests the core makes for `call` under `tools` at `now`. */
export function requestsFor(tools, call, now) {
  const policy = toolgate.compile({ version: '1', default: 'deny', tools });
  try {
    const pending = policy.evaluate(call, { now });
    assert.equal(pending.pending, true, `expected a pending evaluation, got ${JSON.stringify(pending)}`);
    return pending.counters;
  } finally {
    policy.dispose();
  }
}

// The counts a store holds for `request`, through the interface only: a
// reserve that costs nothing and cannot be denied.
async function countsOf(store, request, now) {
  const { states } = await store.reserve([{ ...request, cost: 0, max: Number.MAX_SAFE_INTEGER }], now);
  return states[0];
}

function assertReservation(reservation, requests) {
  assert.equal(typeof reservation.admitted, 'boolean', 'admitted is a boolean');
  assert.ok(Array.isArray(reservation.states), 'states is an array');
  assert.equal(reservation.states.length, requests.length, 'one state per request');
  for (const state of reservation.states) {
    assert.ok(Number.isFinite(state.current) && state.current >= 0, `current ${state.current}`);
    assert.ok(Number.isFinite(state.previous) && state.previous >= 0, `previous ${state.previous}`);
  }
}

async function reserve(store, requests, now) {
  const reservation = await store.reserve(requests, now);
  assertReservation(reservation, requests);
  return reservation;
}

export function conformance(name, makeStore, { cleanup, calls = 300 } = {}) {
  describe(`${name}: CounterStore conformance`, () => {
    let store;
    beforeEach(async () => {
      store = await makeStore();
    });
    afterEach(async () => {
      await cleanup?.(store);
    });

    test('a fixed window admits up to max, then denies; the next epoch-aligned window starts from zero', async () => {
      const tools = { run: { rate_limit: '5/minute' } };
      const call = { tool: 'run', grant: 'alice' };
      const now = T0 + SECOND;
      const requests = requestsFor(tools, call, now);
      assert.equal(requests[0].bucket_start_ms, T0, 'the core aligns the bucket to the epoch');
      for (let i = 0; i < 5; i += 1) {
        const r = await reserve(store, requests, now);
        assert.equal(r.admitted, true, `call ${i + 1} of 5`);
        assert.deepEqual(r.states, [{ current: i, previous: 0 }]);
      }
      const denied = await reserve(store, requests, now);
      assert.equal(denied.admitted, false, 'the sixth call in the minute');
      assert.deepEqual(denied.states, [{ current: 5, previous: 0 }]);
      // The last millisecond of the minute is still the same bucket.
      const late = await reserve(store, requestsFor(tools, call, T0 + MINUTE - 1), T0 + MINUTE - 1);
      assert.equal(late.admitted, false);
      // At :00 the next bucket starts empty; the old one is now "previous".
      const next = requestsFor(tools, call, T0 + MINUTE);
      assert.equal(next[0].bucket_start_ms, T0 + MINUTE);
      const fresh = await reserve(store, next, T0 + MINUTE);
      assert.equal(fresh.admitted, true);
      assert.deepEqual(fresh.states, [{ current: 0, previous: 5 }]);
      // Two windows on, nothing is left of either.
      const later = await reserve(store, requestsFor(tools, call, T0 + 3 * MINUTE), T0 + 3 * MINUTE);
      assert.deepEqual(later.states, [{ current: 0, previous: 0 }]);
    });

    test('states are the counts before the call\'s own charge; a denial charges nothing', async () => {
      const requests = requestsFor({ run: { rate_limit: '2/minute' } }, { tool: 'run', grant: 'alice' }, T0);
      assert.deepEqual((await reserve(store, requests, T0)).states, [{ current: 0, previous: 0 }]);
      assert.deepEqual((await reserve(store, requests, T0)).states, [{ current: 1, previous: 0 }]);
      for (let i = 0; i < 3; i += 1) {
        const denied = await reserve(store, requests, T0);
        assert.equal(denied.admitted, false);
        assert.deepEqual(denied.states, [{ current: 2, previous: 0 }], 'denials leave the count alone');
      }
    });

    test('a key named twice in one call is charged twice, and its second check sees the first', async () => {
      const [request] = requestsFor({ run: { rate_limit: '3/minute' } }, { tool: 'run', grant: 'alice' }, T0);
      assert.equal((await reserve(store, [request, request], T0)).admitted, true);
      const third = await reserve(store, [request, request], T0);
      assert.equal(third.admitted, false, '2 + 2 > 3');
      assert.deepEqual(third.states[0], { current: 2, previous: 0 });
      assert.equal((await reserve(store, [request], T0)).admitted, true, '2 + 1 <= 3');
    });

    test('all or nothing: a denial by the third counter leaves the first two uncharged', async () => {
      const tools = {
        run: {
          limits: [
            { counter: 'a', window: 'minute', max: 10 },
            { counter: 'b', window: 'hour', max: 10 },
            { counter: 'c', window: 'minute', max: 1 },
          ],
        },
      };
      const requests = requestsFor(tools, { tool: 'run', grant: 'alice' }, T0);
      const [a, b, c] = ['a', 'b', 'c'].map((counter) => requests.find((r) => r.key.includes(`"${counter}"`)));
      const ordered = [a, b, c]; // the denying counter last
      assert.equal((await reserve(store, ordered, T0)).admitted, true);
      const denied = await reserve(store, ordered, T0);
      assert.equal(denied.admitted, false);
      assert.deepEqual(denied.states, [
        { current: 1, previous: 0 },
        { current: 1, previous: 0 },
        { current: 1, previous: 0 },
      ]);
      const after = await reserve(store, [a, b], T0);
      assert.equal(after.admitted, true);
      assert.deepEqual(after.states, [{ current: 1, previous: 0 }, { current: 1, previous: 0 }], 'a and b were charged once, by the admitted call');
    });

    test('sliding: previous 10, current 0, 30 s into the minute: estimate 5, so exactly 5 more', async () => {
      const tools = { run: { limits: [{ window: 'minute', max: 10, algorithm: 'sliding' }] } };
      const call = { tool: 'run', grant: 'alice' };
      const before = T0 - 30 * SECOND; // in the previous bucket
      const previous = requestsFor(tools, call, before);
      for (let i = 0; i < 10; i += 1) assert.equal((await reserve(store, previous, before)).admitted, true);
      assert.equal((await reserve(store, previous, before)).admitted, false);

      const now = T0 + 30 * SECOND;
      const requests = requestsFor(tools, call, now);
      assert.equal(requests[0].algorithm, 'sliding');
      assert.equal(estimateCount(requests[0], { current: 0, previous: 10 }, now), 5);
      for (let i = 0; i < 5; i += 1) {
        const r = await reserve(store, requests, now);
        assert.equal(r.admitted, true, `call ${i + 1} of 5`);
        assert.deepEqual(r.states, [{ current: i, previous: 10 }]);
      }
      const denied = await reserve(store, requests, now);
      assert.equal(denied.admitted, false);
      assert.deepEqual(denied.states, [{ current: 5, previous: 10 }]);
      // The previous bucket's weight fades: 45 s in, the estimate is 2.5 + 5, so two more fit.
      const later = T0 + 45 * SECOND;
      const fading = requestsFor(tools, call, later);
      assert.equal((await reserve(store, fading, later)).admitted, true);
      assert.equal((await reserve(store, fading, later)).admitted, true);
      assert.equal((await reserve(store, fading, later)).admitted, false);
    });

    test('fractional costs add up exactly (spend limits)', async () => {
      const tools = {
        pay: { limits: [{ counter: 'spend', window: 'hour', max: 61, cost_from: 'args.amount' }] },
        tip: { limits: [{ counter: 'tips', window: 'hour', max: 1, cost_from: 'args.amount' }] },
      };
      const pay = (amount) => requestsFor(tools, { tool: 'pay', arguments: { amount }, grant: 'alice' }, T0);
      assert.equal(pay(0.5)[0].cost, 0.5);
      assert.equal((await reserve(store, pay(0.5), T0)).admitted, true);
      const big = await reserve(store, pay(60.5), T0);
      assert.equal(big.admitted, true, '0.5 + 60.5 = 61 <= 61');
      assert.deepEqual(big.states, [{ current: 0.5, previous: 0 }]);
      const over = await reserve(store, pay(0.25), T0);
      assert.equal(over.admitted, false);
      assert.deepEqual(over.states, [{ current: 61, previous: 0 }]);
      assert.equal((await reserve(store, pay(0), T0)).admitted, true, 'a cost of 0 fits even when full');

      const tip = (amount) => requestsFor(tools, { tool: 'tip', arguments: { amount }, grant: 'alice' }, T0);
      for (const count of [0, 0.25, 0.5, 0.75]) {
        const r = await reserve(store, tip(0.25), T0);
        assert.equal(r.admitted, true);
        assert.deepEqual(r.states, [{ current: count, previous: 0 }]);
      }
      const full = await reserve(store, tip(0.25), T0);
      assert.equal(full.admitted, false);
      assert.deepEqual(full.states, [{ current: 1, previous: 0 }]);
    });

    test('rollback gives the quota back exactly once; never after commit; never below zero', async () => {
      const requests = requestsFor({ run: { rate_limit: '3/minute' } }, { tool: 'run', grant: 'alice' }, T0);
      const a = await reserve(store, requests, T0);
      const b = await reserve(store, requests, T0);
      assert.deepEqual(await countsOf(store, requests[0], T0), { current: 2, previous: 0 });

      await store.rollback(a);
      assert.deepEqual(await countsOf(store, requests[0], T0), { current: 1, previous: 0 });
      await store.rollback(a);
      assert.deepEqual(await countsOf(store, requests[0], T0), { current: 1, previous: 0 }, 'a second rollback is a no-op');

      await store.commit(b);
      await store.rollback(b);
      assert.deepEqual(await countsOf(store, requests[0], T0), { current: 1, previous: 0 }, 'rollback after commit is a no-op');

      assert.equal((await reserve(store, requests, T0)).admitted, true);
      assert.equal((await reserve(store, requests, T0)).admitted, true);
      const denied = await reserve(store, requests, T0);
      assert.equal(denied.admitted, false);
      await store.rollback(denied);
      assert.deepEqual(await countsOf(store, requests[0], T0), { current: 3, previous: 0 }, 'a denied reservation gives nothing back');

      // Roll everything back, twice over: the count stops at zero.
      const c = await reserve(store, requestsFor({ run: { rate_limit: '3/minute' } }, { tool: 'run', grant: 'bob' }, T0), T0);
      await store.rollback(c);
      await store.rollback(c);
      const bob = requestsFor({ run: { rate_limit: '3/minute' } }, { tool: 'run', grant: 'bob' }, T0);
      assert.deepEqual(await countsOf(store, bob[0], T0), { current: 0, previous: 0 });
    });

    test('a rollback after the window moved on leaves the new bucket alone', async () => {
      const tools = { run: { rate_limit: '3/minute' } };
      const call = { tool: 'run', grant: 'alice' };
      const old = await reserve(store, requestsFor(tools, call, T0), T0);
      const next = requestsFor(tools, call, T0 + MINUTE);
      assert.equal((await reserve(store, next, T0 + MINUTE)).admitted, true);
      await store.rollback(old);
      assert.equal((await countsOf(store, next[0], T0 + MINUTE)).current, 1);
    });

    test('grants are isolated; a global counter is shared', async () => {
      const tools = {
        mine: { rate_limit: '2/minute' },
        ours: { limits: [{ window: 'minute', max: 2, scope: 'global' }] },
      };
      const mine = (grant) => requestsFor(tools, { tool: 'mine', grant }, T0);
      assert.notEqual(mine('alice')[0].key, mine('bob')[0].key);
      assert.equal((await reserve(store, mine('alice'), T0)).admitted, true);
      assert.equal((await reserve(store, mine('alice'), T0)).admitted, true);
      assert.equal((await reserve(store, mine('alice'), T0)).admitted, false);
      const bob = await reserve(store, mine('bob'), T0);
      assert.equal(bob.admitted, true);
      assert.deepEqual(bob.states, [{ current: 0, previous: 0 }]);

      const ours = (grant) => requestsFor(tools, { tool: 'ours', grant }, T0);
      assert.equal(ours('alice')[0].key, ours('bob')[0].key);
      assert.equal((await reserve(store, ours('alice'), T0)).admitted, true);
      assert.equal((await reserve(store, ours('bob'), T0)).admitted, true);
      const carol = await reserve(store, ours('carol'), T0);
      assert.equal(carol.admitted, false);
      assert.deepEqual(carol.states, [{ current: 2, previous: 0 }]);
    });

    test('an empty request list is admitted', async () => {
      const r = await store.reserve([], T0);
      assert.equal(r.admitted, true);
      assert.deepEqual(r.states, []);
    });

    test('1 000 concurrent reserves against max 50 admit exactly 50, each seeing a distinct count', async () => {
      const requests = requestsFor({ run: { rate_limit: '50/minute' } }, { tool: 'run', grant: 'alice' }, T0);
      const results = await Promise.all(Array.from({ length: 1000 }, () => store.reserve(requests, T0)));
      const admitted = results.filter((r) => r.admitted);
      assert.equal(admitted.length, 50);
      // Atomic reserves: the admitted calls saw 0, 1, ..., 49, once each.
      const seen = admitted.map((r) => r.states[0].current).sort((x, y) => x - y);
      assert.deepEqual(seen, Array.from({ length: 50 }, (_, i) => i));
      for (const r of results.filter((r) => !r.admitted)) assert.ok(r.states[0].current >= 50);
      assert.deepEqual(await countsOf(store, requests[0], T0), { current: 50, previous: 0 });
    });

    test('rolling back N concurrently admitted calls restores the count exactly', async () => {
      const tools = {
        run: { rate_limit: '50/minute' },
        pay: { limits: [{ counter: 'spend', window: 'hour', max: 100, cost_from: 'args.amount' }] },
      };
      const run = requestsFor(tools, { tool: 'run', grant: 'alice' }, T0);
      for (let i = 0; i < 5; i += 1) await store.commit(await reserve(store, run, T0));
      const pending = await Promise.all(Array.from({ length: 30 }, () => store.reserve(run, T0)));
      assert.ok(pending.every((r) => r.admitted));
      assert.deepEqual(await countsOf(store, run[0], T0), { current: 35, previous: 0 });
      await Promise.all(pending.map((r) => store.rollback(r)));
      assert.deepEqual(await countsOf(store, run[0], T0), { current: 5, previous: 0 });
      await Promise.all(pending.map((r) => store.rollback(r)));
      assert.deepEqual(await countsOf(store, run[0], T0), { current: 5, previous: 0 }, 'once only, even concurrently');

      const pay = requestsFor(tools, { tool: 'pay', arguments: { amount: 0.25 }, grant: 'alice' }, T0);
      await store.commit(await reserve(store, requestsFor(tools, { tool: 'pay', arguments: { amount: 10.5 }, grant: 'alice' }, T0), T0));
      const spent = await Promise.all(Array.from({ length: 40 }, () => store.reserve(pay, T0)));
      assert.ok(spent.every((r) => r.admitted));
      assert.deepEqual(await countsOf(store, pay[0], T0), { current: 20.5, previous: 0 });
      await Promise.all(spent.map((r) => store.rollback(r)));
      assert.deepEqual(await countsOf(store, pay[0], T0), { current: 10.5, previous: 0 });
    });

    // The store against a model of what it must hold: a count per counter key
    // and fixed bucket, plus what admitted calls charged, minus what was
    // rolled back. Each reserve must read the model's counts (the current and
    // the previous bucket) and admit exactly when the shared admission rule
    // (wasm/admission.js, which tests/js/admission.test.js holds equal to the
    // core's) says so. Costs are quarters, exact in every store's arithmetic.
    test(`property: ${calls} random calls over time (sliding and fixed, grant and global, shared counters, rollbacks): states and verdicts are the model's`, async () => {
      const rand = random(4242);
      const int = (n) => Math.floor(rand() * n);
      const pick = (list) => list[int(list.length)];
      const limit = () => {
        const entry = { counter: pick(['a', 'b', 'c', undefined]), window: pick(['10s', 'minute', 'hour']), max: 1 + int(8) };
        if (rand() < 0.5) entry.algorithm = 'sliding';
        if (rand() < 0.3) entry.scope = 'global';
        if (rand() < 0.4) entry.cost_from = 'args.amount';
        return entry;
      };
      const tools = Object.fromEntries(['t0', 't1', 't2', 't3'].map((tool) => [tool, { limits: Array.from({ length: 1 + int(3) }, limit) }]));
      const policy = toolgate.compile({ version: '1', default: 'deny', tools });
      const held = new Map(); // `${key}@${bucket start}` -> count
      const countOf = (key, start) => held.get(`${key}@${start}`) ?? 0;
      let now = T0 + int(MINUTE);
      let admitted = 0;
      try {
        for (let i = 0; i < calls; i += 1) {
          now += pick([0, 0, int(3 * SECOND), int(40 * SECOND), int(20 * MINUTE)]);
          const call = { tool: pick(Object.keys(tools)), grant: pick(['ann', 'ben']), arguments: { amount: int(13) / 4 } };
          const pending = policy.evaluate(call, { now });
          assert.equal(pending.pending, true);
          const requests = pending.counters;
          const states = requests.map((r) => ({ current: countOf(r.key, r.bucket_start_ms), previous: countOf(r.key, r.bucket_start_ms - r.window_ms) }));
          const where = `call ${i}: ${JSON.stringify({ call, now, requests, states })}`;
          const reservation = await reserve(store, requests, now);
          assert.deepEqual(reservation.states, states, `${where}: states`);
          assert.equal(reservation.admitted, admits(requests, states, now), `${where}: verdict`);
          if (!reservation.admitted) continue;
          admitted += 1;
          for (const r of requests) held.set(`${r.key}@${r.bucket_start_ms}`, countOf(r.key, r.bucket_start_ms) + r.cost);
          if (rand() < 0.2) {
            await store.rollback(reservation);
            for (const r of requests) held.set(`${r.key}@${r.bucket_start_ms}`, Math.max(0, countOf(r.key, r.bucket_start_ms) - r.cost));
          } else {
            await store.commit(reservation);
          }
        }
      } finally {
        policy.dispose();
      }
      assert.ok(admitted > calls / 5 && admitted < calls - calls / 10, `${admitted} of ${calls} admitted: both outcomes, often`);
    });
  });
}
