// policy.limits: the compiled plan describes every limit and the counter it
// charges (Plan::limits in the core, tests/core/plan_limits_test.cpp), so
// hosts such as the playground name and explain counters without parsing
// counter keys. Through the real WebAssembly façade: the description, that
// it is read-only, and that every limit a pending evaluation checks (by
// `rule`) is described, with the counter request it checks matching it, over
// the example policies and their calls and over random policies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { loadToolgate } from '../../wasm/index.js';
import { random } from './seeded-random.js';

const T0 = Date.UTC(2026, 0, 1);
const toolgate = await loadToolgate();

test('policy.limits describes each limit, its entry and its counter', () => {
  const policy = toolgate.compile({
    version: '1',
    default: 'deny',
    all_tools: { limits: [{ counter: 'everything', window: 'day', max: 1000, scope: 'global' }] },
    tools: {
      run: {
        on_deny: 'Too many runs.',
        limits: [{ counter: 'runs', window: 'minute', max: 10 }, { window: 'hour', max: 50, algorithm: 'sliding', key: 'args.repo', on_deny: 'Per repo.' }],
        rate_limit: '100/day',
      },
      refund: { limits: [{ counter: 'money', window: 'day', max: 500, cost_from: 'args.amount', scope: 'global' }] },
      read: {},
    },
  });
  assert.deepEqual(policy.limits, [
    { rule: '/tools/refund/limits/0', tool: 'refund', counter: 'money', named: true, scope: 'global', window_ms: 86_400_000, algorithm: 'fixed', max: 500, cost: null, cost_from: 'args.amount', key: null, message: 'Rate limit exceeded: at most 500 units per day for everyone.' },
    { rule: '/tools/run/limits/0', tool: 'run', counter: 'runs', named: true, scope: 'grant', window_ms: 60_000, algorithm: 'fixed', max: 10, cost: 1, cost_from: null, key: null, message: 'Too many runs.' },
    { rule: '/tools/run/limits/1', tool: 'run', counter: '/tools/run/limits/1', named: false, scope: 'grant', window_ms: 3_600_000, algorithm: 'sliding', max: 50, cost: 1, cost_from: null, key: 'args.repo', message: 'Per repo.' },
    { rule: '/tools/run/rate_limit', tool: 'run', counter: '/tools/run/rate_limit', named: false, scope: 'grant', window_ms: 86_400_000, algorithm: 'fixed', max: 100, cost: 1, cost_from: null, key: null, message: 'Too many runs.' },
    { rule: '/all_tools/limits/0', tool: null, counter: 'everything', named: true, scope: 'global', window_ms: 86_400_000, algorithm: 'fixed', max: 1000, cost: 1, cost_from: null, key: null, message: 'Rate limit exceeded: at most 1000 calls per day for everyone.' },
  ]);
  assert.equal(policy.limits, policy.limits, 'built once');
  assert.ok(Object.isFrozen(policy.limits) && policy.limits.every(Object.isFrozen), 'read-only: hosts share it');
  assert.throws(() => { policy.limits[0].max = 1e9; }, TypeError);
  assert.deepEqual(toolgate.compile({ version: '1', default: 'allow' }).limits, []);
});

// Each limit a pending evaluation checks is described by the plan, with the
// same max and message, and the counter request it checks has that limit's
// scope, window and algorithm (and its cost, unless cost_from or a shared
// counter's larger cost applies).
function checkPending(policy, pending, where) {
  const byRule = new Map(policy.limits.map((limit) => [limit.rule, limit]));
  for (const check of pending.limits) {
    const limit = byRule.get(check.rule);
    assert.ok(limit, `${where}: ${check.rule} is described`);
    assert.equal(check.max, limit.max, `${where}: ${check.rule} max`);
    assert.equal(check.message, limit.message, `${where}: ${check.rule} message`);
    const request = pending.counters[check.counter];
    assert.equal(request.scope, limit.scope, `${where}: ${check.rule} scope`);
    assert.equal(request.window_ms, limit.window_ms, `${where}: ${check.rule} window`);
    assert.equal(request.algorithm, limit.algorithm, `${where}: ${check.rule} algorithm`);
    if (limit.tool !== null) assert.equal(pending.tool === limit.tool || limit.tool.includes('*'), true, `${where}: ${check.rule} belongs to ${pending.tool}`);
    if (limit.cost !== null && !limit.named) assert.equal(request.cost, limit.cost, `${where}: ${check.rule} cost`);
  }
  return pending.limits.length;
}

test('every limit the example policies check is described by their plan', async () => {
  const dir = new URL('../../examples/', import.meta.url);
  let checked = 0;
  for (const name of (await readdir(dir)).filter((file) => file.endsWith('.json'))) {
    const policy = toolgate.compile(await readFile(new URL(name, dir), 'utf8'));
    const calls = await readFile(new URL(name.replace(/\.json$/, '.calls.jsonl'), dir), 'utf8').catch(() => '');
    for (const line of calls.split('\n').filter((l) => l.trim().startsWith('{'))) {
      const call = JSON.parse(line);
      if (!('tool' in call)) continue;
      delete call.expect;
      const first = policy.evaluate(call, { now: T0 });
      if (first.pending) checked += checkPending(policy, first, name);
    }
  }
  assert.ok(checked > 10, `${checked} limits checked`);
});

test('property: random policies describe every limit their calls check', () => {
  const windows = ['second', 'minute', 'hour', 'day', '10s', 90];
  for (let seed = 1; seed <= 200; seed++) {
    const next = random(seed);
    const pick = (list) => list[Math.floor(next() * list.length)];
    const randomLimit = () => {
      const limit = { window: pick(windows), max: 1 + Math.floor(next() * 100) };
      if (next() < 0.5) limit.counter = pick(['a', 'b', 'shared']);
      if (next() < 0.3) limit.scope = 'global';
      if (next() < 0.3) limit.algorithm = 'sliding';
      if (next() < 0.3) limit.key = 'args.k';
      if (next() < 0.2) limit.cost_from = 'args.amount';
      else if (next() < 0.2) limit.cost = 1 + Math.floor(next() * 5);
      return limit;
    };
    const tools = {};
    for (const name of ['t0', 't1', 't*']) {
      if (next() < 0.8) {
        tools[name] = { limits: Array.from({ length: Math.floor(next() * 3) }, randomLimit) };
        if (next() < 0.4) tools[name].rate_limit = `${1 + Math.floor(next() * 50)}/minute`;
      }
    }
    const document = { version: '1', default: pick(['allow', 'deny']), tools };
    if (next() < 0.5) document.all_tools = { limits: [randomLimit()] };
    const policy = toolgate.compile(document);
    const expectedCount = Object.values(tools).reduce((n, t) => n + t.limits.length + (t.rate_limit ? 1 : 0), 0) + (document.all_tools?.limits.length ?? 0);
    assert.equal(policy.limits.length, expectedCount, `seed ${seed}: one description per limit`);
    for (const tool of ['t0', 't1', 't2', 'tx', 'other']) {
      const first = policy.evaluate({ tool, arguments: { k: pick(['x', 1, 'y']), amount: 2.5 }, grant: 'alice', now: T0 + seed }, { now: T0 });
      if (first.pending) checkPending(policy, first, `seed ${seed} ${tool}`);
    }
  }
});
