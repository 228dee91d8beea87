// The JS API of wasm/index.js: errors, check/compile, evaluate/finish,
// decide/authorize with the in-memory stores, store failures, hostile input,
// MemoryCounterStore semantics, and index.d.ts against the runtime exports.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';

import * as api from '../../wasm/index.js';
import {
  EngineError,
  estimateCount,
  loadToolgate,
  MemoryApprovalStore,
  MemoryCounterStore,
  PolicyError,
  StoreError,
  ToolgateError,
} from '../../wasm/index.js';

const toolgate = await loadToolgate();

const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const T0 = Date.UTC(2026, 0, 1); // 2026-01-01T00:00:00Z, aligned to every window

// After anything hostile: the same instance still answers, with no restart.
async function assertStillWorks() {
  // `generation` (internal) counts engine restarts: hostile input must cause none.
  assert.equal(toolgate.generation, 0, 'the WebAssembly engine was never restarted');
  assert.equal(await toolgate.ready(), toolgate);
  const policy = toolgate.compile({ version: '1', default: 'deny', tools: { ping: {} } });
  assert.deepEqual(policy.evaluate({ tool: 'ping' }), { decision: 'allow', code: 'allowed', rule: '/tools/ping', message: 'Allowed.' });
  assert.equal(policy.evaluate({ tool: 'pong' }).code, 'default_deny');
  assert.equal(toolgate.version, (await loadToolgate()).version);
  policy.dispose();
}

// The error fn throws (failing the test when it does not).
function thrown(fn) {
  try {
    fn();
  } catch (error) {
    return error;
  }
  assert.fail('expected an exception');
}

function assertDiagnostic(d) {
  assert.equal(typeof d.code, 'string');
  assert.match(d.code, /^[a-z]+(_[a-z]+)*$/);
  assert.ok(d.severity === 'error' || d.severity === 'warning', `severity ${d.severity}`);
  assert.equal(typeof d.message, 'string');
  assert.ok(d.message.length > 0);
  assert.equal(typeof d.pointer, 'string');
  assert.ok(d.pointer === '' || d.pointer.startsWith('/'), `pointer ${d.pointer}`);
  assert.ok(Number.isInteger(d.line) && d.line >= 0, `line ${d.line}`);
  assert.ok(Number.isInteger(d.column) && d.column >= 0, `column ${d.column}`);
}

describe('errors', () => {
  // Eight problems on known lines and columns.
  const broken = `{
  "version": "1",
  "default": "maybe",
  "deny_iff": [],
  "tools": {
    "run": { "action": "nope", "limits": [ { "window": "fortnight", "max": 0 } ] },
    "grep": { "args": { "type": "object", "properties": { "q": { "type": "string", "pattern": "(a" } } } },
    "x": { "deny_if": [ { "conditions": [ { "path": "nowhere.x", "op": "like", "value": 1 } ] } ] }
  }
}`;

  test('PolicyError is a real Error subclass with a stable name and code', () => {
    const caught = thrown(() => toolgate.compile(broken));
    assert.ok(caught instanceof Error);
    assert.ok(caught instanceof ToolgateError);
    assert.ok(caught instanceof PolicyError);
    assert.equal(caught.name, 'PolicyError');
    assert.equal(caught.code, 'invalid_policy');
    assert.equal(Object.prototype.toString.call(caught), '[object Error]');
    assert.match(caught.stack, /PolicyError/);
    assert.match(caught.message, /^policy:3:14: "default" must be "allow" or "deny" \(got "maybe"\) \(and 7 more\)$/);
  });

  test('the source option names the file in the message', () => {
    assert.throws(() => toolgate.compile(broken, { source: 'policies/prod.json' }), { message: /^policies\/prod\.json:3:14: / });
  });

  test('diagnostics list every problem with code, line, column and pointer', () => {
    const error = thrown(() => toolgate.compile(broken));
    for (const d of error.diagnostics) assertDiagnostic(d);
    assert.deepEqual(
      error.diagnostics.map((d) => [d.code, d.severity, d.line, d.column, d.pointer]),
      [
        ['invalid_value', 'error', 3, 14, '/default'],
        ['unknown_field', 'error', 4, 3, '/deny_iff'],
        ['invalid_value', 'error', 6, 24, '/tools/run/action'],
        ['invalid_window', 'error', 6, 56, '/tools/run/limits/0/window'],
        ['invalid_value', 'error', 6, 76, '/tools/run/limits/0/max'],
        ['invalid_regex', 'error', 7, 95, '/tools/grep/args/properties/q/pattern'],
        ['invalid_path', 'error', 8, 53, '/tools/x/deny_if/0/conditions/0/path'],
        ['invalid_operator', 'error', 8, 72, '/tools/x/deny_if/0/conditions/0/op'],
      ],
    );
    // check() reports the same problems without throwing.
    const checked = toolgate.check(broken);
    assert.equal(checked.ok, false);
    assert.deepEqual(checked.diagnostics, error.diagnostics);
  });

  test('JSON syntax errors and duplicate keys carry positions', () => {
    const trailingComma = toolgate.check('{"version": "1",\n "default": "deny",\n "tools": {"a": {},}\n}');
    assert.equal(trailingComma.ok, false);
    assert.deepEqual(
      trailingComma.diagnostics.map((d) => [d.code, d.line, d.column]),
      [['json_syntax', 3, 20]],
    );
    const duplicate = toolgate.check('{"version": "1", "default": "deny", "tools": {"a": {}, "a": {}}}');
    assert.deepEqual(
      duplicate.diagnostics.map((d) => [d.code, d.line, d.column, d.pointer]),
      [['json_duplicate_key', 1, 56, '/tools/a']],
    );
  });

  test('columns count Unicode code points, not UTF-16 units or bytes', () => {
    const { diagnostics } = toolgate.check('{"description": "😀é", "version": "2", "default": "deny"}');
    const version = diagnostics.find((d) => d.pointer === '/version');
    // {"description": "😀é", "version": "2": the value "2" starts at code point 34
    // (35 in UTF-16 units, 37 in UTF-8 bytes).
    assert.equal(version.line, 1);
    assert.equal(version.column, 34);
  });

  test('a value JSON cannot represent is a PolicyError, not a crash', async () => {
    const cycle = { version: '1' };
    cycle.self = cycle;
    for (const value of [cycle, { version: '1', n: 1n }, () => {}, Symbol('policy')]) {
      const caught = thrown(() => toolgate.compile(value));
      assert.ok(caught instanceof PolicyError);
      assert.equal(caught.diagnostics.length, 1);
      assertDiagnostic(caught.diagnostics[0]);
      assert.equal(caught.diagnostics[0].severity, 'error');
    }
    await assertStillWorks();
  });

  test('the other error classes', () => {
    for (const [Class, code] of [
      [StoreError, 'store_error'],
      [EngineError, 'engine_error'],
    ]) {
      const cause = new Error('underlying');
      const error = new Class('message', { cause });
      assert.ok(error instanceof Error);
      assert.ok(error instanceof ToolgateError);
      assert.ok(error instanceof Class);
      assert.equal(error.name, Class.name);
      assert.equal(error.code, code);
      assert.equal(error.cause, cause);
    }
    assert.equal(new ToolgateError('x').name, 'ToolgateError');
    assert.equal(new PolicyError([]).message, 'invalid policy');
    assert.deepEqual(new PolicyError([]).diagnostics, []);
  });
});

