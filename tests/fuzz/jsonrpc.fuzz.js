#!/usr/bin/env node
// A bounded random and mutational fuzz loop for the proxy's JSON-RPC gate:
// bodies seeded from valid MCP messages (calls, batches, notifications,
// tools/list, responses) and mutated as text and as values (duplicate keys,
// deep nesting, huge strings, odd Unicode and look-alike names, non-string
// names, wrong ids and params, invalid UTF-8, broken JSON) go through
// createHandler() from worker/handler.js in front of a fake upstream `fetch`
// that answers in every way a server can (JSON, batches, 202, SSE, JSON-RPC
// and HTTP errors, wrong content types, broken JSON, a dropped connection,
// tools/list results listing hidden tools).
//
// Invariants, per request:
//  - the handler never throws and never hits its own catch-all (no "request
//    failed" log); it answers a Response with a valid HTTP status;
//  - a JSON answer made by the proxy is JSON-RPC (a message or a batch of them);
//  - every body forwarded upstream is JSON without duplicate keys (checked by
//    an independent parser here, not worker/json-check.js);
//  - every forwarded tools/call is allowed by the policy: re-decided with a
//    fresh compile of the same policy, the caller's grant and fresh in-memory
//    stores (so rate limits cannot deny), it must be "allow"; no notification
//    forwarded is tools/call or a look-alike; no two forwarded requests share
//    an id;
//  - no tools/list result the client sees lists a hidden tool.
//
//   node tests/fuzz/jsonrpc.fuzz.js [ITERATIONS] [--seed S]
// (tests/js/fuzz-jsonrpc.test.js runs a bounded number in npm test.)
import { createHash } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { loadToolgate, MemoryApprovalStore, MemoryCounterStore } from '../../wasm/index.js';
import { createHandler } from '../../worker/handler.js';
import { Grants } from '../../worker/grants.js';
import { rngFor } from '../differential/generate.js';

export const POLICY = {
  version: '1',
  default: 'deny',
  hide: ['secret-*', '*-internal'],
  all_tools: { deny_if: [{ conditions: [{ path: 'args.path', op: 'starts_with', value: '/etc' }] }] },
  tools: {
    echo: { rate_limit: '3/minute' },
    'read-*': {},
    'delete-all': { action: 'deny' },
    deploy: { action: 'require_approval' },
    pay: {
      args: { type: 'object', required: ['amount'], properties: { amount: { type: 'number', maximum: 100 } } },
      deny_if: [{ conditions: [{ path: 'args.amount', op: 'gt', value: 50 }] }],
      limits: [{ window: 'hour', max: 200, cost_from: 'args.amount' }],
    },
    'é-tool': {},
    run: { require: [{ path: 'grant.role', op: 'eq', value: 'admin' }] },
    ['__proto__']: {}, // an own key named __proto__ (computed, so not the prototype)
    constructor: { action: 'deny' },
  },
};

const TOKENS = { alice: 'alice-token', root: 'root-token' };
const ATTRIBUTES = { alice: { role: 'dev' }, root: { role: 'admin' } };
const sha256 = (text) => createHash('sha256').update(text).digest('hex');

const NAMES = ['echo', 'read-file', 'read-', 'delete-all', 'deploy', 'pay', 'é-tool', 'run', 'secret-key', 'db-internal',
  'unknown', 'Echo', 'DELETE-ALL', 'ｄｅｌｅｔｅ-all', 'dеlete-all', 'echo\u200b', 'read-\u0000x', 'e\u0301-tool', '__proto__',
  'constructor', 'toString', 'read-😀', 'read-\ud800', '', ' echo', 'echo ', 'read-file/../../delete-all', 'x'.repeat(300)];
const METHODS = ['tools/call', 'tools/list', 'initialize', 'ping', 'notifications/initialized', 'Tools/Call', 'tools/call ',
  'tools/call\u200b', 'ｔｏｏｌｓ/ｃａｌｌ', 'tools/CALL', 'resources/read', 'tools\\/call'];
