// Scale-out on Redis Cluster: toolgate's RedisCounterStore (cluster mode) on a
// real cluster this script starts (3 masters, no replicas, throwaway servers
// on 127.0.0.1), driven through policy.decide() of the JS API with 10 000
// distinct grants. Reports decisions/s, latency per decision, and per shard
// (master): keys held, scripts and commands it ran, Redis CPU time in them, its
// share of the load; how keys spread as grants grow; what one global
// counter does (one key in one slot: its shard takes every call); and one
// grant against many (one slot, one master).
//
//   node bench/scale/redis-cluster.bench.js            # full run, under a minute
//   node bench/scale/redis-cluster.bench.js --quick    # ~10 s
//
// Flags: --grants N (largest step, 10000), --steps 10,100,1000,10000,
// --calls-per-grant K (5), --limit L (per-grant max, 4: the 5th call is denied),
// --concurrency C (64), --masters M (3), --global-grants N (1000; also the
// grants of the many-grants pass, and x K the calls of the one-grant pass),
// --no-baseline (skip the single-Redis comparison), --out DIR (bench/results),
// --quick. Writes DIR/scale-redis.json and DIR/scale-redis.md.
//
// Everything runs on one machine: the Node client, every master and the OS
// share the cores, so decisions/s are what this machine does, not what a
// cluster of real servers does. What does carry over: which shard holds which
// keys and takes which calls.
import { createClient, createCluster } from 'redis';

import { loadToolgate } from '../../wasm/index.js';
import { RedisCounterStore } from '../../worker/stores/redis.js';
import { startRedis } from '../../tests/js/redis-server.js';
import { startRedisCluster } from './redis-cluster-server.js';
import { checkScaleOptions, scalePolicy, RESULTS, T0, drive, fmt, latencySummary, machine, parseFlags, pct, round, spread, table, writeResults } from './common.js';

const quick = process.argv.includes('--quick');
const options = parseFlags(process.argv.slice(2), {
  quick: false,
  grants: quick ? 1000 : 10_000,
  steps: [],
  callsPerGrant: 5,
  limit: 4,
  concurrency: 64,
  masters: 3,
  globalGrants: quick ? 200 : 1000,
  noBaseline: quick,
  out: RESULTS,
});
checkScaleOptions(options);

const PREFIX = 'tg';
const POLICY = scalePolicy(options.limit);

// CRC16/XMODEM, as Redis Cluster hashes keys (slot = crc16(tag) mod 16384).
const CRC_TABLE = (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i += 1) {
    let c = i << 8;
    for (let j = 0; j < 8; j += 1) c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff;
    t[i] = c;
  }
  return t;
})();
export function slotOf(key) {
  const open = key.indexOf('{');
  const close = open < 0 ? -1 : key.indexOf('}', open + 1);
  const hashed = close > open + 1 ? key.slice(open + 1, close) : key;
  let crc = 0;
  for (const byte of Buffer.from(hashed)) crc = ((crc << 8) & 0xffff) ^ CRC_TABLE[((crc >> 8) ^ byte) & 0xff];
  return crc % 16384;
}

// Commands a benchmark probe sends (not the store's load).
const PROBES = new Set(['info', 'dbsize', 'cluster', 'ping', 'client', 'hello', 'command', 'config', 'flushall', 'readonly', 'select', 'script']);

// INFO all -> { total_commands, scripts (EVALSHA + EVAL calls), script_usec, data_commands }
async function snapshot(node) {
  const text = await node.sendCommand(['INFO', 'all']);
  const stats = { total_commands: 0, scripts: 0, script_usec: 0, data_commands: 0 };
  for (const line of text.split('\r\n')) {
    if (line.startsWith('total_commands_processed:')) stats.total_commands = Number(line.split(':')[1]);
    const m = /^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/.exec(line);
    if (!m) continue;
    const [, name, calls, usec] = m;
    const base = name.split('|')[0];
    if (base === 'evalsha' || base === 'eval') {
      stats.scripts += Number(calls);
      stats.script_usec += Number(usec);
    }
    if (!PROBES.has(base)) stats.data_commands += Number(calls);
  }
  return stats;
}