describe('check() and compile()', () => {
  test('check() never throws, whatever it is given', async () => {
    const cycle = {};
    cycle.cycle = cycle;
    const inputs = [
      undefined, null, 0, 42, -1, NaN, true, false, '', ' ', '\u0000', 'null', '[]', '{}', '"version"',
      '{"version": "1"', '{"version": "1"} trailing', '\uFEFF{"version": "1"}', '{"version": "1", "description": "\uD800"}',
      '{"version": "1", "description": "\\uD800"}', '{"version": 1}', [], [1, 2], {}, { version: 1 }, { version: '1', tools: [] },
      { version: '1', tools: { a: null } }, { version: '1', hide: 'x' }, () => {}, Symbol('x'), 10n, { n: 10n }, cycle,
      new Date(0), /regex/, new Map(), 'x'.repeat(100_000), '['.repeat(100_000), '{"a":'.repeat(50_000),
      `{"version": "1", "tools": {${Array.from({ length: 200 }, (_, i) => `"t${i}": {"action": "x${i}"}`).join(',')}}}`,
    ];
    for (const input of inputs) {
      let result;
      assert.doesNotThrow(() => {
        result = toolgate.check(input);
      }, `check(${typeof input === 'string' ? JSON.stringify(input.slice(0, 40)) : String(typeof input)})`);
      assert.equal(typeof result.ok, 'boolean');
      assert.ok(Array.isArray(result.diagnostics));
      if (!result.ok) assert.ok(result.diagnostics.some((d) => d.severity === 'error'));
      for (const d of result.diagnostics) assertDiagnostic(d);
    }
    await assertStillWorks();
  });

  test('the 200 problems of one policy are all reported', () => {
    const text = `{"version": "1", "default": "deny", "tools": {${Array.from({ length: 200 }, (_, i) => `"t${i}": {"action": "x${i}"}`).join(',')}}}`;
    const { ok, diagnostics } = toolgate.check(text);
    assert.equal(ok, false);
    assert.equal(diagnostics.length, 200);
    assert.deepEqual(
      diagnostics.map((d) => d.pointer),
      Array.from({ length: 200 }, (_, i) => `/tools/t${i}/action`),
    );
  });

  test('a valid policy with warnings compiles; the warnings are on policy.diagnostics', () => {
    const source = { version: '1', hide: ['secret'], tools: { secret: {}, grep: { args: { pattern: '^[a-z]+$' } } } };
    const checked = toolgate.check(source);
    assert.equal(checked.ok, true);
    const policy = toolgate.compile(source);
    assert.equal(policy.ok, true);
    assert.deepEqual(policy.diagnostics, checked.diagnostics);
    assert.deepEqual(
      policy.diagnostics.map((d) => [d.code, d.severity, d.pointer]),
      [
        ['missing_default', 'warning', ''],
        ['hidden_tool_entry', 'warning', '/tools/secret'],
        ['untyped_schema', 'warning', '/tools/grep/args'],
      ],
    );
    for (const d of policy.diagnostics) assertDiagnostic(d);
    // A copy each time: callers cannot corrupt the policy's list.
    policy.diagnostics[0].code = 'changed';
    policy.diagnostics.pop();
    assert.equal(policy.diagnostics[0].code, 'missing_default');
    assert.equal(policy.diagnostics.length, 3);
    // The missing default denies (with the warning above).
    assert.equal(policy.evaluate({ tool: 'other' }).code, 'default_deny');
    assert.equal(policy.isHidden('secret'), true);
    assert.equal(policy.isHidden('grep'), false);
    assert.equal(policy.evaluate({ tool: 'secret' }).code, 'hidden');
  });

  test('the published PolicyLayer example compiles unchanged', async () => {
    const policy = toolgate.compile(
      '{ "version": "1", "default": "deny",\n  "tools": { "run": { "limits": [ { "counter": "run_rate", "window": "minute", "max": 10, "scope": "grant" } ] } } }',
    );
    assert.deepEqual(policy.diagnostics, []);
    const counters = new MemoryCounterStore();
    for (let i = 0; i < 10; i += 1) assert.equal((await policy.decide({ tool: 'run', grant: 'ci' }, { counters, now: T0 })).code, 'allowed');
    assert.equal((await policy.decide({ tool: 'run', grant: 'ci' }, { counters, now: T0 })).code, 'rate_limited');
  });

  test('hash is the SHA-256 of the policy text; source is the text', async () => {
    const { createHash } = await import('node:crypto');
    const text = '{ "default": "deny",\n  "version": "1" }\n';
    const policy = toolgate.compile(text);
    assert.equal(policy.hash, createHash('sha256').update(text).digest('hex'));
    assert.equal(policy.source, text);
  });

  test('names lists every tool key and hide entry: exact names and globs, sorted, read-only', () => {
    const policy = toolgate.compile({
      version: '1',
      default: 'allow',
      hide: ['secret_*', 'drop_db', 'run', '*_admin', 'drop_db'],
      tools: { run: {}, 'read_*': {}, write: { action: 'deny' }, café: {}, '*': { action: 'deny' } },
    });
    assert.deepEqual(policy.names, { exact: ['café', 'drop_db', 'run', 'write'], globs: ['*', '*_admin', 'read_*', 'secret_*'] });
    // The same object every time, frozen all the way down.
    assert.equal(policy.names, policy.names);
    assert.ok(Object.isFrozen(policy.names) && Object.isFrozen(policy.names.exact) && Object.isFrozen(policy.names.globs));
    assert.throws(() => policy.names.exact.push('evil'), TypeError);
    assert.throws(() => { policy.names.globs[0] = 'x'; }, TypeError);
    assert.throws(() => { policy.names = {}; }, TypeError);
    assert.deepEqual(policy.names.exact, ['café', 'drop_db', 'run', 'write']);

    const bare = toolgate.compile({ version: '1', default: 'deny' });
    assert.deepEqual(bare.names, { exact: [], globs: [] });
    // Names with characters JSON escapes come back as written.
    const odd = toolgate.compile({ version: '1', default: 'deny', hide: ['a"b*'], tools: { 'x\\y': {}, 'ü\u00a0': {} } });
    assert.deepEqual(odd.names, { exact: ['x\\y', 'ü\u00a0'], globs: ['a"b*'] });
  });

  // What the façade reads once per compile crosses in one JSON text written
  // by hand in the core (CompiledPolicy::summary, no nlohmann serializer for
  // a clean policy): over seeded random policies (names with quotes,
  // backslashes, control characters, non-ASCII and astral characters, globs,
  // monitor modes, a missing default that warns, hidden entries, fields and
  // values that fail), it says what
  // the policy text and the core's own accessors say.
  test('property: ok, hash, diagnostics, names and modes are what the text and the core say', async () => {
    const { createHash } = await import('node:crypto');
    const { random } = await import('./seeded-random.js');
    const next = random(2026);
    const pick = (list) => list[Math.floor(next() * list.length)];
    const pieces = ['run', 'a', '"', '\\', '\n', '\u0001', '\u001f', '\u007f', 'é', '\u00a0', '日本', '😀', '\u2028', '*', '_', ' ', '/'];
    const name = () => Array.from({ length: 1 + Math.floor(next() * 4) }, () => pick(pieces)).join('');
    const codePointOrder = (a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b));
    let clean = 0;
    let warned = 0;
    let failed = 0;
    for (let round = 0; round < 300; round++) {
      const doc = { version: '1', default: pick(['deny', 'allow']) };
      if (next() < 0.2) delete doc.default; // a warning: missing_default
      if (next() < 0.2) doc.mode = pick(['monitor', 'enforce']);
      const hide = Array.from({ length: Math.floor(next() * 3) }, name);
      if (hide.length) doc.hide = hide;
      doc.tools = {};
      for (let i = Math.floor(next() * 5); i > 0; i--) {
        const entry = next() < 0.3 ? { mode: pick(['monitor', 'enforce']) } : {};
        if (next() < 0.05) entry.colour = 'red'; // an unknown field: an error
        if (next() < 0.03) entry.action = 'maybe'; // an error
        doc.tools[name()] = entry;
      }
      const text = JSON.stringify(doc);
      const handle = toolgate.callCore((core) => new core.CompiledPolicy(text));
      try {
        const checked = toolgate.check(text);
        assert.equal(checked.ok, handle.ok(), text);
        assert.deepEqual(checked.diagnostics, JSON.parse(handle.diagnostics()), text);
        if (!checked.ok) {
          failed++;
          continue;
        }
        if (checked.diagnostics.length) warned++;
        else clean++;
        const policy = toolgate.compile(text);
        assert.equal(policy.ok, true);
        assert.equal(policy.hash, createHash('sha256').update(text).digest('hex'));
        assert.equal(policy.hash, handle.hash());
        assert.deepEqual(policy.diagnostics, checked.diagnostics);
        const all = [...new Set([...Object.keys(doc.tools), ...hide])];
        assert.deepEqual(policy.names, {
          exact: all.filter((n) => !n.includes('*')).sort(codePointOrder),
          globs: all.filter((n) => n.includes('*')).sort(codePointOrder),
        }, text);
        assert.equal(policy.modes.policy, doc.mode === 'monitor', text);
        assert.deepEqual([...policy.modes.tools].sort(codePointOrder),
          Object.keys(doc.tools).filter((k) => doc.tools[k].mode === 'monitor').sort(codePointOrder), text);
        policy.dispose();
      } finally {
        handle.delete();
      }
    }
    assert.ok(clean > 50 && warned > 10 && failed > 5, `clean ${clean}, with warnings ${warned}, failed ${failed}`);
  });

  test('dispose() is idempotent', () => {
    const policy = toolgate.compile({ version: '1', default: 'allow' });
    policy.dispose();
    policy.dispose();
  });
});

