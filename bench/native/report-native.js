// Merges the native benchmark's three outputs into bench/results/core-native.{json,md}:
// Google Benchmark's JSON (--benchmark_out), --percentiles and --compile-scaling.
//
//   node bench/native/report-native.js --gbench F --percentiles F --compile F [--results DIR] [--quick]
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { flagValue, table, thousands, writeResults } from '../js/measure.js';

const argv = process.argv.slice(2);
const read = (flag) => {
  const file = flagValue(argv, flag, null);
  if (!file) return null;
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    console.error(`report-native: cannot read ${file}: ${error.message}`);
    return null;
  }
};
const gbench = read('--gbench');
const percentiles = read('--percentiles');
const compile = read('--compile');
const resultsDir = path.resolve(flagValue(argv, '--results', fileURLToPath(new URL('../results/', import.meta.url))));

// Google Benchmark: per benchmark, the median aggregate when repetitions ran, else the single run.
const gb = new Map();
for (const b of gbench?.benchmarks ?? []) {
  const name = b.run_name ?? b.name;
  if (b.run_type === 'aggregate' && b.aggregate_name !== 'median') continue;
  if (b.run_type !== 'aggregate' && gb.has(name) && gb.get(name).aggregate) continue;
  const scale = { ns: 1, us: 1e3, ms: 1e6, s: 1e9 }[b.time_unit] ?? 1;
  gb.set(name, {
    aggregate: b.run_type === 'aggregate',
    cpu_ns: b.cpu_time * scale,
    real_ns: b.real_time * scale,
    decisions_per_s: b['decisions/s'] ?? null,
    label: b.label ?? null,
  });
}
const repetitions = gbench?.benchmarks?.find((b) => b.run_type === 'aggregate') ? gbench.benchmarks[0].repetitions : 1;
const pct = new Map((percentiles?.cases ?? []).map((c) => [c.name, c]));

const f = (n, d = 0) => (typeof n === 'number' && Number.isFinite(n) ? (d === 0 ? thousands(n) : n.toFixed(d)) : '–');
const row = (label, gbName, pctName) => {
  const g = gb.get(gbName);
  const p = pct.get(pctName);
  return [label, f(g?.cpu_ns), f(g?.decisions_per_s), f(p?.p50_ns), f(p?.p99_ns)];
};
const header = (first) => [first, 'ns/decision (GB median)', 'decisions/s (GB)', 'p50 ns', 'p99 ns'];

const typical = gb.get('BM_DecideTypicalCall');
const budgets = [{
  name: 'native decisions/s, typical call, one core (`BM_DecideTypicalCall`, median)',
  target: '≥ 2 M/s',
  measured: typical?.decisions_per_s ? `${(typical.decisions_per_s / 1e6).toFixed(2)} M/s (${f(typical.cpu_ns)} ns)` : 'not measured',
  met: typical?.decisions_per_s ? typical.decisions_per_s >= 2e6 : null,
}];

const sections = [];
const context = gbench?.context;
sections.push('### Native core (Google Benchmark and a percentile loop)');
sections.push('');
sections.push(`${context ? `${context.num_cpus} CPUs at ${context.mhz_per_cpu} MHz, load average ${context.load_avg?.map((l) => l.toFixed(2)).join(' ') ?? '?'} at start; ` : ''}`
  + `Google Benchmark: CPU time per decision, median of ${repetitions} repetition${repetitions === 1 ? '' : 's'}; decisions/s from the same runs. `
  + 'p50/p99: our own loop (`toolgate_bench --percentiles`) timing batches of decisions that last about 1 µs '
  + '(batch time / batch size, the clock\'s cost subtracted). A decision is `evaluate` and, when the call has limits, '
  + '`finish` with the counter states in hand. "from text" adds `read_call` (parsing the call\'s JSON), as every host\'s wire path does.');
sections.push('');
sections.push(table(header('typical call (5 args, 3 conditions, 1 limit)'), [
  row('pre-parsed (`BM_DecideTypicalCall`)', 'BM_DecideTypicalCall', 'typical'),
  row('from JSON text (`BM_DecideTypicalCallFromText`)', 'BM_DecideTypicalCallFromText', 'typical_from_text'),
  row('from the binary call form, read in place (`BM_DecideTypicalCallFromBuffer`: the WebAssembly path without the boundary)', 'BM_DecideTypicalCallFromBuffer', 'typical_from_buffer'),
]));
sections.push('');
sections.push('Policy size × arguments: every tool has a `deny_if` entry with 3 conditions on `args.a0..a2` and a fixed limit; the call goes to the tool in the middle (`tool_<N/2>`); arguments of mixed types.');
sections.push('');
const matrixRows = [];
for (const name of [...pct.keys(), ...gb.keys()].filter((n, i, all) => all.indexOf(n) === i)) {
  const m = /^(?:BM_Decide\/)?matrix\/(tools:\d+\/args:\d+)$/.exec(name);
  if (m && !matrixRows.includes(m[1])) matrixRows.push(m[1]);
}
sections.push(table(['tools / arguments', 'ns/decision (GB)', 'decisions/s (GB)', 'p50 ns', 'p99 ns', 'from text: ns (GB)', 'from text: p50 ns', 'from text: p99 ns'],
  matrixRows.map((key) => {
    const g = gb.get(`BM_Decide/matrix/${key}`);
    const p = pct.get(`matrix/${key}`);
    const gt = gb.get(`BM_Decide/matrix_from_text/${key}`);
    const pt = pct.get(`matrix_from_text/${key}`);
    return [key, f(g?.cpu_ns), f(g?.decisions_per_s), f(p?.p50_ns), f(p?.p99_ns), f(gt?.cpu_ns), f(pt?.p50_ns), f(pt?.p99_ns)];
  })));
