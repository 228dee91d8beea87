// decide()'s inline common case (wasm/index.js #decideNow: a store with
// reserveNow, no approval) against the general path it shortcuts, authorize()
// then commit(): over seeded random calls, on twin stores of every kind a
// store with reserveNow can be (the memory store; one whose reserveNow throws
// at times; one that lies about admission; one without commitNow), with and
// without failOpen, every decision and every count afterwards are the same.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadToolgate, MemoryCounterStore } from '../../wasm/index.js';
import { encodeCall } from '../../wasm/call-encoder.js';
import { random } from './seeded-random.js';

const T0 = Date.UTC(2026, 0, 1);
const toolgate = await loadToolgate();

const policy = toolgate.compile({
  version: '1',
  default: 'deny',
  tools: {
    refund: {
      require: [{ path: 'args.currency', op: 'in', value: ['usd', 'eur'] }],
      limits: [{ counter: 'refunds', window: 'minute', max: 3 }, { counter: 'big', window: 'hour', max: 5, scope: 'global', algorithm: 'sliding' }],
    },
    read: { rate_limit: '4/minute' },
    open: {},
    approve: { action: 'require_approval', rate_limit: '2/minute' },
  },
});

// A store with reserveNow whose behaviour a seeded generator picks per call.
class OddStore extends MemoryCounterStore {
  constructor(next, { commitNow = true } = {}) {
    super();
    this.next = next;
    this.log = [];
    if (!commitNow) this.commitNow = undefined;
  }

  reserveNow(requests, now) {
    const r = this.next();
    if (r < 0.1) throw new Error('store down');
    const reservation = super.reserveNow(requests, now);
    if (r < 0.2) return { ...reservation, admitted: !reservation.admitted }; // a lying store
    return reservation;
  }

  async rollback(reservation) {
    this.log.push('rollback');
    return super.rollback(reservation);
  }

  async commit(reservation) {
    this.log.push('commit');
    MemoryCounterStore.prototype.commitNow.call(this, reservation);
  }
}

const counts = (store, calls) => Promise.all(calls.map((c) => policy.preview(c.call, { counters: store, now: c.now }).then((p) => p.states)));

for (const kind of ['memory', 'odd', 'odd without commitNow']) {
  for (const failOpen of [false, true]) {
    test(`decide() equals authorize() + commit(): ${kind} store, failOpen ${failOpen}`, async () => {
      const seed = 20261207;
      const make = () => {
        const next = random(seed);
        return kind === 'memory' ? new MemoryCounterStore() : new OddStore(next, { commitNow: kind === 'odd' });
      };
      const fast = make();
      const slow = make();
      const next = random(seed + 1);
      const calls = [];
      for (let i = 0; i < 300; i++) {
        const tool = ['refund', 'read', 'open', 'approve', 'nothing'][Math.floor(next() * 5)];
        const call = { tool, arguments: { currency: next() < 0.8 ? 'usd' : 'gbp' }, grant: next() < 0.5 ? 'alice' : 'bob' };
        const now = T0 + Math.floor(next() * 3) * 20000 + i;
        calls.push({ call, now });
        const a = await policy.decide(call, { counters: fast, now, failOpen });
        const answer = await policy.authorize(call, { counters: slow, now, failOpen });
        await answer.commit();
        assert.deepEqual(a, answer.decision, `call ${i}: ${JSON.stringify(call)}`);
      }
      if (kind !== 'memory') assert.deepEqual(fast.log, slow.log, 'the same commits and rollbacks');
      assert.deepEqual(await counts(fast, calls), await counts(slow, calls), 'the same counts afterwards');
    });
  }
}

