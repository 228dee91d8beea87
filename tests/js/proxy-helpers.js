// What the proxy tests share: a real MCP server (@modelcontextprotocol/server-everything)
// as upstream, a scriptable fake upstream for failures, the official SDK
// client, temporary config files and an audit sink that keeps events.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import { repoRoot } from './cli-helpers.js';
import { freePort } from './redis-server.js';

export { freePort };
export const EVERYTHING = join(repoRoot, 'node_modules/@modelcontextprotocol/server-everything/dist/index.js');

/** server-everything over Streamable HTTP on a free port: { url, stop() }. */
export async function startEverything() {
  const port = await freePort();
  const child = spawn(process.execPath, [EVERYTHING, 'streamableHttp'], {
    env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'ignore', 'pipe'],
  });
  let output = '';
  child.stderr.on('data', (chunk) => { output += chunk; });
  const deadline = Date.now() + 20_000;
  while (!output.includes('listening')) {
    if (child.exitCode !== null) throw new Error(`server-everything exited: ${output}`);
    if (Date.now() > deadline) throw new Error(`server-everything did not start: ${output}`);
    await sleep(50);
  }
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    async stop() {
      if (child.exitCode === null) {
        child.kill();
        await once(child, 'exit');
      }
    },
  };
}

/**
 * A fake upstream: `respond(request, body, res)` answers each request; every
 * request is recorded ({method, url, headers, body}).
 */
export async function startFakeUpstream(respond) {
  const requests = [];
  const server = createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const body = Buffer.concat(chunks).toString('utf8');
    requests.push({ method: req.method, url: req.url, headers: req.headers, body });
    try {
      await respond(req, body, res);
    } catch {
      res.destroy();
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${server.address().port}/mcp`,
    requests,
    async stop() {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

/** A JSON-RPC result for each request of a body (what a well-behaved server says). */
export function echoResults(body) {
  const parsed = JSON.parse(body);
  const answer = (m) => ({ jsonrpc: '2.0', id: m.id, result: { content: [{ type: 'text', text: `ran ${m.params?.name ?? m.method}` }] } });
  if (Array.isArray(parsed)) return parsed.filter((m) => 'id' in m && 'method' in m).map(answer);
  return answer(parsed);
}

let dir;
/** Writes a JSON (or text) file in a temporary directory; returns its path. */
export async function tempFile(name, content) {
  dir ??= await mkdtemp(join(tmpdir(), 'toolgate-proxy-'));
  const path = join(dir, name);
  await writeFile(path, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  return path;
}

export const sha256 = (text) => createHash('sha256').update(text).digest('hex');

/** A grants file for the given {id: token} pairs (with optional attributes). */
export function grantsDocument(tokens, attributes = {}) {
  return { grants: Object.entries(tokens).map(([id, token]) => ({ id, token_sha256: sha256(token), attributes: attributes[id] ?? {} })) };
}

/** An audit sink keeping events in memory. */
export function memoryAudit() {
  const events = [];
  return {
    events,
    async write(event) {
      events.push(event);
    },
    async close() {},
    /** Waits until `count` events were written. */
    async waitFor(count, timeout = 5000) {
      const deadline = Date.now() + timeout;
      while (events.length < count) {
        if (Date.now() > deadline) throw new Error(`expected ${count} audit events, got ${events.length}`);
        await sleep(10);
      }
      return events;
    },
  };
}

/** The official MCP client, connected through the proxy with a bearer token. */
export async function connectClient(url, token) {
  const client = new Client({ name: 'toolgate-test', version: '1.0.0' });
  const headers = token ? { authorization: `Bearer ${token}` } : {};
  const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } });
  await client.connect(transport);
  return client;
}

/** POSTs a raw JSON-RPC body (string or value) to the proxy. */
export async function postRaw(url, body, { token, headers = {} } = {}) {
  const response = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...headers,
    },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}
