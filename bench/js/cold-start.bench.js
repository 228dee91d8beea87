// Cold start of the WebAssembly core, phase by phase, in each runtime it runs
// in: Node (a fresh process per run), workerd (a fresh Miniflare per run) and
// headless Chromium (a fresh browser context per run). Prints Markdown and
// writes bench/results/cold-start.{json,md}.
//
//   node bench/js/cold-start.bench.js [--quick] [--runs N] [--only node,workerd,chromium] [--results DIR]
//                                     [--baseline CHECKOUT]
//
// Phases: read/fetch the .wasm's bytes, WebAssembly.compile, instantiate
// (loadToolgate({ wasmModule }): the instance, the glue's start-up and embind's
// registrations), compile a small policy, the first decision (a `decide` with a
// MemoryCounterStore: the call has a rate limit). Medians over the runs. In
// Node also the process's CPU time per phase (steadier than wall time on a
// shared machine) and how many bytes of WebAssembly functions V8 compiled in
// each phase (it compiles a function the first time it runs). In workerd the
// .wasm is compiled when the worker starts (a CompiledWasm module): the
// request-side phases are timed inside the worker, and toolgate's Workers
// entry (worker/workers.js) loads and warms the engine and compiles its
// policy at startup, which is measured too, beside the engine alone at startup
// (the entry before) and the core loaded in the request (bench/README.md).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { flagValue, median, table, writeResults } from './measure.js';

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const runs = Number(flagValue(argv, '--runs', quick ? '3' : '11'));
const only = new Set(flagValue(argv, '--only', 'node,workerd,chromium').split(','));
const root = fileURLToPath(new URL('../../', import.meta.url));
const resultsDir = path.resolve(flagValue(argv, '--results', path.join(root, 'bench/results')));
const nodeChild = fileURLToPath(new URL('./cold-start-node.js', import.meta.url));
const baselineRoot = flagValue(argv, '--baseline', null);
const baselineChild = baselineRoot ? path.resolve(baselineRoot, 'bench/js/cold-start-node.js') : null;
if (baselineChild && !existsSync(baselineChild)) throw new Error(`--baseline: no ${baselineChild}`);
const wasmPath = path.join(root, 'wasm/dist/toolgate_core.wasm');
const PHASES = ['read', 'compile', 'instantiate', 'policy', 'first'];
const progress = (text) => process.stderr.write(text);

const medianOf = (list, pick) => {
  const values = list.map(pick).filter((v) => typeof v === 'number' && Number.isFinite(v));
  return values.length ? median(values) : null;
};
const sumPhases = (phases, names, key) => names.reduce((sum, name) => sum + phases[name][key], 0);
const results = { config: { quick, runs, node: process.versions.node, wasm_bytes: readFileSync(wasmPath).length } };

// --- Node ---------------------------------------------------------------------

// Bytes of WebAssembly function bodies V8 compiled by the end of each phase
// (--trace-wasm-compilation-times prints one line per function compiled, at
// exit), from processes stopped after each phase; the differences are per phase.
function compiledUpTo(phase, extra = [], child = nodeChild) {
  const out = execFileSync(process.execPath, ['--trace-wasm-compilation-times', child, '--stop-after', phase, ...extra], { encoding: 'utf8', maxBuffer: 64 << 20 });
  let functions = 0;
  let bytes = 0;
  const tiers = {};
  for (const match of out.matchAll(/Compiled function \S+ using (\w+).*?bodysize (\d+)/g)) {
    functions += 1;
    bytes += Number(match[2]);
    tiers[match[1]] = (tiers[match[1]] ?? 0) + 1;
  }
  return { functions, bytes, tiers };
}

