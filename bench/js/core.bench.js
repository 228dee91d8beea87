// WebAssembly core through the JS API: decision latency, compile time and
// WebAssembly heap against policy size, cold start and package size. Prints
// Markdown and writes bench/results/core-js.{json,md}.
// Run: npm run bench  (or: node bench/js/core.bench.js [--quick] [--results DIR])
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync, brotliCompressSync } from 'node:zlib';
import { loadToolgate, MemoryApprovalStore, MemoryCounterStore } from '../../wasm/index.js';
import { flagValue, measure, median, percentile, table, thousands, writeResults } from './measure.js';
import { T0, policyWithTools, typicalCall, typicalPolicy } from './policies.js';

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const resultsDir = path.resolve(flagValue(argv, '--results', fileURLToPath(new URL('../results/', import.meta.url))));
const wasmFile = new URL('../../wasm/dist/toolgate_core.wasm', import.meta.url);

const toolgate = await loadToolgate();
const policy = toolgate.compile(typicalPolicy);
const counters = new MemoryCounterStore();
const approvals = new MemoryApprovalStore();
const timing = { batch: 20, seconds: quick ? 0.2 : 2, minBatches: quick ? 200 : 2000, warmup: quick ? 0.05 : 0.3 };

const results = {};
results.evaluate_typical = await measure(() => policy.evaluate(typicalCall), timing);
results.decide_typical = await measure(() => policy.decide(typicalCall, { counters, approvals }), timing);
const denied = { tool: 'unknown_tool', arguments: {}, now: T0 };
results.decide_default_deny = await measure(() => policy.decide(denied, { counters }), timing);

