// RedisCounterStore and RedisApprovalStore on a real Redis Cluster (3 masters,
// no replicas, started here by bench/scale/redis-cluster-server.js) through a
// node-redis cluster client (createCluster): the conformance suites, then what
// a cluster adds: each command goes to the node of its slot, a grant's keys
// share one slot, each global counter has a slot of its own (spread over the
// masters), a call is one script per slot it spans (one for the usual call),
// all or nothing across slots (also under concurrent contention, and in the
// same order for every call), scripts lost on one node, and
// createRedisCounterStore with `cluster: true`.
//
// A cluster client's sendCommand() takes (firstKey, isReadonly, args): before
// the stores (and the audit stream sink) routed by key, every call through
// one failed (store_error).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { createClient, createCluster } from 'redis';

import { loadToolgate } from '../../wasm/index.js';
import { RedisApprovalStore, RedisCounterStore, createRedisApprovalStore, createRedisCounterStore } from '../../worker/stores/redis.js';
import { slotOf } from '../../worker/stores/redis-commands.js';
import { RedisStreamAuditSink } from '../../worker/audit-redis.js';
import { MISSING, REDIS_CLI, REDIS_SERVER, startRedisCluster } from '../../bench/scale/redis-cluster-server.js';
import { approvalConformance } from './approval-conformance.js';
import { T0, conformance, requestsFor } from './store-conformance.js';
import { random } from './seeded-random.js';

const run = promisify(execFile);

// Every top-level await comes before the first test or hook is registered:
// node:test runs registered tests while the module still awaits, and once they
// are done it runs the file's after() hooks, before the tests registered after
// the await (seen: the Redis client closed under the remaining tests).
const toolgate = await loadToolgate();

test('redis-server and redis-cli are installed', () => {
  assert.ok(existsSync(REDIS_SERVER) && existsSync(REDIS_CLI), MISSING);
});

let cluster; // the servers
let client; // the stores' cluster client
let nodes; // one plain client per master, to look at what each holds

before(async () => {
  cluster = await startRedisCluster({ masters: 3 });
  client = createCluster({ rootNodes: cluster.rootNodes });
  client.on('error', () => {});
  await client.connect();
  nodes = await Promise.all(cluster.nodes.map(async ({ port, url }) => {
    const node = createClient({ url });
    node.on('error', () => {});
    await node.connect();
    return { port, client: node };
  }));
});

after(async () => {
  await Promise.all((nodes ?? []).map((node) => node.client.close()));
  await client?.close();
  await cluster?.stop();
});

let stores = 0;
const newStore = (options = {}) => new RedisCounterStore({ client, prefix: `c${(stores += 1)}`, timeoutMs: 5000, ...options });

conformance('RedisCounterStore (Redis Cluster)', () => newStore());
approvalConformance('RedisApprovalStore (Redis Cluster)', () => new RedisApprovalStore({ client, prefix: `ca${(stores += 1)}`, timeoutMs: 5000 }));

// The node (port) that holds `key`, asking every master which keys of the
// key's slot it holds (a plain EXISTS would be answered MOVED by the others).
async function holderOf(key) {
  const slot = await nodes[0].client.sendCommand(['CLUSTER', 'KEYSLOT', key]);
  const holders = [];
  for (const node of nodes) {
    const keys = await node.client.sendCommand(['CLUSTER', 'GETKEYSINSLOT', String(slot), '10000']);
    if (keys.includes(key)) holders.push(node.port);
  }
  assert.equal(holders.length, 1, `${key} is on exactly one node (${holders})`);
  return holders[0];
}

// The node that serves `slot`, from CLUSTER SLOTS.
async function nodeOfSlot(slot) {
  const ranges = await nodes[0].client.sendCommand(['CLUSTER', 'SLOTS']);
  const range = ranges.find(([from, to]) => slot >= from && slot <= to);
  return Number(range[2][1]);
}