const delta = (after, before) => Object.fromEntries(Object.keys(after).map((k) => [k, after[k] - before[k]]));

async function connectMasters(cluster) {
  return Promise.all(cluster.nodes.map(async ({ port, url }) => {
    const client = createClient({ url });
    client.on('error', () => {});
    await client.connect();
    return { port, client };
  }));
}

// Which master serves each slot: Int32Array(16384) of ports.
async function slotOwners(master) {
  const owners = new Int32Array(16384);
  for (const [from, to, [, port]] of await master.sendCommand(['CLUSTER', 'SLOTS'])) owners.fill(Number(port), Number(from), Number(to) + 1);
  return owners;
}

const grantName = (i) => `grant-${String(i).padStart(5, '0')}`;

// K calls for each of `grants`, interleaved round by round, so that a grant's
// calls are spread over the run (as independent agents' calls would be).
function callsFor(policy, counters, tool, grants, callsPerGrant) {
  const calls = [];
  for (let round = 0; round < callsPerGrant; round += 1) {
    for (const grant of grants) calls.push(() => policy.decide({ tool, grant }, { counters, now: T0 + round }));
  }
  return calls;
}

function tally(results) {
  const codes = {};
  for (const d of results) codes[d.code] = (codes[d.code] ?? 0) + 1;
  return codes;
}

/**
 * One pass: FLUSHALL, `grants` grants x K calls of `tool`, then per master the
 * keys held and the load it took. Checks every grant's count.
 */
async function pass({ policy, store, cluster, masters, owners, tool, grants, label, callsPerGrant = options.callsPerGrant }) {
  await Promise.all(masters.map((m) => m.client.sendCommand(['FLUSHALL'])));
  const names = Array.from({ length: grants }, (_, i) => grantName(i));
  const calls = callsFor(policy, store, tool, names, callsPerGrant);
  const before = await Promise.all(masters.map((m) => snapshot(m.client)));
  const run = await drive(calls, options.concurrency);
  const after = await Promise.all(masters.map((m) => snapshot(m.client)));
  const keys = await Promise.all(masters.map((m) => m.client.sendCommand(['DBSIZE'])));
  const codes = tally(run.results);

  // Every grant's count, read back: exactly `limit` (its first `limit` calls
  // admitted, the rest denied), in the slot its tag hashes to.
  const requests = (grant) => policy.evaluate({ tool, grant }, { now: T0 }).counters;
  let wrongCounts = 0;
  let misplaced = 0;
  const predicted = new Map(masters.map((m) => [m.port, 0]));
  const keysWritten = new Set();
  for (const name of names) {
    for (const request of requests(name)) {
      const key = store.keyOf(request);
      if (keysWritten.has(key)) continue;
      keysWritten.add(key);
      predicted.set(owners[slotOf(key)], predicted.get(owners[slotOf(key)]) + 1);
    }
  }
  const grantKeys = names.map((name) => store.keyOf(requests(name).find((r) => r.scope === 'grant')));
  const counts = await Promise.all(grantKeys.map((key) => cluster.get(key)));
  const expected = Math.min(callsPerGrant, POLICY.tools[tool].limits[0].max);
  counts.forEach((count) => {
    if (Number(count) !== expected) wrongCounts += 1;
  });
  const globalRequest = requests(names[0]).find((r) => r.scope === 'global');
  const globalCount = globalRequest ? Number(await cluster.get(store.keyOf(globalRequest))) : null;
  const globalSlot = globalRequest ? slotOf(store.keyOf(globalRequest)) : null;
  masters.forEach((m, i) => {
    if (keys[i] !== predicted.get(m.port)) misplaced += Math.abs(keys[i] - predicted.get(m.port));
  });

  const loads = masters.map((m, i) => ({ port: m.port, keys: keys[i], predicted_keys: predicted.get(m.port), ...delta(after[i], before[i]) }));
  const scripts = loads.reduce((a, l) => a + l.scripts, 0);
  const usec = loads.reduce((a, l) => a + l.script_usec, 0);
  for (const load of loads) {
    load.share_of_scripts = round(load.scripts / scripts, 4);
    load.share_of_script_time = round(load.script_usec / usec, 4);
    load.usec_per_script = load.scripts > 0 ? round(load.script_usec / load.scripts, 1) : null;
    load.holds_global = globalSlot !== null && owners[globalSlot] === load.port;
  }
  return {
    label,
    tool,
    grants,
    decisions: calls.length,
    seconds: round(run.seconds, 3),
    decisions_per_s: round(calls.length / run.seconds, 0),
    latency: latencySummary(run.latencies),
    codes,
    expected_codes: { allowed: grants * expected, rate_limited: grants * (callsPerGrant - expected) },
    keys_written: keysWritten.size,
    keys_held: keys.reduce((a, b) => a + b, 0),
    wrong_counts: wrongCounts,
    misplaced_keys: misplaced,
    global_count: globalCount,
    global_slot: globalSlot,
    scripts,
    per_shard: loads,
    keys_spread: spread(keys),
    scripts_spread: spread(loads.map((l) => l.scripts)),
  };
}

