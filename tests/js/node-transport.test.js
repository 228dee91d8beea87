// worker/node-transport.js: the upstream transport of `toolgate serve` (fetch's
// signature over undici's dispatcher with kept-alive connections), against a
// real local node:http server. What the proxy counts on: answers stream as they come,
// request bodies stream, aborts and failures have the shapes the handler
// tells apart (never sent / maybe received), connections are reused. And
// through startProxy: a client's hang-up aborts the upstream request (before
// the answer and mid-stream) with no AbortController made per call.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, request as httpRequest } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { gzipSync } from 'node:zlib';

import { upstreamBody, upstreamHeaders } from '../../worker/node-transport.js';
import { loadToolgate, MemoryCounterStore } from '../../wasm/index.js';
import { PlainAbort, createHandler } from '../../worker/handler.js';
import { NODE_SHA256, startProxy } from '../../worker/node.js';
import { freePort, memoryAudit, tempFile } from './proxy-helpers.js';
import { bodyOf, transportForTest as transport } from './transport-helpers.js';
import { random } from './seeded-random.js';

// One server; each test sets `route` (req, res) and reads what it saw.
let route = (req, res) => res.end();
let server;
let base;
const sockets = new Set();
before(async () => {
  server = createServer((req, res) => route(req, res));
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  base = `http://127.0.0.1:${server.address().port}`;
});
after(async () => {
  server.closeAllConnections();
  server.close();
});


/** A promise with its resolve, to hand steps between the server and the test. */
function signal() {
  let resolve;
  const promise = new Promise((r) => { resolve = r; });
  return { promise, resolve };
}

