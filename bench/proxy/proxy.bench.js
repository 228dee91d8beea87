// The proxy's overhead on loopback: the same JSON-RPC tools/call POST sent by
// autocannon (in this process) to
//   direct       a minimal upstream (upstream.js)
//   passthrough  a proxy without policy on the same HTTP stack (passthrough.js)
//   toolgate     `toolgate serve` with the memory store, the same with Prometheus
//                metrics on (--metrics), the same with --pins (the upstream's tools
//                pinned), then with a Redis store
// each server a child process. Per case: latency of sequential requests (one
// connection: the added-latency figure), latency and requests/s under load
// (--connections), CPU per request of each server process and, for Redis,
// store round trips per tools/call (MONITOR over N sequential calls, and INFO
// commandstats around the loaded run). Prints Markdown and writes
// bench/results/proxy.json (with a top-level "budgets" array) and the printed
// Markdown to bench/results/proxy.md. Not a test: nothing fails on a number.
//
//   node bench/proxy/proxy.bench.js [--duration S] [--connections N] [--rounds N] [--quick]
//     [--profile] [--everything] [--idle-wait S] [--no-redis] [--toolgate-bin PATH]
//     [--transport node|fetch] [--metrics-pairs N] [--metrics-seconds S] [--out FILE]
// (flags: bench/README.md)
import { spawn, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import net from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';

import autocannon from 'autocannon';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { createServer } from 'node:http';
import { createClient } from 'redis';

import { startRedis, REDIS_SERVER } from '../../tests/js/redis-server.js';
import { Grants } from '../../worker/grants.js';
import { NODE_SHA256 } from '../../worker/node.js';
import { checkOAuthConfig, createOAuth } from '../../worker/oauth.js';
import { summariseProfile } from './cpuprofile.js';
import { BODY, HEADERS, POLICY, TOKEN } from './typical-call.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const here = fileURLToPath(new URL('./', import.meta.url));

const { values: flags } = parseArgs({
  options: {
    duration: { type: 'string' }, // seconds under load, per case and round
    'seq-duration': { type: 'string' }, // seconds of sequential requests, per case and round
    warmup: { type: 'string' },
    connections: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '1' },
    quick: { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
    everything: { type: 'boolean', default: false },
    'no-redis': { type: 'boolean', default: false },
    'toolgate-bin': { type: 'string', default: join(root, 'bin/toolgate.js') }, // e.g. another checkout's, to compare
    'idle-wait': { type: 'string', default: '0' }, // before each case, wait up to S seconds for the rest of the machine to go quiet
    // how toolgate serve and the passthrough call the upstream: node (worker/node-transport.js, the default of serve) or fetch
    transport: { type: 'string', default: 'node' },
    // metrics on vs off, paired: how many off/on pairs of loaded runs, and how long each run is
    'metrics-pairs': { type: 'string' },
    'metrics-seconds': { type: 'string' },
    out: { type: 'string', default: join(root, 'bench/results/proxy.json') },
  },
});
const quick = flags.quick;
const duration = Number(flags.duration ?? (quick ? 2 : 10));
const seqDuration = Number(flags['seq-duration'] ?? Math.max(1, duration / 2));
const warmup = Number(flags.warmup ?? (quick ? 0.5 : 2));
const connections = Number(flags.connections);
const rounds = Number(flags.rounds);
// More, shorter turns (12 of 2.5 s, not 6 of 5 s): a burst of other processes'
// work falls on fewer turns, and the trimmed mean has more pairs to read.
const metricsPairs = Number(flags['metrics-pairs'] ?? (quick ? 2 : 12));
const metricsSeconds = Number(flags['metrics-seconds'] ?? (quick ? 1 : 2.5));
if (!['node', 'fetch'].includes(flags.transport)) throw new Error(`--transport must be node or fetch, not ${flags.transport}`);

// The request: bench/proxy/typical-call.js.

// ------------------------------------------------------------------ children

const children = new Set();
// Every server process of this benchmark (children and redis-server), for CPU accounting.
const ownPids = new Set();
const ownCpuMs = () => [...ownPids].reduce((sum, pid) => sum + (cpuMs(pid) || 0), 0);
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

const listeningUrl = (output) => /listening on (http:\/\/[^\s/]+)/.exec(output)?.[1];

/**
 * Starts `node args...` with exit-with-parent.js preloaded (it stops when
 * this process closes its stdin or dies), waits until `ready(stderr)` gives
 * its URL ("listening on URL"). Returns { name, url (origin), pid, stop(), output() }.
 */
async function startNode(name, args, { env = {}, nodeOptions = [], ready = listeningUrl } = {}) {
  const child = spawn(process.execPath, [...nodeOptions, '--import', join(here, 'exit-with-parent.js'), ...args], {
    cwd: root, env: { ...process.env, ...env }, stdio: ['pipe', 'ignore', 'pipe'],
  });
  children.add(child);
  ownPids.add(child.pid);
  let output = '';
  child.stderr.on('data', (chunk) => {
    if (output.length < 100_000) output += chunk;
  });
  const exited = once(child, 'exit');
  const stop = async () => {
    children.delete(child);
    ownPids.delete(child.pid);
    if (child.exitCode === null && child.signalCode === null) {
      child.stdin.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
  };
  const deadline = Date.now() + 20_000;
  for (;;) {
    const url = ready(output);
    if (url) return { name, url, pid: child.pid, stop, output: () => output };
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`${name} did not start:\n${output}`);
    }
    await sleep(20);
  }
}

// Stop every child on the way out, however this process ends. (Children also
// stop by themselves when their stdin closes, e.g. after a SIGKILL here.)
process.on('exit', () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    process.stderr.write(`\n${signal}: stopping the servers\n`);
    process.exit(130);
  });
}

/** CPU time (user + system, ms) a process has used so far, from /proc. */
function cpuMs(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) / CLK_TCK) * 1000; // utime, stime
  } catch {
    return NaN;
  }
}

/** CPU time (ms) the whole machine has spent busy so far, from /proc/stat. */
function systemBusyMs() {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = fields;
  return ((user + nice + system + irq + softirq + (steal ?? 0)) / CLK_TCK) * 1000;
}

/**
 * Counts the commands Redis receives while `fn` runs, by MONITOR: those sent
 * by clients (round trips) apart from those run inside Lua scripts.
 * Returns { result, clients: {command: n}, scripts: {command: n} }.
 */
async function monitorRedis(port, fn) {
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  const clients = {};
  const scripts = {};
  let buffer = '';
  let ready;
  const started = new Promise((resolve) => { ready = resolve; });
  socket.setEncoding('utf8');
  socket.on('data', (chunk) => {
    buffer += chunk;
    let end;
    while ((end = buffer.indexOf('\r\n')) >= 0) {
      const line = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      if (line === '+OK') {
        ready();
        continue;
      }
      // +1700000000.123456 [0 127.0.0.1:5555] "EVALSHA" "..."   or   [0 lua] "GET" ...
      const match = /^\+\d+\.\d+ \[\d+ ([^\]]+)\] "([^"]+)"/.exec(line);
      if (!match) continue;
      const into = match[1] === 'lua' ? scripts : clients;
      const command = match[2].toLowerCase();
      into[command] = (into[command] ?? 0) + 1;
    }
  });
  socket.write('MONITOR\r\n');
  await started;
  const result = await fn();
  await sleep(200);
  socket.destroy();
  return { result, clients, scripts };
}

