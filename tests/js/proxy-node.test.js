// The proxy on Node, end to end with real parts: the official MCP SDK client
// -> toolgate (worker/node.js, the handler of worker/handler.js) -> the real
// @modelcontextprotocol/server-everything over Streamable HTTP.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

import { startProxy } from '../../worker/node.js';
import { MemoryCounterStore } from '../../wasm/index.js';
import {
  connectClient, grantsDocument, memoryAudit, postRaw, sha256, slidingRateLimit, startEverything, tempFile,
} from './proxy-helpers.js';

const ADMIN = 'admin-secret';
const TOKENS = { alice: 'alice-token', bob: 'bob-token', ci: 'ci-token' };

const POLICY = {
  version: '1',
  default: 'deny',
  hide: ['get-env'],
  tools: {
    // Sliding windows: these counts are made against the wall clock (slidingRateLimit).
    echo: slidingRateLimit(3, 'hour'),
    'get-sum': {
      deny_if: [{ conditions: [{ path: 'args.a', op: 'gt', value: 100 }], on_deny: 'Sums over 100 are not for agents.' }],
    },
    'get-structured-content': { action: 'deny' },
    'get-tiny-image': { action: 'require_approval' },
    'no-such-tool': slidingRateLimit(1, 'hour'),
    'toggle-simulated-logging': { require: [{ path: 'grant.role', op: 'eq', value: 'ci' }] },
    // the reload test must not see its count reset by a window boundary
    'get-resource-links': slidingRateLimit(1, 'day'),
  },
};

let everything;
let proxy;
let audit;
let counters;
let policyPath;
let mcp;

before(async () => {
  everything = await startEverything();
  policyPath = await tempFile('policy.json', POLICY);
  const ciPolicy = await tempFile('ci-policy.json', { version: '1', default: 'allow', hide: ['get-env'] });
  const grants = grantsDocument(TOKENS, { ci: { role: 'ci' } });
  grants.grants.find((g) => g.id === 'ci').policy = ciPolicy.split('/').pop();
  const grantsPath = await tempFile('grants.json', grants);
  audit = memoryAudit();
  counters = new MemoryCounterStore();
  proxy = await startProxy({
    servers: { default: { upstream: everything.url, policy: policyPath } },
    grants: grantsPath, port: 0, counters, audit, adminTokenSha256: sha256(ADMIN),
    log: () => {},
  });
  mcp = `${proxy.url}/mcp`;
});

after(async () => {
  await proxy?.close();
  await everything?.stop();
});

const text = (result) => result.content.map((c) => c.text).join('');

