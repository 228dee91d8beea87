// The memory store's counts kept in the core (core/counter_table.h): a
// MemoryCounterStore bound to an engine instance (wasm/memory-store.js) must
// answer exactly as the same store keeping its counts in a JS Map, the store
// every other adapter is held to. Over seeded sequences:
//  - the store's own API (reserveNow, rollback, commit, peek, size): the same
//    admissions, states, charges and rollbacks, with several keys, a key named
//    twice in one call, both algorithms, windows, a clock going back,
//    rollbacks of earlier reservations (twice, after commit), and the sweep;
//  - decide() in one crossing (toolgate_decide) against decide() over the
//    Map store (start, reserveNow, finish), with authorize() + rollback(),
//    preview() and explain() interleaved: the same decisions and counts.
// And the binding rule: which stores bind, to which instance, and what the
// others do (a store made before any core, a second engine, a store used
// first, a subclass, a restarted engine).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { EngineError, MemoryApprovalStore, MemoryCounterStore, StoreError, loadToolgate } from '../../wasm/index.js';
import { random } from './seeded-random.js';

// Made before any engine is loaded: binds on its first decide().
const early = new MemoryCounterStore();

const T0 = Date.UTC(2026, 0, 1);
const wasmFile = new URL('../../wasm/dist/toolgate_core.wasm', import.meta.url);
const toolgate = await loadToolgate();
const open = toolgate.compile({ version: '1', default: 'allow' });

// A store bound to `engine`'s instance (a decide() that charges nothing binds it).
async function boundStore(engine = toolgate, store = new MemoryCounterStore()) {
  const policy = engine === toolgate ? open : engine.compile({ version: '1', default: 'allow' });
  await policy.decide({ tool: 'x', arguments: {}, now: T0 }, { counters: store });
  return store;
}
// A store that keeps its Map for good: it reserved before any decide().
function mapStore() {
  const store = new MemoryCounterStore();
  store.reserveNow([], 0);
  return store;
}
// Whether a store's counts are in an engine's table: only the table refuses a
// bucket start that is not whole milliseconds (the Map takes any number).
function isBound(store) {
  try {
    // max -1: the Map store admits nothing, so it charges nothing either.
    store.reserveNow([{ key: 'probe', cost: 0, max: -1, window_ms: 1000, bucket_start_ms: 0.5, algorithm: 'fixed' }], 0);
    return false;
  } catch (error) {
    assert.ok(error instanceof StoreError, `a StoreError, got ${error}`);
    assert.match(error.message, /whole milliseconds/);
    return true;
  }
}

const KEYS = ['a', 'b', 'counter:grant:"alice"', 'é-ключ', 'lone \ud800 surrogate', 'lone \udc00 other'];
// A second, a minute, and the longest window a policy can name ("999999999d",
// past 2^53 ms: the table must take the double JS holds for it).
const WINDOWS = [1000, 60000, 86_400_000 * 999_999_999];

// A random call's requests at `now`: 1–4 counters over a few keys (repeats
// included), each at its window's bucket.
function randomRequests(next, now) {
  const count = 1 + Math.floor(next() * 4);
  const requests = [];
  for (let i = 0; i < count; i++) {
    const window = WINDOWS[Math.floor(next() * WINDOWS.length)];
    requests.push({
      key: KEYS[Math.floor(next() * (next() < 0.5 ? 2 : KEYS.length))],
      scope: 'grant',
      grant: 'alice',
      cost: next() < 0.8 ? 1 : Math.floor(next() * 4) + (next() < 0.2 ? 0.5 : 0),
      max: Math.floor(next() * 8),
      window_ms: window,
      algorithm: next() < 0.5 ? 'fixed' : 'sliding',
      bucket_start_ms: Math.floor(now / window) * window,
    });
  }
  return requests;
}

const plain = (reservation) => ({ admitted: reservation.admitted, states: reservation.states, charges: reservation.charges });

