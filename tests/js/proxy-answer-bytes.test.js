// A tools/call's JSON answer goes to the client as the server's own bytes when
// toolgate would write the same value again (worker/handler.js
// answerPassesAsIs), and as toolgate's own writing of what it inspected
// otherwise. Through the real transport (startProxy: @hono/node-server in
// front, worker/node-transport.js upstream, real sockets), a seeded property
// test over answers spelled every way JSON allows and every way it should not
// be trusted (duplicate keys, invalid UTF-8, a byte order mark, another
// charset, hidden tools in a result, another shape): whatever the bytes, the
// client reads exactly the value toolgate inspected and settled the call on.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';

import { MemoryCounterStore } from '../../wasm/index.js';
import { startProxy } from '../../worker/node.js';
import { findJsonProblem } from '../../worker/json-check.js';
import { grantsDocument, memoryAudit, startFakeUpstream, tempFile } from './proxy-helpers.js';
import { random } from './seeded-random.js';

const TOKEN = 'answer-bytes-token';
const HIDDEN = ['secret', 'get-env'];
const POLICY = { version: '1', default: 'allow', hide: HIDDEN, tools: { '*': {} } };
const SEED = Number(process.env.ANSWER_BYTES_SEED ?? 20261207);
const CASES = 400;

// The answer the fake server gives to the next call: { bytes, type }.
let next = null;
let upstream;
let proxy;
let audit;

before(async () => {
  upstream = await startFakeUpstream((req, body, res) => {
    res.writeHead(200, { 'content-type': next.type, 'content-length': next.bytes.length });
    res.end(next.bytes);
  });
  audit = memoryAudit();
  proxy = await startProxy({
    servers: { default: { upstream: upstream.url, policy: await tempFile('answer-bytes-policy.json', POLICY) } },
    grants: await tempFile('answer-bytes-grants.json', grantsDocument({ agent: TOKEN })),
    port: 0, counters: new MemoryCounterStore(), audit, log: () => {}, watch: false,
  });
});

after(async () => {
  await proxy?.close();
  await upstream?.stop();
});

