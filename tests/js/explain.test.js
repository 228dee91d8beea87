// Decision traces through the WebAssembly core: Policy.explain (the JS API)
// and `toolgate eval --trace` (the CLI) show the steps of a decision, and
// give exactly the decision (and charge exactly the counters) decide() does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';

import { MemoryApprovalStore, MemoryCounterStore, loadToolgate } from '../../wasm/index.js';
import { T0, policyFile, runCli } from './cli-helpers.js';
import { random as seededRandom } from './seeded-random.js';

// next(n): a seeded integer in [0, n), replayable from EXPLAIN_SEED.
const seededInts = (seed) => {
  const random = seededRandom(seed);
  return (n) => Math.floor(random() * n);
};

const POLICY = {
  version: '1',
  default: 'deny',
  hide: ['secret_*'],
  all_tools: { deny_if: [{ conditions: [{ path: 'args.path', op: 'starts_with', value: '/etc' }] }] },
  tools: {
    refund: {
      require: [{ path: 'args.amount', op: 'lte', value: 100 }, { path: 'grant.role', op: 'eq', value: 'support' }],
      limits: [{ window: 'minute', max: 2 }],
    },
    deploy: { action: 'require_approval' },
  },
};
const toolgate = await loadToolgate();
const policy = toolgate.compile(POLICY);
const refund = (amount, role = 'support', now = T0) => ({ tool: 'refund', arguments: { amount }, grant: { id: 'bot', role }, now });

test('explain: the entry, each condition with the value it read, the limit with its count', async () => {
  const counters = new MemoryCounterStore();
  await policy.decide(refund(10), { counters });
  const traced = await policy.explain(refund(40), { counters });
  assert.equal(traced.code, 'allowed');
  assert.deepEqual(traced.trace.map((s) => [s.step, s.rule]), [
    ['entry', '/tools/refund'], ['require', '/tools/refund/require/0'], ['require', '/tools/refund/require/1'],
    ['deny_if', '/all_tools/deny_if/0'], ['limit', '/tools/refund/limits/0'],
  ]);
  assert.deepEqual(traced.trace[1].conditions, [{ path: 'args.amount', op: 'lte', value: 100, actual: 40, holds: true }]);
  assert.equal(traced.trace[3].holds, false);
  assert.equal('actual' in traced.trace[3].conditions[0], false, 'a missing path reads nothing');
  assert.deepEqual({ count: traced.trace[4].count, cost: traced.trace[4].cost, max: traced.trace[4].max, admitted: traced.trace[4].admitted },
    { count: 1, cost: 1, max: 2, admitted: true });
  // It charged the counter as decide() would: the third call is refused, and its trace says why.
  const third = await policy.explain(refund(50), { counters });
  assert.equal(third.code, 'rate_limited');
  assert.deepEqual({ count: third.trace.at(-1).count, admitted: third.trace.at(-1).admitted }, { count: 2, admitted: false });
});

test('explain: approvals, hidden tools and calls the core cannot read', async () => {
  const approvals = new MemoryApprovalStore();
  const waiting = await policy.explain({ tool: 'deploy', arguments: {}, grant: 'bot', now: T0 }, { approvals });
  assert.equal(waiting.decision, 'approval_required');
  assert.deepEqual(waiting.trace.at(-1), { step: 'approval', rule: '/tools/deploy/action', approval_id: waiting.approval_id, approved: false });
  await approvals.approve(waiting.approval_id, T0);
  const approved = await policy.explain({ tool: 'deploy', arguments: {}, grant: 'bot', now: T0 + 1 }, { approvals });
  assert.equal(approved.decision, 'allow');
  assert.equal(approved.trace.at(-1).approved, true);
  const hidden = await policy.explain({ tool: 'secret_keys', arguments: {}, grant: 'bot', now: T0 });
  assert.deepEqual(hidden.trace, [{ step: 'hide', rule: '/hide/0', hidden: true }]);
  const malformed = await policy.explain('{"tool": 5}');
  assert.equal(malformed.code, 'invalid_call');
  assert.deepEqual(malformed.trace, []);
});

