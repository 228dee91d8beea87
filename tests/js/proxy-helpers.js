// What the proxy tests share: a real MCP server (@modelcontextprotocol/server-everything)
// as upstream, a scriptable fake upstream for failures, the official SDK
// client, temporary config files and an audit sink that keeps events.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { Agent as HttpAgent, createServer, request as httpRequest } from 'node:http';
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

/**
 * A child process's output stream, collected: `text` so far, and
 * `until(test, what)`, which resolves (to the text) as soon as the text passes
 * `test` (a RegExp or a function), checked on every chunk as it arrives, and
 * rejects, with what was printed, if the stream ends first. Waiting on the
 * output itself, not on a pause: on a loaded machine a line comes when it comes.
 */
export function collectOutput(stream) {
  let text = '';
  let ended = false;
  const waiters = new Set();
  const settle = () => {
    for (const waiter of waiters) {
      if (waiter.test(text)) {
        waiters.delete(waiter);
        waiter.resolve(text);
      } else if (ended) {
        waiters.delete(waiter);
        waiter.reject(new Error(`the output ended before ${waiter.what}:\n${text}`));
      }
    }
  };
  stream.setEncoding('utf8');
  stream.on('data', (chunk) => {
    text += chunk;
    settle();
  });
  const end = () => {
    ended = true;
    settle();
  };
  stream.on('end', end);
  stream.on('close', end);
  return {
    get text() {
      return text;
    },
    // `timeout` only guards against a hang: far above what any output takes.
    until(test, what = String(test), { timeout = 60_000 } = {}) {
      const passes = typeof test === 'function' ? test : (t) => test.test(t);
      return new Promise((resolve, reject) => {
        const waiter = { test: passes, what, resolve, reject };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`waited ${timeout} ms for ${what}; the output so far:\n${text}`));
        }, timeout);
        waiter.resolve = (value) => { clearTimeout(timer); resolve(value); };
        waiter.reject = (error) => { clearTimeout(timer); reject(error); };
        waiters.add(waiter);
        settle();
      });
    },
  };
}

/**
 * Polls `check` (sync or async) until it returns a truthy value, which it
 * returns: for state that announces itself by no event (a file, a Redis
 * stream). `timeout` only guards against a hang; it is far above what the work
 * takes on a loaded machine, and the error says what never came.
 */
export async function waitFor(check, what, { timeout = 60_000, interval = 25 } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`waited ${timeout} ms for ${what}`);
    await sleep(interval);
  }
}

/**
 * server-everything over Streamable HTTP (or `transport`: 'sse') on a free
 * port: { url, port, stop() }.
 * It takes its port from PORT (0 would hide the port it got), so the port is
 * picked here and bound by the child later: another process may take it in
 * between. The child then exits saying so, and another port is tried.
 */
export async function startEverything(transport = 'streamableHttp') {
  let output = '';
  for (let attempt = 0; attempt < 5; attempt += 1) {
    const port = await freePort();
    const child = spawn(process.execPath, [EVERYTHING, transport], {
      env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'ignore', 'pipe'],
    });
    const stderr = collectOutput(child.stderr);
    const exited = once(child, 'exit');
    const started = await stderr.until(/listening on port|running on port/i, `server-everything (${transport}) listening`).then(() => true, () => false);
    output = stderr.text;
    if (started) {
      return {
        url: `http://127.0.0.1:${port}/${transport === 'sse' ? 'sse' : 'mcp'}`,
        port,
        async stop() {
          if (child.exitCode === null && child.signalCode === null) {
            child.kill();
            await exited;
          }
        },
      };
    }
    if (child.exitCode === null && child.signalCode === null) child.kill(); // silent for a minute: hung
    await exited;
    if (!/already in use|EADDRINUSE/.test(output)) break;
  }
  throw new Error(`server-everything did not start: ${output}`);
}

/**
 * `toolgate serve ARGS --port 0` in a child process (`cli`: another checkout's
 * bin/toolgate.js, say; `nodeArgs`: Node's own flags, e.g. --trace-gc);
 * resolves once it prints that it listens: its port and URL, its collected
 * stdout and stderr, and `stop()`.
 */
export async function startServe(args, { cli = join(repoRoot, 'bin/toolgate.js'), nodeArgs = [] } = {}) {
  const child = spawn(process.execPath, [...nodeArgs, cli, 'serve', ...args, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = once(child, 'exit');
  const stderr = collectOutput(child.stderr);
  const stdout = collectOutput(child.stdout);
  const banner = await stderr.until(/is listening on \S+\n/, 'toolgate serve listening').catch((error) => {
    child.kill('SIGKILL');
    throw error;
  });
  const port = Number(/is listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(banner)[1]);
  return {
    port,
    url: `http://127.0.0.1:${port}/mcp`,
    stdout,
    stderr,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
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

/**
 * A tool entry with one per-grant limit of `max` calls per `window`, sliding.
 * For tests that count calls against the wall clock (a real proxy has no clock
 * to give): a fixed window restarts at the top of every UTC hour (or day), so
 * a test that happens to cross one sees its count drop to zero and a call it
 * expects rate limited runs. The sliding estimate carries the previous
 * window's count over the boundary, so the count a test builds up stays.
 */
export const slidingRateLimit = (max, window) => ({ limits: [{ window, max, algorithm: 'sliding' }] });

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
    /** Waits until `count` events were written (`timeout` only guards against a hang). */
    waitFor(count, timeout = 60_000) {
      return waitFor(() => events.length >= count && events, `${count} audit events`, { timeout, interval: 5 });
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

/**
 * `count` POSTs of `body` (a tools/call) to `port`'s /mcp with a bearer
 * `token`, `concurrency` at a time on kept-alive connections; each must be
 * answered 200 by the upstream with the text `ranText` (not denied, not
 * answered by the proxy). For load through the real Node transport.
 */
export async function callMany(port, count, { body, token, ranText, concurrency = 10 }) {
  const agent = new HttpAgent({ keepAlive: true, maxSockets: concurrency });
  const post = () => new Promise((resolve, reject) => {
    const req = httpRequest({
      host: '127.0.0.1', port, path: '/mcp', method: 'POST', agent,
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${token}`, 'content-length': Buffer.byteLength(body) },
    }, (res) => {
      const chunks = [];
      res.on('data', (chunk) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
  let next = 0;
  const worker = async () => {
    while (next < count) {
      next += 1;
      const { status, text } = await post();
      assert.equal(status, 200, text);
      assert.equal(JSON.parse(text).result?.content?.[0]?.text, ranText, `the call was not run upstream: ${text}`);
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    agent.destroy();
  }
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
