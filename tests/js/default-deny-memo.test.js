// The engine answers a default denial it has just published again without
// evaluating (wasm/bindings.cpp, CompiledPolicy::deny_memo_): the same tool
// denied by default by the same policy, with nothing written to the output
// area since. This property test decides seeded random sequences of calls on
// several policies (default deny and default allow, hidden tools, tools with
// limits, compiled twice from the same text, disposed and compiled again)
// and interleaves everything else that writes the output area (allowed and
// limited calls, malformed ones, parked calls finished later, evaluate(),
// explain(), calls sent as JSON text): every answer must equal the JSON-text
// engine's (`boundary: 'json'`, which never takes the binary path), so a
// denial answered from the memo is the denial the general path gives, and
// a memo that outlived a change of output, policy or tool would show.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadToolgate, MemoryApprovalStore, MemoryCounterStore } from '../../wasm/index.js';
import { random } from './seeded-random.js';

const T0 = Date.UTC(2026, 0, 1);

const DOCUMENTS = [
  { version: '1', default: 'deny', hide: ['secret_*'], tools: { a: {}, b: { limits: [{ window: 'minute', max: 3 }] }, 'g*': {} } },
  { version: '1', default: 'deny', tools: { c: { action: 'require_approval' }, unknown_1: {} } },
  { version: '1', default: 'allow', hide: ['unknown_2'], tools: { d: { action: 'deny' } } },
];

// Names denied by default by some policies and not others, names the memo
// does not keep (over 256 bytes), names that quote, and names a call may not carry.
const TOOLS = ['unknown_1', 'unknown_2', 'unknown_1', 'a', 'b', 'c', 'd', 'gx', 'secret_x', 'x'.repeat(300),
  'x'.repeat(256), 'x'.repeat(257), 'say "hi"', 'back\\slash', 'é😀', '', 'bad\u0001name'];

function randomCall(next) {
  const call = { tool: TOOLS[Math.floor(next() * TOOLS.length)], arguments: { n: Math.floor(next() * 3) } };
  const shape = next();
  if (shape < 0.05) call.arguments = 'not an object';
  else if (shape < 0.08) call.extra = true;
  else if (shape < 0.1) call.now = 'not a time';
  if (next() < 0.5) call.grant = next() < 0.5 ? 'g1' : { id: 'g2', role: 'r' };
  return call;
}

const answer = async (fn) => {
  try {
    const out = await fn();
    if (out && typeof out.commit === 'function') await out.commit(); // authorize(): the decision, charged
    return JSON.parse(JSON.stringify(out, (key, value) => (typeof value === 'function' ? undefined : value)));
  } catch (error) {
    return { threw: String(error) };
  }
};

test('a default denial answered again from the engine\'s memo equals the general path\'s, whatever ran between', async () => {
  const engines = [await loadToolgate(), await loadToolgate({ boundary: 'json' })];
  assert.equal(engines[0].binaryCalls, true);
  assert.equal(engines[1].binaryCalls, false);
  // Per engine: the policies (DOCUMENTS, and the first one compiled twice), their stores.
  const sides = engines.map((engine) => ({
    engine,
    policies: [...DOCUMENTS, DOCUMENTS[0]].map((document) => engine.compile(document)),
    stores: [...DOCUMENTS, DOCUMENTS[0]].map(() => ({ counters: new MemoryCounterStore(), approvals: new MemoryApprovalStore() })),
    waiting: [],
  }));
  const next = random(Number(process.env.MEMO_SEED ?? 7));
  let repeats = 0;
  let last = null;
  for (let step = 0; step < 3000; step++) {
    const which = Math.floor(next() * (DOCUMENTS.length + 1));
    const call = randomCall(next);
    const now = T0 + step * 250;
    const op = next();
    if (last && last.which === which && last.tool === call.tool) repeats += 1;
    last = { which, tool: call.tool };
    const results = [];
    for (const side of sides) {
      const policy = side.policies[which];
      const stores = side.stores[which];
      if (op < 0.6) {
        results.push(await answer(() => policy.decide(call, { ...stores, now })));
      } else if (op < 0.7) {
        results.push(await answer(() => policy.evaluate(call, { now })));
      } else if (op < 0.75) {
        results.push(await answer(() => policy.explain(call, { ...stores, now })));
      } else if (op < 0.8) {
        results.push(await answer(() => policy.decide(JSON.stringify(call), { ...stores, now })));
      } else if (op < 0.9) {
        // A call parked on a store that answers later: its finish writes the
        // output area after other calls have run.
        let open;
        const gate = new Promise((resolve) => { open = resolve; });
        const counters = { reserve: async (requests, at) => { await gate; return stores.counters.reserve(requests, at); },
          commit: (r) => stores.counters.commit(r), rollback: (r) => stores.counters.rollback(r) };
        side.waiting.push({ open, done: answer(() => policy.decide(call, { counters, approvals: stores.approvals, now })) });
        results.push('parked');
      } else if (op < 0.95 && side.waiting.length > 0) {
        const { open, done } = side.waiting.shift();
        open();
        results.push(await done);
      } else {
        // The policy disposed and compiled again (a new engine object, maybe
        // at the same address), then the call decided on it.
        policy.dispose();
        side.policies[which] = side.engine.compile(which === DOCUMENTS.length ? DOCUMENTS[0] : DOCUMENTS[which]);
        results.push(await answer(() => side.policies[which].decide(call, { ...stores, now })));
      }
    }
    assert.deepEqual(results[0], results[1], `step ${step}: ${JSON.stringify(call).slice(0, 200)} on policy ${which}`);
  }
  for (const side of sides) {
    for (const { open, done } of side.waiting) {
      open();
      await done;
    }
  }
  // The sequences repeat a call's tool on the same policy often enough for
  // the memo to answer many of them.
  assert.ok(repeats > 40, `only ${repeats} repeats`);
});
