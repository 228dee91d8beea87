// The proxy's handler (worker/handler.js) on bad input and failing upstreams,
// driven with web-standard Requests, in front of a scriptable fake MCP server
// (a real HTTP server on loopback). Each case checks what the client gets and
// what reached the server: a denied or refused call never does.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { loadToolgate, MemoryApprovalStore, MemoryCounterStore } from '../../wasm/index.js';
import { createHandler } from '../../worker/handler.js';
import { Grants } from '../../worker/grants.js';
import { echoResults, grantsDocument, memoryAudit, startFakeUpstream, waitFor } from './proxy-helpers.js';

// Awaited before any test or hook is registered (node:test runs the file's
// after() hooks once the tests registered so far are done).
const toolgate = await loadToolgate();

// TOOLGATE_TEST_TRANSPORT=node runs every case over what `toolgate serve` uses
// on Node (worker/node-transport.js: its answers' bodies and headers read
// directly; node:crypto hashes) instead of fetch and WebCrypto.
const nodeStack = process.env.TOOLGATE_TEST_TRANSPORT === 'node' ? await (async () => {
  const { createNodeTransport, upstreamBody, upstreamHeaders } = await import('../../worker/node-transport.js');
  const { NODE_SHA256 } = await import('../../worker/node.js');
  const transport = createNodeTransport();
  after(() => transport.close());
  return { fetch: transport, upstreamBody, upstreamHeaders, sha256: NODE_SHA256 };
})() : {};

const TOKEN = 'alice-token';
const POLICY = toolgate.compile({
  version: '1',
  default: 'deny',
  hide: ['secret-*'],
  tools: {
    echo: { rate_limit: '1/hour' },
    '*': {},
    'delete-all': { action: 'deny' },
    deploy: { action: 'require_approval' },
  },
});

// The handler's clock: the middle of an hour, so that the 1/hour count of
// echo cannot be restarted by the top of a wall-clock hour passing mid-test.
const NOW = Date.UTC(2026, 0, 1, 12, 30);

// A promise and its resolve, for an upstream that answers when the test says.
function deferred() {
  let resolve;
  const promise = new Promise((done) => { resolve = done; });
  return { promise, resolve };
}

let upstream;
let respond = (req, body, res) => json(res, echoResults(body));
before(async () => {
  upstream = await startFakeUpstream((req, body, res) => respond(req, body, res));
});
after(() => upstream.stop());

function json(res, value, status = 200, headers = {}) {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(typeof value === 'string' ? value : JSON.stringify(value));
}

function makeProxy(overrides = {}) {
  const audit = memoryAudit();
  const logs = [];
  const counters = new MemoryCounterStore();
  const handler = createHandler({
    servers: { default: { upstream: upstream.url, headers: { authorization: 'Bearer upstream-secret' }, policy: POLICY } },
    grants: new Grants(grantsDocument({ alice: TOKEN })),
    counters, approvals: new MemoryApprovalStore(), audit, upstreamTimeoutMs: 2000, clock: () => NOW,
    log: (level, message, fields) => logs.push({ level, message, ...fields }),
    ...nodeStack,
    ...overrides,
  });
  return { handler, audit, logs, counters };
}

