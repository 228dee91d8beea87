// Smoke test of bench/proxy/redis-store-cpu.js with a few hundred calls on a
// real redis-server (it starts its own): both stores (this checkout as its
// own baseline) reserve, and the report has a row per store with CPU per
// call. Checks what the tool prints, not figures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

import { repoRoot } from './cli-helpers.js';

const run = promisify(execFile);

test('redis-store-cpu.js: CPU per reserve for this checkout and a baseline, sequential and in bursts', { timeout: 120_000 }, async () => {
  const { stdout } = await run(process.execPath, [path.join(repoRoot, 'bench/proxy/redis-store-cpu.js'), '--calls', '200', '--rounds', '3', '--baseline', repoRoot],
    { cwd: repoRoot, timeout: 110_000 });
  assert.match(stdout, /^RedisCounterStore\.reserve\(\) CPU per call, in process, medians of 3 interleaved rounds/m, stdout);
  for (const store of ['baseline \\(.+\\)', 'this checkout']) {
    assert.match(stdout, new RegExp(`^\\| ${store} \\| [\\d.]+ \\| [\\d.]+ \\| [\\d.]+ \\| [\\d.]+ \\| [\\d.]+ \\| [\\d.]+, [\\d.]+, [\\d.]+ \\|$`, 'm'), stdout);
  }
});