describe('answers', () => {
  test('a JSON answer: status, headers, body (text, upstreamBody, body stream); the request as sent', async () => {
    const fetch = transport();
    let seen;
    route = async (req, res) => {
      seen = { method: req.method, url: req.url, headers: req.headers, body: await bodyOf(req) };
      res.writeHead(201, { 'content-type': 'application/json', 'mcp-session-id': 's1', 'set-cookie': ['a=1', 'b=2'] });
      res.end('{"jsonrpc":"2.0","id":1,"result":{}}');
    };
    const response = await fetch(`${base}/mcp?x=1`, {
      method: 'POST', headers: { 'Content-Type': 'application/json', accept: 'application/json, text/event-stream', connection: 'close', host: 'evil' },
      body: '{"jsonrpc":"2.0","id":1,"method":"ping"}', redirect: 'manual',
    });
    assert.ok(response instanceof Response);
    assert.equal(response.status, 201);
    assert.equal(response.ok, true);
    assert.equal(response.url, `${base}/mcp?x=1`);
    assert.equal(response.headers.get('mcp-session-id'), 's1');
    assert.deepEqual(response.headers.getSetCookie(), ['a=1', 'b=2']);
    assert.equal(response.bodyUsed, false);
    assert.deepEqual(await response.json(), { jsonrpc: '2.0', id: 1, result: {} });
    assert.equal(response.bodyUsed, true);
    await assert.rejects(response.text(), TypeError, 'a body is read once');
    assert.equal(seen.method, 'POST');
    assert.equal(seen.url, '/mcp?x=1');
    assert.equal(seen.body, '{"jsonrpc":"2.0","id":1,"method":"ping"}');
    assert.equal(seen.headers['content-type'], 'application/json');
    assert.equal(seen.headers['content-length'], String(seen.body.length));
    assert.equal(seen.headers.host, new URL(base).host, 'Host and Connection are the transport\'s own');
    assert.equal(seen.headers.connection, 'keep-alive');
    assert.equal(seen.headers['accept-encoding'], undefined, 'no compression is asked for');

    // The same answer read whole by upstreamBody (the handler's way), and as a web stream.
    const direct = upstreamBody(await fetch(`${base}/mcp`, { method: 'POST', body: 'x' }));
    assert.equal(direct.empty, false);
    assert.equal(new TextDecoder().decode(await direct.read(1024)), '{"jsonrpc":"2.0","id":1,"result":{}}');
    const overLimit = upstreamBody(await fetch(`${base}/mcp`, { method: 'POST', body: 'x' }));
    assert.equal(await overLimit.read(10), null, 'over the limit: null');
    const streamed = await fetch(`${base}/mcp`, { method: 'POST', body: 'x' });
    assert.equal(await new Response(streamed.body).text(), '{"jsonrpc":"2.0","id":1,"result":{}}');
    assert.equal(upstreamBody(streamed), undefined, 'once its stream is taken, the handler reads the stream');
    assert.equal(upstreamBody(new Response('x')), undefined, 'not an answer of this transport');
  });

  test('an answer written in several chunks is read whole, each way', async () => {
    const fetch = transport();
    const text = JSON.stringify({ jsonrpc: '2.0', id: 7, result: { content: [{ type: 'text', text: 'x'.repeat(5000) }] } });
    route = async (req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      for (let i = 0; i < text.length; i += 1000) {
        res.write(text.slice(i, i + 1000));
        await sleep(5);
      }
      res.end();
    };
    assert.equal(new TextDecoder().decode(await upstreamBody(await fetch(`${base}/chunks`)).read(1e6)), text);
    assert.equal(await (await fetch(`${base}/chunks`)).text(), text);
    assert.equal(new TextDecoder().decode(await (await fetch(`${base}/chunks`)).arrayBuffer()), text);
    assert.equal(await new Response((await fetch(`${base}/chunks`)).body).text(), text);
  });

  test('an event stream arrives event by event, before the server ends it', async () => {
    const fetch = transport();
    const firstRead = signal();
    const secondRead = signal();
    let ended = false;
    route = async (req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('event: message\ndata: {"n":1}\n\n');
      await firstRead.promise; // the second event waits until the client has the first
      res.write('event: message\ndata: {"n":2}\n\n');
      await secondRead.promise; // and the end until it has the second (not a pause the client could overrun)
      ended = true;
      res.end();
    };
    const response = await fetch(`${base}/mcp`, { method: 'GET', headers: { accept: 'text/event-stream' } });
    assert.equal(upstreamBody(response).empty, false);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    const first = await reader.read();
    assert.equal(first.value, 'event: message\ndata: {"n":1}\n\n');
    assert.equal(ended, false);
    firstRead.resolve();
    const second = await reader.read();
    assert.equal(second.value, 'event: message\ndata: {"n":2}\n\n');
    assert.equal(ended, false, 'the second event came before the end of the stream');
    secondRead.resolve();
    assert.equal((await reader.read()).done, true);
  });

  test('a quiet event stream outlives the idle-connection timeout', async () => {
    const fetch = transport({ keepAliveTimeoutMs: 100 });
    route = async (req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(': open\n\n');
      await sleep(400);
      res.end('data: late\n\n');
    };
    const response = await fetch(`${base}/mcp`);
    assert.equal(await response.text(), ': open\n\ndata: late\n\n');
  });

  test('no body: 204, 304, HEAD', async () => {
    const fetch = transport();
    route = (req, res) => {
      res.writeHead(req.url === '/304' ? 304 : req.method === 'HEAD' ? 200 : 204, { 'content-type': 'application/json' });
      res.end();
    };
    for (const [path, method] of [['/204', 'POST'], ['/304', 'GET'], ['/head', 'HEAD']]) {
      const response = await fetch(`${base}${path}`, { method });
      assert.equal(response.body, null, path);
      assert.equal(upstreamBody(response).empty, true, path);
      assert.equal(await response.text(), '', path);
    }
  });

  test('a compressed answer (which it never asks for) is decoded', async () => {
    const fetch = transport();
    route = (req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
      res.end(gzipSync('{"ok":true}'));
    };
    assert.deepEqual(await (await fetch(`${base}/gz`)).json(), { ok: true });
    assert.deepEqual(JSON.parse(new TextDecoder().decode(await upstreamBody(await fetch(`${base}/gz`)).read(100))), { ok: true });
  });

  test('a server closing the connection in the middle of a body: the body fails (every way of reading it)', async () => {
    const fetch = transport();
    route = (req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
      res.write('{"jsonrpc":"2.0",');
      setTimeout(() => res.socket.destroy(), 30);
    };
    await assert.rejects((await fetch(`${base}/cut`)).text());
    await assert.rejects(upstreamBody(await fetch(`${base}/cut`)).read(1000));
    const reader = (await fetch(`${base}/cut`)).body.getReader();
    assert.equal(new TextDecoder().decode((await reader.read()).value), '{"jsonrpc":"2.0",');
    await assert.rejects(reader.read());
  });
});

