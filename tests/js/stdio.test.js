// `toolgate stdio` keeps the quota of calls that reached the server, through
// the real transport: the toolgate CLI as a desktop client starts it, wrapping
// a real MCP SDK server (fixtures/counting-server.js) that records every
// execution of its tool in a file, driven by a client writing the stdio
// protocol line by line (the SDK client never reuses ids; an attacker does).
// What is counted is what really ran, against the policy's limit.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { repoRoot } from './cli-helpers.js';
import { slidingRateLimit, tempFile } from './proxy-helpers.js';
import { startRedis } from './redis-server.js';

const CLI = join(repoRoot, 'bin/toolgate.js');
const COUNTING_SERVER = join(repoRoot, 'tests/js/fixtures/counting-server.js');
// count: 2 per hour, sliding: toolgate stdio counts against the wall clock, and
// a fixed hour restarting mid-test would let a third call run (slidingRateLimit).
const POLICY = { version: '1', default: 'deny', tools: { count: slidingRateLimit(2, 'hour'), release: {} } };
// Generous: only reached when the proxy is broken (every wait is on state).
const WAIT_MS = 30_000;

/** Lines (nonces) the counting server appended: one per execution of `count`. */
function executions(countFile) {
  try {
    return readFileSync(countFile, 'utf8').split('\n').filter(Boolean);
  } catch (error) {
    if (error.code === 'ENOENT') return [];
    throw error;
  }
}

/**
 * `toolgate stdio ... -- node counting-server.js` as a child, spoken to line by
 * line. waitFor() re-checks its condition whenever something arrives (a line
 * on stdout or stderr, the exit, or a poll of the count file), never after a
 * fixed delay.
 */
function startStdio({ policyPath, countFile, extra = [] }) {
  const child = spawn(process.execPath, [CLI, 'stdio', '--policy', policyPath, ...extra, '--', process.execPath, COUNTING_SERVER], {
    env: { ...process.env, COUNT_FILE: countFile }, stdio: ['pipe', 'pipe', 'pipe'],
  });
  const messages = []; // a batch's answers one by one
  const lines = []; // as they came
  let stderr = '';
  let buffered = '';
  const waiters = new Set();
  const wake = () => { for (const check of [...waiters]) check(); };
  child.stdout.on('data', (chunk) => {
    buffered += chunk;
    let newline;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      const parsed = JSON.parse(buffered.slice(0, newline));
      lines.push(parsed);
      messages.push(...(Array.isArray(parsed) ? parsed : [parsed]));
      buffered = buffered.slice(newline + 1);
    }
    wake();
  });
  child.stderr.on('data', (chunk) => { stderr += chunk; wake(); });
  const exited = new Promise((resolve) => child.once('exit', (code) => { resolve(code); wake(); }));
  child.stdin.on('error', () => {});
  return {
    messages,
    lines,
    get stderr() { return stderr; },
    exited,
    send(message) {
      child.stdin.write(`${typeof message === 'string' ? message : JSON.stringify(message)}\n`);
    },
    end() {
      child.stdin.end();
    },
    /** Resolves with what `condition()` returns once it is truthy. */
    waitFor(condition, what) {
      return new Promise((resolve, reject) => {
        // The count file changes without an event here: poll it while waiting.
        const poll = setInterval(() => check(), 20);
        const timer = setTimeout(() => {
          done();
          reject(new Error(`timed out waiting for ${what}; stdout: ${JSON.stringify(messages)}; stderr: ${stderr}`));
        }, WAIT_MS);
        const done = () => {
          waiters.delete(check);
          clearInterval(poll);
          clearTimeout(timer);
        };
        function check() {
          const value = condition();
          if (value) {
            done();
            resolve(value);
          }
        }
        waiters.add(check);
        check();
      });
    },
    async initialize() {
      this.send({ jsonrpc: '2.0', id: 'init', method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw-stdio-test', version: '1.0.0' } } });
      await this.response('init');
      this.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    },
    /** The first message answering `id` that `match` accepts (default: any). */
    response(id, match = () => true, what = `an answer to id ${JSON.stringify(id)}`) {
      return this.waitFor(() => messages.find((m) => JSON.stringify(m.id) === JSON.stringify(id) && !('method' in m) && match(m)), what);
    },
    kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

const call = (id, name, args) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });
const textOf = (message) => message.result?.content?.map((c) => c.text).join('') ?? '';
const auditEvents = (stderr) => stderr.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line));