describe('evaluate() and finish()', () => {
  const policy = toolgate.compile({
    version: '1',
    default: 'deny',
    tools: {
      read: {},
      run: { limits: [{ counter: 'runs', window: 'minute', max: 10, algorithm: 'sliding' }] },
      deploy: { action: 'require_approval' },
    },
  });

  test('returns a decision when no store is needed', () => {
    assert.deepEqual(policy.evaluate({ tool: 'read', arguments: { path: 'a' } }), {
      decision: 'allow',
      code: 'allowed',
      rule: '/tools/read',
      message: 'Allowed.',
    });
    const denied = policy.evaluate({ tool: 'write' });
    assert.equal(denied.decision, 'deny');
    assert.equal(denied.code, 'default_deny');
    assert.equal(denied.pending, undefined);
  });

  test('returns a pending evaluation when counters or an approval are needed', () => {
    const pending = policy.evaluate({ tool: 'run', grant: 'alice' }, { now: T0 + 30 * SECOND });
    assert.equal(pending.pending, true);
    assert.equal(pending.tool, 'run');
    assert.equal(pending.now, T0 + 30 * SECOND);
    assert.equal(pending.allow_rule, '/tools/run');
    assert.equal(pending.approval, undefined);
    assert.equal(pending.counters.length, 1);
    assert.deepEqual({ ...pending.counters[0], key: undefined }, {
      key: undefined,
      scope: 'grant',
      grant: 'alice',
      cost: 1,
      max: 10,
      window_ms: MINUTE,
      algorithm: 'sliding',
      bucket_start_ms: T0,
    });
    assert.equal(typeof pending.counters[0].key, 'string');
    assert.deepEqual(pending.limits.map((l) => [l.counter, l.max, l.rule]), [[0, 10, '/tools/run/limits/0']]);

    const approval = policy.evaluate({ tool: 'deploy', arguments: { env: 'prod' }, grant: 'alice' }, { now: T0 });
    assert.equal(approval.pending, true);
    assert.match(approval.approval.id, /^[0-9a-f]{64}$/);
    assert.equal(approval.approval.timeout_ms, 10 * MINUTE, 'the default approval timeout is 10 minutes');
    assert.equal(approval.approval.rule, '/tools/deploy/action');
    assert.deepEqual(approval.counters, []);
  });

  test('the call\'s own now wins over the option', () => {
    const pending = policy.evaluate({ tool: 'run', now: '2026-01-01T00:05:00Z' }, { now: T0 });
    assert.equal(pending.now, T0 + 5 * MINUTE);
  });

  test('finish() applies the sliding estimate exactly (no rounding)', () => {
    const pending = policy.evaluate({ tool: 'run', grant: 'alice' }, { now: T0 + 30 * SECOND });
    // Half the window elapsed: estimate = 10 * 0.5 + current.
    assert.equal(toolgate.finish(pending, true, [{ current: 4, previous: 10 }]).code, 'allowed'); // 9 + 1 <= 10
    const limited = toolgate.finish(pending, true, [{ current: 5, previous: 10 }]); // 10 + 1 > 10
    assert.equal(limited.code, 'rate_limited');
    assert.equal(limited.rule, '/tools/run/limits/0');
    assert.equal(typeof limited.retry_after_ms, 'number');
    assert.equal(estimateCount(pending.counters[0], { current: 4, previous: 10 }, pending.now), 9);
  });

  test('finish() with a malformed store answer denies (fail closed)', () => {
    const pending = policy.evaluate({ tool: 'run' }, { now: T0 });
    for (const states of [[], [{}], [{ current: -1, previous: 0 }], 'x', null, [{ current: 1n, previous: 0 }]]) {
      const decision = toolgate.finish(pending, true, states);
      assert.equal(decision.decision, 'deny', JSON.stringify(String(states)));
      assert.equal(decision.code, 'store_error');
    }
    assert.equal(toolgate.finish({ pending: true }, true, []).code, 'store_error');
  });

  test('finish() without approval gives approval_required with the approval id', () => {
    const pending = policy.evaluate({ tool: 'deploy', arguments: { env: 'prod' }, grant: 'alice' }, { now: T0 });
    const decision = toolgate.finish(pending, false, []);
    assert.equal(decision.decision, 'approval_required');
    assert.equal(decision.code, 'approval_required');
    assert.equal(decision.approval_id, pending.approval.id);
  });

  test('a now option outside the Date range is a ToolgateError', async () => {
    for (const now of [NaN, Infinity, -Infinity, 1e300, 8.64e15 + 1, '2026-01-01T00:00:00Z', null, {}]) {
      assert.throws(() => policy.evaluate({ tool: 'run' }, { now }), ToolgateError, String(now));
    }
    await assert.rejects(policy.decide({ tool: 'run' }, { now: NaN, counters: new MemoryCounterStore() }), ToolgateError);
    assert.equal(policy.evaluate({ tool: 'run' }, { now: 8.64e15 }).pending, true);
    assert.equal(policy.evaluate({ tool: 'run' }, { now: -8.64e15 }).pending, true);
    await assertStillWorks();
  });

  test('parseTime', () => {
    assert.equal(toolgate.parseTime('2026-01-01T00:00:00Z'), T0);
    assert.equal(toolgate.parseTime('2026-01-01T01:00:00+01:00'), T0);
    assert.equal(toolgate.parseTime(T0), T0);
    for (const bad of ['yesterday', '', undefined, null, {}, [], 1e300, Symbol('t'), 1n, () => 0]) {
      assert.ok(Number.isNaN(toolgate.parseTime(bad)), String(bad));
    }
  });
});

