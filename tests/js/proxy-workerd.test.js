// The proxy inside workerd (the Cloudflare Workers runtime) through Miniflare:
// the Workers entry (worker/workers.js) with counters and approvals in Durable
// Objects, between the official MCP SDK client and the real
// @modelcontextprotocol/server-everything.
//
// Every module is listed explicitly, from worker/workers.js's imports
// (./workerd-modules.js says why, and adds the npm packages the worker
// imports, eventsource-parser and jose, where workerd looks them up; wrangler
// bundles them instead).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { Miniflare } from 'miniflare';

import { connectClient, postRaw, sha256, slidingRateLimit, startEverything } from './proxy-helpers.js';
import { repoRoot } from './cli-helpers.js';
import { moduleGraph } from './workerd-modules.js';

const ADMIN = 'workerd-admin';
const TOKENS = { alice: 'alice-workerd', bob: 'bob-workerd' };
const POLICY = {
  version: '1',
  default: 'deny',
  hide: ['get-env'],
  tools: {
    echo: slidingRateLimit(2, 'hour'), // sliding: counted against the wall clock (slidingRateLimit)
    'get-sum': {},
    'get-tiny-image': { action: 'require_approval' },
  },
};


/** Miniflare running the Workers entry with these bindings. */
export async function startWorkerProxy(bindings) {
  const modules = await moduleGraph('worker/workers.js');
  const mf = new Miniflare({
    modulesRoot: repoRoot,
    modules,
    compatibilityDate: '2025-01-01',
    bindings,
    durableObjects: {
      COUNTERS: { className: 'ToolgateCounters', useSQLite: true },
      APPROVALS: { className: 'ToolgateApprovals', useSQLite: true },
    },
    host: '127.0.0.1',
    port: 0,
  });
  const url = await mf.ready;
  return { mf, url: url.href.replace(/\/$/, '') };
}

let everything;
let proxy;
let mcp;
before(async () => {
  everything = await startEverything();
  proxy = await startWorkerProxy({
    UPSTREAM_URL: everything.url,
    POLICY: JSON.stringify(POLICY),
    GRANTS: JSON.stringify({ grants: Object.entries(TOKENS).map(([id, token]) => ({ id, token_sha256: sha256(token) })) }),
    ADMIN_TOKEN: ADMIN,
  });
  mcp = `${proxy.url}/mcp`;
});
after(async () => {
  await proxy?.mf.dispose();
  await everything?.stop();
});

const text = (result) => result.content.map((c) => c.text).join('');