let policyPath;
before(async () => {
  policyPath = await tempFile('stdio-count-policy.json', POLICY);
});

describe('toolgate stdio: request ids in flight', () => {
  test('a request reusing the id of a call still running is refused, whatever its method; the call keeps its quota (2 runs under 2/hour, not 8)', async () => {
    const countFile = await tempFile('count-reuse.txt', '');
    const proxy = startStdio({ policyPath, countFile });
    try {
      await proxy.initialize();
      const outcomes = [];
      for (let round = 1; round <= 8; round++) {
        // The call is held by the server until `release`, so the second
        // request with its id is sent while it certainly runs.
        proxy.send(call(round, 'count', { nonce: `n${round}`, hold: true }));
        proxy.send({ jsonrpc: '2.0', id: round, method: 'no/such/method' });
        const first = await proxy.response(round);
        if (first.error) {
          // Refused by toolgate: the call with this id is in flight.
          assert.equal(first.error.code, -32600, JSON.stringify(first));
          assert.match(first.error.message, /id \d+ is still in flight/);
          await proxy.waitFor(() => executions(countFile).includes(`n${round}`), `n${round} to run`);
          proxy.send(call(`release-${round}`, 'release', {}));
          await proxy.response(`release-${round}`);
          const ran = await proxy.response(round, (m) => m.result, `the result of call ${round}`);
          outcomes.push(textOf(ran));
        } else {
          // Decided here (over the limit): then the other request went on and
          // the server said it does not know the method.
          outcomes.push(first.result.structuredContent.code);
          const unknown = await proxy.response(round, (m) => m.error, `the server's error for id ${round}`);
          assert.equal(unknown.error.code, -32601);
        }
      }
      assert.deepEqual(outcomes, ['ran n1', 'ran n2', ...Array(6).fill('rate_limited')]);
      assert.deepEqual(executions(countFile), ['n1', 'n2']);
    } finally {
      proxy.end();
      await proxy.exited;
    }
  });

  test('ids are freed once the answer is relayed; 1 and "1" are different ids; a batch reusing an in-flight id has that request refused', async () => {
    const countFile = await tempFile('count-ids.txt', '');
    const proxy = startStdio({ policyPath, countFile });
    try {
      await proxy.initialize();
      proxy.send(call(1, 'count', { nonce: 'a', hold: true }));
      await proxy.waitFor(() => executions(countFile).includes('a'), 'a to run');
      // "1" is not 1: it goes on (and is answered by the server).
      proxy.send({ jsonrpc: '2.0', id: '1', method: 'ping' });
      assert.deepEqual((await proxy.response('1')).result, {});
      // In a batch too (answered as a batch; this 2025-06-18 server takes none, so nothing else is in it).
      proxy.send([{ jsonrpc: '2.0', id: 1, method: 'ping' }]);
      const refused = await proxy.response(1, (m) => m.error, 'the refusal of the batched 1');
      assert.equal(refused.error.code, -32600);
      assert.ok(proxy.lines.some((line) => Array.isArray(line) && line[0] === refused), 'answered as a batch');
      proxy.send(call(2, 'release', {}));
      await proxy.response(2);
      assert.equal(textOf(await proxy.response(1, (m) => m.result)), 'ran a');
      // Answered and relayed: id 1 may be used again.
      proxy.send({ jsonrpc: '2.0', id: 1, method: 'ping' });
      await proxy.waitFor(() => proxy.messages.filter((m) => m.id === 1).length === 3, 'the second answer to id 1');
      assert.deepEqual(proxy.messages.filter((m) => m.id === 1).at(-1).result, {});
    } finally {
      proxy.end();
      await proxy.exited;
    }
  });

  test('a cancelled call keeps its quota (it may have run), and its id stays in flight until the server answers it', async () => {
    const countFile = await tempFile('count-cancel.txt', '');
    const proxy = startStdio({ policyPath, countFile });
    try {
      await proxy.initialize();
      proxy.send(call(1, 'count', { nonce: 'c1', hold: true }));
      await proxy.waitFor(() => executions(countFile).includes('c1'), 'c1 to run');
      proxy.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 1, reason: 'the user cancelled' } });
      await proxy.waitFor(() => auditEvents(proxy.stderr).some((e) => e.request_id === 1 && e.outcome === 'cancelled'), 'the cancelled call\'s audit event');
      // The SDK server sends nothing for a cancelled request: 1 stays taken.
      proxy.send({ jsonrpc: '2.0', id: 1, method: 'ping' });
      assert.equal((await proxy.response(1)).error.code, -32600);
      proxy.send(call(2, 'count', { nonce: 'c2' }));
      assert.equal(textOf(await proxy.response(2)), 'ran c2');
      proxy.send(call(3, 'count', { nonce: 'c3' }));
      assert.equal((await proxy.response(3)).result.structuredContent.code, 'rate_limited');
      assert.deepEqual(executions(countFile), ['c1', 'c2']);
    } finally {
      proxy.end();
      await proxy.exited;
    }
  });
});