// decide()'s inline case finishes and releases its parked evaluation in one
// call into the engine (toolgate_finish with `release`), and releases it
// itself on the paths that do not finish that way (a store that throws, with
// and without failOpen): after seeded calls through every kind of store, no
// evaluation of the policy is left parked (its handle's count, read from
// outside the façade).
test('decide() leaves no evaluation parked, whatever its store does', async () => {
  const engine = await loadToolgate();
  const core = engine.callCore((c) => c);
  const handles = new Set();
  const address = core.CompiledPolicy.prototype.address;
  core.CompiledPolicy.prototype.address = function seen(...args) {
    handles.add(this);
    return address.apply(this, args);
  };
  const own = engine.compile({
    version: '1',
    default: 'deny',
    tools: { refund: { limits: [{ window: 'minute', max: 3 }] }, read: { rate_limit: '4/minute' }, approve: { action: 'require_approval' } },
  });
  const next = random(99);
  let decided = 0;
  for (const kind of ['memory', 'odd', 'odd without commitNow']) {
    for (const failOpen of [false, true]) {
      const store = kind === 'memory' ? new MemoryCounterStore() : new OddStore(next, { commitNow: kind === 'odd' });
      for (let i = 0; i < 100; i++) {
        const tool = ['refund', 'read', 'approve', 'nothing'][Math.floor(next() * 4)];
        await own.decide({ tool, arguments: {}, grant: next() < 0.5 ? 'alice' : 'bob' }, { counters: store, now: T0 + i, failOpen });
        decided += 1;
      }
    }
  }
  assert.equal(decided, 600);
  assert.ok(handles.size >= 1, 'the policy\'s handle was seen');
  assert.equal([...handles].reduce((sum, handle) => sum + handle.parked(), 0), 0, 'every ticket released');
});

// The host's clock is read only for a call without a "now" of its own
// (wasm/index.js startEncoded, wasm/call-encoder.js encodedCallHasNow): over
// seeded random calls (a valid, invalid, null, string or missing "now"; a
// "now" from a getter; calls the binary form cannot carry, which go as JSON
// text), decide() and evaluate() without the `now` option answer exactly as
// with `now` set to what the clock says, and read the clock only when the
// call has no "now" member that was written.
test('the host clock: read only for calls without "now", answers as with the option', async () => {
  const clock = T0 + 42_123;
  const realNow = Date.now;
  let reads = 0;
  const next = random(4242);
  const pick = (list) => list[Math.floor(next() * list.length)];
  const nows = [undefined, T0, T0 + 61_000, '2026-01-01T00:02:00Z', null, 'soon', -1, 1e300, 2 ** 60];
  const calls = [];
  for (let i = 0; i < 600; i++) {
    const call = { tool: pick(['refund', 'read', 'open', 'approve', 'nope']), arguments: { currency: pick(['usd', 'gbp']) }, grant: pick(['alice', 'bob']) };
    const now = pick(nows);
    if (next() < 0.3) call.arguments.now = T0; // a "now" that is not the call's
    const shape = next();
    if (shape < 0.1) {
      Object.defineProperty(call, 'now', { get: () => now ?? T0, enumerable: true });
    } else if (shape < 0.2) {
      call.now = now;
      call.arguments.big = 2n ** 70n; // not JSON: refused before the core, whatever the clock
    } else if (shape < 0.3) {
      call.now = now;
      call.arguments.wide = 2 ** 60; // not in the binary form: goes as JSON text
    } else if (now !== undefined) {
      call.now = now;
    }
    calls.push(call);
  }
  const lazy = new MemoryCounterStore();
  const given = new MemoryCounterStore();
  try {
    Date.now = () => { reads++; return clock; };
    for (const [i, call] of calls.entries()) {
      const hasNow = Object.hasOwn(call, 'now') && call.now !== undefined;
      const binary = encodeCall(call) >= 0; // else it goes as JSON text (or is refused)
      reads = 0;
      const a = await policy.decide(call, { counters: lazy });
      const lazyReads = reads;
      const b = await policy.decide(call, { counters: given, now: clock });
      assert.deepEqual(a, b, `call ${i}: ${JSON.stringify(call, (k, v) => (typeof v === 'bigint' ? `${v}n` : v))}`);
      if (hasNow && binary) assert.equal(lazyReads, 0, `call ${i}: a call with "now" reads no clock on the binary path`);
      else if (!hasNow && typeof call.arguments.big !== 'bigint') assert.ok(lazyReads >= 1, `call ${i}: a call without "now" reads the clock`);
      reads = 0;
      assert.deepEqual(policy.evaluate(call), policy.evaluate(call, { now: clock }), `call ${i}: evaluate()`);
    }
  } finally {
    Date.now = realNow;
  }
  // The clock read is the one used: a call without "now" is decided at it.
  try {
    Date.now = () => clock;
    const pending = policy.evaluate({ tool: 'read', arguments: {}, grant: 'alice' });
    assert.equal(pending.now, clock);
    assert.equal(policy.evaluate({ tool: 'read', arguments: {}, grant: 'alice', now: T0 }).now, T0);
  } finally {
    Date.now = realNow;
  }
});