async function post(handler, body, { token = TOKEN, headers = {}, path = '/mcp', remoteAddress = '203.0.113.9' } = {}) {
  const request = new Request(`http://toolgate.test${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
    body: typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body),
  });
  const response = await handler.fetch(request, { remoteAddress });
  const text = await response.text();
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: response.status, headers: response.headers, text, json: parsed };
}

const call = (id, name, args = {}) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });
const forwardedCalls = (since) => upstream.requests.slice(since).flatMap((r) => {
  try {
    const body = JSON.parse(r.body);
    return (Array.isArray(body) ? body : [body]).filter((m) => m.method === 'tools/call').map((m) => m.params.name);
  } catch {
    return [];
  }
});

describe('what goes upstream', () => {
  test('the client\'s Authorization and cookies stay here; configured credentials and MCP headers go on', async () => {
    const { handler } = makeProxy();
    const since = upstream.requests.length;
    respond = (req, body, res) => json(res, echoResults(body), 200, { 'mcp-session-id': 'session-1', 'set-cookie': 'upstream=1' });
    const answer = await post(handler, call(1, 'echo'), { headers: { cookie: 'a=b', 'mcp-session-id': 'session-1', 'mcp-protocol-version': '2025-06-18', 'x-forwarded-for': '1.2.3.4' } });
    const seen = upstream.requests[since].headers;
    assert.equal(seen.authorization, 'Bearer upstream-secret');
    assert.equal(seen.cookie, undefined);
    assert.equal(seen['x-forwarded-for'], undefined);
    assert.equal(seen['mcp-session-id'], 'session-1');
    assert.equal(seen['mcp-protocol-version'], '2025-06-18');
    assert.equal(answer.headers.get('mcp-session-id'), 'session-1');
    assert.equal(answer.headers.get('set-cookie'), null);
    respond = (req, body, res) => json(res, echoResults(body));
  });

  test('a batch mixing allowed and denied calls: only the allowed ones go on; every id is answered', async () => {
    const { handler } = makeProxy();
    const since = upstream.requests.length;
    const answer = await post(handler, [call(1, 'read-file'), call(2, 'delete-all'), { jsonrpc: '2.0', id: 3, method: 'tools/list' }, call(4, 'secret-thing')]);
    assert.equal(answer.status, 200);
    assert.deepEqual(forwardedCalls(since), ['read-file']);
    const byId = Object.fromEntries(answer.json.map((m) => [m.id, m]));
    assert.deepEqual(Object.keys(byId).sort(), ['1', '2', '3', '4']);
    assert.equal(byId[1].result.content[0].text, 'ran read-file');
    assert.equal(byId[2].result.structuredContent.code, 'tool_denied');
    assert.equal(byId[4].result.structuredContent.code, 'hidden');
  });

  test('the server gets the messages as decided (parsed and written again)', async () => {
    const { handler } = makeProxy();
    const since = upstream.requests.length;
    await post(handler, '{ "jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": { "name": "read-file", "arguments": { "n": 1.0 } } }');
    assert.equal(upstream.requests[since].body, '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"read-file","arguments":{"n":1}}}');
  });

  test('notifications and responses only: the server\'s 202 comes back', async () => {
    const { handler } = makeProxy();
    respond = (req, body, res) => { res.writeHead(202); res.end(); };
    const answer = await post(handler, { jsonrpc: '2.0', method: 'notifications/initialized' });
    assert.equal(answer.status, 202);
    respond = (req, body, res) => json(res, echoResults(body));
  });
});

describe('session ids are bound to the grant and server that opened them', () => {
  const KEY = 'session-key-0123456789abcdef';
  const BOB = 'bob-token';
  const bound = (overrides = {}) => makeProxy({
    sessionKey: KEY,
    grants: new Grants(grantsDocument({ alice: TOKEN, bob: BOB })),
    servers: {
      default: { upstream: upstream.url, policy: POLICY },
      other: { upstream: upstream.url, policy: POLICY },
    },
    ...overrides,
  });
  // The server opens session "up-1" on initialize, as MCP servers do.
  const opening = () => {
    respond = (req, body, res) => json(res, echoResults(body), 200, { 'mcp-session-id': 'up-1' });
  };
  after(() => {
    respond = (req, body, res) => json(res, echoResults(body));
  });
  const initialize = { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } };
  const bare = async (handler, method, { token, session, path = '/mcp' }) => {
    const request = new Request(`http://toolgate.test${path}`, { method, headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream', 'mcp-session-id': session } });
    return handler.fetch(request, { remoteAddress: '203.0.113.9' });
  };

  test('the client holds "<server\'s id>.<MAC>"; the server sees its own id; audit events name the server\'s id', async () => {
    const { handler, audit } = bound();
    opening();
    const opened = await post(handler, initialize);
    const session = opened.headers.get('mcp-session-id');
    assert.match(session, /^up-1\.[A-Za-z0-9_-]{22}$/);
    const since = upstream.requests.length;
    const called = await post(handler, call(1, 'read-file'), { headers: { 'mcp-session-id': session } });
    assert.equal(called.json.result.content[0].text, 'ran read-file');
    assert.equal(upstream.requests[since].headers['mcp-session-id'], 'up-1');
    assert.equal(called.headers.get('mcp-session-id'), session, 'the server\'s id comes back bound the same way');
    assert.equal((await audit.waitFor(1))[0].session, 'up-1');
  });

  test('another grant, another server, a bare or altered id: 404 "Session not found", nothing forwarded', async () => {
    const { handler, logs } = bound();
    opening();
    const session = (await post(handler, initialize)).headers.get('mcp-session-id');
    const since = upstream.requests.length;
    const refused = [
      await post(handler, call(1, 'read-file'), { token: BOB, headers: { 'mcp-session-id': session } }),
      await post(handler, call(1, 'read-file'), { path: '/mcp/other', headers: { 'mcp-session-id': session } }),
      await post(handler, call(1, 'read-file'), { headers: { 'mcp-session-id': 'up-1' } }),
      await post(handler, call(1, 'read-file'), { headers: { 'mcp-session-id': `${session.slice(0, -1)}${session.endsWith('A') ? 'B' : 'A'}` } }),
      await post(handler, call(1, 'read-file'), { headers: { 'mcp-session-id': `up-2${session.slice(4)}` } }),
    ];
    for (const answer of refused) {
      assert.equal(answer.status, 404);
      assert.equal(answer.json.error.code, -32001);
      assert.match(answer.json.error.message, /^Session not found/);
    }
    // Bob cannot read alice's event stream, nor end her session.
    assert.equal((await bare(handler, 'GET', { token: BOB, session })).status, 404);
    assert.equal((await bare(handler, 'DELETE', { token: BOB, session })).status, 404);
    assert.equal(upstream.requests.length, since, 'nothing reached the server');
    assert.ok(logs.some((l) => l.level === 'warn' && /did not open/.test(l.message) && l.grant === 'bob'));
    // Alice can.
    respond = (req, body, res) => { res.writeHead(200); res.end(); };
    assert.equal((await bare(handler, 'DELETE', { token: TOKEN, session })).status, 200);
    assert.equal(upstream.requests.at(-1).headers['mcp-session-id'], 'up-1');
  });

  test('stateless: every instance with the key accepts the ids of the others; another key does not', async () => {
    const first = bound();
    const second = bound();
    const stranger = bound({ sessionKey: 'another-key-0123456789abcdef' });
    opening();
    const session = (await post(first.handler, initialize)).headers.get('mcp-session-id');
    assert.equal((await post(second.handler, call(1, 'read-file'), { headers: { 'mcp-session-id': session } })).status, 200);
    assert.equal((await post(stranger.handler, call(1, 'read-file'), { headers: { 'mcp-session-id': session } })).status, 404);
    assert.throws(() => bound({ sessionKey: 'short' }), /at least 16 characters/);
  });
});

