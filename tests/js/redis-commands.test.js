// The Redis command layer's watch (worker/stores/redis-commands.js): one
// timer and one setImmediate per loop turn per RedisCommands, not a timer, an
// AbortController and a setImmediate per command (issue #17). What it must
// still do, on a real redis-server that stops answering:
//
// - a redis-server frozen by SIGSTOP (its socket accepts bytes, nothing
//   answers): reserve() rejects after timeoutMs of silence, the call is denied
//   store_error, and the late charge is given back once it runs (SIGCONT);
// - a relay that delivers the client's bytes to Redis only when told (a host
//   or network that stalls): every command, sent at its own moment, gives up
//   on its own silence (never before timeoutMs after it was sent), and each one
//   that ran late reaches onLateReply exactly once;
// - commands node-redis never wrote (its connection cut, the new one not
//   answering its handshake): dropped when given up on, never run later;
// - a seeded property test mixing all of that with bursts and deadlines;
// - no AbortController and no timer per command; a watch never holds the
//   process open.
//
// Starts its own redis-servers (./redis-server.js); stopped in after().
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { TimeoutError as NodeRedisTimeoutError, createClient } from 'redis';

import { loadToolgate } from '../../wasm/index.js';
import { RedisTimeoutError, RedisCommands } from '../../worker/stores/redis-commands.js';
import { createRedisCounterStore } from '../../worker/stores/redis.js';
import { T0, requestsFor } from './store-conformance.js';
import { startRedis } from './redis-server.js';
import { waitFor } from './proxy-helpers.js';
import { random } from './seeded-random.js';

const toolgate = await loadToolgate();

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

let server;
let admin; // the test's own connection, straight to the server
const stopped = new Set(); // pids this file stopped (SIGSTOP), continued in after() whatever happens

before(async () => {
  server = await startRedis();
  admin = createClient({ url: server.url });
  admin.on('error', () => {});
  await admin.connect();
});

after(async () => {
  for (const pid of stopped) process.kill(pid, 'SIGCONT');
  await admin?.close();
  await server?.stop();
});

const pidOf = async (client) => Number(/process_id:(\d+)/.exec(await client.sendCommand(['INFO', 'server']))[1]);

/**
 * A TCP relay in front of the test's redis-server. Bytes from the client go
 * to Redis unless `hold()` holds them back (the client has written them;
 * Redis has not seen them) until `release()` delivers them, in order. `cut()`
 * closes every connection, so node-redis reconnects (through the relay, held
 * or not). Answers always come back.
 */
async function startRelay() {
  const pairs = new Set();
  let holding = false;
  let held = []; // [upstream socket, chunk]
  const relay = net.createServer((client) => {
    const upstream = net.connect(server.port, '127.0.0.1');
    const pair = { client, upstream };
    pairs.add(pair);
    client.on('data', (chunk) => (holding ? held.push([upstream, chunk]) : upstream.write(chunk)));
    upstream.on('data', (chunk) => client.write(chunk));
    const close = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    for (const socket of [client, upstream]) {
      socket.on('error', close);
      socket.on('close', close);
    }
  });
  relay.listen(0, '127.0.0.1');
  await once(relay, 'listening');
  return {
    url: `redis://127.0.0.1:${relay.address().port}`,
    connections: () => pairs.size,
    hold() {
      holding = true;
    },
    release() {
      holding = false;
      const chunks = held;
      held = [];
      for (const [upstream, chunk] of chunks) if (!upstream.destroyed) upstream.write(chunk);
    },
    cut() {
      for (const { client } of pairs) client.destroy();
    },
    async close() {
      this.release();
      this.cut();
      relay.close();
    },
  };
}

// A command that must be answered, on the same connection as the ones under
// test (replies come in order: once it is answered, every reply before it has
// been read): a watch of its own with a timeout no stall in these tests reaches.
const afterEarlierReplies = (client, args) => {
  const patient = new RedisCommands(client, 60_000);
  return patient.command(args, patient.deadline());
};

async function connect(url) {
  const client = createClient({ url, socket: { reconnectStrategy: () => 20 } });
  client.on('error', () => {}); // connection losses are what these tests make
  await client.connect();
  return client;
}

let keys = 0;
const newKey = () => `watch:${(keys += 1)}`;