sections.push('');
sections.push('One condition per operator of the spec (none holds, so each runs to the end); the typical call plus `path` (a 30-character string) and `tags` (5 strings). `in`/`not_in` lists have 10 strings, the match (for `not_in`) last.');
sections.push('');
const names = (prefix) => [...new Set([...pct.keys(), ...[...gb.keys()].map((n) => n.replace(/^BM_Decide\//, ''))])].filter((n) => n.startsWith(prefix));
sections.push(table(header('operator'), names('operator/').map((n) => row(`\`${n.slice('operator/'.length)}\``, `BM_Decide/${n}`, n))));
sections.push('');
sections.push('Limits (never reached; counter states in hand, current 10 and previous 20), on the typical call:');
sections.push('');
sections.push(table(header('algorithm / limits'), names('limits/').map((n) => row(n.slice('limits/'.length), `BM_Decide/${n}`, n))));
sections.push('');

let growth = null;
if (compile) {
  growth = compile.growth_exponent;
  sections.push('#### Compile time and memory against policy size (native)');
  sections.push('');
  sections.push('Each tool: one `deny_if` condition and a `rate_limit` (`policy_with_tools`, as `BM_CompilePolicy`). Time: median thread CPU time of repeated '
    + '`compile_policy` calls (the exponent uses it; wall time beside it), and `nlohmann::json::parse` of the same text for reference. Memory: live heap bytes counted by a replaced global `operator new`/`delete` in the benchmark binary '
    + '(`malloc_usable_size`): held = after compiling with the plan kept alive (diagnostics dropped) minus before; peak = highest live '
    + 'bytes during the compile minus before (includes the parsed JSON document and source map).');
  sections.push('');
  sections.push(table(['tools', 'policy bytes', 'compile ms (CPU, median)', 'wall ms', 'nlohmann parse alone ms', 'µs per tool', 'plan bytes held', 'bytes per tool', 'peak bytes during compile', 'allocations'],
    compile.rows.map((r) => [thousands(r.tools), thousands(r.policy_bytes), f(r.median_ms, 3), f(r.wall_median_ms, 3), f(r.nlohmann_parse_ms, 3), f(r.us_per_tool, 2), thousands(r.plan_bytes),
      thousands(r.plan_bytes_per_tool), thousands(r.peak_bytes), thousands(r.allocations)])));
  sections.push('');
  sections.push(`Growth exponent k (cost ∝ tools^k; 1 = linear), slope of log cost vs log tools from 1 000 to 10 000 tools: `
    + `**time ${f(growth.time_1000_10000, 2)}**, plan bytes ${f(growth.plan_bytes_1000_10000, 2)}, peak bytes ${f(growth.peak_bytes_1000_10000, 2)} `
    + `(from 100 to 1 000: time ${f(growth.time_100_1000, 2)}, plan bytes ${f(growth.plan_bytes_100_1000, 2)}).`);
  const leaks = compile.rows.filter((r) => r.leaked_bytes !== 0);
  if (leaks.length) sections.push(`\nHeap not returned after freeing the plan: ${leaks.map((r) => `${r.tools} tools: ${r.leaked_bytes} bytes`).join(', ')}.`);
  sections.push('');
}
const gbCompile = [...gb.entries()].filter(([n]) => n.startsWith('BM_CompilePolicy/'));
if (gbCompile.length) {
  sections.push(`Google Benchmark \`BM_CompilePolicy\` (CPU time, median): ${gbCompile.map(([n, g]) => `${thousands(Number(n.split('/')[1]))} tools ${f(g.cpu_ns / 1e6, 3)} ms`).join(', ')}.`);
}
const markdown = sections.join('\n');
console.log(markdown);
writeResults(resultsDir, 'core-native', {
  quick: argv.includes('--quick'),
  google_benchmark: Object.fromEntries(gb),
  google_benchmark_context: context ?? null,
  percentiles: percentiles ?? null,
  compile: compile ?? null,
  budgets,
}, markdown);