// The same calls on one plain redis-server (no cluster): what one node does
// on this machine, for comparison.
async function baseline(policy) {
  const server = await startRedis();
  const client = createClient({ url: server.url });
  client.on('error', () => {});
  try {
    await client.connect();
    const store = new RedisCounterStore({ client, prefix: PREFIX, timeoutMs: 10_000 });
    await store.loadScripts();
    const names = Array.from({ length: options.grants }, (_, i) => grantName(i));
    const run = await drive(callsFor(policy, store, 'run', names, options.callsPerGrant), options.concurrency);
    return { grants: options.grants, decisions: run.results.length, decisions_per_s: round(run.results.length / run.seconds, 0), latency: latencySummary(run.latencies), codes: tally(run.results) };
  } finally {
    await client.close().catch(() => {});
    await server.stop();
  }
}

function shardRows(result) {
  return result.per_shard.map((s, i) => [
    `${i + 1} (:${s.port})${s.holds_global ? ' ★ global counter' : ''}`,
    fmt(s.keys),
    pct(s.keys, result.keys_held),
    fmt(s.scripts),
    pct(s.scripts, result.scripts),
    fmt(s.data_commands),
    fmt(s.script_usec / 1000, 1),
    pct(s.script_usec, result.per_shard.reduce((a, l) => a + l.script_usec, 0)),
    s.usec_per_script ?? '',
  ]);
}
const SHARD_HEADER = ['shard (master)', 'keys (DBSIZE)', 'share of keys', 'scripts run', 'share of calls', 'commands (incl. in scripts)', 'script CPU ms', 'share of script CPU', 'µs per script'];

