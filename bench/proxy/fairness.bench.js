// Fairness of the MCP proxy between grants: how much slower grant B's simple
// allowed call gets while grant A floods the same `toolgate serve` with what
// costs the proxy most and the flooder nothing: batches as large as the
// handler accepts of calls its policy denies (each one parsed, decided and
// audited, nothing forwarded), and single calls with a body near the size
// limit, from several connections. Grant B sends one call at a time (one
// kept-alive connection) for --duration seconds alone, then as long again
// during the flood; the slow-down factor is B's p50 (p99) under the flood
// divided by its p50 (p99) alone.
//
// The flood (flood.js) runs in a child process, so that its client work does
// not inflate B's measured latency; the upstream (upstream.js) and toolgate
// are children too, as in proxy.bench.js. The largest batch is whatever the
// handler accepts: found by asking it (bisection over batch sizes, up to what
// fits in --max-body-bytes), not assumed. Prints Markdown, writes
// bench/results/proxy-fairness.json (top-level "budgets", as every benchmark;
// bench/README.md) and the Markdown beside it. Not a test: nothing fails on a
// number.
//
//   node bench/proxy/fairness.bench.js [--duration S] [--rounds N] [--quick]
//     [--connections N] [--big-connections N] [--big-bytes N] [--max-batch N]
//     [--store memory|redis] [--toolgate-bin PATH] [--out FILE]
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';

const root = fileURLToPath(new URL('../../', import.meta.url));
const here = fileURLToPath(new URL('./', import.meta.url));

const { values: flags } = parseArgs({
  options: {
    duration: { type: 'string' }, // seconds of B's calls, alone and again under the flood, per round
    warmup: { type: 'string' },
    rounds: { type: 'string', default: '1' },
    quick: { type: 'boolean', default: false },
    connections: { type: 'string', default: '8' }, // the flood's connections sending batches
    'big-connections': { type: 'string', default: '2' }, // the flood's connections sending large bodies
    'big-bytes': { type: 'string' }, // a large body's size; default: the proxy's limit less 1 KiB
    'max-body-bytes': { type: 'string', default: String(4 * 1024 * 1024) }, // toolgate serve's default
    'max-batch': { type: 'string' }, // bisect the handler's largest batch up to this (default: what fits in the body limit)
    store: { type: 'string', default: 'memory' }, // memory, or redis (a throwaway redis-server)
    'toolgate-bin': { type: 'string', default: join(root, 'bin/toolgate.js') },
    out: { type: 'string', default: join(root, 'bench/results/proxy-fairness.json') },
  },
});
const quick = flags.quick;
const duration = Number(flags.duration ?? (quick ? 2 : 10));
const warmup = Number(flags.warmup ?? (quick ? 0.5 : 2));
const rounds = Number(flags.rounds);
const maxBodyBytes = Number(flags['max-body-bytes']);
const bigBytes = Number(flags['big-bytes'] ?? maxBodyBytes - 1024);
if (!['memory', 'redis'].includes(flags.store)) throw new Error(`--store must be memory or redis, not ${flags.store}`);

// ------------------------------------------------------------ policy, grants