// With --baseline, the baseline's child runs right after each of ours.
function nodeRuns(extra = []) {
  const list = [];
  const baseline = [];
  for (let i = 0; i < runs; i++) {
    list.push(JSON.parse(execFileSync(process.execPath, [nodeChild, ...extra], { encoding: 'utf8' })));
    if (baselineChild) baseline.push(JSON.parse(execFileSync(process.execPath, [baselineChild, ...extra], { encoding: 'utf8' })));
    progress('.');
  }
  return { list, baseline };
}

function compiledPerPhase(child) {
  const compiled = {};
  let before = { functions: 0, bytes: 0 };
  for (const phase of PHASES) {
    const upTo = compiledUpTo(phase, [], child);
    compiled[phase] = { functions: upTo.functions - before.functions, bytes: upTo.bytes - before.bytes, tiers: upTo.tiers };
    before = upTo;
  }
  return compiled;
}

function nodeSummary(list) {
  const phases = {};
  for (const name of ['import', ...PHASES, 'second']) {
    phases[name] = { wall_ms: medianOf(list, (r) => r.phases[name].wall_ms), cpu_ms: medianOf(list, (r) => r.phases[name].cpu_ms) };
  }
  return {
    runs: list.length,
    decisions: [...new Set(list.map((r) => r.decision))],
    phases,
    // The budget's sum, per run, then the median (not the sum of medians).
    total_ms: medianOf(list, (r) => sumPhases(r.phases, PHASES, 'wall_ms')),
    total_cpu_ms: medianOf(list, (r) => sumPhases(r.phases, PHASES, 'cpu_ms')),
    with_import_ms: medianOf(list, (r) => sumPhases(r.phases, ['import', ...PHASES], 'wall_ms')),
  };
}

if (only.has('node')) {
  progress('node ');
  const cold = nodeRuns();
  results.node = nodeSummary(cold.list);
  progress(' warm ');
  const warm = nodeRuns(['--warm']);
  results.node_warm = nodeSummary(warm.list);
  results.node.compiled = compiledPerPhase(nodeChild);
  if (baselineChild) {
    results.node_baseline = { root: path.resolve(baselineRoot), ...nodeSummary(cold.baseline), compiled: compiledPerPhase(baselineChild) };
    results.node_baseline_warm = nodeSummary(warm.baseline);
  }
  progress('\n');
}

// --- workerd (Miniflare) --------------------------------------------------------