/** Waits (up to `seconds`) until other processes use under 10 % of the machine's CPU for 2 s. */
async function waitForQuiet(seconds) {
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    const busy0 = systemBusyMs();
    const own0 = ownCpuMs() + process.cpuUsage().user / 1000 + process.cpuUsage().system / 1000;
    await sleep(2000);
    const own = ownCpuMs() + process.cpuUsage().user / 1000 + process.cpuUsage().system / 1000 - own0;
    const foreign = (systemBusyMs() - busy0 - own) / (2000 * cpus().length);
    if (foreign < 0.1) return true;
  }
  return seconds === 0;
}

// ------------------------------------------------------------------ measuring

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const median = (list) => {
  const sorted = list.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
// The mean of the middle of the list: a quarter (rounded) dropped at each end,
// so with 3 or 4 values it is the median, with 12 the mean of the middle 6.
// Over a dozen pairs it moves less than the median (it averages the middle
// rather than picking one value) and, like it, not at all with one or two
// pairs that other processes disturbed.
const trimmedMean = (list) => {
  const sorted = list.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const cut = Math.floor((sorted.length + 1) / 4);
  const middle = sorted.slice(cut, sorted.length - cut);
  return middle.reduce((sum, value) => sum + value, 0) / middle.length;
};

/**
 * One autocannon run. Latencies are taken from its 'response' events, which
 * carry the time in ms as a float (its own histogram keeps whole ms only).
 */
async function load(url, { seconds, connections: conns, body = BODY, headers = HEADERS }) {
  const latencies = [];
  let statusOther = 0;
  const started = process.hrtime.bigint();
  const cpuBefore = process.cpuUsage();
  const busyBefore = systemBusyMs();
  const ownBefore = ownCpuMs();
  const instance = autocannon({
    url, method: 'POST', headers, body, connections: conns, pipelining: 1, duration: seconds, timeout: 10,
  });
  instance.on('response', (client, statusCode, bytes, responseTime) => {
    if (statusCode >= 200 && statusCode < 300) latencies.push(responseTime);
    else statusOther += 1;
  });
  const result = await instance;
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = process.cpuUsage(cpuBefore);
  const ownCpu = ownCpuMs() - ownBefore;
  const busy = systemBusyMs() - busyBefore;
  latencies.sort((a, b) => a - b);
  return {
    requests: latencies.length,
    seconds: elapsed,
    rps: latencies.length / elapsed,
    p50_ms: percentile(latencies, 50),
    p90_ms: percentile(latencies, 90),
    p99_ms: percentile(latencies, 99),
    max_ms: latencies[latencies.length - 1],
    non2xx: statusOther,
    errors: result.errors,
    timeouts: result.timeouts,
    client_cpu_ms_per_request: (cpu.user + cpu.system) / 1000 / Math.max(1, latencies.length),
    // CPU the rest of the machine used meanwhile, as a share of all its CPUs:
    // anything well above 0 makes the figures of this run noisy.
    foreign_cpu_share: Math.max(0, busy - (cpu.user + cpu.system) / 1000 - ownCpu) / (elapsed * 1000 * cpus().length),
  };
}

async function upstreamCalls(upstream) {
  const response = await fetch(`${upstream.url}/stats`);
  return (await response.json()).tools_calls;
}

/** Redis INFO commandstats as { command: {calls, usec} }. */
async function commandStats(redis) {
  const text = await redis.sendCommand(['INFO', 'commandstats']);
  const stats = {};
  for (const line of text.split(/\r?\n/)) {
    const match = /^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/.exec(line);
    if (match) stats[match[1]] = { calls: Number(match[2]), usec: Number(match[3]) };
  }
  return stats;
}

function statsDelta(before, after) {
  const delta = {};
  for (const [command, { calls, usec }] of Object.entries(after)) {
    const was = before[command] ?? { calls: 0, usec: 0 };
    if (calls > was.calls) delta[command] = { calls: calls - was.calls, usec: usec - was.usec };
  }
  // The INFO that read `after` counts itself.
  if (delta.info) {
    delta.info.calls -= 1;
    if (delta.info.calls === 0) delete delta.info;
  }
  return delta;
}

/** Checks once that `url` answers the call with the upstream's result (not a denial). */
// Returns how long the call took (ms, wall): for a server's first call, what a
// cold start leaves to the first client.
async function preflight(name, url, headers = HEADERS, body = BODY) {
  const started = performance.now();
  const response = await fetch(url, { method: 'POST', headers, body });
  const text = await response.text();
  const ms = performance.now() - started;
  if (response.status !== 200) throw new Error(`${name}: HTTP ${response.status}: ${text}`);
  // An event stream (server-everything) carries the message in a data: line.
  const json = /^event:|^data:/m.test(text) ? JSON.parse(/^data: ?(.*)$/m.exec(text)[1]) : JSON.parse(text);
  if (json.error || json.result?.isError) throw new Error(`${name}: the call was not answered by the upstream: ${text}`);
  return ms;
}

/**
 * A case: warm-up, sequential run, loaded run, with CPU and Redis counts
 * around the loaded and sequential runs.
 */
async function runCase(target, { upstream, redis, servers, headers = HEADERS }) {
  const url = `${target.url}/mcp`;
  await load(url, { seconds: warmup, connections, headers });
  const measure = async (seconds, conns) => {
    const calls0 = await upstreamCalls(upstream);
    const stats0 = redis ? await commandStats(redis) : null;
    const cpu0 = servers.map((s) => cpuMs(s.pid));
    const figures = await load(url, { seconds, connections: conns, headers });
    await sleep(200); // calls in flight when autocannon stopped
    const calls = (await upstreamCalls(upstream)) - calls0;
    figures.upstream_tools_calls = calls;
    figures.cpu_ms_per_request = Object.fromEntries(servers.map((s, i) => [s.name, (cpuMs(s.pid) - cpu0[i]) / Math.max(1, calls)]));
    if (redis) {
      const delta = statsDelta(stats0, await commandStats(redis));
      const scripts = (delta.evalsha?.calls ?? 0) + (delta.eval?.calls ?? 0);
      figures.redis = {
        commands: delta, // commandstats counts the commands scripts run too
        script_calls_per_tools_call: scripts / calls,
        evalsha_usec_per_call: delta.evalsha ? delta.evalsha.usec / delta.evalsha.calls : null,
      };
    }
    return figures;
  };
  const sequential = await measure(seqDuration, 1);
  const loaded = await measure(duration, connections);
  return { sequential, loaded };
}

/**
 * GET `url` (/metrics, with the admin token) every second, as a Prometheus
 * would, until stop(), which scrapes once more and resolves to { scrapes,
 * failures, bytes (of the last), decisions (toolgate_decisions_total summed,
 * from the last) }.
 */
function startScraper(url) {
  const state = { scrapes: 0, failures: 0, bytes: 0, decisions: 0, errors: [] };
  let running = Promise.resolve();
  const scrape = () => {
    running = running.then(async () => {
      try {
        const response = await fetch(url, { headers: { authorization: `Bearer ${serveEnv.TOOLGATE_ADMIN_TOKEN}` } });
        const text = await response.text();
        if (!response.ok) throw new Error(`HTTP ${response.status}: ${text.slice(0, 200)}`);
        state.scrapes += 1;
        state.bytes = text.length;
        state.decisions = [...text.matchAll(/^toolgate_decisions_total\{[^}]*\} (\d+)$/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
      } catch (error) {
        state.failures += 1;
        if (state.errors.length < 5) state.errors.push(String(error?.message ?? error));
      }
    });
  };
  const timer = setInterval(scrape, 1000);
  return {
    state,
    async stop() {
      clearInterval(timer);
      scrape();
      await running;
      return state;
    },
  };
}

// ------------------------------------------------------------------- the run

const work = mkdtempSync(join(tmpdir(), 'toolgate-proxy-bench-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));
const policyPath = join(work, 'policy.json');
const grantsPath = join(work, 'grants.json');
// Audit files in a directory of their own, as a deployment keeps them apart
// from its configuration: toolgate serve watches its policy's and grants'
// directories, and an audit file there would wake every server's watcher at
// each append (bench/README.md, proxy CPU, fourth round).
const auditDir = join(work, 'audit');
mkdirSync(auditDir);
writeFileSync(policyPath, JSON.stringify(POLICY, null, 2));
writeFileSync(grantsPath, JSON.stringify({
  grants: [{ id: 'bench-agent', token_sha256: createHash('sha256').update(TOKEN).digest('hex'), attributes: { role: 'support' } }],
}));

function serveArgs(upstreamUrl, { store = 'memory', audit, policy = policyPath, extra = [] } = {}) {
  return [flags['toolgate-bin'], 'serve', '--policy', policy, '--upstream', upstreamUrl, '--grants', grantsPath,
    '--port', '0', '--store', store, '--audit', audit, ...extra];
}
// TOOLGATE_UPSTREAM_TRANSPORT: worker/node.js's choice of upstream transport, the same as the passthrough's.
const serveEnv = { TOOLGATE_ADMIN_TOKEN: 'bench-admin-token', TOOLGATE_UPSTREAM_TRANSPORT: flags.transport };
const passthroughArgs = (upstreamUrl) => [join(here, 'passthrough.js'), '--upstream', upstreamUrl, '--transport', flags.transport];

const log = (message) => process.stderr.write(`${message}\n`);
log(`proxy bench: ${rounds} round(s); per case ${warmup} s warm-up, ${seqDuration} s sequential, ${duration} s with ${connections} connections; upstream transport ${flags.transport}`);

const upstream = await startNode('upstream', [join(here, 'upstream.js')]);
const passthrough = await startNode('passthrough', passthroughArgs(`${upstream.url}/mcp`));
const toolgateMemory = await startNode('toolgate', serveArgs(`${upstream.url}/mcp`, { audit: `file:${join(auditDir, 'audit-memory.jsonl')}` }), { env: serveEnv });
// The same with Prometheus metrics on: what metrics cost (budget: within 2 % of the throughput without).
const toolgateMetrics = await startNode('toolgate', serveArgs(`${upstream.url}/mcp`, { audit: `file:${join(auditDir, 'audit-metrics.jsonl')}`, extra: ['--metrics'] }), { env: serveEnv });
const scraper = startScraper(`${toolgateMetrics.url}/metrics`);
// The same with the upstream's tools pinned (--pins): each call's definition
// check is a lookup (the first call makes toolgate list the tools once).
const pinsPath = join(work, 'pins.json');
{
  const listed = await fetch(`${upstream.url}/mcp`, { method: 'POST', headers: HEADERS, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }) });
  const { makePins } = await import('../../worker/pins.js');
  writeFileSync(pinsPath, JSON.stringify(await makePins({ default: (await listed.json()).result.tools })));
}
const toolgatePins = await startNode('toolgate', [...serveArgs(`${upstream.url}/mcp`, { audit: `file:${join(auditDir, 'audit-pins.jsonl')}` }), '--pins', pinsPath], { env: serveEnv });

let redisServer = null;
let redis = null;
let toolgateRedis = null;
let redisPid = null;
if (!flags['no-redis']) {
  try {
    redisServer = await startRedis();
  } catch (error) {
    log(`Redis case skipped: ${error.message}`);
  }
  if (redisServer) {
    process.on('exit', () => redisServer.stop()); // its watchdog shell also ends it when this process dies
    redis = createClient({ url: redisServer.url });
    redis.on('error', () => {});
    await redis.connect();
    redisPid = Number(/process_id:(\d+)/.exec(await redis.sendCommand(['INFO', 'server']))[1]);
    ownPids.add(redisPid);
    toolgateRedis = await startNode('toolgate', serveArgs(`${upstream.url}/mcp`, { store: redisServer.url, audit: `file:${join(auditDir, 'audit-redis.jsonl')}` }), { env: serveEnv });
  }
}

// OAuth: the same toolgate (memory store) taking a JWT access token instead of
// the static token. The issuer (RFC 8414 metadata and a JWKS) is served by this
// process; toolgate fetches its keys once, then a verified token is cached
// until it expires (worker/oauth.js), so the figure is the warm cost.
const OAUTH_RESOURCE = 'http://toolgate.bench/mcp';
const { privateKey: oauthKey, publicKey: oauthPublic } = await generateKeyPair('ES256');
const oauthJwk = { ...(await exportJWK(oauthPublic)), kid: 'bench', alg: 'ES256', use: 'sig' };
const issuerServer = createServer((req, res) => {
  res.setHeader('content-type', 'application/json');
  if (req.url === '/.well-known/oauth-authorization-server') res.end(JSON.stringify({ issuer: issuerUrl, jwks_uri: `${issuerUrl}/jwks` }));
  else if (req.url === '/jwks') res.end(JSON.stringify({ keys: [oauthJwk] }));
  else res.writeHead(404).end('{}');
});
issuerServer.listen(0, '127.0.0.1');
await once(issuerServer, 'listening');
const issuerUrl = `http://127.0.0.1:${issuerServer.address().port}`;
const oauthToken = await new SignJWT({ sub: 'bench-user', aud: OAUTH_RESOURCE, scope: 'mcp:tools', role: 'support' })
  .setProtectedHeader({ alg: 'ES256', kid: 'bench' }).setIssuer(issuerUrl).setIssuedAt().setExpirationTime('2h').sign(oauthKey);
const OAUTH_HEADERS = { ...HEADERS, authorization: `Bearer ${oauthToken}` };
const toolgateOAuth = await startNode('toolgate', [...serveArgs(`${upstream.url}/mcp`, { audit: `file:${join(auditDir, 'audit-oauth.jsonl')}` }),
  '--oauth-issuer', issuerUrl, '--resource', OAUTH_RESOURCE], { env: serveEnv });
const oauthName = 'toolgate (memory store, OAuth JWT)';

const redisProcess = redisPid ? [{ name: 'redis-server', pid: redisPid }] : [];
const cases = [
  { name: 'direct', target: upstream, servers: [upstream] },
  { name: 'passthrough', target: passthrough, servers: [passthrough, upstream] },
  { name: 'toolgate (memory store)', target: toolgateMemory, servers: [toolgateMemory, upstream] },
  { name: 'toolgate (memory store, metrics on)', target: toolgateMetrics, servers: [toolgateMetrics, upstream] },
  { name: oauthName, target: toolgateOAuth, servers: [toolgateOAuth, upstream], headers: OAUTH_HEADERS },
  { name: 'toolgate (memory store, pins)', target: toolgatePins, servers: [toolgatePins, upstream] },
  ...(toolgateRedis ? [{ name: 'toolgate (Redis store)', target: toolgateRedis, servers: [toolgateRedis, upstream, ...redisProcess], redis }] : []),
];
// Each server's first call (Node's fetch in this process is warmed by the
// pins setup's tools/list above): toolgate serve's includes what the engine's
// first decision costs (it loads the core warmed).
const firstCallMs = {};
for (const c of cases) firstCallMs[c.name] = await preflight(c.name, `${c.target.url}/mcp`, c.headers);

const disturbance = (result) => Math.max(result.sequential.foreign_cpu_share, result.loaded.foreign_cpu_share);
const runs = Object.fromEntries(cases.map((c) => [c.name, []]));
for (let round = 1; round <= rounds; round++) {
  for (const c of cases) {
    // With --idle-wait, a case that other processes disturbed (over 10 % of
    // the CPU) is measured again, twice at most; the least disturbed one counts.
    const idleWait = Number(flags['idle-wait']);
    let best;
    for (let attempt = 1; attempt <= (idleWait > 0 ? 3 : 1); attempt++) {
      if (!(await waitForQuiet(idleWait))) log('  (the machine is busy with other processes; measuring anyway)');
      log(`round ${round}/${rounds}: ${c.name}${attempt > 1 ? ` (again: other processes took ${Math.round(disturbance(best) * 100)} % of the CPU)` : ''}`);
      const result = await runCase(c.target, { upstream, redis: c.redis, servers: c.servers, headers: c.headers });
      if (!best || disturbance(result) < disturbance(best)) best = result;
      if (disturbance(best) <= 0.1) break;
    }
    runs[c.name].push(best);
  }
}

// Two servers that differ in one feature, paired: they take turns, off-on
// then on-off (ABBA), so a machine that gets busier or quieter during the
// runs weighs on both alike. Each turn is a sequential run (one connection:
// the p50 a feature adds) and a loaded run (throughput and CPU per request).
// Per pair: the p50 difference (on − off), the throughput ratio (on / off)
// and each server's CPU per request; the p50 budgets read the median over the
// pairs, the throughput budgets the trimmed mean of the ratios (above), with
// the CPU per request ratio beside it: the server's own CPU per call, which
// other processes' load moves far less than requests/s (in a run with other
// processes taking up to 89 % of the CPU, pins pairs went from 75 to 169 % of
// the throughput, their CPU per request from 101 to 126 %). A few per cent, or a few tens of µs of p50, is well inside what
// separates two runs minutes apart on a shared machine (or two servers
// started at different times), so such budgets are never read from the
// case table. Before the pairs each side runs loaded for a whole turn,
// discarded, so both are measured warm (V8 has optimised their paths).
async function pairedRuns(sides, { pairs: count, seconds, label, headers = {} }) {
  const comparison = { pairs: [], seconds, sequential_seconds: seconds / 2, connections };
  for (const [side, target] of Object.entries(sides)) await load(`${target.url}/mcp`, { seconds, connections, headers: headers[side] ?? HEADERS });
  for (let pair = 0; pair < count; pair++) {
    log(`${label}: pair ${pair + 1}/${count}`);
    const result = {};
    for (const side of pair % 2 === 0 ? ['off', 'on'] : ['on', 'off']) {
      const target = sides[side];
      const sideHeaders = headers[side] ?? HEADERS;
      const sequential = await load(`${target.url}/mcp`, { seconds: seconds / 2, connections: 1, headers: sideHeaders });
      const calls0 = await upstreamCalls(upstream);
      const cpu0 = cpuMs(target.pid);
      const figures = await load(`${target.url}/mcp`, { seconds, connections, headers: sideHeaders });
      await sleep(100); // calls in flight when autocannon stopped
      const calls = (await upstreamCalls(upstream)) - calls0;
      result[side] = {
        rps: figures.rps, p50_ms: figures.p50_ms, sequential_p50_ms: sequential.p50_ms, requests: figures.requests,
        non2xx: figures.non2xx + sequential.non2xx, errors: figures.errors + sequential.errors,
        cpu_ms_per_request: (cpuMs(target.pid) - cpu0) / Math.max(1, calls), foreign_cpu_share: Math.max(figures.foreign_cpu_share, sequential.foreign_cpu_share),
      };
    }
    result.throughput_ratio = result.on.rps / result.off.rps;
    result.cpu_ratio = result.on.cpu_ms_per_request / result.off.cpu_ms_per_request;
    result.added_sequential_p50_ms = result.on.sequential_p50_ms - result.off.sequential_p50_ms;
    comparison.pairs.push(result);
  }
  const { pairs } = comparison;
  comparison.throughput_ratio_median = median(pairs.map((p) => p.throughput_ratio));
  comparison.throughput_ratio_trimmed = trimmedMean(pairs.map((p) => p.throughput_ratio));
  comparison.cpu_ratio_median = median(pairs.map((p) => p.cpu_ratio));
  comparison.cpu_ratio_trimmed = trimmedMean(pairs.map((p) => p.cpu_ratio));
  comparison.added_sequential_p50_ms_median = median(pairs.map((p) => p.added_sequential_p50_ms));
  comparison.rps_median = { off: median(pairs.map((p) => p.off.rps)), on: median(pairs.map((p) => p.on.rps)) };
  comparison.sequential_p50_ms_median = { off: median(pairs.map((p) => p.off.sequential_p50_ms)), on: median(pairs.map((p) => p.on.sequential_p50_ms)) };
  comparison.cpu_ms_per_request_median = { off: median(pairs.map((p) => p.off.cpu_ms_per_request)), on: median(pairs.map((p) => p.on.cpu_ms_per_request)) };
  comparison.foreign_cpu_share_max = Math.max(...pairs.flatMap((p) => [p.off.foreign_cpu_share, p.on.foreign_cpu_share]));
  return comparison;
}

// Metrics on vs off: the same `toolgate serve`, one with --metrics, scraped
// every second all along.
const metricsComparison = await pairedRuns({ off: toolgateMemory, on: toolgateMetrics }, { pairs: metricsPairs, seconds: metricsSeconds, label: 'metrics on vs off' });
// Pins on vs off: the same `toolgate serve`, one with --pins (#15: pins add no
// measurable time per call; throughput at least 95 % of the server without).
const pinsComparison = await pairedRuns({ off: toolgateMemory, on: toolgatePins }, { pairs: metricsPairs, seconds: metricsSeconds, label: 'pins on vs off' });
// A JWT access token vs the static token (#14: at most 0.05 ms added p50).
const oauthComparison = await pairedRuns({ off: toolgateMemory, on: toolgateOAuth }, {
  pairs: metricsPairs, seconds: metricsSeconds, label: 'OAuth JWT vs static token', headers: { on: OAUTH_HEADERS },
});
metricsComparison.scraper = await scraper.stop();

// What metrics add to one call, in process and without the network's noise:
// the events a proxied tools/call causes (a decision counted and timed, the
// store's reserve and commit timed, the upstream's answer counted and timed)
// through worker/metrics.js, minus the same store operations untimed. CPU
// time, the least of several runs; as a share of the memory case's CPU per
// request from the paired runs.
async function metricsCostPerCall() {
  const { createMetrics } = await import('../../worker/metrics.js');
  const { MemoryCounterStore } = await import('../../wasm/index.js');
  const metrics = createMetrics();
  const timed = metrics.instrumentStore(new MemoryCounterStore());
  const plain = new MemoryCounterStore();
  const requests = [{ key: 'k', scope: 'grant', grant: 'bench-agent', cost: 1, max: 1e15, window_ms: 60_000, algorithm: 'fixed', bucket_start_ms: 0 }];
  const n = quick ? 20_000 : 200_000;
  const cpuUs = (fn) => {
    let best = Infinity;
    for (let run = 0; run < 7; run++) {
      const before = process.cpuUsage();
      fn();
      const used = process.cpuUsage(before);
      best = Math.min(best, (used.user + used.system) / n);
    }
    return best;
  };
  const withMetrics = cpuUs(() => {
    for (let i = 0; i < n; i++) {
      timed.commitNow(timed.reserveNow(requests, 0));
      metrics.observer.decided({ server: 'default', tool: 'create_refund', named: true, decision: 'allow', code: 'allowed', enforced: true, ms: 0.3 });
      metrics.observer.upstream({ server: 'default', status: 200, ms: 0.5 });
    }
  });
  const without = cpuUs(() => {
    for (let i = 0; i < n; i++) plain.commitNow(plain.reserveNow(requests, 0));
  });
  await metrics.text(); // what a scrape reads (and checks the cells made sense to prom-client)
  return Math.max(0, withMetrics - without);
}
metricsComparison.in_process_us_per_call = await metricsCostPerCall();
metricsComparison.in_process_share_of_cpu_per_request = metricsComparison.in_process_us_per_call / 1000 / metricsComparison.cpu_ms_per_request_median.off;

// Round trips, exactly: N sequential calls through toolgate with the Redis
// store while MONITOR lists every command Redis receives.
let roundTrips = null;
if (toolgateRedis) {
  const calls = quick ? 200 : 1000;
  const before = await upstreamCalls(upstream);
  const url = `${toolgateRedis.url}/mcp`;
  const monitored = await monitorRedis(redisServer.port, async () => {
    let failed = 0;
    for (let i = 0; i < calls; i++) {
      const response = await fetch(url, { method: 'POST', headers: HEADERS, body: BODY });
      await response.arrayBuffer();
      if (!response.ok) failed += 1;
    }
    return failed;
  });
  const forwarded = (await upstreamCalls(upstream)) - before;
  const sent = Object.values(monitored.clients).reduce((sum, n) => sum + n, 0);
  roundTrips = {
    calls, forwarded, failed: monitored.result,
    client_commands: monitored.clients, script_commands: monitored.scripts,
    round_trips_per_call: sent / calls,
  };
}

// Median over rounds of each figure.
const summary = {};
for (const [name, list] of Object.entries(runs)) {
  const pick = (phase, key) => median(list.map((r) => r[phase][key]));
  summary[name] = {};
  for (const phase of ['sequential', 'loaded']) {
    summary[name][phase] = Object.fromEntries(['p50_ms', 'p90_ms', 'p99_ms', 'rps'].map((k) => [k, pick(phase, k)]));
    summary[name][phase].cpu_ms_per_request = Object.fromEntries(Object.keys(list[0][phase].cpu_ms_per_request)
      .map((server) => [server, median(list.map((r) => r[phase].cpu_ms_per_request[server]))]));
    if (list[0][phase].redis) {
      summary[name][phase].script_calls_per_tools_call = median(list.map((r) => r[phase].redis.script_calls_per_tools_call));
      summary[name][phase].evalsha_usec_per_call = median(list.map((r) => r[phase].redis.evalsha_usec_per_call));
    }
  }
}

// ---------------------------------------------------------- profile (optional)

const metricsCaseName = 'toolgate (memory store, metrics on)';

async function profileServe(name, store, audit, extra = []) {
  const dir = join(work, `profile-${name}`);
  mkdirSync(dir);
  const callsBefore = await upstreamCalls(upstream);
  const server = await startNode('toolgate', serveArgs(`${upstream.url}/mcp`, { store, audit, extra }), {
    env: serveEnv, nodeOptions: ['--cpu-prof', `--cpu-prof-dir=${dir}`],
  });
  const scrapes = extra.includes('--metrics') ? startScraper(`${server.url}/metrics`) : null;
  await preflight(`profiled ${name}`, `${server.url}/mcp`);
  await load(`${server.url}/mcp`, { seconds: warmup, connections });
  const figures = await load(`${server.url}/mcp`, { seconds: duration, connections });
  await scrapes?.stop();
  await server.stop();
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) return { error: `no profile written:\n${server.output()}` };
  const summary = summariseProfile(join(dir, file));
  // The profile covers the process's whole life: start-up, warm-up and the run.
  const calls = (await upstreamCalls(upstream)) - callsBefore;
  return { rps_while_profiled: figures.rps, calls_in_profile: calls, busy_ms_per_call: summary.busy_ms / calls, ...summary };
}
const profiles = {};
if (flags.profile) {
  log('profiling toolgate (memory store)');
  profiles['toolgate (memory store)'] = await profileServe('memory', 'memory', `file:${join(auditDir, 'audit-profile-memory.jsonl')}`);
  log('profiling toolgate (memory store, metrics on)');
  profiles[metricsCaseName] = await profileServe('metrics', 'memory', `file:${join(auditDir, 'audit-profile-metrics.jsonl')}`, ['--metrics']);
  // The metrics' own share of the busy time (self time in worker/metrics.js and prom-client).
  metricsComparison.profile_share = profiles[metricsCaseName].categories?.find((c) => c.category.startsWith('metrics'))?.share ?? 0;
  if (redisServer) {
    log('profiling toolgate (Redis store)');
    profiles['toolgate (Redis store)'] = await profileServe('redis', redisServer.url, `file:${join(auditDir, 'audit-profile-redis.jsonl')}`);
  }
}

// ------------------------------------------------- server-everything (optional)

// The real MCP server of the tests, over Streamable HTTP: it keeps sessions,
// so one initialize first, then every call carries its Mcp-Session-Id (the
// same session, through toolgate too: the proxy forwards the header). Its
// answers are event streams, so this also runs toolgate's SSE path.
let everything = null;
if (flags.everything) {
  everything = await runEverything();
}

async function runEverything() {
  const { freePort } = await import('../../tests/js/redis-server.js');
  const port = await freePort();
  const server = await startNode('server-everything', [join(root, 'node_modules/@modelcontextprotocol/server-everything/dist/index.js'), 'streamableHttp'], {
    env: { PORT: String(port) }, ready: (output) => (/listening on port \d+/.test(output) ? `http://127.0.0.1:${port}` : undefined),
  });
  const upstreamUrl = `http://127.0.0.1:${port}/mcp`;
  const policy = join(work, 'policy-everything.json');
  writeFileSync(policy, JSON.stringify({ version: '1', default: 'deny', tools: { echo: { rate_limit: { max: 1_000_000_000, window: 'minute' } } } }));
  const proxy = await startNode('toolgate', serveArgs(upstreamUrl, { audit: `file:${join(auditDir, 'audit-everything.jsonl')}`, policy }), { env: serveEnv });
  const bare = await startNode('passthrough', passthroughArgs(upstreamUrl));
  const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { message: 'hello' } } });

  // One session per target (through toolgate, and direct).
  async function session(url) {
    const init = await fetch(url, {
      method: 'POST', headers: HEADERS,
      body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'bench', version: '1' } } }),
    });
    const id = init.headers.get('mcp-session-id');
    await init.text();
    if (!init.ok || !id) throw new Error(`server-everything: initialize through ${url} gave HTTP ${init.status} without a session`);
    const headers = { ...HEADERS, 'mcp-session-id': id, 'mcp-protocol-version': '2025-06-18' };
    const notified = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) });
    await notified.text();
    await preflight(`server-everything via ${url}`, url, headers, body);
    return headers;
  }
  const results = {};
  const seconds = Math.max(1, duration / 2);
  for (const [name, url] of [['direct', upstreamUrl], ['passthrough', `${bare.url}/mcp`], ['toolgate (memory store)', `${proxy.url}/mcp`]]) {
    const headers = await session(url);
    await load(url, { seconds: warmup, connections, body, headers });
    const sequential = await load(url, { seconds: seqDuration / 2, connections: 1, body, headers });
    const loaded = await load(url, { seconds, connections, body, headers });
    results[name] = { sequential, loaded };
  }
  await proxy.stop();
  await bare.stop();
  await server.stop();
  return results;
}

