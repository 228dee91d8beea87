// toolgate beside Cedar (@cedar-policy/cedar-wasm, its stateful pre-parsed API)
// on equivalent policies (bench/cedar/cases.js, explained in README.md):
// decision latency p50/p99 and decisions/s per case and side, the ratio
// cedar/toolgate, compile/pre-parse time, cold start in a fresh Node process,
// and package sizes. Every decision is checked on both sides before anything
// is timed; a wrong answer throws.
//
// Run: node bench/cedar/cedar.bench.js [--quick] [--out DIR]
// Prints Markdown; writes DIR/cedar.json and DIR/cedar.md (default bench/results/).
import { execFileSync } from 'node:child_process';
import { cpus } from 'node:os';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { gzipSync, brotliCompressSync } from 'node:zlib';
import { loadToolgate } from '../../wasm/index.js';
import { cases as makeCases, T0 } from './cases.js';
import { cedarDir, cedarEntry, cedarVersion, loadCedar } from './cedar-load.js';

export { loadCedar };
const toolgateIndex = new URL('../../wasm/index.js', import.meta.url);

export const TYPICAL_CASE = 'c2_typical';
export const BUDGET_RATIO = 10;

let progress = () => {};

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function cedarDecision(answer) {
  if (answer.type !== 'success') return `failure: ${answer.errors.map((e) => e.message).join('; ')}`;
  return answer.response.decision;
}

/**
 * Decides every call of every case on both sides and compares with the
 * expected decision (and toolgate's expected code; Cedar must decide without
 * evaluation errors, so a deny is the policies' doing, not an error's).
 * Throws listing every mismatch.
 */
export function verify(toolgate, cedar, cases) {
  const problems = [];
  const verified = [];
  for (const c of cases) {
    const policy = toolgate.compile(c.toolgate);
    const parsed = cedar.preparsePolicySet(c.id, { staticPolicies: c.cedar });
    if (parsed.type !== 'success') {
      problems.push(`${c.id}: Cedar policy does not parse: ${parsed.errors.map((e) => e.message).join('; ')}`);
      policy.dispose();
      continue;
    }
    for (const k of c.calls) {
      const t = policy.evaluate(k.toolgate);
      const answer = cedar.statefulIsAuthorized({ ...k.cedar, preparsedPolicySetId: c.id });
      const cd = cedarDecision(answer);
      const errors = answer.type === 'success' ? answer.response.diagnostics.errors : [];
      if (t.pending) problems.push(`${c.id} / ${k.name}: toolgate answered pending, expected a final decision`);
      else if (t.decision !== k.expected || t.code !== k.code) {
        problems.push(`${c.id} / ${k.name}: toolgate ${t.decision} (${t.code}), expected ${k.expected} (${k.code})`);
      }
      if (cd !== k.expected) problems.push(`${c.id} / ${k.name}: Cedar ${cd}, expected ${k.expected}`);
      if (errors.length) problems.push(`${c.id} / ${k.name}: Cedar evaluation errors: ${JSON.stringify(errors)}`);
      verified.push({ case: c.id, call: k.name, expected: k.expected, toolgate: t.decision, toolgate_code: t.code, cedar: cd });
    }
    policy.dispose();
  }
  if (problems.length) throw new Error(`decisions differ:\n  ${problems.join('\n  ')}`);
  return verified;
}

/** One side (toolgate or Cedar) in its own worker thread (side-worker.js). */
class Side {
  constructor(side, tools) {
    this.side = side;
    this.seq = 0;
    this.waiting = new Map();
    this.worker = new Worker(new URL('./side-worker.js', import.meta.url), { workerData: { side, tools } });
    this.ready = new Promise((resolveReady, rejectReady) => {
      this.worker.once('error', rejectReady);
      this.worker.on('message', (m) => {
        if (m.ready) return resolveReady(this);
        const w = this.waiting.get(m.seq);
        this.waiting.delete(m.seq);
        if (m.error) w.reject(new Error(`${side} worker: ${m.error}`));
        else w.resolve(m.result);
      });
    });
    this.worker.on('error', (e) => { for (const w of this.waiting.values()) w.reject(e); });
    this.worker.on('exit', (code) => {
      for (const w of this.waiting.values()) w.reject(new Error(`${side} worker exited with code ${code}`));
    });
  }

