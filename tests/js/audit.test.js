// Audit sinks (worker/audit.js, audit-file.js, audit-redis.js) and the
// argument hash: canonicalJson against RFC 8785's examples, and
// sha256Hex(canonicalJson({arguments, grant, tool})) against the core's
// approval ids. The Redis stream sink runs on a throwaway redis-server
// (./redis-server.js).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rename, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient } from 'redis';

import { loadToolgate } from '../../wasm/index.js';
import { ConsoleAuditSink, MultiAuditSink, StreamAuditSink, canonicalJson, eventLine, sha256Hex } from '../../worker/audit.js';
import { FileAuditSink } from '../../worker/audit-file.js';
import { RedisStreamAuditSink } from '../../worker/audit-redis.js';
import { startRedis } from './redis-server.js';
import { random } from './seeded-random.js';

// An event as the proxy builds it.
const eventOf = (n, fields = {}) => ({
  time: new Date(Date.UTC(2026, 10, 21, 10, 0, 0, n)).toISOString(),
  request_id: n,
  grant: 'alice',
  server: 'default',
  tool: 'run',
  decision: 'allow',
  code: 'allowed',
  rule: '/tools/run',
  policy_hash: 'ab'.repeat(32),
  argument_keys: ['x'],
  argument_sha256: 'cd'.repeat(32),
  upstream_status: 200,
  latency_ms: 3.2,
  ...fields,
});

const linesOf = (text) => text.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line));

// A double from its IEEE-754 bits, as RFC 8785 Appendix B lists them.
function doubleOf(hex) {
  const view = new DataView(new ArrayBuffer(8));
  view.setBigUint64(0, BigInt(`0x${hex}`));
  return view.getFloat64(0);
}

