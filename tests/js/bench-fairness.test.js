// Smoke run of the proxy fairness benchmark (bench/proxy/fairness.bench.js)
// with tiny sizes: it runs end to end against a real `toolgate serve`, finds
// the largest batch the handler accepts, floods, and writes the results
// contract (bench/README.md) that bench/report.js collects. Checks the
// contract and the bookkeeping, not figures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import { repoRoot } from './cli-helpers.js';

const run = promisify(execFile);
const node = (script, args) => run(process.execPath, [path.join(repoRoot, script), ...args], { cwd: repoRoot, timeout: 180_000 });
const readJson = async (file) => JSON.parse(await readFile(file, 'utf8'));

test('fairness.bench.js: grant B alone and under grant A\'s flood, the slow-down, and its section in the summary', { timeout: 240_000 }, async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'toolgate-bench-fairness-'));
  t.after(() => rm(dir, { recursive: true, force: true }));

  // --max-batch 12: the probe bisects up to 12 (the handler accepts at least
  // that); 20 000-byte bodies; a second each.
  await node('bench/proxy/fairness.bench.js', ['--quick', '--duration', '1', '--warmup', '0.1', '--max-batch', '12',
    '--big-bytes', '20000', '--connections', '2', '--big-connections', '1', '--out', path.join(dir, 'proxy-fairness.json')]);
  const result = await readJson(path.join(dir, 'proxy-fairness.json'));
  const { summary } = result;

  for (const phase of ['alone', 'flooded']) {
    const s = summary[phase];
    assert.ok(s.calls > 0, `grant B made no call ${phase}`);
    assert.equal(s.failed, 0, `grant B's calls ${phase} all come back with the upstream's answer`);
    assert.ok(Number.isFinite(s.p50_ms) && s.p50_ms > 0 && s.p99_ms >= s.p50_ms, `${phase}: p50 ${s.p50_ms}, p99 ${s.p99_ms}`);
  }
  assert.ok(Math.abs(summary.slowdown_p50 - summary.flooded.p50_ms / summary.alone.p50_ms) < 1e-9);
  assert.ok(Math.abs(summary.slowdown_p99 - summary.flooded.p99_ms / summary.alone.p99_ms) < 1e-9);

  // The flood ran: every connection was answered, batches of the probed size,
  // large bodies of the asked size, and none of grant A's calls went upstream.
  assert.ok(summary.flood.batch_size >= 1 && summary.flood.batch_size <= 12, `batch ${summary.flood.batch_size}`);
  const [flood] = result.runs.map((r) => r.flood);
  assert.ok(flood.batches.answered >= 2 && flood.big.answered >= 1, JSON.stringify(flood));
  assert.equal(flood.big_bytes, 20000);
  assert.ok(flood.batches.statuses[200] > 0, JSON.stringify(flood.batches.statuses));
  const victimCalls = result.runs.reduce((sum, r) => sum + r.alone.calls + r.flooded.calls, 0);
  // Exactly B's calls and the warm-up's reached the upstream (a warm-up call
  // that failed may or may not have); none of A's.
  const least = victimCalls + summary.warmup.calls;
  assert.ok(summary.upstream_tools_calls >= least && summary.upstream_tools_calls <= least + summary.warmup.failed,
    `upstream saw ${summary.upstream_tools_calls} calls; grant B made ${victimCalls}, and ${summary.warmup.calls} (+${summary.warmup.failed} failed) in the warm-up`);

  assert.equal(result.budgets.length, 1);
  assert.match(result.budgets[0].name, /grant B p99 slow-down/);
  assert.equal(typeof result.budgets[0].met, 'boolean');
  const markdown = await readFile(path.join(dir, 'proxy-fairness.md'), 'utf8');
  assert.match(markdown, /\| \*\*slow-down\*\* \| \*\*[\d.]+×\*\* \| \| \*\*[\d.]+×\*\* \|/);

  // bench/report.js files it under its own title, before the proxy's section.
  await node('bench/report.js', ['--results', dir, '--site', 'none', '--quick']);
  const summaryMd = await readFile(path.join(dir, 'summary.md'), 'utf8');
  assert.match(summaryMd, /MCP proxy: one grant waiting while another floods/);
  assert.ok(summaryMd.includes('grant B p99 slow-down while grant A floods the proxy'));
});
