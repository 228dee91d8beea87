// Pins cost no memory per call: `toolgate serve --pins` keeps a call's
// objects as briefly as the same server without pins. Issue #17's pins budget
// (throughput ≥ 95 % of the server without) was missed because each pinned
// request made a closure over its scope (the transport's refreshTools), and
// with it every request's objects survived V8's young-generation collections
// into the old generation: the old generation climbed to ~60 MB and was
// mark-compacted again and again, where the server without pins needed no
// mark-compact at all (bench/README.md, "Pins: what made them cost").
//
// Measured through the real transport: two `toolgate serve` processes (the
// same configuration, one with --pins) run under `node --trace-gc` in front of
// one upstream; the same N tools/call POSTs (10 at a time, kept-alive
// connections) go to each, after a warm-up; the bytes each promoted to the old
// generation are read from its young-generation collections (the heap in use
// after one, minus that after the previous one). The verdict is a ratio of two
// figures of the same run, not a time: a pinned call may promote at most a
// little more than a call without pins (before the fix it promoted ~3 KB a
// call against a few bytes without pins).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { makePins } from '../../worker/pins.js';
import { repoRoot } from './cli-helpers.js';
import { collectOutput, grantsDocument, startFakeUpstream } from './proxy-helpers.js';

// TOOLGATE_BIN: another checkout's CLI, to show that the test fails there.
const CLI = process.env.TOOLGATE_BIN ?? join(repoRoot, 'bin/toolgate.js');
const TOKEN = 'pins-gc-token-0123456789';
const TOOL = { name: 'create_refund', description: 'Refunds an order.', inputSchema: { type: 'object', properties: { order: { type: 'string' } } } };
const POLICY = { version: '1', default: 'deny', tools: { create_refund: {} } };
const WARM_UP = 3_000;
const CALLS = 6_000;
const CONCURRENCY = 10;
// Promoted bytes a pinned call may add over a call without pins. Before the
// fix: ~3 000; after: within a few tens of bytes either way.
const ALLOWED_EXTRA_BYTES_PER_CALL = 400;

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
  const child = spawn(process.execPath, ['--trace-gc', CLI, 'serve', ...args, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = once(child, 'exit');
  const stderr = collectOutput(child.stderr);
  const stdout = collectOutput(child.stdout);
  const banner = await stderr.until(/is listening on \S+\n/, 'toolgate serve listening').catch((error) => {
    child.kill('SIGKILL');
    throw error;
  });
  const port = Number(/is listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(banner)[1]);
  return {
    port,
    // The --trace-gc lines written so far.
    gcLines: () => stdout.text.split('\n'),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
    },
  };
}

const CALL = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: TOOL.name, arguments: { order: 'A-1' } } });

// `count` tools/call POSTs, `CONCURRENCY` at a time on kept-alive
// connections; each must be answered by the upstream (not denied).
async function callMany(port, count) {
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const post = () => new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1', port, path: '/mcp', method: 'POST', agent,
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${TOKEN}`, 'content-length': Buffer.byteLength(CALL) },
    }, (res) => {
      const chunks = [];
      res.on('data', (chunk) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(CALL);
  });
  let next = 0;
  const worker = async () => {
    while (next < count) {
      next += 1;
      const { status, body } = await post();
      assert.equal(status, 200, body);
      const answer = JSON.parse(body);
      assert.equal(answer.result?.content?.[0]?.text, `ran ${TOOL.name}`, `the call was not run upstream: ${body}`);
    }
  };
  try {
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  } finally {
    agent.destroy();
  }
}

test('a pinned server promotes no more per call to the old generation than the same server without pins', { timeout: 300_000 }, async (t) => {
  const upstream = await startFakeUpstream((req, body, res) => {
    const message = JSON.parse(body);
    const result = message.method === 'tools/list' ? { tools: [TOOL] }
      : message.method === 'tools/call' ? { content: [{ type: 'text', text: `ran ${message.params.name}` }] } : {};
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ jsonrpc: '2.0', id: message.id, result }));
  });
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
    await callMany(server.port, WARM_UP);
    const from = server.gcLines().length;
    await callMany(server.port, CALLS);
    promoted[name] = promotedBytes(server.gcLines().slice(from)) / CALLS;
  }
  t.diagnostic(`promoted to the old generation per call: ${promoted.plain.toFixed(0)} B without pins, ${promoted.pinned.toFixed(0)} B with pins`);
  assert.ok(promoted.pinned <= promoted.plain + ALLOWED_EXTRA_BYTES_PER_CALL,
    `a pinned call promotes ${promoted.pinned.toFixed(0)} B to the old generation, a call without pins ${promoted.plain.toFixed(0)} B: pins keep per-call objects alive`);
});
