// What an agent holding a valid grant can send to `toolgate serve` (the Node
// entry, real HTTP) in front of a real MCP server built with the official SDK
// (Express's JSON parser, which honours the request's charset): headers,
// encodings, ids, names, hang-ups, floods. Each case counts what really ran
// on the server, not what toolgate or the client said.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { once } from 'node:events';
import { createServer, request as httpRequest } from 'node:http';

import { MemoryCounterStore } from '../../wasm/index.js';
import { startProxy } from '../../worker/node.js';
import { canonicalJson } from '../../worker/audit.js';
import { grantsDocument, memoryAudit, sha256, tempFile } from './proxy-helpers.js';
import { startSdkServer } from './fixtures/sdk-http-server.js';
import { random } from './seeded-random.js';

const ADMIN = 'security-admin';
const TOKENS = { alice: 'alice-security', bob: 'bob-security' };
const TOOLS = ['echo', 'note', 'secret', 'deploy', 'get-env', 'delete_repo'];
const POLICY = {
  version: '1',
  default: 'deny',
  hide: ['get-env', 'secret'],
  tools: {
    // sliding: counted against the wall clock, where a fixed hour would restart at the top of the hour (slidingRateLimit)
    echo: { limits: [{ counter: 'echo', window: 'hour', max: 2, algorithm: 'sliding' }] },
    note: {},
    deploy: { action: 'require_approval' },
    'delete_*': { action: 'deny' },
    '*': {},
  },
};

/** A POST over node:http, so any header (and any header twice) can be sent. */
function rawPost(url, body, { headers = {}, token, rawHeaders } = {}) {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const list = rawHeaders ?? Object.entries({
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...headers,
    }).flatMap(([name, value]) => [name, value]);
    // A header list given as an array gets no Host from node:http: add the real one unless the case sets its own.
    if (!list.some((item, i) => i % 2 === 0 && String(item).toLowerCase() === 'host')) list.push('host', target.host);
    const payload = typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
    const req = httpRequest({ host: target.hostname, port: target.port, path: target.pathname, method: 'POST', headers: list });
    req.on('response', async (res) => {
      const chunks = [];
      for await (const chunk of res) chunks.push(chunk);
      const text = Buffer.concat(chunks).toString('utf8');
      let json;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      resolve({ status: res.statusCode, headers: res.headers, text, json });
    });
    req.on('error', reject);
    req.end(payload);
  });
}

const call = (id, name, args = {}) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });
const codeOf = (answer) => answer.json?.result?.structuredContent?.code ?? answer.json?.result?._meta?.['dev.toolgate/decision']?.code;

const pick = (next, list) => list[Math.floor(next() * list.length)];

let server;
let proxy;
let audit;
let mcp;

before(async () => {
  server = await startSdkServer({ tools: TOOLS });
  audit = memoryAudit();
  proxy = await startProxy({
    servers: { default: { upstream: server.url, policy: await tempFile('security-policy.json', POLICY) } },
    grants: await tempFile('security-grants.json', grantsDocument(TOKENS)),
    port: 0, counters: new MemoryCounterStore(), audit, adminTokenSha256: sha256(ADMIN), auditKey: 'audit-key-for-tests',
    maxPendingApprovalsPerGrant: 3, log: () => {}, watch: false,
  });
  mcp = `${proxy.url}/mcp`;
});

after(async () => {
  await proxy?.close();
  await server?.stop();
});

// UTF-7 as Express's parser (iconv-lite) reads it: "+" base64(UTF-16BE) "-".
const utf7 = (text) => `+${Buffer.from(text, 'utf16le').swap16().toString('base64').replace(/=+$/, '')}-`;

