// RedisApprovalStore (worker/stores/redis.js) on a real redis-server: the
// ApprovalStore conformance suite, then what is Redis's own: key layout and
// TTLs, one approval shared by several proxy instances (separate
// connections), index clean-up, scripts lost by the server, timeouts and a
// server that goes away (fail closed), and decisions through a compiled policy.
//
// Starts its own redis-server (./redis-server.js); stopped in after(), and by
// a watchdog if this process dies first.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createClient } from 'redis';

import { loadToolgate } from '../../wasm/index.js';
import { RedisApprovalStore, createRedisApprovalStore } from '../../worker/stores/redis.js';
import { approvalConformance } from './approval-conformance.js';
import { waitFor } from './proxy-helpers.js';
import { MISSING, REDIS_SERVER, freePort, startRedis } from './redis-server.js';

const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const T0 = Date.UTC(2026, 0, 1);
const TIMEOUT = 10 * MINUTE;
const ID = 'a'.repeat(64);

const requestOf = (id, fields = {}) => ({
  id,
  grant: 'alice',
  server: 'default',
  tool: 'run',
  arguments: { command: 'ls' },
  message: 'Needs approval.',
  requested_at: T0,
  expires_at: T0 + TIMEOUT,
  ...fields,
});

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
let client; // the stores' connection, and the tests' own, to look at keys
const clients = []; // more connections: other proxy instances

before(async () => {
  server = await startRedis();
  client = await connect(server.url);
});

after(async () => {
  for (const other of [client, admin, ...clients]) await other?.close();
  await server?.stop();
});

async function connect(url) {
  const connection = createClient({ url });
  connection.on('error', () => {}); // a test that stops its server expects errors
  await connection.connect();
  return connection;
}

// CLIENT PAUSE WRITE until unpauseWrites(), from a connection of their own:
// the stores' connection is held behind its paused writes. (60 s: should a test
// die paused, Redis ends the pause itself.)
let admin;
async function pauseWrites(t) {
  admin ??= await connect(server.url);
  await admin.sendCommand(['CLIENT', 'PAUSE', '60000', 'WRITE']);
  t.after(unpauseWrites); // a failing test leaves no pause to the next
}
async function unpauseWrites() {
  await admin.sendCommand(['CLIENT', 'UNPAUSE']);
}

// The timeout of the stores whose calls are paused. Only a paused call is to
// run out of it, so it is far above what an unpaused command takes even on a
// loaded machine (a Node process starved of CPU runs its due timers before it
// reads the replies that came meanwhile: 150 ms timed out SCRIPT LOAD there).
const SHORT_MS = 1000;

let stores = 0;
// Each store gets its own prefix, so tests never see each other's approvals.
// A generous timeout: hundreds of concurrent scripts on a loaded CI machine.
const newStore = (options = {}) => new RedisApprovalStore({ client, prefix: `a${(stores += 1)}`, timeoutMs: 5000, ...options });

approvalConformance('RedisApprovalStore', () => newStore());

// The hash tag Redis Cluster hashes: the text between the first '{' and the
// next '}', when not empty.
function hashTag(key) {
  const open = key.indexOf('{');
  const close = open < 0 ? -1 : key.indexOf('}', open + 1);
  return close > open + 1 ? key.slice(open + 1, close) : null;
}

