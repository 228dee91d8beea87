// Loading the package inside workerd (the Cloudflare Workers runtime), through
// Miniflare: the worker imports the .wasm as a precompiled WebAssembly.Module
// and passes it as `wasmModule`. workerd forbids eval / new Function and has no
// import.meta.url, so this proves the façade and the glue need neither.
//
// Every module is listed explicitly, from the fixture's imports
// (./workerd-modules.js says why).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { Miniflare } from 'miniflare';

import { moduleGraph } from './workerd-modules.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const packageJson = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8'));

async function startWorker(extra = {}) {
  const mf = new Miniflare({
    modulesRoot: root,
    modules: await moduleGraph('tests/js/fixtures/worker.js'),
    compatibilityDate: '2025-01-01',
    ...extra,
  });
  await mf.ready;
  return mf;
}

async function post(mf, body) {
  const response = await mf.dispatchFetch('http://localhost/', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

let mf = null;
let mfNodeCompat = null;
// A second worker with the nodejs_compat flag, started on first use.
async function nodeCompat() {
  mfNodeCompat ??= await startWorker({ compatibilityFlags: ['nodejs_compat'] });
  return mfNodeCompat;
}
before(async () => {
  mf = await startWorker();
});
after(async () => {
  await mf?.dispose();
  await mfNodeCompat?.dispose();
});

const MINUTE = 60_000;
const T0 = Date.UTC(2026, 0, 1); // a minute boundary
const policy = {
  version: '1',
  default: 'deny',
  tools: {
    read_file: {},
    delete_file: { action: 'deny', on_deny: 'Deleting files is not allowed.' },
    run: { limits: [{ counter: 'run_rate', window: 'minute', max: 2, scope: 'grant' }] },
  },
};

test('the isolate forbids code generation and has no import.meta.url', async () => {
  const { status, body } = await post(mf, { probe: true });
  assert.equal(status, 200);
  assert.equal(body.evalForbidden, true);
  assert.equal(body.functionForbidden, true);
  assert.equal(body.compileFromBytesForbidden, true);
  assert.equal(body.importMetaUrl, null);
  assert.equal(body.wasmModuleIsModule, true);
});

test('compiles a policy inside workerd', async () => {
  const { status, body } = await post(mf, { policy });
  assert.equal(status, 200, JSON.stringify(body));
  assert.equal(body.ok, true);
  assert.equal(body.version, packageJson.version);
  assert.deepEqual(body.diagnostics, []);
  assert.match(body.hash, /^[0-9a-f]{64}$/);
});

test('allow and deny decisions', async () => {
  await post(mf, { policy });
  const { status, body } = await post(mf, {
    calls: [
      { tool: 'read_file', arguments: { path: 'README.md' }, grant: 'alice', now: T0 },
      { tool: 'delete_file', arguments: { path: 'README.md' }, grant: 'alice', now: T0 },
      { tool: 'format_disk', grant: 'alice', now: T0 },
      { tool: '', grant: 'alice', now: T0 },
    ],
  });
  assert.equal(status, 200, JSON.stringify(body));
  assert.deepEqual(body.decisions[0], { decision: 'allow', code: 'allowed', rule: '/tools/read_file', message: 'Allowed.' });
  assert.deepEqual(body.decisions[1], {
    decision: 'deny',
    code: 'tool_denied',
    rule: '/tools/delete_file/action',
    message: 'Deleting files is not allowed.',
  });
  assert.equal(body.decisions[2].code, 'default_deny');
  assert.equal(body.decisions[2].rule, '/default');
  assert.equal(body.decisions[3].code, 'invalid_call');
});

test('rate limits hold across requests (the isolate keeps its MemoryCounterStore)', async () => {
  await post(mf, { policy });
  const run = async (grant, now) => (await post(mf, { calls: [{ tool: 'run', grant, now }] })).body.decisions[0];
  assert.equal((await run('bob', T0 + 1_000)).code, 'allowed');
  assert.equal((await run('bob', T0 + 2_000)).code, 'allowed');
  const limited = await run('bob', T0 + 20_000);
  assert.equal(limited.decision, 'deny');
  assert.equal(limited.code, 'rate_limited');
  assert.equal(limited.rule, '/tools/run/limits/0');
  assert.equal(limited.retry_after_ms, 40_000);
  assert.equal((await run('carol', T0 + 20_000)).code, 'allowed', 'another grant has its own count');
  // Recompiling the policy keeps the counts (they live in the store, keyed by counter).
  await post(mf, { policy });
  assert.equal((await run('bob', T0 + 30_000)).code, 'rate_limited');
  // The next fixed window starts from zero.
  assert.equal((await run('bob', T0 + MINUTE)).code, 'allowed');
});

test('an invalid policy surfaces as a PolicyError with diagnostics', async () => {
  await post(mf, { policy });
  const { status, body } = await post(mf, {
    policy: '{\n  "version": "1",\n  "default": "deny",\n  "tools": { "run": { "deny_iff": [] } }\n}',
  });
  assert.equal(status, 422);
  assert.equal(body.error.name, 'PolicyError');
  assert.equal(body.error.code, 'invalid_policy');
  assert.match(body.error.message, /^policy:4:\d+: .*deny_iff/);
  const [diagnostic] = body.error.diagnostics;
  assert.equal(diagnostic.code, 'unknown_field');
  assert.equal(diagnostic.severity, 'error');
  assert.equal(diagnostic.pointer, '/tools/run/deny_iff');
  assert.equal(diagnostic.line, 4);
  assert.ok(diagnostic.column > 0);
  // The previous policy is still in force after a failed compile.
  const { body: after } = await post(mf, { calls: [{ tool: 'read_file', now: T0 }] });
  assert.equal(after.decisions[0].code, 'allowed');
});

test('loadToolgate() without wasmModule rejects with a ToolgateError that says what to pass', async () => {
  for (const worker of [mf, await nodeCompat()]) {
    const { body } = await post(worker, { loadWithoutOptions: true });
    assert.equal(body.loaded, false);
    assert.equal(body.name, 'ToolgateError');
    assert.match(body.message, /wasmModule/);
  }
});

test('one WebAssembly instance serves every request of the isolate', async () => {
  await post(mf, { policy });
  await post(mf, { policy });
  const { body } = await post(mf, { calls: [{ tool: 'read_file', now: T0 }] });
  assert.equal(body.loads, 1);
});

test('with the nodejs_compat flag (process exists) the wasmModule path is still taken', async () => {
  const worker = await nodeCompat();
  const probe = await post(worker, { probe: true });
  assert.equal(probe.body.importMetaUrl, null);
  const compiled = await post(worker, { policy });
  assert.equal(compiled.status, 200, JSON.stringify(compiled.body));
  assert.equal(compiled.body.version, packageJson.version);
  const { body } = await post(worker, {
    calls: [
      { tool: 'run', grant: 'dave', now: T0 },
      { tool: 'run', grant: 'dave', now: T0 },
      { tool: 'run', grant: 'dave', now: T0 },
    ],
  });
  assert.deepEqual(body.decisions.map((d) => d.code), ['allowed', 'allowed', 'rate_limited']);
});