describe('decide() with the in-memory stores', () => {
  test('a rate limit trips, then resets in the next window (now option)', async () => {
    const policy = toolgate.compile({ version: '1', default: 'deny', tools: { run: { rate_limit: '3/minute' } } });
    const counters = new MemoryCounterStore();
    const call = { tool: 'run', grant: 'alice' };
    for (let i = 0; i < 3; i += 1) assert.equal((await policy.decide(call, { counters, now: T0 + i * SECOND })).code, 'allowed');
    const limited = await policy.decide(call, { counters, now: T0 + 45 * SECOND });
    assert.equal(limited.decision, 'deny');
    assert.equal(limited.code, 'rate_limited');
    assert.equal(limited.rule, '/tools/run/rate_limit');
    assert.equal(limited.retry_after_ms, 15 * SECOND);
    assert.equal((await policy.decide(call, { counters, now: T0 + MINUTE - 1 })).code, 'rate_limited');
    // A denied call consumed nothing; the next window starts from zero.
    for (let i = 0; i < 3; i += 1) assert.equal((await policy.decide(call, { counters, now: T0 + MINUTE + i })).code, 'allowed');
    assert.equal((await policy.decide(call, { counters, now: T0 + MINUTE + 3 })).code, 'rate_limited');
  });

  test('approval_required -> approve -> allowed once -> approval_required again', async () => {
    const policy = toolgate.compile({ version: '1', default: 'deny', tools: { deploy: { action: 'require_approval', approval: { timeout: '5m' } } } });
    const approvals = new MemoryApprovalStore();
    const call = { tool: 'deploy', arguments: { env: 'prod' }, grant: 'alice' };
    const first = await policy.decide(call, { approvals, now: T0 });
    assert.equal(first.decision, 'approval_required');
    assert.equal(first.code, 'approval_required');
    assert.equal(first.rule, '/tools/deploy/action');
    assert.match(first.approval_id, /^[0-9a-f]{64}$/);
    assert.ok(first.message.includes(first.approval_id));

    await approvals.approve(first.approval_id, T0 + MINUTE);
    // Another grant or other arguments are a different call: still not approved.
    assert.equal((await policy.decide({ ...call, grant: 'bob' }, { approvals, now: T0 + MINUTE })).code, 'approval_required');
    assert.equal((await policy.decide({ ...call, arguments: { env: 'dev' } }, { approvals, now: T0 + MINUTE })).code, 'approval_required');
    // Key order does not matter (RFC 8785 canonical form).
    const reordered = JSON.parse(JSON.stringify({ grant: 'alice', arguments: { env: 'prod' }, tool: 'deploy' }));
    assert.deepEqual(await policy.decide(reordered, { approvals, now: T0 + 2 * MINUTE }), {
      decision: 'allow',
      code: 'allowed',
      rule: '/tools/deploy',
      message: "Allowed with a human's approval.",
    });
    const again = await policy.decide(call, { approvals, now: T0 + 2 * MINUTE });
    assert.equal(again.code, 'approval_required', 'an approval allows one call');
    assert.equal(again.approval_id, first.approval_id);
  });

  test('an approval expires after its timeout', async () => {
    const policy = toolgate.compile({ version: '1', default: 'deny', tools: { deploy: { action: 'require_approval', approval: { timeout: '5m' } } } });
    const approvals = new MemoryApprovalStore();
    const call = { tool: 'deploy', grant: 'alice' };
    const { approval_id: id } = await policy.decide(call, { approvals, now: T0 });
    await approvals.approve(id, T0);
    assert.equal((await policy.decide(call, { approvals, now: T0 + 5 * MINUTE + 1 })).code, 'approval_required');
    await approvals.approve(id, T0);
    assert.equal((await policy.decide(call, { approvals, now: T0 + 5 * MINUTE })).code, 'allowed', 'valid up to the timeout');
  });

  test('without an approval store, approvals are required', async () => {
    const policy = toolgate.compile({ version: '1', default: 'deny', tools: { deploy: { action: 'require_approval' } } });
    assert.equal((await policy.decide({ tool: 'deploy' })).code, 'approval_required');
  });

  test('limits still apply to an approved call, which keeps its approval when limited', async () => {
    const policy = toolgate.compile({
      version: '1',
      default: 'deny',
      tools: { deploy: { action: 'require_approval', limits: [{ window: 'hour', max: 1, scope: 'global' }] } },
    });
    const approvals = new MemoryApprovalStore();
    const counters = new MemoryCounterStore();
    const a = { tool: 'deploy', arguments: { n: 1 }, grant: 'alice' };
    const b = { tool: 'deploy', arguments: { n: 2 }, grant: 'alice' };
    const idA = (await policy.decide(a, { approvals, counters, now: T0 })).approval_id;
    const idB = (await policy.decide(b, { approvals, counters, now: T0 })).approval_id;
    await approvals.approve(idA, T0);
    await approvals.approve(idB, T0);
    assert.equal((await policy.decide(a, { approvals, counters, now: T0 + 1 })).code, 'allowed');
    assert.equal((await policy.decide(b, { approvals, counters, now: T0 + 2 })).code, 'rate_limited');
    // b's approval was not used up by the denied call.
    assert.equal(await approvals.isApproved(idB, 10 * MINUTE, T0 + 3), true);
  });

  test('authorize() + rollback() gives the quota back; commit() keeps it', async () => {
    const policy = toolgate.compile({ version: '1', default: 'deny', tools: { run: { rate_limit: '1/minute' } } });
    const counters = new MemoryCounterStore();
    const call = { tool: 'run', grant: 'alice' };
    const first = await policy.authorize(call, { counters, now: T0 });
    assert.equal(first.decision.code, 'allowed');
    assert.equal((await policy.authorize(call, { counters, now: T0 })).decision.code, 'rate_limited', 'reserved before the upstream call');
    await first.rollback(); // the upstream call failed
    const second = await policy.authorize(call, { counters, now: T0 + 1 });
    assert.equal(second.decision.code, 'allowed', 'after rollback the next call is admitted');
    await second.commit();
    assert.equal((await policy.authorize(call, { counters, now: T0 + 2 })).decision.code, 'rate_limited');
    // Rolling back twice, or after commit, gives nothing more back.
    await first.rollback();
    await second.rollback();
    assert.equal((await policy.authorize(call, { counters, now: T0 + 3 })).decision.code, 'rate_limited');
  });

  test('rollback() of a denied authorization changes nothing', async () => {
    const policy = toolgate.compile({ version: '1', default: 'deny', tools: { run: { rate_limit: '1/minute' } } });
    const counters = new MemoryCounterStore();
    const call = { tool: 'run', grant: 'alice' };
    await policy.decide(call, { counters, now: T0 });
    const denied = await policy.authorize(call, { counters, now: T0 });
    assert.equal(denied.decision.code, 'rate_limited');
    await denied.rollback();
    assert.equal((await policy.decide(call, { counters, now: T0 })).code, 'rate_limited');
  });

  test('several limits: all charged or none', async () => {
    const policy = toolgate.compile({
      version: '1',
      default: 'deny',
      tools: {
        small: { limits: [{ counter: 'shared', window: 'minute', max: 5, scope: 'global' }, { counter: 'tight', window: 'minute', max: 1 }] },
        other: { limits: [{ counter: 'shared', window: 'minute', max: 5, scope: 'global' }] },
      },
    });
    const counters = new MemoryCounterStore();
    assert.equal((await policy.decide({ tool: 'small', grant: 'a' }, { counters, now: T0 })).code, 'allowed');
    const denied = await policy.decide({ tool: 'small', grant: 'a' }, { counters, now: T0 });
    assert.equal(denied.code, 'rate_limited');
    assert.equal(denied.rule, '/tools/small/limits/1');
    // The shared counter was charged once (by the allowed call), not twice: 4 more fit.
    for (let i = 0; i < 4; i += 1) assert.equal((await policy.decide({ tool: 'other', grant: 'b' }, { counters, now: T0 })).code, 'allowed');
    assert.equal((await policy.decide({ tool: 'other', grant: 'b' }, { counters, now: T0 })).code, 'rate_limited');
  });

  test('a policy with limits but no counter store is a ToolgateError', async () => {
    const policy = toolgate.compile({ version: '1', default: 'deny', tools: { run: { rate_limit: '1/minute' } } });
    await assert.rejects(policy.decide({ tool: 'run' }), (error) => {
      assert.ok(error instanceof ToolgateError);
      assert.match(error.message, /counter store/);
      return true;
    });
    await assert.rejects(policy.authorize({ tool: 'run' }), ToolgateError);
    // Calls decided before the limits need no store.
    assert.equal((await policy.decide({ tool: 'other' })).code, 'default_deny');
  });
});

