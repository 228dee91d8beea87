// Scale-out on Durable Objects: toolgate's DurableObjectCounterStore and its
// ToolgateCounters objects (the class the Workers entry exports) inside
// workerd through Miniflare, decisions made inside the Worker with
// policy.decide(). Reports, for 10 000 grants: decisions/s, latency per
// decision, objects used and requests per object; separately, the throughput
// of ONE object (every call from one grant) against the same calls spread over
// many objects; and one global counter (one object that takes every call).
//
//   node bench/scale/durable-objects.bench.js            # full run, 1–2 min
//   node bench/scale/durable-objects.bench.js --quick    # ~10 s
//
// Flags: --grants N (largest step, 10000), --steps 10,100,1000,10000,
// --calls-per-grant K (3), --limit L (2), --concurrency C (64),
// --hot-calls N (calls for the one-object / many-objects comparison, 3000),
// --global-grants N (1000), --disk-calls N (the same comparison with storage on
// local disk, 1000; 0 skips it), --rounds N (rounds of the one-object /
// many-objects comparison, interleaved; the median is reported, 3),
// --out DIR (bench/results), --quick.
// Writes DIR/scale-do.json and DIR/scale-do.md.
//
// Storage: objects keep their SQLite databases on tmpfs (/dev/shm: in memory,
// a file sync costs nothing) for every figure but the "local disk" rows: on
// local disk every write transaction is a file sync, one object's file after
// another, and the run measures this machine's disk rather than the objects.
// (Miniflare's in-memory objects, unsafeEphemeralDurableObjects, have no SQL.)
//
// This is Miniflare on one machine, not Cloudflare: every object lives in the
// one local workerd process, on this machine's cores. The figures are what
// local workerd does; on Cloudflare each object runs where it was created,
// requests cross the network, writes are replicated before the answer goes
// out, and objects are spread over machines.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { Miniflare } from 'miniflare';

import { moduleGraph } from '../../tests/js/workerd-modules.js';

import { checkScaleOptions, scalePolicy, ROOT, RESULTS, T0, fmt, latencySummary, machine, parseFlags, pct, round, spread, table, writeResults } from './common.js';

const quick = process.argv.includes('--quick');
const options = parseFlags(process.argv.slice(2), {
  quick: false,
  grants: quick ? 1000 : 10_000,
  steps: [],
  callsPerGrant: 3,
  limit: 2,
  concurrency: 64,
  hotCalls: quick ? 500 : 3000,
  globalGrants: quick ? 200 : 1000,
  diskCalls: quick ? 0 : 1000,
  rounds: quick ? 1 : 3,
  out: RESULTS,
});
checkScaleOptions(options);

const POLICY = scalePolicy(options.limit);

export const NOT_CLOUDFLARE = 'Miniflare (local workerd) on one machine, not Cloudflare: every Durable Object runs in one local workerd process on this machine\'s cores, its SQLite files on tmpfs, in memory (unless marked "local disk"), no network between the Worker and its objects, no replication of writes. Figures are what local workerd does, not what Cloudflare does.';

/**
 * Miniflare running bench/scale/do-worker.js with the ToolgateCounters class;
 * `storage`: 'memory' (default: the objects' SQLite files in a directory on
 * /dev/shm) or 'disk' (in the OS temporary directory). Its dispose() also
 * removes that directory.
 */
