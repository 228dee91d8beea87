// Smoke test of the benchmark pipeline (npm run bench): the WebAssembly matrix
// with tiny sizes, the native merge on a fixture, and bench/report.js on a
// temporary results directory holding fixture JSON/Markdown files. Checks the
// contract (bench/README.md), not figures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import { repoRoot } from './cli-helpers.js';

const run = promisify(execFile);
const node = (script, args) => run(process.execPath, [path.join(repoRoot, script), ...args], { cwd: repoRoot, timeout: 60000 });
const readJson = async (file) => JSON.parse(await readFile(file, 'utf8'));
const SPEC_OPERATORS = ['eq', 'neq', 'lt', 'lte', 'gt', 'gte', 'in', 'not_in', 'exists', 'regex', 'contains', 'starts_with', 'ends_with', 'glob'];

test('the benchmark pipeline: matrix, native merge and summary', { timeout: 60000 }, async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'toolgate-bench-'));
  t.after(() => rm(dir, { recursive: true, force: true }));

  await t.test('matrix.bench.js covers every size, argument count, operator and algorithm', async () => {
    await node('bench/js/matrix.bench.js', ['--quick', '--sizes', '1,3', '--args', '0,2', '--seconds', '0.01', '--results', dir]);
    const matrix = await readJson(path.join(dir, 'core-matrix.json'));
    const names = matrix.cases.map((c) => c.name);
    for (const tools of [1, 3]) for (const args of [0, 2]) assert.ok(names.includes(`matrix/tools:${tools}/args:${args}`), names.join());
    for (const op of SPEC_OPERATORS) assert.ok(names.includes(`operator/${op}`), `no case for operator ${op}`);
    for (const algorithm of ['fixed', 'sliding']) assert.ok(names.some((n) => n.startsWith(`limits/${algorithm}/`)), algorithm);
    for (const c of matrix.cases) {
      assert.ok(Number.isFinite(c.p50_us) && c.p50_us > 0 && c.p99_us >= c.p50_us, `${c.name}: ${c.p50_us} ${c.p99_us}`);
      assert.ok(c.decisions_per_s > 0, c.name);
    }
    const markdown = await readFile(path.join(dir, 'core-matrix.md'), 'utf8');
    assert.match(markdown, /\| tools:3\/args:2 \| [\d.]+ \| [\d.]+ \| [\d ]+ \|/);
  });

  await t.test('replay.bench.js: calls/s through the core, with --baseline and by the CLI, a budget, the diff it found', async () => {
    await node('bench/js/replay.bench.js', ['--quick', '--calls', '5000', '--results', dir]);
    const replay = await readJson(path.join(dir, 'replay.json'));
    assert.equal(replay.calls, 5000);
    assert.ok(replay.calls_per_second_median > 0 && replay.calls_per_cpu_second_median > 0);
    assert.ok(replay.baseline.calls_per_second_median > 0 && replay.cli.calls_per_second_median > 0);
    // Reading and deciding, apart: together they take the whole time.
    assert.ok(replay.reading_per_cpu_second > replay.calls_per_cpu_second_median && replay.deciding_per_cpu_second > replay.calls_per_cpu_second_median);
    // The new policy refuses refunds over 450 (not 500) to non-admins: those, and only those, change.
    assert.ok(replay.changed > 0 && replay.changed < replay.calls / 10, `${replay.changed} changed`);
    assert.deepEqual(replay.by_change, { 'allow->deny': replay.changed });
    assert.deepEqual(replay.by_rule, { '/tools/create_refund/deny_if/0': replay.changed });
    assert.deepEqual(replay.budgets.map((b) => [b.name, b.target, typeof b.met]), [['`toolgate replay` speed, typical policy (WASM core, Node)', '≥ 100 000 calls/s', 'boolean']]);
  });

  await t.test('report-native.js turns Google Benchmark output into a budget', async () => {
    const gbench = path.join(dir, 'gbench.raw');
    await writeFile(gbench, JSON.stringify({
      context: { num_cpus: 2, mhz_per_cpu: 2000, load_avg: [0.1, 0.1, 0.1] },
      benchmarks: [
        { name: 'BM_DecideTypicalCall_median', run_name: 'BM_DecideTypicalCall', run_type: 'aggregate', aggregate_name: 'median',
          repetitions: 5, real_time: 410, cpu_time: 400, time_unit: 'ns', 'decisions/s': 2.5e6 },
        { name: 'BM_DecideTypicalCall_mean', run_name: 'BM_DecideTypicalCall', run_type: 'aggregate', aggregate_name: 'mean',
          repetitions: 5, real_time: 900, cpu_time: 900, time_unit: 'ns', 'decisions/s': 1e6 },
      ],
    }));
    await node('bench/native/report-native.js', ['--gbench', gbench, '--results', dir]);
    const native = await readJson(path.join(dir, 'core-native.json'));
    assert.equal(native.budgets.length, 1);
    assert.equal(native.budgets[0].met, true, 'the median (2.5 M/s), not the mean, decides');
    assert.match(native.budgets[0].measured, /2\.50 M\/s/);
  });

  await t.test('report.js: every budget and every section, in order, and the site page', async () => {
    const fixtures = {
      proxy: { budgets: [{ name: 'added latency p50', target: '≤ 0.5 ms', measured: '1.2 ms', met: false }] },
      cedar: { budgets: [{ name: 'faster than Cedar', target: '≥ 1×', measured: '3×', met: true }, { name: 'no verdict', target: 'x', measured: 'y' }] },
      'zz-extra': { budgets: { 'group a': { 'object form budget': true } } },
      'old-one': { note: 'no budgets, no markdown' },
    };
    for (const [name, json] of Object.entries(fixtures)) await writeFile(path.join(dir, `${name}.json`), JSON.stringify(json));
    await writeFile(path.join(dir, 'proxy.md'), '| proxy table |\n|---|\n| fixture row |\n');
    await writeFile(path.join(dir, 'cedar.md'), 'Cedar fixture section\n');
    const old = new Date(Date.now() - 3600e3);
    await utimes(path.join(dir, 'old-one.json'), old, old);
    const site = path.join(dir, 'benchmarks.md');
    await writeFile(site, '# Page\n\nprose before\n\n<!-- bench:summary:start -->\nOLD FIGURES\n<!-- bench:summary:end -->\n\nprose after\n');

    const { stdout } = await node('bench/report.js', ['--results', dir, '--site', site, '--since', String(Date.now() - 600e3), '--failed', 'durable-objects', '--quick']);
    assert.match(stdout, /budgets/);
    const summary = await readFile(path.join(dir, 'summary.md'), 'utf8');
    const json = await readJson(path.join(dir, 'summary.json'));

    const expected = [
      ...(await readJson(path.join(dir, 'core-native.json'))).budgets.map((b) => b.name),
      ...(await readJson(path.join(dir, 'replay.json'))).budgets.map((b) => b.name),
      'added latency p50', 'faster than Cedar', 'no verdict', 'group a: object form budget',
    ];
    assert.deepEqual(json.budgets.map((b) => b.name).sort(), [...expected].sort());
    for (const name of expected) assert.ok(summary.includes(name), `budget ${name} missing from summary.md`);
    assert.match(summary, /\| proxy \| added latency p50 \| ≤ 0\.5 ms \| 1\.2 ms \| \*\*not met\*\* \|/);
    assert.match(summary, /\| cedar \| faster than Cedar \| ≥ 1× \| 3× \| met \|/);

    // Sections: every results file, in the fixed order, unknown names last.
    const order = ['core-native', 'core-matrix', 'replay', 'cedar', 'proxy', 'old-one', 'zz-extra'];
    const positions = order.map((name) => summary.indexOf(`(\`${name}\`)`));
    for (const [i, p] of positions.entries()) assert.ok(p > 0, `section ${order[i]} missing`);
    assert.deepEqual([...positions].sort((a, b) => a - b), positions, 'sections out of order');
    assert.ok(summary.includes('| fixture row |') && summary.includes('Cedar fixture section'));
    assert.ok(!summary.includes('(`summary`)'), 'the summary must not summarise itself');
    assert.match(summary, /`old-one` \([^)]*\)/, 'an old result is flagged');
    assert.match(summary, /\*\*Failed\*\*.*`durable-objects`/);
    assert.match(summary, /Machine: .*\d+ cores.*Node \d+/);
    assert.equal(json.sections.find((s) => s.name === 'old-one').stale, true);
    assert.equal(json.sections.find((s) => s.name === 'proxy').stale, false);
    assert.deepEqual(json.failed, ['durable-objects']);
    assert.ok(json.results.cedar.budgets.length === 2);

    const page = await readFile(site, 'utf8');
    assert.ok(page.startsWith('# Page\n\nprose before\n\n<!-- bench:summary:start -->'));
    assert.ok(page.endsWith('<!-- bench:summary:end -->\n\nprose after\n'));
    assert.ok(!page.includes('OLD FIGURES') && page.includes('faster than Cedar'));
  });
});
