// One tools/call's exchange (worker/exchange.js): what each sequence of
// transport events does to the call's reservation, exactly once.
//
// 1. The settlement table: each event sequence, through the real Gate with a
//    compiled policy and the real memory counter store, settles the call
//    committed or rolled back, once (the store is told once, one audit event).
// 2. A property test over random event sequences: a call that may have run
//    is never refunded, one that cannot have run is never charged, the first
//    settling event wins and later ones change nothing.
// 3. The same through the real HTTP transport (worker/handler.js in front of a
//    real local HTTP server behaving as the test picks: results, errors, 4xx,
//    5xx, garbage, cut-off answers, event streams, hang-ups, a server that
//    is down): the grant's count after each call is the number of calls the
//    server may have run. (stdio: tests/js/stdio-property.test.js.)
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:net';

import { loadToolgate, MemoryApprovalStore, MemoryCounterStore } from '../../wasm/index.js';
import { Exchange, Failure, Outcome, Settlement, settlementOf } from '../../worker/exchange.js';
import { Gate, isoTime } from '../../worker/gate.js';
import { createHandler } from '../../worker/handler.js';
import { Grants } from '../../worker/grants.js';
import { grantsDocument, memoryAudit, startFakeUpstream } from './proxy-helpers.js';
import { random as prng } from './seeded-random.js';

const toolgate = await loadToolgate();

const POLICY = toolgate.compile({
  version: '1',
  default: 'deny',
  tools: { count: { rate_limit: '1000/hour' }, 'delete-all': { action: 'deny' } },
});
// The middle of an hour: no window boundary is crossed while a test runs.
const NOW = Date.UTC(2026, 0, 1, 12, 30);
const GRANT = { id: 'alice', attributes: {} };
const call = (id, name = 'count', args = {}) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });

// The real memory store, counting how often each reservation is settled and
// keeping the requests it charged (to read the counts back).
class CountingStore extends MemoryCounterStore {
  commits = 0;
  rollbacks = 0;
  requests = new Map(); // key -> a counter request for it

  reserveNow(requests, now) {
    for (const request of requests) this.requests.set(request.key, request);
    return super.reserveNow(requests, now);
  }

  commitNow(reservation) {
    this.commits += 1;
    super.commitNow(reservation);
  }

  async rollback(reservation) {
    this.rollbacks += 1;
    return super.rollback(reservation);
  }

  /** What every counter this store charged holds now, summed. */
  async held() {
    const states = await this.peek([...this.requests.values()]);
    return states.reduce((sum, state) => sum + state.current, 0);
  }
}

// A Gate with a fresh store; admit() one call and return its exchange.
async function forwardedCall(id = 1) {
  const counters = new CountingStore();
  const audit = memoryAudit();
  const gate = new Gate({ counters, approvals: new MemoryApprovalStore(), audit, clock: () => NOW, log: () => {} });
  const admitted = await gate.admit([call(id)], { grant: GRANT, server: 'default', policy: POLICY });
  assert.equal(admitted.forward.length, 1, 'the call is forwarded');
  const exchange = admitted.exchanges.get(JSON.stringify(id));
  assert.ok(exchange instanceof Exchange);
  assert.equal(exchange.settlement, Settlement.OPEN);
  assert.equal(await counters.held(), 1, 'reserved while open');
  return { exchange, counters, audit };
}

const RESULT = { jsonrpc: '2.0', id: 1, result: { content: [] } };
const TOOL_ERROR = { jsonrpc: '2.0', id: 1, result: { content: [], isError: true } };
const RPC_ERROR = { jsonrpc: '2.0', id: 1, error: { code: -32602, message: 'bad params' } };