const TOKENS = { flooder: 'fairness-flooder-token-0123456789', victim: 'fairness-victim-token-0123456789' };
// B's call: allowed, one argument checked, a limit that never denies. A's
// calls: a tool the policy denies (the flooder holds a valid grant; its calls
// are refused one by one, after parsing and deciding each).
const POLICY = {
  version: '1',
  default: 'deny',
  tools: {
    create_refund: {
      require: [{ path: 'args.currency', op: 'in', value: ['usd', 'eur'] }],
      rate_limit: { max: 1_000_000_000, window: 'minute' },
    },
    delete_everything: { action: 'deny', on_deny: 'Not for agents.' },
  },
};
const VICTIM_BODY = JSON.stringify({
  jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'create_refund', arguments: { amount: 12, currency: 'usd' } },
});
const DENIED_TOOL = 'delete_everything';
const headersFor = (token) => ({ 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${token}` });

// ------------------------------------------------------------------ children

const children = new Set();
process.on('exit', () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    process.stderr.write(`\n${signal}: stopping the servers\n`);
    process.exit(130);
  });
}

/**
 * `node args...` with exit-with-parent.js preloaded (it stops when this
 * process closes its stdin or dies); resolves once `ready(stderr)` is truthy.
 * Returns { url, child, stop(), output(), stdout() }.
 */
async function startNode(name, args, { env = {}, ready = (output) => /listening on (http:\/\/[^\s/]+)/.exec(output)?.[1], preload = true, killAfterMs = 30_000 } = {}) {
  const child = spawn(process.execPath, [...(preload ? ['--import', join(here, 'exit-with-parent.js')] : []), ...args], {
    cwd: root, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'],
  });
  children.add(child);
  let output = '';
  let stdout = '';
  child.stderr.on('data', (chunk) => {
    if (output.length < 100_000) output += chunk;
  });
  child.stdout.on('data', (chunk) => {
    if (stdout.length < 1_000_000) stdout += chunk;
  });
  const exited = once(child, 'exit');
  const stop = async () => {
    children.delete(child);
    if (child.exitCode === null && child.signalCode === null) {
      child.stdin.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
      await exited;
      clearTimeout(timer);
    }
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    const url = ready(output);
    if (url) return { name, url, child, stop, output: () => output, stdout: () => stdout };
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`${name} did not start:\n${output}`);
    }
    await sleep(20);
  }
}

// ------------------------------------------------------------------- requests

/** POSTs `body`; resolves to { status, text, ms } (ms: request written to answer read). */
function post(url, body, headers, agent) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = request(url, { method: 'POST', agent, headers: { ...headers, 'content-length': Buffer.byteLength(body) } }, (res) => {
      const chunks = [];
      res.on('data', (chunk) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString('utf8'), ms: performance.now() - started }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const median = (list) => {
  const sorted = list.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

/**
 * Grant B's calls, one at a time on one kept-alive connection, for `seconds`:
 * { calls, p50_ms, p90_ms, p99_ms, max_ms, failed } where failed counts calls
 * that did not come back with the upstream's answer.
 */
async function victim(url, seconds) {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const latencies = [];
  let failed = 0;
  const until = performance.now() + seconds * 1000;
  try {
    while (performance.now() < until) {
      const answer = await post(url, VICTIM_BODY, headersFor(TOKENS.victim), agent).catch(() => null);
      let ok = false;
      try {
        ok = answer?.status === 200 && JSON.parse(answer.text).result?.isError === false;
      } catch {
        ok = false;
      }
      if (ok) latencies.push(answer.ms);
      else failed += 1;
    }
  } finally {
    agent.destroy();
  }
  latencies.sort((a, b) => a - b);
  return {
    calls: latencies.length, failed,
    p50_ms: percentile(latencies, 50), p90_ms: percentile(latencies, 90), p99_ms: percentile(latencies, 99), max_ms: latencies[latencies.length - 1],
  };
}

/** Whether the proxy answers a batch of `size` denied calls with `size` denials (it accepts the batch). */
async function acceptsBatch(url, size) {
  const body = JSON.stringify(Array.from({ length: size }, (_, i) => ({ jsonrpc: '2.0', id: i + 1, method: 'tools/call', params: { name: DENIED_TOOL, arguments: {} } })));
  if (Buffer.byteLength(body) > maxBodyBytes) return false;
  const agent = new Agent({ keepAlive: false });
  try {
    const answer = await post(url, body, headersFor(TOKENS.flooder), agent);
    if (answer.status !== 200) return false;
    const messages = JSON.parse(answer.text);
    return Array.isArray(messages) && messages.length === size && messages.every((m) => m.result?.structuredContent?.code === 'tool_denied');
  } catch {
    return false;
  } finally {
    agent.destroy();
  }
}

/** The largest batch the handler accepts, up to `ceiling` (bisection; accepting is monotonic in size). */
async function largestBatch(url, ceiling) {
  if (!(await acceptsBatch(url, 1))) throw new Error('the proxy does not accept even a batch of one call');
  if (await acceptsBatch(url, ceiling)) return ceiling;
  let good = 1;
  let bad = ceiling;
  while (bad - good > 1) {
    const mid = Math.floor((good + bad) / 2);
    if (await acceptsBatch(url, mid)) good = mid;
    else bad = mid;
  }
  return good;
}

/** The flood (flood.js) as a child; resolves once every connection got an answer. stop() resolves to its figures. */
async function startFlood(url, batch) {
  const flood = await startNode('flood', [join(here, 'flood.js'), '--url', url, '--token', TOKENS.flooder, '--tool', DENIED_TOOL,
    '--batch', String(batch), '--connections', flags.connections, '--big-connections', flags['big-connections'], '--big-bytes', String(bigBytes)], {
    // Stopping waits for the requests in flight, which a saturated proxy may
    // take a while to answer (each batch or large body is seconds of work).
    preload: false, ready: (output) => (output.includes('flooding') ? 'flooding' : undefined), killAfterMs: 180_000,
  });
  return {
    async stop() {
      await flood.stop();
      const line = flood.stdout().trim().split('\n').pop();
      if (!line) throw new Error(`the flood process gave no figures:\n${flood.output()}`);
      return JSON.parse(line);
    },
  };
}

// ------------------------------------------------------------------- the run

const log = (message) => process.stderr.write(`${message}\n`);
const work = mkdtempSync(join(tmpdir(), 'toolgate-fairness-bench-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));
const policyPath = join(work, 'policy.json');
const grantsPath = join(work, 'grants.json');
writeFileSync(policyPath, JSON.stringify(POLICY, null, 2));
writeFileSync(grantsPath, JSON.stringify({
  grants: Object.entries(TOKENS).map(([id, token]) => ({ id, token_sha256: createHash('sha256').update(token).digest('hex'), attributes: {} })),
}));

let redisServer = null;
if (flags.store === 'redis') {
  const { startRedis } = await import('../../tests/js/redis-server.js');
  redisServer = await startRedis();
  process.on('exit', () => redisServer.stop());
}
const upstream = await startNode('upstream', [join(here, 'upstream.js')]);
const proxy = await startNode('toolgate', [flags['toolgate-bin'], 'serve', '--policy', policyPath, '--upstream', `${upstream.url}/mcp`,
  '--grants', grantsPath, '--port', '0', '--store', redisServer ? redisServer.url : 'memory', '--audit', `file:${join(work, 'audit.jsonl')}`,
  '--max-body-bytes', String(maxBodyBytes), '--no-watch'], { env: { TOOLGATE_ADMIN_TOKEN: 'fairness-bench-admin-token' } });
const url = `${proxy.url}/mcp`;

const denialBytes = JSON.stringify({ jsonrpc: '2.0', id: 99999, method: 'tools/call', params: { name: DENIED_TOOL, arguments: {} } }).length + 1;
const ceiling = Number(flags['max-batch'] ?? Math.floor(maxBodyBytes / denialBytes));
const batch = await largestBatch(url, ceiling);
log(`fairness bench: ${rounds} round(s) of ${duration} s alone and ${duration} s under the flood; the handler accepts batches of ${batch} denied calls${batch === ceiling ? ' (or more: the probe stopped at --max-batch / the body limit)' : ''}; flood: ${flags.connections} connections of batches, ${flags['big-connections']} of ${bigBytes}-byte calls; ${flags.store} store`);

const warm = await victim(url, warmup);
const runs = [];
for (let round = 1; round <= rounds; round++) {
  log(`round ${round}/${rounds}: grant B alone`);
  const alone = await victim(url, duration);
  log(`round ${round}/${rounds}: grant B while grant A floods`);
  const flood = await startFlood(url, batch);
  const flooded = await victim(url, duration);
  const floodFigures = await flood.stop();
  runs.push({ alone, flooded, flood: floodFigures });
}
const upstreamStats = await (await fetch(`${upstream.url}/stats`)).json();

// ------------------------------------------------------------------- report

const pick = (phase, key) => median(runs.map((r) => r[phase][key]));
const summary = {
  alone: Object.fromEntries(['p50_ms', 'p90_ms', 'p99_ms', 'calls', 'failed'].map((k) => [k, pick('alone', k)])),
  flooded: Object.fromEntries(['p50_ms', 'p90_ms', 'p99_ms', 'calls', 'failed'].map((k) => [k, pick('flooded', k)])),
};
summary.slowdown_p50 = summary.flooded.p50_ms / summary.alone.p50_ms;
summary.slowdown_p99 = summary.flooded.p99_ms / summary.alone.p99_ms;
const floodRate = (key) => median(runs.map((r) => r.flood.batches[key] / r.flood.seconds));
summary.flood = {
  batch_size: batch,
  batches_per_s: floodRate('answered'),
  denied_calls_per_s: floodRate('calls'),
  big_bodies_per_s: median(runs.map((r) => r.flood.big.answered / r.flood.seconds)),
  mb_sent_per_s: median(runs.map((r) => (r.flood.batches.bytes_sent + r.flood.big.bytes_sent) / r.flood.seconds / 1e6)),
  statuses: runs.map((r) => ({ batches: r.flood.batches.statuses, big: r.flood.big.statuses, errors: r.flood.batches.errors + r.flood.big.errors })),
};
// Every call that reached the upstream was B's: A's calls are all denied.
const victimCalls = runs.reduce((sum, r) => sum + r.alone.calls + r.flooded.calls, 0);
summary.upstream_tools_calls = upstreamStats.tools_calls;
// The warm-up's calls reached the upstream too (its failed ones may have).
summary.warmup = { calls: warm.calls, failed: warm.failed };

const f = (n, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');
const connectionsText = (n) => `${n} connection${Number(n) === 1 ? '' : 's'}`;
const budgets = [
  {
    name: 'grant B p99 slow-down while grant A floods the proxy', target: '≤ 5×',
    measured: `${f(summary.slowdown_p99, 1)}× (${f(summary.flooded.p99_ms)} ms vs ${f(summary.alone.p99_ms)} ms)`,
    met: summary.slowdown_p99 <= 5,
  },
];

const out = [];
out.push(`Proxy fairness on loopback, Node ${process.versions.node}, ${cpus().length} × ${cpus()[0]?.model?.trim() ?? 'CPU'}; \`toolgate serve\` (${flags.store} store), the upstream and the flood each a child process, grant B's client in the benchmark process.`);
out.push(`${rounds} round(s), medians over rounds; grant B: one call at a time on one connection, ${duration} s alone, then ${duration} s while grant A floods: ${connectionsText(flags.connections)} each sending batches of ${batch} denied calls (${f(runs[0].flood.batch_bytes / 1024, 0)} KiB; the largest batch the handler accepts${batch === ceiling ? ', or the probe\'s ceiling' : ''}) and ${connectionsText(flags['big-connections'])} each sending one denied call of ${f(bigBytes / 1024 / 1024)} MiB.`);
out.push('');
out.push('| grant B | p50 (ms) | p90 (ms) | p99 (ms) | calls | failed |');
out.push('|---|---|---|---|---|---|');
for (const [name, s] of [['alone', summary.alone], ['while grant A floods', summary.flooded]]) {
  out.push(`| ${name} | ${f(s.p50_ms, 3)} | ${f(s.p90_ms, 3)} | ${f(s.p99_ms, 3)} | ${s.calls} | ${s.failed} |`);
}
out.push(`| **slow-down** | **${f(summary.slowdown_p50, 1)}×** | | **${f(summary.slowdown_p99, 1)}×** | | |`);
out.push('');
out.push('| grant A\'s flood | batches/s | denied calls/s | large bodies/s | MB/s sent | answers (HTTP status: count) |');
out.push('|---|---|---|---|---|---|');
const statusText = (statuses) => Object.entries(statuses).map(([s, n]) => `${s}: ${n}`).join(', ') || 'none';
out.push(`| batches of ${batch}, ${connectionsText(flags.connections)}; ${f(bigBytes / 1024 / 1024)} MiB calls, ${connectionsText(flags['big-connections'])} | ${f(summary.flood.batches_per_s, 1)} | ${f(summary.flood.denied_calls_per_s, 0)} | ${f(summary.flood.big_bodies_per_s, 1)} | ${f(summary.flood.mb_sent_per_s, 1)} | ${summary.flood.statuses.map((s) => `batches ${statusText(s.batches)}; large ${statusText(s.big)}; errors ${s.errors}`).join(' / ')} |`);
out.push('');
out.push('| budget | target | measured | |');
out.push('|---|---|---|---|');
for (const b of budgets) out.push(`| ${b.name} | ${b.target} | ${b.measured} | ${b.met ? 'met' : '**not met**'} |`);
out.push('');
out.push(`- calls that reached the upstream: ${summary.upstream_tools_calls} (grant B's answered calls: ${victimCalls}, and ${summary.warmup.calls} in the warm-up; grant A's are all denied)`);
out.push(`- load average at the end ${loadavg().map((l) => l.toFixed(2)).join(' ')} (other processes on the machine make these figures noisy)`);
console.log(out.join('\n'));

mkdirSync(join(flags.out, '..'), { recursive: true });
writeFileSync(flags.out, JSON.stringify({
  config: {
    node: process.versions.node, cpus: cpus().length, cpu_model: cpus()[0]?.model, store: flags.store, duration_s: duration, warmup_s: warmup, rounds,
    flood_connections: Number(flags.connections), big_connections: Number(flags['big-connections']), big_bytes: bigBytes,
    max_body_bytes: maxBodyBytes, batch_probe_ceiling: ceiling, quick, date: new Date().toISOString(),
  },
  budgets, summary, runs,
}, null, 2));
writeFileSync(flags.out.replace(/(\.json)?$/, '.md'), `${out.join('\n')}\n`);

await proxy.stop();
await upstream.stop();
await redisServer?.stop();