describe('the Redis command watch on a server that stops answering', () => {
  test('redis-server frozen by SIGSTOP: reserve rejects after timeoutMs, the call is denied store_error; after SIGCONT the late charges are given back', async () => {
    const frozen = await startRedis();
    const store = await createRedisCounterStore({ url: frozen.url, prefix: 'frozen', timeoutMs: 500, onError: () => {} });
    const look = await connect(frozen.url);
    const pid = await pidOf(look);
    try {
      const tools = { run: { rate_limit: '5/minute' } };
      const call = { tool: 'run', grant: 'alice' };
      const [request] = requestsFor(tools, call, T0);
      assert.equal((await store.reserve([request], T0)).admitted, true);

      process.kill(pid, 'SIGSTOP');
      stopped.add(pid);
      const started = performance.now();
      await assert.rejects(store.reserve([request], T0), (error) => error instanceof RedisTimeoutError && /did not answer within 500 ms/.test(error.message));
      assert.ok(performance.now() - started >= 499, `gave up after ${Math.round(performance.now() - started)} ms, before the 500 ms of silence`);
      const policy = toolgate.compile({ version: '1', default: 'deny', tools });
      try {
        const { decision } = await policy.authorize(call, { counters: store, now: T0 });
        assert.equal(decision.code, 'store_error');
      } finally {
        policy.dispose();
      }

      process.kill(pid, 'SIGCONT');
      stopped.delete(pid);
      // Both stalled scripts run now, charging 2 more; both are given back.
      await waitFor(async () => (await look.get(store.keyOf(request))) === '1', 'the two late charges given back');
      const again = await store.reserve([request], T0);
      assert.equal(again.admitted, true);
      assert.deepEqual(again.states, [{ current: 1, previous: 0 }]);
    } finally {
      if (stopped.delete(pid)) process.kill(pid, 'SIGCONT');
      await store.close();
      await look.close();
      await frozen.stop();
    }
  });

  test('commands written but never answered: each gives up on its own silence, never before timeoutMs after it was sent; each that ran late is reported once', async () => {
    const relay = await startRelay();
    const client = await connect(relay.url);
    const TIMEOUT = 150;
    const commands = new RedisCommands(client, TIMEOUT);
    const key = newKey();
    try {
      relay.hold();
      const late = [];
      const sent = [];
      // Ten commands over ten loop turns: one watch, ten moments.
      for (let i = 0; i < 10; i++) {
        const at = performance.now();
        sent.push(commands.command(['INCR', key], commands.deadline(), (reply) => late.push(reply))
          .then(() => ({ at, resolved: true }), (error) => ({ at, error, gaveUpAt: performance.now() })));
        await nextTurn();
      }
      const outcomes = await Promise.all(sent);
      for (const outcome of outcomes) {
        assert.ok(outcome.error instanceof RedisTimeoutError, `expected a timeout, got ${outcome.error ?? 'an answer'}`);
        assert.match(outcome.error.message, /did not answer within 150 ms/);
        assert.ok(outcome.gaveUpAt - outcome.at >= TIMEOUT - 1, `gave up ${Math.round(outcome.gaveUpAt - outcome.at)} ms after it was sent`);
      }
      assert.equal(commands.inFlight, 0);
      relay.release();
      // Replies come in order on one connection: once a later command is
      // answered, every late reply before it has been seen.
      assert.equal(await afterEarlierReplies(client, ['INCR', key]), 11);
      assert.deepEqual(late.sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      assert.equal(commands.inFlight, 0);
    } finally {
      await client.close();
      await relay.close();
    }
  });

  test('commands node-redis never wrote (connection cut, the new one silent) are dropped when given up on and never run', async () => {
    const relay = await startRelay();
    const client = await connect(relay.url);
    const commands = new RedisCommands(client, 100);
    const key = newKey();
    try {
      assert.equal(await afterEarlierReplies(client, ['INCR', key]), 1);
      relay.hold(); // the reconnection's handshake goes nowhere, so the socket never gets ready
      relay.cut();
      await waitFor(() => !client.isReady, 'node-redis to notice the cut');
      const late = [];
      const outcomes = await Promise.allSettled(Array.from({ length: 5 }, () => commands.command(['INCR', key], commands.deadline(), (reply) => late.push(reply))));
      assert.deepEqual(outcomes.map((o) => o.status), Array(5).fill('rejected'));
      for (const { reason } of outcomes) assert.ok(reason instanceof RedisTimeoutError, String(reason));
      relay.release();
      await waitFor(() => client.isReady, 'the reconnection to complete');
      // The five were never written: the next INCR is the second one to run.
      assert.equal(await afterEarlierReplies(client, ['INCR', key]), 2);
      assert.deepEqual(late, []);
      assert.equal(await admin.get(key), '2');
    } finally {
      await client.close();
      await relay.close();
    }
  });

  // node-redis 6 gives every command a timeout of its own (5 s unless
  // commandOptions.timeout says otherwise), which applies until the command
  // is written: an AbortSignal.timeout and its timer per command. The watch
  // turns it off for its commands; what is left to show is that nothing else
  // cuts a queued command short.
  test("node-redis's own command timeout does not cut a queued command short: the watch decides", async () => {
    const relay = await startRelay();
    const client = createClient({ url: relay.url, commandOptions: { timeout: 50 }, socket: { reconnectStrategy: () => 20 } });
    client.on('error', () => {});
    await client.connect();
    const commands = new RedisCommands(client, 60_000);
    const key = newKey();
    try {
      assert.equal(await afterEarlierReplies(client, ['INCR', key]), 1);
      relay.hold(); // the reconnection's handshake goes nowhere: commands stay queued
      relay.cut();
      await waitFor(() => !client.isReady, 'node-redis to notice the cut');
      const waiting = commands.command(['INCR', key], commands.deadline());
      // Queued after it with node-redis's own 50 ms: once that one has timed
      // out, node-redis's timer (the same duration, armed earlier) would have
      // cut the first one too.
      await assert.rejects(client.get(key), NodeRedisTimeoutError);
      relay.release();
      assert.equal(await waiting, 2);
    } finally {
      await relay.close(); // first: close() waits for the queued commands
      await client.close();
    }
  });

  // The class, open-ended: random bursts of INCRs over random loop turns,
  // with stalls (bytes held), cut connections and short operation deadlines
  // mixed in. Whatever the mix: every command settles; it rejects with a
  // timeout only while Redis was kept from answering it or past its deadline;
  // the INCRs that ran are exactly those answered in time, those reported
  // late (each once), and those whose answer a cut connection lost; an
  // unwritten command given up on never runs; nothing stays in flight.
  test('property: random bursts, stalls, cuts and deadlines: every command settles, every run is accounted for once', { timeout: 120_000 }, async () => {
    const covered = { answered: 0, timedOut: 0, late: 0, lost: 0, undisturbed: 0, 'stalls without cuts': 0 };
    for (let seed = 1; seed <= 8; seed++) {
      const next = random(seed);
      const calm = seed % 3 === 0; // no stall, no cut: nothing may fail
      const relay = await startRelay();
      const client = await connect(relay.url);
      const TIMEOUT = 250;
      const commands = new RedisCommands(client, TIMEOUT, 800);
      const key = newKey();
      const outcomes = [];
      const late = [];
      const context = `seed ${seed}`;
      try {
        let held = false;
        let disturbances = 0;
        let cuts = 0;
        const short = []; // per command: its deadline was shorter than timeoutMs
        for (let step = 0; step < 12; step++) {
          const roll = calm ? 1 : next();
          if (roll < 0.2 && !held) {
            relay.hold();
            held = true;
            disturbances += 1;
          } else if (roll < 0.35 && held) {
            relay.release();
            held = false;
          } else if (roll < 0.42) {
            relay.cut();
            disturbances += 1;
            cuts += 1;
          }
          const burst = 1 + Math.floor(next() * 15);
          // Some operations started earlier: a deadline sooner than timeoutMs.
          const isShort = next() < 0.2;
          const deadline = isShort ? performance.now() + 30 + next() * 150 : commands.deadline();
          for (let i = 0; i < burst; i++) {
            short.push(isShort);
            outcomes.push(commands.command(['INCR', key], deadline, (reply) => late.push(reply))
              .then((value) => ({ value }), (error) => ({ error })));
          }
          for (let turns = Math.floor(next() * 4); turns > 0; turns--) await nextTurn();
          // Now and then a stall lasts until its commands gave up.
          if (held && next() < 0.5) await Promise.all(outcomes);
        }
        const settled = await Promise.all(outcomes);
        relay.release();
        await waitFor(() => client.isReady, `${context}: the connection back`);
        // Replies come in order: once this answers, every late reply is in.
        const last = await afterEarlierReplies(client, ['INCR', key]);
        assert.equal(commands.inFlight, 0, context);

        const answered = settled.filter((o) => 'value' in o).map((o) => o.value);
        const timedOut = settled.filter((o) => o.error instanceof RedisTimeoutError).length;
        const lost = settled.filter((o) => o.error && !(o.error instanceof RedisTimeoutError));
        // Undisturbed (no stall, no cut), a command with the whole maxWaitMs never times out.
        if (disturbances === 0) assert.equal(settled.filter((o, i) => o.error && !short[i]).length, 0, `${context}: a command failed while Redis answered`);
        const seen = [...answered, ...late, last];
        assert.equal(new Set(seen).size, seen.length, `${context}: an INCR reported twice`);
        const ran = Number(await admin.get(key));
        assert.equal(last, ran, context);
        assert.ok(seen.every((v) => v >= 1 && v <= ran), context);
        // Every run is an answer in time or a late reply, each once; only a
        // cut connection loses answers (of commands it failed, or of commands
        // already given up on whose late reply was on its way).
        if (cuts === 0) assert.equal(ran, seen.length, `${context}: ${ran} ran, ${seen.length} reported`);
        else assert.ok(ran - seen.length <= lost.length + timedOut - late.length, `${context}: ${ran} ran, ${seen.length} reported, ${lost.length} lost with a connection`);
        assert.ok(late.length <= timedOut, `${context}: ${late.length} late replies for ${timedOut} timeouts`);
        covered.answered += answered.length;
        covered.timedOut += timedOut;
        covered.late += late.length;
        covered.lost += lost.length;
        if (disturbances === 0) covered.undisturbed += 1;
        if (disturbances > 0 && cuts === 0) covered['stalls without cuts'] += 1;
      } finally {
        await client.close();
        await relay.close();
      }
    }
    // The seeds reach every outcome, so the checks above are not vacuous.
    for (const [outcome, count] of Object.entries(covered)) assert.ok(count > 0, `no seed had ${outcome}: ${JSON.stringify(covered)}`);
  });
});

describe('the watch costs nothing per command', () => {
  test('200 reserves, one after another: no AbortController, no AbortSignal.timeout, one timer in all', async () => {
    const store = await createRedisCounterStore({ url: server.url, prefix: 'cost', timeoutMs: 60_000, onError: () => {} });
    const [request] = requestsFor({ run: { rate_limit: '1000000/minute' } }, { tool: 'run', grant: 'alice' }, T0);
    await store.reserve([request], T0); // scripts loaded, connection warm
    const counts = { abortControllers: 0, timeoutSignals: 0, timers: 0 };
    const { AbortController: RealAbortController, setTimeout: realSetTimeout } = globalThis;
    const realTimeoutSignal = AbortSignal.timeout;
    AbortSignal.timeout = (ms) => {
      counts.timeoutSignals += 1; // node-redis's own per-command timeout
      return realTimeoutSignal.call(AbortSignal, ms);
    };
    globalThis.AbortController = class extends RealAbortController {
      constructor() {
        super();
        counts.abortControllers += 1;
      }
    };
    globalThis.setTimeout = (...args) => {
      counts.timers += 1;
      return realSetTimeout(...args);
    };
    try {
      for (let i = 0; i < 200; i++) assert.equal((await store.reserve([request], T0)).admitted, true);
    } finally {
      globalThis.AbortController = RealAbortController;
      globalThis.setTimeout = realSetTimeout;
      AbortSignal.timeout = realTimeoutSignal;
      await store.close();
    }
    assert.equal(counts.abortControllers, 0);
    assert.equal(counts.timeoutSignals, 0);
    assert.ok(counts.timers <= 1, `${counts.timers} timers for 200 commands`);
  });

  test('a watch never holds the process: a script whose client closed exits, though its timeoutMs is ten minutes', { timeout: 60_000 }, async () => {
    const script = `
      import { TimeoutError as NodeRedisTimeoutError, createClient } from 'redis';
      import { RedisCommands } from ${JSON.stringify(fileURLToPath(new URL('../../worker/stores/redis-commands.js', import.meta.url)))};
      const client = createClient({ url: ${JSON.stringify(server.url)} });
      await client.connect();
      const commands = new RedisCommands(client, 600000);
      await commands.command(['PING'], commands.deadline());
      await client.close();
      process.stderr.write('closed\\n');
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: fileURLToPath(new URL('../../', import.meta.url)), stdio: ['ignore', 'ignore', 'pipe'] });
    let output = '';
    child.stderr.on('data', (chunk) => { output += chunk; });
    const [code] = await once(child, 'exit');
    assert.equal(code, 0, output);
    assert.match(output, /closed/);
  });
});
