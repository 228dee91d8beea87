// RedisCounterStore (worker/stores/redis.js) on a real redis-server: the
// CounterStore conformance suite, then what is Redis's own: key layout and
// TTLs, calls spanning hash tags, scripts lost by the server, timeouts, a
// server that goes away (fail closed), and decisions through a compiled policy.
//
// Starts its own redis-server (./redis-server.js); stopped in after(), and by a
// watchdog if this process dies first.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createClient } from 'redis';

import { loadToolgate } from '../../wasm/index.js';
import { RedisCounterStore, createRedisCounterStore } from '../../worker/stores/redis.js';
import { slotOf } from '../../worker/stores/redis-commands.js';
import { T0, conformance, requestsFor } from './store-conformance.js';
import { MISSING, REDIS_SERVER, freePort, startRedis } from './redis-server.js';
import { waitFor } from './proxy-helpers.js';
import { random } from './seeded-random.js';

const SECOND = 1_000;
const MINUTE = 60 * SECOND;

// Every top-level await comes before the first test or hook is registered:
// node:test runs registered tests while the module still awaits, and once they
// are done it runs the file's after() hooks, before the tests registered after
// the await (seen: the Redis client closed under the remaining tests).
const toolgate = await loadToolgate();

// Without the server every test below fails (in before()); this one says why.
test('redis-server is installed', () => {
  assert.ok(existsSync(REDIS_SERVER), MISSING);
});

let server;
let client; // the tests' own connection, to look at keys
const errors = []; // connection errors reported by the clients

before(async () => {
  server = await startRedis();
  client = createClient({ url: server.url });
  client.on('error', (error) => errors.push(error));
  await client.connect();
});

after(async () => {
  await client?.close();
  await server?.stop();
});

let stores = 0;
// Each store gets its own prefix, so tests never see each other's counts. A
// generous timeout: 1 000 concurrent scripts on a loaded CI machine.
const newStore = (options = {}) => new RedisCounterStore({ client, prefix: `t${(stores += 1)}`, timeoutMs: 5000, ...options });

conformance('RedisCounterStore', () => newStore());

// The hash tag Redis Cluster hashes: the text between the first '{' and the
// next '}', when not empty.
function hashTag(key) {
  const open = key.indexOf('{');
  const close = open < 0 ? -1 : key.indexOf('}', open + 1);
  return close > open + 1 ? key.slice(open + 1, close) : null;
}

