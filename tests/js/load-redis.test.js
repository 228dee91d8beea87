// Bursts through the real proxy on a real Redis: `toolgate serve --store
// redis://...` (a child process, as users run it) in front of a real MCP SDK
// server that counts the tool calls it executes, driven by 1 000 concurrent
// tools/call requests (node:http, one connection each). While Redis is healthy a
// burst admits exactly `max`: none denied with store_error because the proxy
// was too busy to read Redis's answers in time (the defect of issue #12: a
// timer counted the time the event loop spent on the other 999 requests; see
// RedisCommands in worker/stores/redis.js). A Redis that really stalls still
// gets every call denied (fail closed), within the bound.
//
// The handler decides at most 32 POSTs of one grant at once and answers the
// others 429; a call answered 429 is sent again, as an agent would, until it
// is decided, so every one of the 1 000 ends allowed or denied. The global and
// mixed cases spread the burst over forty grants, so all of it is decided,
// and reaches Redis, at once.
//
// Waits on state only: every response is awaited, and the counting server has
// executed a call before its answer leaves.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, request } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createClient } from 'redis';

import { repoRoot } from './cli-helpers.js';
import { grantsDocument, tempFile } from './proxy-helpers.js';
import { startRedis } from './redis-server.js';
import { startRedisCluster } from '../../bench/scale/redis-cluster-server.js';

const CLI = join(repoRoot, 'bin/toolgate.js');
const BURST = 1000;
const DAY_MS = 24 * 60 * 60 * 1000;

// Day windows: a burst takes seconds, and before each one the test waits until
// it cannot straddle 00:00 UTC (a new window would admit `max` again).
const POLICY = {
  version: '1',
  default: 'deny',
  tools: {
    cold: { limits: [{ counter: 'cold', window: 'day', max: 5, scope: 'grant' }] },
    run: { limits: [{ counter: 'run', window: 'day', max: 5, scope: 'grant' }] },
    flushed: { limits: [{ counter: 'flushed', window: 'day', max: 5, scope: 'grant' }] },
    shared: { limits: [{ counter: 'shared', window: 'day', max: 5, scope: 'global' }] },
    mixed: {
      limits: [
        { counter: 'mixed_grant', window: 'day', max: 5, scope: 'grant' },
        { counter: 'mixed_global', window: 'day', max: 8, scope: 'global' },
      ],
    },
    stalled: { limits: [{ counter: 'stalled', window: 'day', max: 5, scope: 'grant' }] },
    cluster_run: { limits: [{ counter: 'cluster_run', window: 'day', max: 5, scope: 'grant' }] },
    cluster_shared: { limits: [{ counter: 'cluster_shared', window: 'day', max: 5, scope: 'global' }] },
    cluster_mixed: {
      limits: [
        { counter: 'cluster_mixed_grant', window: 'day', max: 5, scope: 'grant' },
        { counter: 'cluster_mixed_global', window: 'day', max: 8, scope: 'global' },
      ],
    },
  },
};
const TOKENS = { alice: 'alice-load-token', bob: 'bob-load-token', carol: 'carol-load-token', dave: 'dave-load-token' };
// The handler decides at most 32 POSTs of one grant at once (429 beyond; see
// worker/handler.js): forty grants put the whole burst in front of Redis at once.
const CROWD = Array.from({ length: 40 }, (_, i) => `g${String(i).padStart(2, '0')}`);
for (const grant of CROWD) TOKENS[grant] = `${grant}-load-token`;

/**
 * An MCP server on the official SDK (Streamable HTTP, stateless, JSON
 * answers) whose every tool counts its executions: { url, executed, stop() }.
 */
async function startCountingServer() {
  const executed = {};
  const http = createServer(async (req, res) => {
    // Stateless: a server and a transport per request (the SDK's pattern).
    const server = new McpServer({ name: 'counting', version: '1.0.0' });
    for (const name of Object.keys(POLICY.tools)) {
      server.registerTool(name, { description: `counts its calls (${name})` }, async () => {
        executed[name] = (executed[name] ?? 0) + 1;
        return { content: [{ type: 'text', text: `${name} ran` }] };
      });
    }
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => {
      transport.close();
      server.close();
    });
    try {
      await server.connect(transport);
      await transport.handleRequest(req, res);
    } catch {
      res.destroy();
    }
  });
  http.keepAliveTimeout = 60_000;
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  return {
    url: `http://127.0.0.1:${http.address().port}/mcp`,
    executed,
    async stop() {
      http.closeAllConnections();
      http.close();
      await once(http, 'close');
    },
  };
}