describe('canonicalJson (RFC 8785)', () => {
  test('names in UTF-16 code-unit order, sorted in place up to 16 and by sort() beyond: a seeded property test against plain sort()', () => {
    // The order RFC 8785 asks for, written the plain way (what canonicalJson did before it sorted small objects itself).
    const reference = (value) => {
      if (Array.isArray(value)) return `[${value.map(reference).join(',')}]`;
      if (value !== null && typeof value === 'object') return `{${Object.keys(value).sort().map((name) => `${JSON.stringify(name)}:${reference(value[name])}`).join(',')}}`;
      return JSON.stringify(value);
    };
    // Names that order differently by code unit, by code point and by number: digits ("10" before "9", though
    // Object.keys lists integer-like names first, numerically), case, accents, astral characters and lone surrogates.
    const pieces = ['', 'a', 'A', 'b', 'Z', '_', '0', '1', '9', '10', 'é', 'e\u0301', '\ufb01', '\u{1f600}', '\ud800', '\udfff', '\uffff', ' ', '"', '\\'];
    for (let seed = 1; seed <= 1500; seed += 1) {
      const next = random(seed);
      const int = (n) => Math.floor(next() * n);
      const name = () => Array.from({ length: 1 + int(3) }, () => pieces[int(pieces.length)]).join('');
      const valueOf = (depth) => {
        const kind = int(depth > 2 ? 3 : 5);
        if (kind === 0) return int(1000) - 500;
        if (kind === 1) return name();
        if (kind === 2) return [null, true, false][int(3)];
        if (kind === 3) return Array.from({ length: int(4) }, () => valueOf(depth + 1));
        const object = {};
        // 0 to 40 members: either side of the in-place sort's 16.
        const members = int(41);
        for (let i = 0; i < members; i += 1) object[name()] = valueOf(depth + 1);
        return object;
      };
      const value = { ...valueOf(3), nested: valueOf(0) };
      assert.equal(canonicalJson(value), reference(value), `seed ${seed}`);
    }
  });

  test('the RFC\'s sample: literals, numbers and string escapes (section 3.2.2)', () => {
    const input = JSON.parse(`{
      "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
      "string": "\\u20ac$\\u000F\\u000aA'\\u0042\\u0022\\u005c\\\\\\"\\/",
      "literals": [null, true, false]
    }`);
    assert.equal(
      canonicalJson(input),
      '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
    );
  });

  test('members sorted by UTF-16 code units (section 3.2.3)', () => {
    const input = JSON.parse(`{
      "\\u20ac": "Euro Sign",
      "\\r": "Carriage Return",
      "\\ufb33": "Hebrew Letter Dalet With Dagesh",
      "1": "One",
      "\\ud83d\\ude00": "Emoji: Grinning Face",
      "\\u0080": "Control",
      "\\u00f6": "Latin Small Letter O With Diaeresis"
    }`);
    assert.equal(
      canonicalJson(input),
      '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign","\ud83d\ude00":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
    );
  });

  test('numbers as ECMAScript formats them (appendix B)', () => {
    const cases = [
      ['0000000000000000', '0'],
      ['8000000000000000', '0'], // -0
      ['0000000000000001', '5e-324'],
      ['8000000000000001', '-5e-324'],
      ['7fefffffffffffff', '1.7976931348623157e+308'],
      ['ffefffffffffffff', '-1.7976931348623157e+308'],
      ['4340000000000000', '9007199254740992'],
      ['c340000000000000', '-9007199254740992'],
      ['4430000000000000', '295147905179352830000'],
      ['44b52d02c7e14af5', '9.999999999999997e+22'],
      ['44b52d02c7e14af6', '1e+23'],
      ['44b52d02c7e14af7', '1.0000000000000001e+23'],
      ['444b1ae4d6e2ef4e', '999999999999999700000'],
      ['444b1ae4d6e2ef4f', '999999999999999900000'],
      ['444b1ae4d6e2ef50', '1e+21'],
      ['3eb0c6f7a0b5ed8c', '9.999999999999997e-7'],
      ['3eb0c6f7a0b5ed8d', '0.000001'],
      ['41b3de4355555553', '333333333.3333332'],
      ['41b3de4355555554', '333333333.33333325'],
      ['41b3de4355555555', '333333333.3333333'],
      ['41b3de4355555556', '333333333.3333334'],
      ['41b3de4355555557', '333333333.33333343'],
      ['becbf647612f3696', '-0.0000033333333333333333'],
      ['43143ff3c1cb0959', '1424953923781206.2'],
    ];
    for (const [bits, text] of cases) assert.equal(canonicalJson(doubleOf(bits)), text, bits);
    assert.equal(canonicalJson([-0, 0.1 + 0.2, 1e21, 1e-7, 100]), '[0,0.30000000000000004,1e+21,1e-7,100]');
  });

  test('no whitespace; strings escaped as JSON.stringify does; nesting kept', () => {
    assert.equal(
      canonicalJson({ b: [1, { d: null, c: 'x\u001f\u007f\u2028"' }], a: {}, '': [] }),
      '{"":[],"a":{},"b":[1,{"c":"x\\u001f\u007f\u2028\\"","d":null}]}',
    );
    assert.equal(canonicalJson('lone \ud800'), '"lone \\ud800"');
    assert.equal(canonicalJson(Object.assign(Object.create(null), { z: 1, y: true })), '{"y":true,"z":1}');
  });

  test('throws on what is not JSON data', () => {
    for (const bad of [NaN, Infinity, -Infinity, [1, NaN], { x: Infinity }]) assert.throws(() => canonicalJson(bad), RangeError, String(bad));
    for (const bad of [undefined, () => 1, Symbol('s'), 1n, { x: undefined }, [undefined], new Date(0), new Map(), [1, , 3]]) { // eslint-disable-line no-sparse-arrays
      assert.throws(() => canonicalJson(bad), TypeError);
    }
  });

  test('nesting: 256 levels are fine, 257 throw', () => {
    const nest = (levels) => {
      let value = 0;
      for (let i = 0; i < levels; i += 1) value = i % 2 ? [value] : { v: value };
      return value;
    };
    assert.doesNotThrow(() => canonicalJson(nest(256)));
    assert.throws(() => canonicalJson(nest(257)), /nested more than 256 deep/);
  });
});