  call(op, args) {
    const seq = ++this.seq;
    return new Promise((res, rej) => {
      this.waiting.set(seq, { resolve: res, reject: rej });
      this.worker.postMessage({ seq, op, args });
    });
  }

  terminate() {
    return this.worker.terminate();
  }
}

/**
 * Times one call on both sides in alternating rounds of batches (toolgate's,
 * then Cedar's, up to 10 rounds; each side in its own worker, one running at
 * a time), so both see the same machine load. Per-call latency is a batch's
 * time divided by its size, as bench/js/core.bench.js does (timer resolution
 * is too coarse for single microsecond calls); batches of 20 calls, fewer for
 * calls over 100 µs.
 */
async function measurePair(sides, id, index, { seconds, maxBatches, minBatches }) {
  const cost = [];
  for (const side of sides) cost.push(await side.call('estimate', { id, index }));
  const size = (c) => Math.max(1, Math.min(20, Math.floor(2000 / c)));
  const batch = cost.map(size);
  const batches = Math.max(minBatches, Math.min(maxBatches,
    Math.floor((seconds * 1e6) / (batch[0] * cost[0] + batch[1] * cost[1]))));
  for (const [i, side] of sides.entries()) await side.call('run', { id, index, batches: Math.ceil(batches / 10), batch: batch[i] }); // warm up
  const rounds = Math.min(10, Math.max(1, Math.floor(batches / 20)));
  const samples = sides.map(() => []);
  for (let r = 0; r < rounds; r++) {
    const n = Math.floor(((r + 1) * batches) / rounds) - Math.floor((r * batches) / rounds);
    for (const [i, side] of sides.entries()) samples[i].push(...(await side.call('run', { id, index, batches: n, batch: batch[i] })));
  }
  return samples.map((s, i) => summary(s, batch[i]));
}

function summary(samples, batch) {
  const mean = samples.reduce((s, x) => s + x, 0) / samples.length;
  samples.sort((a, b) => a - b);
  return {
    p50_us: percentile(samples, 50),
    p99_us: percentile(samples, 99),
    per_s: Math.round(1e6 / mean),
    batches: samples.length,
    batch,
  };
}