// Events by name, each applied to an exchange as a transport reports it.
const EVENTS = {
  sent: (e) => e.sent(),
  result: (e) => e.answered(RESULT, { status: 200 }),
  toolError: (e) => e.answered(TOOL_ERROR, { status: 200 }),
  rpcError: (e) => e.answered(RPC_ERROR, { status: 200 }),
  unreachable: (e) => e.failed(Failure.UNREACHABLE, { status: 'unreachable' }),
  serverGone: (e) => e.failed(Failure.SERVER_GONE, { status: 'stdio' }),
  refused: (e) => e.failed(Failure.REFUSED, { status: 401 }),
  upstream: (e) => e.failed(Failure.UPSTREAM, { status: 502 }),
  invalidResponse: (e) => e.failed(Failure.INVALID_RESPONSE, { status: 200 }),
  clientLeft: (e) => e.clientLeft({ status: 'client_left' }),
  cancelled: (e) => e.clientLeft({ status: 'stdio', outcome: Outcome.CANCELLED }),
  noAnswer: (e) => e.ended(Outcome.NO_ANSWER, { status: 202 }),
  streamEnded: (e) => e.ended(Outcome.STREAM_ENDED, { status: 200 }),
  streamBroken: (e) => e.ended(Outcome.STREAM_BROKEN, { status: 200 }),
  streamCancelled: (e) => e.ended(Outcome.STREAM_CANCELLED, { status: 200 }),
  serverExited: (e) => e.ended(Outcome.SERVER_EXITED, { status: 'stdio' }),
};

const { COMMITTED, ROLLED_BACK } = Settlement;
// [events, settlement, outcome]: the table of worker/README.md, event by event.
const TABLE = [
  [['sent', 'result'], COMMITTED, Outcome.RESULT],
  [['sent', 'toolError'], COMMITTED, Outcome.TOOL_ERROR],
  [['sent', 'rpcError'], ROLLED_BACK, Outcome.ERROR],
  [['sent', 'unreachable'], ROLLED_BACK, Outcome.UPSTREAM_FAILED],
  [['serverGone'], ROLLED_BACK, Outcome.SERVER_GONE],
  [['sent', 'refused'], ROLLED_BACK, Outcome.UPSTREAM_REFUSED],
  [['sent', 'upstream'], COMMITTED, Outcome.UPSTREAM_FAILED],
  [['sent', 'invalidResponse'], COMMITTED, Outcome.INVALID_RESPONSE],
  [['sent', 'clientLeft'], COMMITTED, Outcome.CLIENT_LEFT],
  [['sent', 'cancelled'], COMMITTED, Outcome.CANCELLED],
  [['sent', 'noAnswer'], COMMITTED, Outcome.NO_ANSWER],
  [['sent', 'streamEnded'], COMMITTED, Outcome.STREAM_ENDED],
  [['sent', 'streamBroken'], COMMITTED, Outcome.STREAM_BROKEN],
  [['sent', 'streamCancelled'], COMMITTED, Outcome.STREAM_CANCELLED],
  [['sent', 'serverExited'], COMMITTED, Outcome.SERVER_EXITED],
  // Never sent: it cannot have run, whatever ended it.
  [['clientLeft'], ROLLED_BACK, Outcome.CLIENT_LEFT],
  [['noAnswer'], ROLLED_BACK, Outcome.NO_ANSWER],
  [['upstream'], ROLLED_BACK, Outcome.UPSTREAM_FAILED],
  [['serverExited'], ROLLED_BACK, Outcome.SERVER_EXITED],
  // An answer is the server's word, sent reported or not.
  [['result'], COMMITTED, Outcome.RESULT],
  [['rpcError'], ROLLED_BACK, Outcome.ERROR],
  // The first settling event wins.
  [['sent', 'cancelled', 'rpcError'], COMMITTED, Outcome.CANCELLED],
  [['sent', 'clientLeft', 'refused', 'unreachable'], COMMITTED, Outcome.CLIENT_LEFT],
  [['sent', 'result', 'rpcError', 'refused', 'serverExited'], COMMITTED, Outcome.RESULT],
  [['sent', 'rpcError', 'result', 'clientLeft', 'upstream'], ROLLED_BACK, Outcome.ERROR],
  [['sent', 'refused', 'result'], ROLLED_BACK, Outcome.UPSTREAM_REFUSED],
  [['serverGone', 'sent', 'result'], ROLLED_BACK, Outcome.SERVER_GONE],
  [['sent', 'sent', 'streamEnded', 'sent', 'result'], COMMITTED, Outcome.STREAM_ENDED],
];

