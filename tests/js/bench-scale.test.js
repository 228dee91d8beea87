// Smoke test of the scale benchmarks (bench/scale/): each script runs with
// tiny sizes into a temporary directory, and its report must add up: per-shard
// keys sum to the keys written and sit where the hash slots say, every grant's
// count is exact, every call is one script (Redis) or one RPC per object it
// touches (Durable Objects), and the global counter sits on one shard / in one
// object that takes every call. The figures themselves are not checked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import { repoRoot } from './cli-helpers.js';

const run = promisify(execFile);
const GRANTS = 50;
const CALLS = 3;
const LIMIT = 2;

async function runBench(script, args) {
  const out = await mkdtemp(path.join(tmpdir(), 'toolgate-bench-scale-'));
  try {
    const { stdout } = await run(process.execPath, [path.join(repoRoot, 'bench/scale', script), ...args, '--out', out], { cwd: repoRoot, timeout: 60_000 });
    const name = script.startsWith('redis') ? 'scale-redis' : 'scale-do';
    const json = JSON.parse(await readFile(path.join(out, `${name}.json`), 'utf8'));
    const md = await readFile(path.join(out, `${name}.md`), 'utf8');
    return { json, md, stdout };
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}

const sum = (values) => values.reduce((a, b) => a + b, 0);

test('Redis Cluster: per-shard keys and calls add up, every grant is counted exactly, the global counter is one shard\'s', { skip: !existsSync('/usr/bin/redis-server') && 'redis-server is not installed' }, async () => {
  const { json, md } = await runBench('redis-cluster.bench.js', [
    '--grants', String(GRANTS), '--steps', `10,${GRANTS}`, '--calls-per-grant', String(CALLS), '--limit', String(LIMIT),
    '--concurrency', '8', '--global-grants', '20', '--no-baseline',
  ]);
  assert.equal(json.steps.length, 2);
  for (const step of json.steps) {
    const where = `${step.grants} grants`;
    assert.equal(step.per_shard.length, 3, where);
    assert.equal(step.decisions, step.grants * CALLS, where);
    assert.deepEqual(step.codes, { allowed: step.grants * LIMIT, rate_limited: step.grants * (CALLS - LIMIT) }, where);
    assert.equal(step.wrong_counts, 0, `${where}: every grant's count is ${LIMIT}`);
    // Keys: one bucket key per grant, every one on the master its slot says.
    assert.equal(step.keys_written, step.grants, where);
    assert.equal(sum(step.per_shard.map((s) => s.keys)), step.keys_written, `${where}: per-shard keys sum to the keys written`);
    assert.equal(step.keys_held, step.keys_written, where);
    for (const shard of step.per_shard) assert.equal(shard.keys, shard.predicted_keys, `${where}: shard :${shard.port} holds what CRC16 predicts`);
    // Load: one script per call, in its grant's slot; nothing else on any shard.
    assert.equal(sum(step.per_shard.map((s) => s.scripts)), step.decisions, `${where}: one script per decision`);
    for (const shard of step.per_shard) assert.equal(shard.scripts, shard.keys * CALLS, `${where}: shard :${shard.port} ran its grants' calls`);
    assert.ok(Math.abs(sum(step.per_shard.map((s) => s.share_of_scripts)) - 1) < 0.01, where);
  }
  const { global } = json;
  assert.equal(global.wrong_counts, 0);
  assert.equal(global.keys_written, global.grants + 1, 'grant keys and one global key');
  assert.equal(sum(global.per_shard.map((s) => s.keys)), global.keys_written);
  assert.equal(global.global_count, global.grants * LIMIT, 'the global counter counted every admitted call');
  const hot = global.per_shard.filter((s) => s.holds_global);
  assert.equal(hot.length, 1, 'one shard holds {global}');
  // A grant script and a global script per call, in slot order; when the
  // global counter's slot comes first and the grant's limit then denies, one
  // more: the global charge given back, on the global counter's shard.
  const giveBacks = global.scripts - 2 * global.decisions;
  assert.ok(giveBacks >= 0 && giveBacks <= global.codes.rate_limited, `${giveBacks} give-backs for ${global.codes.rate_limited} denials`);
  assert.equal(hot[0].scripts, global.decisions + giveBacks + (hot[0].keys - 1) * CALLS, 'the global counter\'s shard runs one script per call and the give-backs, plus its own grants\' calls');
  assert.match(md, /## How keys spread as grants grow/);
  assert.match(md, /one key, `tg:\{global:<counter key>\}/);
});

test('Durable Objects (workerd): one object per grant, requests per object add up, counts exact, the global object takes every call', async () => {
  const { json, md } = await runBench('durable-objects.bench.js', [
    '--grants', String(GRANTS), '--steps', `10,${GRANTS}`, '--calls-per-grant', String(CALLS), '--limit', String(LIMIT),
    '--concurrency', '8', '--hot-calls', '100', '--global-grants', '20', '--disk-calls', '0', '--rounds', '1',
  ]);
  assert.match(md, /not Cloudflare/);
  assert.equal(json.steps.length, 2);
  for (const step of json.steps) {
    const where = `${step.grants} grants`;
    assert.deepEqual(step.codes, { allowed: step.grants * LIMIT, rate_limited: step.grants * (CALLS - LIMIT) }, where);
    assert.equal(step.objects, step.grants, `${where}: one object per grant`);
    assert.equal(step.rpcs, step.decisions, `${where}: one RPC per decision`);
    assert.deepEqual(step.histogram, { [CALLS]: step.grants }, `${where}: every object took its grant's ${CALLS} calls`);
    assert.equal(step.wrong_counts, 0, `${where}: every grant's count is ${LIMIT}`);
    assert.equal(step.rows_held, step.grants, `${where}: one bucket row per object`);
    assert.equal(step.objects_holding, step.grants, where);
  }
  assert.equal(json.one.objects, 1);
  assert.equal(json.one.decisions, 100);
  assert.ok(json.many.objects > 1);
  assert.ok(json.one.decisions_per_s > 0 && json.many.decisions_per_s > 0);

  const { global } = json;
  assert.equal(global.objects, global.grants + 1, 'the grants\' objects and one global object');
  assert.equal(global.global_objects.length, 1);
  const [object] = global.global_objects;
  // Every call reserves at the global object first (its name sorts first); a
  // call its grant then denies gives the global charge back: one more RPC.
  const denied = global.grants * (CALLS - LIMIT);
  assert.deepEqual(object.methods, { reserve: global.decisions, rollback: denied });
  assert.equal(global.rpcs, 2 * global.decisions + denied);
  assert.equal(Object.values(global.global_counts)[0], global.grants * LIMIT);
  assert.equal(global.wrong_counts, 0);
});
