// Smoke test of bench/proxy/guarantees-inprocess.js with a few hundred calls:
// every case runs for this checkout and a baseline (this checkout again),
// through a real local upstream for the header reads, and the report has a
// row per case with a figure per checkout; a bad flag is refused. Checks what
// the tool prints, not figures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

import { repoRoot } from './cli-helpers.js';

const run = promisify(execFile);
const script = path.join(repoRoot, 'bench/proxy/guarantees-inprocess.js');

test('guarantees-inprocess.js: each case for this checkout and a baseline', { timeout: 120_000 }, async () => {
  const { stdout } = await run(process.execPath, [script, '--calls', '300', '--rounds', '2', '--baseline', repoRoot], { cwd: repoRoot, timeout: 110_000 });
  assert.match(stdout, /^The guarantees' per-call work in process, least of 2 interleaved rounds of 300 calls/m, stdout);
  assert.match(stdout, /^\| case \| this checkout \| baseline \(.+\) \|$/m, stdout);
  for (const name of ['duplicate-key scan, request \\+ answer', 'seven reads of an answer\'s headers', 'audit line \\(eventLine\\)',
    'canonical JSON of the arguments', 'argument HMAC \\(canonical JSON \\+ HMAC\\)']) {
    assert.match(stdout, new RegExp(`^\\| ${name} \\| \\d+\\.\\d{3} \\| \\d+\\.\\d{3} \\|$`, 'm'), stdout);
  }
});

test('guarantees-inprocess.js: a bad --rounds is refused', async () => {
  await assert.rejects(run(process.execPath, [script, '--rounds', '0'], { cwd: repoRoot }), (error) => /--rounds must be a positive integer/.test(error.stderr));
});
