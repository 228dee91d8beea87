// authorize() parks each evaluation that needs a store in the engine under a
// ticket (wasm/bindings.cpp) until the stores answer. The table is bounded
// and never evicts: when `maxParked` (65 536) calls of one policy wait, the
// next is refused with a stable store_error (fail closed) and every waiting
// call still gets its own evaluation. Proven through the real façade and
// engine, with stores that answer only when the test says so (state, never
// time): fill the table through every path a call can take (counter store,
// approval store, both), see the refusal on the binary and the JSON-text
// path, see it recover one ticket at a time, settle every call through
// every outcome (admitted, full, store failures, wrong answers, approvals
// missing, taken, failing), then fill the whole table again: a single ticket
// left behind by any path would make that second fill fall short.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadToolgate } from '../../wasm/index.js';

const T0 = Date.UTC(2026, 0, 1);
const FULL_MESSAGE = 'Denied (fail closed): too many calls of this policy are waiting for their counter and approval stores (65536 at once); retry once some finish.';

const toolgate = await loadToolgate();
const MAX = toolgate.maxParked;
const policy = toolgate.compile({
  version: '1',
  default: 'deny',
  tools: {
    limited: { limits: [{ window: 'minute', max: 1e9 }] },
    gated: { action: 'require_approval', limits: [{ window: 'minute', max: 1e9 }] },
  },
});

// Counter and approval stores whose every answer waits in `waiting` until
// the test settles it.
class HeldStores {
  waiting = [];
  #listeners = [];

