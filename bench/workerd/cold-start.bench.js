// Cold start inside workerd (the Cloudflare Workers runtime) through Miniflare:
// a fresh workerd per run, whose first request loads the core from the
// precompiled WebAssembly.Module (as worker/workers.js does), compiles a small
// policy and decides once. Prints Markdown; writes
// bench/results/cold-start-workerd.{json,md}.
//
//   node bench/workerd/cold-start.bench.js [--quick] [--rounds N] [--results DIR]
//
// Two measurements of the same thing:
//  - inside: performance.now() around loadToolgate + compile + evaluate in the
//    worker. Production Workers freeze the clock during execution (it moves
//    only on I/O), but workerd as Miniflare runs it does not: the worker also
//    reports the clock's step, and the benchmark checks it advances.
//  - outside: time from dispatchFetch to the response of the first request of
//    a fresh Miniflare, for the toolgate worker minus the same for a worker
//    importing the same modules and answering at once (workerd loads every
//    module, and compiles the .wasm, at startup: `ready`).
// Also per run: a second request (instantiate + compile + decide in a warm
// isolate), and in the JSON the startup times (`new Miniflare` to `ready`) of
// the three workers: workerd's process start (hundreds of ms, very noisy here)
// drowns what importing the package and compiling the .wasm add to it.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { Miniflare } from 'miniflare';

import { moduleGraph } from '../../tests/js/workerd-modules.js';
import { flagValue, median, table, writeResults } from '../js/measure.js';

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const rounds = Number(flagValue(argv, '--rounds', quick ? '2' : '9'));
const root = fileURLToPath(new URL('../../', import.meta.url));
const resultsDir = path.resolve(flagValue(argv, '--results', path.join(root, 'bench/results')));

const workerModules = await moduleGraph('bench/workerd/cold-start.worker.js');
const emptyModules = await moduleGraph('bench/workerd/empty.worker.js');

async function run(kind) {
  const t0 = performance.now();
  const mf = new Miniflare({
    modulesRoot: root,
    modules: kind === 'empty' ? emptyModules : workerModules,
    bindings: { MODE: kind },
    compatibilityDate: '2025-01-01',
  });
  try {
    await mf.ready;
    const t1 = performance.now();
    const first = await mf.dispatchFetch('http://localhost/?clock');
    const firstBody = await first.json();
    const t2 = performance.now();
    const second = await mf.dispatchFetch('http://localhost/');
    const secondBody = await second.json();
    const t3 = performance.now();
    return { kind, ready_ms: t1 - t0, first_request_ms: t2 - t1, second_request_ms: t3 - t2, first: firstBody, second: secondBody };
  } finally {
    await mf.dispose();
  }
}

// The first Miniflare of a process pays for Miniflare's own start (hundreds of
// ms in Node): one discarded run.
await run('empty');
const runs = [];
for (let i = 0; i < rounds; i++) {
  for (const kind of ['empty', 'imports', 'toolgate']) {
    runs.push(await run(kind));
    process.stderr.write('.');
  }
}
process.stderr.write('\n');