test('property: explain gives the decision decide gives, and charges the same, for random call sequences', async () => {
  const tools = ['refund', 'deploy', 'secret_x', 'other'];
  for (let round = 0; round < 30; round += 1) {
    const plain = { counters: new MemoryCounterStore(), approvals: new MemoryApprovalStore() };
    const traced = { counters: new MemoryCounterStore(), approvals: new MemoryApprovalStore() };
    for (let i = 0; i < 20; i += 1) {
      const args = randomInt(4) === 0 ? { amount: 'x' } : { amount: randomInt(200), ...(randomInt(5) === 0 ? { path: '/etc/hosts' } : {}) };
      const call = { tool: tools[randomInt(tools.length)], arguments: args, grant: { id: `g${randomInt(2)}`, role: randomInt(3) ? 'support' : 'sales' }, now: T0 + i * 7000 };
      const expected = await policy.decide(call, plain);
      const { trace, ...got } = await policy.explain(call, traced);
      assert.deepEqual(got, expected, JSON.stringify(call));
      assert.ok(Array.isArray(trace) && trace.length > 0);
    }
  }
});

test('toolgate eval --trace prints each decision with its steps; without it, no trace', async () => {
  const file = policyFile(POLICY);
  const input = [refund(40), refund(250)].map((c) => JSON.stringify(c)).join('\n') + '\n';
  const traced = await runCli(['eval', '--policy', file, '--trace'], { input });
  assert.equal(traced.code, 0, traced.stderr);
  const [allowed, refused] = traced.stdout.trim().split('\n').map((line) => JSON.parse(line));
  assert.equal(allowed.code, 'allowed');
  assert.equal(allowed.trace.at(-1).step, 'limit');
  assert.equal(refused.code, 'requirement_failed');
  assert.deepEqual(refused.trace[1].conditions[0], { path: 'args.amount', op: 'lte', value: 100, actual: 250, holds: false });
  const plain = await runCli(['eval', '--policy', file], { input });
  assert.equal(JSON.parse(plain.stdout.split('\n')[0]).trace, undefined);
  const unknown = await runCli(['eval', '--policy', file, '--tracing'], { input });
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown option --tracing/);
});

test('replay decides a look-alike tool name as the proxy does (refused), not as the core alone would (allowed)', async () => {
  const { readRecords, replay } = await import('../../lib/replay.js');
  const open = toolgate.compile({ version: '1', default: 'allow', hide: ['get-env'] });
  assert.equal((await open.decide({ tool: 'GET-ENV', arguments: {}, grant: 'bot' })).decision, 'allow', 'the core alone allows it');
  const lines = [
    JSON.stringify({ time: '2026-01-01T00:00:00.000Z', grant: 'bot', tool: 'GET-ENV', arguments: {}, decision: 'deny', code: 'invalid_call', rule: '' }),
    JSON.stringify({ time: '2026-01-01T00:00:01.000Z', grant: 'bot', tool: 'get-env', arguments: {}, decision: 'deny', code: 'hidden', rule: '/hide/0' }),
  ];
  const { calls } = readRecords(lines, { parseTime: (v) => toolgate.parseTime(v) });
  const result = await replay({ policy: open, calls });
  assert.equal(result.replayed, 2);
  assert.deepEqual(result.changed, []);
});

// --- explainWithCounters() and preview(): what a host showing counters (the
// playground) asks, each in one call into the façade.

const stepOneOf = (call) => policy.evaluate(call, { now: T0 });
const peekAll = async (counters, pending) => (pending ? counters.peek(pending.counters) : []);