test('property: a bound store answers as the Map store, call for call (3 000 seeded sequences)', async () => {
  for (let seed = 1; seed <= 3000; seed++) {
    const next = random(seed);
    const table = await boundStore();
    const map = mapStore();
    assert.ok(isBound(table) && !isBound(map));
    const held = []; // [tableReservation, mapReservation]
    let now = T0 + Math.floor(next() * 120000);
    const steps = 5 + Math.floor(next() * 30);
    for (let step = 0; step < steps; step++) {
      const where = `seed ${seed}, step ${step}`;
      const r = next();
      // The clock: forward within or across windows, sometimes back.
      now += r < 0.1 ? -Math.floor(next() * 90000) : Math.floor(next() * (next() < 0.3 ? 70000 : 800));
      const op = next();
      if (op < 0.6) {
        const requests = randomRequests(next, now);
        const a = table.reserveNow(requests, now);
        const b = map.reserveNow(requests, now);
        assert.deepEqual(plain(a), plain(b), `${where}: reserve ${JSON.stringify(requests)} at ${now}`);
        held.push([a, b]);
      } else if (op < 0.8 && held.length > 0) {
        // Roll back an earlier reservation (maybe again, maybe after its commit).
        const [a, b] = held[Math.floor(next() * held.length)];
        await table.rollback(a);
        await map.rollback(b);
      } else if (op < 0.9 && held.length > 0) {
        const [a, b] = held[Math.floor(next() * held.length)];
        await table.commit(a);
        await map.commit(b);
      } else {
        const requests = randomRequests(next, now);
        assert.deepEqual(await table.peek(requests), await map.peek(requests), `${where}: peek`);
      }
      assert.equal(table.size, map.size, `${where}: size`);
    }
    // Every key at every window, after the whole sequence.
    for (const key of KEYS) {
      for (const window_ms of WINDOWS) {
        const requests = [{ key, window_ms, bucket_start_ms: Math.floor(now / window_ms) * window_ms }];
        assert.deepEqual(await table.peek(requests), await map.peek(requests), `seed ${seed}: final ${key}/${window_ms}`);
      }
    }
  }
});

test('the sweep drops the same buckets as the Map store, once 10 000 keys are held', async () => {
  const table = await boundStore();
  const map = mapStore();
  const charge = (store, key, now, window_ms = 1000) =>
    store.reserveNow([{ key, cost: 1, max: 10, window_ms, algorithm: 'fixed', bucket_start_ms: Math.floor(now / window_ms) * window_ms }], now);
  for (let i = 0; i < 10_000; i++) {
    // Half the keys on a long window: those outlive the sweep.
    const window = i % 2 === 0 ? 1000 : 3_600_000;
    assert.deepEqual(plain(charge(table, `k${i}`, T0, window)), plain(charge(map, `k${i}`, T0, window)));
  }
  assert.equal(table.size, 10_000);
  // 2 s later: the 1 s buckets are two windows old and go; within the second
  // after, no second sweep runs (a newly stale key stays).
  for (const at of [T0 + 2000, T0 + 2500, T0 + 3100, T0 + 3200, T0 + 10_000]) {
    assert.deepEqual(plain(charge(table, `late${at}`, at)), plain(charge(map, `late${at}`, at)));
    assert.equal(table.size, map.size, `size at ${at - T0} ms`);
  }
  assert.ok(table.size < 6000, `the sweep ran (size ${table.size})`);
  for (let i = 0; i < 10_000; i += 7) {
    const window_ms = i % 2 === 0 ? 1000 : 3_600_000;
    const requests = [{ key: `k${i}`, window_ms, bucket_start_ms: Math.floor((T0 + 10_000) / window_ms) * window_ms }];
    assert.deepEqual(await table.peek(requests), await map.peek(requests), `k${i} after the sweeps`);
  }
});