const of = (kind, pick) => median(runs.filter((r) => r.kind === kind).map(pick));
const toolgateRuns = runs.filter((r) => r.kind === 'toolgate');
const decisions = [...new Set(toolgateRuns.map((r) => r.first.decision))];
const clockSteps = toolgateRuns.map((r) => r.first.clock_step_ms);
const clockAdvances = clockSteps.every((s) => typeof s === 'number' && s > 0);
const inside = {
  instantiate_ms: of('toolgate', (r) => r.first.instantiate_ms),
  compile_ms: of('toolgate', (r) => r.first.compile_ms),
  first_decision_ms: of('toolgate', (r) => r.first.first_decision_ms),
  total_ms: of('toolgate', (r) => r.first.total_ms),
  warm_isolate_total_ms: of('toolgate', (r) => r.second.total_ms),
  clock_step_ms: median(clockSteps.filter((s) => typeof s === 'number')),
  clock_advances: clockAdvances,
};
const outside = {
  first_request_toolgate_ms: of('toolgate', (r) => r.first_request_ms),
  first_request_imports_ms: of('imports', (r) => r.first_request_ms),
  first_request_empty_ms: of('empty', (r) => r.first_request_ms),
  cold_start_ms: of('toolgate', (r) => r.first_request_ms) - of('imports', (r) => r.first_request_ms),
  second_request_toolgate_ms: of('toolgate', (r) => r.second_request_ms),
  second_request_imports_ms: of('imports', (r) => r.second_request_ms),
  ready_toolgate_ms: of('toolgate', (r) => r.ready_ms),
  ready_imports_ms: of('imports', (r) => r.ready_ms),
  ready_empty_ms: of('empty', (r) => r.ready_ms),
  startup_added_ms: of('imports', (r) => r.ready_ms) - of('empty', (r) => r.ready_ms),
};
const measured = clockAdvances ? inside.total_ms : outside.cold_start_ms;
const budgets = [{
  name: 'cold start in workerd (Miniflare): instantiate + compile + first decision',
  target: '≤ 5 ms',
  measured: `${measured.toFixed(2)} ms (${clockAdvances ? 'inside the worker' : 'from outside'}; `
    + `${clockAdvances ? `from outside ${outside.cold_start_ms.toFixed(1)} ms` : 'the worker clock did not advance'})`,
  met: measured <= 5,
}];

const f = (n, d = 2) => (typeof n === 'number' ? n.toFixed(d) : '–');
const { version: miniflareVersion } = JSON.parse(await readFile(path.join(root, 'node_modules/miniflare/package.json'), 'utf8'));
const markdown = [
  `### Cold start in workerd (Miniflare ${miniflareVersion}), median of ${rounds} fresh runtimes`,
  '',
  'Each run starts a new Miniflare (a new workerd process and isolate). The worker imports the façade and the `.wasm` as a '
    + 'precompiled `WebAssembly.Module` (as `worker/workers.js`); its first request calls `loadToolgate({ wasmModule })`, '
    + 'compiles a 3-tool policy and `decide`s one call (memory counter store). **Inside**: `performance.now()` in the worker '
    + `(it advances during execution under Miniflare's workerd: step ${f(inside.clock_step_ms, 3)} ms${clockAdvances ? '' : ', but it did NOT advance in some runs: inside figures are not valid'}; `
    + 'production Workers freeze it between I/O). **Outside**: `dispatchFetch` to response of the first request, toolgate '
    + 'worker minus a worker importing the same modules that answers at once (Miniflare\'s loopback HTTP adds milliseconds '
    + 'of noise to each).',
  '',
  table(['figure', 'measured'], [
    ['inside: `loadToolgate({ wasmModule })` (instantiate)', `${f(inside.instantiate_ms)} ms`],
    ['inside: compile the policy', `${f(inside.compile_ms)} ms`],
    ['inside: first decision', `${f(inside.first_decision_ms)} ms`],
    ['inside: instantiate + compile + first decision, new isolate (the budget)', `**${f(inside.total_ms)} ms**`],
    ['inside: the same on the second request (warm isolate, new instance)', `${f(inside.warm_isolate_total_ms)} ms`],
    ['outside: first request, toolgate worker / imports-only worker / empty worker', `${f(outside.first_request_toolgate_ms, 1)} / ${f(outside.first_request_imports_ms, 1)} / ${f(outside.first_request_empty_ms, 1)} ms`],
    ['outside: cold start (toolgate − imports-only, first request)', `${f(outside.cold_start_ms, 1)} ms`],
  ]),
  '',
  `Decision of the first call: ${decisions.join(', ')}.`,
].join('\n');
console.log(markdown);
writeResults(resultsDir, 'cold-start-workerd', {
  config: { quick, rounds, miniflare: miniflareVersion, modules: workerModules.map((m) => path.relative(root, m.path)) },
  inside,
  outside,
  runs,
  budgets,
}, markdown);