describe('class 1: the server reads exactly the messages that were decided', () => {
  test('a body declared in UTF-7 is refused (415); the hidden tool it smuggles never runs', async () => {
    // As UTF-8 JSON: echo with a harmless text. As UTF-7: a second "name", "secret".
    const body = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"note","arguments":{"text":"hi${utf7('"},"name":"secret","x":{"y":"')}"}}}`;
    assert.equal(JSON.parse(body).params.name, 'note');
    const seen = server.bodies.length;
    for (const type of ['application/json; charset=utf-7', 'application/json;charset="UTF-7"', 'application/json; charset=utf-16le', 'application/json; charset=iso-8859-1']) {
      const refused = await rawPost(mcp, body, { token: TOKENS.alice, headers: { 'content-type': type } });
      assert.equal(refused.status, 415, type);
      assert.match(refused.json.error.message, /charset must be UTF-8/);
    }
    assert.equal(server.bodies.length, seen, 'nothing reached the server');
    // Declared as UTF-8, the same bytes are the harmless call, and that is what runs.
    const plain = await rawPost(mcp, body, { token: TOKENS.alice, headers: { 'content-type': 'application/json; charset=utf-8' } });
    assert.equal(plain.status, 200);
    assert.equal(server.ran('secret'), 0);
    assert.deepEqual(server.bodies.at(-1), JSON.parse(body));
    assert.equal(server.headers.at(-1)['content-type'], 'application/json');
  });

  test('property: whatever headers a client sends, the server receives the decided message or nothing', async () => {
    const next = random(20261207);
    const contentTypes = [
      'application/json', 'application/json; charset=utf-8', 'APPLICATION/JSON;CHARSET=UTF-8', 'application/json; charset=utf-7',
      'application/json; charset=utf-16', 'application/json; charset=utf-32le', 'application/json;charset=utf-8;charset=utf-7',
      'application/json; foo=bar', 'application/json; charset="utf-8"', 'text/plain', 'application/json-patch+json',
      'application/json, application/json; charset=utf-7', 'application/json; charset=cp1252', 'application/json ;charset=latin1',
    ];
    const extras = [
      ['content-encoding', 'gzip'], ['content-encoding', 'identity'], ['content-encoding', 'br'], ['x-http-method-override', 'DELETE'],
      ['cookie', 'session=stolen'], ['forwarded', 'for=10.0.0.1;host=evil.example'], ['x-forwarded-host', 'evil.example'],
      ['x-forwarded-proto', 'https'], ['content-language', 'de'], ['transfer-encoding', 'chunked'], ['mcp-protocol-version', '2025-06-18'],
      ['accept', 'application/json, text/event-stream'], ['accept-charset', 'utf-7'], ['content-location', '/other'],
      ['x-original-url', '/mcp/other'], ['expect', '100-continue'], ['te', 'trailers'], ['x-toolgate-decision', 'allow'],
    ];
    const cases = 60;
    for (let i = 0; i < cases; i++) {
      const text = `${pick(next, ['plain', '+ACI-', 'é ☃ 💥', '\\u0022', '+AH0-'])}#${i}`;
      const message = call(1000 + i, 'note', { text });
      const headers = [['content-type', pick(next, contentTypes)], ['authorization', `Bearer ${TOKENS.alice}`]];
      const extraCount = Math.floor(next() * 4);
      for (let e = 0; e < extraCount; e++) headers.push(pick(next, extras));
      if (next() < 0.5) headers.push(['accept', 'application/json, text/event-stream']);
      const seen = server.bodies.length;
      const body = JSON.stringify(message);
      const rawHeaders = headers.filter(([name]) => name !== 'transfer-encoding').flat();
      if (headers.some(([name]) => name === 'transfer-encoding')) rawHeaders.push('transfer-encoding', 'chunked');
      else rawHeaders.push('content-length', String(Buffer.byteLength(body)));
      const answer = await rawPost(mcp, body, { rawHeaders });
      const label = JSON.stringify(headers);
      if (server.bodies.length === seen) {
        assert.ok(answer.status >= 400 || codeOf(answer) !== undefined, `nothing forwarded, so refused or decided here: ${label} -> ${answer.status}`);
        continue;
      }
      assert.equal(server.bodies.length, seen + 1, label);
      assert.deepEqual(server.bodies.at(-1), message, `the server read the decided message: ${label}`);
      const upstreamHeaders = server.headers.at(-1);
      assert.equal(upstreamHeaders['content-type'], 'application/json', label);
      for (const name of ['content-encoding', 'cookie', 'forwarded', 'x-forwarded-host', 'x-http-method-override', 'content-language', 'accept-charset', 'x-original-url', 'x-toolgate-decision', 'authorization']) {
        assert.equal(upstreamHeaders[name], undefined, `${name} not forwarded: ${label}`);
      }
    }
    assert.equal(server.ran('secret'), 0);
  });
});