// decide() in one crossing against decide() over the Map store.
const policyText = {
  version: '1',
  default: 'deny',
  tools: {
    refund: {
      require: [{ path: 'args.currency', op: 'in', value: ['usd', 'eur'] }],
      limits: [
        { counter: 'refunds', window: 'minute', max: 3 },
        { counter: 'big', window: 'hour', max: 6, scope: 'global', algorithm: 'sliding', cost_from: 'args.units' },
      ],
    },
    read: { limits: [{ counter: 'reads', window: 'second', max: 2, key: 'args.path' }, { counter: 'reads', window: 'second', max: 2, key: 'args.path' }] },
    shared: { limits: [{ counter: 'refunds', window: 'minute', max: 3 }, { counter: 'ever', window: '999999999d', max: 40, algorithm: 'sliding' }] },
    approve: { action: 'require_approval', rate_limit: '2/minute' },
    open: {},
  },
};

function randomCall(next, now) {
  const tool = ['refund', 'read', 'shared', 'approve', 'open', 'unknown'][Math.floor(next() * 6)];
  const grant = ['alice', 'bob', { id: 'carol', role: 'x' }][Math.floor(next() * 3)];
  const args = {
    currency: next() < 0.9 ? 'usd' : 'gbp',
    units: Math.floor(next() * 3) + 1,
    path: ['/a', '/b', '/ü'][Math.floor(next() * 3)],
  };
  return { tool, arguments: args, grant, now };
}

test('property: decide() in one crossing decides as decide() over the Map store (600 seeded sequences)', async () => {
  const policy = toolgate.compile(policyText);
  for (let seed = 1; seed <= 600; seed++) {
    const next = random(90_000 + seed);
    const table = await boundStore();
    const map = mapStore();
    // An approval store each: each side uses its approvals up.
    const approvalsA = new MemoryApprovalStore();
    const approvalsB = new MemoryApprovalStore();
    let now = T0 + Math.floor(next() * 3_600_000);
    for (let step = 0; step < 40; step++) {
      const where = `seed ${seed}, step ${step}`;
      now += next() < 0.1 ? -Math.floor(next() * 120_000) : Math.floor(next() * (next() < 0.2 ? 90_000 : 700));
      const call = randomCall(next, now);
      if (call.tool === 'approve' && next() < 0.5) {
        const first = policy.evaluate(call);
        if (first.approval) {
          await approvalsA.approve(first.approval.id, now);
          await approvalsB.approve(first.approval.id, now);
        }
      }
      const op = next();
      if (op < 0.75) {
        const a = await policy.decide(call, { counters: table, approvals: approvalsA });
        const b = await policy.decide(call, { counters: map, approvals: approvalsB });
        assert.deepEqual(a, b, `${where}: ${JSON.stringify(call)}`);
      } else if (op < 0.9) {
        // The proxy's path: authorize(), then roll back (the upstream failed) or commit.
        const a = await policy.authorize(call, { counters: table });
        const b = await policy.authorize(call, { counters: map });
        assert.deepEqual(a.decision, b.decision, `${where}: authorize`);
        if (next() < 0.5) {
          await a.rollback();
          await b.rollback();
        } else {
          await a.commit();
          await b.commit();
        }
      } else if (op < 0.95) {
        const a = await policy.preview(call, { counters: table });
        const b = await policy.preview(call, { counters: map });
        assert.deepEqual(a, b, `${where}: preview`);
      } else {
        const a = await policy.explainWithCounters(call, { counters: table, now });
        const b = await policy.explainWithCounters(call, { counters: map, now });
        assert.deepEqual(a, b, `${where}: explain`);
      }
    }
    assert.equal(table.size, map.size, `seed ${seed}: size`);
  }
  policy.dispose();
});