describe('through the official MCP client', () => {
  test('tools/list leaves hidden tools out, and only them', async () => {
    const client = await connectClient(mcp, TOKENS.alice);
    try {
      const { tools } = await client.listTools();
      const names = tools.map((t) => t.name);
      assert.ok(names.includes('echo') && names.includes('get-sum'), names.join());
      assert.ok(!names.includes('get-env'), 'get-env is hidden');
      assert.ok(names.includes('get-structured-content'), 'denied tools are listed; only hidden ones vanish');
    } finally {
      await client.close();
    }
  });

  test('an allowed call reaches the server and its answer comes back', async () => {
    const client = await connectClient(mcp, TOKENS.alice);
    try {
      const result = await client.callTool({ name: 'get-sum', arguments: { a: 2, b: 3 } });
      assert.equal(result.isError, undefined);
      assert.match(text(result), /5/);
    } finally {
      await client.close();
    }
  });

  test('a denied call is answered by the proxy as a tool error with the decision', async () => {
    const client = await connectClient(mcp, TOKENS.alice);
    try {
      const result = await client.callTool({ name: 'get-sum', arguments: { a: 101, b: 1 } });
      assert.equal(result.isError, true);
      assert.match(text(result), /^\[POLICY DENIED\] Sums over 100 are not for agents\./);
      assert.deepEqual(
        { code: result.structuredContent.code, rule: result.structuredContent.rule, decision: result.structuredContent.decision },
        { code: 'condition_denied', rule: '/tools/get-sum/deny_if/0', decision: 'deny' },
      );
    } finally {
      await client.close();
    }
  });

  test('a denied call to a tool with an outputSchema still reaches the client (decision in _meta)', async () => {
    const client = await connectClient(mcp, TOKENS.alice);
    try {
      await client.listTools(); // the client and the proxy learn the output schemas
      const result = await client.callTool({ name: 'get-structured-content', arguments: { location: 'New York' } });
      assert.equal(result.isError, true);
      assert.match(text(result), /^\[POLICY DENIED\]/);
      assert.equal(result._meta['dev.toolgate/decision'].code, 'tool_denied');
    } finally {
      await client.close();
    }
  });

  test('rate limits count per grant; retry_after_ms comes with the denial', async () => {
    const alice = await connectClient(mcp, TOKENS.alice);
    const bob = await connectClient(mcp, TOKENS.bob);
    try {
      for (let i = 0; i < 3; i++) {
        const result = await alice.callTool({ name: 'echo', arguments: { message: `hi ${i}` } });
        assert.equal(result.isError, undefined, text(result));
      }
      const fourth = await alice.callTool({ name: 'echo', arguments: { message: 'one too many' } });
      assert.equal(fourth.isError, true);
      assert.equal(fourth.structuredContent.code, 'rate_limited');
      // Sliding (the estimate decays through the next bucket): the wait is at most two windows.
      const retry = fourth.structuredContent.retry_after_ms;
      assert.ok(retry > 0 && retry <= 2 * 3_600_000, `retry_after_ms ${retry}`);
      assert.match(text(fourth), /Retry after \d+ s\./);
      const other = await bob.callTool({ name: 'echo', arguments: { message: 'bob has his own count' } });
      assert.equal(other.isError, undefined);
    } finally {
      await alice.close();
      await bob.close();
    }
  });

  test('grant attributes and a grant\'s own policy', async () => {
    const alice = await connectClient(mcp, TOKENS.alice);
    const ci = await connectClient(mcp, TOKENS.ci);
    try {
      const denied = await alice.callTool({ name: 'toggle-simulated-logging', arguments: {} });
      assert.equal(denied.structuredContent.code, 'requirement_failed');
      // ci's own policy allows by default (and still hides get-env)
      const allowed = await ci.callTool({ name: 'get-annotated-message', arguments: { messageType: 'success' } });
      assert.equal(allowed.isError, undefined, text(allowed));
      const names = (await ci.listTools()).tools.map((t) => t.name);
      assert.ok(!names.includes('get-env'));
    } finally {
      await alice.close();
      await ci.close();
    }
  });

  test('approvals: approval required, a human approves, the identical call runs once', async () => {
    const client = await connectClient(mcp, TOKENS.bob);
    try {
      const first = await client.callTool({ name: 'get-tiny-image', arguments: {} });
      assert.equal(first.isError, true);
      assert.match(text(first), /^\[APPROVAL REQUIRED\]/);
      const id = first.structuredContent.approval_id;
      assert.match(id, /^[0-9a-f]{64}$/);
      // No --public-url: a relative link, never one built from the Host the agent sent.
      assert.equal(first.structuredContent.approval_url, `/approvals#${id}`);

      const unauthorized = await fetch(`${proxy.url}/approvals/pending`, { headers: { authorization: `Bearer ${TOKENS.bob}` } });
      assert.equal(unauthorized.status, 401, 'a grant token is not the admin token');
      const pending = await (await fetch(`${proxy.url}/approvals/pending`, { headers: { authorization: `Bearer ${ADMIN}` } })).json();
      const request = pending.approvals.find((a) => a.id === id);
      assert.deepEqual({ grant: request.grant, tool: request.tool, server: request.server, arguments: request.arguments },
        { grant: 'bob', tool: 'get-tiny-image', server: 'default', arguments: {} });

      const approved = await fetch(`${proxy.url}/approvals/${id}`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}` } });
      assert.equal(approved.status, 200);
      const second = await client.callTool({ name: 'get-tiny-image', arguments: {} });
      assert.equal(second.isError, undefined, text(second));
      assert.ok(second.content.some((c) => c.type === 'image'));
      const third = await client.callTool({ name: 'get-tiny-image', arguments: {} });
      assert.equal(third.isError, true, 'an approval allows one call');
    } finally {
      await client.close();
    }
  });

  test('a denied approval leaves the list', async () => {
    const client = await connectClient(mcp, TOKENS.alice);
    try {
      const first = await client.callTool({ name: 'get-tiny-image', arguments: {} });
      const id = first.structuredContent.approval_id;
      const denied = await fetch(`${proxy.url}/approvals/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${ADMIN}` } });
      assert.equal(denied.status, 200);
      const again = await fetch(`${proxy.url}/approvals/${id}`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}` } });
      assert.equal(again.status, 404, 'a denied request cannot be approved afterwards');
    } finally {
      await client.close();
    }
  });

  test('a tool result with isError counts: the server ran the call', async () => {
    const client = await connectClient(mcp, TOKENS.alice);
    try {
      // server-everything answers an unknown tool with an isError result, which
      // cannot be told from a tool that did its work and then failed.
      const first = await client.callTool({ name: 'no-such-tool', arguments: {} });
      assert.equal(first.isError, true);
      assert.doesNotMatch(text(first), /POLICY DENIED/);
      const second = await client.callTool({ name: 'no-such-tool', arguments: {} });
      assert.equal(second.structuredContent?.code, 'rate_limited');
    } finally {
      await client.close();
    }
  });
});

