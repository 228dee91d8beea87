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
//     [--gc] [--syscalls] [--alloc]
import { spawn, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
    gc: { type: 'boolean', default: false },
    syscalls: { type: 'boolean', default: false },
    alloc: { type: 'boolean', default: false },
  },
});
if (!['memory', 'redis'].includes(flags.store)) throw new Error(`--store must be memory or redis, not ${flags.store}`);
const REQUESTS = Number(flags.requests);
const WARMUP = Math.min(2000, REQUESTS);
const ROUNDS = Number(flags.rounds);
if (!(Number.isInteger(ROUNDS) && ROUNDS > 0)) throw new Error(`--rounds must be a positive integer, not ${flags.rounds}`);
const profile = !flags['no-profile'];
// --gc: every server under --trace-gc-nvp, its GC lines read from its stdout
// (toolgate serve writes its audit to a file here, so stdout carries nothing
// else): bytes allocated, young- and old-generation collections and their
// pauses, per call. --syscalls: `strace -c -f` attached to every thread of
// each server for its measured calls: system calls per call, by name (strace
// slows the servers several times over: read its counts, not its CPU).
const traceGc = flags.gc;
const traceSyscalls = flags.syscalls;
// --alloc: every server under V8's sampling heap profiler (./alloc-sample.js),
// freed objects included: bytes allocated per call by function.
const sampleAlloc = flags.alloc;


const work = mkdtempSync(join(tmpdir(), 'toolgate-profile-diff-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));
writeFileSync(join(work, 'policy.json'), JSON.stringify(POLICY));
// Audit files in a directory of their own: toolgate serve watches the
// directories of its policy and grants files (reload), and an audit file
// beside them wakes every server's watcher at each append (an inotify read
// and a callback per batch, in each toolgate process on the machine).
const auditDir = join(work, 'audit');
mkdirSync(auditDir);
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
    ...(traceGc && profiled !== null ? ['--trace-gc-nvp'] : []),
    ...(sampleAlloc && profiled !== null ? ['--import', join(here, 'alloc-sample.js')] : []),
    '--import', join(here, 'exit-with-parent.js'), ...args], {
    cwd: root, stdio: ['pipe', traceGc ? 'pipe' : 'ignore', 'pipe'],
    env: sampleAlloc ? { ...process.env, TOOLGATE_ALLOC_PROFILE: join(work, `${name}.heapprofile`) } : process.env,
  });
  children.add(child);
  // --gc: the collections so far (allocated bytes, pause ms, kind), in order.
  const collections = [];
  if (traceGc) {
    let pending = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      const lines = (pending + chunk).split('\n');
      pending = lines.pop();
      for (const line of lines) {
        const kind = /\bgc=(\w+)/.exec(line)?.[1];
        if (kind === undefined) continue;
        collections.push({ kind, allocated: Number(/\ballocated=(\d+)/.exec(line)?.[1] ?? 0), pause: Number(/\bpause=([\d.]+)/.exec(line)?.[1] ?? 0) });
      }
    });
  }
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
    name, url, dir, pid: child.pid, collections,
    async stop() {
      children.delete(child);
      child.stdin.end(); // exit-with-parent.js: SIGTERM, and the profile is written
      if (child.exitCode === null) await once(child, 'exit');
    },
  };
}

let redis = null;
if (flags.store === 'redis') redis = await startRedis();
const upstream = await start('upstream', [join(here, 'upstream.js')], null);
const passthrough = await start('passthrough', [join(here, 'passthrough.js'), '--upstream', `${upstream.url}/mcp`], profile);
const serve = (name, bin) => start(name, [bin, 'serve', '--policy', join(work, 'policy.json'), '--upstream', `${upstream.url}/mcp`,
  '--grants', join(work, 'grants.json'), '--port', '0', '--store', redis ? redis.url : 'memory', '--audit', `file:${join(auditDir, `audit-${name}.jsonl`)}`], profile);