describe('RedisApprovalStore on redis-server', () => {
  test('keys share the {approvals} hash tag; requests live until expires_at plus slack, approvals approvalTtlMs', async () => {
    const store = newStore({ prefix: 'layout', approvalTtlMs: 2 * 60 * MINUTE });
    await store.request(requestOf(ID));
    await store.request(requestOf('b'.repeat(64), { expires_at: T0 + MINUTE }));
    await store.approve('c'.repeat(64), T0);
    const keys = (await client.keys('layout:*')).sort();
    assert.deepEqual(keys, [
      `layout:{approvals}:approved:${'c'.repeat(64)}`,
      'layout:{approvals}:expiring',
      `layout:{approvals}:request:${ID}`,
      `layout:{approvals}:request:${'b'.repeat(64)}`,
      'layout:{approvals}:waiting',
    ].sort());
    assert.ok(keys.every((key) => hashTag(key) === 'approvals'), 'one slot for every approval key');
    assert.equal(store.requestKey(ID), `layout:{approvals}:request:${ID}`);
    assert.equal(store.approvalKey(ID), `layout:{approvals}:approved:${ID}`);

    // The request's JSON, indexed by requested_at and by expires_at.
    assert.deepEqual(JSON.parse(await client.get(store.requestKey(ID))), requestOf(ID));
    assert.equal(await client.zScore('layout:{approvals}:waiting', ID), T0);
    assert.equal(await client.zScore('layout:{approvals}:expiring', ID), T0 + TIMEOUT);
    const requestTtl = await client.pTTL(store.requestKey(ID));
    assert.ok(requestTtl > TIMEOUT + MINUTE - 10 * SECOND && requestTtl <= TIMEOUT + MINUTE, `request TTL ${requestTtl} ms`);
    const shortTtl = await client.pTTL(store.requestKey('b'.repeat(64)));
    assert.ok(shortTtl > 2 * MINUTE - 10 * SECOND && shortTtl <= 2 * MINUTE, `request TTL ${shortTtl} ms`);
    assert.equal(await client.get(store.approvalKey('c'.repeat(64))), String(T0), 'the approval time');
    const approvalTtl = await client.pTTL(store.approvalKey('c'.repeat(64)));
    assert.ok(approvalTtl > 2 * 60 * MINUTE - 10 * SECOND && approvalTtl <= 2 * 60 * MINUTE, `approval TTL ${approvalTtl} ms`);

    // Approving removes the request and its index entries; consuming, the approval.
    await store.approve(ID, T0 + SECOND);
    assert.equal(await client.exists(store.requestKey(ID)), 0);
    assert.equal(await client.zScore('layout:{approvals}:waiting', ID), null);
    assert.equal(await client.zScore('layout:{approvals}:expiring', ID), null);
    assert.equal(await store.consume(ID, TIMEOUT, T0 + SECOND), true);
    assert.equal(await client.exists(store.approvalKey(ID)), 0);
  });

  test('list() drops expired requests from both indexes; their keys expire by TTL', async () => {
    const store = newStore({ prefix: 'purge' });
    for (let i = 0; i < 5; i += 1) await store.request(requestOf(String(i), { expires_at: T0 + (i + 1) * MINUTE }));
    assert.equal((await store.list(T0 + 3 * MINUTE)).length, 2);
    assert.equal(await client.zCard('purge:{approvals}:waiting'), 2);
    assert.equal(await client.zCard('purge:{approvals}:expiring'), 2);
    assert.equal(await client.exists(store.requestKey('0')), 1, 'left to its TTL');
    assert.equal(await store.get('0', T0 + 3 * MINUTE), null, 'but expired for get()');
    // request() drops expired index entries too, so nobody need ever list.
    await store.request(requestOf('new', { requested_at: T0 + 10 * MINUTE, expires_at: T0 + 20 * MINUTE }));
    assert.deepEqual(await client.zRange('purge:{approvals}:waiting', 0, -1), ['new']);
  });

  test('a request whose key vanished early (clock skew, eviction) is skipped and can be made again', async () => {
    const store = newStore();
    await store.request(requestOf(ID));
    await store.request(requestOf('b'));
    await client.del(store.requestKey(ID));
    assert.equal(await store.get(ID, T0), null);
    assert.deepEqual((await store.list(T0)).map((r) => r.id), ['b']);
    assert.equal(await store.reject(ID, T0), false);
    const again = requestOf(ID, { requested_at: T0 + SECOND, message: 'again' });
    await store.request(again);
    assert.deepEqual(await store.get(ID, T0 + SECOND), again);
  });

  test('what is not an approval or a request under their keys is an error, not a guess', async () => {
    const store = newStore();
    await client.set(store.approvalKey(ID), 'yes');
    await assert.rejects(store.isApproved(ID, TIMEOUT, T0), /does not hold an approval time/);
    assert.equal(await store.consume(ID, TIMEOUT, T0), false, 'the script does not take it for a time either');
    await client.set(store.requestKey(ID), '{not json');
    await assert.rejects(store.get(ID, T0), /does not hold JSON/);
    await client.set(store.requestKey(ID), '[]');
    await assert.rejects(store.get(ID, T0), /does not hold an approval request/);
  });

  test('bad arguments reject before reaching Redis', async () => {
    const store = newStore();
    await assert.rejects(store.approve('', T0), TypeError);
    await assert.rejects(store.consume(undefined, TIMEOUT, T0), TypeError);
    await assert.rejects(store.isApproved(ID, NaN, T0), TypeError);
    await assert.rejects(store.consume(ID, TIMEOUT, '2026-01-01'), TypeError);
    await assert.rejects(store.request({ ...requestOf(ID), expires_at: undefined }), TypeError);
    await assert.rejects(store.request(null), TypeError);
    assert.throws(() => new RedisApprovalStore({ client, prefix: 'a{b}' }), /prefix/);
    assert.throws(() => new RedisApprovalStore({ client, approvalTtlMs: 0 }), /approvalTtlMs/);
    assert.throws(() => new RedisApprovalStore({}), /client/);
  });

  test('one approval, four proxy instances on their own connections, 200 concurrent consumes: one call', async () => {
    for (let i = 0; i < 4; i += 1) clients.push(await connect(server.url));
    const instances = clients.slice(-4).map((connection) => new RedisApprovalStore({ client: connection, prefix: 'shared', timeoutMs: 5000 }));
    for (let round = 0; round < 5; round += 1) {
      const id = `${round}`.repeat(64);
      await instances[round % 4].approve(id, T0);
      const results = await Promise.all(Array.from({ length: 200 }, (_, i) => instances[i % 4].consume(id, TIMEOUT, T0 + SECOND)));
      assert.equal(results.filter(Boolean).length, 1, `round ${round}`);
    }
  });

  test('scripts lost by the server (SCRIPT FLUSH, a restart) are sent again', async () => {
    const store = newStore();
    await store.loadScripts();
    await client.scriptFlush();
    await store.request(requestOf(ID));
    await client.scriptFlush();
    assert.equal((await store.list(T0)).length, 1);
    await client.scriptFlush();
    await store.approve(ID, T0);
    await client.scriptFlush();
    assert.equal(await store.consume(ID, TIMEOUT, T0), true);
    await client.scriptFlush();
    assert.equal(await store.reject(ID, T0), false);
  });

  test('a Redis that does not answer in time: consume rejects; a late consume puts the approval back', async (t) => {
    const prefix = `a${(stores += 1)}`;
    const store = new RedisApprovalStore({ client, prefix, timeoutMs: SHORT_MS });
    // What is not a paused call goes through a patient store on the same keys.
    const patient = new RedisApprovalStore({ client, prefix, timeoutMs: 60_000 });
    await store.loadScripts();
    await patient.approve(ID, T0);
    const ttlBefore = await client.pTTL(store.approvalKey(ID));
    // Write commands (EVALSHA included) wait until the test lets them run
    // (CLIENT UNPAUSE, from another connection: this one is held behind them).
    // A pause of fixed length could end, on a loaded machine, before the three
    // timeouts below had all run out.
    await pauseWrites(t);
    const started = performance.now();
    await assert.rejects(store.consume(ID, TIMEOUT, T0 + SECOND), /did not answer within 1000 ms/);
    const waited = performance.now() - started;
    assert.ok(waited >= SHORT_MS - 10, `rejected after ${Math.round(waited)} ms`);
    await assert.rejects(store.approve('b'.repeat(64), T0), /did not answer within 1000 ms/);
    await assert.rejects(store.request(requestOf('c'.repeat(64))), /did not answer within 1000 ms/);
    // When the pause ends the script runs and uses the approval up, for a call
    // that was denied; the store puts it back, with its time and TTL.
    await unpauseWrites();
    const held = await waitFor(async () => (await client.get(store.approvalKey(ID))) === String(T0) && String(T0), 'the approval put back');
    assert.equal(held, String(T0), 'the approval is back');
    const ttlAfter = await client.pTTL(store.approvalKey(ID));
    assert.ok(ttlAfter > 0 && ttlAfter <= ttlBefore, `TTL ${ttlAfter} ms, was ${ttlBefore} ms`);
    assert.equal(await patient.consume(ID, TIMEOUT, T0 + SECOND), true, 'one call, as approved');
  });

  test('a late consume does not put back over a newer approval', async (t) => {
    // The store's connection, watched: whatever the store sends after its
    // consume gave up is its put-back, sent when the late reply comes; the test
    // waits for Redis to have answered it (a pause could end before it did).
    const sent = [];
    const watched = new Proxy(client, {
      get(target, name) {
        const value = Reflect.get(target, name, target);
        if (name !== 'sendCommand') return typeof value === 'function' ? value.bind(target) : value;
        return (...args) => {
          const reply = value.apply(target, args);
          sent.push(Promise.resolve(reply).catch(() => {}));
          return reply;
        };
      },
    });
    const store = new RedisApprovalStore({ client: watched, prefix: 'late', timeoutMs: SHORT_MS });
    const patient = new RedisApprovalStore({ client, prefix: 'late', timeoutMs: 60_000 }); // for what is not paused
    await store.loadScripts();
    await patient.approve(ID, T0);
    await pauseWrites(t); // until unpauseWrites(): a fixed pause could end before the timeout on a loaded machine
    await assert.rejects(store.consume(ID, TIMEOUT, T0 + SECOND), /did not answer/);
    const sentBeforeLateReply = sent.length;
    // A human approves again; on the same connection, so Redis runs it right
    // after the late consume, and before the put-back the consume's reply sets off.
    const approving = patient.approve(ID, T0 + 2 * SECOND);
    await unpauseWrites();
    await approving;
    await waitFor(() => sent.length > sentBeforeLateReply, 'the put-back of the late consume');
    await Promise.all(sent);
    assert.equal(await client.get(store.approvalKey(ID)), String(T0 + 2 * SECOND));
    assert.equal(await patient.consume(ID, TIMEOUT, T0 + 3 * SECOND), true);
    assert.equal(await patient.consume(ID, TIMEOUT, T0 + 3 * SECOND), false, 'one approval, one call');
  });

  test('a server that goes away: every operation rejects within the timeout, and authorize denies (store_error)', async () => {
    const doomed = await startRedis();
    const reported = [];
    const store = await createRedisApprovalStore({ url: doomed.url, prefix: 'doomed', timeoutMs: 100, onError: (error) => reported.push(error) });
    const policy = toolgate.compile({ version: '1', default: 'deny', tools: { run: { action: 'require_approval' } } });
    try {
      const call = { tool: 'run', grant: 'alice', arguments: { x: 1 } };
      const { approval_id: id } = await policy.decide(call, { approvals: store, now: T0 });
      await store.approve(id, T0);
      await doomed.stop();

      for (const [name, operation] of [
        ['isApproved', () => store.isApproved(id, TIMEOUT, T0)],
        ['consume', () => store.consume(id, TIMEOUT, T0)],
        ['approve', () => store.approve(id, T0)],
        ['request', () => store.request(requestOf(id))],
        ['get', () => store.get(id, T0)],
        ['list', () => store.list(T0)],
        ['reject', () => store.reject(id, T0)],
      ]) {
        const started = performance.now();
        await assert.rejects(operation(), `${name} rejects`);
        const waited = performance.now() - started;
        assert.ok(waited < 100 + 1000, `${name} rejected after ${Math.round(waited)} ms (timeout 100 ms)`);
      }

      const decision = await policy.decide(call, { approvals: store, now: T0 });
      assert.equal(decision.decision, 'deny');
      assert.equal(decision.code, 'store_error');
      assert.match(decision.message, /approval store failed; the call is denied \(fail closed\)/);
      assert.ok(reported.length > 0, 'the connection loss reached onError');
    } finally {
      policy.dispose();
      await store.close();
      await doomed.stop();
    }
  });

  test('createRedisApprovalStore rejects when nothing listens, and leaves nothing reconnecting', async () => {
    const port = await freePort();
    await assert.rejects(
      createRedisApprovalStore({ url: `redis://127.0.0.1:${port}`, connectTimeoutMs: 300, onError: () => {} }),
      /could not connect to Redis/,
    );
  });

  test('end to end: approval_required, the request waits, a human approves on one instance, the call runs once on another', async () => {
    const policy = toolgate.compile({ version: '1', default: 'deny', tools: { run: { action: 'require_approval', approval: { timeout: '5m' } } } });
    const proxyA = newStore({ prefix: 'e2e' });
    const proxyB = new RedisApprovalStore({ client: clients[1] ?? client, prefix: 'e2e', timeoutMs: 5000 });
    const call = { tool: 'run', grant: 'alice', arguments: { command: 'deploy', target: 'prod' } };
    try {
      const asked = await policy.decide(call, { approvals: proxyA, now: T0 });
      assert.equal(asked.code, 'approval_required');
      // What the proxy records for the approver.
      await proxyA.request({
        id: asked.approval_id, grant: 'alice', server: 'default', tool: 'run', arguments: call.arguments,
        message: asked.message, requested_at: T0, expires_at: T0 + 5 * MINUTE,
      });
      const [waiting] = await proxyB.list(T0 + SECOND);
      assert.equal(waiting.id, asked.approval_id);
      assert.deepEqual(waiting.arguments, call.arguments);

      await proxyB.approve(waiting.id, T0 + MINUTE);
      assert.deepEqual(await proxyA.list(T0 + MINUTE), []);
      const { decision, commit } = await policy.authorize(call, { approvals: proxyB, now: T0 + 2 * MINUTE });
      assert.equal(decision.code, 'allowed');
      await commit();
      assert.equal((await policy.decide(call, { approvals: proxyA, now: T0 + 2 * MINUTE })).code, 'approval_required', 'used up');

      // Approved, but the call comes after the approval timeout.
      await proxyA.approve(waiting.id, T0 + 3 * MINUTE);
      assert.equal((await policy.decide(call, { approvals: proxyB, now: T0 + 8 * MINUTE + 1 })).code, 'approval_required');
      // A different call (other arguments) is another approval.
      await proxyA.approve(waiting.id, T0 + 9 * MINUTE);
      const other = { ...call, arguments: { command: 'deploy', target: 'staging' } };
      assert.equal((await policy.decide(other, { approvals: proxyB, now: T0 + 9 * MINUTE })).code, 'approval_required');
      assert.equal((await policy.decide(call, { approvals: proxyB, now: T0 + 9 * MINUTE })).code, 'allowed');
    } finally {
      policy.dispose();
    }
  });
});