async function workerdRuns() {
  const { Miniflare } = await import('miniflare');
  const { moduleGraph } = await import('../../tests/js/workerd-modules.js');
  const graphs = {
    empty: await moduleGraph('bench/workerd/empty.worker.js'),
    imports: await moduleGraph('bench/workerd/cold-start.worker.js'),
    toolgate: await moduleGraph('bench/workerd/cold-start.worker.js'),
    engine: await moduleGraph('bench/workerd/cold-start-engine.worker.js'),
    startup: await moduleGraph('bench/workerd/cold-start-startup.worker.js'),
  };
  const { POLICY } = await import('../workerd/cold-start-request.js');
  const run = async (kind) => {
    const t0 = performance.now();
    const mf = new Miniflare({ modulesRoot: root, modules: graphs[kind], bindings: { MODE: kind, POLICY }, compatibilityDate: '2025-01-01' });
    try {
      await mf.ready;
      const t1 = performance.now();
      const first = await (await mf.dispatchFetch('http://localhost/?clock')).json();
      const t2 = performance.now();
      const second = await (await mf.dispatchFetch('http://localhost/')).json();
      return { kind, ready_ms: t1 - t0, first_request_ms: t2 - t1, first, second };
    } finally {
      await mf.dispose();
    }
  };
  // The first Miniflare of a process pays for Miniflare's own start: discarded.
  await run('empty');
  const list = [];
  const rounds = quick ? 2 : Math.max(3, Math.min(runs, 9));
  for (let i = 0; i < rounds; i++) {
    for (const kind of ['empty', 'imports', 'toolgate', 'engine', 'startup']) {
      list.push(await run(kind));
      progress('.');
    }
  }
  const of = (kind, pick) => medianOf(list.filter((r) => r.kind === kind), pick);
  const clockSteps = list.filter((r) => r.kind !== 'empty' && r.kind !== 'imports').map((r) => r.first.clock_step_ms);
  const request = (kind) => ({
    instantiate_ms: of(kind, (r) => r.first.instantiate_ms),
    compile_ms: of(kind, (r) => r.first.compile_ms),
    first_decision_ms: of(kind, (r) => r.first.first_decision_ms),
    total_ms: of(kind, (r) => r.first.total_ms),
    second_request_total_ms: of(kind, (r) => r.second.total_ms),
    first_request_outside_ms: of(kind, (r) => r.first_request_ms),
    ready_ms: of(kind, (r) => r.ready_ms),
  });
  return {
    rounds,
    clock_step_ms: medianOf(clockSteps, (s) => s),
    clock_advances: clockSteps.every((s) => typeof s === 'number' && s > 0),
    decisions: [...new Set(list.filter((r) => r.first.decision).map((r) => r.first.decision))],
    // The core loaded in the first request: loadToolgate({ wasmModule }) there.
    in_request: request('toolgate'),
    // The engine loaded and warmed at module scope, the policy compiled in
    // the request (worker/workers.js before it built its handler at startup).
    engine_at_startup: {
      ...request('engine'),
      engine_ready_before_request: list.filter((r) => r.kind === 'engine').every((r) => r.first.engine_ready_before_request),
      startup_warm_inside_ms: of('engine', (r) => r.first.startup_warm_ms),
    },
    // The engine loaded and warmed and the POLICY binding compiled and warmed
    // at module scope (worker/workers.js).
    at_startup: {
      ...request('startup'),
      engine_ready_before_request: list.filter((r) => r.kind === 'startup').every((r) => r.first.engine_ready_before_request),
      policy_built_at_startup: list.filter((r) => r.kind === 'startup').every((r) => r.first.policy_built_at_startup),
      startup_warm_inside_ms: of('startup', (r) => r.first.startup_warm_ms),
    },
    ready_empty_ms: of('empty', (r) => r.ready_ms),
    ready_imports_ms: of('imports', (r) => r.ready_ms),
    first_request_imports_ms: of('imports', (r) => r.first_request_ms),
    runs: list,
  };
}

if (only.has('workerd')) {
  progress('workerd ');
  results.workerd = await workerdRuns();
  progress('\n');
}

// --- Chromium (headless, playwright-core) ---------------------------------------

// The page's script: the phases of the Node child, with fetch for read; then,
// apart, loadToolgate({ wasmUrl }) as the playground does (fetch, streaming
// compile and instantiate in one).
const PAGE = `<!doctype html><meta charset="utf-8"><script type="module">
const mode = new URL(location.href).searchParams.get('mode');
const t = [performance.now()];
const { loadToolgate, MemoryCounterStore } = await import('/wasm/index.js');
t.push(performance.now());
let toolgate;
const phases = {};
if (mode === 'phases') {
  const bytes = await (await fetch('/wasm/dist/toolgate_core.wasm')).arrayBuffer();
  t.push(performance.now());
  const wasmModule = await WebAssembly.compile(bytes);
  t.push(performance.now());
  toolgate = await loadToolgate({ wasmModule });
  t.push(performance.now());
  Object.assign(phases, { import: t[1] - t[0], read: t[2] - t[1], compile: t[3] - t[2], instantiate: t[4] - t[3] });
} else {
  toolgate = await loadToolgate({ wasmUrl: '/wasm/dist/toolgate_core.wasm' });
  t.push(performance.now());
  Object.assign(phases, { import: t[1] - t[0], streaming_load: t[2] - t[1] });
}
const a = performance.now();
const policy = toolgate.compile(JSON.stringify({ version: '1', default: 'deny', tools: { run: { rate_limit: '10/minute' }, read_file: {}, delete_file: { action: 'deny' } } }));
const b = performance.now();
const decision = await policy.decide({ tool: 'run', arguments: {}, grant: 'alice', now: Date.UTC(2026, 0, 1) }, { counters: new MemoryCounterStore() });
const c = performance.now();
Object.assign(phases, { policy: b - a, first: c - b });
window.__coldStart = { phases, decision: decision.decision };
</script>`;