// ------------------------------------------------------------------- report

const f = (n, d = 3) => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');
const direct = summary.direct;
const pass = summary.passthrough;
const derived = {};
for (const name of Object.keys(summary).filter((n) => n !== 'direct')) {
  const s = summary[name];
  derived[name] = {
    added_p50_ms_sequential: s.sequential.p50_ms - direct.sequential.p50_ms,
    added_p50_ms_loaded: s.loaded.p50_ms - direct.loaded.p50_ms,
    added_p50_ms_over_passthrough_sequential: s.sequential.p50_ms - pass.sequential.p50_ms,
    throughput_vs_passthrough: s.loaded.rps / pass.loaded.rps,
    throughput_vs_direct: s.loaded.rps / direct.loaded.rps,
  };
}
const redisName = 'toolgate (Redis store)';
const budgets = {};
const memoryName = 'toolgate (memory store)';
for (const name of [memoryName, redisName].filter((n) => derived[n])) {
  budgets[name] = {
    added_p50_le_0_5_ms: derived[name].added_p50_ms_sequential <= 0.5,
    throughput_ge_80_percent_of_passthrough: derived[name].throughput_vs_passthrough >= 0.8,
  };
}
// Pins: the same server with --pins, against the one without.
const pinsName = 'toolgate (memory store, pins)';
if (derived[pinsName] && derived[memoryName]) {
  derived[pinsName].added_p50_ms_over_memory_sequential = summary[pinsName].sequential.p50_ms - summary[memoryName].sequential.p50_ms;
  derived[pinsName].throughput_vs_memory = summary[pinsName].loaded.rps / summary[memoryName].loaded.rps;
}
if (roundTrips) {
  budgets[redisName].one_store_round_trip_per_call = roundTrips.round_trips_per_call === 1 && roundTrips.forwarded === roundTrips.calls;
}
// The same, as the list every benchmark writes (results/*.json "budgets"), for
// the aggregator: name, target, measured (text), met.
const budgetList = [];
const storeOf = (name) => (name === redisName ? 'Redis store' : 'memory store');
for (const name of [memoryName, redisName].filter((n) => derived[n])) {
  const added = derived[name].added_p50_ms_sequential;
  budgetList.push({
    name: `proxy added latency p50 (${storeOf(name)})`, target: '≤ 0.5 ms',
    measured: `${f(added, 2)} ms`, met: budgets[name].added_p50_le_0_5_ms,
  });
}
for (const name of [memoryName, redisName].filter((n) => derived[n])) {
  const share = derived[name].throughput_vs_passthrough;
  budgetList.push({
    name: `proxy throughput vs passthrough (${storeOf(name)})`, target: '≥ 80 %',
    measured: `${f(share * 100, 0)} % (${f(summary[name].loaded.rps, 0)} vs ${f(pass.loaded.rps, 0)} requests/s)`,
    met: budgets[name].throughput_ge_80_percent_of_passthrough,
  });
}
const metricsName = 'toolgate (memory store, metrics on)';
if (derived[metricsName]) {
  derived[metricsName].throughput_vs_metrics_off = summary[metricsName].loaded.rps / summary[memoryName].loaded.rps;
}
{
  // From the paired runs (above), not from the case table: a 2 % difference is
  // well inside what separates two runs minutes apart on a shared machine.
  const ratio = metricsComparison.throughput_ratio_trimmed;
  const m = metricsComparison;
  budgetList.push({
    name: 'proxy throughput, metrics on (scraped every second) vs off (memory store, paired runs)', target: '≤ 2 % lower',
    measured: `${f((1 - ratio) * 100, 1)} % lower (trimmed mean of ${m.pairs.length} pairs' ratios, median ${f((1 - m.throughput_ratio_median) * 100, 1)} % lower: ${f(m.rps_median.on, 0)} vs ${f(m.rps_median.off, 0)} requests/s; CPU per request ${f((m.cpu_ratio_trimmed - 1) * 100, 1)} %; in process ${f(m.in_process_us_per_call, 2)} µs a call, ${f(m.in_process_share_of_cpu_per_request * 100, 2)} % of its CPU)`,
    met: ratio >= 0.98,
  });
}
// The same in process, without the network's noise: what authenticating one
// request costs (µs), a static token against the OAuth path with a warm cache
// (the static lookup misses first, as it does in the handler).
async function authenticationCost() {
  const grants = new Grants(JSON.parse(readFileSync(grantsPath, 'utf8')));
  const oauth = createOAuth(checkOAuthConfig({ issuers: [issuerUrl], resource: OAUTH_RESOURCE }, ['default']), { sha256Hex: NODE_SHA256.hex });
  if (!(await oauth.authenticate(oauthToken, 'default')).grant) throw new Error('the benchmark token does not verify');
  const perCall = async (fn) => {
    const n = quick ? 50_000 : 200_000;
    for (let i = 0; i < n / 10; i++) await fn();
    const started = process.hrtime.bigint();
    for (let i = 0; i < n; i++) await fn();
    return Number(process.hrtime.bigint() - started) / n / 1000;
  };
  const staticUs = await perCall(() => grants.find(TOKEN, NODE_SHA256.bytes));
  const oauthUs = await perCall(async () => (await grants.find(oauthToken, NODE_SHA256.bytes)) ?? oauth.authenticate(oauthToken, 'default'));
  return { static_token_us: staticUs, oauth_jwt_cached_us: oauthUs, added_us: oauthUs - staticUs };
}
const authCost = await authenticationCost();

