// decide()'s inline common case (wasm/index.js #decideNow: a store with
// reserveNow, no approval) against the general path it shortcuts, authorize()
// then commit(): over seeded random calls, on twin stores of every kind a
// store with reserveNow can be (the memory store; one whose reserveNow throws
// at times; one that lies about admission; one without commitNow), with and
// without failOpen, every decision and every count afterwards are the same.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadToolgate, MemoryCounterStore } from '../../wasm/index.js';
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