async function chromiumRuns() {
  const { chromiumMissing, launchChromium, startStaticServer } = await import('../../tests/js/browser-helpers.js');
  const missing = chromiumMissing();
  if (missing) return { skipped: missing };
  // Cacheable responses, so a second visit in the same context can use the
  // HTTP cache (and the code cache V8 keeps beside it for a streamed .wasm).
  const server = await startStaticServer(root, { files: { '/cold-start.html': PAGE }, headers: { 'cache-control': 'max-age=3600' } });
  const browser = await launchChromium();
  try {
    const visit = async (page, mode) => {
      await page.goto(`${server.origin}/cold-start.html?mode=${mode}`);
      await page.waitForFunction(() => window.__coldStart, null, { timeout: 60_000 });
      return page.evaluate(() => window.__coldStart);
    };
    const list = [];
    for (let i = 0; i < runs; i++) {
      for (const mode of ['phases', 'streaming']) {
        const context = await browser.newContext();
        try {
          const page = await context.newPage();
          const first = await visit(page, mode);
          // A second visit in the same context: HTTP cache, a new instance.
          const repeat = mode === 'streaming' ? await visit(page, mode) : null;
          list.push({ mode, first, repeat });
        } finally {
          await context.close();
        }
      }
      progress('.');
    }
    const of = (mode, pick) => medianOf(list.filter((r) => r.mode === mode), pick);
    const phases = {};
    for (const name of ['import', ...PHASES]) phases[name] = of('phases', (r) => r.first.phases[name]);
    return {
      version: browser.version(),
      runs: list.length / 2,
      decisions: [...new Set(list.map((r) => r.first.decision))],
      phases,
      total_ms: of('phases', (r) => PHASES.reduce((sum, name) => sum + r.first.phases[name], 0)),
      streaming: {
        load_ms: of('streaming', (r) => r.first.phases.streaming_load),
        policy_ms: of('streaming', (r) => r.first.phases.policy),
        first_ms: of('streaming', (r) => r.first.phases.first),
        total_ms: of('streaming', (r) => r.first.phases.streaming_load + r.first.phases.policy + r.first.phases.first),
        repeat_load_ms: of('streaming', (r) => r.repeat.phases.streaming_load),
        repeat_total_ms: of('streaming', (r) => r.repeat.phases.streaming_load + r.repeat.phases.policy + r.repeat.phases.first),
      },
      runs_raw: list,
    };
  } finally {
    await browser.close();
    await server.close();
  }
}

if (only.has('chromium')) {
  progress('chromium ');
  results.chromium = existsSync(wasmPath) ? await chromiumRuns() : { skipped: 'no wasm/dist' };
  progress('\n');
}

// --- Report -------------------------------------------------------------------

const f = (n, d = 2) => (typeof n === 'number' && Number.isFinite(n) ? n.toFixed(d) : '–');
const kib = (bytes) => `${(bytes / 1024).toFixed(1)} KiB`;
const budgets = [];
const sections = [`### Cold start, phase by phase (median of ${runs} runs per runtime; the \`.wasm\` is ${kib(results.config.wasm_bytes)})`, ''];

