// Loading the package the way Node does: the ES module reads the .wasm next to
// itself from disk (no fetch), and calls without options share one instance.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';

import loadToolgateDefault, { loadToolgate, MemoryApprovalStore, MemoryCounterStore, PolicyError } from '../../wasm/index.js';

const root = new URL('../../', import.meta.url);
const packageJson = JSON.parse(await readFile(new URL('package.json', root), 'utf8'));
const wasmPath = new URL('wasm/dist/toolgate_core.wasm', root);

const policy = {
  version: '1',
  default: 'deny',
  tools: {
    read_file: {},
    run: { limits: [{ counter: 'run_rate', window: 'minute', max: 2, scope: 'grant' }] },
    delete_file: { action: 'deny', on_deny: 'Deleting files is not allowed.' },
  },
};
const NOW = Date.UTC(2026, 0, 1); // a minute boundary

test('the package entry point is wasm/index.js and its default export is loadToolgate', () => {
  assert.equal(packageJson.main, './wasm/index.js');
  assert.equal(packageJson.exports['.'].default, './wasm/index.js');
  assert.equal(loadToolgateDefault, loadToolgate);
});

test('loads in Node without fetch and reports the package.json version', async (t) => {
  // Node must read the file, not fetch it: count fetches.
  const realFetch = globalThis.fetch;
  let fetched = 0;
  globalThis.fetch = async (...args) => {
    fetched += 1;
    return realFetch(...args);
  };
  t.after(() => {
    globalThis.fetch = realFetch;
  });
  const toolgate = await loadToolgate();
  assert.equal(typeof toolgate.version, 'string');
  assert.match(toolgate.version, /^\d+\.\d+\.\d+/);
  assert.equal(toolgate.version, packageJson.version);
  assert.equal(fetched, 0, 'Node loads the .wasm from disk');
});

test('calls without options share one instance', async () => {
  const [a, b] = await Promise.all([loadToolgate(), loadToolgate()]);
  assert.equal(a, b);
  assert.equal(await loadToolgate({}), a);
  assert.equal(await loadToolgateDefault(), a);
});

test('compile and decide: allow, tool_denied, default_deny, rate_limited', async () => {
  const toolgate = await loadToolgate();
  const compiled = toolgate.compile(policy);
  assert.equal(compiled.ok, true);
  assert.deepEqual(compiled.diagnostics, []);
  assert.match(compiled.hash, /^[0-9a-f]{64}$/);

  assert.deepEqual(await compiled.decide({ tool: 'read_file', arguments: { path: '/tmp/x' }, grant: 'alice' }), {
    decision: 'allow',
    code: 'allowed',
    rule: '/tools/read_file',
    message: 'Allowed.',
  });
  const denied = await compiled.decide({ tool: 'delete_file', grant: 'alice' });
  assert.equal(denied.decision, 'deny');
  assert.equal(denied.code, 'tool_denied');
  assert.equal(denied.rule, '/tools/delete_file/action');
  assert.equal(denied.message, 'Deleting files is not allowed.');
  const unknown = await compiled.decide({ tool: 'format_disk' });
  assert.equal(unknown.code, 'default_deny');
  assert.equal(unknown.rule, '/default');

  const counters = new MemoryCounterStore();
  const run = (grant) => compiled.decide({ tool: 'run', grant, now: NOW + 1000 }, { counters });
  assert.equal((await run('alice')).code, 'allowed');
  assert.equal((await run('alice')).code, 'allowed');
  const limited = await run('alice');
  assert.equal(limited.decision, 'deny');
  assert.equal(limited.code, 'rate_limited');
  assert.equal(limited.rule, '/tools/run/limits/0');
  assert.equal(limited.retry_after_ms, 59_000);
  assert.equal((await run('bob')).code, 'allowed', 'scope "grant" counts per grant');
  compiled.dispose();
});

test('a policy given as text compiles to the same hash as the object', async () => {
  const toolgate = await loadToolgate();
  const fromObject = toolgate.compile(policy);
  const fromText = toolgate.compile(JSON.stringify(policy));
  assert.equal(fromText.hash, fromObject.hash);
  assert.equal(fromText.source, JSON.stringify(policy));
});

test('an invalid policy throws PolicyError', async () => {
  const toolgate = await loadToolgate();
  assert.throws(() => toolgate.compile({ version: '1', default: 'deny', tools: { run: { deny_iff: [] } } }), (error) => {
    assert.ok(error instanceof PolicyError);
    assert.equal(error.diagnostics.find((d) => d.severity === 'error').pointer, '/tools/run/deny_iff');
    return true;
  });
});

for (const [label, bytes] of [
  ['a Buffer', () => readFile(wasmPath)],
  ['a Uint8Array', async () => new Uint8Array(await readFile(wasmPath))],
  ['an ArrayBuffer', async () => {
    const buffer = await readFile(wasmPath);
    return buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength);
  }],
]) {
  test(`loads from an explicit wasmBinary (${label}) into a separate instance`, async () => {
    const shared = await loadToolgate();
    const own = await loadToolgate({ wasmBinary: await bytes() });
    assert.notEqual(own, shared, 'explicit bytes get their own instance');
    assert.equal(own.version, packageJson.version);
    const compiled = own.compile(policy);
    assert.equal((await compiled.decide({ tool: 'read_file' })).code, 'allowed');
    assert.equal((await compiled.decide({ tool: 'delete_file' })).code, 'tool_denied');
    // A policy compiled in one instance has the same hash in another.
    assert.equal(compiled.hash, shared.compile(policy).hash);
  });
}