describe('upstreamHeaders: the handler\'s reading of an answer\'s headers', () => {
  // The handler reads an answer's headers through upstreamHeaders(response)
  // (a plain record, not fetch's Headers); each field must read as
  // response.headers.get reads it, whatever the server sent: names in any
  // case, repeated names (joined in order), values with spaces and tabs at
  // either end or inside, empty values, Latin-1 bytes.
  const NAMES = ['content-type', 'Content-Type', 'MCP-Session-Id', 'mcp-protocol-version', 'cache-control', 'retry-after', 'set-cookie', 'x-a', 'X-A'];
  const PIECES = ['', ' ', '\t', 'a', 'b=1', ',', ';', 'application/json', 'é', '\u00ff', '  x  ', 'text/event-stream; charset=utf-8'];
  const pick = (next, list) => list[Math.floor(next() * list.length)];

  test('every field reads as response.headers.get reads it, on 300 generated answers (seeded)', async () => {
    const fetch = transport();
    const next = random(1207);
    let sent = [];
    route = (req, res) => {
      res.writeHead(200, sent.flat());
      res.end();
    };
    let repeated = 0;
    for (let i = 0; i < 300; i++) {
      sent = Array.from({ length: Math.floor(next() * 7) }, () => {
        let value = '';
        for (let k = Math.floor(next() * 4); k > 0; k--) value += pick(next, PIECES);
        return [pick(next, NAMES), value];
      });
      const names = sent.map(([name]) => name.toLowerCase());
      if (new Set(names).size < names.length) repeated++;
      const response = await fetch(`${base}/headers`, { method: 'POST', body: 'x' });
      const fields = upstreamHeaders(response);
      assert.ok(fields, 'an answer of this transport has its fields');
      for (const name of [...NAMES, 'content-length', 'absent']) {
        assert.equal(fields.get(name), response.headers.get(name), `${name} of ${JSON.stringify(sent)}`);
      }
      assert.equal(upstreamHeaders(response), fields, 'made once per answer');
    }
    assert.ok(repeated > 50, `repeated names are common (${repeated})`);
    // A clone reads the same: one without a body is this transport's (its
    // fields the original's), one with a body a plain Response (headers read).
    sent = [['content-type', 'application/json'], ['x-a', ' 1 '], ['X-A', '2']];
    for (const method of ['HEAD', 'POST']) {
      const clone = (await fetch(`${base}/headers`, { method, body: method === 'POST' ? 'x' : undefined })).clone();
      const fields = upstreamHeaders(clone) ?? clone.headers;
      assert.equal(fields.get('x-a'), '1, 2', method);
      assert.equal(fields.get('content-type'), 'application/json', method);
    }
    assert.equal(upstreamHeaders(new Response('x', { headers: { 'content-type': 'a/b' } })), undefined, 'not an answer of this transport');
  });
});

describe('requests', () => {
  test('a streamed request body goes out as it is produced (chunked)', async () => {
    const fetch = transport();
    const gotFirst = signal();
    const seen = [];
    route = async (req, res) => {
      seen.push(req.headers['transfer-encoding']);
      for await (const chunk of req) {
        seen.push(String(chunk));
        if (seen.length === 2) gotFirst.resolve();
      }
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(seen.slice(1).join(''));
    };
    const encoder = new TextEncoder();
    const body = new ReadableStream({
      async start(controller) {
        controller.enqueue(encoder.encode('part 1;'));
        await gotFirst.promise; // produced only once the server has the first part
        controller.enqueue(encoder.encode('part 2'));
        controller.close();
      },
    });
    const response = await fetch(`${base}/upload`, { method: 'POST', body, duplex: 'half', headers: { 'content-type': 'text/plain' } });
    assert.equal(await response.text(), 'part 1;part 2');
    assert.deepEqual(seen, ['chunked', 'part 1;', 'part 2']);
  });

  test('sequential requests reuse kept-alive connections; a body dropped before its end closes its connection', async () => {
    const fetch = transport();
    const seen = []; // the server's socket of each request
    route = (req, res) => {
      seen.push(req.socket);
      res.writeHead(200, { 'content-type': 'application/json' });
      // /drop: the answer's end never comes (the client drops the body before it)
      if (req.url === '/drop') res.write('{"n":');
      else res.end(JSON.stringify({ n: seen.length }));
    };
    for (let i = 0; i < 10; i++) await (await fetch(`${base}/ka`, { method: 'POST', body: '{}' })).json();
    // undici reuses a connection one turn of the event loop after its answer
    // ended (a server that closes it anyway is noticed first), so requests
    // sent back to back take turns on two connections: never one each.
    assert.ok(new Set(seen).size <= 2, `at most two connections for ten calls (${new Set(seen).size})`);
    const dropped = await fetch(`${base}/drop`);
    const droppedSocket = seen.at(-1);
    const closed = once(droppedSocket, 'close');
    upstreamBody(dropped).cancel();
    await closed; // the server sees the dropped body's connection go
    for (let i = 0; i < 3; i++) await (await fetch(`${base}/ka`)).text();
    assert.ok(!seen.slice(-3).includes(droppedSocket), 'a dropped body\'s connection is not reused');
  });

  test('connections per host are bounded: requests beyond wait for one', async () => {
    const fetch = transport({ maxSockets: 2 });
    let open = 0;
    let most = 0;
    const connections = new Set();
    // The first two requests are held until both are open at once (a pause
    // could end before the second arrived on a loaded machine, and `most`
    // would be 1); the others then go through the two connections in turn.
    const twoOpen = signal();
    route = async (req, res) => {
      connections.add(req.socket);
      open += 1;
      most = Math.max(most, open);
      if (open === 2) twoOpen.resolve();
      await twoOpen.promise;
      open -= 1;
      res.end('ok');
    };
    const texts = await Promise.all(Array.from({ length: 6 }, () => fetch(`${base}/bounded`).then((r) => r.text())));
    assert.deepEqual(texts, Array(6).fill('ok'));
    assert.equal(most, 2);
    assert.equal(connections.size, 2, 'six requests over two connections');
  });
});

