// A proxy without policy, for the benchmark's baseline: the same HTTP stack as
// toolgate on Node (@hono/node-server, fetch upstream), forwarding the same
// request headers and the body as read, and streaming the answer back. No
// parsing, no decision, no audit.
//
//   node bench/proxy/passthrough.js --upstream URL [--port N]   (prints "listening on URL" to stderr)
import { parseArgs } from 'node:util';
import { createAdaptorServer } from '@hono/node-server';

const { values } = parseArgs({ options: { upstream: { type: 'string' }, port: { type: 'string', default: '0' } } });
if (!values.upstream) {
  process.stderr.write('usage: node bench/proxy/passthrough.js --upstream URL [--port N]\n');
  process.exit(2);
}
const upstream = values.upstream;

// What toolgate forwards (worker/handler.js), both ways.
const REQUEST_HEADERS = ['accept', 'content-type', 'mcp-session-id', 'mcp-protocol-version', 'last-event-id'];
const RESPONSE_HEADERS = ['content-type', 'mcp-session-id', 'mcp-protocol-version', 'cache-control', 'retry-after'];

const pick = (from, names) => {
  const headers = new Headers();
  for (const name of names) {
    const value = from.get(name);
    if (value !== null) headers.set(name, value);
  }
  return headers;
};

const server = createAdaptorServer({
  async fetch(request) {
    const body = request.method === 'POST' ? await request.arrayBuffer() : undefined;
    const response = await fetch(upstream, { method: request.method, headers: pick(request.headers, REQUEST_HEADERS), body, redirect: 'manual' });
    return new Response(response.body, { status: response.status, headers: pick(response.headers, RESPONSE_HEADERS) });
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