test('loads from an explicit precompiled wasmModule', async () => {
  const module = await WebAssembly.compile(await readFile(wasmPath));
  const toolgate = await loadToolgate({ wasmModule: module });
  assert.notEqual(toolgate, await loadToolgate());
  assert.equal(toolgate.version, packageJson.version);
  assert.equal((await toolgate.compile(policy).decide({ tool: 'read_file' })).code, 'allowed');
});

test('bytes that are not WebAssembly reject instead of hanging', async () => {
  await assert.rejects(loadToolgate({ wasmBinary: new Uint8Array([1, 2, 3, 4]) }));
  // A valid but foreign module (no exports) rejects too.
  const empty = await WebAssembly.compile(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]));
  await assert.rejects(loadToolgate({ wasmModule: empty }), { name: 'EngineError' });
  // The shared instance is unaffected.
  assert.equal((await loadToolgate()).version, packageJson.version);
});

test('warm: true loads an engine of its own that decides like any other; a bad warm value is refused', async () => {
  const module = await WebAssembly.compile(await readFile(wasmPath));
  const warmed = await loadToolgate({ wasmModule: module, warm: true });
  const plain = await loadToolgate({ wasmModule: module });
  assert.notEqual(warmed, await loadToolgate({ warm: true }), 'warm: true never shares');
  assert.notEqual(await loadToolgate({ warm: true }), await loadToolgate());
  assert.equal(await loadToolgate({ warm: false }), await loadToolgate(), 'warm: false is the default (shared)');
  // The warm-up's call left no counter behind: a fresh store per engine, and
  // the engines decide the same sequence identically.
  const counters = [new MemoryCounterStore(), new MemoryCounterStore()];
  const decisions = [[], []];
  for (const [i, toolgate] of [warmed, plain].entries()) {
    const p = toolgate.compile(policy);
    for (const tool of ['run', 'run', 'run', 'read_file', 'delete_file', 'nope']) {
      decisions[i].push((await p.decide({ tool, grant: 'alice' }, { counters: counters[i], now: NOW })).code);
    }
  }
  assert.deepEqual(decisions[0], ['allowed', 'allowed', 'rate_limited', 'allowed', 'tool_denied', 'default_deny']);
  assert.deepEqual(decisions[0], decisions[1]);
  for (const bad of [1, 'yes', null, {}]) {
    await assert.rejects(loadToolgate({ warm: bad }), { name: 'ToolgateError', message: /warm/ });
  }
});

// Property: the warm-up leaves nothing in the engine that changes a decision
// (no parked evaluation, no counter, nothing cached): a warmed engine and a
// plain one decide a random sequence of calls identically, each with its own
// stores, including limits, approvals and calls to the warm-up's own tool.
test('a warmed engine decides any sequence of calls as a plain one does', async () => {
  const { random } = await import('./seeded-random.js');
  const module = await WebAssembly.compile(await readFile(wasmPath));
  const engines = [await loadToolgate({ wasmModule: module, warm: true }), await loadToolgate({ wasmModule: module })];
  const document = {
    version: '1',
    default: 'deny',
    tools: {
      run: {
        require: [{ path: 'args.mode', op: 'in', value: ['a', 'b'] }],
        deny_if: [{ conditions: [{ path: 'args.n', op: 'gt', value: 5 }, { path: 'grant.role', op: 'neq', value: 'admin' }] }],
        rate_limit: '3/minute',
      },
      refund: { limits: [{ counter: 'spend', window: 'hour', max: 100, cost_from: 'args.n' }, { window: 'minute', max: 4, algorithm: 'sliding', key: 'args.mode' }] },
      approve: { action: 'require_approval' },
      read_file: {},
    },
  };
  const policies = engines.map((e) => e.compile(document));
  const stores = engines.map(() => ({ counters: new MemoryCounterStore(), approvals: new MemoryApprovalStore() }));
  for (let seed = 1; seed <= 400; seed++) {
    const next = random(seed);
    const pick = (list) => list[Math.floor(next() * list.length)];
    const call = {
      tool: pick(['run', 'refund', 'approve', 'read_file', 'other']),
      arguments: { mode: pick(['a', 'b', 'c']), n: pick([0, 1, 5, 6, 40, -1, 1.5]) },
      grant: next() < 0.5 ? pick(['warm', 'alice', 'bob']) : { id: pick(['warm', 'alice']), role: pick(['admin', 'x']) },
    };
    const now = NOW + Math.floor(next() * 3 * 60_000);
    const results = [];
    for (const [i, p] of policies.entries()) {
      results.push({ evaluated: p.evaluate(call, { now }), decided: await p.decide(call, { ...stores[i], now }) });
    }
    assert.deepStrictEqual(results[0], results[1], `seed ${seed}: ${JSON.stringify(call)}`);
  }
});