  #hold(kind, args) {
    return new Promise((resolve, reject) => {
      this.waiting.push({ kind, args, resolve, reject });
      const ready = this.#listeners.filter((listener) => this.waiting.length > listener.count);
      this.#listeners = this.#listeners.filter((listener) => this.waiting.length <= listener.count);
      for (const listener of ready) listener.resolve();
    });
  }

  // Resolves once more than `count` answers wait (at once if they do).
  whenMoreThan(count) {
    if (this.waiting.length > count) return Promise.resolve();
    return new Promise((resolve) => this.#listeners.push({ count, resolve }));
  }

  reserve(requests, now) { return this.#hold('reserve', { requests, now }); }
  commit() { return Promise.resolve(); }
  rollback() { return Promise.resolve(); }
  isApproved(id) { return this.#hold('isApproved', { id }); }
  consume(id) { return this.#hold('consume', { id }); }
}

const stores = new HeldStores();
const options = { counters: stores, approvals: stores, now: T0 };
const call = (tool, i) => ({ tool, arguments: {}, grant: `g${i}`, now: T0 });

// Starts authorize() for `request` and tells whether it parked (its store was
// asked) or was answered at once.
async function start(request, target = policy) {
  const before = stores.waiting.length;
  const decision = target.authorize(request, options);
  const asked = stores.whenMoreThan(before).then(() => 'parked');
  const outcome = await Promise.race([decision.then(() => 'answered'), asked]);
  return { outcome, decision };
}

// How each call's stores answer, by its index, and the code it must end with.
const LIMITED = [['admit', 'allowed'], ['full', 'rate_limited'], ['throw', 'store_error'], ['wrong', 'store_error']];
const GATED = [['no', 'approval_required'], ['throw', 'store_error'], ['consumed', 'allowed'], ['taken', 'approval_required'],
  ['consume-throws', 'store_error'], ['full', 'rate_limited']];
const planOf = (i) => (i % 2 === 0 ? LIMITED[(i / 2) % LIMITED.length] : GATED[((i - 1) / 2) % GATED.length]);

function settle(entry, indexOfGrant, indexOfApproval) {
  if (entry.kind === 'reserve') {
    const [plan] = planOf(indexOfGrant(entry.args.requests[0].grant));
    const { requests } = entry.args;
    if (plan === 'throw') return entry.reject(new Error('counter store down'));
    if (plan === 'full') return entry.resolve({ admitted: false, states: requests.map(() => ({ current: 1e9, previous: 0 })) });
    if (plan === 'wrong') return entry.resolve({ admitted: true, states: [] });
    return entry.resolve({ admitted: true, states: requests.map(() => ({ current: 0, previous: 0 })) });
  }
  const [plan] = planOf(indexOfApproval(entry.args.id));
  if (entry.kind === 'isApproved') {
    if (plan === 'throw') return entry.reject(new Error('approval store down'));
    return entry.resolve(plan !== 'no');
  }
  if (plan === 'consume-throws') return entry.reject(new Error('approval store down'));
  return entry.resolve(plan !== 'taken');
}

// Settles whatever waits, as it comes, until every call has its decision.
async function settleAll(decisions, indexOfGrant, indexOfApproval) {
  let done = false;
  const all = Promise.all(decisions).then((results) => { done = true; return results; });
  while (!done) {
    if (stores.waiting.length === 0) {
      await Promise.race([all, stores.whenMoreThan(0)]);
      continue;
    }
    settle(stores.waiting.shift(), indexOfGrant, indexOfApproval);
  }
  return all;
}

test('a full table refuses new calls (stable store_error), loses no waiting call, and recovers ticket by ticket', async () => {
  // Approval ids are a hash of the call: learn each gated call's, to answer it by plan.
  const approvalIndex = new Map();
  for (let i = 1; i < MAX; i += 2) approvalIndex.set(policy.evaluate(call('gated', i)).approval.id, i);
  const indexOfGrant = (grant) => Number(grant.slice(1));
  const indexOfApproval = (id) => approvalIndex.get(id);

  const decisions = [];
  for (let i = 0; i < MAX; i++) {
    const { outcome, decision } = await start(call(i % 2 === 0 ? 'limited' : 'gated', i));
    assert.equal(outcome, 'parked', `call ${i} of ${MAX} parks`);
    decisions.push(decision);
  }

  // Full: the next call is refused at once, on both ways into the engine,
  // and its stores are never asked.
  for (const request of [call('limited', MAX), JSON.stringify(call('gated', MAX))]) {
    const { outcome, decision } = await start(request);
    assert.equal(outcome, 'answered');
    const { decision: refused } = await decision;
    assert.deepEqual(refused, { decision: 'deny', code: 'store_error', rule: '', message: FULL_MESSAGE });
  }
  // Decisions that need no store, evaluate(), and another policy are unaffected.
  assert.equal((await policy.decide({ tool: 'other', now: T0 }, options)).code, 'default_deny');
  assert.equal(policy.evaluate(call('limited', 0)).pending, true);
  const other = toolgate.compile({ version: '1', default: 'deny', tools: { limited: { rate_limit: '5/minute' } } });
  const { outcome: otherOutcome, decision: otherDecision } = await start(call('limited', 0), other);
  assert.equal(otherOutcome, 'parked', 'each policy has its own table');

  // One call finishes: one new call parks, and the one after is refused again.
  const first = stores.waiting.shift();
  settle(first, indexOfGrant, indexOfApproval);
  assert.equal((await decisions[0]).decision.code, 'allowed');
  const { outcome: again, decision: late } = await start(call('limited', MAX * 2)); // plan: admit
  assert.equal(again, 'parked', 'the finished ticket was released');
  decisions[0] = late;
  const { outcome: refusedAgain } = await start(call('limited', MAX + 1));
  assert.equal(refusedAgain, 'answered');

  // Every call settles, each through its plan's path, with its own decision.
  const results = await settleAll([...decisions, otherDecision], indexOfGrant, indexOfApproval);
  const commits = [];
  results.slice(0, MAX).forEach(({ decision, commit, rollback }, i) => {
    const expected = i === 0 ? 'allowed' : planOf(i)[1];
    assert.equal(decision.code, expected, `call ${i} (${planOf(i)[0]}): ${decision.message}`);
    if (decision.code === 'store_error') assert.notEqual(decision.message, FULL_MESSAGE);
    commits.push(i % 4 < 2 ? commit() : rollback());
  });
  await Promise.all(commits);
  assert.equal(stores.waiting.length, 0);

  // Every ticket was released on every path: the whole table fills again.
  const refill = [];
  for (let i = 0; i < MAX; i++) {
    const { outcome, decision } = await start(call('limited', 8 * i)); // plan: admit
    assert.equal(outcome, 'parked', `refill: call ${i} of ${MAX} parks (a path above left a ticket behind)`);
    refill.push(decision);
  }
  const { outcome: last, decision: lastDecision } = await start(call('limited', 1));
  assert.equal(last, 'answered');
  assert.equal((await lastDecision).decision.message, FULL_MESSAGE);
  const refilled = await settleAll(refill, indexOfGrant, indexOfApproval);
  assert.ok(refilled.every(({ decision }) => decision.code === 'allowed'));
  other.dispose();
});

test('a call whose policy is disposed while its stores answer is denied, not decided on anything else', async () => {
  const local = toolgate.compile({ version: '1', default: 'deny', tools: { limited: { limits: [{ window: 'minute', max: 1e9 }] } } });
  const { outcome, decision } = await start(call('limited', 0), local);
  assert.equal(outcome, 'parked');
  local.dispose();
  const entry = stores.waiting.shift();
  entry.resolve({ admitted: true, states: entry.args.requests.map(() => ({ current: 0, previous: 0 })) });
  const { decision: result } = await decision;
  assert.equal(result.code, 'store_error');
  assert.match(result.message, /fail closed/);
});
