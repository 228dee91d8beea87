// toolgate serve's CPU per call against the passthrough's, function by
// function: the same tools/call (the proxy benchmark's typical call) sent by
// autocannon a fixed number of times to bench/proxy/passthrough.js and to
// `toolgate serve`, both under `node --cpu-prof`, interleaved (passthrough,
// toolgate, passthrough, toolgate). Prints each server's CPU per call from
// /proc (user + system, every thread: what the budget "toolgate CPU per
// proxied call ≤ 1.25× the passthrough's" counts) and, from the profiles,
// the functions whose self time per call differs most (toolgate minus
// passthrough, in µs per call, start-up included), then who calls the
// top native functions (socket and file writes, hashing).
//
// A profiler slows what it profiles (by a fifth or so here); compare the two
// columns, not the figures with unprofiled runs. `--no-profile` gives the
// /proc figures alone.
//
// `--baseline-bin PATH` adds a third server, `toolgate serve` from another
// checkout (e.g. main's bin/toolgate.js), interleaved with the two others:
// before and after a change, measured in one run on the same machine load,
// and a second table of the functions that differ most between the two.
//
//   node bench/proxy/profile-diff.js [--requests N] [--store memory|redis]
//     [--toolgate-bin PATH] [--baseline-bin PATH] [--rounds N] [--top N] [--no-profile]
import { spawn, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import autocannon from 'autocannon';

import { startRedis } from '../../tests/js/redis-server.js';
import { BODY, HEADERS, POLICY, TOKEN } from './typical-call.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const here = fileURLToPath(new URL('./', import.meta.url));
const { values: flags } = parseArgs({
  options: {
    requests: { type: 'string', default: '20000' },
    store: { type: 'string', default: 'memory' },
    'toolgate-bin': { type: 'string', default: join(root, 'bin/toolgate.js') },
    'baseline-bin': { type: 'string' },
    top: { type: 'string', default: '40' },
    rounds: { type: 'string', default: '2' },
    'no-profile': { type: 'boolean', default: false },
  },
});
if (!['memory', 'redis'].includes(flags.store)) throw new Error(`--store must be memory or redis, not ${flags.store}`);
const REQUESTS = Number(flags.requests);
const WARMUP = Math.min(2000, REQUESTS);
const ROUNDS = Number(flags.rounds);
if (!(Number.isInteger(ROUNDS) && ROUNDS > 0)) throw new Error(`--rounds must be a positive integer, not ${flags.rounds}`);
const profile = !flags['no-profile'];


const work = mkdtempSync(join(tmpdir(), 'toolgate-profile-diff-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));
writeFileSync(join(work, 'policy.json'), JSON.stringify(POLICY));
writeFileSync(join(work, 'grants.json'), JSON.stringify({
  grants: [{ id: 'bench-agent', token_sha256: createHash('sha256').update(TOKEN).digest('hex'), attributes: { role: 'support' } }],
}));

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
function cpuMs(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) / CLK_TCK) * 1000;
}

const children = new Set();
process.on('exit', () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
});

/** A server as a child process ("listening on URL" on stderr), under --cpu-prof when `profiled`. */
async function start(name, args, profiled) {
  const dir = join(work, name);
  const child = spawn(process.execPath, [...(profiled ? ['--cpu-prof', `--cpu-prof-dir=${dir}`] : []),
    '--import', join(here, 'exit-with-parent.js'), ...args], { cwd: root, stdio: ['pipe', 'ignore', 'pipe'] });
  children.add(child);
  let output = '';
  const url = await new Promise((resolve, reject) => {
    child.stderr.on('data', (chunk) => {
      output += chunk;
      const match = /listening on (http:\/\/[^\s/]+)/.exec(output);
      if (match) resolve(match[1]);
    });
    child.once('exit', () => reject(new Error(`${name} did not start:\n${output}`)));
  });
  return {
    name, url, dir, pid: child.pid,
    async stop() {
      children.delete(child);
      child.stdin.end(); // exit-with-parent.js: SIGTERM, and the profile is written
      if (child.exitCode === null) await once(child, 'exit');
    },
  };
}

let redis = null;
if (flags.store === 'redis') redis = await startRedis();
const upstream = await start('upstream', [join(here, 'upstream.js')], false);
const passthrough = await start('passthrough', [join(here, 'passthrough.js'), '--upstream', `${upstream.url}/mcp`], profile);
const serve = (name, bin) => start(name, [bin, 'serve', '--policy', join(work, 'policy.json'), '--upstream', `${upstream.url}/mcp`,
  '--grants', join(work, 'grants.json'), '--port', '0', '--store', redis ? redis.url : 'memory', '--audit', `file:${join(work, `audit-${name}.jsonl`)}`], profile);