describe('class 4: a client that leaves keeps no quota, whatever the answer is', () => {
  // An upstream that takes the call, sends its headers and part of its answer,
  // and then waits: the client hangs up meanwhile.
  async function startStaller(contentType) {
    const requests = [];
    const open = new Set();
    const http = createServer(async (req, res) => {
      const chunks = [];
      for await (const chunk of req) chunks.push(chunk);
      const message = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      requests.push(message);
      open.add(res);
      if (message.method !== 'tools/call') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ jsonrpc: '2.0', id: message.id, result: {} }));
        return;
      }
      res.writeHead(200, { 'content-type': contentType });
      res.write(contentType === 'application/json' ? '{"jsonrpc":"2.0",' : ': started\n\n');
    });
    http.listen(0, '127.0.0.1');
    await once(http, 'listening');
    return {
      url: `http://127.0.0.1:${http.address().port}/mcp`,
      requests,
      async stop() {
        for (const res of open) res.destroy();
        http.closeAllConnections();
        http.close();
      },
    };
  }

  for (const contentType of ['application/json', 'text/event-stream']) {
    test(`answer as ${contentType}: 6 hang-ups under 2/hour run the tool twice`, async () => {
      const staller = await startStaller(contentType);
      const local = await startProxy({
        servers: { default: { upstream: staller.url, policy: await tempFile('stall-policy.json', POLICY) } },
        grants: await tempFile('stall-grants.json', grantsDocument(TOKENS)), port: 0, counters: new MemoryCounterStore(),
        audit: memoryAudit(), log: () => {}, watch: false,
      });
      try {
        const codes = [];
        for (let i = 0; i < 6; i++) {
          const before = staller.requests.length;
          const controller = new AbortController();
          const answer = fetch(`${local.url}/mcp`, {
            method: 'POST', signal: controller.signal,
            headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${TOKENS.alice}` },
            body: JSON.stringify(call(i, 'echo', { text: 'x' })),
          }).then(async (response) => ({ status: response.status, json: await response.json() }));
          // Wait on state: either the call reached the server (then hang up) or toolgate answered it.
          let answered = false;
          const settled = await Promise.race([
            answer.then((result) => {
              answered = true;
              return { answered: result };
            }),
            (async () => {
              while (staller.requests.length === before && !answered) await new Promise((resolve) => setTimeout(resolve, 5));
              return { forwarded: !answered };
            })(),
          ]);
          if (settled.forwarded) {
            controller.abort();
            await answer.catch(() => {});
            codes.push('forwarded');
          } else {
            codes.push(settled.answered.json.result?.structuredContent?.code);
          }
        }
        assert.deepEqual(codes, ['forwarded', 'forwarded', 'rate_limited', 'rate_limited', 'rate_limited', 'rate_limited']);
        assert.equal(staller.requests.filter((m) => m.method === 'tools/call').length, 2);
      } finally {
        await local.close();
        await staller.stop();
      }
    });
  }
});

describe('class 2 over HTTP: a request id in flight in a session is not reused', () => {
  test('a second request reusing a running call\'s id is refused; the call keeps its quota', async () => {
    const stateful = await startSdkServer({ tools: TOOLS, stateful: true, held: ['echo'] });
    const local = await startProxy({
      servers: { default: { upstream: stateful.url, policy: await tempFile('session-policy.json', POLICY) } },
      grants: await tempFile('session-grants.json', grantsDocument(TOKENS)), port: 0, counters: new MemoryCounterStore(),
      audit: memoryAudit(), log: () => {}, watch: false,
    });
    const url = `${local.url}/mcp`;
    try {
      const init = await rawPost(url, { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } }, { token: TOKENS.alice });
      const session = init.headers['mcp-session-id'];
      assert.ok(session, init.text);
      const headers = { 'mcp-session-id': session, 'mcp-protocol-version': '2025-06-18' };
      await rawPost(url, { jsonrpc: '2.0', method: 'notifications/initialized' }, { token: TOKENS.alice, headers });
      for (let round = 0; round < 4; round++) {
        const id = 100 + round;
        const running = rawPost(url, call(id, 'echo', { text: 'x' }), { token: TOKENS.alice, headers });
        // Wait on state: the call is running on the server.
        while (stateful.ran('echo') < Math.min(round + 1, 2)) await new Promise((resolve) => setTimeout(resolve, 5));
        const seen = stateful.bodies.length;
        const reuse = await rawPost(url, { jsonrpc: '2.0', id, method: 'no/such/method' }, { token: TOKENS.alice, headers });
        if (round < 2) {
          assert.equal(reuse.json?.error?.code, -32600, reuse.text);
          assert.match(reuse.json.error.message, /already in flight/);
          assert.equal(stateful.bodies.length, seen, 'the reused id never reached the server');
        }
        stateful.release();
        const answer = await running;
        if (round < 2) assert.equal(answer.json.result.isError, undefined, answer.text);
        else assert.equal(codeOf(answer), 'rate_limited', 'echo allows 2 an hour, and both ran');
      }
      assert.equal(stateful.ran('echo'), 2);
    } finally {
      await local.close();
      await stateful.stop();
    }
  });
});

describe('class 3: an approval belongs to the server it was given for', () => {
  test('approving deploy on staging does not let the identical call run on production', async () => {
    const staging = await startSdkServer({ tools: TOOLS });
    const production = await startSdkServer({ tools: TOOLS });
    const policy = await tempFile('approval-policy.json', POLICY);
    const local = await startProxy({
      servers: { staging: { upstream: staging.url, policy }, production: { upstream: production.url, policy } },
      grants: await tempFile('approval-grants.json', grantsDocument(TOKENS)), port: 0, counters: new MemoryCounterStore(),
      audit: memoryAudit(), adminTokenSha256: sha256(ADMIN), log: () => {}, watch: false,
    });
    const admin = { authorization: `Bearer ${ADMIN}` };
    try {
      const first = await rawPost(`${local.url}/mcp/staging`, call(1, 'deploy', { text: 'v2' }), { token: TOKENS.bob });
      assert.equal(codeOf(first), 'approval_required');
      const stagingId = first.json.result.structuredContent.approval_id;
      const pending = await (await fetch(`${local.url}/approvals/pending`, { headers: admin })).json();
      assert.equal(pending.approvals.find((a) => a.id === stagingId)?.server, 'staging', 'the API shows which server');
      assert.equal((await fetch(`${local.url}/approvals/${stagingId}`, { method: 'POST', headers: admin })).status, 200);

      const onProduction = await rawPost(`${local.url}/mcp/production`, call(2, 'deploy', { text: 'v2' }), { token: TOKENS.bob });
      assert.equal(codeOf(onProduction), 'approval_required', 'production needs its own approval');
      assert.notEqual(onProduction.json.result.structuredContent.approval_id, stagingId);
      assert.equal(production.ran('deploy'), 0);

      const onStaging = await rawPost(`${local.url}/mcp/staging`, call(3, 'deploy', { text: 'v2' }), { token: TOKENS.bob });
      assert.equal(onStaging.json.result.isError, undefined, onStaging.text);
      assert.equal(staging.ran('deploy'), 1);
      const again = await rawPost(`${local.url}/mcp/staging`, call(4, 'deploy', { text: 'v2' }), { token: TOKENS.bob });
      assert.equal(codeOf(again), 'approval_required', 'an approval runs one call');
    } finally {
      await local.close();
      await staging.stop();
      await production.stop();
    }
  });
});

describe('class 5: one grant cannot make toolgate hold or do unbounded work', () => {
  test('a batch over 100 messages is refused whole', async () => {
    const seen = server.bodies.length;
    const batch = Array.from({ length: 101 }, (_, i) => call(i, 'note', { text: 'x' }));
    const answer = await rawPost(mcp, batch, { token: TOKENS.alice });
    assert.equal(answer.status, 400);
    assert.match(answer.json.error.message, /at most 100/);
    assert.equal(server.bodies.length, seen);
    const fits = await rawPost(mcp, batch.slice(0, 100), { token: TOKENS.alice });
    assert.equal(fits.status, 200);
    assert.equal(fits.json.length, 100);
  });

  test('pending approvals: at most 3 per grant here, arguments a reviewer can read; others unaffected', async () => {
    const codes = [];
    for (let i = 0; i < 4; i++) codes.push(codeOf(await rawPost(mcp, call(i, 'deploy', { text: `release ${i}` }), { token: TOKENS.alice })));
    assert.deepEqual(codes, ['approval_required', 'approval_required', 'approval_required', 'approval_limit']);
    // The same call asked again is the same request, not a new one.
    assert.equal(codeOf(await rawPost(mcp, call(9, 'deploy', { text: 'release 0' }), { token: TOKENS.alice })), 'approval_required');
    assert.equal(codeOf(await rawPost(mcp, call(1, 'deploy', { text: 'x'.repeat(70 * 1024) }), { token: TOKENS.bob })), 'approval_limit');
    assert.equal(codeOf(await rawPost(mcp, call(2, 'deploy', { text: 'small' }), { token: TOKENS.bob })), 'approval_required');
    // Once a human decides, the grant may ask again.
    const admin = { authorization: `Bearer ${ADMIN}` };
    const pending = await (await fetch(`${proxy.url}/approvals/pending`, { headers: admin })).json();
    const alices = pending.approvals.filter((a) => a.grant === 'alice');
    assert.equal(alices.length, 3);
    assert.equal((await fetch(`${proxy.url}/approvals/${alices[0].id}`, { method: 'DELETE', headers: admin })).status, 200);
    assert.equal(codeOf(await rawPost(mcp, call(5, 'deploy', { text: 'release 5' }), { token: TOKENS.alice })), 'approval_required');
    assert.equal(server.ran('deploy'), 0);
  });

  test('a grant holding its concurrency share gets 429; another grant is served; a trickled body times out (408)', async () => {
    const local = await startProxy({
      servers: { default: { upstream: server.url, policy: await tempFile('flood-policy.json', POLICY) } },
      grants: await tempFile('flood-grants.json', grantsDocument(TOKENS)), port: 0, counters: new MemoryCounterStore(),
      audit: memoryAudit(), log: () => {}, watch: false, maxConcurrentPerGrant: 3, bodyTimeoutMs: 60_000,
    });
    const held = [];
    try {
      const target = new URL(`${local.url}/mcp`);
      const body = JSON.stringify(call(1, 'note', { text: 'slow' }));
      for (let i = 0; i < 3; i++) {
        const req = httpRequest({ host: target.hostname, port: target.port, path: target.pathname, method: 'POST', headers: {
          'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${TOKENS.alice}`,
          'content-length': String(Buffer.byteLength(body)),
        } });
        const response = new Promise((resolve, reject) => {
          req.on('response', (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)); });
          req.on('error', reject);
        });
        req.write(body.slice(0, 10));
        held.push({ req, response });
      }
      // Wait on state: the three requests are being read by the proxy.
      let refused;
      for (;;) {
        refused = await rawPost(`${local.url}/mcp`, call(2, 'note', { text: 'x' }), { token: TOKENS.alice });
        if (refused.status === 429) break;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      assert.match(refused.json.error.message, /Too many requests/);
      assert.equal(refused.headers['retry-after'], '1');
      const other = await rawPost(`${local.url}/mcp`, call(3, 'note', { text: 'y' }), { token: TOKENS.bob });
      assert.equal(other.status, 200, 'another grant is served meanwhile');
      for (const { req } of held) req.end(body.slice(10));
      assert.deepEqual(await Promise.all(held.map((h) => h.response)), [200, 200, 200]);
    } finally {
      for (const { req } of held) req.destroy();
      await local.close();
    }

    const slow = await startProxy({
      servers: { default: { upstream: server.url, policy: await tempFile('slow-policy.json', POLICY) } },
      grants: await tempFile('slow-grants.json', grantsDocument(TOKENS)), port: 0, counters: new MemoryCounterStore(),
      audit: memoryAudit(), log: () => {}, watch: false, bodyTimeoutMs: 300,
    });
    try {
      const seen = server.bodies.length;
      const target = new URL(`${slow.url}/mcp`);
      const status = await new Promise((resolve, reject) => {
        const req = httpRequest({ host: target.hostname, port: target.port, path: target.pathname, method: 'POST', headers: {
          'content-type': 'application/json', authorization: `Bearer ${TOKENS.alice}`, 'content-length': '1000',
        } });
        req.on('response', (res) => { res.resume(); resolve(res.statusCode); });
        req.on('error', reject);
        req.write('{"jsonrpc":"2.0",');
      });
      assert.equal(status, 408);
      assert.equal(server.bodies.length, seen);
    } finally {
      await slow.close();
    }
  });
});