describe('counter keys', () => {
  // What a store is asked to hold, through the real decide() path.
  class RecordingCounterStore extends MemoryCounterStore {
    keys = [];

    reserveNow(requests, now) {
      for (const request of requests) this.keys.push(request.key);
      return super.reserveNow(requests, now);
    }
  }
  const policy = toolgate.compile({
    version: '1',
    default: 'deny',
    tools: { run: { limits: [{ counter: 'per_repo', window: 'hour', max: 1, key: 'args.repo' }] } },
  });
  const sha256 = async (text) => (await import('node:crypto')).createHash('sha256').update(text).digest('hex');

  test('a short key value is written as it is', async () => {
    const counters = new RecordingCounterStore();
    assert.equal((await policy.decide({ tool: 'run', grant: 'ci', arguments: { repo: 'toolgate' } }, { counters, now: T0 })).code, 'allowed');
    assert.deepEqual(counters.keys, ['tg1:["grant","ci","per_repo",3600000,"fixed","toolgate"]']);
  });

  test('a 2 MB key value becomes its SHA-256; equal values share a count, distinct ones do not', async () => {
    const counters = new RecordingCounterStore();
    const big = 'x'.repeat(2 * 1024 * 1024);
    const other = `${big.slice(1)}y`;
    const decide = (repo, grant = 'ci') => policy.decide({ tool: 'run', grant, arguments: { repo } }, { counters, now: T0 });
    assert.equal((await decide(big)).code, 'allowed');
    assert.equal((await decide(big)).code, 'rate_limited');
    assert.equal((await decide(other)).code, 'allowed');
    assert.equal((await decide(other)).code, 'rate_limited');
    assert.equal((await decide({ list: [big] })).code, 'allowed');
    const [first, again, second, , structured] = counters.keys;
    assert.equal(first, `tg1:["grant","ci","per_repo",3600000,"fixed",{"sha256":"${await sha256(JSON.stringify(big))}"}]`);
    assert.equal(again, first);
    assert.notEqual(second, first);
    assert.notEqual(structured, first);
    for (const key of counters.keys) assert.ok(key.length < 160, `${key.length} bytes`);
    // Still JSON after "tg1:", the parts where they were (the playground reads them by position).
    const parts = JSON.parse(first.slice(4));
    assert.equal(parts[2], 'per_repo');
    assert.deepEqual(Object.keys(parts[5]), ['sha256']);
  });

  test('a long grant id is hashed in its place; a short one is not', async () => {
    const counters = new RecordingCounterStore();
    const grant = 'g'.repeat(500);
    assert.equal((await policy.decide({ tool: 'run', grant, arguments: { repo: 'a' } }, { counters, now: T0 })).code, 'allowed');
    assert.equal((await policy.decide({ tool: 'run', grant: `${grant}h`, arguments: { repo: 'a' } }, { counters, now: T0 })).code, 'allowed');
    assert.equal(counters.keys[0], `tg1:["grant",{"sha256":"${await sha256(JSON.stringify(grant))}"},"per_repo",3600000,"fixed","a"]`);
    assert.notEqual(counters.keys[1], counters.keys[0]);
  });
});

describe('store failures', () => {
  const policy = toolgate.compile({
    version: '1',
    default: 'deny',
    tools: {
      run: { rate_limit: '1/minute' },
      deploy: { action: 'require_approval', rate_limit: '5/minute' },
    },
  });
  const brokenCounters = {
    reserve: async () => {
      throw new Error('redis is down');
    },
    commit: async () => {},
    rollback: async () => {},
  };

  test('a counter store whose reserve() throws denies with store_error (fail closed)', async () => {
    const decision = await policy.decide({ tool: 'run' }, { counters: brokenCounters, now: T0 });
    assert.equal(decision.decision, 'deny');
    assert.equal(decision.code, 'store_error');
    assert.match(decision.message, /redis is down/);
  });

  test('with failOpen: true the call is allowed (and nothing is charged)', async () => {
    for (let i = 0; i < 3; i += 1) {
      const decision = await policy.decide({ tool: 'run' }, { counters: brokenCounters, now: T0, failOpen: true });
      assert.equal(decision.decision, 'allow');
      assert.equal(decision.code, 'allowed');
    }
  });

  test('failOpen still uses an approval up (one call per approval)', async () => {
    const approvals = new MemoryApprovalStore();
    const call = { tool: 'deploy', grant: 'alice' };
    const { approval_id: id } = await policy.decide(call, { approvals, counters: brokenCounters, now: T0, failOpen: true });
    await approvals.approve(id, T0);
    assert.equal((await policy.decide(call, { approvals, counters: brokenCounters, now: T0, failOpen: true })).code, 'allowed');
    assert.equal((await policy.decide(call, { approvals, counters: brokenCounters, now: T0, failOpen: true })).code, 'approval_required');
  });

  test('an approval store that throws denies with store_error, and the quota comes back', async () => {
    const counters = new MemoryCounterStore();
    const call = { tool: 'deploy', grant: 'alice' };
    const failingCheck = { approve: async () => {}, isApproved: async () => { throw new Error('approvals offline'); }, consume: async () => true };
    const a = await policy.decide(call, { approvals: failingCheck, counters, now: T0 });
    assert.equal(a.code, 'store_error');
    assert.match(a.message, /approvals offline/);

    const failingConsume = { approve: async () => {}, isApproved: async () => true, consume: async () => { throw new Error('consume failed'); } };
    for (let i = 0; i < 5; i += 1) {
      const b = await policy.decide(call, { approvals: failingConsume, counters, now: T0 });
      assert.equal(b.code, 'store_error');
    }
    // Five failed calls left the 5/minute quota untouched.
    const always = { approve: async () => {}, isApproved: async () => true, consume: async () => true };
    for (let i = 0; i < 5; i += 1) assert.equal((await policy.decide(call, { approvals: always, counters, now: T0 })).code, 'allowed');
    assert.equal((await policy.decide(call, { approvals: always, counters, now: T0 })).code, 'rate_limited');
  });

  test('a store that disagrees with the policy is denied and rolled back', async () => {
    let rolledBack = 0;
    const overAdmitting = {
      // Claims admission although its own counts are over the limit.
      reserve: async (requests) => ({ admitted: true, states: requests.map(() => ({ current: 99, previous: 0 })) }),
      commit: async () => {},
      rollback: async () => {
        rolledBack += 1;
      },
    };
    const decision = await policy.decide({ tool: 'run' }, { counters: overAdmitting, now: T0 });
    assert.equal(decision.code, 'store_error');
    assert.equal(rolledBack, 1);

    const underAdmitting = {
      reserve: async (requests) => ({ admitted: false, states: requests.map(() => ({ current: 0, previous: 0 })) }),
      commit: async () => {},
      rollback: async () => {},
    };
    assert.equal((await policy.decide({ tool: 'run' }, { counters: underAdmitting, now: T0 })).code, 'store_error');

    const malformed = { reserve: async () => ({ admitted: true, states: 'nonsense' }), commit: async () => {}, rollback: async () => {} };
    assert.equal((await policy.decide({ tool: 'run' }, { counters: malformed, now: T0 })).code, 'store_error');
  });
});