const STRINGS = ['', 'a', '/etc/passwd', '/tmp/x', 'é', '😀', '\u2028', '\ud800', '\udfff\ud800', 'x'.repeat(5000), '\u0000',
  '"quoted"', '\\', '__proto__', '<script>'];

function randomValue(rng, depth = 0) {
  switch (rng.int(depth > 3 ? 4 : 7)) {
    case 0: return rng.pick(STRINGS);
    case 1: return rng.pick([0, -1, 1.5, 1e300, 50, 51, 100, 101, Number.MAX_SAFE_INTEGER, -0, 2 ** 63]);
    case 2: return rng.pick([true, false, null]);
    case 3: return rng.pick(NAMES);
    case 4: return Array.from({ length: rng.int(4) }, () => randomValue(rng, depth + 1));
    default: {
      const out = {};
      for (let i = rng.int(4); i > 0; i--) out[rng.pick(['path', 'amount', 'x', 'name', '__proto__', 'arguments', 'é'])] = randomValue(rng, depth + 1);
      return out;
    }
  }
}

function randomId(rng, i) {
  return rng.pick([i, `id-${i}`, i + 0.5, 0, -1, null, undefined, { a: 1 }, [1], true, 2 ** 60, '', 'é', i]);
}

function callMessage(rng, i) {
  const message = { jsonrpc: '2.0', id: randomId(rng, i), method: 'tools/call' };
  // Half the calls go to tools the policy may allow, so that forwarding,
  // merging and streaming are exercised as much as refusing.
  const params = { name: rng.chance(0.5) ? rng.pick(['echo', 'read-file', 'é-tool', 'pay', 'run', 'read-x', '__proto__'])
    : rng.chance(0.9) ? rng.pick(NAMES) : randomValue(rng, 2) };
  const argsKind = rng.int(10);
  if (argsKind < 6) {
    const args = {};
    if (rng.chance(0.5) || params.name === 'pay') args.amount = rng.pick([1, 10, 50, 50, 50.5, 100, 101, -1, '10', null, 1e300]);
    if (rng.chance(0.3)) args.path = rng.pick(['/tmp/x', '/etc/shadow', '/etcetera', 5]);
    if (rng.chance(0.2)) args.nested = randomValue(rng, 1);
    params.arguments = args;
  } else if (argsKind < 8) {
    params.arguments = randomValue(rng, 1);
  }
  if (rng.chance(0.1)) params._meta = { progressToken: 1 };
  message.params = rng.chance(0.95) ? params : randomValue(rng, 2);
  if (rng.chance(0.03)) delete message.params;
  if (rng.chance(0.03)) message.jsonrpc = rng.pick(['1.0', 2, undefined]);
  return message;
}

function otherMessage(rng, i) {
  switch (rng.int(6)) {
    case 0: return { jsonrpc: '2.0', id: randomId(rng, i), method: 'tools/list', params: rng.chance(0.5) ? {} : undefined };
    case 1: return { jsonrpc: '2.0', method: rng.pick(['notifications/initialized', 'notifications/cancelled', 'tools/call', 'Tools/call', 'tools/call\u200b']), params: { name: rng.pick(NAMES) } };
    case 2: return { jsonrpc: '2.0', id: randomId(rng, i), result: rng.chance(0.5) ? {} : randomValue(rng, 1) };
    case 3: return { jsonrpc: '2.0', id: randomId(rng, i), error: { code: -32601, message: 'no' } };
    case 4: return { jsonrpc: '2.0', id: randomId(rng, i), method: rng.pick(METHODS), params: rng.chance(0.7) ? { name: rng.pick(NAMES), arguments: {} } : randomValue(rng, 1) };
    default: return randomValue(rng, 1);
  }
}

function seedBody(rng, i) {
  if (rng.chance(0.6)) return callMessage(rng, i);
  if (rng.chance(0.35)) {
    return Array.from({ length: 1 + rng.int(6) }, (_, k) => (rng.chance(0.6) ? callMessage(rng, i * 10 + k) : otherMessage(rng, i * 10 + k)));
  }
  return otherMessage(rng, i);
}

