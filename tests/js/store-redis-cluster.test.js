// RedisCounterStore and RedisApprovalStore on a real Redis Cluster (3 masters,
// no replicas, started here by bench/scale/redis-cluster-server.js) through a
// node-redis cluster client (createCluster): the conformance suites, then what
// a cluster adds: each command goes to the node of its slot, a grant's keys
// share one slot, a call mixing grant and global counters spans two slots
// (and nodes), scripts lost on one node, and createRedisCounterStore with
// `cluster: true`.
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
import { RedisStreamAuditSink } from '../../worker/audit-redis.js';
import { MISSING, REDIS_CLI, REDIS_SERVER, startRedisCluster } from '../../bench/scale/redis-cluster-server.js';
import { approvalConformance } from './approval-conformance.js';
import { T0, conformance, requestsFor } from './store-conformance.js';

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