describe('authentication', () => {
  test('no token or an unknown token: 401 with WWW-Authenticate, nothing forwarded', async () => {
    for (const token of [undefined, 'wrong-token']) {
      const response = await postRaw(mcp, { jsonrpc: '2.0', id: 1, method: 'tools/list' }, { token });
      assert.equal(response.status, 401);
      assert.match(response.headers.get('www-authenticate'), /^Bearer /);
      assert.equal(response.json.error.code, -32600);
    }
  });

  test('the SDK client without a token fails to connect', async () => {
    await assert.rejects(connectClient(mcp, undefined));
  });
});

describe('audit', () => {
  test('one event per tools/call decision, without argument values', async () => {
    const before = audit.events.length;
    const client = await connectClient(mcp, TOKENS.bob);
    try {
      await client.callTool({ name: 'get-sum', arguments: { a: 7, b: 8 } });
      await client.callTool({ name: 'get-sum', arguments: { a: 700, b: 8 } });
    } finally {
      await client.close();
    }
    const events = (await audit.waitFor(before + 2)).slice(before);
    const [allowed, denied] = events;
    assert.equal(allowed.decision, 'allow');
    assert.equal(allowed.grant, 'bob');
    assert.equal(allowed.tool, 'get-sum');
    assert.equal(allowed.server, 'default');
    assert.equal(allowed.upstream_status, 200);
    assert.equal(allowed.outcome, 'result');
    assert.deepEqual(allowed.argument_keys, ['a', 'b']);
    assert.match(allowed.argument_hmac, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(allowed.policy_hash, sha256(JSON.stringify(POLICY, null, 2)));
    assert.ok(typeof allowed.latency_ms === 'number' && allowed.latency_ms >= 0);
    assert.ok(!JSON.stringify(allowed).includes('700') && !('arguments' in allowed));
    assert.equal(denied.decision, 'deny');
    assert.equal(denied.code, 'condition_denied');
    assert.equal(denied.upstream_status, null);
    assert.notEqual(denied.argument_hmac, allowed.argument_hmac);
    assert.ok(!JSON.stringify(denied).includes('700'), 'argument values stay out of the log');
  });
});

describe('reload', () => {
  test('a changed policy applies without restart; counters carry over; an invalid one is refused', async () => {
    const client = await connectClient(mcp, TOKENS.ci);
    const alice = await connectClient(mcp, TOKENS.alice);
    try {
      // alice's one daily call; the count must survive the reload
      const used = await alice.callTool({ name: 'get-resource-links', arguments: { count: 1 } });
      assert.equal(used.isError, undefined, text(used));
      const limited = await alice.callTool({ name: 'get-resource-links', arguments: { count: 1 } });
      assert.equal(limited.structuredContent?.code, 'rate_limited');
      const next = structuredClone(POLICY);
      next.tools['get-sum'] = { action: 'deny', on_deny: 'Sums are off today.' };
      await writeFile(policyPath, JSON.stringify(next));
      await waitForDecision(alice, 'get-sum', 'tool_denied');
      const still = await alice.callTool({ name: 'get-resource-links', arguments: { count: 1 } });
      assert.equal(still.structuredContent?.code, 'rate_limited', 'counters were not reset');

      await writeFile(policyPath, '{"version": "1", "default": "allow", "toolz": {}}');
      await sleep(400);
      await proxy.reload();
      const kept = await alice.callTool({ name: 'get-sum', arguments: { a: 1, b: 1 } });
      assert.equal(kept.structuredContent.code, 'tool_denied', 'the invalid policy was refused; the old one stays');
    } finally {
      await client.close();
      await alice.close();
      await writeFile(policyPath, JSON.stringify(POLICY, null, 2));
      await proxy.reload();
    }
  });
});

// Calls `tool` until it gets `code`: the proxy reloads the policy when its
// file watcher's change event arrives, then its 100 ms debounce ends, which a
// loaded machine can take seconds to do (60 s only guards against a hang).
async function waitForDecision(client, tool, code) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const result = await client.callTool({ name: tool, arguments: { a: 1, b: 1 } });
    if (result.structuredContent?.code === code) return;
    if (Date.now() > deadline) throw new Error(`no reload: still ${JSON.stringify(result)}`);
    await sleep(50);
  }
}