// Structural mutations: on the value, before it is written as text.
function mutateValue(rng, value, depth = 0) {
  if (depth > 6 || value === null || typeof value !== 'object') {
    return rng.chance(0.2) ? randomValue(rng, 3) : value;
  }
  if (Array.isArray(value)) {
    const out = value.map((v) => (rng.chance(0.3) ? mutateValue(rng, v, depth + 1) : v));
    if (rng.chance(0.1) && out.length > 0) out.push(out[rng.int(out.length)]); // a repeat (same id)
    if (rng.chance(0.05)) out.length = 0;
    return out;
  }
  const out = {};
  for (const [k, v] of Object.entries(value)) {
    if (rng.chance(0.05)) continue;
    out[rng.chance(0.03) ? rng.pick(['method', 'id', 'params', 'name', 'arguments', 'jsonrpc', '__proto__']) : k] = rng.chance(0.3) ? mutateValue(rng, v, depth + 1) : v;
  }
  if (rng.chance(0.05)) out[rng.pick(['extra', 'result', 'error', 'id'])] = randomValue(rng, 2);
  return out;
}

// Textual mutations: duplicate keys, nesting, escapes, bytes.
function mutateText(rng, text) {
  switch (rng.int(12)) {
    case 0: // a duplicate key, the second spelled plainly or with escapes
      return text.replace(/"name":("(?:[^"\\]|\\.)*"|\d+)/, (m) => `${m},${rng.pick(['"name"', '"\\u006eame"', '"n\\u0061me"'])}:${JSON.stringify(rng.pick(NAMES))}`);
    case 1:
      return text.replace(/"method":"[^"]*"/, (m) => `${m},"method":${JSON.stringify(rng.pick(METHODS))}`);
    case 2: { // deep nesting inside arguments
      const depth = rng.pick([10, 200, 255, 256, 257, 300, 5000]);
      return text.replace(/"arguments":/, `"arguments":{"deep":${'['.repeat(depth)}${']'.repeat(depth)}},"x":`);
    }
    case 3: // a huge string
      return text.replace(/"name":/, `"pad":"${'x'.repeat(rng.pick([1000, 100_000]))}","name":`);
    case 4: { // a lone surrogate escape, or an escaped look-alike
      const escape = rng.pick(['\\ud800', '\\udfff', '\\u0000', '\\u200b', '\\uff45', '\\u0065']);
      return text.replace(/"name":"/, `"name":"${escape}`);
    }
    case 5: { // delete a range
      const at = rng.int(text.length + 1);
      return text.slice(0, at) + text.slice(at + rng.int(8));
    }
    case 6: { // insert a syntax character
      const at = rng.int(text.length + 1);
      return text.slice(0, at) + rng.pick(['{', '}', '[', ']', ',', ':', '"', '\\', ' ', '0', 'e', '-', '\n']) + text.slice(at);
    }
    case 7: { // duplicate a range
      const at = rng.int(text.length + 1);
      const length = rng.int(30);
      return text.slice(0, at + length) + text.slice(at, at + length) + text.slice(at + length);
    }
    case 8: // whitespace and a BOM
      return rng.pick(['\ufeff', ' ', '\n\t', '']) + text + rng.pick([' ', '\n', '', '\u0000']);
    case 9: // numbers in odd forms
      return text.replace(/"id":(\d+)/, (m, n) => `"id":${rng.pick([`${n}.0`, `${n}e0`, '1e400', '-0', '00', `${n}`])}`);
    case 10: // a second copy of the whole message as a batch
      return `[${text},${text}]`;
    default:
      return text;
  }
}

function clientBody(rng, i) {
  let value = seedBody(rng, i);
  if (rng.chance(0.35)) value = mutateValue(rng, value);
  let text;
  try {
    text = JSON.stringify(value) ?? 'null';
  } catch {
    text = '{}';
  }
  for (let n = rng.chance(0.4) ? 1 + rng.int(3) : 0; n > 0; n--) text = mutateText(rng, text);
  if (rng.chance(0.03)) { // raw bytes: invalid UTF-8 somewhere
    const bytes = Buffer.from(text, 'utf8');
    const at = rng.int(bytes.length + 1);
    return Buffer.concat([bytes.subarray(0, at), Buffer.from([rng.pick([0xff, 0xc0, 0xed, 0x80, 0xf4])]), bytes.subarray(at)]);
  }
  return text;
}

// --- an independent strict JSON reader for what went upstream -------------
function strictJson(text) {
  let at = 0;
  const fail = (why) => {
    throw new Error(`${why} at ${at}`);
  };
  const ws = () => {
    while (at < text.length && ' \t\n\r'.includes(text[at])) at++;
  };
  const string = () => {
    if (text[at] !== '"') fail('expected a string');
    let out = '';
    at++;
    for (;;) {
      if (at >= text.length) fail('unterminated string');
      const c = text[at++];
      if (c === '"') return out;
      if (c === '\\') {
        const e = text[at++];
        const simple = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
        if (e in simple) out += simple[e];
        else if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(at, at + 4))) {
          out += String.fromCharCode(parseInt(text.slice(at, at + 4), 16));
          at += 4;
        } else fail('bad escape');
      } else if (c < ' ') fail('control character in a string');
      else out += c;
    }
  };
  const value = (pointer) => {
    ws();
    const c = text[at];
    if (c === '{') {
      at++;
      const seen = new Set();
      ws();
      if (text[at] === '}') { at++; return; }
      for (;;) {
        ws();
        const key = string();
        if (seen.has(key)) fail(`duplicate key ${JSON.stringify(key)} in ${pointer || '/'}`);
        seen.add(key);
        ws();
        if (text[at++] !== ':') fail('expected :');
        value(`${pointer}/${key}`);
        ws();
        if (text[at] === ',') { at++; continue; }
        if (text[at++] === '}') return;
        fail('expected , or }');
      }
    }
    if (c === '[') {
      at++;
      ws();
      if (text[at] === ']') { at++; return; }
      for (let i = 0; ; i++) {
        value(`${pointer}/${i}`);
        ws();
        if (text[at] === ',') { at++; continue; }
        if (text[at++] === ']') return;
        fail('expected , or ]');
      }
    }
    if (c === '"') return void string();
    const literal = /^(?:true|false|null|-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?)/.exec(text.slice(at, at + 400));
    if (!literal) fail('unexpected character');
    at += literal[0].length;
  };
  value('');
  ws();
  if (at !== text.length) fail('text after the value');
}

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const looksLikeToolsCall = (method) => typeof method === 'string'
  && method.normalize('NFKC').toLowerCase().replace(/[\s\u200b-\u200f\u2060\ufeff]/g, '') === 'tools/call';
const isJsonRpcAnswer = (m) => isObject(m) && m.jsonrpc === '2.0' && 'id' in m && (('result' in m) !== ('error' in m))
  && (!('error' in m) || (isObject(m.error) && Number.isInteger(m.error.code) && typeof m.error.message === 'string'));

// What the fake upstream says, by mode.
function upstreamAnswer(rng, requestBody, hidden) {
  let messages = [];
  try {
    const parsed = JSON.parse(requestBody);
    messages = Array.isArray(parsed) ? parsed : [parsed];
  } catch {
    // answered anyway
  }
  const answerOf = (m) => {
    if (m.method === 'tools/list') {
      return { jsonrpc: '2.0', id: m.id, result: { tools: [{ name: 'echo', inputSchema: {} }, ...hidden.map((name) => ({ name, inputSchema: {} })), { name: 'read-x', outputSchema: { type: 'object' } }, 7, null] } };
    }
    if (rng.chance(0.15)) return { jsonrpc: '2.0', id: m.id, error: { code: -32000, message: 'tool failed' } };
    return { jsonrpc: '2.0', id: m.id, result: { content: [{ type: 'text', text: `ran ${m.params?.name}` }] } };
  };
  const answers = messages.filter((m) => isObject(m) && 'method' in m && 'id' in m).map(answerOf);
  const jsonBody = JSON.stringify(answers.length === 1 && !requestBody.startsWith('[') ? answers[0] : answers);
  let mode = rng.pick(['json', 'json', 'json', 'sse', 'sse', '202', 'error-status', 'bad-json', 'text', 'throw', 'empty-json', 'hidden-sse']);
  // A server answers notifications and responses alone with 202 and no body.
  if (answers.length === 0 && (mode === 'json' || mode === 'sse')) mode = '202';
  switch (mode) {
    case 'json': return { mode, response: new Response(jsonBody, { status: 200, headers: { 'content-type': 'application/json', 'mcp-session-id': 's1' } }) };
    case 'sse':
    case 'hidden-sse': {
      const events = answers.map((a, k) => `event: message\nid: ${k}\ndata: ${JSON.stringify(a)}\n\n`).join('') + (mode === 'hidden-sse' ? `data: ${JSON.stringify({ jsonrpc: '2.0', id: 'x', result: { tools: hidden.map((name) => ({ name })) } })}\n\n` : '');
      return { mode, response: new Response(events, { status: 200, headers: { 'content-type': 'text/event-stream' } }) };
    }
    case '202': return { mode, response: new Response(null, { status: 202 }) };
    case 'error-status': return { mode, response: new Response(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32001, message: 'session expired' } }), { status: rng.pick([400, 401, 404, 500, 503]), headers: { 'content-type': 'application/json' } }) };
    case 'bad-json': return { mode, response: new Response('{"jsonrpc":"2.0",', { status: 200, headers: { 'content-type': 'application/json' } }) };
    case 'text': return { mode, response: new Response('hello', { status: 200, headers: { 'content-type': 'text/plain' } }) };
    case 'empty-json': return { mode, response: new Response('', { status: 200, headers: { 'content-type': 'application/json' } }) };
    default: return { mode, error: new TypeError('fetch failed') };
  }
}

/** Messages of a response body: JSON (one or a batch) or SSE data lines. */
function messagesOf(type, text) {
  if (/^text\/event-stream/i.test(type)) {
    return text.split('\n').filter((l) => l.startsWith('data:')).map((l) => {
      try {
        return JSON.parse(l.slice(5).trim());
      } catch {
        return undefined;
      }
    }).filter((m) => m !== undefined);
  }
  try {
    const parsed = JSON.parse(text);
    return Array.isArray(parsed) ? parsed : [parsed];
  } catch {
    return [];
  }
}

/**
 * Runs `iterations` requests; resolves to statistics, or throws an Error
 * describing the first broken invariant (with the request that broke it).
 */
export async function fuzzJsonRpc({ iterations = 2000, seed = '1', log: progress } = {}) {
  const toolgate = await loadToolgate();
  const policyText = JSON.stringify(POLICY);
  const policy = toolgate.compile(policyText);
  const oracle = toolgate.compile(policyText); // a separate compile for re-deciding
  const grants = new Grants({ grants: Object.entries(TOKENS).map(([id, token]) => ({ id, token_sha256: sha256(token), attributes: ATTRIBUTES[id] })) });
  const hidden = ['secret-key', 'db-internal'];
  let now = 1767225600000;
  let upstreamCall = null; // what the fake upstream does for the current request
  const forwarded = [];
  const modes = []; // how the fake upstream answered, per forwarded body
  const logs = [];
  const stats = { requests: 0, forwardedBodies: 0, forwardedCalls: 0, statuses: {}, upstreamModes: {} };

  const options = {
    servers: { default: { upstream: 'http://upstream.test/mcp', headers: { authorization: 'Bearer upstream-secret' }, policy } },
    grants,
    counters: new MemoryCounterStore(),
    approvals: new MemoryApprovalStore(),
    maxBodyBytes: 64 * 1024,
    maxResponseBytes: 1024 * 1024,
    clock: () => now,
    log: (level, message, fields) => logs.push({ level, message, ...fields }),
    fetch: async (url, init) => {
      forwarded.push(init.body);
      const answer = upstreamCall(init.body ?? '');
      modes.push(answer.mode);
      stats.upstreamModes[answer.mode] = (stats.upstreamModes[answer.mode] ?? 0) + 1;
      if (answer.error) throw answer.error;
      return answer.response;
    },
  };
  const handler = createHandler(options);
  const anonymous = createHandler({ ...options, grants: null });

  for (let i = 0; i < iterations; i++) {
    const rng = rngFor('jsonrpc-fuzz', seed, i);
    now += rng.pick([0, 1, 1000, 20_000, 61_000]);
    upstreamCall = (body) => upstreamAnswer(rng, body, hidden);
    const body = clientBody(rng, i);
    const who = rng.chance(0.05) ? 'nobody' : rng.pick(['alice', 'alice', 'root', 'anonymous']);
    const headers = { 'content-type': rng.chance(0.97) ? rng.pick(['application/json', 'application/json; charset=utf-8', 'APPLICATION/JSON']) : rng.pick(['text/plain', '', 'application/jsonx']), accept: 'application/json, text/event-stream' };
    if (who === 'alice' || who === 'root') headers.authorization = `Bearer ${TOKENS[who]}`;
    if (who === 'nobody') headers.authorization = 'Bearer wrong';
    const method = rng.chance(0.97) ? 'POST' : rng.pick(['GET', 'DELETE', 'PUT']);
    const target = rng.chance(0.98) ? '/mcp' : rng.pick(['/mcp/other', '/mcp/', '/healthz', '/nothing']);
    const request = new Request(`http://toolgate.test${target}`, { method, headers, body: method === 'POST' || method === 'PUT' ? body : undefined });
    const grant = who === 'anonymous' ? { id: 'anonymous', attributes: {} } : { id: who, attributes: ATTRIBUTES[who] ?? {} };
    const since = forwarded.length;
    const logsBefore = logs.length;
    const describe = () => `iteration ${i} (seed ${seed}), ${method} ${target} as ${who}, body: ${(typeof body === 'string' ? body : `<bytes> ${body.toString('latin1')}`).slice(0, 2000)}`;
    const broken = (what) => new Error(`jsonrpc fuzz: ${what}\n  ${describe()}`);

    let response;
    try {
      response = await (who === 'anonymous' ? anonymous : handler).fetch(request, { remoteAddress: who === 'anonymous' ? '127.0.0.1' : '203.0.113.9' });
    } catch (error) {
      throw broken(`the handler threw: ${error?.stack ?? error}`);
    }
    stats.requests += 1;
    if (!(response instanceof Response)) throw broken('the handler did not answer a Response');
    if (!Number.isInteger(response.status) || response.status < 200 || response.status > 599) throw broken(`status ${response.status}`);
    stats.statuses[response.status] = (stats.statuses[response.status] ?? 0) + 1;
    const type = response.headers.get('content-type') ?? '';
    let text;
    try {
      text = await response.text();
    } catch (error) {
      // A stream the gate ends with an error (upstream failed mid-stream) is allowed.
      text = '';
      if (!/^text\/event-stream/i.test(type)) throw broken(`reading the answer failed: ${error}`);
    }
    const failures = logs.slice(logsBefore).filter((l) => l.message === 'request failed');
    if (failures.length > 0) throw broken(`the handler's catch-all ran: ${failures[0].error}`);

    // A JSON answer is JSON-RPC, unless the upstream's own broken JSON was
    // passed through unread (there was nothing in it for the proxy to change).
    const garbageUpstream = modes.slice(since).some((m) => m === 'bad-json' || m === 'empty-json');
    if (/^application\/json/i.test(type) && target.startsWith('/mcp') && !garbageUpstream) {
      let parsed;
      try {
        parsed = JSON.parse(text);
      } catch {
        throw broken(`a JSON answer that is not JSON: ${text.slice(0, 300)}`);
      }
      const messages = Array.isArray(parsed) ? parsed : [parsed];
      if (messages.length === 0 || !messages.every(isJsonRpcAnswer)) {
        throw broken(`a JSON answer that is not JSON-RPC: ${text.slice(0, 300)}`);
      }
    }

    // What reached the upstream.
    for (const sent of forwarded.slice(since)) {
      stats.forwardedBodies += 1;
      if (sent === undefined) continue; // GET and DELETE carry no body
      try {
        strictJson(sent);
      } catch (error) {
        throw broken(`a forwarded body is not strict JSON without duplicate keys (${error.message}): ${sent.slice(0, 300)}`);
      }
      const parsed = JSON.parse(sent);
      const messages = Array.isArray(parsed) ? parsed : [parsed];
      const ids = new Set();
      for (const m of messages) {
        if (!isObject(m)) continue;
        if ('method' in m && !('id' in m) && looksLikeToolsCall(m.method)) throw broken(`a tools/call notification went upstream: ${sent.slice(0, 300)}`);
        if ('method' in m && 'id' in m) {
          const key = JSON.stringify(m.id);
          if (ids.has(key)) throw broken(`two forwarded requests share id ${key}: ${sent.slice(0, 300)}`);
          ids.add(key);
          if (looksLikeToolsCall(m.method) && m.method !== 'tools/call') throw broken(`a look-alike of tools/call went upstream: ${JSON.stringify(m.method)}`);
        }
        if (m.method !== 'tools/call') continue;
        stats.forwardedCalls += 1;
        const call = { tool: m.params?.name, arguments: m.params?.arguments === undefined ? {} : m.params.arguments, grant: { ...grant.attributes, id: grant.id } };
        const decision = await oracle.decide(call, { counters: new MemoryCounterStore(), approvals: new MemoryApprovalStore(), now });
        if (decision.decision !== 'allow') {
          throw broken(`a tools/call the policy does not allow went upstream (${decision.code}: ${decision.message}): ${JSON.stringify(m).slice(0, 300)}`);
        }
      }
    }

    // Hidden tools never reach the client in a tools/list result.
    for (const m of messagesOf(type, text)) {
      const tools = m?.result?.tools;
      if (Array.isArray(tools) && tools.some((t) => isObject(t) && hidden.includes(t.name))) {
        throw broken(`a tools/list result shows a hidden tool: ${JSON.stringify(m).slice(0, 300)}`);
      }
    }
    if (progress && i % 500 === 499) progress(`jsonrpc fuzz: ${i + 1}/${iterations}`);
  }
  policy.dispose();
  oracle.dispose();
  return stats;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const args = process.argv.slice(2);
  const at = args.indexOf('--seed');
  const seed = at >= 0 ? args[at + 1] : '1';
  const iterations = Number(args.find((a, k) => /^\d+$/.test(a) && args[k - 1] !== '--seed') ?? 20000);
  const started = performance.now();
  try {
    const stats = await fuzzJsonRpc({ iterations, seed, log: (line) => process.stderr.write(`\r${line}`) });
    const seconds = (performance.now() - started) / 1000;
    process.stderr.write('\n');
    console.log(`jsonrpc fuzz: ${stats.requests} requests in ${seconds.toFixed(1)} s (${Math.round(stats.requests / seconds)}/s), ${stats.forwardedBodies} bodies and ${stats.forwardedCalls} tools/call forwarded, all invariants held`);
    console.log(`  statuses ${JSON.stringify(stats.statuses)}`);
    console.log(`  upstream answers ${JSON.stringify(stats.upstreamModes)}`);
  } catch (error) {
    console.error(error.message);
    process.exit(1);
  }
}
