// Smoke run of the proxy benchmark (bench/proxy/proxy.bench.js) with tiny
// durations and without Redis: every case runs end to end against real
// `toolgate serve` processes, the metrics on/off comparison runs its pairs
// while a scraper reads /metrics, and the results contract (bench/README.md)
// holds the budget it computes. Checks the contract and the bookkeeping, not
// figures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import { repoRoot } from './cli-helpers.js';

const run = promisify(execFile);
const readJson = async (file) => JSON.parse(await readFile(file, 'utf8'));

test('proxy.bench.js: every case, metrics, pins and OAuth on vs off in pairs, the budgets', { timeout: 300_000 }, async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'toolgate-bench-proxy-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const out = path.join(dir, 'proxy.json');
  await run(process.execPath, [path.join(repoRoot, 'bench/proxy/proxy.bench.js'), '--quick', '--no-redis', '--duration', '0.5', '--seq-duration', '0.2',
    '--warmup', '0.1', '--connections', '2', '--metrics-pairs', '5', '--metrics-seconds', '0.4', '--out', out], { cwd: repoRoot, timeout: 240_000 });
  const result = await readJson(out);

  const m = result.metrics_on_off;
  assert.equal(m.pairs.length, 5);
  m.pairs.forEach((pair, i) => {
    for (const side of ['off', 'on']) {
      assert.ok(pair[side].requests > 0 && pair[side].rps > 0, `pair ${i + 1}: no ${side} request was answered`);
      assert.equal(pair[side].non2xx, 0, `pair ${i + 1}, ${side}: every call allowed and answered`);
      assert.ok(pair[side].cpu_ms_per_request > 0, `pair ${i + 1}, ${side}: CPU per request`);
    }
    assert.ok(Math.abs(pair.throughput_ratio - pair.on.rps / pair.off.rps) < 1e-9);
  });
  // 5 pairs: the median is the third ratio, the trimmed mean (what the
  // throughput budgets read) the mean of the middle three.
  const ratios = m.pairs.map((p) => p.throughput_ratio).sort((a, b) => a - b);
  assert.equal(m.throughput_ratio_median, ratios[2]);
  assert.ok(Math.abs(m.throughput_ratio_trimmed - (ratios[1] + ratios[2] + ratios[3]) / 3) < 1e-12, String(m.throughput_ratio_trimmed));
  const cpuRatios = m.pairs.map((p) => p.cpu_ratio).sort((a, b) => a - b);
  assert.ok(Math.abs(m.cpu_ratio_trimmed - (cpuRatios[1] + cpuRatios[2] + cpuRatios[3]) / 3) < 1e-12, String(m.cpu_ratio_trimmed));
  // The scraper read /metrics (it scrapes once more when stopped), never failed,
  // and the server counted decisions: the metrics were on and collecting.
  assert.ok(m.scraper.scrapes >= 1, JSON.stringify(m.scraper));
  assert.equal(m.scraper.failures, 0, JSON.stringify(m.scraper.errors));
  assert.ok(m.scraper.decisions >= m.pairs.reduce((sum, p) => sum + p.on.requests, 0), `${m.scraper.decisions} decisions counted`);
  // The in-process figure: what the metrics add to one call, and its share of a request's CPU.
  assert.ok(Number.isFinite(m.in_process_us_per_call) && m.in_process_us_per_call >= 0, String(m.in_process_us_per_call));
  assert.ok(Math.abs(m.in_process_share_of_cpu_per_request - m.in_process_us_per_call / 1000 / m.cpu_ms_per_request_median.off) < 1e-12);

  const budget = result.budgets.find((b) => /metrics on .* vs off/.test(b.name));
  assert.ok(budget, result.budgets.map((b) => b.name).join('\n'));
  assert.equal(budget.target, '≤ 2 % lower');
  assert.equal(budget.met, m.throughput_ratio_trimmed >= 0.98);
  assert.match(budget.measured, /^-?[\d.]+ % lower \(trimmed mean of 5 pairs' ratios, median -?[\d.]+ % lower/);

  // Pins on vs off: the same pairs, and the throughput budget reads their trimmed mean.
  const pins = result.pins_on_off;
  assert.equal(pins.pairs.length, 5);
  for (const pair of pins.pairs) {
    for (const side of ['off', 'on']) assert.ok(pair[side].requests > 0 && pair[side].non2xx === 0, JSON.stringify(pair[side]));
  }
  const pinsRatios = pins.pairs.map((p) => p.throughput_ratio).sort((a, b) => a - b);
  assert.equal(pins.throughput_ratio_median, pinsRatios[2]);
  assert.ok(Math.abs(pins.throughput_ratio_trimmed - (pinsRatios[1] + pinsRatios[2] + pinsRatios[3]) / 3) < 1e-12);
  const pinsBudget = result.budgets.find((b) => /^pins: throughput/.test(b.name));
  assert.equal(pinsBudget.met, pins.throughput_ratio_trimmed >= 0.95);
  assert.match(pinsBudget.measured, /^[\d.]+ % \(trimmed mean of 5 pairs' ratios, median [\d.]+ %: .*CPU per request -?[\d.]+ %, median -?[\d.]+ %/);
  // Every pair also ran each side sequentially: the added p50 budgets read
  // the median of the pairs' differences, for pins and for OAuth.
  for (const pair of pins.pairs) {
    assert.ok(Math.abs(pair.added_sequential_p50_ms - (pair.on.sequential_p50_ms - pair.off.sequential_p50_ms)) < 1e-12);
  }
  assert.equal(pins.added_sequential_p50_ms_median, pins.pairs.map((p) => p.added_sequential_p50_ms).sort((a, b) => a - b)[2]);
  const pinsP50 = result.budgets.find((b) => /^pins: added latency/.test(b.name));
  assert.equal(pinsP50.met, pins.added_sequential_p50_ms_median <= 0.05);
  assert.match(pinsP50.measured, /^-?[\d.]+ ms \(median of 5 pairs/);
  const oauth = result.oauth_vs_static_token;
  assert.equal(oauth.pairs.length, 5);
  for (const pair of oauth.pairs) {
    // the OAuth side was called with the JWT: every call allowed and answered
    for (const side of ['off', 'on']) assert.ok(pair[side].requests > 0 && pair[side].non2xx === 0, JSON.stringify(pair[side]));
  }
  const oauthBudget = result.budgets.find((b) => /^OAuth JWT added p50/.test(b.name));
  assert.equal(oauthBudget.met, oauth.added_sequential_p50_ms_median <= 0.05);
  assert.match(oauthBudget.measured, /^-?[\d.]+ ms \(median of 5 pairs/);

  // Every case of the table ran (Redis left out).
  assert.deepEqual(Object.keys(result.summary), ['direct', 'passthrough', 'toolgate (memory store)', 'toolgate (memory store, metrics on)',
    'toolgate (memory store, OAuth JWT)', 'toolgate (memory store, pins)']);
  // Each server's first call, timed (a cold start's leftover for the first client).
  assert.deepEqual(Object.keys(result.first_call_ms), Object.keys(result.summary));
  for (const [name, ms] of Object.entries(result.first_call_ms)) assert.ok(Number.isFinite(ms) && ms > 0, `${name}: ${ms}`);
  const markdown = await readFile(path.join(dir, 'proxy.md'), 'utf8');
  assert.match(markdown, /^- the first tools\/call each server answered after it started \(ms, wall\): direct [\d.]+, passthrough [\d.]+, toolgate \(memory store\) [\d.]+/m);
  assert.match(markdown, /Metrics on vs off, paired: 5 pairs/);
  assert.match(markdown, /Pins on vs off, paired: 5 pairs/);
  assert.match(markdown, /OAuth JWT vs static token, paired: 5 pairs/);
  assert.match(markdown, /\| \*\*median\*\* \|/);
  assert.match(markdown, /\| \*\*trimmed mean\*\* \(the middle half\) \| \| \| \*\*[\d.]+ %\*\* \|/);
  assert.match(markdown, /in process, without the network: metrics add [\d.]+ µs of CPU to a call/);
});