function markdown(report) {
  const { main, steps, global, base } = report;
  const out = [];
  out.push('# Scale-out: Redis Cluster', '');
  out.push(`Local run: ${report.config.masters} masters (no replicas) on one machine (${report.machine.cpus} cores, ${report.machine.cpu_model}, load ${report.machine.loadavg_1m} before), `
    + `node-redis \`createCluster\`, \`RedisCounterStore\` in cluster mode, \`policy.decide()\` with ${report.config.concurrency} calls in flight. `
    + `Client and servers share the cores: decisions/s are this machine's, not a cluster's; the spread of keys and calls over shards carries over.`, '');
  out.push(`## ${fmt(main.grants)} grants × ${report.config.calls_per_grant} calls (per-grant limit ${report.config.limit}: the last call of each grant is denied)`, '');
  out.push(table(['decisions', 'decisions/s', 'p50 ms', 'p99 ms', 'allowed', 'rate_limited', 'other', 'grants with a wrong count'], [[
    fmt(main.decisions), fmt(main.decisions_per_s), main.latency.p50_ms, main.latency.p99_ms, fmt(main.codes.allowed ?? 0), fmt(main.codes.rate_limited ?? 0),
    fmt(main.decisions - (main.codes.allowed ?? 0) - (main.codes.rate_limited ?? 0)), main.wrong_counts,
  ]]), '');
  out.push(table(SHARD_HEADER, shardRows(main)), '');
  out.push(`Keys: ${fmt(main.keys_held)} held = ${fmt(main.keys_written)} written (one bucket key per grant); per shard as CRC16 of the hash tag predicts (${main.misplaced_keys} off). `
    + `Max/mean: keys ${main.keys_spread.max_over_mean}, calls ${main.scripts_spread.max_over_mean}.`, '');
  if (base) {
    out.push(`One plain redis-server (no cluster), same calls: ${fmt(base.decisions_per_s)} decisions/s, p50 ${base.latency.p50_ms} ms, p99 ${base.latency.p99_ms} ms.`, '');
  }
  out.push('## How keys spread as grants grow', '');
  out.push(table(['grants', ...main.per_shard.map((_, i) => `shard ${i + 1} keys`), 'max/mean (keys)', 'min–max share', 'decisions/s'], steps.map((s) => [
    fmt(s.grants),
    ...s.per_shard.map((l) => fmt(l.keys)),
    s.keys_spread.max_over_mean,
    `${pct(s.keys_spread.min, s.keys_held)} – ${pct(s.keys_spread.max, s.keys_held)}`,
    fmt(s.decisions_per_s),
  ])), '');
  out.push(`Slots are split evenly (${report.slots_per_shard.join(' / ')}); grants hash to slots by CRC16, so with few grants the split is lumpy and it evens out as grants grow (max/mean → 1).`, '');
  out.push(`## One global counter: ${fmt(global.grants)} grants × ${report.config.calls_per_grant} calls, each with its grant's counter and one \`scope: "global"\` counter`, '');
  out.push(table(['decisions', 'decisions/s', 'p50 ms', 'p99 ms', 'scripts', 'global count', 'grants with a wrong count'], [[
    fmt(global.decisions), fmt(global.decisions_per_s), global.latency.p50_ms, global.latency.p99_ms, fmt(global.scripts), fmt(global.global_count), global.wrong_counts,
  ]]), '');
  out.push(table(SHARD_HEADER, shardRows(global)), '');
  const hot = global.per_shard.find((s) => s.holds_global);
  out.push(`The global counter is one key, \`${PREFIX}:{global:<counter key>}:…\` (each global counter has a tag of its own), in slot ${global.global_slot}: the shard marked ★ runs a script for every call `
    + `(${fmt(hot?.scripts)} of the ${fmt(global.scripts)} scripts: ${fmt(global.decisions)} for the global counter, the rest for the grants it holds and for charges given back when a grant's limit, reserved after it in slot order, denied). `
    + 'Adding masters spreads the grants, never that key: a global counter\'s throughput is one Redis thread\'s.', '');
  const { one, many } = report;
  const perScript = one.per_shard.find((s) => s.scripts > 0);
  out.push('## One grant against many: the limit of one shard', '');
  out.push(table(['calls', 'from', 'decisions/s', 'p50 ms', 'p99 ms', 'shards that ran scripts', 'busiest shard\'s share'], [one, many].map((r) => [
    fmt(r.decisions), r.grants === 1 ? '1 grant (one slot)' : `${fmt(r.grants)} grants`, fmt(r.decisions_per_s), r.latency.p50_ms, r.latency.p99_ms,
    r.per_shard.filter((s) => s.scripts > 0).length, pct(Math.max(...r.per_shard.map((s) => s.scripts)), r.scripts),
  ])), '');
  out.push(`Every call of one grant goes to the one master that serves its slot. On this machine the client, not Redis, sets the pace, so these two rates say little about a shard's limit; `
    + `what bounds a shard is its one Redis thread: ${perScript?.usec_per_script} µs of script time per call here, a ceiling near ${fmt(perScript?.usec_per_script ? 1e6 / perScript.usec_per_script : null)} scripts/s `
    + 'per shard before network handling (which costs at least as much again), for one grant or one global counter alike.', '');
  return out.join('\n');
}

