// worker/grant-lanes.js: a grant's requests are worked one at a time, handed
// on in a later task; while other grants are active a grant's work is held
// to its share of each window, alone it may use everything. A fake clock
// stands for performance.now(), so nothing here races real time.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { GrantLanes } from '../../worker/grant-lanes.js';

test('one request of a grant at a time; other grants are not held up by its lane', async () => {
  const lanes = new GrantLanes();
  const order = [];
  const first = await lanes.enter('a');
  let secondIn = false;
  const second = lanes.enter('a').then((leave) => { secondIn = true; order.push('a2'); return leave; });
  const other = await lanes.enter('b');
  order.push('b1');
  assert.equal(secondIn, false, 'a\'s second request waits for its lane');
  other();
  first();
  assert.equal(secondIn, false, 'handed on in a later task, not at once');
  (await second)();
  assert.deepEqual(order, ['b1', 'a2']);
  assert.equal(lanes.size, 0, 'no lane is held once all are given back');
});

test('a grant over its share waits for the next window only while another grant is active', async () => {
  let now = 0;
  const lanes = new GrantLanes({ share: 0.25, windowMs: 1000, activeMs: 1000, clock: () => now });
  // Alone, a grant may use the whole window.
  for (let i = 0; i < 3; i++) {
    const leave = await lanes.enter('a');
    now += 200;
    leave();
  }
  const alone = await lanes.enter('a');
  alone();
  // Another grant becomes active: a, 600 ms into its window, is over 250 ms and waits.
  (await lanes.enter('b'))();
  let entered = false;
  const waiting = lanes.enter('a').then((leave) => { entered = true; return leave; });
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(entered, false, 'held while b is active and a is over its share');
  now = 1200; // a's window (from its first charge, at 200) is over: the wait ends and a goes on
  (await waiting)();
  assert.equal(entered, true);
});

test('audit work charged to a grant counts against its share', async () => {
  let now = 0;
  const lanes = new GrantLanes({ share: 0.25, windowMs: 1000, clock: () => now });
  (await lanes.enter('b'))();
  (await lanes.enter('a'))();
  lanes.charge('a', 300);
  let entered = false;
  const waiting = lanes.enter('a').then((leave) => { entered = true; return leave; });
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(entered, false);
  now = 1001; // past b's and a's windows, which began at 0
  (await waiting)();
});