describe('the settlement table', () => {
  for (const [events, settlement, outcome] of TABLE) {
    test(`${events.join(' → ')}: ${settlement} (${outcome})`, async () => {
      const { exchange, counters, audit } = await forwardedCall();
      for (const name of events) EVENTS[name](exchange);
      assert.equal(exchange.settlement, settlement);
      assert.equal(exchange.outcome, outcome);
      assert.equal(await exchange.settled, settlement);
      assert.equal(counters.commits + counters.rollbacks, 1, 'the store is told once');
      assert.equal(settlement === COMMITTED ? counters.commits : counters.rollbacks, 1);
      assert.equal(await counters.held(), settlement === COMMITTED ? 1 : 0);
      const [event] = await audit.waitFor(1);
      assert.equal(audit.events.length, 1, 'one audit event');
      assert.equal(event.outcome, outcome);
      assert.equal(event.quota, settlement === COMMITTED ? 'kept' : 'returned', 'the event says what the settlement did');
      assert.equal(event.decision, 'allow');
      assert.equal(event.tool, 'count');
    });
  }

  test('an exchange nobody reports on stays open and holds its reservation; settled resolves once it settles', async () => {
    const { exchange, counters, audit } = await forwardedCall();
    exchange.sent();
    assert.equal(exchange.settlement, Settlement.OPEN);
    assert.equal(exchange.outcome, null);
    assert.equal(counters.commits + counters.rollbacks, 0);
    assert.equal(await counters.held(), 1);
    assert.equal(audit.events.length, 0);
    // Waited on before it settles, it resolves once it does.
    const settling = exchange.settled;
    exchange.answered(RPC_ERROR, { status: 200 });
    assert.equal(await settling, ROLLED_BACK);
    assert.equal(await counters.held(), 0);
    assert.equal(audit.events.length, 1, 'the audit event is written when it resolves');
  });

  test('a value outside the enums is a TypeError and settles nothing', async () => {
    const { exchange, counters } = await forwardedCall();
    exchange.sent();
    assert.throws(() => exchange.failed('upstream_failed'), TypeError);
    assert.throws(() => exchange.failed(undefined), TypeError);
    assert.throws(() => exchange.ended(Outcome.RESULT), TypeError);
    assert.throws(() => exchange.ended('no_answer_stream_end '), TypeError);
    assert.throws(() => exchange.clientLeft({ outcome: Outcome.NO_ANSWER }), TypeError);
    assert.equal(exchange.settlement, Settlement.OPEN);
    assert.equal(counters.commits + counters.rollbacks, 0);
    exchange.clientLeft();
    assert.equal(exchange.settlement, COMMITTED);
  });

  test('the enums are frozen', () => {
    for (const enumeration of [Outcome, Failure, Settlement]) {
      assert.ok(Object.isFrozen(enumeration));
      assert.throws(() => { 'use strict'; enumeration.EXTRA = 'x'; }, TypeError);
    }
    assert.equal(new Set(Object.values(Outcome)).size, Object.keys(Outcome).length, 'outcomes are distinct');
  });

  test('a refused call is closed at once: audited, nothing held, events ignored', async () => {
    const counters = new CountingStore();
    const audit = memoryAudit();
    const gate = new Gate({ counters, audit, clock: () => NOW, log: () => {} });
    const admitted = await gate.admit([call(7, 'delete-all'), call(8, 'count')], { grant: GRANT, server: 'default', policy: POLICY });
    assert.deepEqual([...admitted.exchanges.keys()], ['8'], 'only the forwarded call has an open exchange');
    assert.equal(admitted.answers[0].result.structuredContent.code, 'tool_denied');
    const events = await audit.waitFor(1);
    assert.deepEqual([events[0].request_id, events[0].decision, events[0].upstream_status], [7, 'deny', null]);

    // Made by hand: a refused exchange takes no event.
    let written = 0;
    const exchange = new Exchange({ event: async () => ({}), write: async () => { written += 1; } });
    exchange.refuse({ decision: 'deny', code: 'tool_denied', rule: '/tools/x' });
    assert.equal(await exchange.settled, Settlement.REFUSED);
    for (const report of Object.values(EVENTS)) report(exchange);
    assert.equal(exchange.settlement, Settlement.REFUSED);
    assert.equal(exchange.outcome, null);
    assert.equal(written, 1);
    assert.throws(() => exchange.forward({ decision: 'allow' }), /already decided/);
  });

  test('a store and a sink that fail: the call settles, `settled` resolves, no unhandled rejection', async () => {
    const unhandled = [];
    const onUnhandled = (reason) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      for (const [settle, settlement] of [[(e) => e.answered({ jsonrpc: '2.0', id: 1, result: {} }), COMMITTED], [(e) => e.failed(Failure.UNREACHABLE), ROLLED_BACK]]) {
        let wrote = 0;
        const exchange = new Exchange({ event: async () => ({ request_id: 1 }), write: async (make) => { wrote += 1; await make(); throw new Error('sink down'); } });
        const failing = () => Promise.reject(new Error('store down'));
        exchange.forward({ decision: 'allow', code: 'allowed', rule: '/tools/x' }, { commit: failing, rollback: failing });
        exchange.sent();
        assert.equal(settle(exchange), undefined, 'events report facts and return nothing');
        assert.equal(exchange.settlement, settlement);
        assert.equal(await exchange.settled, settlement);
        assert.equal(wrote, 1);
        // A store that throws instead of rejecting changes nothing either.
        const throwing = new Exchange({ event: async () => ({}), write: async () => {} });
        throwing.forward({ decision: 'allow', code: 'allowed', rule: '' }, { commit: () => { throw new Error('sync'); }, rollback: () => { throw new Error('sync'); } });
        settle(throwing);
        assert.ok([COMMITTED, ROLLED_BACK].includes(await throwing.settled));
      }
      // Rejections would be reported after the microtasks that follow them.
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(unhandled, []);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  test('a flood of refusals: events built at most 128 a task, other work runs between, every event once in order', async () => {
    const written = [];
    const audit = { write: async (event) => { written.push(event.request_id); } };
    const gate = new Gate({ counters: new CountingStore(), audit, clock: () => NOW, log: () => {}, hmac: () => 'hmac' });
    const ids = Array.from({ length: 300 }, (_, i) => i + 1);
    const admitted = await gate.admit(ids.map((id) => call(id, 'delete-all')), { grant: GRANT, server: 'default', policy: POLICY });
    assert.equal(admitted.answers.length, 300);
    // A task queued now runs after the first batch of events, before the rest.
    const seenBetween = await new Promise((resolve) => setImmediate(() => resolve(written.length)));
    assert.ok(seenBetween > 0 && seenBetween < 300, `${seenBetween} events written before other work ran`);
    while (written.length < 300) await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(written, ids);
  });

  test('property: an audit event\'s time is Date#toISOString\'s, whatever the order and spacing of the calls', () => {
    const next = prng(20261207);
    let now = Date.UTC(2026, 11, 7, 17, 59, 59, 990);
    for (let i = 0; i < 20000; i++) {
      const step = next();
      if (step < 0.3) now += 0; // the same millisecond
      else if (step < 0.7) now += Math.floor(next() * 20); // the same second, mostly
      else if (step < 0.8) now += Math.floor(next() * 5000);
      else if (step < 0.85) now -= Math.floor(next() * 3000); // a clock set back
      else if (step < 0.9) now = Math.floor((next() - 0.5) * 1e13); // before 1970 too
      else if (step < 0.95) now += next(); // a fraction of a millisecond (a fake clock)
      else now = Math.round(now);
      assert.equal(isoTime(now), new Date(now).toISOString(), String(now));
    }
    assert.throws(() => isoTime(NaN), RangeError);
    assert.equal(isoTime(8.64e15), new Date(8.64e15).toISOString());
  });

  test('the audit event is the same whether the HMAC answers at once, later, throws or rejects; a sink that throws is reported', async () => {
    // node:crypto's HMAC answers at once (the event is built and handed to the
    // sink without a promise), WebCrypto's later; either way the same event.
    const hmacs = {
      now: () => 'digest',
      later: async () => 'digest',
      throws: () => { throw new Error('no key'); },
      rejects: async () => { throw new Error('no key'); },
    };
    const events = {};
    for (const [name, hmac] of Object.entries(hmacs)) {
      const audit = memoryAudit();
      const gate = new Gate({ counters: new CountingStore(), audit, clock: () => NOW, log: () => {}, hmac });
      const admitted = await gate.admit([call(5, 'count'), call(6, 'delete-all')], { grant: GRANT, server: 'default', policy: POLICY });
      const exchange = admitted.exchanges.get('5');
      exchange.sent();
      exchange.answered({ jsonrpc: '2.0', id: 5, result: { content: [] } }, { status: 200 });
      events[name] = (await audit.waitFor(2)).map((event) => ({ ...event, latency_ms: 0 }));
      assert.equal(await exchange.settled, COMMITTED, name);
    }
    assert.deepEqual(events.later, events.now);
    assert.deepEqual(events.rejects, events.throws);
    assert.deepEqual(events.throws.map((e) => e.argument_hmac), [null, null]);
    assert.deepEqual(events.now.map((e) => e.argument_hmac), ['digest', 'digest']);
    assert.deepEqual(events.throws.map((e) => ({ ...e, argument_hmac: 'digest' })), events.now);
    // A sink that throws instead of rejecting: logged, the call settled, nothing unhandled.
    const logged = [];
    const gate = new Gate({ counters: new CountingStore(), audit: { write() { throw new Error('sink down'); } }, clock: () => NOW, log: (level, message) => logged.push(message), hmac: hmacs.now });
    const admitted = await gate.admit([call(7, 'delete-all')], { grant: GRANT, server: 'default', policy: POLICY });
    assert.equal(admitted.answers.length, 1);
    while (logged.length === 0) await new Promise((resolve) => setImmediate(resolve));
    assert.match(logged[0], /audit sink failed/);
  });

  test('the audit event: decision time fields, then the decision, then how it settled, in this order', async () => {
    const audit = memoryAudit();
    const gate = new Gate({ counters: new CountingStore(), audit, clock: () => NOW, log: () => {} });
    const admitted = await gate.admit([call(5, 'count')], { grant: GRANT, server: 'default', policy: POLICY });
    const exchange = admitted.exchanges.get('5');
    exchange.sent();
    exchange.answered({ jsonrpc: '2.0', id: 5, result: { content: [] } }, { status: 200 });
    const [event] = await audit.waitFor(1);
    assert.deepEqual(Object.keys(event), ['time', 'request_id', 'grant', 'server', 'tool', 'policy_hash', 'argument_keys', 'argument_hmac',
      'decision', 'code', 'rule', 'upstream_status', 'outcome', 'latency_ms', 'quota']);
    assert.deepEqual([event.decision, event.upstream_status, event.outcome, event.quota], ['allow', 200, 'result', 'kept']);
  });

  test('a would-be refusal forwarded in monitor mode holds nothing, and settles like any call', async () => {
    const counters = new CountingStore();
    const audit = memoryAudit();
    const gate = new Gate({ counters, audit, clock: () => NOW, log: () => {} });
    const admitted = await gate.admit([call(3, 'delete-all')], { grant: GRANT, server: 'default', policy: POLICY, monitor: true });
    const exchange = admitted.exchanges.get('3');
    assert.equal(exchange.decision.code, 'tool_denied');
    exchange.sent();
    exchange.answered({ jsonrpc: '2.0', id: 3, result: { content: [] } }, { status: 200 });
    assert.equal(await exchange.settled, COMMITTED);
    const [event] = await audit.waitFor(1);
    assert.deepEqual([event.decision, event.enforced, event.outcome], ['deny', false, 'result']);
    assert.equal('quota' in event, false, 'nothing was reserved, so no quota to speak of');
    assert.equal(counters.commits + counters.rollbacks, 0, 'no reservation to settle');
  });
});

// The rule read plainly, for the property test: the first event that settles
// decides; an error answer, a connection never made, a closed pipe and a 4xx
// prove the call did not run, and so does anything before it was sent, except
// a result (which proves it ran).
const SETTLING = new Set(Object.keys(EVENTS).filter((name) => name !== 'sent'));
const PROVES_NOT_RUN = new Set(['rpcError', 'unreachable', 'serverGone', 'refused']);
function expected(events) {
  let sent = false;
  for (const name of events) {
    if (name === 'sent') sent = true;
    else if (SETTLING.has(name)) {
      const mayHaveRun = name === 'result' || name === 'toolError' || (sent && !PROVES_NOT_RUN.has(name));
      return { settlement: mayHaveRun ? COMMITTED : ROLLED_BACK, first: name };
    }
  }
  return { settlement: Settlement.OPEN, first: null };
}

describe('property: random event sequences', () => {
  const SEEDS = process.env.EXCHANGE_PROPERTY_SEED ? [Number(process.env.EXCHANGE_PROPERTY_SEED)] : [1, 2, 3];
  const CASES = 300;
  for (const seed of SEEDS) {
    test(`seed ${seed}: ${CASES} sequences; a call that may have run is never refunded; settled exactly once`, async () => {
      const random = prng(seed);
      const names = Object.keys(EVENTS);
      for (let i = 0; i < CASES; i++) {
        const length = Math.floor(random() * 7);
        // "sent" drawn often: transports report it before most events.
        const events = Array.from({ length }, () => (random() < 0.3 ? 'sent' : names[Math.floor(random() * names.length)]));
        const what = `seed ${seed} case ${i}: ${events.join(' → ') || '(none)'}`;
        const { exchange, counters, audit } = await forwardedCall(i);
        const seen = [];
        for (const name of events) {
          EVENTS[name](exchange);
          seen.push(name);
          // After every event: the state is what the events so far decide.
          assert.equal(exchange.settlement, expected(seen).settlement, what);
        }
        const { settlement } = expected(events);
        if (settlement === Settlement.OPEN) {
          assert.equal(counters.commits + counters.rollbacks, 0, what);
          assert.equal(await counters.held(), 1, `${what}: an open call holds its quota`);
          continue;
        }
        assert.equal(await exchange.settled, settlement, what);
        assert.equal(counters.commits + counters.rollbacks, 1, `${what}: the store is told exactly once`);
        const held = await counters.held();
        if (settlement === COMMITTED) assert.equal(held, 1, `${what}: a call that may have run was refunded`);
        else assert.equal(held, 0, `${what}: a call that cannot have run was charged`);
        await audit.waitFor(1);
        assert.equal(audit.events.length, 1, `${what}: one audit event`);
        // The unit rule agrees with the plain reading.
        assert.equal(settlementOf(...ruleInput(events)), settlement, what);
      }
    });
  }
});

// The first settling event and whether "sent" came before it, as settlementOf takes them.
function ruleInput(events) {
  const { first } = expected(events);
  const sent = events.slice(0, events.indexOf(first)).includes('sent');
  const kinds = {
    result: { kind: 'answered', error: false }, toolError: { kind: 'answered', error: false }, rpcError: { kind: 'answered', error: true },
    unreachable: { kind: 'failed', reason: Failure.UNREACHABLE }, serverGone: { kind: 'failed', reason: Failure.SERVER_GONE },
    refused: { kind: 'failed', reason: Failure.REFUSED }, upstream: { kind: 'failed', reason: Failure.UPSTREAM },
    invalidResponse: { kind: 'failed', reason: Failure.INVALID_RESPONSE },
  };
  return [kinds[first] ?? { kind: first.startsWith('client') || first === 'cancelled' ? 'clientLeft' : 'ended' }, { sent }];
}

// --- through the real HTTP transport --------------------------------------

const TOKEN = 'alice-token';
// What the upstream does with a call: [name, whether the server may have run
// it, the audit outcome].
const BEHAVIOURS = [
  ['result', true, 'result'],
  ['tool_error', true, 'tool_error'],
  ['rpc_error', false, 'error'],
  ['http_400', false, 'upstream_refused'],
  ['http_500', true, 'upstream_failed'],
  ['not_json', true, 'invalid_response'],
  ['html', true, 'invalid_response'],
  ['cut_off', true, 'invalid_response'],
  ['accepted', true, 'no_answer'],
  ['other_id', true, 'no_answer'],
  ['sse_result', true, 'result'],
  ['sse_rpc_error', false, 'error'],
  ['sse_no_answer', true, 'no_answer_stream_end'],
  ['sse_broken', true, 'no_answer_stream_error'],
  // A request from the server that happens to use the call's id answers nothing.
  ['sse_request_same_id', false, 'error'],
  ['client_leaves', true, 'client_left'],
  ['unreachable', false, 'upstream_failed'],
];

describe('through the HTTP handler: quota follows what may have run', () => {
  let upstream;
  let behaviour = 'result';
  let held = null; // { res, reached } for client_leaves
  before(async () => {
    upstream = await startFakeUpstream((req, body, res) => respond(req, body, res));
  });
  after(() => upstream.stop());

  // A port nothing listens on: bound, then closed, just before each use (so
  // that no other process on the machine has time to take it).
  async function downUrl() {
    const probe = createServer().listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const url = `http://127.0.0.1:${probe.address().port}/mcp`;
    probe.close();
    await once(probe, 'close');
    return url;
  }

  function respond(req, body, res) {
    const { id } = JSON.parse(body);
    const jsonAnswer = (value, status = 200, type = 'application/json') => {
      res.writeHead(status, { 'content-type': type });
      res.end(typeof value === 'string' ? value : JSON.stringify(value));
    };
    const sse = (events, end = true) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      for (const event of events) res.write(`event: message\ndata: ${JSON.stringify(event)}\n\n`);
      if (end) res.end();
      else res.write(': more to come\n\n', () => res.destroy());
    };
    switch (behaviour) {
      case 'result': return jsonAnswer({ jsonrpc: '2.0', id, result: { content: [{ type: 'text', text: 'ran' }] } });
      case 'tool_error': return jsonAnswer({ jsonrpc: '2.0', id, result: { content: [], isError: true } });
      case 'rpc_error': return jsonAnswer({ jsonrpc: '2.0', id, error: { code: -32602, message: 'bad params' } });
      case 'http_400': return jsonAnswer({ jsonrpc: '2.0', id: null, error: { code: -32000, message: 'Bad Request: no valid session' } }, 400);
      case 'http_500': return jsonAnswer({ jsonrpc: '2.0', id, error: { code: -32603, message: 'crashed' } }, 500);
      case 'not_json': return jsonAnswer('{"jsonrpc": "2.0", "id": ');
      case 'html': return jsonAnswer('<html>hello</html>', 200, 'text/html');
      case 'cut_off':
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '500' });
        return res.write('{"jsonrpc": "2.0", "id": 1, "result": {"content": [', () => res.destroy());
      case 'accepted': res.writeHead(202); return res.end();
      case 'other_id': return jsonAnswer({ jsonrpc: '2.0', id: 'someone else', result: { content: [] } });
      case 'sse_result': return sse([{ jsonrpc: '2.0', method: 'notifications/progress', params: { progress: 1 } }, { jsonrpc: '2.0', id, result: { content: [] } }]);
      case 'sse_rpc_error': return sse([{ jsonrpc: '2.0', id, error: { code: -32601, message: 'no such tool' } }]);
      case 'sse_no_answer': return sse([{ jsonrpc: '2.0', method: 'notifications/progress', params: { progress: 1 } }]);
      case 'sse_request_same_id': return sse([{ jsonrpc: '2.0', id, method: 'roots/list' }, { jsonrpc: '2.0', id, error: { code: -32602, message: 'bad params' } }]);
      case 'sse_broken': return sse([{ jsonrpc: '2.0', method: 'notifications/progress', params: { progress: 1 } }], false);
      case 'client_leaves':
        held.res = res;
        held.reached();
        return undefined;
      default: throw new Error(`no behaviour ${behaviour}`);
    }
  }

  const SEEDS = process.env.EXCHANGE_PROPERTY_SEED ? [Number(process.env.EXCHANGE_PROPERTY_SEED)] : [11, 12];
  const CALLS = 40;
  for (const seed of SEEDS) {
    test(`seed ${seed}: ${CALLS} calls with random upstream behaviour; the count is the calls that may have run, one audit event each`, { timeout: 120_000 }, async () => {
      const random = prng(seed);
      const counters = new CountingStore();
      const audit = memoryAudit();
      const handler = createHandler({
        servers: { default: { upstream: upstream.url, policy: POLICY } },
        grants: new Grants(grantsDocument({ alice: TOKEN })),
        counters, audit, clock: () => NOW, log: () => {}, upstreamTimeoutMs: 60_000,
      });
      let ran = 0;
      const log = [];
      // Every case once, then random ones.
      const order = [...BEHAVIOURS.map((b) => b[0]), ...Array.from({ length: CALLS - BEHAVIOURS.length }, () => BEHAVIOURS[Math.floor(random() * BEHAVIOURS.length)][0])];
      for (let i = 0; i < order.length; i++) {
        behaviour = order[i];
        const [, mayHaveRun, outcome] = BEHAVIOURS.find((b) => b[0] === behaviour);
        log.push(behaviour);
        const what = `seed ${seed}, call ${i} (${log.join(', ')})`;
        const controller = new AbortController();
        let reached;
        held = { res: null, reached: null };
        if (behaviour === 'client_leaves') reached = new Promise((resolve) => { held.reached = resolve; });
        // The down server under its own name (counters are the grant's, whatever the server).
        if (behaviour === 'unreachable') handler.update({ servers: { default: { upstream: upstream.url, policy: POLICY }, down: { upstream: await downUrl(), policy: POLICY } } });
        const request = new Request(`http://toolgate.test/mcp${behaviour === 'unreachable' ? '/down' : ''}`, {
          method: 'POST', signal: controller.signal,
          headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${TOKEN}` },
          body: JSON.stringify(call(i + 1, 'count', { n: i })),
        });
        const answering = handler.fetch(request, { remoteAddress: '203.0.113.9' }).then((response) => response.text().catch(() => ''));
        if (reached) {
          // The call is at the server; then the client hangs up.
          await reached;
          controller.abort();
        }
        await answering;
        held.res?.destroy();
        const events = await audit.waitFor(i + 1);
        if (mayHaveRun) ran += 1;
        assert.equal(events.length, i + 1, `${what}: one audit event per call`);
        assert.equal(events[i].request_id, i + 1, what);
        assert.equal(events[i].outcome, outcome, what);
        assert.equal(events[i].quota, mayHaveRun ? 'kept' : 'returned', what);
        if (behaviour === 'unreachable') assert.equal(events[i].upstream_status, 'unreachable', what);
        assert.equal(await counters.held(), ran, `${what}: the grant's count is the calls that may have run`);
        assert.equal(counters.commits + counters.rollbacks, i + 1, `${what}: each reservation settled exactly once`);
      }
    });
  }
});