describe('class 6: one look-alike rule for every name the policy mentions', () => {
  // delete_REPO is not among them: it matches "delete_*" as it is, and is denied by it.
  const lookAlikes = ['GET-ENV', 'Get-Env', 'ＧＥＴ-ＥＮＶ', 'get\u200b-env', 'get-env\u00ad', 'SECRET', 'Secret', 'DELETE_REPO', 'Delete_Repo', 'ＤＥＬＥＴＥ_repo', 'DEPLOY', 'Echo'];
  test('case, width and invisible-character variants are refused and never reach the server', async () => {
    const seen = server.bodies.length;
    for (const [i, name] of lookAlikes.entries()) {
      const answer = await rawPost(mcp, call(i, name), { token: TOKENS.alice });
      assert.equal(codeOf(answer), 'invalid_call', `${JSON.stringify(name)}: ${answer.text}`);
    }
    assert.equal(codeOf(await rawPost(mcp, call(99, 'delete_REPO'), { token: TOKENS.alice })), 'tool_denied');
    assert.equal(server.bodies.length, seen);
  });

  test('methods that look like tools/call after normalisation are refused, not forwarded as other methods', async () => {
    const seen = server.bodies.length;
    for (const [i, method] of ['tools/call\u0000', 'tools%2Fcall', 'tools%2fcall', 'tools/call/', 'tools//call', 'TOOLS/CALL', 'tools.call', 'tools_call', ' tools/call', 'tools/call\t', 'ｔｏｏｌｓ/ｃａｌｌ'].entries()) {
      const answer = await rawPost(mcp, { jsonrpc: '2.0', id: i, method, params: { name: 'secret', arguments: {} } }, { token: TOKENS.alice });
      assert.equal(answer.json?.error?.code, -32600, `${JSON.stringify(method)}: ${answer.text}`);
    }
    assert.equal(server.bodies.length, seen);
  });

  test('property: a variant of a mentioned name reaches the server only when it is that exact name', async () => {
    const next = random(7);
    const variants = [
      (s) => s.toUpperCase(), (s) => s[0].toUpperCase() + s.slice(1), (s) => s.normalize('NFKD'),
      (s) => [...s].map((c) => (/[a-z]/.test(c) && next() < 0.5 ? String.fromCharCode(c.charCodeAt(0) + 0xfee0) : c)).join(''),
      (s) => s.replace(/-|_/, (c) => `\u200d${c}`), (s) => `${s}\ufeff`, (s) => s.replace(/e/g, 'E'),
    ];
    const mentioned = ['get-env', 'secret', 'delete_repo', 'delete_anything', 'deploy', 'echo', 'note'];
    for (let i = 0; i < 80; i++) {
      const base = pick(next, mentioned);
      const name = pick(next, variants)(base);
      const seen = server.bodies.length;
      const answer = await rawPost(mcp, call(5000 + i, name, { text: 'p' }), { token: TOKENS.bob });
      if (name === base) continue;
      assert.equal(server.bodies.length, seen, `${JSON.stringify(name)} (from ${base}) was forwarded: ${answer.text}`);
    }
  });
});

