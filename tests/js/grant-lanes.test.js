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

test('tryEnter: the lane at once only when enter() would give it at once; never two holders of a grant', async () => {
  let now = 0;
  const lanes = new GrantLanes({ share: 0.25, windowMs: 1000, activeMs: 1000, clock: () => now });
  const leaveA = lanes.tryEnter('a');
  assert.equal(typeof leaveA, 'function', 'a free lane, at once');
  assert.equal(lanes.tryEnter('a'), null, 'held: not twice');
  let waiterIn = false;
  const waiter = lanes.enter('a').then((leave) => { waiterIn = true; return leave; });
  leaveA();
  assert.equal(lanes.tryEnter('a'), null, 'a waiter is handed the lane first; a newcomer does not jump it');
  const leaveWaiter = await waiter;
  assert.equal(waiterIn, true);
  assert.equal(lanes.tryEnter('a'), null);
  now += 400; // a used 400 ms of its window
  leaveWaiter();
  assert.equal(lanes.size, 0);
  // Alone, over its share, a still goes on; with b active it does not.
  const alone = lanes.tryEnter('a');
  assert.equal(typeof alone, 'function');
  alone();
  const leaveB = lanes.tryEnter('b');
  assert.equal(typeof leaveB, 'function', 'b\'s lane is its own');
  leaveB();
  assert.equal(lanes.tryEnter('a'), null, 'over its share while b is active');
  assert.equal(lanes.size, 0, 'a refused tryEnter holds nothing');
  now = 1500;
  assert.equal(typeof lanes.tryEnter('a'), 'function', 'a new window');
});

test('property: random tryEnter, enter and leave never give one grant two holders, and every request gets the lane', async () => {
  const { random } = await import('./seeded-random.js');
  const next = random(20261207);
  const lanes = new GrantLanes();
  const holding = new Map(); // grant -> holders now
  const held = [];
  const waiting = [];
  const hold = (grant, leave) => {
    holding.set(grant, (holding.get(grant) ?? 0) + 1);
    assert.equal(holding.get(grant), 1, `one holder of ${grant}`);
    held.push({ grant, leave });
  };
  for (let step = 0; step < 2000; step++) {
    const grant = ['a', 'b', 'c'][Math.floor(next() * 3)];
    const action = next();
    if (action < 0.4) {
      const leave = lanes.tryEnter(grant);
      if (leave) hold(grant, leave);
      else waiting.push(lanes.enter(grant).then((l) => hold(grant, l)));
    } else if (action < 0.8 && held.length > 0) {
      const { grant: g, leave } = held.splice(Math.floor(next() * held.length), 1)[0];
      holding.set(g, holding.get(g) - 1);
      leave();
    } else {
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  // Let every holder go until every request that waited has had the lane.
  let granted = 0;
  for (const promise of waiting) promise.then(() => { granted += 1; });
  while (held.length > 0 || granted < waiting.length) {
    for (const { grant: g, leave } of held.splice(0)) {
      holding.set(g, holding.get(g) - 1);
      leave();
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.equal(lanes.size, 0);
});