const toolgate = await serve('toolgate', flags['toolgate-bin']);
// Its counters under a prefix of their own would need a flag serve lacks; the
// policy's limit never denies, so sharing the Redis keys changes nothing.
const baseline = flags['baseline-bin'] ? await serve('baseline', flags['baseline-bin']) : null;

const send = (target, amount) => autocannon({ url: `${target.url}/mcp`, method: 'POST', headers: HEADERS, body: BODY, connections: 10, amount });
async function measure(target) {
  await send(target, WARMUP);
  const cpu = cpuMs(target.pid);
  const started = performance.now();
  const result = await send(target, REQUESTS);
  const seconds = (performance.now() - started) / 1000;
  if (result.non2xx || result.errors) throw new Error(`${target.name}: ${result.non2xx} non-2xx, ${result.errors} errors`);
  return { rps: result.requests.total / seconds, cpu_us_per_call: ((cpuMs(target.pid) - cpu) / result.requests.total) * 1000 };
}
const runs = { passthrough: [], baseline: [], toolgate: [] };
for (let round = 0; round < ROUNDS; round++) {
  runs.passthrough.push(await measure(passthrough));
  if (baseline) runs.baseline.push(await measure(baseline));
  runs.toolgate.push(await measure(toolgate));
}
await passthrough.stop();
await baseline?.stop();
await toolgate.stop();
await upstream.stop();
await redis?.stop();