describe('RedisCounterStore on Redis Cluster', () => {
  const tools = {
    run: { limits: [{ counter: 'per_minute', window: 'minute', max: 2 }, { counter: 'per_day', window: 'day', max: 100 }] },
    mixed: { limits: [{ counter: 'mine', window: 'minute', max: 1 }, { counter: 'all', window: 'minute', max: 2, scope: 'global' }] },
  };

  test('a grant\'s keys share the slot of its hash tag, on the node that serves it; grants spread over the nodes', async () => {
    const store = newStore({ prefix: 'spread' });
    const holders = new Set();
    for (let i = 0; i < 30; i += 1) {
      const requests = requestsFor(tools, { tool: 'run', grant: `g${i}` }, T0);
      assert.equal((await store.reserve(requests, T0)).admitted, true);
      const [minute, day] = requests.map((r) => store.keyOf(r));
      const slot = await nodes[0].client.sendCommand(['CLUSTER', 'KEYSLOT', minute]);
      assert.equal(await nodes[0].client.sendCommand(['CLUSTER', 'KEYSLOT', day]), slot, 'one slot per grant');
      assert.equal(await nodes[0].client.sendCommand(['CLUSTER', 'KEYSLOT', `{g${i}}`]), slot, 'the slot of the tag');
      const holder = await holderOf(minute);
      assert.equal(await holderOf(day), holder);
      assert.equal(holder, await nodeOfSlot(slot));
      holders.add(holder);
    }
    assert.equal(holders.size, 3, '30 grants land on all 3 masters');
  });

  test('a cluster client implies cluster mode: a call mixing grant and global counters spans two slots, all or nothing', async () => {
    const store = newStore({ cluster: false }); // overridden by the client
    const parts = (grant) => requestsFor(tools, { tool: 'mixed', grant }, T0);
    const alice = parts('alice');
    assert.equal((await store.reserve(alice, T0)).admitted, true);
    const [mine, all] = [alice.find((r) => r.scope === 'grant'), alice.find((r) => r.scope === 'global')];
    const slots = await Promise.all([mine, all].map((r) => nodes[0].client.sendCommand(['CLUSTER', 'KEYSLOT', store.keyOf(r)])));
    assert.equal(await holderOf(store.keyOf(mine)), await nodeOfSlot(slots[0]));
    assert.notEqual(slots[0], slots[1]);
    assert.equal(await holderOf(store.keyOf(all)), await nodeOfSlot(slots[1]));

    // Alice again: her grant denies; the global charge is given back.
    const denied = await store.reserve(alice, T0);
    assert.equal(denied.admitted, false);
    assert.equal(await client.get(store.keyOf(all)), '1');
    assert.equal((await store.reserve(parts('bob'), T0)).admitted, true);
    const carol = await store.reserve(parts('carol'), T0);
    assert.equal(carol.admitted, false, 'the global counter is full');
    assert.equal(await client.get(store.keyOf(parts('carol').find((r) => r.scope === 'grant'))), '0', 'carol\'s charge given back');
  });

  test('through a policy: per-grant limits counted exactly across 200 grants at once', async () => {
    const counters = newStore();
    const policy = toolgate.compile({ version: '1', default: 'deny', tools: { run: { rate_limit: '3/minute' } } });
    try {
      const grants = Array.from({ length: 200 }, (_, i) => `p${i}`);
      const decisions = await Promise.all(grants.flatMap((grant) => Array.from({ length: 5 }, () => policy.decide({ tool: 'run', grant }, { counters, now: T0 }))));
      assert.equal(decisions.filter((d) => d.code === 'allowed').length, 600);
      assert.equal(decisions.filter((d) => d.code === 'rate_limited').length, 400);
      assert.equal(decisions.filter((d) => d.code === 'store_error').length, 0);
    } finally {
      policy.dispose();
    }
  });

  test('property: the store computes the slot of any key as CLUSTER KEYSLOT does (braces, empty tags, non-ASCII)', async () => {
    const rand = random(17);
    const alphabet = ['a', 'z', '0', ':', '{', '}', '%', '"', ' ', 'é', '鍵', '😀', '\u0000'];
    for (let i = 0; i < 500; i += 1) {
      const key = Array.from({ length: Math.floor(rand() * 24) }, () => alphabet[Math.floor(rand() * alphabet.length)]).join('');
      assert.equal(slotOf(key), await nodes[0].client.sendCommand(['CLUSTER', 'KEYSLOT', key]), JSON.stringify(key));
    }
  });

  test('each global counter has a slot of its own: 30 global counters (limits, and one keyed by an argument) spread over every master', async () => {
    const store = newStore({ prefix: 'globals' });
    const holders = new Set();
    const slots = new Set();
    const spread = {
      keyed: { limits: [{ counter: 'per_repo', window: 'minute', max: 5, scope: 'global', key: 'args.repo' }] },
    };
    for (let i = 0; i < 15; i += 1) spread[`t${i}`] = { limits: [{ counter: `all${i}`, window: 'minute', max: 5, scope: 'global' }] };
    const calls = [
      ...Array.from({ length: 15 }, (_, i) => ({ tool: `t${i}`, grant: 'alice' })),
      ...Array.from({ length: 15 }, (_, i) => ({ tool: 'keyed', grant: `g${i}`, arguments: { repo: `repo${i}` } })),
    ];
    for (const call of calls) {
      const [request] = requestsFor(spread, call, T0);
      assert.equal(request.scope, 'global');
      assert.equal((await store.reserve([request], T0)).admitted, true);
      const key = store.keyOf(request);
      const slot = await nodes[0].client.sendCommand(['CLUSTER', 'KEYSLOT', key]);
      assert.equal(slotOf(key), slot);
      const holder = await holderOf(key);
      assert.equal(holder, await nodeOfSlot(slot));
      holders.add(holder);
      slots.add(slot);
    }
    assert.ok(slots.size >= 28, `30 global counters in ${slots.size} slots`);
    assert.equal(holders.size, 3, 'global counters on all 3 masters');
  });

  // Scripts run on every master, from INFO commandstats.
  async function scriptsRun() {
    let sum = 0;
    for (const node of nodes) {
      const stats = await node.client.sendCommand(['INFO', 'commandstats']);
      for (const m of stats.matchAll(/cmdstat_(evalsha|eval):calls=(\d+)/g)) sum += Number(m[2]);
    }
    return sum;
  }

  test('one script (one round trip) for a call whose counters share a slot; one per slot, in slot order, when they do not', async () => {
    const store = newStore({ prefix: 'trips' });
    await store.loadScripts();
    const trips = {
      grant: { limits: [{ counter: 'm', window: 'minute', max: 9 }, { counter: 'd', window: 'day', max: 90 }, { counter: 's', window: 'hour', max: 9, algorithm: 'sliding' }] },
      global: { limits: [{ counter: 'everyone', window: 'minute', max: 9, scope: 'global' }] },
      three: { limits: [{ counter: 'm', window: 'minute', max: 9 }, { counter: 'x', window: 'minute', max: 9, scope: 'global' }, { counter: 'y', window: 'minute', max: 9, scope: 'global' }] },
    };
    for (const [tool, slotsSpanned] of [['grant', 1], ['global', 1], ['three', 3]]) {
      const requests = requestsFor(trips, { tool, grant: 'erin' }, T0);
      assert.equal(new Set(requests.map((r) => slotOf(store.keyOf(r)))).size, slotsSpanned, tool);
      const before = await scriptsRun();
      const reservation = await store.reserve(requests, T0);
      assert.equal(reservation.admitted, true);
      assert.equal(await scriptsRun() - before, slotsSpanned, `${tool}: scripts run`);
      // Charges name their slot, for the rollback's one script per slot; they
      // were made in slot order.
      const slots = requests.map((r) => slotOf(store.keyOf(r))).sort((a, b) => a - b);
      assert.deepEqual(reservation.charges.map((c) => c.slot), slots);
      await store.rollback(reservation);
      for (const request of requests) assert.equal(await client.get(store.keyOf(request)), '0', `${tool}: given back`);
    }
  });

  test('the same order for every call: two calls wanting the same two global counters (max 1), named in opposite orders, never both lose', async () => {
    const both = { limits: [{ counter: 'x', window: 'minute', max: 1, scope: 'global' }, { counter: 'y', window: 'minute', max: 1, scope: 'global' }] };
    for (let round = 0; round < 40; round += 1) {
      const store = newStore({ prefix: `order${round}` });
      const requests = requestsFor({ run: both }, { tool: 'run', grant: 'a' }, T0);
      assert.notEqual(slotOf(store.keyOf(requests[0])), slotOf(store.keyOf(requests[1])));
      // Named in one order by one call and the other by the other: in the
      // order of first appearance, each could charge one counter and be
      // denied by the other's charge on the second.
      const [first, second] = await Promise.all([store.reserve(requests, T0), store.reserve([...requests].reverse(), T0)]);
      assert.equal(Number(first.admitted) + Number(second.admitted), 1, `round ${round}: exactly one of the two`);
      for (const request of requests) assert.equal(await client.get(store.keyOf(request)), '1', `round ${round}: ${request.key}`);
    }
  });

  test('property: concurrent calls over grant and spread global counters, all or nothing across slots: no count over its max, and each holds exactly what the admitted calls charged', async () => {
    const rand = random(2026);
    const pick = (list) => list[Math.floor(rand() * list.length)];
    for (let round = 0; round < 12; round += 1) {
      const store = newStore({ prefix: `mix${round}` });
      // 2-4 tools, each with 1-3 limits over a few shared counters, grant and global.
      const counters = ['p', 'q', 'r', 's'].map((name) => ({ counter: name, window: pick(['minute', 'hour']), max: 2 + Math.floor(rand() * 6), scope: pick(['grant', 'global', 'global']) }));
      const tools = {};
      for (let t = 0; t < 2 + Math.floor(rand() * 3); t += 1) {
        const limits = [...new Set(Array.from({ length: 1 + Math.floor(rand() * 3) }, () => pick(counters)))];
        tools[`t${t}`] = { limits: limits.map((limit) => ({ ...limit, cost: 1 + Math.floor(rand() * 2) })) };
      }
      const calls = Array.from({ length: 60 }, () => ({ tool: pick(Object.keys(tools)), grant: pick(['ann', 'ben', 'cat']) }));
      const requestsOf = calls.map((call) => requestsFor(tools, call, T0));
      const reservations = await Promise.all(requestsOf.map((requests) => store.reserve(requests, T0)));
      const charged = new Map(); // key -> what admitted calls charged
      const max = new Map();
      reservations.forEach((reservation, i) => {
        for (const request of requestsOf[i]) {
          const key = store.keyOf(request);
          max.set(key, request.max);
          if (reservation.admitted) charged.set(key, (charged.get(key) ?? 0) + request.cost);
        }
        if (!reservation.admitted) assert.deepEqual(reservation.charges, [], 'a denied call keeps no charge');
      });
      assert.ok(reservations.some((r) => r.admitted) && reservations.some((r) => !r.admitted), `round ${round}: both outcomes`);
      for (const [key, limit] of max) {
        const held = Number(await client.get(key) ?? 0);
        assert.equal(held, charged.get(key) ?? 0, `round ${round}: ${key} holds what admitted calls charged`);
        assert.ok(held <= limit, `round ${round}: ${key} holds ${held}, over its max ${limit}`);
      }
    }
  });

  test('a node that lost the scripts (SCRIPT FLUSH): EVALSHA falls back to EVAL there', async () => {
    const store = newStore();
    const requests = requestsFor(tools, { tool: 'run', grant: 'flushed' }, T0);
    assert.equal((await store.reserve(requests, T0)).admitted, true);
    for (const node of nodes) await node.client.sendCommand(['SCRIPT', 'FLUSH']);
    const again = await store.reserve(requests, T0);
    assert.equal(again.admitted, true);
    assert.deepEqual(again.states[0], { current: 1, previous: 0 });
  });

  test('createRedisCounterStore / createRedisApprovalStore with cluster: true connect a cluster client from one node\'s URL', async () => {
    const counters = await createRedisCounterStore({ url: cluster.nodes[1].url, cluster: true, prefix: 'created', timeoutMs: 5000 });
    const approvals = await createRedisApprovalStore({ url: cluster.nodes[2].url, cluster: true, prefix: 'created', timeoutMs: 5000 });
    try {
      const policy = toolgate.compile({ version: '1', default: 'deny', tools: { run: { rate_limit: '1/minute' } } });
      try {
        const codes = [];
        for (let i = 0; i < 20; i += 1) codes.push((await policy.decide({ tool: 'run', grant: `k${i}` }, { counters, now: T0 })).code);
        assert.deepEqual([...new Set(codes)], ['allowed']);
        assert.equal((await policy.decide({ tool: 'run', grant: 'k0' }, { counters, now: T0 })).code, 'rate_limited');
      } finally {
        policy.dispose();
      }
      const id = 'b'.repeat(64);
      await approvals.approve(id, T0);
      assert.equal(await approvals.consume(id, 60_000, T0), true);
      assert.equal(await approvals.consume(id, 60_000, T0), false);
    } finally {
      await counters.close();
      await approvals.close();
    }
  });

  test('the cluster is what redis-cli sees: 3 masters, every slot served', async () => {
    const { stdout } = await run(REDIS_CLI, ['--cluster', 'check', `127.0.0.1:${cluster.nodes[0].port}`]);
    assert.match(stdout, /All 16384 slots covered/);
    assert.equal((stdout.match(/M: [0-9a-f]{40} 127\.0\.0\.1:/g) ?? []).length, 3);
  });
});

describe('RedisStreamAuditSink on Redis Cluster', () => {
  test('events go, in order, to the stream on the node that serves its slot', async () => {
    const sink = new RedisStreamAuditSink({ client, stream: 'audit:cluster', timeoutMs: 5000 });
    const events = Array.from({ length: 20 }, (_, i) => ({ time: new Date(T0 + i).toISOString(), tool: `t${i}`, decision: 'allow' }));
    const ids = await Promise.all(events.map((event) => sink.write(event)));
    assert.ok(ids.every((id) => /^\d+-\d+$/.test(id)), ids.join(' '));
    const entries = await client.xRange('audit:cluster', '-', '+');
    assert.deepEqual(entries.map((entry) => JSON.parse(entry.message.event).tool), events.map((e) => e.tool));
    const slot = await nodes[0].client.sendCommand(['CLUSTER', 'KEYSLOT', 'audit:cluster']);
    assert.equal(await holderOf('audit:cluster'), await nodeOfSlot(slot));
  });
});