test('binding: a store made before any engine binds on its first decide(); one used first, or a subclass, never does', async () => {
  const policy = toolgate.compile({ version: '1', default: 'deny', tools: { run: { rate_limit: '2/minute' } } });
  const call = { tool: 'run', arguments: {}, grant: 'alice', now: T0 };
  assert.equal((await policy.decide(call, { counters: early })).code, 'allowed');
  assert.ok(isBound(early));
  assert.equal((await policy.decide(call, { counters: early })).code, 'allowed');
  assert.equal((await policy.decide(call, { counters: early })).code, 'rate_limited');

  // Used through its own API first: its counts stay in the Map, and decide() uses them.
  const used = new MemoryCounterStore();
  const first = policy.evaluate(call);
  used.reserveNow(first.counters, T0);
  assert.equal((await policy.decide(call, { counters: used })).code, 'allowed');
  assert.equal((await policy.decide(call, { counters: used })).code, 'rate_limited');
  assert.ok(!isBound(used));

  // Through authorize() first (the proxy): the Map too.
  const proxied = new MemoryCounterStore();
  await (await policy.authorize(call, { counters: proxied })).commit();
  await policy.decide(call, { counters: proxied });
  assert.ok(!isBound(proxied));

  // A subclass that replaces reserveNow, or an instance whose commitNow was replaced.
  class Logged extends MemoryCounterStore {
    log = [];
    reserveNow(requests, now) {
      this.log.push(requests.length);
      return super.reserveNow(requests, now);
    }
  }
  const logged = new Logged();
  await policy.decide(call, { counters: logged });
  assert.deepEqual(logged.log, [1], 'decide() called its reserveNow');
  assert.ok(!isBound(logged));
  const patched = new MemoryCounterStore();
  let commits = 0;
  patched.commitNow = (reservation) => { commits += 1; MemoryCounterStore.prototype.commitNow.call(patched, reservation); };
  await policy.decide(call, { counters: patched });
  assert.equal(commits, 1, 'decide() called its commitNow');
  policy.dispose();
});

test('binding: a store bound to one engine is shared with a second engine, and survives its engine\'s restart', async () => {
  const other = await loadToolgate({ wasmBinary: await readFile(wasmFile) });
  const text = { version: '1', default: 'deny', tools: { run: { rate_limit: '3/minute' } } };
  const here = toolgate.compile(text);
  const there = other.compile(text);
  const store = await boundStore();
  const call = { tool: 'run', arguments: {}, grant: 'dave', now: T0 };
  assert.equal((await here.decide(call, { counters: store })).code, 'allowed'); // one crossing
  assert.equal((await there.decide(call, { counters: store })).code, 'allowed'); // the other engine: through the table's API
  const explained = await there.explainWithCounters(call, { counters: store, now: T0 });
  assert.equal(explained.decision.code, 'allowed');
  assert.deepEqual(explained.states, [{ current: 2, previous: 0 }], 'the other engine read the counts of the bound one');
  assert.equal((await here.decide(call, { counters: store })).code, 'rate_limited');
  assert.equal((await there.decide(call, { counters: store })).code, 'rate_limited');
  // A store bound to the second engine, whose engine then restarts: the
  // counts stay where they were (the old instance's table), never reset.
  const second = await boundStore(other);
  assert.equal((await there.decide(call, { counters: second })).code, 'allowed');
  assert.throws(() => other.callCore((core) => core._toolgate_finish(0xfffffff0, 1, 1, 0)), EngineError);
  await other.ready();
  assert.equal(other.generation, 1);
  for (let i = 0; i < 2; i++) assert.equal((await there.decide(call, { counters: second })).code, 'allowed');
  assert.equal((await there.decide(call, { counters: second })).code, 'rate_limited', 'three charges in all, across the restart');
  assert.equal(second.size, 1);
  here.dispose();
  there.dispose();
});

test('a bound store rolls back a reservation once, and only its own', async () => {
  const policy = toolgate.compile({ version: '1', default: 'deny', tools: { run: { rate_limit: '1/minute' } } });
  const store = await boundStore();
  const call = { tool: 'run', arguments: {}, grant: 'erin', now: T0 };
  const answer = await policy.authorize(call, { counters: store });
  assert.equal(answer.decision.code, 'allowed');
  const forged = { admitted: true, states: [], charges: [{ key: policy.evaluate(call).counters[0].key, start: T0, cost: 1 }] };
  await store.rollback(forged); // not a reservation this module made: nothing given back
  assert.equal((await policy.decide(call, { counters: store })).code, 'rate_limited');
  await answer.rollback(); // the upstream call failed
  await answer.rollback(); // twice: given back once
  assert.equal((await policy.decide(call, { counters: store })).code, 'allowed');
  assert.equal((await policy.decide(call, { counters: store })).code, 'rate_limited');
  policy.dispose();
});