describe('failures: the shapes the handler tells apart', () => {
  test('connection refused: a TypeError whose cause has the code (the call was never sent)', async () => {
    const fetch = transport();
    const port = await freePort();
    const error = await fetch(`http://127.0.0.1:${port}/mcp`, { method: 'POST', body: '{}' }).catch((e) => e);
    assert.ok(error instanceof TypeError);
    assert.equal(error.cause.code, 'ECONNREFUSED');
  });

  test('an abort before the answer (client hang-up): rejects with the signal\'s reason; the server sees the connection go', async () => {
    const fetch = transport();
    const closed = signal();
    const arrived = signal();
    route = (req) => {
      req.socket.once('close', () => closed.resolve());
      arrived.resolve();
    };
    const controller = new AbortController();
    const reason = new Error('the client went away');
    const pending = fetch(`${base}/slow`, { method: 'POST', body: '{}', signal: controller.signal });
    await arrived.promise; // the server has the request (a pause could end before it was sent)
    controller.abort(reason);
    await assert.rejects(pending, (error) => error === reason);
    await closed.promise;
  });

  test('a timeout signal: rejects with its TimeoutError', async () => {
    const fetch = transport();
    route = () => {};
    const started = Date.now();
    const error = await fetch(`${base}/slow`, { signal: AbortSignal.timeout(100) }).catch((e) => e);
    assert.equal(error.name, 'TimeoutError');
    assert.ok(Date.now() - started < 2000);
    const aborted = AbortSignal.abort(new Error('already'));
    await assert.rejects(fetch(`${base}/slow`, { signal: aborted }), /already/);
  });

  test('an abort after the headers: the body fails with the reason; the connection is not reused', async () => {
    const fetch = transport();
    const ports = [];
    route = (req, res) => {
      ports.push(req.socket.remotePort);
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: 1\n\n');
      if (req.url === '/ok') res.end();
    };
    const controller = new AbortController();
    const response = await fetch(`${base}/stream`, { signal: controller.signal });
    const reader = response.body.getReader();
    await reader.read();
    controller.abort(new Error('stop'));
    await assert.rejects(reader.read(), /stop/);
    await (await fetch(`${base}/ok`)).text();
    assert.notEqual(ports[0], ports[1]);
  });

  test('through the handler: unreachable gives the quota back; a timeout, a client that left or a broken answer keeps it', async () => {
    const toolgate = await loadToolgate();
    const policy = toolgate.compile({ version: '1', default: 'deny', tools: { echo: { rate_limit: '5/hour' } } });
    // The handler's clock and the counter read below agree on one instant mid-hour:
    // on the wall clock, the top of an hour passing between them would read an empty window.
    const NOW = Date.UTC(2026, 0, 1, 12, 30);
    const fetch = transport();
    const proxyFor = (upstream, upstreamTimeoutMs = 2000) => {
      const audit = memoryAudit();
      const counters = new MemoryCounterStore();
      const handler = createHandler({
        servers: { default: { upstream, policy } }, grants: null, counters, audit, upstreamTimeoutMs,
        fetch, upstreamBody, sha256: NODE_SHA256, log: () => {}, clock: () => NOW,
      });
      return { handler, audit, counters };
    };
    const call = (signal) => new Request('http://toolgate.test/mcp', {
      method: 'POST', signal, headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: {} } }),
    });
    const used = async (counters) => (await counters.peek(policy.evaluate({ tool: 'echo', grant: 'anonymous' }, { now: NOW }).counters))[0].current;

    const down = proxyFor(`http://127.0.0.1:${await freePort()}/mcp`);
    assert.equal((await down.handler.fetch(call(), { remoteAddress: '127.0.0.1' })).status, 502);
    assert.equal((await down.audit.waitFor(1))[0].upstream_status, 'unreachable');
    assert.equal(await used(down.counters), 0);

    route = () => {};
    const slow = proxyFor(`${base}/mcp`, 100);
    const timedOut = await slow.handler.fetch(call(), { remoteAddress: '127.0.0.1' });
    assert.equal(timedOut.status, 502);
    assert.match((await timedOut.json()).error.message, /no answer within 100 ms/);
    assert.equal((await slow.audit.waitFor(1))[0].upstream_status, 'timeout');
    assert.equal(await used(slow.counters), 1);

    // The client hangs up once the call has reached the server (after a fixed
    // 100 ms it could hang up before the call was forwarded, on a loaded machine).
    const left = proxyFor(`${base}/mcp`);
    const hangUp = new AbortController();
    route = () => hangUp.abort();
    await left.handler.fetch(call(hangUp.signal), { remoteAddress: '127.0.0.1' }).catch(() => {});
    assert.equal((await left.audit.waitFor(1))[0].upstream_status, 'client_left');
    assert.equal(await used(left.counters), 1);

    route = (req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
      res.write('{"jsonrpc":"2.0",');
      setTimeout(() => res.socket.destroy(), 20);
    };
    const cut = proxyFor(`${base}/mcp`);
    assert.equal((await cut.handler.fetch(call(), { remoteAddress: '127.0.0.1' })).status, 502);
    // The server took the call and began its answer: the call may have run, so its quota stays spent.
    assert.equal(await used(cut.counters), 1, 'a broken answer after the server took the call keeps its quota');
  });
});