describe('sha256Hex', () => {
  test('FIPS 180-4 test vectors, and UTF-8 input', async () => {
    assert.equal(await sha256Hex(''), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    assert.equal(await sha256Hex('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    assert.equal(
      await sha256Hex('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq'),
      '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
    );
    // "€" is E2 82 AC in UTF-8.
    const bytes = new Uint8Array([0xe2, 0x82, 0xac]);
    const expected = Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes)), (b) => b.toString(16).padStart(2, '0')).join('');
    assert.equal(await sha256Hex('€'), expected);
    await assert.rejects(sha256Hex(42), TypeError);
  });

  test('sha256Hex(canonicalJson({arguments, grant, tool})) is the core\'s approval_id', async () => {
    const toolgate = await loadToolgate();
    const policy = toolgate.compile({ version: '1', default: 'deny', tools: { '*': { action: 'require_approval' } } });
    const calls = [
      { tool: 'run', grant: 'alice', arguments: { x: 1 } },
      { tool: 'run', grant: 'alice', arguments: {} },
      { tool: 'write_file', grant: { id: 'bob', team: 'ops' }, arguments: { path: '/tmp/ファイル', content: 'a\nb\t"c"\u0001', mode: 420 } },
      {
        tool: 'mix',
        grant: 'carol',
        arguments: {
          '\u20ac': 1, '\r': 2, '\ufb33': 3, 1: 4, '\ud83d\ude00': 5, '\u0080': 6, '\u00f6': 7,
          numbers: [333333333.33333329, 1e30, 4.5, 0.002, 1e-27, 1e21, -0, 0.1, 123456789012345680000],
          nested: { b: [true, false, null, { z: [], a: {} }], a: 'x' },
        },
      },
    ];
    try {
      for (const call of calls) {
        const evaluation = policy.evaluate(call, { now: Date.UTC(2026, 10, 21) });
        assert.equal(evaluation.pending, true);
        const grant = typeof call.grant === 'string' ? call.grant : call.grant.id;
        const hash = await sha256Hex(canonicalJson({ arguments: call.arguments, grant, tool: call.tool }));
        assert.equal(hash, evaluation.approval.id, call.tool);
      }
    } finally {
      policy.dispose();
    }
  });
});

describe('eventLine', () => {
  test('one line of JSON per event; only objects are events', () => {
    assert.equal(eventLine(eventOf(1)), `${JSON.stringify(eventOf(1))}\n`);
    assert.equal(eventLine({ note: 'a\nb\r\nc' }).split('\n').length, 2, 'newlines inside values are escaped');
    for (const bad of [null, undefined, 'event', 1, [eventOf(1)]]) assert.throws(() => eventLine(bad), TypeError);
    assert.throws(() => eventLine({ big: 1n }), TypeError, 'JSON.stringify cannot hold a bigint');
  });
});

describe('ConsoleAuditSink', () => {
  test('one JSON line per event through console.log', async (t) => {
    const logged = [];
    t.mock.method(console, 'log', (...args) => logged.push(args));
    const sink = new ConsoleAuditSink();
    await sink.write(eventOf(1));
    await sink.write(eventOf(2, { decision: 'deny', code: 'tool_denied' }));
    await sink.close();
    assert.deepEqual(logged, [[JSON.stringify(eventOf(1))], [JSON.stringify(eventOf(2, { decision: 'deny', code: 'tool_denied' }))]]);
  });

  test('a `log` function instead; failures reject', async () => {
    const logged = [];
    await new ConsoleAuditSink({ log: (line) => logged.push(line) }).write(eventOf(1));
    assert.deepEqual(logged.map((line) => JSON.parse(line)), [eventOf(1)]);
    await assert.rejects(new ConsoleAuditSink({ log: () => { throw new Error('no console'); } }).write(eventOf(1)), /no console/);
    await assert.rejects(new ConsoleAuditSink({ log: () => {} }).write('not an event'), TypeError);
    assert.throws(() => new ConsoleAuditSink({ log: 'stdout' }), TypeError);
  });
});