// Compile time against policy size (the policy of bench/native's BM_CompilePolicy).
const sizes = quick ? [1, 10, 100, 1000] : [1, 10, 100, 1000, 10000];
// Wall time and the process's CPU time (robust on a shared machine; equal on a
// quiet one) per compile + dispose, medians; the growth exponent uses CPU time.
const cpuNow = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};
for (const tools of sizes) {
  const text = policyWithTools(tools);
  const times = [];
  const cpus = [];
  const until = performance.now() + (quick ? 100 : 1000);
  while (times.length < 3 || (performance.now() < until && times.length < 2000)) {
    const start = process.hrtime.bigint();
    const cpu = cpuNow();
    toolgate.compile(text).dispose();
    cpus.push(cpuNow() - cpu);
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  const ms = median(times);
  const cpuMs = median(cpus);
  results[`compile_${tools}_tools`] = { median_ms: ms, cpu_median_ms: cpuMs, runs: times.length, bytes: text.length, us_per_tool: (cpuMs * 1000) / tools };
}
const slope = (key, from, to) => {
  const a = results[`compile_${from}_tools`];
  const b = results[`compile_${to}_tools`];
  return a && b ? Math.log(b[key] / a[key]) / Math.log(to / from) : null;
};
results.compile_growth_exponent = {
  time_1000_10000: slope('cpu_median_ms', 1000, 10000),
  time_100_1000: slope('cpu_median_ms', 100, 1000),
};

// WebAssembly heap held by compiled plans. The façade does not expose the
// engine's memory, so a fresh instance is loaded with `wasmModule` and the
// instance WebAssembly.instantiate returns is kept. Memory only grows (by at
// least what malloc asks for, at most 20 % more): copies of the policy are
// compiled and kept alive, and between the first and the last growth of the
// Memory the added bytes were filled by the copies compiled in between, so
// bytes per plan = added bytes / copies (allocator overhead and fragmentation
// included; the error is about one plan over the copies counted).
async function wasmHeapPerPlan(text, { minAdded, maxCopies }) {
  const module = await WebAssembly.compile(readFileSync(wasmFile));
  const original = WebAssembly.instantiate;
  let instance = null;
  WebAssembly.instantiate = async function (...args) {
    const result = await original.apply(this, args);
    instance = result.instance ?? result;
    return result;
  };
  let engine;
  try {
    engine = await loadToolgate({ wasmModule: module });
  } finally {
    WebAssembly.instantiate = original;
  }
  const memory = instance?.exports?.memory;
  if (!(memory instanceof WebAssembly.Memory)) return null;
  const kept = [];
  const growths = [];
  let size = memory.buffer.byteLength;
  const initial = size;
  while (kept.length < maxCopies) {
    kept.push(engine.compile(text));
    if (memory.buffer.byteLength !== size) {
      size = memory.buffer.byteLength;
      growths.push({ copies: kept.length, bytes: size });
      if (growths.length >= 3 && size - growths[0].bytes >= minAdded) break;
    }
  }
  for (const p of kept) p.dispose();
  if (growths.length < 2) return { initial_bytes: initial, final_bytes: size, copies: kept.length, growths: growths.length, bytes_per_plan: null };
  const first = growths[0];
  const last = growths.at(-1);
  return {
    initial_bytes: initial,
    final_bytes: size,
    copies: kept.length,
    growths: growths.length,
    copies_between: last.copies - first.copies,
    bytes_per_plan: (last.bytes - first.bytes) / (last.copies - first.copies),
  };
}
results.wasm_heap = {};
for (const tools of quick ? [1, 100] : [1, 10, 100, 1000, 10000]) {
  const heap = await wasmHeapPerPlan(policyWithTools(tools), { minAdded: 8 << 20, maxCopies: tools >= 10000 ? 40 : 100000 });
  results.wasm_heap[tools] = heap && { ...heap, bytes_per_tool: heap.bytes_per_plan === null ? null : heap.bytes_per_plan / tools };
}

const heapAt = (tools) => results.wasm_heap[tools]?.bytes_per_plan;
results.compile_growth_exponent.wasm_heap_1000_10000 = heapAt(1000) && heapAt(10000) ? Math.log(heapAt(10000) / heapAt(1000)) / Math.log(10) : null;

// Cold start: a fresh Node process per run (./cold-start-node.js) imports the
// façade, reads the .wasm, compiles and instantiates it, compiles a small
// policy and decides once (`decide` with a MemoryCounterStore; the tool has a
// rate limit), each phase timed apart. ./cold-start.bench.js has the same
// phases in workerd and Chromium, and what V8 compiles in each.
const colds = [];
for (let i = 0; i < (quick ? 3 : 11); i++) {
  const { phases } = JSON.parse(execFileSync(process.execPath, [fileURLToPath(new URL('./cold-start-node.js', import.meta.url))], { encoding: 'utf8' }));
  const wall = (name) => phases[name].wall_ms;
  const cold = {
    import_ms: wall('import'),
    read_ms: wall('read'),
    wasm_compile_ms: wall('compile'),
    instantiate_ms: wall('instantiate'),
    // read + compile + instantiate: what loadToolgate() does in Node.
    load_ms: wall('read') + wall('compile') + wall('instantiate'),
    compile_ms: wall('policy'),
    first_decision_ms: wall('first'),
    cpu_ms: ['read', 'compile', 'instantiate', 'policy', 'first'].reduce((sum, name) => sum + phases[name].cpu_ms, 0),
  };
  cold.instantiate_compile_decide_ms = cold.load_ms + cold.compile_ms + cold.first_decision_ms;
  cold.total_ms = cold.import_ms + cold.instantiate_compile_decide_ms;
  colds.push(cold);
}
const coldMedian = (key) => median(colds.map((c) => c[key]));
results.cold_start_node = Object.fromEntries(Object.keys(colds[0]).map((key) => [key, coldMedian(key)]));
results.cold_start_node.runs = colds.length;

const wasm = readFileSync(wasmFile);
const glue = readFileSync(new URL('../../wasm/dist/toolgate_core.mjs', import.meta.url));
// The façade: every .js module of wasm/ (not the glue in wasm/dist).
const facadeFiles = readdirSync(new URL('../../wasm/', import.meta.url)).filter((f) => f.endsWith('.js')).sort();
const facade = facadeFiles.map((f) => readFileSync(new URL(`../../wasm/${f}`, import.meta.url)));
const gz = (b) => gzipSync(b, { level: 9 }).length;
results.size = {
  wasm_bytes: wasm.length,
  wasm_gzip: gz(wasm),
  wasm_brotli: brotliCompressSync(wasm).length,
  glue_bytes: glue.length,
  glue_gzip: gz(glue),
  facade_files: facadeFiles,
  facade_gzip: facade.reduce((sum, b) => sum + gz(b), 0),
};
results.size.wasm_glue_gzip = results.size.wasm_gzip + results.size.glue_gzip;
results.size.total_gzip = results.size.wasm_glue_gzip + results.size.facade_gzip;

const f = (n, d = 2) => (n === null || n === undefined ? '–' : n.toFixed(d));
const cs = results.cold_start_node;
results.budgets = [
  {
    name: 'WASM `decide` p50, typical call, memory store (JS API, Node)',
    target: '≤ 2 µs',
    measured: `${f(results.decide_typical.p50_us)} µs`,
    met: results.decide_typical.p50_us <= 2,
  },
  {
    name: 'WASM `decide` p50, default deny (JS API, Node)',
    target: '≤ 1 µs',
    measured: `${f(results.decide_default_deny.p50_us)} µs`,
    met: results.decide_default_deny.p50_us <= 1,
  },
  {
    name: '`.wasm` + JS glue, gzip',
    target: '≤ 150 KB (150 000 bytes)',
    measured: `${thousands(results.size.wasm_glue_gzip)} bytes (+ ${thousands(results.size.facade_gzip)} façade)`,
    met: results.size.wasm_glue_gzip <= 150000,
  },
  {
    name: 'cold start in Node: instantiate + compile + first decision',
    target: '≤ 5 ms',
    measured: `${f(cs.instantiate_compile_decide_ms)} ms (CPU ${f(cs.cpu_ms)} ms; + ${f(cs.import_ms)} ms import; phases: bench/js/cold-start.bench.js)`,
    met: cs.instantiate_compile_decide_ms <= 5,
  },
];

const latency = (r) => `p50 ${f(r.p50_us)} µs, p99 ${f(r.p99_us)} µs, ${thousands(r.decisions_per_s)}/s`;
const rows = [
  ['`evaluate`, typical call (5 args, 3 conditions, 1 limit), step one only', latency(results.evaluate_typical)],
  ['`decide`, typical call with memory counter store', latency(results.decide_typical)],
  ['`decide`, default deny', latency(results.decide_default_deny)],
  ['cold start in Node (fresh process, median of ' + cs.runs + '): import the façade', `${f(cs.import_ms)} ms`],
  ['… load the module: read / `WebAssembly.compile` / instantiate the `.wasm`', `${f(cs.load_ms)} ms: ${f(cs.read_ms)} / ${f(cs.wasm_compile_ms)} / ${f(cs.instantiate_ms)} ms`],
  ['… compile a small policy', `${f(cs.compile_ms, 3)} ms`],
  ['… first decision', `${f(cs.first_decision_ms, 3)} ms`],
  ['… instantiate + compile + first decision (the budget)', `**${f(cs.instantiate_compile_decide_ms)} ms** (CPU ${f(cs.cpu_ms)} ms)`],
  ['… total with the import', `${f(cs.total_ms)} ms`],
  ['`.wasm` raw / gzip / brotli', `${thousands(results.size.wasm_bytes)} / ${thousands(results.size.wasm_gzip)} / ${thousands(results.size.wasm_brotli)} bytes`],
  ['JS glue gzip; façade gzip (' + facadeFiles.join(', ') + ')', `${thousands(results.size.glue_gzip)}; ${thousands(results.size.facade_gzip)} bytes`],
  ['`.wasm` + glue, gzip', `${(results.size.wasm_glue_gzip / 1024).toFixed(1)} KiB (${thousands(results.size.wasm_glue_gzip)} bytes)`],
];
const compileRows = sizes.map((tools) => {
  const c = results[`compile_${tools}_tools`];
  const heap = results.wasm_heap[tools];
  return [thousands(tools), thousands(c.bytes), f(c.cpu_median_ms, 3), f(c.median_ms, 3), f(c.us_per_tool), heap?.bytes_per_plan ? thousands(heap.bytes_per_plan) : '–',
    heap?.bytes_per_tool ? thousands(heap.bytes_per_tool) : '–'];
});
const g = results.compile_growth_exponent;
const markdown = [
  `### WebAssembly core via the JS API (Node ${process.versions.node})`,
  '',
  table(['figure', 'measured'], rows),
  '',
  '#### Compile time and WebAssembly heap against policy size',
  '',
  'Each tool: one `deny_if` condition and a `rate_limit` (as `BM_CompilePolicy`). Time: `toolgate.compile(text)` + `dispose()`, median of the process\'s CPU time (the exponent uses it) and of wall time. '
    + 'Heap: bytes of WebAssembly memory per compiled plan kept alive (copies compiled until the `WebAssembly.Memory` has grown '
    + 'three times and by ≥ 8 MiB; added bytes / copies in between; includes allocator overhead; peak during compile is not visible this way, see the native table).',
  '',
  table(['tools', 'policy bytes', 'compile ms (CPU)', 'wall ms', 'µs per tool (CPU)', 'heap bytes per plan', 'heap bytes per tool'], compileRows),
  '',
  `Growth exponent of compile time (slope of log CPU time vs log tools; 1 = linear): ${f(g.time_1000_10000, 3)} from 1 000 to 10 000 tools, ${f(g.time_100_1000, 3)} from 100 to 1 000; of the heap per plan, ${f(g.wasm_heap_1000_10000, 3)} from 1 000 to 10 000.`,
].join('\n');
console.log(markdown);
results.config = { node: process.versions.node, quick, timing };
writeResults(resultsDir, 'core-js', results, markdown);
void percentile;