// toolgate serve's own stack (worker/node.js startProxy: @hono/node-server,
// the handler, this transport): the client's hang-up reaches the upstream
// through the response's 'close' (NodeClient) and the handler's PlainAbort,
// with no AbortController made for a call.
describe('through startProxy: a client that hangs up', () => {
  let proxy;
  let audit;
  before(async () => {
    const policy = await tempFile('node-transport-policy.json', { version: '1', default: 'deny', tools: { echo: { rate_limit: { max: 1000, window: 'hour' } } } });
    audit = memoryAudit();
    proxy = await startProxy({ servers: { default: { upstream: `${base}/mcp`, policy } }, port: 0, audit, log: () => {}, watch: false });
  });
  after(async () => {
    await proxy?.close();
  });

  // A raw client request (node:http, so that it can hang up at any byte).
  function post(id) {
    const body = JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'echo', arguments: { text: 'x' } } });
    const req = httpRequest(`${proxy.url}/mcp`, {
      method: 'POST', agent: false,
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'content-length': Buffer.byteLength(body) },
    });
    req.on('error', () => {});
    req.end(body);
    return req;
  }

  test('before the upstream answers: the upstream request is aborted, the call audited client_left', async () => {
    const reached = signal();
    const upstreamClosed = signal();
    route = (req, res) => {
      res.on('close', () => upstreamClosed.resolve(res.writableFinished));
      reached.resolve();
    };
    const before = audit.events.length;
    const client = post(1);
    await reached.promise;
    client.destroy();
    assert.equal(await upstreamClosed.promise, false, 'the upstream saw its request go before it answered');
    const [event] = (await audit.waitFor(before + 1)).slice(before);
    assert.equal(event.upstream_status, 'client_left');
    assert.equal(event.decision, 'allow');
  });

  test('in the middle of an event stream: the upstream stream is closed', async () => {
    const upstreamClosed = signal();
    route = (req, res) => {
      res.on('close', () => upstreamClosed.resolve(res.writableFinished));
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(': started\n\n');
    };
    const client = post(2);
    const [response] = await once(client, 'response');
    assert.equal(response.headers['content-type'], 'text/event-stream');
    await once(response, 'data'); // the stream is relayed: now hang up
    client.destroy();
    assert.equal(await upstreamClosed.promise, false);
  });

  test('a call makes no AbortController (the request\'s signal is never asked for)', async () => {
    route = async (req, res) => {
      const message = JSON.parse(await bodyOf(req));
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ jsonrpc: '2.0', id: message.id, result: { content: [] } }));
    };
    const Original = globalThis.AbortController;
    let made = 0;
    globalThis.AbortController = class extends Original {
      constructor() {
        super();
        made += 1;
      }
    };
    try {
      for (let id = 10; id < 15; id++) {
        const response = await postJson(`${proxy.url}/mcp`, id);
        assert.equal(response.result?.content?.length, 0, JSON.stringify(response));
      }
    } finally {
      globalThis.AbortController = Original;
    }
    assert.equal(made, 0);
  });
});