describe('refused before anything is forwarded', () => {
  const cases = [
    ['malformed JSON', '{"jsonrpc": "2.0", "id": 1, "method": "tools/call", ', 400, -32700],
    ['invalid UTF-8', new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]), 400, -32700],
    ['duplicate keys', '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read-file","name":"delete-all"}}', 400, -32600],
    ['duplicate keys spelled with escapes', '{"jsonrpc":"2.0","id":1,"method":"tools/list","\\u006dethod":"tools/call","params":{"name":"delete-all"}}', 400, -32600],
    ['tools/call as a notification', { jsonrpc: '2.0', method: 'tools/call', params: { name: 'read-file' } }, 400, -32600],
    ['tools/call as a notification inside a batch', [call(1, 'read-file'), { jsonrpc: '2.0', method: 'tools/call', params: { name: 'delete-all' } }], 400, -32600],
    ['nesting 100 000 deep', `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read-file","arguments":{"a":${'['.repeat(100_000)}${']'.repeat(100_000)}}}}`, 400, -32600],
    ['an empty batch', '[]', 400, -32600],
  ];
  for (const [name, body, status, code] of cases) {
    test(name, async () => {
      const { handler } = makeProxy();
      const since = upstream.requests.length;
      const answer = await post(handler, body);
      assert.equal(answer.status, status, answer.text);
      assert.equal(answer.json.error.code, code);
      assert.equal(upstream.requests.length, since, 'nothing reached the server');
    });
  }

  test('wrong content type: 415', async () => {
    const { handler } = makeProxy();
    const answer = await post(handler, call(1, 'read-file'), { headers: { 'content-type': 'text/plain' } });
    assert.equal(answer.status, 415);
  });

  test('a body over the limit: 413', async () => {
    const { handler } = makeProxy({ maxBodyBytes: 1000 });
    const answer = await post(handler, call(1, 'read-file', { blob: 'x'.repeat(2000) }));
    assert.equal(answer.status, 413);
    assert.match(answer.json.error.message, /exceeds 1000 bytes/);
  });

  test('look-alikes of tools/call as a request method, tool names differing by case or Unicode form', async () => {
    const { handler } = makeProxy();
    const since = upstream.requests.length;
    const answer = await post(handler, [
      { jsonrpc: '2.0', id: 1, method: 'Tools/Call', params: { name: 'delete-all' } },
      { jsonrpc: '2.0', id: 2, method: 'tools/call\u200b', params: { name: 'delete-all' } },
      call(3, 'DELETE-ALL'),
      call(4, 'ｄｅｌｅｔｅ-all'), // full-width letters
      call(5, 'dеlete-all'), // Cyrillic "е"
      call(6, 'Echo'),
      call(7, { toString: 'echo' }),
    ]);
    assert.deepEqual(forwardedCalls(since), []);
    const byId = Object.fromEntries(answer.json.map((m) => [m.id, m]));
    assert.equal(byId[1].error.code, -32600);
    assert.equal(byId[2].error.code, -32600);
    for (const id of [3, 4, 5, 6, 7]) assert.equal(byId[id].result.structuredContent.code, 'invalid_call', `id ${id}`);
    assert.match(byId[3].result.content[0].text, /differs from the policy's "delete-all" only by case/);
    assert.match(byId[5].result.content[0].text, /outside A-Z/);
  });

  test('Unicode normalisation forms of a policy\'s tool name are refused, not looked up as another tool', async () => {
    const policy = toolgate.compile({ version: '1', default: 'deny', tools: { 'café': { action: 'deny' }, '*': {} } });
    const { handler } = makeProxy({ servers: { default: { upstream: upstream.url, policy } } });
    const since = upstream.requests.length;
    const answer = await post(handler, [call(1, 'cafe\u0301'), call(2, 'CAFÉ'), call(3, 'café')]);
    assert.deepEqual(forwardedCalls(since), []);
    assert.deepEqual(answer.json.map((m) => m.result.structuredContent.code), ['invalid_call', 'invalid_call', 'tool_denied']);
  });

  test('percent-encoded and odd paths reach no server they should not', async () => {
    const { handler } = makeProxy();
    const since = upstream.requests.length;
    for (const path of ['/%6Dcp', '/mcp%2Fdefault', '/mcp/..%2Fdefault', '/MCP', '/mcp/default%00']) {
      const answer = await post(handler, call(1, 'read-file'), { path });
      assert.equal(answer.status, 404, path);
    }
    assert.equal(upstream.requests.length, since);
  });

  test('message content never becomes a header upstream', async () => {
    const { handler } = makeProxy();
    const since = upstream.requests.length;
    const answer = await post(handler, [
      call(1, 'read-file', { path: 'a\r\nX-Injected: 1\r\n\r\n' }),
      call(2, 'read-file\r\nX-Injected: 1'),
    ]);
    assert.equal(upstream.requests.length, since + 1);
    assert.equal(upstream.requests[since].headers['x-injected'], undefined);
    assert.deepEqual(forwardedCalls(since), ['read-file']);
    assert.equal(answer.json.find((m) => m.id === 2).result.structuredContent.code, 'invalid_call');
  });

  test('reused request ids in a batch: the second is refused', async () => {
    const { handler } = makeProxy();
    const since = upstream.requests.length;
    const answer = await post(handler, [call(1, 'read-file'), call(1, 'write-file')]);
    assert.deepEqual(forwardedCalls(since), ['read-file']);
    assert.ok(answer.json.some((m) => m.id === 1 && m.error?.code === -32600));
  });

  test('params not an object; name not a string', async () => {
    const { handler } = makeProxy();
    const since = upstream.requests.length;
    const answer = await post(handler, [{ jsonrpc: '2.0', id: 1, method: 'tools/call', params: ['echo'] }, call(2, 42)]);
    assert.deepEqual(forwardedCalls(since), []);
    const byId = Object.fromEntries(answer.json.map((m) => [m.id, m]));
    assert.equal(byId[1].error.code, -32602);
    assert.equal(byId[2].result.structuredContent.code, 'invalid_call');
  });
});

