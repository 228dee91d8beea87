// Pins cost no memory per call (issue #17's pins budget, bench/README.md
// "Pins: what made them cost"). Each pinned request used to make a closure over
// its scope (the transport's refreshTools); with it, under load, pinned
// requests' objects survived V8's young-generation collections into the old
// generation (~3.4 KB a call against ~0.2 KB without pins), which climbed to
// ~60 MB and was mark-compacted every few seconds.
//
// 1. Deterministic, through the real Node transport (startProxy, HTTP): every
//    pinned request hands the gate the same refreshTools function, which lists
//    the tools in that request's own name (its context), so no request makes a
//    function of its own; and the listing still happens (once) and still
//    checks the call.
// 2. End to end: two `toolgate serve` processes (the same configuration, one
//    with --pins) under `node --trace-gc` in front of one upstream; the same
//    calls (10 at a time, kept-alive connections) go to each after a warm-up;
//    the bytes each promoted to the old generation are read from its
//    young-generation collections (the heap in use after one, minus that after
//    the previous one). The verdict compares two figures of the same run, not
//    a time. How much survives a collection depends on what is in flight when
//    it runs, so on a machine loaded by other work both figures rise and the
//    bound is generous: it catches the failure mode (thousands of bytes a
//    call), not a few hundred bytes either way.
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { Gate } from '../../worker/gate.js';
import { startProxy } from '../../worker/node.js';
import { makePins } from '../../worker/pins.js';
import { repoRoot } from './cli-helpers.js';
import { callMany, grantsDocument, memoryAudit, postRaw, startFakeUpstream, startServe, tempFile } from './proxy-helpers.js';

// TOOLGATE_BIN: another checkout's CLI, to show that the test fails there.
const CLI = process.env.TOOLGATE_BIN ?? join(repoRoot, 'bin/toolgate.js');
const TOKEN = 'pins-gc-token-0123456789';
const TOOL = { name: 'create_refund', description: 'Refunds an order.', inputSchema: { type: 'object', properties: { order: { type: 'string' } } } };
const POLICY = { version: '1', default: 'deny', tools: { create_refund: {} } };
const WARM_UP = 3_000;
const CALLS = 6_000;
// Promoted bytes a pinned call may add over a call without pins. Before the
// fix: ~3 400 in most runs on a lightly loaded machine (a few hundred in some
// runs on a heavily loaded one, where calls without pins promote more too);
// after: -20 to +370 in nine runs at load averages from 4 to 14.
const ALLOWED_EXTRA_BYTES_PER_CALL = 1_500;

// One Scavenge line of --trace-gc: "Scavenge 25.7 (35.9) -> 19.2 (35.9) MB".
const SCAVENGE = /Scavenge(?: \(interleaved\))? ([\d.]+) \([\d.]+\) -> ([\d.]+) \([\d.]+\) MB/;
const FULL_GC = /Mark-Compact|Mark-Sweep/;

/**
 * Bytes promoted to the old generation by the young-generation collections in
 * `lines` (--trace-gc output): after each scavenge the heap in use holds the
 * old generation and the surviving young objects; its growth from the previous
 * collection's is what this one promoted. A full collection (which frees the
 * old generation) starts the sum afresh from its own figure.
 */
function promotedBytes(lines) {
  let promoted = 0;
  let previous = null;
  for (const line of lines) {
    if (FULL_GC.test(line)) {
      const after = /-> ([\d.]+) \([\d.]+\) MB/.exec(line);
      previous = after ? Number(after[1]) : null;
      continue;
    }
    const match = SCAVENGE.exec(line);
    if (!match) continue;
    const after = Number(match[2]);
    if (previous !== null && after > previous) promoted += after - previous;
    previous = after;
  }
  return promoted * 1024 * 1024;
}

async function serve(args) {
  const server = await startServe(args, { cli: CLI, nodeArgs: ['--trace-gc'] });
  // The --trace-gc lines written so far.
  return { ...server, gcLines: () => server.stdout.text.split('\n') };
}

function upstreamAnswering() {
  return startFakeUpstream((req, body, res) => {
    const message = JSON.parse(body);
    const result = message.method === 'tools/list' ? { tools: [TOOL] }
      : message.method === 'tools/call' ? { content: [{ type: 'text', text: `ran ${message.params.name}` }] } : {};
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ jsonrpc: '2.0', id: message.id, result }));
  });
}