// What OAuth adds over a static token, both on the memory store (#14: at most
// 0.05 ms p50): the median of the paired sequential p50s' differences (the
// case table's two servers are measured minutes apart).
{
  const o = oauthComparison;
  const oauthAdded = o.added_sequential_p50_ms_median;
  derived[oauthName].added_p50_ms_over_static_token_sequential = oauthAdded;
  derived[oauthName].added_p50_ms_over_static_token_case_table = summary[oauthName].sequential.p50_ms - summary[memoryName].sequential.p50_ms;
  budgetList.push({
    name: 'OAuth JWT added p50 over a static token (memory store, warm JWKS; paired runs)', target: '≤ 0.05 ms',
    measured: `${f(oauthAdded, 3)} ms (median of ${o.pairs.length} pairs: ${f(o.sequential_p50_ms_median.on)} vs ${f(o.sequential_p50_ms_median.off)} ms; the case table: ${f(derived[oauthName].added_p50_ms_over_static_token_case_table, 3)} ms)`,
    met: oauthAdded <= 0.05,
  });
}
budgetList.push({
  name: 'OAuth JWT added authentication time, in process (warm cache)', target: '≤ 50 µs',
  measured: `${f(authCost.added_us, 2)} µs (${f(authCost.oauth_jwt_cached_us, 2)} vs ${f(authCost.static_token_us, 2)} µs per request)`,
  met: authCost.added_us <= 50,
});
if (derived[pinsName]?.added_p50_ms_over_memory_sequential !== undefined) {
  // "No measurable time": within 0.05 ms of p50 (below this bench's resolution
  // on a shared machine) and 95 % of the throughput of the same server without pins.
  const p = pinsComparison;
  const added = p.added_sequential_p50_ms_median;
  const share = p.throughput_ratio_trimmed;
  budgetList.push({
    name: 'pins: added latency p50 over the same server without pins (paired runs)', target: '≤ 0.05 ms',
    measured: `${f(added, 3)} ms (median of ${p.pairs.length} pairs: ${f(p.sequential_p50_ms_median.on)} vs ${f(p.sequential_p50_ms_median.off)} ms; the case table: ${f(derived[pinsName].added_p50_ms_over_memory_sequential, 3)} ms)`,
    met: added <= 0.05,
  });
  // From the paired runs, as for metrics: one loaded run of each case moves
  // by more than 5 % from run to run.
  budgetList.push({
    name: 'pins: throughput vs the same server without pins (paired runs)', target: '≥ 95 %',
    measured: `${f(share * 100, 1)} % (trimmed mean of ${p.pairs.length} pairs' ratios, median ${f(p.throughput_ratio_median * 100, 1)} %: ${f(p.rps_median.on, 0)} vs ${f(p.rps_median.off, 0)} requests/s; CPU per request ${f((p.cpu_ratio_trimmed - 1) * 100, 1)} %, median ${f((p.cpu_ratio_median - 1) * 100, 1)} %; the case table: ${f(derived[pinsName].throughput_vs_memory * 100, 1)} %)`,
    met: share >= 0.95,
  });
}
if (roundTrips) {
  budgetList.push({
    name: 'proxy store round trips per tools/call (Redis store)', target: '= 1',
    measured: `${f(roundTrips.round_trips_per_call)} (${roundTrips.calls} calls under MONITOR)`,
    met: budgets[redisName].one_store_round_trip_per_call,
  });
}