const toolgate = await serve('toolgate', flags['toolgate-bin']);
// Its counters under a prefix of their own would need a flag serve lacks; the
// policy's limit never denies, so sharing the Redis keys changes nothing.
const baseline = flags['baseline-bin'] ? await serve('baseline', flags['baseline-bin']) : null;

const send = (target, amount) => autocannon({ url: `${target.url}/mcp`, method: 'POST', headers: HEADERS, body: BODY, connections: 10, amount });
async function measure(target) {
  await send(target, WARMUP);
  const strace = traceSyscalls ? await attachStrace(target.pid) : null;
  const gcFrom = target.collections.length;
  const cpu = cpuMs(target.pid);
  const started = performance.now();
  const result = await send(target, REQUESTS);
  const seconds = (performance.now() - started) / 1000;
  const cpuUs = (cpuMs(target.pid) - cpu) * 1000;
  const syscalls = strace ? await strace.stop() : null;
  if (result.non2xx || result.errors) throw new Error(`${target.name}: ${result.non2xx} non-2xx, ${result.errors} errors`);
  const calls = result.requests.total;
  const run = { rps: calls / seconds, cpu_us_per_call: cpuUs / calls };
  if (traceGc) {
    // The lines of collections during the run may still be in the pipe: the
    // server's next event-loop turn has written them; read what came.
    await new Promise((resolve) => setImmediate(resolve));
    const during = target.collections.slice(gcFrom);
    const young = during.filter((c) => c.kind === 's');
    run.gc = {
      bytes_per_call: during.reduce((sum, c) => sum + c.allocated, 0) / calls,
      scavenges_per_1000_calls: (young.length / calls) * 1000,
      other_collections: during.length - young.length,
      pause_us_per_call: (during.reduce((sum, c) => sum + c.pause, 0) * 1000) / calls,
    };
  }
  if (syscalls) run.syscalls = Object.fromEntries(Object.entries(syscalls).map(([name, count]) => [name, count / calls]));
  return run;
}