test('explainWithCounters: explain()\'s decision and trace, the pending evaluation it traced, the counts the store answered', async () => {
  const counters = new MemoryCounterStore();
  await policy.decide(refund(10), { counters });
  const { decision, pending, states } = await policy.explainWithCounters(refund(40), { counters });
  assert.equal(decision.code, 'allowed');
  assert.equal(decision.trace.at(-1).step, 'limit');
  assert.deepEqual(pending, stepOneOf(refund(40)), 'the pending evaluation is step one\'s');
  assert.deepEqual(states, [{ current: 1, previous: 0 }], 'the count before this call');
  assert.deepEqual(await counters.peek(pending.counters), [{ current: 2, previous: 0 }], 'charged as decide() charges');
  const hidden = await policy.explainWithCounters({ tool: 'secret_keys', arguments: {}, grant: 'bot', now: T0 });
  assert.deepEqual([hidden.decision.code, hidden.pending, hidden.states], ['hidden', null, []], 'decided in step one: no pending evaluation');
  const malformed = await policy.explainWithCounters('{"tool": 5}');
  assert.deepEqual([malformed.decision.code, malformed.decision.trace, malformed.pending], ['invalid_call', [], null]);
  const unreadable = await policy.explainWithCounters({ tool: 'refund', arguments: { amount: 1n }, grant: 'bot' });
  assert.deepEqual([unreadable.decision.code, unreadable.pending], ['invalid_call', null], 'a call JSON cannot carry is refused, not thrown');
});

test('preview: what authorize() would decide, charging nothing and using no approval up', async () => {
  const counters = new MemoryCounterStore();
  const approvals = new MemoryApprovalStore();
  const stores = { counters, approvals };
  for (let i = 0; i < 2; i += 1) {
    const previewed = await policy.preview(refund(10), stores);
    assert.equal(previewed.decision.code, 'allowed');
    assert.deepEqual(previewed.states, [{ current: 0, previous: 0 }], 'twice the same: nothing charged');
  }
  await policy.decide(refund(10), stores);
  await policy.decide(refund(10), stores);
  const full = await policy.preview(refund(10), stores);
  assert.deepEqual([full.decision.code, full.decision.rule], ['rate_limited', '/tools/refund/limits/0']);
  assert.ok(full.decision.retry_after_ms > 0);
  assert.deepEqual(full.pending, stepOneOf(refund(10)));
  const deploy = { tool: 'deploy', arguments: {}, grant: 'bot', now: T0 };
  const waiting = await policy.preview(deploy, stores);
  assert.equal(waiting.decision.decision, 'approval_required');
  await approvals.approve(waiting.decision.approval_id, T0);
  assert.equal((await policy.preview(deploy, stores)).decision.decision, 'allow');
  assert.equal((await policy.preview(deploy, stores)).decision.decision, 'allow', 'the preview used no approval up');
  assert.equal((await policy.decide(deploy, stores)).decision, 'allow');
  assert.equal((await policy.preview(deploy, stores)).decision.decision, 'approval_required', 'decide() used it');
  assert.equal((await policy.preview({ tool: 'secret_keys', arguments: {}, grant: 'bot', now: T0 }, stores)).pending, null);
});

test('preview fails closed: a failing store is store_error, a missing one an error that says what to pass', async () => {
  const failing = { peek: async () => { throw new Error('down'); } };
  const down = await policy.preview(refund(10), { counters: failing });
  assert.deepEqual([down.decision.decision, down.decision.code], ['deny', 'store_error']);
  assert.match(down.decision.message, /counter store failed.*down/);
  const approvalsDown = await policy.preview({ tool: 'deploy', arguments: {}, grant: 'bot', now: T0 }, { approvals: { isApproved: async () => { throw new Error('gone'); } } });
  assert.deepEqual([approvalsDown.decision.code, approvalsDown.states], ['store_error', []]);
  await assert.rejects(policy.preview(refund(10)), /pass a counter store that can peek\(\)/);
  await assert.rejects(policy.preview(refund(10), { counters: { reserve: async () => ({}) } }), /peek\(\)/, 'a store that cannot read without charging is refused, not charged');
  const garbage = await policy.preview(refund(10), { counters: { peek: async () => [] } });
  assert.equal(garbage.decision.code, 'store_error', 'a store answering for too few counters');
});