const f = (n, d = 1) => n.toFixed(d);
const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
console.log(`toolgate serve (${flags.store} store) against the passthrough, ${ROUNDS} interleaved rounds of ${REQUESTS} calls (10 connections)${profile ? ', both profiled' : ''}; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
console.log('');
if (baseline) {
  console.log(`baseline: ${flags['baseline-bin']}; toolgate: ${flags['toolgate-bin']}`);
  console.log('');
  console.log('| round | passthrough CPU µs/call | baseline CPU µs/call | ratio | toolgate CPU µs/call | ratio | passthrough req/s | baseline req/s | toolgate req/s |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (let round = 0; round < ROUNDS; round++) {
    const p = runs.passthrough[round];
    const b = runs.baseline[round];
    const t = runs.toolgate[round];
    console.log(`| ${round + 1} | ${f(p.cpu_us_per_call)} | ${f(b.cpu_us_per_call)} | ${f(b.cpu_us_per_call / p.cpu_us_per_call, 2)}× | ${f(t.cpu_us_per_call)} | ${f(t.cpu_us_per_call / p.cpu_us_per_call, 2)}× | ${f(p.rps, 0)} | ${f(b.rps, 0)} | ${f(t.rps, 0)} |`);
  }
  if (ROUNDS > 2) {
    const m = (side, key) => median(runs[side].map((run) => run[key]));
    const ratio = (side) => median(runs[side].map((run, i) => run.cpu_us_per_call / runs.passthrough[i].cpu_us_per_call));
    console.log(`| median | ${f(m('passthrough', 'cpu_us_per_call'))} | ${f(m('baseline', 'cpu_us_per_call'))} | ${f(ratio('baseline'), 2)}× | ${f(m('toolgate', 'cpu_us_per_call'))} | ${f(ratio('toolgate'), 2)}× | ${f(m('passthrough', 'rps'), 0)} | ${f(m('baseline', 'rps'), 0)} | ${f(m('toolgate', 'rps'), 0)} |`);
  }
} else {
  console.log('| round | passthrough CPU µs/call | toolgate CPU µs/call | ratio | passthrough req/s | toolgate req/s |');
  console.log('|---|---|---|---|---|---|');
  for (let round = 0; round < ROUNDS; round++) {
    const p = runs.passthrough[round];
    const t = runs.toolgate[round];
    console.log(`| ${round + 1} | ${f(p.cpu_us_per_call)} | ${f(t.cpu_us_per_call)} | ${f(t.cpu_us_per_call / p.cpu_us_per_call, 2)}× | ${f(p.rps, 0)} | ${f(t.rps, 0)} |`);
  }
  if (ROUNDS > 2) {
    const m = (side, key) => median(runs[side].map((run) => run[key]));
    const ratio = median(runs.toolgate.map((run, i) => run.cpu_us_per_call / runs.passthrough[i].cpu_us_per_call));
    console.log(`| median | ${f(m('passthrough', 'cpu_us_per_call'))} | ${f(m('toolgate', 'cpu_us_per_call'))} | ${f(ratio, 2)}× | ${f(m('passthrough', 'rps'), 0)} | ${f(m('toolgate', 'rps'), 0)} |`);
  }
}
if (!profile) process.exit(0);

// Calls each process answered while profiled (warm-ups included).
const calls = ROUNDS * (WARMUP + REQUESTS);
const profileOf = (target) => JSON.parse(readFileSync(join(target.dir, readdirSync(target.dir).find((name) => name.endsWith('.cpuprofile'))), 'utf8'));
const where = ({ functionName, url, lineNumber }) => `\`${functionName || '(anonymous)'}\` ${url.replace(/^.*?\/(node_modules|worker|wasm|lib|bin|bench)\//, '$1/')}${url ? `:${lineNumber + 1}` : ''}`;

/** µs per call of self time by function, and the profile. */
function selfTimes(target) {
  const p = profileOf(target);
  const usPerSample = (p.endTime - p.startTime) / p.samples.length;
  const byFunction = new Map();
  for (const node of p.nodes) {
    if (!node.hitCount || node.callFrame.functionName === '(idle)') continue;
    const key = where(node.callFrame);
    byFunction.set(key, (byFunction.get(key) ?? 0) + (node.hitCount * usPerSample) / calls);
  }
  return { byFunction, profile: p, usPerSample };
}
const pass = selfTimes(passthrough);
const tool = selfTimes(toolgate);
const total = (m) => [...m.values()].reduce((sum, us) => sum + us, 0);
console.log('');
console.log(`Busy time per call in the profiles (start-up included): passthrough ${f(total(pass.byFunction))} µs, toolgate ${f(total(tool.byFunction))} µs.`);
console.log('');
console.log('| function | toolgate − passthrough (µs/call) | passthrough | toolgate |');
console.log('|---|---|---|---|');
const names = new Set([...pass.byFunction.keys(), ...tool.byFunction.keys()]);
const rows = [...names].map((name) => [name, pass.byFunction.get(name) ?? 0, tool.byFunction.get(name) ?? 0])
  .sort((a, b) => (b[2] - b[1]) - (a[2] - a[1])).slice(0, Number(flags.top));
for (const [name, p, t] of rows) console.log(`| ${name} | ${f(t - p, 2)} | ${f(p, 2)} | ${f(t, 2)} |`);

if (baseline) {
  // What the change moved: the functions whose self time per call differs
  // most between the two toolgates, either way.
  const base = selfTimes(baseline);
  console.log('');
  console.log(`Busy time per call: baseline ${f(total(base.byFunction))} µs, toolgate ${f(total(tool.byFunction))} µs.`);
  console.log('');
  console.log('| function | toolgate − baseline (µs/call) | baseline | toolgate |');
  console.log('|---|---|---|---|');
  const both = new Set([...base.byFunction.keys(), ...tool.byFunction.keys()]);
  const moved = [...both].map((name) => [name, base.byFunction.get(name) ?? 0, tool.byFunction.get(name) ?? 0])
    .sort((a, b) => Math.abs(b[2] - b[1]) - Math.abs(a[2] - a[1])).slice(0, Number(flags.top));
  for (const [name, b, t] of moved) console.log(`| ${name} | ${f(t - b, 2)} | ${f(b, 2)} | ${f(t, 2)} |`);
}

// Native functions have no source: who called them, a few frames up.
const NATIVE = new Set(['writev', 'writeBuffer', 'writeUtf8String', 'writeLatin1String', 'hash', 'Hmac', 'digest']);
console.log('');
console.log('Who calls the native functions in toolgate (µs/call, callers nearest first):');
console.log('');
const parents = new Map();
const nodes = new Map(tool.profile.nodes.map((node) => [node.id, node]));
for (const node of tool.profile.nodes) for (const child of node.children ?? []) parents.set(child, node.id);
const stacks = new Map();
for (const node of tool.profile.nodes) {
  if (!node.hitCount || !NATIVE.has(node.callFrame.functionName)) continue;
  const chain = [];
  for (let id = parents.get(node.id); id !== undefined && chain.length < 5; id = parents.get(id)) chain.push(where(nodes.get(id).callFrame));
  const key = `\`${node.callFrame.functionName}\` ← ${chain.join(' ← ')}`;
  stacks.set(key, (stacks.get(key) ?? 0) + (node.hitCount * tool.usPerSample) / calls);
}
for (const [key, us] of [...stacks].sort((a, b) => b[1] - a[1]).slice(0, 10)) console.log(`- ${f(us, 2)} ${key}`);