// strace -c -f on every thread of a running process; stop() ends it and
// gives the calls counted, by name.
async function attachStrace(pid) {
  const tids = readdirSync(`/proc/${pid}/task`);
  const out = join(work, `strace-${pid}-${Date.now()}.txt`);
  const tracer = spawn('strace', ['-c', '-f', '-o', out, ...tids.flatMap((tid) => ['-p', tid])], { stdio: ['ignore', 'ignore', 'pipe'] });
  let errors = '';
  tracer.stderr.on('data', (chunk) => { errors += chunk; });
  // Attached once every thread has strace as its tracer (/proc: TracerPid).
  const traced = () => tids.every((tid) => {
    try {
      return /^TracerPid:\s*[1-9]/m.test(readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8'));
    } catch {
      return true; // the thread ended
    }
  });
  while (!traced()) {
    if (tracer.exitCode !== null) throw new Error(`strace failed: ${errors}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return {
    async stop() {
      tracer.kill('SIGINT');
      await once(tracer, 'exit');
      const counts = {};
      for (const line of readFileSync(out, 'utf8').split('\n')) {
        const fields = line.trim().split(/\s+/);
        // % time, seconds, usecs/call, calls, [errors], syscall
        if (fields.length >= 5 && /^\d+$/.test(fields[3]) && fields.at(-1) !== 'total') counts[fields.at(-1)] = Number(fields[3]);
      }
      return counts;
    },
  };
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
const where = ({ functionName, url, lineNumber }) => `\`${functionName || '(anonymous)'}\` ${url.replace(/^.*?\/(node_modules|worker|wasm|lib|bin|bench)\//, '$1/')}${url ? `:${lineNumber + 1}` : ''}`;
const sides = ['passthrough', ...(baseline ? ['baseline'] : []), 'toolgate'];
if (traceGc) {
  // Allocation is CPU too: V8's young generation is collected each time it
  // fills, so every byte allocated per call costs scavenge time later.
  console.log('');
  console.log('Garbage collection during the measured calls (`--trace-gc-nvp`; median of the rounds):');
  console.log('');
  console.log('| server | bytes allocated per call | scavenges per 1000 calls | other collections | GC pause µs per call |');
  console.log('|---|---|---|---|---|');
  for (const side of sides) {
    const m = (key) => median(runs[side].map((run) => run.gc[key]));
    console.log(`| ${side} | ${f(m('bytes_per_call'), 0)} | ${f(m('scavenges_per_1000_calls'), 2)} | ${f(m('other_collections'), 0)} | ${f(m('pause_us_per_call'), 2)} |`);
  }
}
if (traceSyscalls) {
  console.log('');
  console.log('System calls per call (`strace -c -f` on every thread during the measured calls; median of the rounds):');
  console.log('');
  const names = [...new Set(sides.flatMap((side) => runs[side].flatMap((run) => Object.keys(run.syscalls))))];
  const per = (side, name) => median(runs[side].map((run) => run.syscalls[name] ?? 0));
  const total = (side) => median(runs[side].map((run) => Object.values(run.syscalls).reduce((sum, n) => sum + n, 0)));
  names.sort((a, b) => per('toolgate', b) - per('toolgate', a));
  console.log(`| system call | ${sides.join(' | ')} |`);
  console.log(`|---|${sides.map(() => '---|').join('')}`);
  for (const name of names) {
    if (sides.every((side) => per(side, name) < 0.005)) continue;
    console.log(`| ${name} | ${sides.map((side) => f(per(side, name), 3)).join(' | ')} |`);
  }
  console.log(`| all | ${sides.map((side) => f(total(side), 3)).join(' | ')} |`);
}
if (sampleAlloc) {
  // Bytes allocated per call by function (self: what the function itself
  // allocated), start-up and warm-ups included, toolgate minus passthrough.
  const allocCalls = ROUNDS * (WARMUP + REQUESTS);
  const allocOf = (side) => {
    const byFunction = new Map();
    const walk = (node) => {
      if (node.selfSize) {
        const key = where(node.callFrame);
        byFunction.set(key, (byFunction.get(key) ?? 0) + node.selfSize / allocCalls);
      }
      for (const child of node.children) walk(child);
    };
    walk(JSON.parse(readFileSync(join(work, `${side}.heapprofile`), 'utf8')).head);
    return byFunction;
  };
  const bySide = Object.fromEntries(sides.map((side) => [side, allocOf(side)]));
  const sum = (m) => [...m.values()].reduce((a, b) => a + b, 0);
  console.log('');
  console.log(`Bytes allocated per call (sampling heap profiler, freed objects included; start-up and warm-ups included): ${sides.map((side) => `${side} ${f(sum(bySide[side]), 0)}`).join(', ')}.`);
  console.log('');
  console.log(`| function | toolgate − passthrough (bytes/call) | ${sides.join(' | ')} |`);
  console.log(`|---|---|${sides.map(() => '---|').join('')}`);
  const keys = new Set(sides.flatMap((side) => [...bySide[side].keys()]));
  const rows = [...keys].map((key) => [key, ...sides.map((side) => bySide[side].get(key) ?? 0)])
    .sort((a, b) => Math.abs(b.at(-1) - b[1]) - Math.abs(a.at(-1) - a[1])).slice(0, Number(flags.top));
  for (const [key, ...values] of rows) console.log(`| ${key} | ${f(values.at(-1) - values[0], 0)} | ${values.map((v) => f(v, 0)).join(' | ')} |`);
}
if (!profile) process.exit(0);

// Calls each process answered while profiled (warm-ups included).
const calls = ROUNDS * (WARMUP + REQUESTS);
const profileOf = (target) => JSON.parse(readFileSync(join(target.dir, readdirSync(target.dir).find((name) => name.endsWith('.cpuprofile'))), 'utf8'));

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