test('every pinned request hands the gate one shared refreshTools, which lists the tools for the request it is given', async (t) => {
  const upstream = await upstreamAnswering();
  t.after(() => upstream.stop());
  // What the gate is given per request, seen from the real Gate's admit.
  const seen = [];
  const admit = Gate.prototype.admit;
  Gate.prototype.admit = function (messages, context) {
    seen.push({ refreshTools: context.refreshTools, context });
    return admit.call(this, messages, context);
  };
  t.after(() => { Gate.prototype.admit = admit; });
  const audit = memoryAudit();
  const proxy = await startProxy({
    servers: { default: { upstream: upstream.url, policy: await tempFile('pins-gc-policy.json', POLICY) } },
    grants: await tempFile('pins-gc-grants.json', grantsDocument({ agent: TOKEN })), pins: await tempFile('pins-gc-pins.json', await makePins({ default: [TOOL] })),
    port: 0, audit, log: () => {}, watch: false, transport: 'node',
  });
  t.after(() => proxy.close());
  const calls = 40;
  for (let i = 0; i < calls; i++) {
    const answer = await postRaw(`${proxy.url}/mcp`, { jsonrpc: '2.0', id: i, method: 'tools/call', params: { name: TOOL.name, arguments: { order: `A-${i}` } } }, { token: TOKEN });
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.json.result?.content?.[0]?.text, `ran ${TOOL.name}`, answer.text);
  }
  assert.equal(seen.length, calls);
  assert.equal(typeof seen[0].refreshTools, 'function');
  for (const { refreshTools } of seen) {
    assert.equal(refreshTools, seen[0].refreshTools, 'a request made a refreshTools of its own');
  }
  assert.equal(new Set(seen.map((s) => s.context)).size, calls, 'each request has a context of its own');
  // toolgate listed the tools itself once (the first call), in that request's
  // name, and every call was checked against the pin and ran.
  const lists = upstream.requests.filter((r) => JSON.parse(r.body).method === 'tools/list');
  assert.equal(lists.length, 1);
  assert.equal(lists[0].headers.authorization, undefined, 'the client\'s token is not sent upstream');
  assert.equal(upstream.requests.filter((r) => JSON.parse(r.body).method === 'tools/call').length, calls);
  // Called again with one request's context, the shared function lists the tools.
  const listed = await seen[calls - 1].refreshTools(seen[calls - 1].context);
  assert.deepEqual(listed, [TOOL]);
});

const CALL = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: TOOL.name, arguments: { order: 'A-1' } } });
// The load: CALL, 10 at a time, each answered by the upstream.
const LOAD = { body: CALL, token: TOKEN, ranText: `ran ${TOOL.name}` };

test('a pinned server promotes no more per call to the old generation than the same server without pins', { timeout: 300_000 }, async (t) => {
  const upstream = await upstreamAnswering();
  t.after(() => upstream.stop());
  const dir = await mkdtemp(join(tmpdir(), 'toolgate-pins-gc-'));
  const policy = join(dir, 'policy.json');
  const grants = join(dir, 'grants.json');
  const pins = join(dir, 'pins.json');
  await writeFile(policy, JSON.stringify(POLICY));
  await writeFile(grants, JSON.stringify(grantsDocument({ agent: TOKEN })));
  await writeFile(pins, JSON.stringify(await makePins({ default: [TOOL] })));
  const common = ['--policy', policy, '--upstream', upstream.url, '--grants', grants, '--store', 'memory'];
  const plain = await serve([...common, '--audit', `file:${join(dir, 'plain.jsonl')}`]);
  t.after(() => plain.stop());
  const pinned = await serve([...common, '--audit', `file:${join(dir, 'pinned.jsonl')}`, '--pins', pins]);
  t.after(() => pinned.stop());

  const promoted = {};
  for (const [name, server] of [['plain', plain], ['pinned', pinned]]) {
    await callMany(server.port, WARM_UP, LOAD);
    const from = server.gcLines().length;
    await callMany(server.port, CALLS, LOAD);
    promoted[name] = promotedBytes(server.gcLines().slice(from)) / CALLS;
  }
  t.diagnostic(`promoted to the old generation per call: ${promoted.plain.toFixed(0)} B without pins, ${promoted.pinned.toFixed(0)} B with pins`);
  assert.ok(promoted.pinned <= promoted.plain + ALLOWED_EXTRA_BYTES_PER_CALL,
    `a pinned call promotes ${promoted.pinned.toFixed(0)} B to the old generation, a call without pins ${promoted.plain.toFixed(0)} B: pins keep per-call objects alive`);
});
