// The CounterStore conformance suite on the reference store, MemoryCounterStore:
// the suite's own check (every test it states holds for the reference).
import { MemoryCounterStore } from '../../wasm/index.js';
import { conformance } from './store-conformance.js';

conformance('MemoryCounterStore', () => new MemoryCounterStore());

// reserveNow() keeps the buckets it reads in a scratch array between calls. A
// caller's request object can run code in the middle of a reservation (a
// getter); a reservation made there must not write over the outer one's
// buckets. Observable when the clock went back: the held bucket (start 120 s)
// keeps its start and counts, charged in place; a reservation that lost the
// bucket it read would write a new one at the request's earlier start.
import assert from 'node:assert/strict';
import { test } from 'node:test';

test('MemoryCounterStore: a reservation made from a request getter in the middle of another leaves the outer one\'s buckets as it read them', async () => {
  const request = (key, bucketStart) => ({ key, scope: 'grant', grant: 'g', cost: 1, max: 100, window_ms: 60_000, algorithm: 'fixed', bucket_start_ms: bucketStart });
  const run = async (reenter) => {
    const store = new MemoryCounterStore();
    const other = new MemoryCounterStore();
    await store.reserve([request('a', 120_000)], 120_000);
    // The clock went back a window: bucket 60 s, while 'a' is held at 120 s.
    let entered = false;
    const second = request('b', 60_000);
    if (reenter) {
      Object.defineProperty(second, 'key', {
        get() {
          if (!entered) {
            entered = true;
            other.reserveNow([request('x', 60_000), request('y', 60_000)], 60_000);
          }
          return 'b';
        },
      });
    }
    const reservation = await store.reserve([request('a', 60_000), second], 60_000);
    assert.equal(reservation.admitted, true);
    return store.peek([request('a', 120_000), request('b', 120_000)], 120_000);
  };
  const plain = await run(false);
  // 'a' charged in place at 120 s (2); 'b' new at 60 s, the previous window at 120 s.
  assert.deepEqual(plain, [{ current: 2, previous: 0 }, { current: 0, previous: 1 }]);
  assert.deepEqual(await run(true), plain);
});