describe('hostile input: the instance keeps working', () => {
  const policy = toolgate.compile({
    version: '1',
    default: 'deny',
    tools: {
      echo: {
        args: { type: 'object', properties: { text: { type: 'string' } } },
        deny_if: [{ conditions: [{ path: 'args.text', op: 'starts_with', value: 'EVIL' }], on_deny: 'evil' }],
      },
    },
  });

  test('10 000-deep nested arrays in arguments -> invalid_call', async () => {
    const deep = `{"tool": "echo", "arguments": {"text": ${'['.repeat(10_000)}${']'.repeat(10_000)}}}`;
    const decision = policy.evaluate(deep);
    assert.equal(decision.decision, 'deny');
    assert.equal(decision.code, 'invalid_call');
    // The same nesting as an object.
    let nested = [];
    for (let i = 0; i < 10_000; i += 1) nested = [nested];
    assert.equal(policy.evaluate({ tool: 'echo', arguments: { text: nested } }).code, 'invalid_call');
    assert.equal(policy.evaluate({ tool: 'echo', arguments: { text: 'hello' } }).code, 'allowed');
    await assertStillWorks();
  });

  test('a 10 MB string argument is evaluated', async () => {
    const big = 'a'.repeat(10 * 1024 * 1024);
    assert.equal((await policy.decide({ tool: 'echo', arguments: { text: big } })).code, 'allowed');
    assert.equal((await policy.decide(JSON.stringify({ tool: 'echo', arguments: { text: `EVIL${big}` } }))).code, 'condition_denied');
    await assertStillWorks();
  });

  test('a 10 MB policy compiles (or fails with diagnostics) without crashing', async () => {
    const tools = {};
    const count = 40_000;
    for (let i = 0; i < count; i += 1) {
      tools[`tool_${i}`] = {
        on_deny: `Tool ${i} is not for you.`.padEnd(140, '.'),
        deny_if: [{ conditions: [{ path: 'args.amount', op: 'gt', value: i }], on_deny: 'Too much.' }],
      };
    }
    const text = JSON.stringify({ version: '1', default: 'deny', tools });
    assert.ok(text.length >= 10 * 1024 * 1024, `${text.length} bytes`);
    let big;
    try {
      big = toolgate.compile(text);
    } catch (error) {
      assert.ok(error instanceof PolicyError, String(error));
      for (const d of error.diagnostics) assertDiagnostic(d);
    }
    if (big) {
      assert.equal(big.evaluate({ tool: 'tool_123', arguments: { amount: 5 } }).code, 'allowed');
      assert.equal(big.evaluate({ tool: 'tool_123', arguments: { amount: 500 } }).code, 'condition_denied');
      assert.equal(big.evaluate({ tool: `tool_${count}` }).code, 'default_deny');
      big.dispose();
    }
    // A 10 MB policy with an error in every entry reports them all. (Pretty-printed:
    // on one 10 MB line the core takes minutes, see SourceMap::line_column.)
    const bad = toolgate.check(JSON.stringify(JSON.parse(text.replaceAll('"gt"', '"greater"')), null, 1));
    assert.equal(bad.ok, false);
    const invalid = bad.diagnostics.filter((d) => d.code === 'invalid_operator');
    assert.equal(invalid.length, count);
    assert.equal(invalid[count - 1].pointer, `/tools/tool_${count - 1}/deny_if/0/conditions/0/op`);
    assert.ok(invalid[count - 1].line > invalid[0].line);
    // On one line: the first and the last of 40 000 entries are wrong.
    const last = text.lastIndexOf('"gt"');
    const few = toolgate.check(`${text.slice(0, last)}"greater"${text.slice(last + 4)}`.replace('"gt"', '"greater"'));
    assert.equal(few.ok, false);
    assert.deepEqual(
      few.diagnostics.map((d) => [d.pointer, d.line]),
      [
        ['/tools/tool_0/deny_if/0/conditions/0/op', 1],
        [`/tools/tool_${count - 1}/deny_if/0/conditions/0/op`, 1],
      ],
    );
    assert.ok(few.diagnostics[1].column > text.length - 1000);
    await assertStillWorks();
  });

  test('deeply nested policies are rejected with a diagnostic', async () => {
    const error = thrown(() => toolgate.compile(`{"version": "1", "description": ${'['.repeat(100_000)}${']'.repeat(100_000)}}`));
    assert.ok(error instanceof PolicyError);
    assert.equal(error.diagnostics[0].code, 'json_too_deep');
    const { ok, diagnostics } = toolgate.check(`{"version": "1", "tools": ${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}}`);
    assert.equal(ok, false);
    assert.ok(diagnostics.length >= 1);
    await assertStillWorks();
  });

  test('garbage, non-object calls and null -> invalid_call', async () => {
    const cycle = { tool: 'echo' };
    cycle.arguments = { cycle };
    const calls = [
      null, undefined, 0, 1, -1, true, false, NaN, 'null', '', ' ', 'garbage', '{', '}', '{"tool":', '[]', '[{"tool":"echo"}]',
      '"echo"', '{"tool":"echo"} {}', '{"tool":"echo",}', '{"tool":"echo","tool":"echo"}', "{'tool':'echo'}",
      '\u0000', '\uFFFF', '\uD800', `{"tool":"echo","arguments":{"text":"\uD800\\"}}`, `{"tool":"\uDC00"}`,
      [], [1], {}, { tool: '' }, { tool: 5 }, { tool: null }, { tool: ['echo'] }, { tool: 'echo', arguments: [] },
      { tool: 'echo', arguments: 'x' }, { tool: 'echo', arguments: null }, { tool: 'echo', grant: 5 }, { tool: 'echo', grant: {} },
      { tool: 'echo', grant: { id: '' } }, { tool: 'echo', now: 'later' }, { tool: 'echo', now: 1e300 }, { tool: 'echo', extra: 1 },
      { tool: 'echo', arguments: { text: 1n } }, cycle, () => {}, Symbol('call'), 10n, new Date(0),
      'x'.repeat(1_000_000), '{"tool":"echo","arguments":{"text":"' + 'x'.repeat(1000),
    ];
    for (const call of calls) {
      const label = typeof call === 'string' ? JSON.stringify(call.slice(0, 40)) : typeof call === 'symbol' ? 'symbol' : String(call).slice(0, 40);
      let decision;
      assert.doesNotThrow(() => {
        decision = policy.evaluate(call);
      }, label);
      assert.equal(decision.decision, 'deny', label);
      assert.equal(decision.code, 'invalid_call', `${label}: ${decision.message}`);
      assert.equal(decision.rule, '');
      assert.match(decision.message, /^Malformed tool call: /);
      // decide() resolves to the same decision.
      assert.deepEqual(await policy.decide(call), decision, label);
    }
    await assertStillWorks();
  });

  test('a JS string with a lone surrogate is read as JSON.stringify would write it', async () => {
    // The glue's UTF-8 encoder pairs a lone surrogate with the code unit after
    // it (here "x", or the backslash of an escaped quote), so the core read
    // other text than JS holds: the string form was allowed, the object denied.
    for (const text of [
      `{"tool":"echo","arguments":{"text":"\uD800x"}}`,
      `{"tool":"echo","arguments":{"text":"x\uDC00"}}`,
      `{"tool":"echo","arguments":{"text":"\uD800\\"}, \\"extra\\": 1}"}}`,
    ]) {
      const asObject = JSON.parse(text);
      assert.deepEqual(policy.evaluate(text), policy.evaluate(asObject), text);
      assert.equal(policy.evaluate(text).code, 'invalid_call', text);
    }
    // A well-formed pair is fine.
    assert.equal(policy.evaluate(`{"tool":"echo","arguments":{"text":"\uD83D\uDE00"}}`).code, 'allowed');
    assert.equal(policy.evaluate({ tool: 'echo', arguments: { text: '\uD83D\uDE00' } }).code, 'allowed');
    const hiding = toolgate.compile({ version: '1', default: 'allow', hide: ['*_admin'] });
    assert.equal(hiding.isHidden('x\uD800_admin'), true);
    await assertStillWorks();
  });

  test('isHidden() with odd input', async () => {
    const hiding = toolgate.compile({ version: '1', default: 'allow', hide: ['secret*'] });
    for (const tool of [undefined, null, 5, {}, '', 'x'.repeat(1_000_000), Symbol('secret')]) {
      assert.equal(typeof hiding.isHidden(tool), 'boolean');
    }
    assert.equal(hiding.isHidden('secret_tool'), true);
    await assertStillWorks();
  });
});

