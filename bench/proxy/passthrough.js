// A proxy without policy, for the benchmark's baseline: the same HTTP stack as
// `toolgate serve` (@hono/node-server in, worker/node-transport.js upstream:
// undici's dispatcher with kept-alive connections), forwarding the same request headers
// and the body as read. A JSON answer is read whole the way toolgate reads the
// answers it inspects (upstreamBody: no web stream) and sent back as bytes;
// any other answer (event streams) is streamed back. No parsing, no decision,
// no audit, no upstream timeout. --transport fetch uses Node's fetch upstream
// instead, and streams every answer back (what toolgate serve does with
// TOOLGATE_UPSTREAM_TRANSPORT=fetch). --stream streams every answer back, JSON
// too (a web stream per answer: what toolgate does with answers it passes on
// unread), for comparison.
//
//   node bench/proxy/passthrough.js --upstream URL [--port N] [--transport node|fetch] [--stream]
//   (prints "listening on URL" to stderr)
import { parseArgs } from 'node:util';
import { createAdaptorServer } from '@hono/node-server';

import { createNodeTransport, upstreamBody } from '../../worker/node-transport.js';

const { values } = parseArgs({ options: { upstream: { type: 'string' }, port: { type: 'string', default: '0' }, transport: { type: 'string', default: 'node' }, stream: { type: 'boolean', default: false } } });
if (!values.upstream) {
  process.stderr.write('usage: node bench/proxy/passthrough.js --upstream URL [--port N]\n');
  process.exit(2);
}
const upstream = values.upstream;
const upstreamFetch = values.transport === 'fetch' ? (...args) => fetch(...args) : createNodeTransport();

// What toolgate forwards (worker/handler.js), both ways.
const REQUEST_HEADERS = ['accept', 'content-type', 'mcp-session-id', 'mcp-protocol-version', 'last-event-id'];
const RESPONSE_HEADERS = ['content-type', 'mcp-session-id', 'mcp-protocol-version', 'cache-control', 'retry-after'];

// Plain objects, as toolgate's handler uses.
const pick = (from, names) => {
  const headers = {};
  for (const name of names) {
    const value = from.get(name);
    if (value !== null) headers[name] = value;
  }
  return headers;
};

const MAX_RESPONSE_BYTES = 32 * 1024 * 1024; // toolgate's default

const server = createAdaptorServer({
  async fetch(request) {
    const body = request.method === 'POST' ? await request.arrayBuffer() : undefined;
    const response = await upstreamFetch(upstream, { method: request.method, headers: pick(request.headers, REQUEST_HEADERS), body, redirect: 'manual' });
    const headers = pick(response.headers, RESPONSE_HEADERS);
    const direct = values.stream ? undefined : upstreamBody(response);
    if (direct && !direct.empty && /^application\/json/i.test(headers['content-type'] ?? '')) {
      const bytes = await direct.read(MAX_RESPONSE_BYTES).catch(() => null);
      if (bytes === null) return new Response('bad gateway', { status: 502 });
      return new Response(bytes, { status: response.status, headers });
    }
    return new Response(response.body, { status: response.status, headers });
  },
  hostname: '127.0.0.1',
});
server.listen(Number(values.port), '127.0.0.1', () => {
  process.stderr.write(`bench passthrough listening on http://127.0.0.1:${server.address().port}/mcp\n`);
});
const stop = () => {
  server.closeAllConnections?.();
  server.close(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
