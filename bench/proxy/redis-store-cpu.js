// The Redis counter store's own CPU per reserve(), in process, against a
// throwaway redis-server: what the store and node-redis cost a call, without
// HTTP, the core or the upstream, so a change to worker/stores/redis*.js can
// be measured without the noise of the whole proxy (whose CPU per call moves
// by ±20 % on a shared machine). With `--baseline DIR`, another checkout's
// store (DIR/worker/stores/redis.js) runs in the same process against the same
// Redis, interleaved round by round: before and after a change, in one run.
//
// Per side and round: `--calls` reserves one after another (each awaited, as
// one sequential client's calls), then as many in bursts of `--burst`
// concurrent reserves (as a loaded proxy's), the typical call's one grant
// limit. CPU is this process's (user + system) per reserve, and the
// redis-server's per reserve (from /proc), and the p50 of the sequential
// reserves' wall time (the round trip a call waits for); medians over the rounds.
//
//   node bench/proxy/redis-store-cpu.js [--baseline DIR] [--calls N] [--burst N] [--rounds N]
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

import { startRedis } from '../../tests/js/redis-server.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const { values: flags } = parseArgs({
  options: {
    baseline: { type: 'string' },
    calls: { type: 'string', default: '5000' },
    burst: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '5' },
  },
});
const CALLS = Number(flags.calls);
const BURST = Number(flags.burst);
const ROUNDS = Number(flags.rounds);
for (const [name, value] of [['calls', CALLS], ['burst', BURST], ['rounds', ROUNDS]]) {
  if (!(Number.isInteger(value) && value > 0)) throw new Error(`--${name} must be a positive integer`);
}

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
function cpuMsOf(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) / CLK_TCK) * 1000;
}
const ownCpuMs = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

const server = await startRedis();
process.on('exit', () => server.stop());
const sides = [];
if (flags.baseline) sides.push({ name: 'baseline', dir: resolve(flags.baseline) });
sides.push({ name: 'this checkout', dir: root });
for (const side of sides) {
  const { createRedisCounterStore } = await import(pathToFileURL(join(side.dir, 'worker/stores/redis.js')).href);
  side.store = await createRedisCounterStore({ url: server.url, prefix: side.name === 'baseline' ? 'base' : 'this', onError: () => {} });
  side.runs = [];
}
const redisPid = Number(/process_id:(\d+)/.exec(await (await import('redis')).createClient({ url: server.url }).connect()
  .then(async (client) => {
    const info = await client.sendCommand(['INFO', 'server']);
    await client.close();
    return info;
  }))[1]);

// The typical call's limit (bench/proxy/typical-call.js: one grant limit that never denies).
const now = Date.now();
const request = { key: 'refunds', scope: 'grant', grant: 'bench-agent', cost: 1, max: 1e15, window_ms: 60_000, algorithm: 'fixed', bucket_start_ms: now - (now % 60_000) };

async function measure(store) {
  const cpu0 = ownCpuMs();
  const redis0 = cpuMsOf(redisPid);
  const waits = new Float64Array(CALLS);
  for (let i = 0; i < CALLS; i++) {
    const started = performance.now();
    await store.reserve([request], now);
    waits[i] = performance.now() - started;
  }
  const cpu1 = ownCpuMs();
  const redis1 = cpuMsOf(redisPid);
  for (let i = 0; i < CALLS; i += BURST) await Promise.all(Array.from({ length: BURST }, () => store.reserve([request], now)));
  const cpu2 = ownCpuMs();
  const redis2 = cpuMsOf(redisPid);
  return {
    sequential: ((cpu1 - cpu0) / CALLS) * 1000,
    p50: waits.sort()[CALLS >> 1] * 1000,
    burst: ((cpu2 - cpu1) / CALLS) * 1000,
    redisSequential: ((redis1 - redis0) / CALLS) * 1000,
    redisBurst: ((redis2 - redis1) / CALLS) * 1000,
  };
}

for (const side of sides) await measure(side.store); // warm-up: JIT, scripts loaded
for (let round = 0; round < ROUNDS; round++) {
  for (const side of sides) side.runs.push(await measure(side.store));
}
for (const side of sides) await side.store.close();
await server.stop();

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const f = (n) => n.toFixed(1);
console.log(`RedisCounterStore.reserve() CPU per call, in process, medians of ${ROUNDS} interleaved rounds of ${CALLS} sequential and ${CALLS} in bursts of ${BURST}; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
console.log('');
console.log('| store | sequential: reserve() p50 wall µs | this process CPU µs | redis-server µs | bursts: this process µs | redis-server µs | each round, sequential (this process) |');
console.log('|---|---|---|---|---|---|---|');
for (const side of sides) {
  const m = (key) => median(side.runs.map((run) => run[key]));
  console.log(`| ${side.name}${side.name === 'baseline' ? ` (${flags.baseline})` : ''} | ${f(m('p50'))} | ${f(m('sequential'))} | ${f(m('redisSequential'))} | ${f(m('burst'))} | ${f(m('redisBurst'))} | ${side.runs.map((run) => f(run.sequential)).join(', ')} |`);
}