export async function startWorker({ storage = 'memory', ...extra } = {}) {
  const base = storage === 'memory' && existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  const dir = await mkdtemp(path.join(base, 'toolgate-scale-do-'));
  const mf = new Miniflare({
    modulesRoot: ROOT,
    modules: await moduleGraph('bench/scale/do-worker.js'),
    compatibilityDate: '2025-01-01',
    durableObjects: { COUNTERS: { className: 'ToolgateCounters', useSQLite: true } },
    durableObjectsPersist: dir,
    ...extra,
  });
  const dispose = mf.dispose.bind(mf);
  mf.dispose = async () => {
    try {
      await dispose();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };
  try {
    await mf.ready;
  } catch (error) {
    await mf.dispose();
    throw error;
  }
  return mf;
}

let spaces = 0;
export async function post(mf, route, body) {
  const response = await mf.dispatchFetch(`http://scale.test${route}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const reply = await response.json();
  if (reply.error) throw Object.assign(new Error(reply.error.message), { name: reply.error.name });
  return reply.result;
}

// Local workerd keeps every live object's SQLite database open (3 files, and
// SQLite memory) until it evicts the object, about 10 s after its last request.
// Past ~2 700 live objects it failed here with SQLITE_NOMEM, so a pass that
// would go beyond MAX_LIVE_OBJECTS runs in chunks of grants, each in a fresh
// workerd (restarting, untimed, takes a second or two). A local limit, not
// Cloudflare's.
const FDS_PER_OBJECT = 3;
const MAX_LIVE_OBJECTS = 2000;

/** The workerd process Miniflare started (a child of this one), or null off Linux. */
function workerdOf() {
  try {
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const match = /^\d+ \((.*)\) \S (\d+)/.exec(readFileSync(`/proc/${entry}/stat`, 'utf8'));
        if (match && match[1] === 'workerd' && Number(match[2]) === process.pid) return Number(entry);
      } catch {
        // gone meanwhile
      }
    }
  } catch {
    // no /proc
  }
  return null;
}

const openFiles = (pid) => readdirSync(`/proc/${pid}/fd`).length;

/** Miniflare with the bench worker, restartable: `mf` is the current instance. */
export class Workerd {
  constructor(options = {}) {
    this.options = options;
    this.mf = null;
    this.restarts = 0;
    this.baseFiles = 0;
  }

  async start() {
    this.mf = await startWorker(this.options);
    // The isolate loads the core and compiles the policy at its first request.
    await post(this.mf, '/run', { space: 'warm-up', policy: POLICY, tool: 'hot', grants: 4, callsPerGrant: 5, concurrency: 4, now: T0 });
    const pid = workerdOf();
    this.baseFiles = pid === null ? 0 : openFiles(pid) - 4 * FDS_PER_OBJECT;
    return this;
  }

  async restart() {
    await this.mf?.dispose();
    this.restarts += 1;
    return this.start();
  }

  /** Live objects, from workerd's open files; null when that cannot be seen. */
  liveObjects() {
    const pid = workerdOf();
    return pid === null ? null : Math.max(0, Math.round((openFiles(pid) - this.baseFiles) / FDS_PER_OBJECT));
  }

  async dispose() {
    await this.mf?.dispose();
    this.mf = null;
  }
}

function merge(into, part) {
  into.decisions += part.decisions;
  into.ms += part.ms;
  into.latencies_ms.push(...part.latencies_ms);
  for (const [code, n] of Object.entries(part.codes)) into.codes[code] = (into.codes[code] ?? 0) + n;
  into.first_failure ??= part.first_failure;
  for (const [shard, methods] of Object.entries(part.rpcs)) {
    const held = (into.rpcs[shard] ??= {});
    for (const [method, n] of Object.entries(methods)) held[method] = (held[method] ?? 0) + n;
  }
}

/**
 * One pass: `grants` grants x `callsPerGrant` calls of `tool` inside the
 * Worker (in chunks of grants when there are many), then (with `check`) every
 * grant's count and every object's rows read back.
 */
export async function pass(workerd, { tool, grants, callsPerGrant, concurrency, check = true, warm = false, label }) {
  const space = `${label.replace(/\W+/g, '-')}-${(spaces += 1)}`;
  const base = { space, policy: POLICY, tool, callsPerGrant, concurrency, now: T0, grantPrefix: 'grant-' };
  const run = { decisions: 0, ms: 0, latencies_ms: [], codes: {}, first_failure: null, rpcs: {} };
  const seen = { counts: [], shards: {}, globals: {} };
  let chunks = 0;
  let restarts = 0;
  for (let offset = 0; offset < grants; offset += MAX_LIVE_OBJECTS) {
    const body = { ...base, grants: Math.min(MAX_LIVE_OBJECTS, grants - offset), grantOffset: offset };
    const live = workerd.liveObjects();
    if (live === null ? grants > MAX_LIVE_OBJECTS : live + body.grants > MAX_LIVE_OBJECTS) {
      await workerd.restart();
      restarts += 1;
    }
    chunks += 1;
    // With `warm`, every object is created (and its database opened) first, so
    // that the run measures objects in use rather than new ones.
    if (warm) await post(workerd.mf, '/run', { ...body, callsPerGrant: 1 });
    merge(run, await post(workerd.mf, '/run', body));
    if (check) {
      const part = await post(workerd.mf, '/inspect', body);
      seen.counts.push(...part.counts);
      Object.assign(seen.shards, part.shards);
      Object.assign(seen.globals, part.globals);
    }
  }
  // A benchmark of failing calls measures nothing.
  const failed = Object.keys(run.codes).filter((code) => code !== 'allowed' && code !== 'rate_limited');
  if (failed.length > 0) throw new Error(`${label}: decisions ${JSON.stringify(run.codes)}; first: ${run.first_failure}`);
  const shards = Object.entries(run.rpcs).map(([shard, methods]) => ({ shard, rpcs: Object.values(methods).reduce((a, b) => a + b, 0), methods }));
  const rpcs = shards.reduce((a, s) => a + s.rpcs, 0);
  const grantShards = shards.filter((s) => s.shard.startsWith('grant:'));
  const globalShards = shards.filter((s) => s.shard.startsWith('global:'));
  const histogram = new Map();
  for (const s of grantShards) histogram.set(s.rpcs, (histogram.get(s.rpcs) ?? 0) + 1);
  const result = {
    label,
    tool,
    grants,
    calls_per_grant: callsPerGrant,
    concurrency,
    chunks,
    workerd_restarts: restarts,
    decisions: run.decisions,
    seconds: round(run.ms / 1000, 3),
    decisions_per_s: round(run.decisions / (run.ms / 1000), 0),
    latency: latencySummary(run.latencies_ms),
    codes: run.codes,
    objects: shards.length,
    rpcs,
    rpcs_per_decision: round(rpcs / run.decisions, 3),
    rpcs_per_grant_object: grantShards.length ? spread(grantShards.map((s) => s.rpcs)) : null,
    histogram: Object.fromEntries([...histogram].sort(([a], [b]) => a - b)),
    global_objects: globalShards.map((s) => ({ shard: s.shard, rpcs: s.rpcs, methods: s.methods, share_of_rpcs: round(s.rpcs / rpcs, 4) })),
    busiest: [...shards].sort((a, b) => b.rpcs - a.rpcs).slice(0, 3).map((s) => ({ shard: s.shard.length > 60 ? `${s.shard.slice(0, 57)}...` : s.shard, rpcs: s.rpcs, methods: s.methods })),
  };
  if (check) {
    const expected = Math.min(callsPerGrant, POLICY.tools[tool].limits[0].max);
    result.wrong_counts = seen.counts.filter((c) => c !== expected).length;
    result.counts_read = seen.counts.length;
    const rows = Object.values(seen.shards);
    result.rows_held = rows.reduce((a, b) => a + b, 0);
    result.objects_holding = rows.filter((n) => n > 0).length;
    result.global_counts = seen.globals;
  }
  return result;
}

function markdown(report) {
  const { steps, main, one, many, global } = report;
  const out = [];
  out.push('# Scale-out: Durable Objects (Miniflare)', '');
  out.push(`> ${NOT_CLOUDFLARE}`, '');
  out.push(`Machine: ${report.machine.cpus} cores, ${report.machine.cpu_model}, load ${report.machine.loadavg_1m} before. Decisions are made inside the Worker (\`policy.decide()\` with \`DurableObjectCounterStore\`), ${report.config.concurrency} in flight, one RPC per object touched.`, '');
  out.push(`## ${fmt(main.grants)} grants × ${report.config.calls_per_grant} calls (per-grant limit ${report.config.limit})`, '');
  out.push(table(['decisions', 'decisions/s', 'p50 ms', 'p99 ms', 'allowed', 'rate_limited', 'objects', 'RPCs per decision', 'grants with a wrong count'], [[
    fmt(main.decisions), fmt(main.decisions_per_s), main.latency.p50_ms, main.latency.p99_ms, fmt(main.codes.allowed ?? 0), fmt(main.codes.rate_limited ?? 0),
    fmt(main.objects), main.rpcs_per_decision, main.wrong_counts,
  ]]), '');
  out.push(`Requests per object: min ${main.rpcs_per_grant_object.min}, mean ${main.rpcs_per_grant_object.mean}, max ${main.rpcs_per_grant_object.max} `
    + `(${Object.entries(main.histogram).map(([n, objects]) => `${fmt(objects)} objects took ${n}`).join(', ')}): one object per grant, so an object's load is its grant's calls, and `
    + `${fmt(main.objects_holding)} objects hold ${fmt(main.rows_held)} bucket rows (one each). Every object was new at its grant's first call.`
    + (main.chunks > 1 ? ` The grants ran in ${main.chunks} chunks of at most ${fmt(MAX_LIVE_OBJECTS)}, each in a fresh workerd (untimed restart): local workerd keeps every live object's SQLite database open until it evicts the object (~10 s idle) and failed with SQLITE_NOMEM past ~2 700 live objects here. A local limit, not Cloudflare's.` : ''), '');
  out.push('## Objects as grants grow', '');
  out.push(table(['grants', 'objects', 'requests per object (min / mean / max)', 'max/mean', 'decisions/s', 'p50 ms', 'p99 ms'], steps.map((s) => [
    fmt(s.grants), fmt(s.objects), `${s.rpcs_per_grant_object.min} / ${s.rpcs_per_grant_object.mean} / ${s.rpcs_per_grant_object.max}`, s.rpcs_per_grant_object.max_over_mean,
    fmt(s.decisions_per_s), s.latency.p50_ms, s.latency.p99_ms,
  ])), '');
  out.push('## One object against many', '');
  const rows = [...report.one_by_concurrency.map((r) => [r, 'memory']), ...report.many_by_concurrency.map((r) => [r, 'memory']), ...(report.disk ? [[report.disk.one, 'local disk'], [report.disk.many, 'local disk']] : [])];
  out.push(table(['calls', 'spread over', 'in flight', 'storage', 'decisions/s', 'rounds (decisions/s)', 'p50 ms', 'p99 ms'], rows.map(([r, storage]) => [
    fmt(r.decisions), r.objects === 1 ? '1 object (one grant)' : `${fmt(r.objects)} objects (${fmt(r.grants)} grants)`, r.concurrency, storage, fmt(r.decisions_per_s),
    r.rounds ? r.rounds.map((n) => fmt(n)).join(', ') : '', r.latency.p50_ms, r.latency.p99_ms,
  ])), '');
  out.push(`One object serialises its requests: every call of one grant (or every call that touches one global counter) goes through it, one at a time. `
    + `With ${report.one_by_concurrency.map((r) => r.concurrency).join(', ')} calls in flight one object served ${report.one_by_concurrency.map((r) => fmt(r.decisions_per_s)).join(', ')} decisions/s `
    + `while the median wait grew ${report.one_by_concurrency.map((r) => r.latency.p50_ms).join(' → ')} ms: calls beyond what it serves queue. `
    + `${fmt(many.objects)} objects (already created) served ${fmt(many.decisions_per_s)}/s: in local workerd every object shares one process on this machine's cores, so spreading buys little here; `
    + 'on Cloudflare objects run on many machines, and the per-object figure is the one that stays a ceiling.'
    + (report.disk ? ` With storage on local disk every write transaction waits for a file sync, so the rate depends on the disk: one object ${fmt(report.disk.one.decisions_per_s)}/s, ${fmt(report.disk.many.objects)} objects ${fmt(report.disk.many.decisions_per_s)}/s here.` : ''), '');
  out.push('Latencies are timed inside the Worker, whose clock (Spectre mitigation) moves only between I/O, in whole milliseconds here: read p50 0 or 1 ms as "under about a millisecond".', '');
  const g = global.global_objects[0];
  out.push(`## One global counter: ${fmt(global.grants)} grants × ${report.config.calls_per_grant} calls`, '');
  out.push(table(['decisions', 'decisions/s', 'p50 ms', 'p99 ms', 'objects', 'RPCs', 'RPCs to the global object', 'its share', 'global count'], [[
    fmt(global.decisions), fmt(global.decisions_per_s), global.latency.p50_ms, global.latency.p99_ms, fmt(global.objects), fmt(global.rpcs),
    fmt(g?.rpcs), pct(g?.rpcs ?? 0, global.rpcs), fmt(Object.values(global.global_counts ?? {})[0]),
  ]]), '');
  out.push(`Every call reserves at the global counter's object (\`global:<counter key>\`) and at its grant's: the grants spread over ${fmt(global.objects - 1)} objects, `
    + 'the global counter stays one object that takes every call, so it caps the throughput of every call that carries it at the one-object figure above.', '');
  return out.join('\n');
}

async function main() {
  const started = performance.now();
  const report = { machine: machine(), note: NOT_CLOUDFLARE, config: { grants: options.grants, steps: options.steps, calls_per_grant: options.callsPerGrant, limit: options.limit, concurrency: options.concurrency, hot_calls: options.hotCalls, global_grants: options.globalGrants, disk_calls: options.diskCalls, rounds: options.rounds, storage: 'memory', quick } };
  const workerd = await new Workerd().start();
  try {
    const common = { callsPerGrant: options.callsPerGrant, concurrency: options.concurrency };
    await pass(workerd, { ...common, tool: 'run', grants: 100, label: 'warm-up', check: false });
    report.steps = [];
    for (const grants of options.steps) {
      const result = await pass(workerd, { ...common, tool: 'run', grants, label: `${grants} grants` });
      report.steps.push(result);
      process.stderr.write(`durable-objects: ${fmt(grants)} grants: ${fmt(result.decisions_per_s)} decisions/s, ${fmt(result.objects)} objects\n`);
    }
    report.main = report.steps[report.steps.length - 1];
    const manyGrants = Math.max(1, Math.min(1000, Math.floor(options.hotCalls / 5)));
    const inFlight = [...new Set([1, 8, options.concurrency])];
    // A clean workerd for the comparison: no objects left from the passes above.
    if (workerd.liveObjects() !== 0) await workerd.restart();
    // Rounds interleaved, so that a busy moment on the machine hits every
    // configuration alike; per configuration the round with the median rate.
    const configs = [
      ...inFlight.map((concurrency) => ({ kind: 'one', tool: 'hot', grants: 1, callsPerGrant: options.hotCalls, concurrency, label: `one object ${concurrency}`, check: false, warm: true })),
      ...inFlight.filter((c) => c > 1).map((concurrency) => ({ kind: 'many', tool: 'hot', grants: manyGrants, callsPerGrant: Math.ceil(options.hotCalls / manyGrants), concurrency, label: `many objects ${concurrency}`, check: false, warm: true })),
    ];
    const runs = configs.map(() => []);
    for (let round = 0; round < options.rounds; round += 1) {
      for (const [i, config] of configs.entries()) runs[i].push(await pass(workerd, config));
    }
    const medians = runs.map((list) => {
      const sorted = [...list].sort((a, b) => a.decisions_per_s - b.decisions_per_s);
      return { ...sorted[Math.floor((sorted.length - 1) / 2)], rounds: list.map((r) => r.decisions_per_s) };
    });
    report.one_by_concurrency = medians.filter((_, i) => configs[i].kind === 'one');
    report.many_by_concurrency = medians.filter((_, i) => configs[i].kind === 'many');
    report.one = report.one_by_concurrency[report.one_by_concurrency.length - 1];
    report.sequential = report.one_by_concurrency[0];
    report.many = report.many_by_concurrency[report.many_by_concurrency.length - 1];
    process.stderr.write(`durable-objects: one object ${fmt(report.one.decisions_per_s)}/s, ${fmt(report.many.objects)} objects ${fmt(report.many.decisions_per_s)}/s\n`);
    report.global = await pass(workerd, { ...common, tool: 'run_global', grants: options.globalGrants, label: 'global counter' });
  } finally {
    report.workerd_restarts = workerd.restarts;
    await workerd.dispose();
  }
  if (options.diskCalls > 0) {
    const disk = await new Workerd({ storage: 'disk' }).start();
    try {
      await pass(disk, { tool: 'hot', grants: 10, callsPerGrant: 10, concurrency: options.concurrency, label: 'disk warm-up', check: false });
      const grants = Math.max(2, Math.floor(options.diskCalls / 5));
      report.disk = {
        one: await pass(disk, { tool: 'hot', grants: 1, callsPerGrant: options.diskCalls, concurrency: options.concurrency, label: 'disk one object', check: false, warm: true }),
        many: await pass(disk, { tool: 'hot', grants, callsPerGrant: Math.ceil(options.diskCalls / grants), concurrency: options.concurrency, label: 'disk many objects', check: false, warm: true }),
      };
      process.stderr.write(`durable-objects: local disk: one object ${fmt(report.disk.one.decisions_per_s)}/s, ${fmt(report.disk.many.objects)} objects ${fmt(report.disk.many.decisions_per_s)}/s\n`);
    } finally {
      await disk.dispose();
    }
  }
  report.seconds = round((performance.now() - started) / 1000, 1);
  report.machine.loadavg_1m_after = round((await import('node:os')).loadavg()[0], 2);
  const md = markdown(report);
  const { jsonPath, mdPath } = writeResults(options.out, 'scale-do', report, md);
  process.stdout.write(`${md}\nwrote ${jsonPath} and ${mdPath} (${report.seconds} s)\n`);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