if (results.node) {
  const n = results.node;
  const w = results.node_warm;
  // The Node budget is core-js's (bench/js/core.bench.js runs the same child).
  const row = (label, name, compiledBytes) => [label, `${f(n.phases[name].wall_ms)} ms`, `${f(n.phases[name].cpu_ms)} ms`,
    compiledBytes ? `${n.compiled[name].functions} functions, ${kib(n.compiled[name].bytes)}` : ''];
  sections.push(
    `#### Node ${process.versions.node} (a fresh process per run)`,
    '',
    table(['phase', 'wall', 'CPU', 'WebAssembly compiled by V8 in the phase'], [
      row('import the façade and the glue (JS only; not in the budget)', 'import', false),
      row('read the `.wasm`', 'read', false),
      row('`WebAssembly.compile` (decode and validate; functions are compiled on first call)', 'compile', true),
      row('instantiate: `loadToolgate({ wasmModule })` (instance, glue start-up, embind registrations)', 'instantiate', true),
      row('compile a 3-tool policy', 'policy', true),
      row('first `decide` (memory counter store)', 'first', true),
      ['**read + compile + instantiate + policy + first decision** (the budget of `core-js`)', `**${f(n.total_ms)} ms**`, `${f(n.total_cpu_ms)} ms`, ''],
      row('second `decide`, for comparison', 'second', false),
      ['with `loadToolgate({ wasmModule, warm: true })`: load and warm', `${f(w.phases.instantiate.wall_ms)} ms`, `${f(w.phases.instantiate.cpu_ms)} ms`, ''],
      ['… then compile the policy + first decision', `${f(w.phases.policy.wall_ms + w.phases.first.wall_ms)} ms`, `${f(w.phases.policy.cpu_ms + w.phases.first.cpu_ms)} ms`, ''],
    ]),
    '',
  );
  const b = results.node_baseline;
  if (b) {
    // Ours beside the baseline's, run for run in turn (medians of each side).
    const side = (x, name) => `${f(x.phases[name].wall_ms)} / ${f(x.phases[name].cpu_ms)} ms`;
    const fns = (x, name) => `${x.compiled[name].functions}, ${kib(x.compiled[name].bytes)}`;
    sections.push(
      `#### Node: this checkout beside the baseline (\`${b.root}\`), run in turn`,
      '',
      table(['phase', 'baseline wall / CPU', 'this wall / CPU', 'baseline functions compiled', 'this'], [
        ...PHASES.map((name) => [name, side(b, name), side(n, name), name === 'read' ? '' : fns(b, name), name === 'read' ? '' : fns(n, name)]),
        ['**total**', `**${f(b.total_ms)} / ${f(b.total_cpu_ms)} ms**`, `**${f(n.total_ms)} / ${f(n.total_cpu_ms)} ms**`, '', ''],
      ]),
      '',
    );
  }
}