/** POSTs `body` and resolves to the answer's status, Content-Type and raw bytes. */
function post(body) {
  return new Promise((resolve, reject) => {
    const target = new URL(`${proxy.url}/mcp`);
    const req = httpRequest({
      host: target.hostname, port: target.port, path: target.pathname, method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${TOKEN}` },
    });
    req.on('response', async (res) => {
      const chunks = [];
      for await (const chunk of res) chunks.push(chunk);
      resolve({ status: res.statusCode, type: res.headers['content-type'], bytes: Buffer.concat(chunks) });
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

const pick = (rand, list) => list[Math.floor(rand() * list.length)];

// Strings with what JSON escapes or a reader might trip on; "~" marks where a
// case may put an invalid UTF-8 byte.
function randomText(rand) {
  const parts = ['ran', ' ', 'é', '☃', '💥', '"', '\\', '\n', '\u2028', '/', '~', 'A', '\u0000', '\ud800'];
  let text = '';
  const length = Math.floor(rand() * 8);
  for (let i = 0; i < length; i++) text += pick(rand, parts);
  return text;
}

/**
 * `value` as JSON text spelled at random: whitespace between tokens, characters
 * escaped as \uXXXX, integers as "5.0" or "5e0", and with `duplicates`, an
 * object member written twice (an earlier one with another value, which
 * JSON.parse drops).
 */
function spell(value, rand, { duplicates }) {
  const ws = () => (rand() < 0.15 ? pick(rand, [' ', '\n', '\t', '\r\n  ']) : '');
  const string = (text) => {
    if (rand() < 0.7) return JSON.stringify(text);
    let out = '"';
    for (const char of text) {
      out += rand() < 0.3 && char.length === 1 ? `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}` : JSON.stringify(char).slice(1, -1);
    }
    return `${out}"`;
  };
  const write = (v) => {
    if (typeof v === 'string') return string(v);
    if (typeof v === 'number') return Number.isInteger(v) && rand() < 0.3 ? pick(rand, [`${v}.0`, `${v}e0`, `${v}.000`]) : JSON.stringify(v);
    if (v === null || typeof v !== 'object') return JSON.stringify(v);
    if (Array.isArray(v)) return `[${ws()}${v.map((item) => `${ws()}${write(item)}${ws()}`).join(',')}${ws()}]`;
    const members = Object.entries(v).map(([key, item]) => `${ws()}${string(key)}${ws()}:${ws()}${write(item)}${ws()}`);
    if (duplicates && members.length > 0 && rand() < 0.5) {
      const [key] = pick(rand, Object.entries(v));
      members.unshift(`${string(key)}:${write(pick(rand, [null, 999, 'other', { error: { code: -1, message: 'x' } }]))}`);
    }
    return `{${members.join(',')}}`;
  };
  return `${ws()}${write(value)}${ws()}`;
}

function randomAnswer(rand, id) {
  const kind = rand();
  if (kind < 0.15) return { jsonrpc: '2.0', id, error: { code: -32000, message: randomText(rand) } };
  if (kind < 0.3) {
    // A tools array in a call's result: hidden tools leave it (gate.inspect).
    const count = 1 + Math.floor(rand() * 3);
    return { jsonrpc: '2.0', id, result: { tools: Array.from({ length: count }, () => ({ name: pick(rand, ['echo', 'note', ...HIDDEN]), inputSchema: { type: 'object' } })) } };
  }
  const result = { content: [{ type: 'text', text: randomText(rand) }] };
  if (rand() < 0.5) result.isError = rand() < 0.3;
  return { jsonrpc: '2.0', id, result };
}

const BOM = Buffer.from([0xef, 0xbb, 0xbf]);
const CHARSETS_READ_AS_UTF8 = ['application/json', 'application/json; charset=utf-8', 'Application/JSON;charset="UTF-8"'];
const OTHER_TYPES = ['application/json; charset=iso-8859-1', 'application/json; charset=utf-16', 'application/json;charset=utf-8;charset=utf-7'];

const lenient = new TextDecoder();
const strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const isHidden = (tool) => HIDDEN.includes(tool?.name);

test('property: a JSON answer reaches the client as the server\'s bytes only when they read as what toolgate inspected', async () => {
  const rand = random(SEED);
  const seen = { asIs: 0, rewritten: 0 };
  for (let i = 0; i < CASES; i++) {
    const id = 5000 + i;
    const batch = rand() < 0.25;
    const message = randomAnswer(rand, id);
    const shape = rand();
    const value = batch ? (shape < 0.85 ? [message] : message) : shape < 0.1 ? [message] : message;
    const duplicates = rand() < 0.2;
    let bytes = Buffer.from(spell(value, rand, { duplicates }));
    const mutation = rand();
    if (mutation < 0.08) bytes = Buffer.concat([BOM, bytes]);
    else if (mutation < 0.16 && bytes.includes(0x7e)) bytes[bytes.indexOf(0x7e)] = 0xff; // "~" -> an invalid UTF-8 byte
    const type = rand() < 0.12 ? pick(rand, OTHER_TYPES) : pick(rand, CHARSETS_READ_AS_UTF8);
    next = { bytes, type };
    const label = `seed ${SEED} case ${i}: ${type} ${JSON.stringify(bytes.toString('latin1'))}`;

    const call = { jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'echo', arguments: { i } } };
    const events = audit.events.length;
    const answer = await post(batch ? [call] : call);
    assert.equal(answer.status, 200, label);

    // What toolgate read (the default decoder: a byte order mark dropped,
    // invalid bytes replaced), and the value it would write.
    const view = JSON.parse(lenient.decode(bytes));
    const viewMessages = Array.isArray(view) ? view : [view];
    const inspected = viewMessages.map((m) => (Array.isArray(m?.result?.tools) && m.result.tools.some(isHidden)
      ? { ...m, result: { ...m.result, tools: m.result.tools.filter((tool) => !isHidden(tool)) } } : m));
    const written = batch || inspected.length > 1 ? inspected : inspected[0];

    // The client reads exactly that value, in strict UTF-8 without duplicate keys.
    const text = strict.decode(answer.bytes);
    assert.deepEqual(JSON.parse(text), written, `the client reads what toolgate inspected: ${label}`);
    assert.equal(findJsonProblem(text), null, label);
    assert.ok(!answer.bytes.subarray(0, 3).equals(BOM), label);

    // Whether the server's bytes say exactly what toolgate read (strict UTF-8, no mark).
    let exact = null;
    if (!bytes.subarray(0, 3).equals(BOM)) {
      try {
        exact = strict.decode(bytes);
      } catch {
        exact = null;
      }
    }
    const sameShape = Array.isArray(view) === (batch || viewMessages.length > 1);
    const unchanged = inspected.every((m, at) => m === viewMessages[at]);
    const mayPass = exact !== null && CHARSETS_READ_AS_UTF8.includes(type) && findJsonProblem(exact) === null && sameShape && unchanged;
    if (mayPass) {
      assert.ok(answer.bytes.equals(bytes), `passed as the server's bytes: ${label}`);
      seen.asIs += 1;
    } else {
      assert.equal(text, JSON.stringify(written), `written again by toolgate: ${label}`);
      seen.rewritten += 1;
    }
    assert.equal(answer.type, type, `the server's Content-Type: ${label}`);

    // The call was settled on the same reading: its outcome from toolgate's view.
    const [event] = await audit.waitFor(events + 1).then((all) => all.slice(events));
    const mine = viewMessages.find((m) => m !== null && typeof m === 'object' && m.id === id && !('method' in m) && ('result' in m) !== ('error' in m));
    const outcome = !mine ? 'no_answer' : 'error' in mine ? 'error' : mine.result?.isError === true ? 'tool_error' : 'result';
    assert.equal(event.request_id, id, label);
    assert.equal(event.outcome, outcome, label);
    assert.equal(event.quota, outcome === 'error' ? 'returned' : 'kept', label);
  }
  // Both ways were taken many times (a generator that stopped making either would prove nothing).
  assert.ok(seen.asIs >= CASES / 5, `passed as is: ${seen.asIs}`);
  assert.ok(seen.rewritten >= CASES / 5, `written again: ${seen.rewritten}`);
});

test('a duplicate key in the answer is never passed on: a reader keeping the first would see another error or id', async () => {
  // JSON.parse keeps the last "error"/"id"; a reader keeping the first would
  // see a result where toolgate saw an error (quota given back), or another id.
  const cases = [
    '{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"ran"}]},"result":null,"error":{"code":-32000,"message":"no"}}',
    '{"jsonrpc":"2.0","id":999,"id":2,"result":{"content":[{"type":"text","text":"ran"}]}}',
    '{"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text","text":"a","text":"b"}]}}',
  ];
  for (const [at, raw] of cases.entries()) {
    next = { bytes: Buffer.from(raw), type: 'application/json' };
    const answer = await post({ jsonrpc: '2.0', id: at + 1, method: 'tools/call', params: { name: 'echo', arguments: {} } });
    const text = answer.bytes.toString('utf8');
    assert.notEqual(text, raw);
    assert.equal(text, JSON.stringify(JSON.parse(raw)));
    assert.equal(findJsonProblem(text), null);
  }
});