test('property: preview() predicts authorize() and changes nothing; explainWithCounters() gives step one\'s pending evaluation and the counts before the call', async () => {
  const tools = ['refund', 'deploy', 'secret_x', 'other'];
  const seed = Number(process.env.EXPLAIN_SEED ?? randomInt(2 ** 31));
  const next = seededInts(seed);
  for (let round = 0; round < 30; round += 1) {
    const stores = { counters: new MemoryCounterStore(), approvals: new MemoryApprovalStore() };
    const waiting = [];
    for (let i = 0; i < 25; i += 1) {
      const args = next(4) === 0 ? { amount: 'x' } : { amount: next(200), ...(next(5) === 0 ? { path: '/etc/hosts' } : {}) };
      const call = { tool: tools[next(tools.length)], arguments: args, grant: { id: `g${next(2)}`, role: next(3) ? 'support' : 'sales' }, now: T0 + i * 7000 };
      const where = `seed ${seed}, round ${round}, call ${i}: ${JSON.stringify(call)}`;
      if (waiting.length && next(3) === 0) await stores.approvals.approve(waiting.splice(next(waiting.length), 1)[0], call.now);
      const step = stepOneOf(call);
      const pendingOrNull = step.pending ? step : null;
      const countsBefore = await peekAll(stores.counters, pendingOrNull);
      const previewed = await policy.preview(call, stores);
      assert.deepEqual(previewed.pending, pendingOrNull, where);
      assert.deepEqual(await peekAll(stores.counters, pendingOrNull), countsBefore, `preview charged nothing: ${where}`);
      const explained = await policy.explainWithCounters(call, stores);
      const { trace, ...decision } = explained.decision;
      assert.deepEqual(decision, previewed.decision, `preview predicted the decision: ${where}`);
      assert.ok(trace.length > 0, where);
      assert.deepEqual(explained.pending, pendingOrNull, where);
      if (pendingOrNull && pendingOrNull.counters.length && (!pendingOrNull.approval || decision.code !== 'approval_required')) {
        assert.deepEqual(explained.states, countsBefore, `the counts before the call: ${where}`);
      }
      if (decision.decision === 'approval_required') waiting.push(decision.approval_id);
    }
  }
});

// --- One evaluation per explain(): step one is traced in the evaluation
// whose counters the stores reserve, and step two finishes that same parked
// evaluation, traced. Counted from outside the façade, on engines of their own
// (the binary boundary and the JSON-text one): every entry into the core
// that runs step one (the hot path's _toolgate_start, and the CompiledPolicy
// methods that start or evaluate a call; the old traced pass was the
// binding's `explain`), and every handle's parked count.

const { readFileSync } = await import('node:fs');
const wasmBinary = readFileSync(new URL('../../wasm/dist/toolgate_core.wasm', import.meta.url));

function countEngine(engine) {
  const core = engine.callCore((c) => c);
  const counted = { stepOnes: 0, handles: new Set() };
  const start = core._toolgate_start;
  core._toolgate_start = (...args) => {
    counted.stepOnes += 1;
    return start(...args);
  };
  const proto = core.CompiledPolicy.prototype;
  for (const name of Object.getOwnPropertyNames(proto)) {
    if (!/^(start|evaluate$|explain$)/.test(name) || typeof proto[name] !== 'function') continue;
    const original = proto[name];
    proto[name] = function countedStepOne(...args) {
      counted.stepOnes += 1;
      counted.handles.add(this);
      return original.apply(this, args);
    };
  }
  counted.parked = () => [...counted.handles].reduce((sum, handle) => sum + handle.parked(), 0);
  return counted;
}