describe('RedisCounterStore on redis-server', () => {
  test('keys are prefix:{tag}:key:bucket_start, the tag is the grant or "global:" and the counter key, and live two windows', async () => {
    const store = newStore({ prefix: 'layout' });
    const tools = {
      run: { rate_limit: '5/minute' },
      all: { limits: [{ window: 'minute', max: 5, scope: 'global' }] },
      day: { limits: [{ window: 'day', max: 5 }] },
    };
    const alice = requestsFor(tools, { tool: 'run', grant: 'alice' }, T0);
    const hostile = requestsFor(tools, { tool: 'run', grant: '}x{%' }, T0);
    const global = requestsFor(tools, { tool: 'all', grant: 'alice' }, T0);
    const day = requestsFor(tools, { tool: 'day', grant: 'alice' }, T0);
    for (const requests of [alice, hostile, global, day]) assert.equal((await store.reserve(requests, T0)).admitted, true);

    const keys = (await client.keys('layout:*')).sort();
    assert.deepEqual(keys, [
      `layout:{%7Dx%7B%25}:${hostile[0].key}:${T0}`,
      `layout:{alice}:${alice[0].key}:${T0}`,
      `layout:{alice}:${day[0].key}:${T0}`,
      `layout:{global:${global[0].key}}:${global[0].key}:${T0}`,
    ].sort());
    assert.equal(store.keyOf(alice[0]), `layout:{alice}:${alice[0].key}:${T0}`);
    assert.equal(store.keyOf(alice[0], T0 - MINUTE), `layout:{alice}:${alice[0].key}:${T0 - MINUTE}`, 'the previous bucket');
    assert.deepEqual(keys.map(hashTag).sort(), ['%7Dx%7B%25', 'alice', 'alice', `global:${global[0].key}`]);
    assert.equal(await client.get(store.keyOf(alice[0])), '1');

    for (const [requests, window] of [[alice, MINUTE], [global, MINUTE], [day, 24 * 60 * MINUTE]]) {
      const ttl = await client.pTTL(store.keyOf(requests[0]));
      assert.ok(ttl > 2 * window - 10 * SECOND && ttl <= 2 * window, `TTL ${ttl} ms for a ${window} ms window`);
    }
  });

  for (const cluster of [false, true]) test(`a call mixing grant and global counters is all or nothing, whichever part denies (cluster: ${cluster})`, async () => {
    const store = newStore({ cluster });
    const tools = {
      run: {
        limits: [
          { counter: 'mine', window: 'minute', max: 10 },
          { counter: 'all', window: 'minute', max: 1, scope: 'global' },
        ],
      },
    };
    const parts = (grant) => {
      const requests = requestsFor(tools, { tool: 'run', grant }, T0);
      return { mine: requests.find((r) => r.scope === 'grant'), all: requests.find((r) => r.scope === 'global') };
    };
    const alice = parts('alice');
    const bob = parts('bob');
    assert.equal((await store.reserve([alice.mine, alice.all], T0)).admitted, true);
    // The global counter denies (whichever part runs first): the grant's charge, if any, comes back.
    const denied = await store.reserve([bob.mine, bob.all], T0);
    assert.equal(denied.admitted, false);
    assert.deepEqual(denied.states, [{ current: 0, previous: 0 }, { current: 1, previous: 0 }]);
    assert.deepEqual(denied.charges, []);
    assert.deepEqual(await store.peek([bob.mine, bob.all]), [{ current: 0, previous: 0 }, { current: 1, previous: 0 }]);
    // One script per slot on a Cluster, in slot order: when the grant's slot
    // comes first its part is charged, then given back; else it is only read.
    // One script for the call on a single Redis: never charged.
    const grantFirst = slotOf(store.keyOf(bob.mine)) < slotOf(store.keyOf(bob.all));
    assert.equal(await client.get(store.keyOf(bob.mine)), cluster && grantFirst ? '0' : null);

    // The grant's counter denies: the global charge, if any, comes back.
    const carolTools = {
      run: {
        limits: [
          { counter: 'mine', window: 'minute', max: 1 },
          { counter: 'everyone', window: 'minute', max: 10, scope: 'global' },
        ],
      },
    };
    const carol = requestsFor(carolTools, { tool: 'run', grant: 'carol' }, T0);
    const ordered = [carol.find((r) => r.scope === 'global'), carol.find((r) => r.scope === 'grant')];
    assert.equal((await store.reserve(ordered, T0)).admitted, true);
    const second = await store.reserve(ordered, T0);
    assert.equal(second.admitted, false);
    assert.deepEqual(second.states, [{ current: 1, previous: 0 }, { current: 1, previous: 0 }]);
    assert.deepEqual(await store.peek(ordered), [{ current: 1, previous: 0 }, { current: 1, previous: 0 }]);

    // Through the policy: the store's states let the core name the limit that denied.
    const policy = toolgate.compile({ version: '1', default: 'deny', tools });
    const counters = newStore({ cluster });
    assert.equal((await policy.decide({ tool: 'run', grant: 'alice' }, { counters, now: T0 })).code, 'allowed');
    const decision = await policy.decide({ tool: 'run', grant: 'bob' }, { counters, now: T0 });
    assert.equal(decision.code, 'rate_limited');
    assert.equal(decision.rule, '/tools/run/limits/1');
    policy.dispose();
  });

  test('one round trip per call on a single Redis, grant and global counters together; one per slot on a Cluster', async () => {
    const tools = { run: { limits: [{ counter: 'mine', window: 'minute', max: 10 }, { counter: 'all', window: 'minute', max: 10, scope: 'global' }] } };
    const requests = requestsFor(tools, { tool: 'run', grant: 'dave' }, T0);
    const scripts = async () => {
      const stats = await client.sendCommand(['INFO', 'commandstats']);
      return [...stats.matchAll(/cmdstat_(evalsha|eval):calls=(\d+)/g)].reduce((sum, m) => sum + Number(m[2]), 0);
    };
    for (const [cluster, trips] of [[false, 1], [true, 2]]) {
      const store = newStore({ cluster, prefix: `trips${cluster}` });
      await store.loadScripts();
      const before = await scripts();
      const reservation = await store.reserve(requests, T0);
      assert.equal(reservation.admitted, true);
      await store.commit(reservation);
      assert.equal(await scripts() - before, trips, `cluster: ${cluster}`);
    }
  });

  // reserve() is a plain function returning the command's promise (no async
  // layers on the reply's way back): bad input must still come back as a
  // rejected promise, never a synchronous throw, and reach no Redis.
  test('malformed requests: reserve() and peek() reject (never throw) and send nothing to Redis', async () => {
    const [good] = requestsFor({ run: { rate_limit: '5/minute' } }, { tool: 'run', grant: 'alice' }, T0);
    const scripts = async () => {
      const stats = await client.sendCommand(['INFO', 'commandstats']);
      return [...stats.matchAll(/cmdstat_(evalsha|eval|get|incrbyfloat):calls=(\d+)/g)].reduce((sum, m) => sum + Number(m[2]), 0);
    };
    for (const cluster of [false, true]) {
      const store = newStore({ cluster });
      await store.loadScripts();
      const before = await scripts();
      const cases = [
        [null, T0, /array of counter requests/],
        [[{ ...good, key: 5 }], T0, /counter request 0: key is not a string/],
        [[good, { ...good, cost: Number.NaN }], T0, /counter request 1: cost/],
        [[{ ...good, scope: 'tenant' }], T0, /scope/],
        [[{ ...good, window_ms: 1.5 }], T0, /window_ms/],
        [[good], 1.5, /`now`/],
        [[good], undefined, /`now`/],
      ];
      for (const [requests, now, message] of cases) {
        let answer;
        assert.doesNotThrow(() => { answer = store.reserve(requests, now); });
        assert.ok(answer instanceof Promise);
        await assert.rejects(answer, (error) => error instanceof TypeError && message.test(error.message));
        if (now !== undefined) await assert.rejects(store.peek(requests, now), TypeError);
      }
      assert.equal(await scripts(), before, `cluster: ${cluster}: nothing reached Redis`);
      // And the store goes on answering well-formed calls.
      assert.equal((await store.reserve([good], T0)).admitted, true);
    }
  });

  test('a key repeated within one call counts every copy', async () => {
    const store = newStore();
    const [request] = requestsFor({ run: { rate_limit: '1/minute' } }, { tool: 'run', grant: 'alice' }, T0);
    const twice = await store.reserve([request, request], T0);
    assert.equal(twice.admitted, false, '1 + 1 > 1');
    assert.deepEqual(await store.peek([request]), [{ current: 0, previous: 0 }]);
    const roomy = { ...request, max: 2 };
    const both = await store.reserve([roomy, roomy], T0);
    assert.equal(both.admitted, true);
    assert.deepEqual(both.states, [{ current: 0, previous: 0 }, { current: 0, previous: 0 }]);
    assert.deepEqual(await store.peek([request]), [{ current: 2, previous: 0 }]);
    await store.rollback(both);
    assert.deepEqual(await store.peek([request]), [{ current: 0, previous: 0 }]);
  });

  test('rollback clamps at zero, keeps the TTL and never recreates an expired bucket', async () => {
    const store = newStore();
    const [request] = requestsFor({ pay: { limits: [{ window: 'minute', max: 10, cost_from: 'args.n' }] } }, { tool: 'pay', arguments: { n: 2 }, grant: 'alice' }, T0);
    const key = store.keyOf(request);
    const first = await store.reserve([request], T0);
    await client.set(key, '0.5', { KEEPTTL: true }); // less than the charge (2)
    await store.rollback(first);
    assert.equal(await client.get(key), '0');
    assert.ok((await client.pTTL(key)) > 0, 'the TTL survives');

    const second = await store.reserve([request], T0);
    await client.del(key);
    await store.rollback(second);
    assert.equal(await client.exists(key), 0);
  });

  test('scripts lost by the server (SCRIPT FLUSH, a restart) are sent again', async () => {
    const store = newStore();
    const [request] = requestsFor({ run: { rate_limit: '5/minute' } }, { tool: 'run', grant: 'alice' }, T0);
    assert.equal((await store.reserve([request], T0)).admitted, true);
    await client.scriptFlush();
    const again = await store.reserve([request], T0);
    assert.equal(again.admitted, true);
    assert.deepEqual(again.states, [{ current: 1, previous: 0 }]);
    await client.scriptFlush();
    await store.rollback(again);
    assert.deepEqual(await store.peek([request]), [{ current: 1, previous: 0 }]);
  });

  test('a Redis that does not answer in time: reserve rejects; a late charge is given back', async () => {
    // Only the paused call is to run out of the timeout: far above what an
    // unpaused command takes on a loaded machine (150 ms timed out SCRIPT LOAD).
    const store = newStore({ timeoutMs: 1000 });
    const [request] = requestsFor({ run: { rate_limit: '5/minute' } }, { tool: 'run', grant: 'alice' }, T0);
    await store.loadScripts();
    // Write commands (EVALSHA included) wait until the test lets them run
    // (pauseWrites below; 60 s only if the test dies). A pause of fixed length
    // could end before the timeout on a loaded machine.
    const unpause = await pauseWrites(60_000);
    const started = performance.now();
    try {
      await assert.rejects(store.reserve([request], T0), /did not answer within 1000 ms/);
    } finally {
      await unpause();
    }
    const waited = performance.now() - started;
    assert.ok(waited >= 990, `rejected after ${Math.round(waited)} ms`);
    // When the pause ends the script runs and charges; the store takes it back.
    await waitFor(async () => (await client.get(store.keyOf(request))) === '0', 'the late charge given back');
    assert.equal(await client.get(store.keyOf(request)), '0', 'the late charge was given back');
  });

  // A process too busy to read is not a silent Redis (issue #12). Every loop
  // turn here spends HOG_MS in a setImmediate, longer than the store's 250 ms:
  // each timer fires late, before the loop has read Redis's answers, and
  // node-redis writes one 16 KiB socket buffer of scripts per turn (this
  // client has Node's default high-water mark), so most scripts reach Redis
  // turns after they were sent. A deadline on the wall clock rejected them.
  const HOG_MS = 300;
  function hogTheLoop(ms = HOG_MS) {
    let hogging = true;
    const hog = () => {
      const until = performance.now() + ms;
      while (performance.now() < until) { /* a turn busy with other requests */ }
      if (hogging) setImmediate(hog);
    };
    setImmediate(hog);
    return () => { hogging = false; };
  }

  // Pauses Redis's write commands (EVALSHA included) from every client for
  // `ms`; resolves to unpause(). From a connection of its own: on the
  // store's, CLIENT UNPAUSE would wait behind the paused script.
  async function pauseWrites(ms) {
    const pauser = createClient({ url: server.url });
    pauser.on('error', (error) => errors.push(error));
    await pauser.connect();
    await pauser.sendCommand(['CLIENT', 'PAUSE', String(ms), 'WRITE']);
    return async () => {
      await pauser.sendCommand(['CLIENT', 'UNPAUSE']);
      await pauser.close();
    };
  }

  test('a loop too busy to read the answers in time: a burst still admits exactly max, none rejects', async () => {
    const store = newStore({ timeoutMs: 250 });
    const [request] = requestsFor({ run: { rate_limit: '5/minute' } }, { tool: 'run', grant: 'alice' }, T0);
    await store.loadScripts();
    const stop = hogTheLoop();
    let outcomes;
    try {
      outcomes = await Promise.allSettled(Array.from({ length: 300 }, () => store.reserve([request], T0)));
    } finally {
      stop();
    }
    const rejected = outcomes.filter((o) => o.status === 'rejected').map((o) => o.reason.message);
    assert.deepEqual(rejected, []);
    assert.equal(outcomes.filter((o) => o.value.admitted).length, 5);
    assert.equal(await client.get(store.keyOf(request)), '5');
  });

  // The same class, open-ended: random policies (grant and global limits, one
  // or two per tool, a shared counter, costs), random grants and calls, all at
  // once while every loop turn is busy for longer than timeoutMs. Whatever the
  // mix: no reserve rejects, no count exceeds its max, Redis holds exactly
  // what the admitted calls charged, and every denied call had a limit that
  // was full (the store never denies while there is room).
  test('property: bursts of random calls on random limits while the loop is busy: none rejects, admitted up to exactly full', async () => {
    for (let seed = 1; seed <= 4; seed++) {
      const next = random(seed);
      const pick = (list) => list[Math.floor(next() * list.length)];
      // A limit of its own, or the one counter all tools share (one max for
      // its key; a tool may name it twice, so one call charges it twice).
      const limit = (i) => (next() < 0.3
        ? { counter: 'shared', window: 'minute', max: 6, scope: 'global' }
        : {
          counter: `c${i}`, window: pick(['minute', 'hour']), max: 1 + Math.floor(next() * 8),
          scope: pick(['grant', 'global']), cost: 1 + Math.floor(next() * 2), algorithm: pick(['fixed', 'sliding']),
        });
      const tools = {};
      for (let t = 0; t < 3; t++) tools[`t${t}`] = { limits: Array.from({ length: 1 + Math.floor(next() * 2) }, (_, i) => limit(`${t}_${i}`)) };
      const grants = Array.from({ length: 1 + Math.floor(next() * 3) }, (_, g) => `g${g}`);
      const calls = Array.from({ length: 150 }, () => ({ tool: pick(Object.keys(tools)), grant: pick(grants) }));
      const store = newStore({ timeoutMs: 100 });
      await store.loadScripts();
      const requestsOf = calls.map((call) => requestsFor(tools, call, T0));
      const stop = hogTheLoop(150);
      let outcomes;
      try {
        outcomes = await Promise.allSettled(requestsOf.map((requests) => store.reserve(requests, T0)));
      } finally {
        stop();
      }
      const context = `seed ${seed}: ${JSON.stringify(tools)}`;
      assert.deepEqual(outcomes.filter((o) => o.status === 'rejected').map((o) => o.reason.message), [], context);
      const charged = new Map(); // key -> { request, sum of admitted costs }
      outcomes.forEach(({ value }, i) => {
        for (const request of requestsOf[i]) {
          const entry = charged.get(request.key) ?? { request, sum: 0 };
          if (value.admitted) entry.sum += request.cost;
          charged.set(request.key, entry);
        }
      });
      for (const { request, sum } of charged.values()) {
        const held = Number(await client.get(store.keyOf(request)) ?? '0');
        assert.equal(held, sum, `${context}: ${request.key} holds ${held}, admitted calls charged ${sum}`);
        assert.ok(held <= request.max, `${context}: ${request.key} holds ${held} > max ${request.max}`);
      }
      outcomes.forEach(({ value }, i) => {
        if (value.admitted) return;
        const needs = new Map(); // what this call would add to each of its keys
        for (const r of requestsOf[i]) needs.set(r.key, (needs.get(r.key) ?? 0) + r.cost);
        const full = requestsOf[i].some((r) => charged.get(r.key).sum + needs.get(r.key) > r.max);
        assert.ok(full, `${context}: call ${i} ${JSON.stringify(calls[i])} was denied with room on every limit`);
      });
    }
  });

  test('a Redis that stalls while the loop is busy: reserve still rejects, long before the stall ends', async () => {
    const store = newStore({ timeoutMs: 250 });
    const [request] = requestsFor({ run: { rate_limit: '5/minute' } }, { tool: 'run', grant: 'alice' }, T0);
    await store.loadScripts();
    const PAUSE_MS = 20_000;
    const unpause = await pauseWrites(PAUSE_MS);
    const stop = hogTheLoop();
    const started = performance.now();
    try {
      await assert.rejects(store.reserve([request], T0), /did not answer within 250 ms/);
    } finally {
      stop();
      await unpause();
    }
    const waited = performance.now() - started;
    // The timer (250 ms), then three quiet turns of HOG_MS each, and slack.
    assert.ok(waited < PAUSE_MS / 4, `rejected after ${Math.round(waited)} ms`);
  });

  test('maxWaitMs bounds an operation even before Redis has been silent for timeoutMs', async () => {
    assert.throws(() => newStore({ maxWaitMs: 0 }), /`maxWaitMs` must be a positive number/);
    assert.throws(() => newStore({ maxWaitMs: Number.NaN }), /`maxWaitMs` must be a positive number/);
    const store = newStore({ timeoutMs: 5000, maxWaitMs: 150 });
    const [request] = requestsFor({ run: { rate_limit: '5/minute' } }, { tool: 'run', grant: 'alice' }, T0);
    await store.loadScripts();
    const unpause = await pauseWrites(20_000);
    const started = performance.now();
    try {
      await assert.rejects(store.reserve([request], T0), /did not answer this operation within 150 ms/);
    } finally {
      await unpause();
    }
    assert.ok(performance.now() - started < 5000, 'rejected long before the pause would have ended');
  });

  test('a server that goes away: reserve rejects within the timeout and the call is denied (store_error)', async () => {
    const doomed = await startRedis();
    const reported = [];
    const store = await createRedisCounterStore({ url: doomed.url, prefix: 'doomed', onError: (error) => reported.push(error) });
    try {
      const policy = toolgate.compile({ version: '1', default: 'deny', tools: { run: { rate_limit: '3/minute' } } });
      const call = { tool: 'run', grant: 'alice' };
      assert.equal((await policy.decide(call, { counters: store, now: T0 })).code, 'allowed');

      await doomed.stop();
      const [request] = requestsFor({ run: { rate_limit: '3/minute' } }, call, T0);
      const started = performance.now();
      await assert.rejects(store.reserve([request], T0));
      const waited = performance.now() - started;
      assert.ok(waited < 250 + 1000, `rejected after ${Math.round(waited)} ms (timeout 250 ms)`);

      const { decision } = await policy.authorize(call, { counters: store, now: T0 });
      assert.equal(decision.decision, 'deny');
      assert.equal(decision.code, 'store_error');
      assert.match(decision.message, /counter store failed; the call is denied \(fail closed\)/);
      assert.ok(reported.length > 0, 'the connection loss reached onError');
      policy.dispose();
    } finally {
      await store.close();
      await doomed.stop();
    }
  });

  test('createRedisCounterStore rejects when nothing listens, and leaves nothing reconnecting', async () => {
    const port = await freePort();
    await assert.rejects(
      createRedisCounterStore({ url: `redis://127.0.0.1:${port}`, connectTimeoutMs: 300, onError: () => {} }),
      /could not connect to Redis/,
    );
  });

  test('end to end: "3/minute" through policy.decide admits exactly 3, then rate_limited with retry_after_ms', async () => {
    const policy = toolgate.compile('{"version":"1","default":"deny","tools":{"run":{"rate_limit":"3/minute"}}}');
    const counters = newStore();
    const call = { tool: 'run', grant: 'alice' };
    const now = T0 + 15 * SECOND;
    for (let i = 0; i < 3; i += 1) {
      const decision = await policy.decide(call, { counters, now: now + i });
      assert.equal(decision.code, 'allowed', `call ${i + 1}`);
    }
    const limited = await policy.decide(call, { counters, now: now + 3 });
    assert.equal(limited.decision, 'deny');
    assert.equal(limited.code, 'rate_limited');
    assert.equal(limited.retry_after_ms, 45 * SECOND - 3);
    // Another grant has its own count; authorize + rollback gives the quota back.
    const bob = { tool: 'run', grant: 'bob' };
    const held = await Promise.all([1, 2, 3].map(() => policy.authorize(bob, { counters, now })));
    assert.ok(held.every((a) => a.decision.code === 'allowed'));
    assert.equal((await policy.decide(bob, { counters, now })).code, 'rate_limited');
    await held[0].rollback();
    assert.equal((await policy.decide(bob, { counters, now })).code, 'allowed');
    policy.dispose();
  });
});