/** `toolgate serve --store URL ...` as a child; resolves once it listens. */
async function serve(args) {
  const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--audit', 'file:/dev/null', ...args], {
    env: { ...process.env, TOOLGATE_ADMIN_TOKEN: 'load-redis-admin-token' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => { stderr += chunk; });
  const exited = once(child, 'exit');
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    const url = /is listening on (http:\/\/\S+)/.exec(stderr)?.[1];
    if (url) return { url: `${url}/mcp`, get stderr() { return stderr; }, stop };
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`toolgate serve did not start: ${stderr}`);
    }
    await sleep(25);
  }
}

/**
 * One tools/call through the proxy, on a connection of its own (node:http,
 * no agent: a kept-alive socket the server closes while idle could fail a
 * later burst's POST): 'ran' (the server's answer came back), a denial's code
 * (rate_limited, store_error, ...) with its message, or what else came back.
 */
function callTool(url, token, tool, id) {
  const body = JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: tool, arguments: {} } });
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method: 'POST',
      agent: false,
      headers: {
        'content-type': 'application/json', accept: 'application/json, text/event-stream',
        authorization: `Bearer ${token}`, 'content-length': Buffer.byteLength(body),
      },
    }, (res) => {
      const chunks = [];
      res.on('data', (chunk) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let message;
        try {
          message = JSON.parse(text);
        } catch {
          resolve({ outcome: `HTTP ${res.statusCode}: ${text.slice(0, 200)}` });
          return;
        }
        const denial = message.result?.structuredContent;
        if (res.statusCode === 429) resolve({ outcome: 'busy' });
        else if (denial?.code) resolve({ outcome: denial.code, message: denial.message });
        else if (message.result?.content?.[0]?.text === `${tool} ran`) resolve({ outcome: 'ran' });
        else resolve({ outcome: `unexpected: ${text.slice(0, 200)}` });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * One call, sent again (after a few ms, jittered) for as long as the proxy
 * answers 429 (this grant has too many requests being decided): what an agent
 * does. Resolves to the call's decision, and how often it was sent again.
 */
async function decided(url, grant, tool, id) {
  for (let again = 0; ; again += 1) {
    const answer = await callTool(url, TOKENS[grant], tool, id);
    if (answer.outcome !== 'busy') return { grant, again, ...answer };
    await sleep(5 + Math.random() * 20);
  }
}

/**
 * Fires `count` calls at once, round robin over `grants`, each until it is
 * decided; tallies the decisions, overall and per grant, and keeps the
 * messages of store errors.
 */
async function burst(url, tool, grants, count = BURST) {
  await outsideDayBoundary();
  const outcomes = await Promise.all(Array.from({ length: count }, (_, i) => decided(url, grants[i % grants.length], tool, i + 1)));
  const total = {};
  const perGrant = {};
  const storeErrors = new Set();
  for (const { grant, outcome, message } of outcomes) {
    total[outcome] = (total[outcome] ?? 0) + 1;
    perGrant[grant] ??= {};
    perGrant[grant][outcome] = (perGrant[grant][outcome] ?? 0) + 1;
    if (outcome === 'store_error') storeErrors.add(message);
  }
  return { total, perGrant, why: `store errors: ${JSON.stringify([...storeErrors])}` };
}

// Waits, if needed, until 00:00 UTC is more than two minutes away.
async function outsideDayBoundary() {
  while (DAY_MS - (Date.now() % DAY_MS) < 120_000 || Date.now() % DAY_MS < 1000) await sleep(1000);
}

/** The sum of the counts Redis holds for `counter` (every grant's bucket), on each of `clients` (a cluster's nodes). */
async function countInRedis(clients, counter) {
  let sum = 0;
  for (const redis of [clients].flat()) {
    for await (const keys of redis.scanIterator({ MATCH: `tg:*"${counter}"*`, COUNT: 1000 })) {
      for (const key of keys) sum += Number(await redis.get(key));
    }
  }
  return sum;
}

let redisServer;
let redis; // the test's own connection
let upstream;
let policyPath;
let grantsPath;
before(async () => {
  redisServer = await startRedis();
  redis = createClient({ url: redisServer.url });
  redis.on('error', () => {});
  await redis.connect();
  upstream = await startCountingServer();
  policyPath = await tempFile('load-redis-policy.json', POLICY);
  grantsPath = await tempFile('load-redis-grants.json', grantsDocument(TOKENS));
});
after(async () => {
  await redis?.close();
  await upstream?.stop();
  await redisServer?.stop();
});

const serveArgs = () => ['--policy', policyPath, '--upstream', upstream.url, '--grants', grantsPath, '--store', redisServer.url, '--no-watch'];

describe(`${BURST} concurrent calls through toolgate serve on Redis`, { timeout: 300_000 }, () => {
  test('cold start: the first requests the proxy ever serves are the burst; exactly max run', async () => {
    const proxy = await serve(serveArgs());
    try {
      const { total, why } = await burst(proxy.url, 'cold', ['alice']);
      assert.deepEqual(total, { ran: 5, rate_limited: BURST - 5 }, why);
      assert.equal(upstream.executed.cold, 5);
      assert.equal(await countInRedis(redis, 'cold'), 5);
      assert.doesNotMatch(proxy.stderr, /Redis:/, 'no Redis errors reported');
    } finally {
      await proxy.stop();
    }
  });

  describe('one proxy, warm', () => {
    let proxy;
    before(async () => {
      proxy = await serve(serveArgs());
    });
    after(() => proxy?.stop());

    test('one grant against max 5: 5 run, the rest rate_limited, no store_error', async () => {
      const { total, why } = await burst(proxy.url, 'run', ['alice']);
      assert.deepEqual(total, { ran: 5, rate_limited: BURST - 5 }, why);
      assert.equal(upstream.executed.run, 5);
      assert.equal(await countInRedis(redis, 'run'), 5);
    });

    test('a Redis that lost its scripts (SCRIPT FLUSH): every call of the burst falls back to EVAL; exactly max run', async () => {
      await redis.scriptFlush();
      const { total, why } = await burst(proxy.url, 'flushed', ['bob']);
      assert.deepEqual(total, { ran: 5, rate_limited: BURST - 5 }, why);
      assert.equal(upstream.executed.flushed, 5);
    });

    test('a global counter, forty grants at once: 5 run in all', async () => {
      const { total, why } = await burst(proxy.url, 'shared', CROWD);
      assert.deepEqual(total, { ran: 5, rate_limited: BURST - 5 }, why);
      assert.equal(upstream.executed.shared, 5);
      assert.equal(await countInRedis(redis, 'shared'), 5);
    });

    test('grant and global limits on one call (5 per grant, 8 in all), forty grants: 8 run, none over 5 for a grant', async () => {
      const { total, perGrant, why } = await burst(proxy.url, 'mixed', CROWD);
      assert.deepEqual(total, { ran: 8, rate_limited: BURST - 8 }, why);
      for (const [grant, outcomes] of Object.entries(perGrant)) {
        assert.ok((outcomes.ran ?? 0) <= 5, `${grant} ran ${outcomes.ran} times`);
      }
      assert.equal(upstream.executed.mixed, 8);
      assert.equal(await countInRedis(redis, 'mixed_global'), 8);
      assert.equal(await countInRedis(redis, 'mixed_grant'), 8);
    });

    test('a Redis that stalls: every call is denied with store_error (fail closed), none waits for the stall to end', async () => {
      // A second connection pauses Redis's write commands (the proxy's
      // scripts) for far longer than the proxy waits (250 ms of silence), then
      // lets them go: CLIENT UNPAUSE is no write, so it is not held up.
      const pauser = createClient({ url: redisServer.url });
      pauser.on('error', () => {});
      await pauser.connect();
      // Long enough that a proxy giving up at its 10 s ceiling (maxWaitMs) on a loaded
      // machine still answers well before the pause would end.
      const PAUSE_MS = 60_000;
      try {
        await pauser.sendCommand(['CLIENT', 'PAUSE', String(PAUSE_MS), 'WRITE']);
        const started = performance.now();
        const { total } = await burst(proxy.url, 'stalled', ['carol'], 50);
        const waited = performance.now() - started;
        assert.deepEqual(total, { store_error: 50 });
        assert.ok(waited < PAUSE_MS / 2, `answered after ${Math.round(waited)} ms, while Redis was paused for ${PAUSE_MS} ms`);
        assert.equal(upstream.executed.stalled, undefined, 'nothing ran');
      } finally {
        await pauser.sendCommand(['CLIENT', 'UNPAUSE']);
        await pauser.close();
      }
      // Redis is back: the scripts that waited in its queue run now, and the
      // proxy gives back what they charged (5 admitted, late) when their
      // answers arrive. Wait for that state: carol's bucket exists and holds 0.
      const key = async () => {
        for await (const keys of redis.scanIterator({ MATCH: 'tg:{carol}:*"stalled"*', COUNT: 1000 })) if (keys.length) return keys[0];
        return null;
      };
      const deadline = Date.now() + 60_000;
      let held;
      while (!(held = await key()) || (await redis.get(held)) !== '0') {
        assert.ok(Date.now() < deadline, `the late charges were not given back: ${held} holds ${held && await redis.get(held)}`);
        await sleep(50);
      }
      const { total, why } = await burst(proxy.url, 'stalled', ['carol']);
      assert.deepEqual(total, { ran: 5, rate_limited: BURST - 5 }, why);
      assert.equal(upstream.executed.stalled, 5);
    });
  });

  describe('one proxy on a Redis Cluster (--redis-cluster)', () => {
    let cluster;
    let nodes; // the test's own connection to each master
    let proxy;
    before(async () => {
      cluster = await startRedisCluster({ masters: 3 });
      nodes = [];
      for (const { url } of cluster.nodes) {
        const node = createClient({ url });
        node.on('error', () => {});
        await node.connect();
        nodes.push(node);
      }
      proxy = await serve(['--policy', policyPath, '--upstream', upstream.url, '--grants', grantsPath,
        '--store', cluster.nodes[1].url, '--redis-cluster', '--no-watch']);
    });
    after(async () => {
      await proxy?.stop();
      for (const node of nodes ?? []) await node.close();
      await cluster?.stop();
    });

    test('one grant: exactly max run, on the master of its slot', async () => {
      const { total, why } = await burst(proxy.url, 'cluster_run', ['dave']);
      assert.deepEqual(total, { ran: 5, rate_limited: BURST - 5 }, why);
      assert.equal(upstream.executed.cluster_run, 5);
      assert.equal(await countInRedis(nodes, 'cluster_run'), 5);
    });

    test('a global counter, forty grants at once: exactly max run', async () => {
      const { total, why } = await burst(proxy.url, 'cluster_shared', CROWD);
      assert.deepEqual(total, { ran: 5, rate_limited: BURST - 5 }, why);
      assert.equal(upstream.executed.cluster_shared, 5);
      assert.equal(await countInRedis(nodes, 'cluster_shared'), 5);
    });

    test('grant and global limits on one call span two slots: no store_error, never over either limit', async () => {
      // Two scripts per call, one per slot: a call charged on its grant's
      // slot and then denied on the global one gives its charge back, and in
      // between another call may be denied by it (worker/stores/README.md):
      // at most 8, each grant at most 5, never more; no call fails.
      const { total, perGrant, why } = await burst(proxy.url, 'cluster_mixed', CROWD);
      assert.equal(total.store_error, undefined, why);
      assert.equal((total.ran ?? 0) + (total.rate_limited ?? 0), BURST, JSON.stringify(total));
      assert.ok(total.ran >= 1 && total.ran <= 8, `${total.ran} ran`);
      for (const [grant, outcomes] of Object.entries(perGrant)) {
        assert.ok((outcomes.ran ?? 0) <= 5, `${grant} ran ${outcomes.ran} times`);
      }
      assert.equal(upstream.executed.cluster_mixed, total.ran);
      assert.equal(await countInRedis(nodes, 'cluster_mixed_global'), total.ran);
      assert.equal(await countInRedis(nodes, 'cluster_mixed_grant'), total.ran);
    });
  });
});
