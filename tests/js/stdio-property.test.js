// Property test of the stdio proxy's accounting (worker/stdio.js): random
// interleavings of client requests (tools/call and others), reused ids (also
// while in flight, also inside batches), cancellations, server answers in any
// order (results, errors, errors after a cancel), hang-ups and server exits,
// over several sessions sharing one counter store, as reconnecting clients do.
// The server is a real child process (fixtures/puppet-server.js) on the pipe,
// whose every answer the test dictates; every step waits for its effect.
//
// Invariants, checked after every step and every session:
//   1. calls the server ran <= the limit (6 per hour, on a fixed clock)
//   2. the server never holds two unanswered requests with one id
//   3. no call the server ran got its quota back (read from the store: each
//      call also has a counter of its own)
// A call "ran" once the server received it and chose to run it; a call it
// rejects with a JSON-RPC error did not run (the documented refund); a call
// received and never answered counts as run (the server may have run it).
// STDIO_PROPERTY_SEED=N runs one seed; STDIO_PROPERTY_STEPS the steps per seed.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { createInterface } from 'node:readline';

import { loadToolgate, MemoryApprovalStore, MemoryCounterStore } from '../../wasm/index.js';
import { Gate } from '../../worker/gate.js';
import { runStdioProxy } from '../../worker/stdio.js';
import { repoRoot, T0 } from './cli-helpers.js';
import { random as prng } from './seeded-random.js';

const PUPPET = join(repoRoot, 'tests/js/fixtures/puppet-server.js');
const LIMIT = 6;
// The limit under test, and a second count per call (keyed by its unique
// nonce, never reached) through which the store shows whether that one call's
// quota is still spent or was given back.
const POLICY_TEXT = JSON.stringify({
  version: '1', default: 'deny',
  tools: { count: { limits: [{ max: LIMIT, window: 'hour' }, { counter: 'call', max: 1, window: 'hour', key: 'args.nonce' }] } },
});

// The real memory store, noting each call's own counter as it is charged.
class WatchedCounterStore extends MemoryCounterStore {
  perCall = new Map(); // nonce -> the counter request for that call alone

  reserveNow(requests, now) {
    for (const request of requests) {
      const parts = JSON.parse(request.key.slice(request.key.indexOf(':') + 1));
      if (parts[2] === 'call') this.perCall.set(parts.at(-1), request);
    }
    return super.reserveNow(requests, now);
  }

  /** Whether the call with this nonce still holds its quota. */
  async holds(nonce) {
    const request = this.perCall.get(nonce);
    if (!request) return false;
    const [state] = await this.peek([request]);
    return state.current === 1;
  }
}
const SEEDS = process.env.STDIO_PROPERTY_SEED ? [Number(process.env.STDIO_PROPERTY_SEED)] : [1, 2, 3, 4, 5, 6];
const STEPS = Number(process.env.STDIO_PROPERTY_STEPS ?? 80);
const WAIT_MS = 20_000; // only reached when the proxy is broken: every wait is on state
const ID_POOL = [1, 2, 3, '1', 'x'];
const key = (id) => JSON.stringify(id);


let toolgate;
let socketDir;
before(async () => {
  toolgate = await loadToolgate();
  socketDir = await mkdtemp(join(tmpdir(), 'toolgate-puppet-'));
});

for (const seed of SEEDS) {
  test(`seed ${seed}: ${STEPS} random steps keep executions <= ${LIMIT} and never refund a call that ran`, async () => {
    await runProperty(seed);
  });
}

