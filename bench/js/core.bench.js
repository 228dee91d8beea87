// WebAssembly core through the JS API: decision latency, compile time, cold
// start and package size. Prints a table and writes bench/results/core-js.json.
// Run: npm run bench  (or: node bench/js/core.bench.js [--quick])
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { gzipSync, brotliCompressSync } from 'node:zlib';
import { loadToolgate, MemoryApprovalStore, MemoryCounterStore } from '../../wasm/index.js';

const quick = process.argv.includes('--quick');
const T0 = Date.UTC(2026, 0, 1);

// The "typical call" of the budgets: 5 arguments, 3 conditions, 1 limit.
const typicalPolicy = {
  version: '1',
  default: 'deny',
  tools: {
    create_refund: {
      require: [{ path: 'args.currency', op: 'in', value: ['usd', 'eur'] }],
      deny_if: [{ conditions: [{ path: 'args.amount', op: 'gt', value: 500 }, { path: 'grant.role', op: 'neq', value: 'admin' }] }],
      limits: [{ counter: 'refunds', window: 'minute', max: 1e9 }],
    },
  },
};
const typicalCall = {
  tool: 'create_refund',
  arguments: { amount: 120, currency: 'usd', charge: 'ch_123', reason: 'duplicate', notify: true },
  grant: { id: 'alice', role: 'support' },
  now: T0,
};

function policyWithTools(count) {
  const tools = {};
  for (let i = 0; i < count; i++) {
    tools[`tool_${i}`] = { deny_if: [{ conditions: [{ path: 'args.n', op: 'gt', value: i }] }], rate_limit: '10/minute' };
  }
  return JSON.stringify({ version: '1', default: 'deny', tools });
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

// Per-call latency from batches of `batch` calls (timer resolution is too
// coarse for single sub-microsecond calls); returns µs per call.
async function measure(fn, { batches, batch }) {
  for (let i = 0; i < batches / 10; i++) for (let j = 0; j < batch; j++) await fn(); // warm up
  const samples = [];
  for (let i = 0; i < batches; i++) {
    const start = process.hrtime.bigint();
    for (let j = 0; j < batch; j++) await fn();
    samples.push(Number(process.hrtime.bigint() - start) / 1000 / batch);
  }
  samples.sort((a, b) => a - b);
  return { p50_us: percentile(samples, 50), p99_us: percentile(samples, 99) };
}

const toolgate = await loadToolgate();
const policy = toolgate.compile(typicalPolicy);
const counters = new MemoryCounterStore();
const approvals = new MemoryApprovalStore();
const sizes = { batches: quick ? 200 : 5000, batch: 20 };

const results = {};
results.evaluate_typical = await measure(() => policy.evaluate(typicalCall), sizes);
results.decide_typical = await measure(() => policy.decide(typicalCall, { counters, approvals }), sizes);
const denied = { tool: 'unknown_tool', arguments: {}, now: T0 };
results.decide_default_deny = await measure(() => policy.decide(denied, { counters }), sizes);

for (const tools of quick ? [1, 100] : [1, 100, 1000, 10000]) {
  const text = policyWithTools(tools);
  const runs = tools >= 10000 ? 3 : quick ? 5 : 20;
  const times = [];
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint();
    toolgate.compile(text).dispose();
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  times.sort((a, b) => a - b);
  results[`compile_${tools}_tools`] = { median_ms: percentile(times, 50), bytes: text.length };
}

// Cold start: a fresh Node process loads the module, compiles a small policy and decides once.
const coldScript = `
  const t0 = performance.now();
  const { loadToolgate } = await import(${JSON.stringify(new URL('../../wasm/index.js', import.meta.url).href)});
  const t1 = performance.now();
  const tg = await loadToolgate();
  const p = tg.compile(${JSON.stringify(JSON.stringify({ version: '1', default: 'deny', tools: { run: { rate_limit: '10/minute' } } }))});
  const t2 = performance.now();
  p.evaluate({ tool: 'run' });
  const t3 = performance.now();
  console.log(JSON.stringify({ import_ms: t1 - t0, instantiate_compile_ms: t2 - t1, first_decision_ms: t3 - t2 }));`;
const colds = [];
for (let i = 0; i < (quick ? 2 : 7); i++) {
  colds.push(JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', coldScript], { encoding: 'utf8' })));
}
const median = (key) => colds.map((c) => c[key]).sort((a, b) => a - b)[Math.floor(colds.length / 2)];
results.cold_start_node = {
  import_ms: median('import_ms'),
  instantiate_compile_ms: median('instantiate_compile_ms'),
  first_decision_ms: median('first_decision_ms'),
};

const wasm = readFileSync(new URL('../../wasm/dist/toolgate_core.wasm', import.meta.url));
const glue = readFileSync(new URL('../../wasm/dist/toolgate_core.mjs', import.meta.url));
const facade = ['index.js', 'errors.js', 'memory-store.js'].map((f) => readFileSync(new URL(`../../wasm/${f}`, import.meta.url)));
const gz = (b) => gzipSync(b, { level: 9 }).length;
results.size = {
  wasm_bytes: wasm.length,
  wasm_gzip: gz(wasm),
  wasm_brotli: brotliCompressSync(wasm).length,
  glue_bytes: glue.length,
  glue_gzip: gz(glue),
  facade_gzip: facade.reduce((sum, b) => sum + gz(b), 0),
};
results.size.total_gzip = results.size.wasm_gzip + results.size.glue_gzip + results.size.facade_gzip;

const f = (n, d = 2) => n.toFixed(d);
const rows = [
  ['evaluate, typical call (5 args, 3 conditions, 1 limit), step one only', `p50 ${f(results.evaluate_typical.p50_us)} µs, p99 ${f(results.evaluate_typical.p99_us)} µs`],
  ['decide, typical call with memory counter store', `p50 ${f(results.decide_typical.p50_us)} µs, p99 ${f(results.decide_typical.p99_us)} µs`],
  ['decide, default deny', `p50 ${f(results.decide_default_deny.p50_us)} µs, p99 ${f(results.decide_default_deny.p99_us)} µs`],
  ...Object.entries(results)
    .filter(([k]) => k.startsWith('compile_'))
    .map(([k, v]) => [`compile ${k.split('_')[1]} tools (${(v.bytes / 1024).toFixed(0)} KiB)`, `${f(v.median_ms)} ms`]),
  ['cold start in Node: instantiate + compile small policy', `${f(results.cold_start_node.instantiate_compile_ms)} ms`],
  ['cold start in Node: first decision', `${f(results.cold_start_node.first_decision_ms, 3)} ms`],
  ['.wasm raw / gzip / brotli', `${results.size.wasm_bytes} / ${results.size.wasm_gzip} / ${results.size.wasm_brotli} bytes`],
  ['JS glue + façade gzip', `${results.size.glue_gzip} + ${results.size.facade_gzip} bytes`],
  ['total gzip (.wasm + glue + façade)', `${(results.size.total_gzip / 1024).toFixed(1)} KiB`],
];
console.log('| WebAssembly core via the JS API (Node ' + process.versions.node + ') | figure |\n|---|---|');
for (const [name, value] of rows) console.log(`| ${name} | ${value} |`);
mkdirSync(new URL('../results/', import.meta.url), { recursive: true });
writeFileSync(new URL('../results/core-js.json', import.meta.url), JSON.stringify(results, null, 2));