// Cold start: a fresh Node process imports the package, loads a one-tool
// policy and decides once (as bench/js/core.bench.js does for toolgate).
function coldStart(runs) {
  const scripts = {
    toolgate: `
      const t0 = performance.now();
      const { loadToolgate } = await import(${JSON.stringify(toolgateIndex.href)});
      const t1 = performance.now();
      const tg = await loadToolgate();
      const p = tg.compile(${JSON.stringify(JSON.stringify({ version: '1', default: 'deny', tools: { run: {} } }))});
      const t2 = performance.now();
      const d = p.evaluate({ tool: 'run', grant: 'alice', now: ${T0} });
      const t3 = performance.now();
      console.log(JSON.stringify({ import_ms: t1 - t0, load_ms: t2 - t1, first_decision_ms: t3 - t2, decision: d.decision }));`,
    cedar: `
      const t0 = performance.now();
      const cedar = (await import(${JSON.stringify(pathToFileURL(cedarEntry).href)})).default;
      const t1 = performance.now();
      const r = cedar.preparsePolicySet('p', { staticPolicies: 'permit(principal, action == Action::"run", resource);' });
      if (r.type !== 'success') throw new Error(JSON.stringify(r));
      const t2 = performance.now();
      const a = cedar.statefulIsAuthorized({ principal: { type: 'Grant', id: 'alice' }, action: { type: 'Action', id: 'run' },
        resource: { type: 'Server', id: 'default' }, context: { args: {} }, entities: [], preparsedPolicySetId: 'p' });
      const t3 = performance.now();
      console.log(JSON.stringify({ import_ms: t1 - t0, load_ms: t2 - t1, first_decision_ms: t3 - t2, decision: a.response.decision }));`,
  };
  const out = {};
  const all = { toolgate: [], cedar: [] };
  for (let i = 0; i < runs; i++) {
    for (const side of ['toolgate', 'cedar']) {
      all[side].push(JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', scripts[side]], { encoding: 'utf8' })));
    }
  }
  for (const side of ['toolgate', 'cedar']) {
    const runsOf = all[side];
    if (runsOf.some((r) => r.decision !== 'allow')) throw new Error(`cold start: ${side} did not allow`);
    const med = (key) => runsOf.map((c) => c[key]).sort((a, b) => a - b)[Math.floor(runsOf.length / 2)];
    const total = runsOf.map((c) => c.import_ms + c.load_ms + c.first_decision_ms).sort((a, b) => a - b)[Math.floor(runsOf.length / 2)];
    out[side] = { import_ms: med('import_ms'), load_ms: med('load_ms'), first_decision_ms: med('first_decision_ms'), total_ms: total, runs };
  }
  out.toolgate.note = 'import: JS only; load: loadToolgate() (compile + instantiate the .wasm) + compile the policy';
  out.cedar.note = 'import: the Node build instantiates its .wasm synchronously on import (Node compiles wasm functions lazily, on first call); load: preparsePolicySet';
  return out;
}

// The façade: wasm/index.js and the wasm/*.js modules it imports (statically,
// by relative path), each gzipped on its own as bench/js/core.bench.js does.
function facadeModules() {
  const seen = [];
  const visit = (file) => {
    if (seen.includes(file)) return;
    seen.push(file);
    const text = readFileSync(new URL(`../../wasm/${file}`, import.meta.url), 'utf8');
    for (const m of text.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+['"]\.\/([\w.-]+\.js)['"]/gm)) visit(m[1]);
  };
  visit('index.js');
  return seen;
}

function sizes({ brotli }) {
  const gz = (b) => gzipSync(b, { level: 9 }).length;
  const br = (b) => (brotli ? brotliCompressSync(b).length : null);
  const read = (u) => readFileSync(u);
  const tgWasm = read(new URL('../../wasm/dist/toolgate_core.wasm', import.meta.url));
  const tgGlue = read(new URL('../../wasm/dist/toolgate_core.mjs', import.meta.url));
  const facadeFiles = facadeModules();
  const tgFacade = facadeFiles.map((f) => read(new URL(`../../wasm/${f}`, import.meta.url)));
  const cWasm = readFileSync(join(cedarDir, 'cedar_wasm_bg.wasm'));
  const cGlue = readFileSync(cedarEntry);
  const cEsmGlue = ['cedar_wasm.js', 'cedar_wasm_bg.js'].map((f) => readFileSync(join(cedarDir, '..', 'esm', f)));
  const toolgate = {
    wasm_bytes: tgWasm.length,
    wasm_gzip: gz(tgWasm),
    wasm_brotli: br(tgWasm),
    glue_bytes: tgGlue.length,
    glue_gzip: gz(tgGlue),
    facade_gzip: tgFacade.reduce((s, b) => s + gz(b), 0),
    facade_files: facadeFiles,
  };
  toolgate.total_gzip = toolgate.wasm_gzip + toolgate.glue_gzip + toolgate.facade_gzip;
  const cedar = {
    wasm_bytes: cWasm.length,
    wasm_gzip: gz(cWasm),
    wasm_brotli: br(cWasm),
    glue_bytes: cGlue.length,
    glue_gzip: gz(cGlue),
    glue_note: 'nodejs/cedar_wasm.js (the build used here); esm_glue_gzip: esm/cedar_wasm.js + esm/cedar_wasm_bg.js (bundlers)',
    esm_glue_gzip: cEsmGlue.reduce((s, b) => s + gz(b), 0),
  };
  cedar.total_gzip = cedar.wasm_gzip + cedar.glue_gzip;
  return { toolgate, cedar, compression: 'gzip level 9, brotli default (quality 11), node:zlib' };
}

/**
 * Runs the whole comparison and returns { results, markdown }.
 * @param {{ quick?: boolean, tools?: number, seconds?: number, cold?: boolean, brotli?: boolean }} [options]
 */
export async function runCedarBench(options = {}) {
  const quick = !!options.quick;
  progress = options.progress ?? (() => {});
  const tools = options.tools ?? 1000;
  const timing = quick
    ? { seconds: options.seconds ?? 0.08, maxBatches: 60, minBatches: 10 }
    : { seconds: options.seconds ?? 2, maxBatches: 2000, minBatches: 100 };
  const compileRuns = quick ? 3 : 20;

  // A first check of every decision in this thread, then each side in its own
  // worker (side-worker.js), which is where everything is timed.
  const cases = makeCases({ tools });
  const toolgate = await loadToolgate();
  const cedar = await loadCedar();
  const verified = verify(toolgate, cedar, cases);
  const sides = await Promise.all([new Side('toolgate', tools).ready, new Side('cedar', tools).ready]);
  const [tgSide, cedarSide] = sides;
  try {
    const results = {
      meta: {
        date: new Date().toISOString(),
        node: process.versions.node,
        toolgate_core: (await tgSide.call('info')).version,
        cedar_wasm: cedarVersion,
        cedar_lang: (await cedarSide.call('info')).lang,
        cedar_api: 'preparsePolicySet + statefulIsAuthorized (no schema), Node build @cedar-policy/cedar-wasm/nodejs',
        toolgate_api: 'toolgate.compile(policy) then policy.evaluate(call) (stateless; final decision for policies without limits)',
        quick,
        timing: { ...timing, batch: 'up to 20 calls (fewer for calls over 100 µs); rounds of batches alternate toolgate/Cedar, each side in its own worker thread' },
        cpus: cpus().length,
      },
      verified,
      cases: {},
    };
    await run(results, cases, sides, { timing, compileRuns, quick });
    progress('cold start');
    if (options.cold !== false) results.cold_start = coldStart(quick ? 1 : 7);
    progress('sizes');
    results.size = sizes({ brotli: options.brotli ?? !quick });
    results.budgets = budgets(results);
    return { results, markdown: toMarkdown(results) };
  } finally {
    await Promise.all(sides.map((s) => s.terminate()));
  }
}

async function run(results, cases, [tgSide, cedarSide], { timing, compileRuns, quick }) {
  for (const c of cases) {
    for (const side of [tgSide, cedarSide]) await side.call('prepare', { id: c.id });
    const calls = [];
    for (const [index, k] of c.calls.entries()) {
      progress(`${c.id} / ${k.name}`);
      // Re-check in the workers, right before timing.
      const t = await tgSide.call('answer', { id: c.id, index });
      const a = await cedarSide.call('answer', { id: c.id, index });
      if (t.decision !== k.expected || t.code !== k.code || a.decision !== k.expected || a.errors.length) {
        throw new Error(`${c.id} / ${k.name}: toolgate ${t.decision} (${t.code}), Cedar ${a.decision}` +
          `${a.errors.length ? ` with errors ${JSON.stringify(a.errors)}` : ''}, expected ${k.expected} (${k.code})`);
      }
      const [tg, cd] = await measurePair([tgSide, cedarSide], c.id, index, timing);
      calls.push({
        name: k.name,
        expected: k.expected,
        toolgate: { decision: t.decision, code: t.code, ...tg },
        cedar: { decision: a.decision, ...cd },
        ratio_p50: cd.p50_us / tg.p50_us,
        ratio_per_s: tg.per_s / cd.per_s,
      });
    }
    const runs = c.id === 'd_many_tools' ? Math.min(compileRuns, 10) : compileRuns;
    const median = (times) => percentile(times.sort((x, y) => x - y), 50);
    const compile = {
      toolgate_ms: median(await tgSide.call('compile', { id: c.id, runs })),
      cedar_ms: median(await cedarSide.call('compile', { id: c.id, runs })),
      toolgate_bytes: JSON.stringify(c.toolgate).length,
      cedar_bytes: c.cedar.length,
    };
    for (const side of [tgSide, cedarSide]) await side.call('release', { id: c.id });
    results.cases[c.id] = { title: c.title, calls, compile };
  }

  // toolgate with its limits: decide() with the memory counter store (Cedar has none).
  progress('toolgate with limits');
  const l = await tgSide.call('limits', quick ? { batches: 50, batch: 20 } : { batches: 2000, batch: 20 });
  if (l.decision !== 'allow' || !l.pending) throw new Error(`toolgate with limits: ${l.decision} (${l.code}), pending ${l.pending}`);
  results.toolgate_with_limits = {
    title: 'toolgate with limits (Cedar has none): typical call, 3 conditions + 1 limit',
    decide_memory_store: { decision: l.decision, ...summary(l.samples, 20) },
  };
}

function budgets(results) {
  const typical = results.cases[TYPICAL_CASE].calls[0];
  const worst = Object.entries(results.cases).flatMap(([id, c]) => c.calls.map((k) => ({ id, ...k })))
    .reduce((m, k) => (k.ratio_p50 < m.ratio_p50 ? k : m));
  return [
    {
      name: 'WASM decision ≥ 10× faster than cedar-wasm (typical call)',
      target: '≥ 10×',
      measured: `${typical.ratio_p50.toFixed(1)}×`,
      met: typical.ratio_p50 >= BUDGET_RATIO,
    },
    {
      name: 'WASM decision ≥ 10× faster than cedar-wasm (every case, p50)',
      target: '≥ 10×',
      measured: `${worst.ratio_p50.toFixed(1)}× (lowest: ${worst.id}, ${worst.name})`,
      met: worst.ratio_p50 >= BUDGET_RATIO,
    },
  ];
}

function toMarkdown(r) {
  const f = (n, d = 2) => (n == null ? 'n/a' : n.toFixed(d));
  const us = (n) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));
  const rate = (n) => (n >= 1e6 ? `${(n / 1e6).toFixed(2)} M/s` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k/s` : `${n}/s`);
  const ms = (n) => (n >= 10 ? n.toFixed(1) : n.toFixed(2));
  const lines = [];
  lines.push(`toolgate core ${r.meta.toolgate_core} (\`evaluate\`) vs @cedar-policy/cedar-wasm ${r.meta.cedar_wasm} ` +
    `(Cedar ${r.meta.cedar_lang}, \`preparsePolicySet\` + \`statefulIsAuthorized\`, no schema), Node ${r.meta.node}` +
    `${r.meta.quick ? ', **--quick** (smoke run, figures not meaningful)' : ''}. ` +
    'Per call: JS object in, decision out; rounds of batches alternate between the two sides.');
  lines.push('');
  lines.push('| case | call | decision | toolgate p50 / p99 | toolgate decisions/s | Cedar p50 / p99 | Cedar decisions/s | Cedar ÷ toolgate (p50) |');
  lines.push('|---|---|---|---|---|---|---|---|');
  for (const c of Object.values(r.cases)) {
    for (const k of c.calls) {
      lines.push(`| ${c.title} | ${k.name} | ${k.expected} (${k.toolgate.code}) | ${us(k.toolgate.p50_us)} / ${us(k.toolgate.p99_us)} µs | ` +
        `${rate(k.toolgate.per_s)} | ${us(k.cedar.p50_us)} / ${us(k.cedar.p99_us)} µs | ${rate(k.cedar.per_s)} | **${f(k.ratio_p50, 1)}×** |`);
    }
  }
  lines.push('');
  lines.push('| case | Cedar ÷ toolgate, p50, per call |');
  lines.push('|---|---|');
  for (const c of Object.values(r.cases)) {
    lines.push(`| ${c.title} | ${c.calls.map((k) => `${k.name} (${k.expected}): **${f(k.ratio_p50, 1)}×**`).join(', ')} |`);
  }
  lines.push('');
  const l = r.toolgate_with_limits;
  lines.push('| toolgate with limits (Cedar has none) | p50 / p99 | decisions/s |');
  lines.push('|---|---|---|');
  lines.push(`| \`decide\`, typical call (3 conditions + 1 limit), \`MemoryCounterStore\` | ${us(l.decide_memory_store.p50_us)} / ${us(l.decide_memory_store.p99_us)} µs | ${rate(l.decide_memory_store.per_s)} |`);
  lines.push('');
  lines.push('| case | toolgate compile (policy JSON text) | Cedar pre-parse (policy text) | Cedar ÷ toolgate |');
  lines.push('|---|---|---|---|');
  for (const c of Object.values(r.cases)) {
    lines.push(`| ${c.title} | ${ms(c.compile.toolgate_ms)} ms (${c.compile.toolgate_bytes} B) | ${ms(c.compile.cedar_ms)} ms (${c.compile.cedar_bytes} B) | ${f(c.compile.cedar_ms / c.compile.toolgate_ms, 1)}× |`);
  }
  lines.push('');
  if (r.cold_start) {
    const t = r.cold_start.toolgate;
    const c = r.cold_start.cedar;
    lines.push(`| cold start, fresh Node process (median of ${t.runs}) | toolgate | Cedar |`);
    lines.push('|---|---|---|');
    lines.push(`| import the package | ${ms(t.import_ms)} ms (JS only) | ${ms(c.import_ms)} ms (includes instantiating the .wasm; Node compiles its functions lazily, on first call) |`);
    lines.push(`| load: toolgate \`loadToolgate()\` + compile / Cedar \`preparsePolicySet\`, one-tool policy | ${ms(t.load_ms)} ms | ${ms(c.load_ms)} ms |`);
    lines.push(`| first decision | ${f(t.first_decision_ms, 3)} ms | ${f(c.first_decision_ms, 3)} ms |`);
    lines.push(`| total | **${ms(t.total_ms)} ms** | **${ms(c.total_ms)} ms** |`);
    lines.push('');
  }
  const s = r.size;
  const kib = (n) => (n == null ? 'n/a (--quick)' : `${(n / 1024).toFixed(1)} KiB`);
  lines.push('| size (gzip -9, brotli q11) | toolgate | cedar-wasm | Cedar ÷ toolgate |');
  lines.push('|---|---|---|---|');
  lines.push(`| \`.wasm\` raw | ${s.toolgate.wasm_bytes} B (${kib(s.toolgate.wasm_bytes)}) | ${s.cedar.wasm_bytes} B (${kib(s.cedar.wasm_bytes)}) | ${f(s.cedar.wasm_bytes / s.toolgate.wasm_bytes, 1)}× |`);
  lines.push(`| \`.wasm\` gzip | ${kib(s.toolgate.wasm_gzip)} | ${kib(s.cedar.wasm_gzip)} | ${f(s.cedar.wasm_gzip / s.toolgate.wasm_gzip, 1)}× |`);
  lines.push(`| \`.wasm\` brotli | ${kib(s.toolgate.wasm_brotli)} | ${kib(s.cedar.wasm_brotli)} | ${s.cedar.wasm_brotli ? f(s.cedar.wasm_brotli / s.toolgate.wasm_brotli, 1) + '×' : 'n/a'} |`);
  lines.push(`| JS glue gzip | ${kib(s.toolgate.glue_gzip)} (\`toolgate_core.mjs\`) + ${kib(s.toolgate.facade_gzip)} façade | ${kib(s.cedar.glue_gzip)} (\`nodejs/cedar_wasm.js\`; bundler build ${kib(s.cedar.esm_glue_gzip)}) | |`);
  lines.push(`| total gzip (.wasm + JS) | **${kib(s.toolgate.total_gzip)}** | **${kib(s.cedar.total_gzip)}** | ${f(s.cedar.total_gzip / s.toolgate.total_gzip, 1)}× |`);
  lines.push('');
  lines.push('| budget | target | measured | |');
  lines.push('|---|---|---|---|');
  for (const b of r.budgets) lines.push(`| ${b.name} | ${b.target} | ${b.measured} | ${b.met ? 'met' : '**not met**'} |`);
  return lines.join('\n');
}

async function main() {
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  const outIndex = args.indexOf('--out');
  const outDir = outIndex >= 0 ? resolve(args[outIndex + 1]) : fileURLToPath(new URL('../results/', import.meta.url));
  const { results, markdown } = await runCedarBench({ quick, progress: (m) => process.stderr.write(`cedar.bench: ${m}\n`) });
  console.log(markdown);
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'cedar.json'), JSON.stringify(results, null, 2) + '\n');
  writeFileSync(join(outDir, 'cedar.md'), markdown + '\n');
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await main();
}