describe('StreamAuditSink', () => {
  test('a function writer gets "JSON\\n" per event', async () => {
    const lines = [];
    const sink = new StreamAuditSink((line) => lines.push(line));
    await sink.write(eventOf(1));
    await sink.write(eventOf(2));
    assert.deepEqual(lines, [`${JSON.stringify(eventOf(1))}\n`, `${JSON.stringify(eventOf(2))}\n`]);
  });

  test('{ write } with a slow async writer: one write at a time, in call order; close waits for them', async () => {
    const lines = [];
    let busy = 0;
    const writer = {
      async write(line) {
        busy += 1;
        assert.equal(busy, 1, 'never two writes at once');
        await sleep(Math.random() * 3);
        lines.push(line);
        busy -= 1;
      },
    };
    const sink = new StreamAuditSink(writer);
    const writes = Array.from({ length: 100 }, (_, i) => sink.write(eventOf(i)));
    await sink.close();
    assert.equal(lines.length, 100, 'close() waited for every write');
    await Promise.all(writes);
    assert.deepEqual(linesOf(lines.join('')).map((e) => e.request_id), Array.from({ length: 100 }, (_, i) => i));
  });

  test('a failed write rejects its own caller only', async () => {
    const lines = [];
    const sink = new StreamAuditSink({
      write: async (line) => {
        if (line.includes('"request_id":2,')) throw new Error('disk full');
        lines.push(line);
      },
    });
    const results = await Promise.allSettled([1, 2, 3].map((n) => sink.write(eventOf(n))));
    assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled']);
    assert.match(results[1].reason.message, /disk full/);
    assert.deepEqual(linesOf(lines.join('')).map((e) => e.request_id), [1, 3]);
    await assert.rejects(sink.write(null), TypeError);
    assert.throws(() => new StreamAuditSink({}), TypeError);
  });

  test('a Node writable stream (as process.stdout): written when its callback says so; its errors reject', async () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (chunk) => { text += chunk; });
    const sink = new StreamAuditSink(out);
    await Promise.all([1, 2, 3].map((n) => sink.write(eventOf(n))));
    assert.deepEqual(linesOf(text), [eventOf(1), eventOf(2), eventOf(3)]);

    const broken = new Writable({ write: (chunk, encoding, callback) => callback(new Error('EPIPE')) });
    const failing = new StreamAuditSink(broken);
    await assert.rejects(failing.write(eventOf(1)), /EPIPE/);
    // The stream's 'error' event (emitted on a next tick) has fired once a
    // setImmediate callback runs: heard by the sink, not a crash.
    await new Promise((resolve) => setImmediate(resolve));
    await assert.rejects(failing.write(eventOf(2)), /EPIPE/, 'a broken stream stays broken');
  });

  test('process.stdout through { write }: the way the Node proxy passes it', async (t) => {
    const written = [];
    t.mock.method(process.stdout, 'write', (chunk) => { written.push(String(chunk)); return true; });
    const sink = new StreamAuditSink({ write: (line) => process.stdout.write(line) });
    await sink.write(eventOf(1));
    // As startProxy makes it: the events of one turn in one write.
    const coalesced = new StreamAuditSink({ write: (line) => process.stdout.write(line) }, { coalesce: true });
    await Promise.all([2, 3].map((n) => coalesced.write(eventOf(n))));
    t.mock.restoreAll();
    // The test runner reports on stdout too, meanwhile: only the audit lines are ours.
    assert.deepEqual(written.filter((chunk) => chunk.startsWith('{"time"')),
      [`${JSON.stringify(eventOf(1))}\n`, `${JSON.stringify(eventOf(2))}\n${JSON.stringify(eventOf(3))}\n`]);
  });

  test('coalesce: the writes of one turn reach the writer as one text, in order; turns apart are written apart', async () => {
    const texts = [];
    const sink = new StreamAuditSink((text) => texts.push(text), { coalesce: true });
    await Promise.all(Array.from({ length: 50 }, (_, i) => sink.write(eventOf(i))));
    assert.equal(texts.length, 1);
    assert.deepEqual(linesOf(texts[0]).map((e) => e.request_id), Array.from({ length: 50 }, (_, i) => i));
    await sink.write(eventOf(50));
    await sink.write(eventOf(51));
    assert.equal(texts.length, 3);
    // close() writes what waits for this turn.
    const last = sink.write(eventOf(52));
    await sink.close();
    await last;
    assert.deepEqual(linesOf(texts.join('')).map((e) => e.request_id), Array.from({ length: 53 }, (_, i) => i));
  });

  test('coalesce: a failed batch rejects each of its lines; the next batch is written; a bad event rejects alone', async () => {
    const texts = [];
    let fail = true;
    const sink = new StreamAuditSink({
      write: async (text) => {
        if (fail) throw new Error('pipe closed');
        texts.push(text);
      },
    }, { coalesce: true });
    const first = await Promise.allSettled([1, 2, 3].map((n) => sink.write(eventOf(n))));
    assert.deepEqual(first.map((r) => r.status), ['rejected', 'rejected', 'rejected']);
    assert.match(first[0].reason.message, /pipe closed/);
    fail = false;
    const second = await Promise.allSettled([sink.write(eventOf(4)), sink.write('not an event'), sink.write(eventOf(5))]);
    assert.deepEqual(second.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled']);
    assert.deepEqual(linesOf(texts.join('')).map((e) => e.request_id), [4, 5]);
  });
});

