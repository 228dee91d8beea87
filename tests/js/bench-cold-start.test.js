// Smoke test of bench/js/cold-start.bench.js: one run per runtime (a fresh
// Node process, a fresh workerd through Miniflare, a fresh Chromium context)
// gives every phase a time, the first call the same decision everywhere, V8's
// per-phase compiled bytes that add up, the workerd budget in the results
// contract, for the workerd workers (the core loaded in the request, the engine
// at startup, and engine and policy at startup as worker/workers.js). Also the cold-start child alone, with `--warm`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromiumMissing } from './browser-helpers.js';

const script = fileURLToPath(new URL('../../bench/js/cold-start.bench.js', import.meta.url));
const child = fileURLToPath(new URL('../../bench/js/cold-start-node.js', import.meta.url));
const PHASES = ['read', 'compile', 'instantiate', 'policy', 'first'];

test('cold-start-node.js: every phase timed, the first call allowed; with --warm the first call needs no compiling', () => {
  for (const extra of [[], ['--warm']]) {
    const out = JSON.parse(execFileSync(process.execPath, ['--trace-wasm-compilation-times', child, ...extra], { encoding: 'utf8' }).split('\n').find((line) => line.startsWith('{')));
    assert.equal(out.decision, 'allow');
    for (const name of ['import', ...PHASES, 'second']) {
      assert.ok(out.phases[name].wall_ms > 0 && out.phases[name].cpu_ms >= 0, `${name}: ${JSON.stringify(out.phases[name])}`);
    }
  }
  // Warmed: the policy compile and first decision run code V8 already compiled
  // (the trace lines printed after the load are the functions compiled later).
  const lines = (extra) => execFileSync(process.execPath, ['--trace-wasm-compilation-times', child, '--stop-after', 'instantiate', ...extra], { encoding: 'utf8' })
    .split('\n').filter((line) => line.startsWith('Compiled function')).length;
  const linesAll = (extra) => execFileSync(process.execPath, ['--trace-wasm-compilation-times', child, ...extra], { encoding: 'utf8' })
    .split('\n').filter((line) => line.startsWith('Compiled function')).length;
  const coldLater = linesAll([]) - lines([]);
  const warmLater = linesAll(['--warm']) - lines(['--warm']);
  assert.ok(coldLater > 50, `a cold policy compile + decision compiles many functions (${coldLater})`);
  assert.ok(warmLater < coldLater / 5, `after warm: true, few functions are left to compile (${warmLater} vs ${coldLater})`);
});

test('cold-start.bench.js --quick --runs 1: every runtime, every phase, results written', { timeout: 600_000 }, () => {
  const out = mkdtempSync(join(tmpdir(), 'toolgate-bench-cold-'));
  try {
    const stdout = execFileSync(process.execPath, [script, '--quick', '--runs', '1', '--results', out], { encoding: 'utf8', timeout: 580_000, stdio: ['ignore', 'pipe', 'ignore'] });
    const results = JSON.parse(readFileSync(join(out, 'cold-start.json'), 'utf8'));
    const markdown = readFileSync(join(out, 'cold-start.md'), 'utf8');
    assert.equal(markdown.trim(), stdout.trim());

    // Node: phases, and V8's compiled bytes per phase (none in compile: lazy).
    const node = results.node;
    assert.deepEqual(node.decisions, ['allow']);
    for (const name of PHASES) assert.ok(node.phases[name].wall_ms > 0, name);
    assert.ok(node.total_ms > 0 && node.total_cpu_ms > 0);
    assert.ok(node.compiled.policy.bytes > 10_000 && node.compiled.first.bytes > 1000, JSON.stringify(node.compiled));
    assert.deepEqual(results.node_warm.decisions, ['allow']);
    assert.match(markdown, /#### Node /);

    // workerd: the three workers answered. Whether the startup load had
    // finished before the first request is reported, not required: workerd
    // decides when the pending instantiation runs, and a loaded machine may
    // delay it. The entry's worker decides with the policy compiled at
    // startup (the request awaits that build).
    const workerd = results.workerd;
    assert.deepEqual(workerd.decisions, ['allowed']);
    assert.equal(typeof workerd.at_startup.engine_ready_before_request, 'boolean');
    assert.equal(workerd.at_startup.policy_built_at_startup, true);
    for (const side of ['in_request', 'engine_at_startup', 'at_startup']) {
      assert.ok(workerd[side].total_ms >= 0 && workerd[side].ready_ms > 0, side);
    }
    const budget = results.budgets.find((b) => b.name.startsWith('cold start in workerd'));
    assert.ok(budget && budget.target === '≤ 5 ms' && typeof budget.measured === 'string', JSON.stringify(results.budgets));
    assert.ok(budget.met === true || budget.met === false || (budget.met === undefined && !workerd.clock_advances));
    assert.match(markdown, /#### workerd /);

    // Chromium: the phases and the streaming load, when Chromium is here.
    if (chromiumMissing()) {
      assert.ok(results.chromium.skipped);
    } else {
      const c = results.chromium;
      assert.deepEqual(c.decisions, ['allow']);
      for (const name of ['import', ...PHASES]) assert.ok(c.phases[name] >= 0, name);
      assert.ok(c.streaming.load_ms > 0 && c.streaming.repeat_load_ms > 0);
      assert.match(markdown, /#### Chromium /);
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

// --baseline: another checkout's cold start runs in turn with ours (here the
// same checkout, so both sides run the same build and must compile the same
// functions); a missing checkout is refused before anything runs.
test('cold-start.bench.js --only node --baseline: the baseline measured beside ours', { timeout: 300_000 }, () => {
  const out = mkdtempSync(join(tmpdir(), 'toolgate-bench-cold-baseline-'));
  try {
    const root = fileURLToPath(new URL('../../', import.meta.url));
    const stdout = execFileSync(process.execPath, [script, '--runs', '1', '--only', 'node', '--baseline', root, '--results', out], { encoding: 'utf8', timeout: 280_000, stdio: ['ignore', 'pipe', 'ignore'] });
    const results = JSON.parse(readFileSync(join(out, 'cold-start.json'), 'utf8'));
    const baseline = results.node_baseline;
    assert.ok(baseline, 'results.node_baseline');
    assert.deepEqual(baseline.decisions, ['allow']);
    assert.equal(baseline.runs, 1);
    for (const name of PHASES) assert.ok(baseline.phases[name].wall_ms > 0 && baseline.phases[name].cpu_ms >= 0, name);
    assert.ok(baseline.total_cpu_ms > 0);
    // Liftoff compiles each function on its first call: the same build, the
    // same count (TurboFan tier-ups run in the background and may differ).
    for (const name of PHASES) {
      assert.equal(baseline.compiled[name].tiers.Liftoff ?? 0, results.node.compiled[name].tiers.Liftoff ?? 0, `${name}: the same build compiles the same functions`);
    }
    assert.deepEqual(results.node_baseline_warm.decisions, ['allow']);
    assert.match(stdout, /this checkout beside the baseline/);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
  assert.throws(() => execFileSync(process.execPath, [script, '--only', 'node', '--baseline', join(tmpdir(), 'no-such-checkout')], { stdio: 'pipe' }), /--baseline: no /);
});