describe('MemoryCounterStore', () => {
  const request = (key, overrides = {}) => ({
    key,
    scope: 'grant',
    grant: 'alice',
    cost: 1,
    max: 3,
    window_ms: MINUTE,
    algorithm: 'fixed',
    bucket_start_ms: T0,
    ...overrides,
  });

  test('reserve admits while count + cost <= max and reports the states before charging', async () => {
    const store = new MemoryCounterStore();
    const r = request('k');
    const seen = [];
    for (let i = 0; i < 4; i += 1) {
      const reservation = await store.reserve([r], T0);
      seen.push([reservation.admitted, reservation.states[0].current]);
    }
    assert.deepEqual(seen, [[true, 0], [true, 1], [true, 2], [false, 3]]);
    assert.deepEqual(await store.peek([r]), [{ current: 3, previous: 0 }]);
    const costly = await store.reserve([request('c', { cost: 4 })], T0);
    assert.equal(costly.admitted, false, 'cost above max is never admitted');
    assert.deepEqual(await store.peek([request('c')]), [{ current: 0, previous: 0 }]);
  });

  test('reserve is all-or-nothing across counters', async () => {
    const store = new MemoryCounterStore();
    const a = request('a', { max: 10 });
    const b = request('b', { max: 1 });
    const c = request('c', { max: 10 });
    assert.equal((await store.reserve([a, b, c], T0)).admitted, true);
    const denied = await store.reserve([a, b, c], T0);
    assert.equal(denied.admitted, false);
    assert.deepEqual(denied.states, [{ current: 1, previous: 0 }, { current: 1, previous: 0 }, { current: 1, previous: 0 }]);
    assert.deepEqual(await store.peek([a, b, c]), [
      { current: 1, previous: 0 },
      { current: 1, previous: 0 },
      { current: 1, previous: 0 },
    ], 'the counters before the full one were not charged');
    assert.equal(store.size, 3);
  });

  test('the window rolls forward: current becomes previous, then both expire', async () => {
    const store = new MemoryCounterStore();
    for (let i = 0; i < 3; i += 1) await store.reserve([request('k')], T0);
    assert.deepEqual(await store.peek([request('k', { bucket_start_ms: T0 + MINUTE })]), [{ current: 0, previous: 3 }]);
    assert.deepEqual(await store.peek([request('k', { bucket_start_ms: T0 + 2 * MINUTE })]), [{ current: 0, previous: 0 }]);
    // A fixed window admits again in the next bucket.
    assert.equal((await store.reserve([request('k', { bucket_start_ms: T0 + MINUTE })], T0 + MINUTE)).admitted, true);
    assert.deepEqual(await store.peek([request('k', { bucket_start_ms: T0 + MINUTE })]), [{ current: 1, previous: 3 }]);
  });

  test('sliding windows admit by the two-bucket estimate (estimateCount)', async () => {
    const sliding = (bucket, overrides) => request('s', { algorithm: 'sliding', max: 10, bucket_start_ms: bucket, ...overrides });
    // Fixed: the estimate is the current count.
    assert.equal(estimateCount(request('f'), { current: 4, previous: 100 }, T0 + 59 * SECOND), 4);
    // Sliding: prev * (window - elapsed) / window + current, unrounded.
    assert.equal(estimateCount(sliding(T0), { current: 2, previous: 10 }, T0), 12);
    assert.equal(estimateCount(sliding(T0), { current: 2, previous: 10 }, T0 + 15 * SECOND), 9.5);
    assert.equal(estimateCount(sliding(T0), { current: 2, previous: 10 }, T0 + 30 * SECOND), 7);
    assert.equal(estimateCount(sliding(T0), { current: 2, previous: 3 }, T0 + 20 * SECOND), 4);

    const store = new MemoryCounterStore();
    for (let i = 0; i < 10; i += 1) assert.equal((await store.reserve([sliding(T0)], T0 + 59 * SECOND)).admitted, true);
    const next = T0 + MINUTE;
    // 45 s into the next bucket: estimate = 10 * 15/60 = 2.5, so 7 more fit (9.5 + 1 > 10 for the 8th).
    let admitted = 0;
    while ((await store.reserve([sliding(next)], next + 45 * SECOND)).admitted) admitted += 1;
    assert.equal(admitted, 7);
    assert.deepEqual(await store.peek([sliding(next)]), [{ current: 7, previous: 10 }]);
  });

  test('rollback gives back only the bucket that was charged, once', async () => {
    const store = new MemoryCounterStore();
    const inA = request('k');
    const inB = request('k', { bucket_start_ms: T0 + MINUTE });
    const a1 = await store.reserve([inA], T0);
    const a2 = await store.reserve([inA], T0);
    assert.deepEqual(await store.peek([inA]), [{ current: 2, previous: 0 }]);
    await store.rollback(a1);
    assert.deepEqual(await store.peek([inA]), [{ current: 1, previous: 0 }]);
    await store.rollback(a1); // twice: no effect
    assert.deepEqual(await store.peek([inA]), [{ current: 1, previous: 0 }]);

    const b1 = await store.reserve([inB], T0 + MINUTE);
    assert.deepEqual(await store.peek([inB]), [{ current: 1, previous: 1 }]);
    await store.rollback(a2); // a2's bucket is gone: nothing to give back in B
    assert.deepEqual(await store.peek([inB]), [{ current: 1, previous: 1 }]);
    await store.commit(b1);
    await store.rollback(b1); // committed: final
    assert.deepEqual(await store.peek([inB]), [{ current: 1, previous: 1 }]);

    // Rolling back a denied reservation, or nothing, is harmless.
    const denied = await store.reserve([request('k', { bucket_start_ms: T0 + MINUTE, max: 1 })], T0 + MINUTE);
    assert.equal(denied.admitted, false);
    await store.rollback(denied);
    await store.rollback(undefined);
    await store.rollback({});
    assert.deepEqual(await store.peek([inB]), [{ current: 1, previous: 1 }]);
  });

  test('a clock that goes back keeps the newer counts', async () => {
    const store = new MemoryCounterStore();
    await store.reserve([request('k', { bucket_start_ms: T0 + MINUTE })], T0 + MINUTE);
    const late = await store.reserve([request('k')], T0 + 30 * SECOND);
    assert.deepEqual(late.states, [{ current: 1, previous: 0 }]);
    assert.deepEqual(await store.peek([request('k', { bucket_start_ms: T0 + MINUTE })]), [{ current: 2, previous: 0 }]);
  });

  test('old buckets are swept once the store is large', async () => {
    const store = new MemoryCounterStore();
    for (let i = 0; i < 10_001; i += 1) await store.reserve([request(`k${i}`)], T0);
    assert.equal(store.size, 10_001);
    await store.reserve([request('fresh', { bucket_start_ms: T0 + 3 * MINUTE })], T0 + 3 * MINUTE);
    assert.equal(store.size, 1);
  });
});