describe('MultiAuditSink', () => {
  test('every event to every sink; one failing sink rejects, after the others wrote', async () => {
    const a = [];
    const b = [];
    const sink = new MultiAuditSink([
      new StreamAuditSink((line) => a.push(line)),
      { write: async () => { throw new Error('sink down'); }, close: async () => {} },
      new StreamAuditSink((line) => b.push(line)),
    ]);
    const error = await sink.write(eventOf(1)).then(() => null, (e) => e);
    assert.ok(error instanceof AggregateError);
    assert.match(error.message, /1 of 3 audit sinks failed/);
    assert.match(error.errors[0].message, /sink down/);
    assert.equal(a.length, 1);
    assert.equal(b.length, 1);

    const fine = new MultiAuditSink([new StreamAuditSink((line) => a.push(line))]);
    await fine.write(eventOf(2));
    await fine.close();
    assert.equal(a.length, 2);
    assert.throws(() => new MultiAuditSink([{}]), TypeError);
  });
});

describe('FileAuditSink', () => {
  let dir;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'toolgate-audit-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('500 concurrent writes: 500 whole lines, in call order', async () => {
    const path = join(dir, 'concurrent.jsonl');
    const sink = new FileAuditSink({ path });
    // Big events, so that a write interleaving with another would show.
    const payload = 'x'.repeat(20_000);
    await Promise.all(Array.from({ length: 500 }, (_, i) => sink.write(eventOf(i, { padding: payload }))));
    await sink.close();
    const events = linesOf(await readFile(path, 'utf8'));
    assert.deepEqual(events.map((e) => e.request_id), Array.from({ length: 500 }, (_, i) => i));
    assert.ok(events.every((e) => e.padding === payload));
  });

  test('appends to an existing file', async () => {
    const path = join(dir, 'existing.jsonl');
    await writeFile(path, `${JSON.stringify({ before: true })}\n`);
    const sink = new FileAuditSink({ path });
    await sink.write(eventOf(1));
    await sink.close();
    const again = new FileAuditSink({ path });
    await again.write(eventOf(2));
    await again.close();
    assert.deepEqual(linesOf(await readFile(path, 'utf8')), [{ before: true }, eventOf(1), eventOf(2)]);
  });

  test('an unwritable path rejects each write; once it is fixed, writing resumes', async () => {
    const missing = join(dir, 'no-such-dir', 'audit.jsonl');
    const sink = new FileAuditSink({ path: missing });
    await assert.rejects(sink.write(eventOf(1)), { code: 'ENOENT' });
    await assert.rejects(sink.write(eventOf(2)), { code: 'ENOENT' });
    await mkdir(join(dir, 'no-such-dir'));
    await sink.write(eventOf(3));
    await sink.close();
    assert.deepEqual(linesOf(await readFile(missing, 'utf8')), [eventOf(3)]);

    const directory = new FileAuditSink({ path: dir });
    await assert.rejects(directory.write(eventOf(1)), { code: 'EISDIR' });
    await directory.close();
    assert.throws(() => new FileAuditSink({}), TypeError);
  });

  test('reopen() after a rename (log rotation): old events in the old file, new ones in a new file', async () => {
    const path = join(dir, 'rotated.jsonl');
    const sink = new FileAuditSink({ path });
    await sink.write(eventOf(1));
    await rename(path, `${path}.1`);
    await sink.write(eventOf(2)); // still the renamed file: the handle is open
    const pending = sink.write(eventOf(3));
    await sink.reopen(); // after the write queued before it
    await sink.write(eventOf(4));
    await pending;
    await sink.close();
    assert.deepEqual(linesOf(await readFile(`${path}.1`, 'utf8')).map((e) => e.request_id), [1, 2, 3]);
    assert.deepEqual(linesOf(await readFile(path, 'utf8')).map((e) => e.request_id), [4]);
  });

  test('batches: lines wait for flushMs, go out at once past maxBatchBytes, and close() writes what waits', async () => {
    const path = join(dir, 'batched.jsonl');
    // A flush interval no test waits for: only the size bound and close() write here.
    const sink = new FileAuditSink({ path, flushMs: 3_600_000, maxBatchBytes: 4096 });
    const small = Array.from({ length: 3 }, (_, i) => sink.write(eventOf(i)));
    let writtenEarly = 0;
    for (const write of small) write.then(() => { writtenEarly += 1; });
    // Past maxBatchBytes: this line and the three before it are written now, in order.
    await sink.write(eventOf(3, { padding: 'x'.repeat(5000) }));
    await Promise.all(small);
    assert.equal(writtenEarly, 3);
    assert.deepEqual(linesOf(await readFile(path, 'utf8')).map((e) => e.request_id), [0, 1, 2, 3]);
    // Under the bound, a line waits (its write() has not settled) until close().
    let settled = false;
    const waiting = sink.write(eventOf(4)).then(() => { settled = true; });
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(settled, false);
    assert.deepEqual(linesOf(await readFile(path, 'utf8')).map((e) => e.request_id), [0, 1, 2, 3]);
    await sink.close();
    await waiting;
    assert.deepEqual(linesOf(await readFile(path, 'utf8')).map((e) => e.request_id), [0, 1, 2, 3, 4]);
  });

  test('one promise per batch: the lines of a batch share it and settle with its append; the next batch has its own', async () => {
    const path = join(dir, 'shared.jsonl');
    const sink = new FileAuditSink({ path, flushMs: 3_600_000 });
    const first = Array.from({ length: 5 }, (_, i) => sink.write(eventOf(i)));
    assert.equal(new Set(first).size, 1);
    const flushed = sink.reopen(); // writes what waits, then reopens
    const second = [sink.write(eventOf(5)), sink.write(eventOf(6))];
    assert.equal(new Set(second).size, 1);
    assert.notEqual(second[0], first[0]);
    await Promise.all(first);
    await flushed;
    assert.deepEqual(linesOf(await readFile(path, 'utf8')).map((e) => e.request_id), [0, 1, 2, 3, 4]);
    await sink.close();
    await Promise.all(second);
    assert.deepEqual(linesOf(await readFile(path, 'utf8')).map((e) => e.request_id), [0, 1, 2, 3, 4, 5, 6]);
    // A bad event rejects alone and joins no batch.
    const other = new FileAuditSink({ path: join(dir, 'alone.jsonl'), flushMs: 3_600_000 });
    const good = other.write(eventOf(7));
    await assert.rejects(other.write(null), TypeError);
    await other.close();
    await good;
  });

  test('the default flush interval writes a lone line by itself; bad options are refused', async () => {
    const path = join(dir, 'lone.jsonl');
    const sink = new FileAuditSink({ path });
    await sink.write(eventOf(1)); // settles once written, with no other write or close to push it out
    assert.deepEqual(linesOf(await readFile(path, 'utf8')), [eventOf(1)]);
    const immediate = new FileAuditSink({ path, flushMs: 0 });
    await immediate.write(eventOf(2));
    assert.deepEqual(linesOf(await readFile(path, 'utf8')), [eventOf(1), eventOf(2)]);
    await Promise.all([sink.close(), immediate.close()]);
    for (const options of [{ flushMs: -1 }, { flushMs: NaN }, { maxBatchBytes: 0 }, { maxBatchBytes: '1' }]) {
      assert.throws(() => new FileAuditSink({ path, ...options }), TypeError, JSON.stringify(options));
    }
  });

  test('property: random bursts, sizes, bounds and rotations: every line once, whole, in call order, each write settled (seeded)', async () => {
    const SEED = Number(process.env.AUDIT_FILE_SEED ?? 0xa0d17);
    const rng = random(SEED);
    const int = (n) => Math.floor(rng() * n);
    for (let round = 0; round < 12; round++) {
      const path = join(dir, `property-${round}.jsonl`);
      const message = `seed ${SEED}, round ${round}`;
      // flushMs 0 (no waiting), tiny, or never (only the size bound, close() and reopen() write).
      const flushMs = [0, 1, 3_600_000][int(3)];
      const sink = new FileAuditSink({ path, flushMs, maxBatchBytes: 200 + int(20_000) });
      const files = [path]; // the file of each rotation, oldest first
      const expected = [[0]];
      // The file exists (it is opened at the first write) before anything is
      // renamed: reopen() writes what waits (with flushMs never, nothing else would).
      const first = sink.write(eventOf(0));
      await sink.reopen();
      await first;
      const settled = [];
      let n = 1;
      for (let step = 0, steps = 5 + int(30); step < steps; step++) {
        const action = int(10);
        if (action === 0) {
          // Rotation as logrotate does it: rename while lines may be waiting,
          // then reopen(). Lines asked for before reopen() go to the old file.
          await rename(path, `${path}.${files.length}`);
          files[files.length - 1] = `${path}.${files.length}`;
          files.push(path);
          expected.push([]);
          await sink.reopen();
        } else if (action === 1) {
          await new Promise((resolve) => setImmediate(resolve)); // a turn passes
        } else {
          for (let i = 0, burst = 1 + int(40); i < burst; i++, n++) {
            expected[expected.length - 1].push(n);
            settled.push(sink.write(eventOf(n, { padding: 'x'.repeat(int(3) === 0 ? int(5000) : int(50)) })));
          }
        }
      }
      await sink.close();
      await Promise.all(settled);
      for (const [i, file] of files.entries()) {
        const text = await readFile(file, 'utf8').catch(() => '');
        assert.ok(text === '' || text.endsWith('\n'), `${message}: ${file} ends with a whole line`);
        assert.deepEqual(linesOf(text).map((e) => e.request_id), expected[i], `${message}: ${file}`);
      }
    }
  });

  test('writes after close() reject; a bad event rejects without touching the file', async () => {
    const path = join(dir, 'closed.jsonl');
    const sink = new FileAuditSink({ path });
    await assert.rejects(sink.write([1, 2]), TypeError);
    await sink.write(eventOf(1));
    await sink.close();
    await assert.rejects(sink.write(eventOf(2)), /closed/);
    assert.deepEqual(linesOf(await readFile(path, 'utf8')), [eventOf(1)]);
  });
});