if (results.workerd) {
  const d = results.workerd;
  const s = d.at_startup;
  const e = d.engine_at_startup;
  const r = d.in_request;
  const valid = d.clock_advances;
  budgets.push({
    name: 'cold start in workerd (Miniflare), first request of an isolate (toolgate\'s Workers entry: engine loaded and warmed, policy compiled at startup)',
    target: '≤ 5 ms',
    measured: valid
      ? `${f(s.total_ms)} ms (engine ${s.engine_ready_before_request ? 'ready' : 'NOT ready'} before the request, policy ${s.policy_built_at_startup ? 'built at startup' : 'NOT built at startup'}; the engine alone at startup: ${f(e.total_ms)} ms; loading in the request instead: ${f(r.total_ms)} ms)`
      : 'not measured: the worker\'s clock did not advance',
    met: valid ? s.total_ms <= 5 : undefined,
  });
  sections.push(
    `#### workerd (Miniflare; a fresh workerd process per run, ${d.rounds} rounds)`,
    '',
    `Timed inside the worker with \`performance.now()\` (it advances during execution under Miniflare: step ${f(d.clock_step_ms, 3)} ms${valid ? '' : '; it did NOT advance in some runs, so these figures are not valid'}). `
      + 'workerd compiles the `.wasm` when the worker starts (a `CompiledWasm` module); V8 then compiles each function on its first call.',
    '',
    table(['first request of a new isolate', 'core loaded in the request (`loadToolgate({ wasmModule })`)', 'engine loaded and warmed at startup, policy compiled in the request (the entry before)', 'engine and policy at startup (`worker/workers.js`)'], [
      ['get the engine (instantiate / await the startup one)', `${f(r.instantiate_ms)} ms`, `${f(e.instantiate_ms)} ms`, `${f(s.instantiate_ms)} ms`],
      ['compile a 3-tool policy (or take the startup one)', `${f(r.compile_ms)} ms`, `${f(e.compile_ms)} ms`, `${f(s.compile_ms)} ms`],
      ['first `decide`', `${f(r.first_decision_ms)} ms`, `${f(e.first_decision_ms)} ms`, `${f(s.first_decision_ms)} ms`],
      ['**total (the budget)**', `**${f(r.total_ms)} ms**`, `**${f(e.total_ms)} ms**`, `**${f(s.total_ms)} ms**`],
      ['the same on the second request', `${f(r.second_request_total_ms)} ms`, `${f(e.second_request_total_ms)} ms`, `${f(s.second_request_total_ms)} ms`],
      ['first request timed from outside (`dispatchFetch`; imports-only worker ' + `${f(d.first_request_imports_ms)} ms)`, `${f(r.first_request_outside_ms)} ms`, `${f(e.first_request_outside_ms)} ms`, `${f(s.first_request_outside_ms)} ms`],
      ['startup: `new Miniflare` to ready (empty worker ' + `${f(d.ready_empty_ms, 0)} ms, imports only ${f(d.ready_imports_ms, 0)} ms)`, `${f(r.ready_ms, 0)} ms`, `${f(e.ready_ms, 0)} ms`, `${f(s.ready_ms, 0)} ms`],
      ['startup work at module scope, timed inside (`Date.now()`)', '–', `${f(e.startup_warm_inside_ms, 0)} ms`, `${f(s.startup_warm_inside_ms, 0)} ms`],
    ]),
    '',
  );
}

if (results.chromium) {
  const c = results.chromium;
  if (c.skipped) {
    sections.push(`#### Chromium: skipped (${c.skipped})`, '');
  } else {
    sections.push(
      `#### Chromium ${c.version} (headless; a fresh browser context per run: no HTTP or code cache)`,
      '',
      table(['phase', 'wall'], [
        ['import the façade and the glue', `${f(c.phases.import)} ms`],
        ['fetch the `.wasm` (loopback)', `${f(c.phases.read)} ms`],
        ['`WebAssembly.compile`', `${f(c.phases.compile)} ms`],
        ['instantiate: `loadToolgate({ wasmModule })`', `${f(c.phases.instantiate)} ms`],
        ['compile a 3-tool policy', `${f(c.phases.policy)} ms`],
        ['first `decide`', `${f(c.phases.first)} ms`],
        ['**fetch + compile + instantiate + policy + first decision**', `**${f(c.total_ms)} ms**`],
        ['`loadToolgate({ wasmUrl })` (streaming: fetch, compile and instantiate together, as the playground)', `${f(c.streaming.load_ms)} ms`],
        ['… + policy + first decision', `${f(c.streaming.total_ms)} ms`],
        ['the same, second visit in the same context (HTTP cache)', `${f(c.streaming.repeat_load_ms)} ms; ${f(c.streaming.repeat_total_ms)} ms`],
      ]),
      '',
    );
  }
}

const decisions = new Set([...(results.node?.decisions ?? []), ...(results.workerd?.decisions ?? []).map((d) => (d === 'allowed' ? 'allow' : d)), ...(results.chromium?.decisions ?? [])]);
sections.push(`Decision of the first call in every runtime: ${[...decisions].join(', ')}.`);
results.budgets = budgets;
const markdown = sections.join('\n');
console.log(markdown);
writeResults(resultsDir, 'cold-start', results, markdown);