const out = [];
out.push(`Proxy on loopback, Node ${process.versions.node}, ${cpus().length} × ${cpus()[0]?.model?.trim() ?? 'CPU'}; autocannon in the benchmark process, each server a child process.`);
out.push(`${rounds} round(s), medians over rounds; per case: ${seqDuration} s sequential (1 connection), ${duration} s with ${connections} connections, after ${warmup} s warm-up; upstream transport of toolgate and the passthrough: ${flags.transport === 'node' ? "undici's dispatcher, kept-alive connections (worker/node-transport.js)" : 'fetch'}.`);
out.push('');
out.push('| case | sequential p50 / p99 (ms) | loaded p50 / p99 (ms) | requests/s (loaded) | server CPU per request (ms, loaded) | store round trips per tools/call |');
out.push('|---|---|---|---|---|---|');
for (const [name, s] of Object.entries(summary)) {
  const cpu = Object.entries(s.loaded.cpu_ms_per_request).map(([server, ms]) => `${server} ${f(ms)}`).join(', ');
  const trips = name === redisName ? `${f(roundTrips.round_trips_per_call)} (MONITOR, ${roundTrips.calls} calls); scripts ${f(s.loaded.script_calls_per_tools_call)} under load`
    : name.startsWith('toolgate') ? '0 (in process)' : '—';
  out.push(`| ${name} | ${f(s.sequential.p50_ms)} / ${f(s.sequential.p99_ms)} | ${f(s.loaded.p50_ms)} / ${f(s.loaded.p99_ms)} | ${f(s.loaded.rps, 0)} | ${cpu} | ${trips} |`);
}
out.push('');
out.push('| derived | added p50, sequential (ms) | added p50, loaded (ms) | throughput vs passthrough | throughput vs direct |');
out.push('|---|---|---|---|---|');
for (const [name, d] of Object.entries(derived)) {
  out.push(`| ${name} | ${f(d.added_p50_ms_sequential)} | ${f(d.added_p50_ms_loaded)} | ${f(d.throughput_vs_passthrough * 100, 1)} % | ${f(d.throughput_vs_direct * 100, 1)} % |`);
}
out.push('');
out.push('| budget | target | measured | |');
out.push('|---|---|---|---|');
for (const b of budgetList) out.push(`| ${b.name} | ${b.target} | ${b.measured} | ${b.met ? 'met' : '**not met**'} |`);
out.push('');
const yes = (ok) => (ok ? 'met' : '**not met**');
for (const [name, b] of Object.entries(budgets)) {
  const parts = [`added p50 ≤ 0.5 ms: ${yes(b.added_p50_le_0_5_ms)}`, `throughput ≥ 80 % of passthrough: ${yes(b.throughput_ge_80_percent_of_passthrough)}`];
  if ('one_store_round_trip_per_call' in b) parts.push(`one store round trip per tools/call: ${yes(b.one_store_round_trip_per_call)}`);
  out.push(`- budgets, ${name}: ${parts.join('; ')}`);
}
if (roundTrips) {
  const list = (counts) => Object.entries(counts).map(([c, n]) => `${c.toUpperCase()} ${n}`).join(', ') || 'none';
  out.push(`- Redis, ${roundTrips.calls} sequential calls under MONITOR: sent by toolgate ${list(roundTrips.client_commands)}; run inside those scripts ${list(roundTrips.script_commands)}; ${roundTrips.forwarded} calls reached the upstream`);
  const last = runs[redisName][runs[redisName].length - 1].loaded;
  out.push(`- Redis during the last loaded run (INFO commandstats, script-internal commands included): ${Object.entries(last.redis.commands).map(([c, d]) => `${c} ${d.calls}`).join(', ')} for ${last.upstream_tools_calls} tools/calls; EVALSHA takes ${f(last.redis.evalsha_usec_per_call, 1)} µs inside Redis`);
}
out.push(`- the first tools/call each server answered after it started (ms, wall): ${Object.entries(firstCallMs).map(([name, ms]) => `${name} ${f(ms, 2)}`).join(', ')}`);
const foreign = Object.values(runs).flat().flatMap((r) => [r.sequential.foreign_cpu_share, r.loaded.foreign_cpu_share]);
out.push(`- other processes on the machine used up to ${f(Math.max(...foreign) * 100, 0)} % (median ${f(median(foreign) * 100, 0)} %) of its CPU during the runs; load average at the end ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
for (const [name, list] of Object.entries(runs)) {
  const bad = list.flatMap((r) => [r.sequential, r.loaded]).filter((r) => r.non2xx || r.errors || r.timeouts);
  if (bad.length) out.push(`- ${name}: ${bad.map((r) => `${r.non2xx} non-2xx, ${r.errors} errors, ${r.timeouts} timeouts`).join('; ')}`);
}
const pairTable = (m, what) => {
  out.push('');
  out.push(`| pair | ${what} off: requests/s | on: requests/s | on / off | off: CPU ms per request | on: CPU ms per request | on / off | sequential p50 off / on (ms) | added p50 (ms) |`);
  out.push('|---|---|---|---|---|---|---|---|---|');
  m.pairs.forEach((p, i) => out.push(`| ${i + 1} | ${f(p.off.rps, 0)} | ${f(p.on.rps, 0)} | ${f(p.throughput_ratio * 100, 1)} % | ${f(p.off.cpu_ms_per_request)} | ${f(p.on.cpu_ms_per_request)} | ${f(p.cpu_ratio * 100, 1)} % | ${f(p.off.sequential_p50_ms)} / ${f(p.on.sequential_p50_ms)} | ${f(p.added_sequential_p50_ms, 3)} |`));
  out.push(`| **trimmed mean** (the middle half) | | | **${f(m.throughput_ratio_trimmed * 100, 1)} %** | | | **${f(m.cpu_ratio_trimmed * 100, 1)} %** | | |`);
  out.push(`| **median** | ${f(m.rps_median.off, 0)} | ${f(m.rps_median.on, 0)} | **${f(m.throughput_ratio_median * 100, 1)} %** | ${f(m.cpu_ms_per_request_median.off)} | ${f(m.cpu_ms_per_request_median.on)} | ${f(m.cpu_ratio_median * 100, 1)} % | ${f(m.sequential_p50_ms_median.off)} / ${f(m.sequential_p50_ms_median.on)} | **${f(m.added_sequential_p50_ms_median, 3)}** |`);
  out.push('');
};
{
  const m = metricsComparison;
  out.push('');
  out.push(`Metrics on vs off, paired: ${m.pairs.length} pairs, each turn ${m.sequential_seconds} s sequential then ${m.seconds} s loaded (${m.connections} connections), off-on then on-off in turn; the metrics server scraped (/metrics, admin token) every second all along: ${m.scraper.scrapes} scrapes, ${m.scraper.failures} failed, ${m.scraper.bytes} bytes each, ${m.scraper.decisions} decisions counted by the last.`);
  pairTable(m, 'metrics');
  out.push(`- in process, without the network: metrics add ${f(m.in_process_us_per_call, 2)} µs of CPU to a call (a decision counted and timed, the store's reserve and commit timed, the upstream's answer counted and timed), ${f(m.in_process_share_of_cpu_per_request * 100, 2)} % of toolgate's ${f(m.cpu_ms_per_request_median.off)} ms of CPU per request`);
  if (m.profile_share !== undefined) out.push(`- \`--profile\`: worker/metrics.js and prom-client take ${f(m.profile_share * 100, 2)} % of the self time of a \`toolgate serve --metrics\` under load (scraped every second)`);
  out.push(`- other processes used up to ${f(m.foreign_cpu_share_max * 100, 0)} % of the machine's CPU during these runs`);
}
{
  const m = pinsComparison;
  out.push('');
  out.push(`Pins on vs off, paired: ${m.pairs.length} pairs, each turn ${m.sequential_seconds} s sequential then ${m.seconds} s loaded (${m.connections} connections), off-on then on-off in turn; the same server without and with \`--pins\`.`);
  pairTable(m, 'pins');
  out.push(`- other processes used up to ${f(m.foreign_cpu_share_max * 100, 0)} % of the machine's CPU during these runs`);
}
{
  const m = oauthComparison;
  out.push('');
  out.push(`OAuth JWT vs static token, paired: ${m.pairs.length} pairs, each turn ${m.sequential_seconds} s sequential then ${m.seconds} s loaded (${m.connections} connections), off-on then on-off; the memory-store server called with its static token (off) and the OAuth server called with an ES256 JWT (on).`);
  pairTable(m, 'JWT');
  out.push(`- other processes used up to ${f(m.foreign_cpu_share_max * 100, 0)} % of the machine's CPU during these runs`);
}
if (rounds > 1) {
  out.push('');
  out.push('Spread over rounds (min–max): sequential p50 / loaded requests/s');
  for (const [name, list] of Object.entries(runs)) {
    const seq = list.map((r) => r.sequential.p50_ms);
    const rps = list.map((r) => r.loaded.rps);
    out.push(`- ${name}: ${f(Math.min(...seq))}–${f(Math.max(...seq))} ms / ${f(Math.min(...rps), 0)}–${f(Math.max(...rps), 0)}`);
  }
}
for (const [name, p] of Object.entries(profiles)) {
  out.push('');
  if (p.error) {
    out.push(`CPU profile of ${name}: ${p.error}`);
    continue;
  }
  out.push(`CPU profile of ${name} under load (a separate \`node --cpu-prof\` serve process: ${f(p.rps_while_profiled, 0)} requests/s while profiled; ${f(p.busy_ms_per_call)} ms of CPU per call, start-up included): self time`);
  out.push('');
  out.push('| where | share of busy time |');
  out.push('|---|---|');
  for (const c of p.categories) out.push(`| ${c.category} | ${f(c.share * 100, 1)} % |`);
  out.push('');
  out.push('| function (top by self time) | share |');
  out.push('|---|---|');
  for (const fn of p.functions) out.push(`| \`${fn.name}\` ${fn.where} | ${f(fn.share * 100, 1)} % |`);
  out.push('');
  out.push('| toolgate function, including what it calls (synchronous part) | share |');
  out.push('|---|---|');
  for (const fn of p.toolgate_inclusive) out.push(`| \`${fn.name}\` ${fn.where} | ${f(fn.share * 100, 1)} % |`);
}
if (everything) {
  out.push('');
  out.push('server-everything upstream (echo tool, one session, event-stream answers):');
  out.push('');
  out.push('| case | sequential p50 / p99 (ms) | loaded p50 / p99 (ms) | requests/s | non-2xx / errors |');
  out.push('|---|---|---|---|---|');
  for (const [name, r] of Object.entries(everything)) {
    out.push(`| ${name} | ${f(r.sequential.p50_ms)} / ${f(r.sequential.p99_ms)} | ${f(r.loaded.p50_ms)} / ${f(r.loaded.p99_ms)} | ${f(r.loaded.rps, 0)} | ${r.loaded.non2xx} / ${r.loaded.errors} |`);
  }
}
console.log(out.join('\n'));

mkdirSync(join(flags.out, '..'), { recursive: true });
writeFileSync(flags.out, JSON.stringify({
  config: {
    node: process.versions.node, cpus: cpus().length, cpu_model: cpus()[0]?.model, redis_server: redisServer ? REDIS_SERVER : null,
    connections, duration_s: duration, sequential_duration_s: seqDuration, warmup_s: warmup, rounds, body_bytes: BODY.length,
    metrics_pairs: metricsPairs, metrics_seconds: metricsSeconds,
    quick, upstream_transport: flags.transport, date: new Date().toISOString(),
  },
  budgets: budgetList, summary, derived, first_call_ms: firstCallMs, budgets_by_case: budgets, round_trips: roundTrips, authentication_cost: authCost, metrics_on_off: metricsComparison, pins_on_off: pinsComparison, oauth_vs_static_token: oauthComparison,
  runs, profiles, everything,
}, null, 2));
writeFileSync(flags.out.replace(/(\.json)?$/, '.md'), `${out.join('\n')}\n`);

for (const server of [toolgateRedis, toolgateOAuth, toolgatePins, toolgateMetrics, toolgateMemory, passthrough, upstream]) await server?.stop();
issuerServer.close();
await redis?.quit();
await redisServer?.stop();