test('a bound store refuses requests it cannot hold exactly, with a clear error, and charges nothing', async () => {
  const store = await boundStore();
  const good = { key: 'k', cost: 1, max: 5, window_ms: 1000, bucket_start_ms: T0, algorithm: 'fixed' };
  for (const bad of [
    { ...good, key: 42 },
    { ...good, cost: '1' },
    { ...good, max: undefined },
    { ...good, window_ms: 1.5 },
    { ...good, bucket_start_ms: 2 ** 63 },
    { ...good, window_ms: Infinity },
    { ...good, window_ms: NaN },
    null,
  ]) {
    assert.throws(() => store.reserveNow([good, bad], T0), StoreError, JSON.stringify(bad));
  }
  assert.throws(() => store.reserveNow([good], 'now'), StoreError);
  assert.equal(store.size, 0, 'nothing was charged');
  // decide() turns a store error into store_error (fail closed).
  const policy = toolgate.compile({ version: '1', default: 'deny', tools: { run: { rate_limit: '1/minute' } } });
  const failing = await boundStore();
  failing.reserveNow = () => { throw new StoreError('down'); };
  const decision = await policy.decide({ tool: 'run', arguments: {}, now: T0 }, { counters: failing });
  assert.equal(decision.code, 'store_error');
  policy.dispose();
});

test('decide() in one crossing reserves at the call\'s own time: a sliding window\'s edge, to the millisecond', async () => {
  // 10 units in one minute's bucket; half way into the next minute the
  // estimate is 10 * 30 000 / 60 000 = 5, so 5 more fit and 5.0001 do not.
  // One millisecond later the estimate is 4.99983..., and 5.0001 fits.
  const text = { version: '1', default: 'deny', tools: { spend: { limits: [{ counter: 's', window: 'minute', max: 10, algorithm: 'sliding', cost_from: 'args.units' }] } } };
  const policy = toolgate.compile(text);
  for (const store of [await boundStore(), mapStore()]) {
    const spend = (units, now) => policy.decide({ tool: 'spend', arguments: { units }, grant: 'g', now }, { counters: store });
    assert.equal((await spend(10, T0)).code, 'allowed');
    const half = T0 + 90_000;
    assert.equal((await spend(5.0001, half)).code, 'rate_limited', `${isBound(store) ? 'table' : 'map'}: just over the edge`);
    assert.equal((await spend(5.0001, half + 1)).code, 'allowed', 'a millisecond later it fits');
    assert.equal((await spend(0.001, half + 2)).code, 'rate_limited');
  }
  policy.dispose();
});

test('a bound store reads each request once: a getter that changes its answer cannot make a rollback miss its charge', async () => {
  const store = await boundStore();
  let reads = 0;
  const request = {
    get key() { reads += 1; return reads === 1 ? 'charged' : 'other'; },
    cost: 1, max: 5, window_ms: 60000, bucket_start_ms: T0, algorithm: 'fixed',
  };
  const reservation = store.reserveNow([request], T0);
  assert.equal(reads, 1, 'the key was read once');
  assert.deepEqual(reservation.charges, [{ key: 'charged', start: T0, cost: 1 }]);
  const at = (key) => store.peek([{ key, window_ms: 60000, bucket_start_ms: T0 }]);
  assert.deepEqual(await at('charged'), [{ current: 1, previous: 0 }]);
  await store.rollback(reservation);
  assert.deepEqual(await at('charged'), [{ current: 0, previous: 0 }], 'given back where it was charged');
  assert.equal(store.size, 1, 'no other key was touched');
});