describe('failing upstreams: a clear answer; quota back only when nothing can have run', () => {
  // echo allows 1/hour: a second admitted call proves the first was rolled back.
  async function assertRolledBack(handler, counters) {
    const pending = POLICY.evaluate({ tool: 'echo', grant: 'alice' }, { now: NOW });
    const [state] = await counters.peek(pending.counters);
    assert.equal(state.current, 0, 'the failed call\'s quota was given back');
    assert.ok(handler);
  }

  test('upstream down: 502 with a JSON-RPC error', async () => {
    const down = await startFakeUpstream(() => {});
    const url = down.url;
    await down.stop();
    const { handler, counters, audit } = makeProxy({ servers: { default: { upstream: url, policy: POLICY } } });
    const answer = await post(handler, call(1, 'echo'));
    assert.equal(answer.status, 502);
    assert.equal(answer.json.id, 1);
    assert.match(answer.json.error.message, /did not answer/);
    await assertRolledBack(handler, counters);
    const [event] = await audit.waitFor(1);
    assert.equal(event.decision, 'allow');
    assert.equal(event.upstream_status, 'unreachable');
  });

  // The server got the call and may be running it: its quota stays spent,
  // or a slow call (or a client hanging up) would run past the limit.
  async function assertKept(counters) {
    const pending = POLICY.evaluate({ tool: 'echo', grant: 'alice' }, { now: NOW });
    const [state] = await counters.peek(pending.counters);
    assert.equal(state.current, 1, 'the quota stays spent');
  }

  test('upstream slow: 502 after the timeout; the quota stays spent', { timeout: 30_000 }, async () => {
    const { handler, counters } = makeProxy({ upstreamTimeoutMs: 200 });
    // The upstream answers only once the proxy has answered: the 502 can only
    // come from the proxy's timeout (a pause on the upstream's side would race
    // the timeout on a loaded machine).
    const proxyAnswered = deferred();
    respond = async (req, body, res) => { await proxyAnswered.promise; json(res, echoResults(body)); };
    try {
      const answer = await post(handler, call(1, 'echo'));
      assert.equal(answer.status, 502);
      assert.match(answer.json.error.message, /no answer within 200 ms/);
      await assertKept(counters);
    } finally {
      proxyAnswered.resolve();
      respond = (req, body, res) => json(res, echoResults(body));
    }
  });

  test('a client that hangs up after the call was forwarded does not get its quota back', { timeout: 30_000 }, async () => {
    const { handler, counters, audit } = makeProxy();
    const since = upstream.requests.length;
    // Each client hangs up once its call has reached the upstream (not after a
    // pause, which on a loaded machine can end before the call is forwarded);
    // the upstream answers after that.
    const clients = [];
    const released = deferred();
    respond = async (req, body, res) => {
      clients.shift()?.abort();
      await released.promise;
      json(res, echoResults(body));
    };
    try {
      for (let i = 0; i < 3; i++) {
        const client = new AbortController();
        clients.push(client);
        const request = new Request('http://toolgate.test/mcp', {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${TOKEN}` },
          body: JSON.stringify(call(i, 'echo')),
          signal: client.signal,
        });
        await handler.fetch(request, {}).then((r) => r.text()).catch(() => {});
        clients.length = 0;
      }
      released.resolve();
      // echo allows 1/hour: only the first call went upstream, and it stays counted
      const events = await audit.waitFor(3);
      assert.deepEqual(forwardedCalls(since), ['echo']);
      await assertKept(counters);
      assert.equal(events.filter((e) => e.code === 'rate_limited').length, 2);
      assert.equal(events.find((e) => e.code === 'allowed').upstream_status, 'client_left');
    } finally {
      released.resolve();
      respond = (req, body, res) => json(res, echoResults(body));
    }
  });

  // The server took the request (2xx or 5xx) and may have run the call before
  // its answer broke: the quota stays spent. A 4xx refused the request before
  // anything ran: the quota goes back.
  const garbage = [
    ['HTML instead of JSON', (req, body, res) => { res.writeHead(200, { 'content-type': 'text/html' }); res.end('<h1>hi</h1>'); }, 502, assertKept],
    ['broken JSON', (req, body, res) => json(res, '{"jsonrpc": "2.0", "id": 1, "res'), 502, assertKept],
    ['HTTP 500', (req, body, res) => json(res, { error: 'boom' }, 500), 500, assertKept],
    ['a JSON body cut off mid-answer', (req, body, res) => { res.writeHead(200, { 'content-type': 'application/json', 'content-length': '500' }); res.write('{"jsonrpc":"2.0","id":1,'); setImmediate(() => res.destroy()); }, 502, assertKept],
    ['HTTP 400', (req, body, res) => json(res, { jsonrpc: '2.0', id: null, error: { code: -32600, message: 'Bad Request: no session' } }, 400), 400, (counters) => assertRolledBack(true, counters)],
    ['an HTML 404 (an HTTP+SSE server, or not an MCP endpoint)', (req, body, res) => { res.writeHead(404, { 'content-type': 'text/html' }); res.end('<pre>Cannot POST /sse</pre>'); }, 502, (counters) => assertRolledBack(true, counters)],
  ];
  for (const [name, answerWith, status, assertQuota] of garbage) {
    test(`upstream answering ${name}`, async () => {
      const { handler, counters } = makeProxy();
      respond = answerWith;
      const answer = await post(handler, call(1, 'echo'));
      assert.equal(answer.status, status);
      assert.ok(answer.json, `a JSON answer, not ${answer.text.slice(0, 80)}`);
      if (status === 502) assert.match(answer.json.error.message, /upstream server/);
      if (/HTML/.test(name)) assert.match(answer.json.error.message, /not MCP's Streamable HTTP/);
      if (/404/.test(name)) assert.match(answer.json.error.message, /older HTTP\+SSE server/);
      await assertQuota(counters);
      respond = (req, body, res) => json(res, echoResults(body));
    });
  }

  test('a JSON-RPC error for the call gives its quota back; a result keeps it', async () => {
    const { handler, counters } = makeProxy();
    respond = (req, body, res) => json(res, { jsonrpc: '2.0', id: JSON.parse(body).id, error: { code: -32602, message: 'Unknown tool' } });
    const failed = await post(handler, call(1, 'echo'));
    assert.equal(failed.json.error.message, 'Unknown tool');
    await assertRolledBack(handler, counters);
    respond = (req, body, res) => json(res, echoResults(body));
    assert.equal((await post(handler, call(2, 'echo'))).json.result.isError, undefined);
    assert.equal((await post(handler, call(3, 'echo'))).json.result.structuredContent.code, 'rate_limited');
  });
});

describe('event streams', () => {
  test('events are passed on as they come, hidden tools leave tools/list results, calls settle', async () => {
    const { handler, audit } = makeProxy();
    let release;
    const released = new Promise((resolve) => { release = resolve; });
    respond = async (req, body, res) => {
      const id = JSON.parse(body).id;
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`event: message\nid: e1\ndata: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/progress', params: { progress: 1 } })}\n\n`);
      await released;
      res.write(`: keep-alive\n\nevent: message\nid: e2\ndata: ${JSON.stringify({ jsonrpc: '2.0', id, result: { content: [{ type: 'text', text: 'done' }] } })}\n\n`);
      res.end();
    };
    const response = await handler.fetch(new Request('http://toolgate.test/mcp', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify(call(9, 'read-file')),
    }), {});
    assert.equal(response.headers.get('content-type'), 'text/event-stream');
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let seen = '';
    while (!seen.includes('notifications/progress')) seen += (await reader.read()).value;
    assert.ok(!seen.includes('done'), 'the first event arrived before the server finished');
    assert.match(seen, /id: e1/);
    release();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += value;
    }
    assert.match(seen, /id: e2\ndata: .*"done"/);
    const [event] = await audit.waitFor(1);
    assert.equal(event.outcome, 'result');
    respond = (req, body, res) => json(res, echoResults(body));
  });

  test('tools/list results inside events (POST and GET streams) lose hidden tools', async () => {
    const { handler } = makeProxy();
    const list = (id) => ({ jsonrpc: '2.0', id, result: { tools: [{ name: 'echo', inputSchema: { type: 'object' } }, { name: 'secret-keys', inputSchema: { type: 'object' } }] } });
    respond = (req, body, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(`event: message\ndata: ${JSON.stringify(list(req.method === 'GET' ? 99 : JSON.parse(body).id))}\n\n`);
    };
    for (const method of ['POST', 'GET']) {
      const response = await handler.fetch(new Request('http://toolgate.test/mcp', {
        method,
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${TOKEN}` },
        body: method === 'POST' ? JSON.stringify({ jsonrpc: '2.0', id: 5, method: 'tools/list' }) : undefined,
      }), {});
      const text = await response.text();
      assert.match(text, /"echo"/, method);
      assert.doesNotMatch(text, /secret-keys/, method);
    }
    respond = (req, body, res) => json(res, echoResults(body));
  });
});

describe('configuration', () => {
  test('without grants: loopback clients are "anonymous", others get 401', async () => {
    const { handler, audit } = makeProxy({ grants: null });
    assert.equal((await post(handler, call(1, 'read-file'), { token: null, remoteAddress: '203.0.113.9' })).status, 401);
    assert.equal((await post(handler, call(1, 'read-file'), { token: null, remoteAddress: '::ffff:127.0.0.1' })).status, 200);
    assert.equal((await audit.waitFor(1))[0].grant, 'anonymous');
  });

  test('several servers at /mcp/<name>, each with its own policy', async () => {
    const strict = toolgate.compile({ version: '1', default: 'deny' });
    const { handler } = makeProxy({ servers: { open: { upstream: upstream.url, policy: POLICY }, strict: { upstream: upstream.url, policy: strict } } });
    assert.equal((await post(handler, call(1, 'read-file'), { path: '/mcp/open' })).json.result.content[0].text, 'ran read-file');
    assert.equal((await post(handler, call(1, 'read-file'), { path: '/mcp/strict' })).json.result.structuredContent.code, 'default_deny');
    assert.equal((await post(handler, call(1, 'read-file'), { path: '/mcp/nope' })).status, 404);
    assert.equal((await post(handler, call(1, 'read-file'), { path: '/mcp' })).status, 404);
  });

  test('the counter store failing: the call is denied (store_error), unless fail-open', async () => {
    const broken = { reserve: async () => { throw new Error('store down'); }, commit: async () => {}, rollback: async () => {} };
    const since = upstream.requests.length;
    const closed = makeProxy({ counters: broken });
    assert.equal((await post(closed.handler, call(1, 'echo'))).json.result.structuredContent.code, 'store_error');
    assert.equal(upstream.requests.length, since);
    const open = makeProxy({ counters: broken, failOpen: true });
    assert.equal((await post(open.handler, call(1, 'echo'))).json.result.content[0].text, 'ran echo');
  });

  test('the audit sink failing: the decision stands and the failure is reported', async () => {
    const { handler, logs } = makeProxy({ audit: { write: async () => { throw new Error('disk full'); } } });
    const answer = await post(handler, call(1, 'read-file'));
    assert.equal(answer.json.result.content[0].text, 'ran read-file');
    // The write fails after the answer: wait for its report.
    await waitFor(() => logs.some((l) => l.level === 'error' && /audit sink failed/.test(l.message) && /disk full/.test(l.error)), 'the audit failure in the log');
  });

  test('approvals answer 403 without an admin token', async () => {
    const { handler } = makeProxy();
    const response = await handler.fetch(new Request('http://toolgate.test/approvals/pending'), {});
    assert.equal(response.status, 403);
    const page = await handler.fetch(new Request('http://toolgate.test/approvals'), {});
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-security-policy'), /frame-ancestors 'none'/);
  });
});