// Stores of every kind explain() meets: memory; async; failing (closed or
// open); a consume() that loses the race (authorize() finishes twice); a
// counter store answering counts that are not numbers; one that disagrees
// with the core.
function storesOf(kind, counters = new MemoryCounterStore(), approvals = new MemoryApprovalStore()) {
  switch (kind) {
    case 'memory': return { counters, approvals };
    case 'async': return {
      counters: { reserve: async (r, now) => counters.reserve(r, now), commit: (x) => counters.commit(x), rollback: (x) => counters.rollback(x) },
      approvals: { isApproved: async (...a) => approvals.isApproved(...a), consume: async (...a) => approvals.consume(...a), approve: (...a) => approvals.approve(...a) },
    };
    case 'failing': return { counters: { reserve: async () => { throw new Error('down'); } }, approvals };
    case 'fail-open': return { counters: { reserve: async () => { throw new Error('down'); } }, approvals, failOpen: true };
    case 'consume-lost': return { counters, approvals: { isApproved: async () => true, consume: async () => false } };
    case 'not-numbers': return { counters: { reserve: async (r) => ({ admitted: true, states: r.map(() => ({ current: NaN, previous: 0 })), charges: [] }), commit: async () => {}, rollback: async () => {} }, approvals };
    default: return { counters: { reserve: async () => ({ admitted: false, states: [], charges: [] }), commit: async () => {}, rollback: async () => {} } };
  }
}
const KINDS = ['memory', 'async', 'failing', 'fail-open', 'consume-lost', 'not-numbers', 'disagreeing'];

test('property: explain() evaluates each call once, on both boundaries, through every kind of store; decisions and charges as decide(), traces equal across boundaries', async () => {
  const binary = await loadToolgate({ wasmBinary });
  const text = await loadToolgate({ boundary: 'json' });
  const engines = [binary, text].map((engine) => ({ engine, counted: countEngine(engine), policy: engine.compile(POLICY) }));
  const reference = toolgate.compile(POLICY);
  const tools = ['refund', 'deploy', 'secret_x', 'other'];
  const seed = Number(process.env.EXPLAIN_SEED ?? randomInt(2 ** 31));
  const next = seededInts(seed);
  const seen = new Set();
  for (let round = 0; round < 28; round += 1) {
    const kind = KINDS[round % KINDS.length];
    const sides = [...engines.map(() => storesOf(kind)), storesOf(kind)]; // the last one: decide() on the shared engine
    const waiting = [];
    for (let i = 0; i < 20; i += 1) {
      // Each round opens with calls that reach every outcome its kind of
      // store can give (allowed, rate limited, an approval), then random ones.
      const args = next(4) === 0 ? { amount: 'x' } : { amount: next(200), ...(next(5) === 0 ? { path: '/etc/hosts' } : {}) };
      let call = i < 3 ? refund(10, 'support', T0 + i)
        : i === 3 ? { tool: 'deploy', arguments: {}, grant: 'bot', now: T0 + 3 }
          : { tool: tools[next(tools.length)], arguments: args, grant: { id: `g${next(2)}`, role: next(3) ? 'support' : 'sales' }, now: T0 + i * 7000 };
      if (next(8) === 0) call = JSON.stringify(call);
      const now = T0 + i * 7000;
      const where = `seed ${seed}, round ${round} (${kind}), call ${i}: ${JSON.stringify(call)}`;
      if (waiting.length && next(3) === 0) {
        const id = waiting.splice(next(waiting.length), 1)[0];
        for (const side of sides) await side.approvals?.approve?.(id, now);
      }
      const answers = [];
      for (const [index, { counted, policy: own }] of engines.entries()) {
        const before = counted.stepOnes;
        answers.push(await own.explainWithCounters(call, { ...sides[index], now }));
        assert.equal(counted.stepOnes - before, 1, `one step one per explain: ${where}`);
        assert.equal(counted.parked(), 0, `every ticket released: ${where}`);
      }
      assert.deepEqual(answers[1], answers[0], `the same decision, trace, pending evaluation and counts through JSON text: ${where}`);
      const { trace, ...decision } = answers[0].decision;
      assert.deepEqual(decision, await reference.decide(call, { ...sides[2], now }), `explain decides as decide(): ${where}`);
      assert.ok(trace.length > 0, where);
      seen.add(`${kind} ${decision.code}`);
      if (decision.decision === 'approval_required') waiting.push(decision.approval_id);
    }
  }
  for (const expected of ['memory rate_limited', 'async allowed', 'failing store_error', 'fail-open allowed', 'consume-lost approval_required', 'not-numbers store_error', 'disagreeing store_error']) {
    assert.ok(seen.has(expected), `the sequences reached ${expected} (seed ${seed})`);
  }
});