describe('MemoryApprovalStore', () => {
  test('approve, isApproved within the timeout, consume once', async () => {
    const store = new MemoryApprovalStore();
    assert.equal(await store.isApproved('id', MINUTE, T0), false);
    assert.equal(await store.consume('id', MINUTE, T0), false);
    await store.approve('id', T0);
    assert.equal(await store.isApproved('id', MINUTE, T0 - 1), false, 'not before it was given');
    assert.equal(await store.isApproved('id', MINUTE, T0 + MINUTE), true);
    assert.equal(await store.isApproved('id', MINUTE, T0 + MINUTE + 1), false);
    assert.equal(await store.consume('id', MINUTE, T0 + 1), true);
    assert.equal(await store.consume('id', MINUTE, T0 + 2), false);
    assert.equal(await store.isApproved('id', MINUTE, T0 + 2), false);
  });
});

describe('index.d.ts', () => {
  const dtsUrl = new URL('../../wasm/index.d.ts', import.meta.url);

  // Names the declaration file exports, split into values and types.
  function declaredExports(text) {
    const source = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
    const values = new Set();
    const types = new Set();
    for (const [, kind, name] of source.matchAll(
      /^\s*export\s+(?:declare\s+)?(?:abstract\s+)?(class|function|const|let|var|enum|interface|type|namespace)\s+([A-Za-z_$][\w$]*)/gm,
    )) {
      (kind === 'interface' || kind === 'type' ? types : values).add(name);
    }
    if (/^\s*export\s+default\s+/m.test(source)) values.add('default');
    for (const [, list] of source.matchAll(/^\s*export\s*\{([^}]*)\}/gm)) {
      for (const item of list.split(',').map((s) => s.trim()).filter(Boolean)) {
        values.add(item.split(/\s+as\s+/).pop().trim());
      }
    }
    return { values, types };
  }

  test('exists and declares every runtime export of wasm/index.js', async () => {
    const text = await readFile(dtsUrl, 'utf8');
    const { values } = declaredExports(text);
    const runtime = Object.keys(api).sort();
    assert.deepEqual(runtime, [
      'EngineError', 'MemoryApprovalStore', 'MemoryCounterStore', 'PolicyError', 'StoreError', 'ToolgateError',
      'default', 'estimateCount', 'loadToolgate',
    ]);
    const missing = runtime.filter((name) => !values.has(name));
    assert.deepEqual(missing, [], `exported by wasm/index.js but not declared in index.d.ts: ${missing.join(', ')}`);
    for (const name of ['Diagnostic', 'Decision', 'Call', 'CounterStore', 'ApprovalStore', 'PendingEvaluation', 'LoadOptions']) {
      assert.match(text, new RegExp(`export (interface|type) ${name}\\b`), name);
    }
  });

  test('package.json points "types" at it', async () => {
    const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8'));
    assert.equal(pkg.types, './wasm/index.d.ts');
    assert.equal(pkg.exports['.'].types, './wasm/index.d.ts');
  });

  test('every value it declares exists at runtime', async () => {
    const { values } = declaredExports(await readFile(dtsUrl, 'utf8'));
    const phantom = [...values].filter((name) => !(name in api));
    assert.deepEqual(phantom, []);
  });
});

describe('locate()', () => {
  test('maps a decision rule to its line and column, falling back to the enclosing value', async () => {
    const toolgate = await loadToolgate();
    const text = '{\n  "version": "1",\n  "default": "deny",\n  "tools": {\n    "run": { "rate_limit": "1/minute" }\n  }\n}';
    assert.deepEqual(toolgate.locate(text, '/tools/run/rate_limit'), { line: 5, column: 28 });
    assert.deepEqual(toolgate.locate(text, '/tools/run/limits/0'), { line: 5, column: 12 });
    assert.deepEqual(toolgate.locate(text, ''), { line: 1, column: 1 });
    assert.equal(toolgate.locate('{not json', '/a'), null);
  });
});

// The core registers only the embind built-in types its bindings use (void,
// bool, unsigned int, double, std::string; wasm/emscripten/
// embind-unused-types.js makes the rest no-ops). A binding whose signature
// needed another type would throw embind's UnboundTypeError on its first
// call: each is called here, with the types its answer must have.
describe('the engine bindings', () => {
  const METHODS = ['address', 'diagnostics', 'evaluate', 'finishTrace', 'hash', 'hidden', 'limits', 'monitored', 'ok',
    'parked', 'release', 'startBufferTraced', 'startText', 'startTextTraced', 'summary'];
  const FUNCTIONS = ['boundaryLayout', 'finish', 'locate', 'readTimestamp', 'tracedStart', 'version'];

  test('every method and function answers through the real core, none with an unbound type', async () => {
    const toolgate = await loadToolgate({ wasmBinary: await readFile(new URL('../../wasm/dist/toolgate_core.wasm', import.meta.url)) });
    const text = JSON.stringify({ version: '1', default: 'deny', mode: 'monitor', hide: ['secret'], tools: { run: { rate_limit: '2/minute' } } });
    const call = JSON.stringify({ tool: 'run', arguments: {}, grant: 'alice', now: 0 });
    toolgate.callCore((core) => {
      // Exactly these are bound: a binding added later is added here too.
      const own = (object) => Object.getOwnPropertyNames(object).filter((name) => typeof object[name] === 'function');
      assert.deepEqual(own(core.CompiledPolicy.prototype).filter((name) => METHODS.includes(name)).sort(), METHODS);
      for (const name of FUNCTIONS) assert.equal(typeof core[name], 'function', name);
      const layout = JSON.parse(core.boundaryLayout());
      const ticket = () => core.HEAPU32[(core._toolgate_output() + layout.output.fields.ticket.offset) >> 2];
      const handle = new core.CompiledPolicy(text);
      try {
        assert.equal(handle.ok(), true);
        assert.equal(handle.diagnostics(), '[]');
        assert.match(handle.hash(), /^[0-9a-f]{64}$/);
        assert.equal(JSON.parse(handle.summary()).ok, true);
        assert.equal(typeof handle.address(), 'number');
        assert.equal(handle.hidden('secret'), true);
        assert.equal(handle.hidden('run'), false);
        assert.equal(handle.monitored('run'), true);
        assert.equal(JSON.parse(handle.limits()).length, 1);
        assert.equal(JSON.parse(handle.evaluate(call, 0)).counters.length, 1);
        handle.startText(call, 0, true); // parks: one evaluation waits
        assert.equal(handle.parked(), 1);
        handle.release(ticket());
        assert.equal(handle.parked(), 0);
        handle.startTextTraced(call, 0); // parks too, traced
        assert.equal(JSON.parse(core.tracedStart()).pending.counters.length, 1);
        handle.release(ticket());
        handle.startBufferTraced(0, 0); // an empty buffer: an invalid call, traced
        assert.deepEqual(JSON.parse(core.tracedStart()), { trace: [] });
        assert.equal(handle.finishTrace(0), '[]');
        assert.equal(handle.parked(), 0);
      } finally {
        handle.delete();
      }
      assert.equal(JSON.parse(core.finish('{}')).code, 'store_error');
      assert.equal(core.readTimestamp('"1970-01-01T00:00:01Z"'), 1000);
      assert.ok(Number.isNaN(core.readTimestamp('"not a time"')));
      assert.equal(core.locate(text, '/tools/run'), '1,83');
      assert.match(core.version(), /^\d+\.\d+\.\d+/);
    });
  });
});