async function runProperty(seed) {
  const random = prng(seed);
  const pick = (list) => list[Math.floor(random() * list.length)];
  const log = []; // the steps, printed when an invariant fails
  const policy = toolgate.compile(POLICY_TEXT, { source: POLICY_TEXT });
  const counters = new WatchedCounterStore();
  const events = [];
  const waiters = new Set();
  const wake = () => { for (const check of [...waiters]) check(); };
  const gate = new Gate({
    counters, approvals: new MemoryApprovalStore(), clock: () => T0, auditArguments: true, log: () => {},
    audit: { write: async (event) => { events.push(event); wake(); } },
  });

  const executed = new Set(); // nonces of calls the server ran
  const received = new Set(); // nonces of calls that reached the server
  const arrived = new Set(); // nonces of every request that reached the server
  let seq = 0;
  const fail = (message) => assert.fail(`seed ${seed}: ${message}\nsteps:\n${log.join('\n')}`);
  const waitFor = (condition, what) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      waiters.delete(check);
      reject(new Error(`seed ${seed}: timed out waiting for ${what}\nsteps:\n${log.join('\n')}`));
    }, WAIT_MS);
    function check() {
      const value = condition();
      if (value) {
        waiters.delete(check);
        clearTimeout(timer);
        resolve(value);
      }
    }
    waiters.add(check);
    check();
  });

  // Puppets connect here, one per session.
  const socketPath = join(socketDir, `seed-${seed}.sock`);
  const connections = [];
  const socketServer = net.createServer((socket) => {
    connections.push(socket);
    wake();
  });
  await new Promise((resolve) => socketServer.listen(socketPath, resolve));

  function checkExecutions() {
    if (executed.size > LIMIT) fail(`${executed.size} calls ran under a limit of ${LIMIT}: ${[...executed]}`);
  }

  async function startSession(number) {
    const input = new PassThrough();
    const output = new PassThrough();
    const session = {
      number, input, clientMessages: [], puppetLines: 0, pending: new Map(), ended: false, socket: null,
      send(message) { input.write(`${JSON.stringify(message)}\n`); },
      puppet(command) { this.socket.write(`${JSON.stringify(command)}\n`); },
    };
    createInterface({ input: output, crlfDelay: Infinity }).on('line', (line) => {
      const parsed = JSON.parse(line);
      session.clientMessages.push(...(Array.isArray(parsed) ? parsed : [parsed]));
      wake();
    });
    const connected = connections.length;
    session.done = runStdioProxy({
      command: process.execPath, args: [PUPPET], policy: () => policy, grant: { id: 'agent', attributes: {} }, gate, input, output,
      spawnOptions: { env: { ...process.env, PUPPET_SOCKET: socketPath } },
    }).then((code) => { session.ended = true; wake(); return code; });
    session.socket = await waitFor(() => connections[connected], `session ${number}'s server to connect`);
    createInterface({ input: session.socket, crlfDelay: Infinity }).on('line', (text) => {
      const note = JSON.parse(text);
      if (typeof note.line === 'string') {
        session.puppetLines += 1;
        const parsed = JSON.parse(note.line);
        for (const message of Array.isArray(parsed) ? parsed : [parsed]) serverReceived(session, message);
      }
      wake();
    });
    return session;
  }

  // What the server does with each message it reads.
  function serverReceived(session, message) {
    if (message.method === 'notifications/cancelled') {
      const held = session.pending.get(key(message.params?.requestId));
      if (held) held.cancelled = true;
      return;
    }
    if (!('id' in message) || !('method' in message)) return;
    if (session.pending.has(key(message.id))) {
      fail(`the server got a second request with id ${key(message.id)} while the first is unanswered`);
    }
    const request = { id: message.id, method: message.method, cancelled: false };
    if (typeof message.params?.nonce === 'string') arrived.add(message.params.nonce);
    if (message.method === 'tools/call') {
      request.nonce = message.params.arguments.nonce;
      arrived.add(request.nonce);
      request.plan = random() < 0.7 ? 'run' : 'reject';
      received.add(request.nonce);
      if (request.plan === 'run') executed.add(request.nonce);
      checkExecutions();
    }
    session.pending.set(key(message.id), request);
  }

  function toolsCall(id) {
    const nonce = `n${++seq}`;
    return { message: { jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'count', arguments: { nonce } } }, nonce };
  }
  function otherRequest(id) {
    const nonce = `o${++seq}`;
    return { message: { jsonrpc: '2.0', id, method: pick(['ping', 'no/such/method']), params: { nonce } }, nonce };
  }
  const freshId = () => `fresh-${++seq}`;

  // Sends requests; waits until each reached the server or was answered here.
  async function sendRequests(session, requests, batch) {
    const before = session.clientMessages.length;
    session.send(batch ? requests.map((r) => r.message) : requests[0].message);
    const settled = (r) => arrived.has(r.nonce)
      || session.clientMessages.slice(before).some((m) => key(m.id) === key(r.message.id))
      || session.ended;
    await waitFor(() => requests.every(settled), `requests ${requests.map((r) => key(r.message.id))} to arrive or be answered`);
  }

  // Seeds where the server exits leave fresh sessions: a client reconnects.
  let session = await startSession(1);
  try {
    for (let step = 0; step < STEPS; step++) {
      const roll = random();
      if (session.ended) {
        session = await startSession(session.number + 1);
        log.push(`session ${session.number} starts`);
      }
      if (roll < 0.3) {
        const id = random() < 0.75 ? pick(ID_POOL) : freshId();
        const request = toolsCall(id);
        log.push(`client: tools/call id ${key(id)} ${request.nonce}`);
        await sendRequests(session, [request], false);
      } else if (roll < 0.38) {
        const request = otherRequest(pick(ID_POOL));
        log.push(`client: ${request.message.method} id ${key(request.message.id)}`);
        await sendRequests(session, [request], false);
      } else if (roll < 0.45) {
        const requests = [0, 1].map(() => (random() < 0.6 ? toolsCall : otherRequest)(pick(ID_POOL)));
        log.push(`client: batch ${requests.map((r) => `${r.message.method} id ${key(r.message.id)}`).join(', ')}`);
        await sendRequests(session, requests, true);
      } else if (roll < 0.73) {
        const pending = [...session.pending.values()];
        if (pending.length === 0) continue;
        const request = pick(pending);
        const r = ++seq;
        let answer;
        if (request.method === 'tools/call') {
          // A call that ran answers with its result, or (cancelled) sometimes
          // with an error although it ran; a rejected call with an error.
          if (request.plan === 'reject') answer = { jsonrpc: '2.0', id: request.id, error: { code: -32602, message: 'rejected', data: { r } } };
          else if (request.cancelled && random() < 0.8) answer = { jsonrpc: '2.0', id: request.id, error: { code: -32800, message: 'cancelled', data: { r } } };
          else answer = { jsonrpc: '2.0', id: request.id, result: { content: [{ type: 'text', text: `ran ${request.nonce}` }], r } };
        } else {
          answer = request.method === 'ping'
            ? { jsonrpc: '2.0', id: request.id, result: { r } }
            : { jsonrpc: '2.0', id: request.id, error: { code: -32601, message: 'Method not found', data: { r } } };
        }
        log.push(`server: answers id ${key(request.id)} (${request.method}${request.nonce ? ` ${request.nonce} ${request.plan}` : ''}${request.cancelled ? ', cancelled' : ''}) with ${answer.error ? 'an error' : 'a result'}`);
        session.pending.delete(key(request.id));
        session.puppet({ write: JSON.stringify(answer) });
        await waitFor(() => session.ended || session.clientMessages.some((m) => (m.result?.r ?? m.error?.data?.r) === r), `answer r${r} to be relayed`);
        // Relayed, so settled: a call that ran still holds its quota, whatever the answer.
        if (request.nonce && executed.has(request.nonce) && !(await counters.holds(request.nonce))) {
          fail(`call ${request.nonce} ran, but its quota was given back when the server answered`);
        }
      } else if (roll < 0.87) {
        const calls = [...session.pending.values()].filter((p) => p.method === 'tools/call' && !p.cancelled);
        const targets = (calls.length > 0 ? calls : [...session.pending.values()]).map((p) => p.id);
        const requestId = targets.length > 0 && random() < 0.8 ? pick(targets) : pick(ID_POOL);
        const reason = `c${++seq}`;
        log.push(`client: cancels id ${key(requestId)}`);
        session.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId, reason } });
        const lines = session.puppetLines;
        await waitFor(() => session.ended || session.puppetLines > lines, 'the cancellation to reach the server');
      } else if (roll < 0.94) {
        log.push('client: hangs up');
        session.input.end();
        await session.done;
      } else {
        log.push('server: exits');
        session.puppet({ exit: 0 });
        await session.done;
        session.input.end();
      }
      checkExecutions();
      if (session.ended) await checkSettled(session);
    }
    if (!session.ended) {
      session.input.end();
      await session.done;
      await checkSettled(session);
    }
  } finally {
    if (!session.ended) session.puppet({ exit: 0 });
    await session.done?.catch(() => {});
    await new Promise((resolve) => socketServer.close(resolve));
  }

  // Once a session is over, every call that reached its server has been
  // settled: its audit event says how, and none that ran was refunded.
  async function checkSettled(ended) {
    await waitFor(() => [...received].every((nonce) => events.some((e) => e.arguments?.nonce === nonce && e.decision === 'allow')),
      `session ${ended.number}'s calls to be settled`);
    for (const nonce of executed) {
      if (!(await counters.holds(nonce))) {
        const event = events.find((e) => e.arguments?.nonce === nonce);
        fail(`call ${nonce} ran, but its quota was given back (outcome ${event?.outcome})`);
      }
    }
    checkExecutions();
  }
}