test('explain() traces the finish that decided: an approval lost to another call finishes twice, and the trace shows the second', async () => {
  const engine = await loadToolgate({ wasmBinary });
  const counted = countEngine(engine);
  const own = engine.compile(POLICY);
  const deploy = { tool: 'deploy', arguments: {}, grant: 'bot', now: T0 };
  const lost = await own.explain(deploy, storesOf('consume-lost'));
  assert.equal(lost.decision, 'approval_required');
  // The first finish (approved: the store said so) allowed it; consume()
  // then lost, and the second finish (not approved) decided.
  assert.deepEqual(lost.trace, [
    { step: 'entry', rule: '/tools/deploy', entry: 'deploy', default: 'deny' },
    { step: 'deny_if', rule: '/all_tools/deny_if/0', holds: false, conditions: [{ path: 'args.path', op: 'starts_with', value: '/etc', holds: false }] },
    { step: 'approval', rule: '/tools/deploy/action', approval_id: lost.approval_id, approved: false },
  ], 'the second finish\'s steps, and only them');
  assert.equal(counted.stepOnes, 1);
  assert.equal(counted.parked(), 0);
});

test('explain() waiting on its stores keeps its own trace while other calls park, finish and reuse slots', async () => {
  const engine = await loadToolgate({ wasmBinary });
  const counted = countEngine(engine);
  const own = engine.compile(POLICY);
  let answer;
  const held = new Promise((resolve) => { answer = resolve; });
  let asked;
  const reserving = new Promise((resolve) => { asked = resolve; });
  const counters = new MemoryCounterStore();
  const slow = {
    reserve: (requests, now) => {
      asked();
      return held.then(() => ({ admitted: true, states: requests.map(() => ({ current: 1, previous: 0 })), charges: [] }));
    },
    commit: async () => {},
    rollback: async () => {},
  };
  const explaining = own.explainWithCounters(refund(40), { counters: slow });
  await reserving; // parked, its reserve waiting
  // Meanwhile: hot-path calls park, finish and release around it (one of
  // them reuses no slot of the explained call: it is still parked).
  for (let i = 0; i < 3; i += 1) assert.equal((await own.decide(refund(10, 'support', T0 + i), { counters })).code, i < 2 ? 'allowed' : 'rate_limited');
  assert.equal(counted.parked(), 1, 'only the explained call waits');
  answer();
  const { decision, states } = await explaining;
  assert.equal(decision.code, 'allowed');
  assert.deepEqual(states, [{ current: 1, previous: 0 }]);
  assert.deepEqual(decision.trace.map((s) => s.step), ['entry', 'require', 'require', 'deny_if', 'limit']);
  assert.equal(decision.trace.at(-1).count, 1, 'its limit step counts what its own store answered');
  assert.equal(counted.parked(), 0);
  // The slot it left is reused by the hot path: the next explain of the
  // same call traces only its own finish.
  assert.equal((await own.decide(refund(10, 'support', T0 + 120_000), { counters })).code, 'allowed');
  const again = await own.explain(refund(10, 'support', T0 + 120_001), { counters });
  assert.deepEqual(again.trace.map((s) => s.step), ['entry', 'require', 'require', 'deny_if', 'limit']);
  assert.equal(again.trace.at(-1).count, 1);
  assert.equal(counted.parked(), 0);
});