describe('toolgate stdio: sessions that end with calls unanswered', () => {
  let redis;
  before(async () => {
    redis = await startRedis();
  });
  after(() => redis?.stop());

  test('on Redis, across reconnects: cancel and hang up, or the server exiting mid-call, keep the quota (2 runs under 2/hour, then denied)', async () => {
    const countFile = await tempFile('count-reconnect.txt', '');
    const extra = ['--store', redis.url, '--grant', 'reconnecting'];
    const outcomes = [];

    // 1. The call runs and is held; the client cancels it and closes stdin.
    let proxy = startStdio({ policyPath, countFile, extra });
    try {
      await proxy.initialize();
      proxy.send(call(1, 'count', { nonce: 'r1', hold: true }));
      await proxy.waitFor(() => executions(countFile).includes('r1'), 'r1 to run');
      proxy.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 1, reason: 'reconnecting' } });
      proxy.end();
      assert.equal(await proxy.exited, 0);
      outcomes.push(...auditEvents(proxy.stderr).filter((e) => e.tool === 'count').map((e) => e.outcome));
    } finally {
      proxy.kill();
    }

    // 2. The call runs and the server exits before answering; then the client goes.
    proxy = startStdio({ policyPath, countFile, extra });
    try {
      await proxy.initialize();
      proxy.send(call(1, 'count', { nonce: 'r2', exit: true }));
      // toolgate exits with its server, the client still connected.
      assert.equal(await proxy.exited, 0);
      assert.deepEqual(executions(countFile), ['r1', 'r2']);
      proxy.end();
      outcomes.push(...auditEvents(proxy.stderr).filter((e) => e.tool === 'count').map((e) => e.outcome));
    } finally {
      proxy.kill();
    }

    // 3. The call is held and the client simply hangs up (no cancel).
    proxy = startStdio({ policyPath, countFile, extra });
    try {
      await proxy.initialize();
      proxy.send(call(1, 'count', { nonce: 'r3', hold: true }));
      const answer = await proxy.waitFor(() => executions(countFile).includes('r3') || proxy.messages.find((m) => m.id === 1), 'r3 to run or be decided');
      outcomes.push(answer === true ? 'ran' : answer.result.structuredContent.code);
      proxy.end();
      await proxy.exited;
    } finally {
      proxy.kill();
    }

    assert.deepEqual(outcomes, ['cancelled', 'server_exited', 'rate_limited']);
    assert.deepEqual(executions(countFile), ['r1', 'r2']);
  });

  test('on the memory store: a call unanswered when the server exits is settled as kept (outcome server_exited), and toolgate exits with the server', async () => {
    const countFile = await tempFile('count-memory-exit.txt', '');
    const proxy = startStdio({ policyPath, countFile });
    try {
      await proxy.initialize();
      proxy.send(call(1, 'count', { nonce: 'm1' }));
      assert.equal(textOf(await proxy.response(1)), 'ran m1');
      proxy.send(call(2, 'count', { nonce: 'm2', exit: true }));
      assert.equal(await proxy.exited, 0);
      await proxy.waitFor(() => auditEvents(proxy.stderr).some((e) => e.request_id === 2), 'the audit event of the unanswered call');
      const event = auditEvents(proxy.stderr).find((e) => e.request_id === 2);
      assert.equal(event.outcome, 'server_exited');
      assert.deepEqual(executions(countFile), ['m1', 'm2']);
    } finally {
      proxy.kill();
    }
  });
});