describe('RedisStreamAuditSink on redis-server', () => {
  let server;
  let client;
  before(async () => {
    server = await startRedis();
    client = createClient({ url: server.url });
    client.on('error', () => {});
    await client.connect();
  });
  after(async () => {
    await client?.close();
    await server?.stop();
  });

  test('XADD: one entry per event, field "event" holding its JSON, in write order', async () => {
    const sink = new RedisStreamAuditSink({ client, stream: 'audit:order', timeoutMs: 5000 });
    const ids = await Promise.all(Array.from({ length: 200 }, (_, i) => sink.write(eventOf(i))));
    await sink.close();
    const entries = await client.xRange('audit:order', '-', '+');
    assert.equal(entries.length, 200);
    assert.deepEqual(entries.map((entry) => entry.id), ids, 'write() resolves to the entry id');
    assert.ok(entries.every((entry) => Object.keys(entry.message).join() === 'event'));
    assert.deepEqual(entries.map((entry) => JSON.parse(entry.message.event)), Array.from({ length: 200 }, (_, i) => eventOf(i)));
  });

  test('the default stream is toolgate:audit, trimmed to about maxLen entries', async () => {
    const sink = new RedisStreamAuditSink({ client, timeoutMs: 5000 });
    assert.equal(sink.stream, 'toolgate:audit');
    await sink.write(eventOf(1));
    assert.equal(await client.xLen('toolgate:audit'), 1);

    const trimmed = new RedisStreamAuditSink({ client, stream: 'audit:trimmed', maxLen: 50, timeoutMs: 5000 });
    for (let i = 0; i < 1000; i += 1) await trimmed.write(eventOf(i));
    const length = await client.xLen('audit:trimmed');
    // Approximate trimming drops whole nodes (100 entries by default): at least 50 stay, far fewer than 1000.
    assert.ok(length >= 50 && length <= 200, `XLEN ${length}`);
    const [last] = await client.xRevRange('audit:trimmed', '+', '-', { COUNT: 1 });
    assert.equal(JSON.parse(last.message.event).request_id, 999, 'the newest events stay');
  });

  test('bad options and bad events are refused', async () => {
    assert.throws(() => new RedisStreamAuditSink({}), TypeError);
    assert.throws(() => new RedisStreamAuditSink({ client, maxLen: 0 }), TypeError);
    assert.throws(() => new RedisStreamAuditSink({ client, stream: '' }), TypeError);
    assert.throws(() => new RedisStreamAuditSink({ client, timeoutMs: -1 }), TypeError);
    await assert.rejects(new RedisStreamAuditSink({ client }).write('event'), TypeError);
  });

  test('a stopped server: write rejects within the timeout', async () => {
    const doomed = await startRedis();
    const doomedClient = createClient({ url: doomed.url });
    doomedClient.on('error', () => {});
    await doomedClient.connect();
    try {
      const sink = new RedisStreamAuditSink({ client: doomedClient, timeoutMs: 200 });
      await sink.write(eventOf(1));
      await doomed.stop();
      for (let i = 0; i < 3; i += 1) {
        const started = performance.now();
        await assert.rejects(sink.write(eventOf(2 + i)));
        const waited = performance.now() - started;
        assert.ok(waited < 200 + 1000, `rejected after ${Math.round(waited)} ms (timeout 200 ms)`);
      }
      await assert.rejects(sink.write(eventOf(9)), /did not answer within 200 ms|closed|Socket|ECONNREFUSED/);
    } finally {
      doomedClient.destroy();
      await doomed.stop();
    }
  });
});