async function main() {
  const started = performance.now();
  const toolgate = await loadToolgate();
  const policy = toolgate.compile(POLICY);
  const report = { machine: machine(), config: { masters: options.masters, grants: options.grants, steps: options.steps, calls_per_grant: options.callsPerGrant, limit: options.limit, concurrency: options.concurrency, global_grants: options.globalGrants, quick }, note: 'Local: every master, the client and the OS on one machine. Decisions/s are CPU-bound figures for this machine; the per-shard spread carries over to a real cluster.' };
  const cluster = await startRedisCluster({ masters: options.masters });
  let client;
  let masters = [];
  try {
    client = createCluster({ rootNodes: cluster.rootNodes });
    client.on('error', () => {});
    await client.connect();
    masters = await connectMasters(cluster);
    const owners = await slotOwners(masters[0].client);
    report.slots_per_shard = masters.map((m) => owners.filter((p) => p === m.port).length);
    const store = new RedisCounterStore({ client, prefix: PREFIX, timeoutMs: 10_000, cluster: true });
    await store.loadScripts();

    // Warm-up: connections to every master, JIT.
    await pass({ policy, store, cluster: client, masters, owners, tool: 'run', grants: Math.min(200, options.grants), label: 'warm-up' });

    report.steps = [];
    for (const grants of options.steps) {
      const result = await pass({ policy, store, cluster: client, masters, owners, tool: 'run', grants, label: `${grants} grants` });
      report.steps.push(result);
      process.stderr.write(`redis-cluster: ${fmt(grants)} grants: ${fmt(result.decisions_per_s)} decisions/s\n`);
    }
    report.main = report.steps[report.steps.length - 1];
    report.global = await pass({ policy, store, cluster: client, masters, owners, tool: 'run_global', grants: options.globalGrants, label: 'global counter' });
    process.stderr.write(`redis-cluster: global counter: ${fmt(report.global.decisions_per_s)} decisions/s\n`);
    const hotCalls = options.globalGrants * options.callsPerGrant;
    report.one = await pass({ policy, store, cluster: client, masters, owners, tool: 'hot', grants: 1, callsPerGrant: hotCalls, label: 'one grant' });
    report.many = await pass({ policy, store, cluster: client, masters, owners, tool: 'hot', grants: options.globalGrants, label: 'many grants' });
    process.stderr.write(`redis-cluster: one grant ${fmt(report.one.decisions_per_s)} decisions/s, ${fmt(report.many.grants)} grants ${fmt(report.many.decisions_per_s)}/s\n`);
  } finally {
    await Promise.all(masters.map((m) => m.client.close().catch(() => {})));
    await client?.close().catch(() => {});
    await cluster.stop();
  }
  report.base = options.noBaseline ? null : await baseline(policy);
  policy.dispose();
  report.seconds = round((performance.now() - started) / 1000, 1);
  report.machine.loadavg_1m_after = round((await import('node:os')).loadavg()[0], 2);
  const md = markdown(report);
  const { jsonPath, mdPath } = writeResults(options.out, 'scale-redis', report, md);
  process.stdout.write(`${md}\nwrote ${jsonPath} and ${mdPath} (${report.seconds} s)\n`);
}

await main();