describe('classes 7, 8, 10: links, audit digests, what is told to whom', () => {
  test('approval links come from configuration, never from the Host the agent sent', async () => {
    const local = await startProxy({
      servers: { default: { upstream: server.url, policy: await tempFile('link-policy.json', POLICY) } },
      grants: await tempFile('link-grants.json', grantsDocument(TOKENS)), port: 0, counters: new MemoryCounterStore(),
      audit: memoryAudit(), adminTokenSha256: sha256(ADMIN), log: () => {}, watch: false, publicUrl: 'https://gate.example.com/',
    });
    try {
      // A Host this proxy does not answer to is refused outright (class 9)...
      const seen = server.bodies.length;
      const foreign = await rawPost(`${local.url}/mcp`, call(1, 'deploy', { text: 'v3' }), { token: TOKENS.alice, headers: { host: 'attacker.example:8443' } });
      assert.equal(foreign.status, 403);
      assert.equal(server.bodies.length, seen);
      // ...and an allowed one still does not make the link, nor do forwarding headers.
      const answer = await rawPost(`${local.url}/mcp`, call(1, 'deploy', { text: 'v3' }), { token: TOKENS.alice, headers: { host: 'localhost:8443', 'x-forwarded-host': 'attacker.example', forwarded: 'host=attacker.example' } });
      const { approval_url: url, approval_id: id } = answer.json.result.structuredContent;
      assert.equal(url, `https://gate.example.com/approvals#${id}`);
      assert.ok(!answer.text.includes('attacker') && !answer.text.includes('localhost'));
    } finally {
      await local.close();
    }
    const relative = await rawPost(mcp, call(77, 'deploy', { text: 'v3' }), { token: TOKENS.bob, headers: { host: '127.0.0.1:9' } });
    const details = relative.json.result.structuredContent;
    assert.equal(details.approval_url, `/approvals#${details.approval_id}`);
  });

  test('argument_hmac is keyed: it correlates identical calls and cannot be recomputed without the key', async () => {
    const before = audit.events.length;
    const args = { account: 'savings', pin: '4711' };
    await rawPost(mcp, call(1, 'note', args), { token: TOKENS.alice });
    await rawPost(mcp, call(2, 'note', args), { token: TOKENS.bob });
    const [first, second] = (await audit.waitFor(before + 2)).slice(before);
    assert.equal(first.argument_hmac, second.argument_hmac);
    assert.equal(first.argument_hmac, createHmac('sha256', 'audit-key-for-tests').update(canonicalJson(args)).digest('base64url'));
    assert.notEqual(first.argument_hmac, sha256(canonicalJson(args)));
    assert.ok(!('argument_sha256' in first));
    assert.ok(!JSON.stringify(first).includes('4711'));
  });

  test('/healthz and unknown paths tell nothing about the configuration without the admin token', async () => {
    const open = await (await fetch(`${proxy.url}/healthz`)).json();
    assert.deepEqual(open, { ok: true });
    const admin = await (await fetch(`${proxy.url}/healthz`, { headers: { authorization: `Bearer ${ADMIN}` } })).json();
    assert.match(admin.servers.default.policy_hash, /^[0-9a-f]{64}$/);
    const unknown = await rawPost(`${proxy.url}/mcp/production`, call(1, 'note'), { token: TOKENS.alice });
    assert.equal(unknown.status, 404);
    assert.ok(!unknown.text.includes('default'), unknown.text);
  });

  test('a grant\'s own policy applies to the server it names; a single "policy" with several servers does not load', async () => {
    const staging = await startSdkServer({ tools: TOOLS });
    const production = await startSdkServer({ tools: TOOLS });
    const policy = await tempFile('per-server-policy.json', POLICY);
    const strict = await tempFile('strict-policy.json', { version: '1', default: 'deny', tools: { note: {} } });
    const grants = grantsDocument(TOKENS);
    grants.grants[0].policies = { production: strict.split('/').pop() };
    const local = await startProxy({
      servers: { staging: { upstream: staging.url, policy }, production: { upstream: production.url, policy } },
      grants: await tempFile('per-server-grants.json', grants), port: 0, counters: new MemoryCounterStore(),
      audit: memoryAudit(), log: () => {}, watch: false,
    });
    try {
      assert.equal(codeOf(await rawPost(`${local.url}/mcp/production`, call(1, 'echo', { text: 'x' }), { token: TOKENS.alice })), 'default_deny');
      assert.equal((await rawPost(`${local.url}/mcp/staging`, call(2, 'echo', { text: 'x' }), { token: TOKENS.alice })).json.result.isError, undefined);
      assert.equal(staging.ran('echo'), 1);
      assert.equal(production.ran('echo'), 0);
    } finally {
      await local.close();
      await staging.stop();
      await production.stop();
    }
    const ambiguous = grantsDocument(TOKENS);
    ambiguous.grants[0].policy = strict.split('/').pop();
    await assert.rejects(startProxy({
      servers: { staging: { upstream: staging.url, policy }, production: { upstream: production.url, policy } },
      grants: await tempFile('ambiguous-grants.json', ambiguous), port: 0, log: () => {}, watch: false,
    }), /with several servers .* name the server/);
  });
});