// A POST by node:http (fetch would make AbortControllers of its own in this process).
async function postJson(url, id) {
  const body = JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'echo', arguments: {} } });
  const req = httpRequest(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'content-length': Buffer.byteLength(body) } });
  req.end(body);
  const [response] = await once(req, 'response');
  return JSON.parse(await bodyOf(response));
}

describe('PlainAbort (worker/handler.js): the signal the handler gives this transport', () => {
  // PlainAbort keeps one listener without an array (a call has one, the
  // transport's); any sequence of adds and removes must run the listeners an
  // AbortSignal would run, in its order, once.
  test('runs the listeners an AbortController\'s signal runs, in its order, over 2 000 generated sequences (seeded)', () => {
    const next = random(4711);
    for (let i = 0; i < 2000; i++) {
      const plain = new PlainAbort();
      const controller = new AbortController();
      const calls = { plain: [], controller: [] };
      const listeners = { plain: [0, 1, 2].map((n) => () => calls.plain.push(n)), controller: [0, 1, 2].map((n) => () => calls.controller.push(n)) };
      const steps = Math.floor(next() * 8);
      for (let step = 0; step < steps; step++) {
        const n = Math.floor(next() * 3);
        const method = next() < 0.6 ? 'addEventListener' : 'removeEventListener';
        plain[method]('abort', listeners.plain[n]);
        controller.signal[method]('abort', listeners.controller[n]);
      }
      plain.abort();
      controller.abort();
      plain.abort();
      assert.deepEqual(calls.plain, calls.controller);
      plain.addEventListener('abort', listeners.plain[0]); // after the abort: never runs
      assert.deepEqual(calls.plain, calls.controller);
    }
  });

  test('aborts once, with its reason; listeners run once, removed ones never; the transport rejects with the reason', async () => {
    const abort = new PlainAbort();
    assert.equal(abort.signal, abort);
    assert.equal(abort.aborted, false);
    const calls = [];
    const first = () => calls.push('first');
    const removed = () => calls.push('removed');
    abort.addEventListener('abort', first);
    abort.addEventListener('abort', first); // the same listener once, as EventTarget
    abort.addEventListener('abort', removed);
    abort.addEventListener('other', () => calls.push('other'));
    abort.removeEventListener('abort', removed);
    const reason = new Error('no answer within 5 ms');
    abort.abort(reason);
    abort.abort(new Error('later'));
    assert.deepEqual(calls, ['first']);
    assert.equal(abort.aborted, true);
    assert.equal(abort.reason, reason);
    const plain = new PlainAbort();
    plain.abort();
    assert.equal(plain.reason.name, 'AbortError');

    // In flight: the transport (marked plainSignal) rejects with the reason and the server sees the request go.
    const fetch = transport();
    assert.equal(fetch.plainSignal, true);
    const reached = signal();
    const closed = signal();
    route = (req, res) => {
      res.on('close', () => closed.resolve(res.writableFinished));
      reached.resolve();
    };
    const inFlight = new PlainAbort();
    const answer = fetch(`${base}/slow`, { method: 'POST', body: '{}', signal: inFlight });
    await reached.promise;
    inFlight.abort(reason);
    await assert.rejects(answer, (error) => error === reason);
    assert.equal(await closed.promise, false);
  });
});