describe('the Workers entry in workerd', () => {
  test('tools/list without hidden tools; allowed calls reach the server', async () => {
    const client = await connectClient(mcp, TOKENS.alice);
    try {
      const names = (await client.listTools()).tools.map((t) => t.name);
      assert.ok(names.includes('echo') && !names.includes('get-env'), names.join());
      const sum = await client.callTool({ name: 'get-sum', arguments: { a: 20, b: 22 } });
      assert.match(text(sum), /42/);
      const denied = await client.callTool({ name: 'get-env', arguments: {} });
      assert.equal(denied.structuredContent.code, 'hidden');
    } finally {
      await client.close();
    }
  });

  test('rate limits per grant, counted in Durable Objects', async () => {
    const alice = await connectClient(mcp, TOKENS.alice);
    const bob = await connectClient(mcp, TOKENS.bob);
    try {
      for (let i = 0; i < 2; i++) assert.equal((await alice.callTool({ name: 'echo', arguments: { message: 'x' } })).isError, undefined);
      const third = await alice.callTool({ name: 'echo', arguments: { message: 'x' } });
      assert.equal(third.structuredContent.code, 'rate_limited');
      assert.equal((await bob.callTool({ name: 'echo', arguments: { message: 'x' } })).isError, undefined);
    } finally {
      await alice.close();
      await bob.close();
    }
  });

  test('approvals kept in a Durable Object, approved over the admin API', async () => {
    const client = await connectClient(mcp, TOKENS.bob);
    try {
      const first = await client.callTool({ name: 'get-tiny-image', arguments: {} });
      assert.match(text(first), /^\[APPROVAL REQUIRED\]/);
      const id = first.structuredContent.approval_id;
      const pending = await (await fetch(`${proxy.url}/approvals/pending`, { headers: { authorization: `Bearer ${ADMIN}` } })).json();
      assert.ok(pending.approvals.some((a) => a.id === id && a.grant === 'bob'));
      const approved = await fetch(`${proxy.url}/approvals/${id}`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}` } });
      assert.equal(approved.status, 200);
      const second = await client.callTool({ name: 'get-tiny-image', arguments: {} });
      assert.equal(second.isError, undefined, text(second));
    } finally {
      await client.close();
    }
  });

  test('no token: 401; a batch with a tools/call notification: refused', async () => {
    const anonymous = await postRaw(mcp, { jsonrpc: '2.0', id: 1, method: 'tools/list' });
    assert.equal(anonymous.status, 401);
    const refused = await postRaw(mcp, [{ jsonrpc: '2.0', method: 'tools/call', params: { name: 'get-sum' } }], { token: TOKENS.alice });
    assert.equal(refused.status, 400);
  });

  test('a flood of large calls waiting for approval is refused; the admin list stays answerable', async () => {
    const big = 'x'.repeat(2 * 1024 * 1024);
    for (let i = 0; i < 20; i++) {
      const answer = await postRaw(mcp, { jsonrpc: '2.0', id: i, method: 'tools/call', params: { name: 'get-tiny-image', arguments: { pad: `${i}${big}` } } }, { token: TOKENS.alice });
      assert.equal(answer.json.result.structuredContent.code, 'approval_limit', answer.text.slice(0, 200));
    }
    const pending = await fetch(`${proxy.url}/approvals/pending`, { headers: { authorization: `Bearer ${ADMIN}` } });
    assert.equal(pending.status, 200);
    assert.ok(!(await pending.json()).approvals.some((a) => a.grant === 'alice' && JSON.stringify(a.arguments).length > 65536));
  });

  test('DNS rebinding: a foreign Host or Origin gets 403 from the Workers entry', async () => {
    const { connect } = await import('node:net');
    const { port } = new URL(mcp);
    // A raw socket: fetch would set Host and Origin itself.
    const send = (...headers) => new Promise((resolve, reject) => {
      const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
      const socket = connect(Number(port), '127.0.0.1', () => socket.end(`POST /mcp HTTP/1.1\r\n${headers.map((h) => `${h}\r\n`).join('')}`
        + `Authorization: Bearer ${TOKENS.alice}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n`
        + `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`));
      const chunks = [];
      socket.on('data', (chunk) => chunks.push(chunk));
      socket.on('error', reject);
      socket.on('close', () => resolve(Number(/^HTTP\/1\.[01] (\d{3})/.exec(Buffer.concat(chunks).toString('latin1'))?.[1])));
    });
    assert.equal(await send('Host: evil.example.com'), 403);
    assert.equal(await send(`Host: evil.example.com:${port}`), 403);
    assert.equal(await send(`Host: 127.0.0.1:${port}`, 'Origin: http://evil.example.com'), 403);
    // The Worker's own loopback Host passes the check (the server then answers: 400 without a session).
    assert.ok([200, 400].includes(await send(`Host: 127.0.0.1:${port}`)));
  });

  test('configurations that cannot mean what they say serve nothing, and quote no secret', async () => {
    const grants = (extra) => JSON.stringify({ grants: [{ id: 'alice', token_sha256: sha256(TOKENS.alice), ...extra }] });
    const cases = [
      ['no secret to bind sessions with', { UPSTREAM_URL: everything.url, POLICY: JSON.stringify(POLICY), GRANTS: grants({}) }, /SESSION_KEY/],
      ['a grant policy given as a file path', { UPSTREAM_URL: everything.url, POLICY: JSON.stringify(POLICY), GRANTS: grants({ policy: 'release.json' }), ADMIN_TOKEN: ADMIN }, /inline/],
      ['an upstream credential holding a line break', { UPSTREAM_URL: everything.url, POLICY: JSON.stringify(POLICY), GRANTS: grants({}), ADMIN_TOKEN: ADMIN, UPSTREAM_AUTHORIZATION: 'Bearer s3cr3t-value\nX-Injected: 1' }, /upstream header "authorization" cannot be sent/],
      ['SERVERS that is not JSON', { SERVERS: '{"a": {"upstream": "http://x", "headers": {"authorization": "Bearer s3cr3t-value"}}', GRANTS: grants({}), ADMIN_TOKEN: ADMIN }, /SERVERS binding is not JSON/],
    ];
    for (const [name, bindings, why] of cases) {
      const broken = await startWorkerProxy(bindings);
      try {
        const response = await postRaw(`${broken.url}/mcp`, { jsonrpc: '2.0', id: 1, method: 'tools/list' }, { token: TOKENS.alice });
        assert.equal(response.status, 500, name);
        assert.match(response.json.error, why, name);
        assert.ok(!response.text.includes('s3cr3t'), `${name}: no secret in the answer`);
      } finally {
        await broken.mf.dispose();
      }
    }
  });

  test('a broken configuration serves nothing and says why', async () => {
    const broken = await startWorkerProxy({ UPSTREAM_URL: everything.url, POLICY: '{"version": "1", "tools": {"x": {"actoin": "deny"}}}' });
    try {
      const response = await fetch(`${broken.url}/mcp`, { method: 'POST' });
      assert.equal(response.status, 500);
      assert.match((await response.json()).error, /POLICY is not a valid policy: .*actoin/);
    } finally {
      await broken.mf.dispose();
    }
  });
});
