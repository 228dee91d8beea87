// A minimal, fast MCP upstream for the proxy benchmark: node:http, answers
// every JSON-RPC request with a JSON result (application/json), never an event
// stream, keeps no session. GET /stats tells how many tools/call requests it
// has answered (the benchmark's count of calls that got through).
//
//   node bench/proxy/upstream.js [--port N]   (prints "listening on URL" to stderr)
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { port: { type: 'string', default: '0' } } });

let toolsCalls = 0;
let requests = 0;

const answer = (message) => {
  if (message?.method === 'tools/call') {
    toolsCalls += 1;
    return { jsonrpc: '2.0', id: message.id, result: { content: [{ type: 'text', text: `ran ${message.params?.name}` }], isError: false } };
  }
  if (message?.method === 'initialize') {
    return {
      jsonrpc: '2.0', id: message.id,
      result: { protocolVersion: '2025-06-18', capabilities: { tools: {} }, serverInfo: { name: 'bench-upstream', version: '1.0.0' } },
    };
  }
  if (message?.method === 'tools/list') {
    return { jsonrpc: '2.0', id: message.id, result: { tools: [{ name: 'create_refund', inputSchema: { type: 'object' } }] } };
  }
  return { jsonrpc: '2.0', id: message?.id ?? null, result: {} };
};

const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/stats') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ tools_calls: toolsCalls, requests }));
    return;
  }
  if (req.method !== 'POST') {
    res.writeHead(405, { allow: 'POST' });
    res.end();
    return;
  }
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    requests += 1;
    let body;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end('{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}');
      return;
    }
    const messages = Array.isArray(body) ? body : [body];
    const answers = messages.filter((m) => m && 'method' in m && 'id' in m).map(answer);
    if (answers.length === 0) {
      res.writeHead(202);
      res.end();
      return;
    }
    const text = JSON.stringify(Array.isArray(body) ? answers : answers[0]);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(Number(values.port), '127.0.0.1', () => {
  process.stderr.write(`bench upstream listening on http://127.0.0.1:${server.address().port}/mcp\n`);
});
const stop = () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
