// Smoke test of bench/proxy/profile-diff.js with a few hundred calls: both
// servers start, answer every call (it throws on any non-2xx), are profiled,
// and the report has CPU per call for each round and toolgate's own functions
// in the table. Checks what the tool prints, not figures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

import { repoRoot } from './cli-helpers.js';

const run = promisify(execFile);

test('profile-diff.js: CPU per call per round, the functions that differ, their callers', { timeout: 120_000 }, async () => {
  const { stdout } = await run(process.execPath, [path.join(repoRoot, 'bench/proxy/profile-diff.js'), '--requests', '300', '--top', '60'],
    { cwd: repoRoot, timeout: 110_000 });
  for (const round of [1, 2]) assert.match(stdout, new RegExp(`^\\| ${round} \\| [\\d.]+ \\| [\\d.]+ \\| [\\d.]+× \\| \\d+ \\| \\d+ \\|$`, 'm'), stdout);
  assert.match(stdout, /^Busy time per call in the profiles .*passthrough [\d.]+ µs, toolgate [\d.]+ µs\.$/m);
  // toolgate's own code is in the table: the gate decided the calls.
  assert.match(stdout, /^\| `[^`]+` worker\/(gate|handler)\.js:\d+ \| /m, stdout);
  assert.match(stdout, /^Who calls the native functions in toolgate/m);
});

test('profile-diff.js --baseline-bin: a third server from another checkout, interleaved, and what moved between the two', { timeout: 120_000 }, async () => {
  // This checkout as its own baseline: the point is the report, not a difference.
  const { stdout } = await run(process.execPath, [path.join(repoRoot, 'bench/proxy/profile-diff.js'), '--requests', '300', '--top', '20',
    '--baseline-bin', path.join(repoRoot, 'bin/toolgate.js')], { cwd: repoRoot, timeout: 110_000 });
  assert.match(stdout, /^baseline: .*bin\/toolgate\.js; toolgate: .*bin\/toolgate\.js$/m, stdout);
  for (const round of [1, 2]) {
    assert.match(stdout, new RegExp(`^\\| ${round} \\| [\\d.]+ \\| [\\d.]+ \\| [\\d.]+× \\| [\\d.]+ \\| [\\d.]+× \\| \\d+ \\| \\d+ \\| \\d+ \\|$`, 'm'), stdout);
  }
  assert.match(stdout, /^Busy time per call: baseline [\d.]+ µs, toolgate [\d.]+ µs\.$/m, stdout);
  assert.match(stdout, /^\| function \| toolgate − baseline \(µs\/call\) \| baseline \| toolgate \|$/m, stdout);
});

test('profile-diff.js --gc --syscalls --alloc: collections, system calls and bytes allocated per call, per server', { timeout: 150_000 }, async () => {
  const { stdout } = await run(process.execPath, [path.join(repoRoot, 'bench/proxy/profile-diff.js'), '--requests', '300', '--rounds', '1', '--top', '80',
    '--no-profile', '--gc', '--syscalls', '--alloc'], { cwd: repoRoot, timeout: 140_000 });
  for (const side of ['passthrough', 'toolgate']) {
    assert.match(stdout, new RegExp(`^\\| ${side} \\| \\d+ \\| [\\d.]+ \\| \\d+ \\| [\\d.]+ \\|$`, 'm'), stdout);
  }
  // Both servers answer each call with two socket writes (the request upstream, the answer back): strace counted them.
  assert.match(stdout, /^\| writev \| \d\.\d{3} \| \d\.\d{3} \|$/m, stdout);
  assert.match(stdout, /^\| all \| [\d.]+ \| [\d.]+ \|$/m, stdout);
  const bytes = /^Bytes allocated per call .*: passthrough (\d+), toolgate (\d+)\.$/m.exec(stdout);
  assert.ok(bytes && Number(bytes[1]) > 0 && Number(bytes[2]) > 0, stdout);
  // toolgate's own functions allocate: the handler is in the table.
  assert.match(stdout, /^\| `[^`]+` worker\/(gate|handler|audit)\.js:\d+ \| -?\d+ \| \d+ \| \d+ \|$/m, stdout);
});
